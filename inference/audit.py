"""The audit trail of the API: one JSON line per call, appended, rotated by size.

Each line: ``time`` (arrival of the request, UTC, ISO 8601), ``key_id`` (null when no valid key was shown),
``client``, ``method``, ``endpoint``, ``body_sha256`` and ``body_bytes`` of the request
(null when it was refused before its body was read), ``status``, ``latency_ms``,
``model_version`` (the registered model that answered, when the response names one),
``reason`` (why a call was refused). Never the key, its secret, a signature or the body
itself (readings are customer data): the hash identifies a request without keeping it.

``VPP_AUDIT_LOG``: the file (default ``var/audit/audit.jsonl`` under the working directory);
``VPP_AUDIT_MAX_BYTES`` (default 10 MB) and ``VPP_AUDIT_BACKUPS`` (default 10 files
``audit.jsonl.1`` ...) set the rotation. One writer per file: the service runs one worker.
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from datetime import UTC, datetime
from logging.handlers import RotatingFileHandler
from pathlib import Path

DEFAULT_PATH = "var/audit/audit.jsonl"


def audit_path() -> Path:
    return Path(os.environ.get("VPP_AUDIT_LOG") or DEFAULT_PATH)


class AuditLog:
    """Appends audit records to ``path`` (default :func:`audit_path`), rotated by size."""

    def __init__(self, path: Path | None = None, max_bytes: int | None = None,
                 backups: int | None = None):
        self.path = Path(path or audit_path())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        max_bytes = max_bytes or int(os.environ.get("VPP_AUDIT_MAX_BYTES", "10000000"))
        backups = backups or int(os.environ.get("VPP_AUDIT_BACKUPS", "10"))
        # the handler alone, not a logger: no propagation to the server's log, and
        # BentoML's logging configuration cannot disable it
        self._handler = RotatingFileHandler(self.path, maxBytes=max_bytes, backupCount=backups,
                                            encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(message)s"))

    def write(self, **fields) -> None:
        record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
        line = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
        self._handler.handle(logging.makeLogRecord({"msg": line, "levelno": logging.INFO}))

    def close(self) -> None:
        self._handler.close()


def tail(path: Path | None = None, n: int = 20) -> list[dict]:
    """The last ``n`` records of the audit log, oldest first (reaching into the latest
    rotated file when the current one holds fewer)."""
    path = Path(path or audit_path())
    lines: deque[str] = deque(maxlen=n)
    for part in (path.with_name(path.name + ".1"), path):
        if part.exists():
            with part.open(encoding="utf-8") as f:
                lines.extend(line for line in f if line.strip())
    return [json.loads(line) for line in lines]
