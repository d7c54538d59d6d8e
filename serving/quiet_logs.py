"""One warning line, not an ERROR traceback, for a request BentoML refuses as invalid.

BentoML logs every pydantic ``ValidationError`` of a request body (a 400 the caller gets
with the details) as ``ERROR`` with the full traceback: a client sending bad bodies fills
the log and buries real errors. ``install()`` adds a filter to BentoML's HTTP logger that
rewrites those records to one ``WARNING`` line with the error count and fields; every
other record passes unchanged.
"""

from __future__ import annotations

import logging

HTTP_LOGGER = "bentoml._internal.server.http_app"


class ValidationErrorsAsWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        from pydantic import ValidationError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in exc.errors()})[:10]
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.msg = "400 invalid request body on %s [%s]: %d error(s) in %s"
            record.args = (*record.args[:2], exc.error_count(), ", ".join(fields) or "body")
            record.exc_info = record.exc_text = None
        return True


def install() -> None:
    logger = logging.getLogger(HTTP_LOGGER)
    if not any(isinstance(f, ValidationErrorsAsWarnings) for f in logger.filters):
        logger.addFilter(ValidationErrorsAsWarnings())
