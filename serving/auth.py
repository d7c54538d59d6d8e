"""The API's front door: an ASGI middleware in front of every endpoint of ``VPPService``.

In order, for every path except the open ones (``/livez``, ``/readyz``, ``/healthz``,
``/metrics`` and the docs: ``/``, ``/docs.json``, ``/schema.json``, static files):

1. **Key** (401): ``Authorization: Bearer vpp_<key_id>_<secret>``, a key of the store
   (``inference.keys``), not revoked.
2. **Scope** (403): ``forecast:read`` for ``/forecast``; ``baseline:read`` for
   ``/baseline``, ``/baseline/measure`` and ``/response-likelihood``; ``dispatch:write`` for
   ``/dispatch``; ``admin`` for all, and the only one for any other path (a new endpoint
   stays admin-only until it is given a scope in ``SCOPE_OF``).
3. **Rate** (429 with ``Retry-After``): a token bucket per key, ``VPP_RATE_LIMIT_PER_MINUTE``
   (default 600) or the key's own limit, bursts up to one minute's worth.
4. **Body** (413): at most ``serving.limits.MAX_BODY_BYTES``, read once here and replayed to
   the endpoint.
5. **Signature** (401 with the reason), for keys created with ``--require-signature``:
   ``X-VPP-Timestamp`` within 5 minutes of the server's clock, a nonce never seen in that
   window, ``X-VPP-Signature`` as ``inference.keys`` specifies. Nonces are remembered in this
   process (the service runs one worker).
6. **JSON**: a body must say ``Content-Type: application/json`` (415: BentoML answers a
   multipart type with a JSON body with a 500, a form type with a misleading 400); NaN,
   Infinity and numbers beyond float range are refused (400).
7. **Sites and customers** (403): a key limited to some ids (``--sites``) may name only
   those in ``site_id``, ``customer_id`` and ``customers`` (and ``/dispatch`` must then name
   its ``customers``). 403 rather than 404 for an id that does not exist either: a key
   cannot learn which ids exist beyond its own.

Then the endpoint answers; every call (refused ones too) is written to the audit log
(``inference.audit``). An exception escaping the endpoint becomes a 500 JSON with a generic
message (the details go to the server log, never to the caller). Refusals are counted in
``/metrics`` as ``vpp_api_refusals_total{status, reason}``.

``VPP_AUTH_DISABLED=1`` (``vpp serve --no-auth``) skips steps 1-3, 5 and 7, for local
experiments only; it is logged as an error at start-up. ``VPP_KEYS_CACHE_SECONDS`` (default
2): how long a key looked up in the store is trusted before it is read again (so a revoked
key is refused within that time).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import re
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.responses import JSONResponse

from inference.audit import AuditLog
from inference.keys import ApiKey, KeyStore, parse_key
from serving.limits import MAX_BODY_BYTES

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/", "/docs.json",
                        "/schema.json"})
OPEN_PREFIXES = ("/static_content/", "/assets/")
SCOPE_OF = {"/forecast": "forecast:read", "/baseline": "baseline:read",
            "/baseline/measure": "baseline:read", "/response-likelihood": "baseline:read",
            "/capability": "baseline:read",
            "/dispatch": "dispatch:write", "/capacity": "dispatch:write",
            "/bid/capacity": "dispatch:write"}
SIGNATURE_MAX_AGE_S = 300
NONCE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,128}$")
JSON_TYPE = re.compile(r"^\s*application/(?:[\w.+-]+\+)?json\s*(?:;|$)", re.IGNORECASE)
VERSION_PATTERN = re.compile(rb'"(?:model_version|source)":\s*"([^"\\]{1,200})"')


class Refusal(Exception):
    """A request refused before it reaches the endpoint: status, error type and message."""

    def __init__(self, status: int, kind: str, message: str, reason: str,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.kind, self.reason, self.headers = status, kind, reason, headers


@dataclass(frozen=True)
class Settings:
    auth: bool = True
    rate_per_minute: int = 600
    key_cache_s: float = 2.0
    max_body_bytes: int = MAX_BODY_BYTES

    @classmethod
    def from_env(cls) -> Settings:
        return cls(auth=os.environ.get("VPP_AUTH_DISABLED", "").lower() not in
                   ("1", "true", "yes"),
                   rate_per_minute=int(os.environ.get("VPP_RATE_LIMIT_PER_MINUTE", "600")),
                   key_cache_s=float(os.environ.get("VPP_KEYS_CACHE_SECONDS", "2")))


class TokenBuckets:
    """Per-key token buckets of ``rate`` per minute, holding at most ``rate`` tokens."""

    def __init__(self):
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str, rate: int, now: float) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        tokens, at = self._buckets.get(key, (float(rate), now))
        tokens = min(float(rate), tokens + (now - at) * rate / 60)
        if tokens >= 1:
            self._buckets[key] = (tokens - 1, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1 - tokens) * 60 / rate


class Nonces:
    """Nonces seen in the last ``ttl`` seconds, per key."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._seen: dict[str, OrderedDict[str, float]] = {}

    def first_use(self, key: str, nonce: str, now: float) -> bool:
        seen = self._seen.setdefault(key, OrderedDict())
        while seen and next(iter(seen.values())) < now:
            seen.popitem(last=False)
        if nonce in seen:
            return False
        seen[nonce] = now + self.ttl
        return True


