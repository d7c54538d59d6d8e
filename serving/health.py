"""``GET /readyz`` with details: the registry's state, the models loaded, the answer cache.

BentoML's own ``/readyz`` says only yes or no. The service registers a probe (``register``)
when it starts, and this ASGI middleware answers ``/readyz`` from it as JSON:

- 200, ``"status": "ok"``: the registry answered its last lookup;
- 200, ``"status": "degraded"``: the registry is unavailable, the models loaded before keep
  answering (every such answer carries a note), rule baselines answer;
- 503, ``"status": "not_ready"``: the registry has not answered since start and no model
  is loaded, so no forecast can be made.

Before the service has started (no probe yet) the request goes on to BentoML's own.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import JSONResponse

_probe: Callable[[], dict] | None = None


def register(probe: Callable[[], dict]) -> None:
    global _probe
    _probe = probe


def readiness(details: dict) -> tuple[str, int]:
    registry = details.get("registry", {})
    if registry.get("status") == "ok" or registry.get("status") == "unknown":
        return "ok", 200
    if details.get("models_loaded", 0) > 0 or registry.get("last_ok_at"):
        return "degraded", 200
    return "not_ready", 503


class HealthMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if (scope["type"] == "http" and scope.get("path") == "/readyz"
                and scope.get("method") in ("GET", "HEAD") and _probe is not None):
            details = _probe()
            status, code = readiness(details)
            await JSONResponse({"status": status, **details}, status_code=code)(
                scope, receive, send)
            return
        await self.app(scope, receive, send)
