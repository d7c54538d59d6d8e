"""The OpenAPI document the service publishes (``/docs.json``), made true to the service.

BentoML 1.4 writes its document with three faults a client generator or a fuzzer trips on:
it is labelled OpenAPI 3.0.2 while its schemas are pydantic's JSON Schema 2020-12
(``exclusiveMinimum: 0``, ``type: "null"``), which is OpenAPI 3.1; its error bodies declare
``detail`` a string while a refused body sends a list of field errors; and its ``info`` is
framework boilerplate (version "None"). It also leaves out what every endpoint may answer
besides 200/400/404/500: 401/403 (key, scope), 413 (body size), 415 (not JSON), 422
(a bound or stale data), 429 (rate), 503 (no model, registry unavailable).

``fix_document`` rewrites the document; ``DocumentMiddleware`` serves the rewritten one.
"""

from __future__ import annotations

import json
from importlib import metadata

ERROR_SCHEMA = {
    "type": "object", "title": "Error", "required": ["error"],
    "properties": {
        "error": {"type": "string", "title": "Message",
                  "description": "what is wrong and what to do about it"},
        "type": {"type": "string", "title": "Error type"},
        "reason": {"type": "string", "title": "Reason code of a refusal"},
        "detail": {"title": "Error detail", "description": "for an invalid body: the list "
                   "of field errors (loc, msg, type)"},
    },
}
EXTRA_STATUS = {"401": "No valid API key, or a bad signature", "403": "The key lacks the "
                "scope, or the site/customer is not one the key may ask for",
                "413": "Body larger than the limit", "415": "Body is not JSON",
                "422": "Beyond a bound of one request, or stale input data",
                "429": "Rate limit of the key reached (see Retry-After)",
                "503": "No model registered, or the model registry is unavailable"}
ERROR_SCHEMAS = ("InvalidArgument", "NotFound", "InternalServerError")
DESCRIPTION = (
    "Forecasts (load, PV, wind; P10/P50/P90 and more), customer baselines, dispatch "
    "decomposition, response likelihood, available capacity and bid advice for a virtual "
    "power plant.\n\nEvery endpoint but the health and metrics ones needs "
    "`Authorization: Bearer <key>` (`vpp keys create`). Errors are JSON `{\"error\": "
    "message, \"type\": name}`; the message says what to fix.")


def package_version() -> str:
    try:
        return metadata.version("vpp-forecasting")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def fix_document(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    doc["openapi"] = "3.1.0"
    doc["info"] = {"title": "VPP forecasting and baseline API", "version": package_version(),
                   "description": DESCRIPTION}
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name in ERROR_SCHEMAS:
        schemas[name] = {**ERROR_SCHEMA, "title": name,
                         "description": schemas.get(name, {}).get("description", "")}
    schemas["Error"] = ERROR_SCHEMA
    doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    for path, item in doc.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict) or "Service APIs" not in operation.get("tags",
                                                                                      ()):
                continue
            operation["security"] = [{"bearer": []}]
            responses = operation.setdefault("responses", {})
            for status, text in EXTRA_STATUS.items():
                responses.setdefault(status, {"description": text, "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
        if path == "/readyz" and "get" in item:
            item["get"]["description"] = (
                "200 with status ok or degraded (registry unavailable, earlier loaded models "
                "answer), 503 not_ready; JSON details of the registry and loaded models")
    return doc


class DocumentMiddleware:
    """Serves ``fix_document`` of BentoML's ``/docs.json`` (built once per process)."""

    def __init__(self, app):
        self.app = app
        self._body: bytes | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("path") != "/docs.json":
            await self.app(scope, receive, send)
            return
        if self._body is None:
            captured: dict = {"status": 200, "body": b""}

            async def capture(message):
                if message["type"] == "http.response.start":
                    captured["status"] = message["status"]
                elif message["type"] == "http.response.body":
                    captured["body"] += message.get("body", b"")

            await self.app(scope, receive, capture)
            if captured["status"] != 200:
                await self.app(scope, receive, send)
                return
            self._body = json.dumps(fix_document(json.loads(captured["body"]))).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(self._body)).encode())]})
        await send({"type": "http.response.body", "body": self._body})