_refusals = None


def _refusal_counter():
    """The Prometheus counter, made once per process and only when the app is built
    (BentoML sets up multiprocess metrics before that, not at import time)."""
    global _refusals
    if _refusals is None:
        from prometheus_client import Counter

        _refusals = Counter("vpp_api_refusals", "API calls refused before the endpoint",
                            ["status", "reason"])
    return _refusals


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is beyond the float range")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows; send a finite number or null")


def _json(body: bytes):
    """The parsed body; Refusal(400) for NaN/Infinity; None when it is not JSON at all (the
    endpoint then answers its own 400)."""
    try:
        return json.loads(body, parse_constant=_no_constant, parse_float=_finite_float)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    except ValueError as err:  # from the two hooks above
        raise Refusal(400, "InvalidNumberError", str(err), "non_finite_number") from None


def _named_ids(payload) -> list[str]:
    if not isinstance(payload, dict):
        return []
    ids = [payload.get("site_id"), payload.get("customer_id")]
    customers = payload.get("customers")
    ids += customers if isinstance(customers, list) else [customers]
    return [str(i) for i in ids if i is not None]


class SecurityMiddleware:
    """ASGI middleware (see the module doc). ``store``, ``audit`` and ``settings`` default to
    the environment's (``VPP_KEYS_URL``, ``VPP_AUDIT_LOG``, ``Settings.from_env``)."""

    def __init__(self, app, store: KeyStore | None = None, audit: AuditLog | None = None,
                 settings: Settings | None = None):
        self.app = app
        self.settings = settings or Settings.from_env()
        self.store = (store or KeyStore()) if self.settings.auth else None
        self.audit = audit or AuditLog()
        self.buckets = TokenBuckets()
        self.nonces = Nonces(2 * SIGNATURE_MAX_AGE_S)
        self._keys: dict[str, tuple[ApiKey | None, float]] = {}
        self._counter = _refusal_counter()
        if self.settings.auth:
            log.info("API keys from %s; audit log %s; rate limit %d/min per key",
                     self.store._shown(), self.audit.path, self.settings.rate_per_minute)
        else:
            log.error("AUTHENTICATION IS DISABLED (VPP_AUTH_DISABLED / --no-auth): anyone who "
                      "reaches this port can call every endpoint. Local experiments only.")

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "")
        if scope["type"] == "websocket":  # the API has none: never a way around the checks
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        entry = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "key_id": None,
                 "client": None, "method": scope.get("method"), "endpoint": path,
                 "body_sha256": None, "body_bytes": None, "status": None,
                 "model_version": None}
        try:
            body = await self._admit(scope, receive, entry)
            if body is None:  # the client went away while sending its body
                return
            await self._forward(scope, receive, send, body, entry)
        except Refusal as refusal:
            entry.update(status=refusal.status, reason=refusal.reason)
            self._counter.labels(str(refusal.status), refusal.reason).inc()
            log.warning("%d %s %s (key %s): %s", refusal.status, entry["method"], path,
                        entry["key_id"], refusal)
            await JSONResponse({"error": str(refusal), "type": refusal.kind},
                               status_code=refusal.status, headers=refusal.headers)(
                scope, receive, send)
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("unexpected error answering %s %s (incident %s)", entry["method"],
                          path, incident)
            if entry["status"] is None:  # nothing sent yet: answer a generic 500
                entry.update(status=500, reason=f"internal_error {incident}")
                await JSONResponse({"error": f"internal error (incident {incident}); the "
                                    "server log has the details", "type": "InternalError"},
                                   status_code=500)(scope, receive, send)
        finally:
            entry["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
            self.audit.write(**entry)

    async def _admit(self, scope, receive, entry) -> bytes | None:
        """The request body once every check passed (Refusal otherwise)."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", ())}
        key = self._authenticate(headers, scope["path"], entry) if self.settings.auth else None
        body = await self._read_body(headers, receive)
        if body is None:
            return None
        entry.update(body_sha256=hashlib.sha256(body).hexdigest(), body_bytes=len(body))
        if body and not JSON_TYPE.match(headers.get("content-type", "")):
            raise Refusal(415, "UnsupportedMediaTypeError", "send the body as JSON with the "
                          "header 'Content-Type: application/json'", "not_json")
        if key is not None and key.require_signature:
            self._check_signature(key, headers, body)
        payload = _json(body) if body else None
        if key is not None and key.allowed_ids is not None:
            self._check_ids(key, scope["path"], payload)
        return body

    def _authenticate(self, headers: dict[str, str], path: str, entry) -> ApiKey:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        bearer = {"WWW-Authenticate": "Bearer"}
        if scheme.lower() != "bearer" or not token.strip():
            raise Refusal(401, "AuthenticationError", "missing API key: send the header "
                          "'Authorization: Bearer <key>' (keys: `vpp keys create`)",
                          "missing_key", bearer)
        parsed = parse_key(token.strip())
        if parsed is None:
            raise Refusal(401, "AuthenticationError", "malformed API key: expected "
                          "vpp_<key_id>_<secret>", "malformed_key", bearer)
        key_id, secret = parsed
        key = self._key(key_id)
        if key is None or not self.store.verify(key, secret):
            raise Refusal(401, "AuthenticationError", "invalid API key", "invalid_key", bearer)
        entry.update(key_id=key.key_id, client=key.client)
        if key.revoked_at is not None:
            raise Refusal(401, "AuthenticationError", f"API key {key.key_id} was revoked at "
                          f"{key.revoked_at.isoformat()}", "revoked_key", bearer)
        scope_needed = SCOPE_OF.get(path, "admin")
        if not key.allows_scope(scope_needed):
            raise Refusal(403, "PermissionDeniedError", f"API key {key.key_id} lacks the scope "
                          f"{scope_needed} that {path} needs", "missing_scope")
        wait = self.buckets.take(key.key_id, key.rate_limit_per_minute
                                 or self.settings.rate_per_minute, time.monotonic())
        if wait:
            raise Refusal(429, "RateLimitedError", f"rate limit of API key {key.key_id} "
                          f"reached; retry in {math.ceil(wait)} s", "rate_limited",
                          {"Retry-After": str(math.ceil(wait))})
        return key

    def _key(self, key_id: str) -> ApiKey | None:
        """The stored key, re-read from the store after ``key_cache_s``."""
        now = time.monotonic()
        cached = self._keys.get(key_id)
        if cached is not None and now - cached[1] < self.settings.key_cache_s:
            return cached[0]
        if len(self._keys) > 10_000:  # random ids from a scanner: do not grow forever
            self._keys.clear()
        key = self.store.get(key_id)
        self._keys[key_id] = (key, now)
        return key

    async def _read_body(self, headers: dict[str, str], receive) -> bytes | None:
        limit = self.settings.max_body_bytes
        too_large = Refusal(413, "PayloadTooLargeError", f"request body larger than {limit} "
                            "bytes; split the request", "body_too_large")
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _check_signature(self, key: ApiKey, headers: dict[str, str], body: bytes) -> None:
        def refuse(message: str, reason: str):
            raise Refusal(401, "SignatureError", message, reason)

        timestamp = headers.get("x-vpp-timestamp", "")
        nonce = headers.get("x-vpp-nonce", "")
        sent = headers.get("x-vpp-signature", "")
        if not (timestamp and nonce and sent):
            refuse(f"API key {key.key_id} requires signed requests: send X-VPP-Timestamp, "
                   "X-VPP-Nonce and X-VPP-Signature", "unsigned")
        if not timestamp.isdigit():
            refuse("X-VPP-Timestamp must be Unix seconds", "bad_timestamp")
        if not NONCE_PATTERN.match(nonce):
            refuse("X-VPP-Nonce must be 8-128 characters of A-Z a-z 0-9 _ -", "bad_nonce")
        message = f"{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode()
        expected = hmac.new(key.signing_key.encode(), message, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, sent.lower()):
            refuse("signature does not match the request (body, timestamp or nonce altered, "
                   "or signed with another key)", "bad_signature")
        age = time.time() - int(timestamp)
        if abs(age) > SIGNATURE_MAX_AGE_S:
            refuse(f"stale request: X-VPP-Timestamp is {abs(age):.0f} s "
                   f"{'old' if age > 0 else 'ahead'}, at most {SIGNATURE_MAX_AGE_S} s "
                   "allowed (check the client's clock)", "stale_signature")
        if not self.nonces.first_use(key.key_id, nonce, time.monotonic()):
            refuse("replayed request: this X-VPP-Nonce was already used; sign each request "
                   "with a new nonce", "replayed_nonce")

    @staticmethod
    def _check_ids(key: ApiKey, path: str, payload) -> None:
        named = _named_ids(payload)
        denied = sorted(set(named) - key.allowed_ids)
        if denied:
            raise Refusal(403, "PermissionDeniedError", f"API key {key.key_id} may not access "
                          f"{', '.join(denied)}", "id_not_allowed")
        if path == "/dispatch" and isinstance(payload, dict) and not payload.get("customers"):
            raise Refusal(403, "PermissionDeniedError", f"API key {key.key_id} is limited to "
                          "some customers: name them in 'customers'", "id_not_allowed")

    async def _forward(self, scope, receive, send, body: bytes, entry) -> None:
        replayed = False

        async def receive_body():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        head = bytearray()

        async def send_and_note(message):
            if message["type"] == "http.response.start":
                entry["status"] = message["status"]
            elif message["type"] == "http.response.body" and len(head) < 4096:
                head.extend(message.get("body", b"")[:4096])
                found = VERSION_PATTERN.search(head)
                if found and entry["model_version"] is None:
                    entry["model_version"] = found.group(1).decode(errors="replace")
            await send(message)

        await self.app(scope, receive_body, send_and_note)
