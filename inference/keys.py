"""API keys of the service: issued, listed and revoked with ``vpp keys``, checked by
``serving.auth`` on every request.

A key reads ``vpp_<key_id>_<secret>``: ``key_id`` (12 hex digits) names the key in the
store, the logs and the audit trail; ``secret`` (43 URL-safe characters, 256 random bits)
is shown once, when the key is created, and never stored. The store keeps
``HMAC-SHA256(server secret, secret)``: a copy of the store alone (a backup, a database
dump) cannot confirm a guessed key. A fast keyed hash rather than scrypt or argon2 because
the secret is random (256 bits, nothing to brute-force) and the check runs on every request
(about 2 microseconds).

Where things live:

- ``VPP_KEYS_URL``: a SQLAlchemy URL (``sqlite:///var/keys.db`` under the working directory
  by default; ``postgresql://...`` in production).
- ``VPP_KEYS_SECRET``: the server secret (hex or any text, at least 32 characters). Without
  it, and only for a sqlite store, the file ``<db>.secret`` beside the database (mode 0600,
  created with the first key).

Signed requests (keys created with ``require_signature``): the client sends
``X-VPP-Timestamp`` (Unix seconds), ``X-VPP-Nonce`` (8-128 characters of
``[A-Za-z0-9_-]``, new for each request) and ``X-VPP-Signature`` =
hex ``HMAC-SHA256(signing_key, timestamp + "\\n" + nonce + "\\n" + hex sha256(body))``,
where ``signing_key = hex HMAC-SHA256(secret, "vpp-signing-key-v1")`` (:func:`signing_key`,
printed beside the key at creation). A derived key rather than the secret itself so that
the store never holds what authenticates a caller: it keeps the signing key (the server
must know it to check a signature), which signs but does not authenticate.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

SCOPES = ("forecast:read", "baseline:read", "dispatch:write", "admin")
DEFAULT_URL = "sqlite:///var/keys.db"
KEY_PATTERN = re.compile(r"^vpp_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
SIGNING_CONTEXT = b"vpp-signing-key-v1"

_metadata = sa.MetaData()
api_keys = sa.Table(
    "api_keys", _metadata,
    sa.Column("key_id", sa.String(12), primary_key=True),
    sa.Column("secret_hmac", sa.String(64), nullable=False),
    sa.Column("client", sa.String(200), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),  # comma-separated
    sa.Column("allowed_ids", sa.Text, nullable=True),  # comma-separated; NULL = all
    sa.Column("require_signature", sa.Boolean, nullable=False, default=False),
    sa.Column("signing_key", sa.String(64), nullable=True),  # only when required
    sa.Column("rate_limit_per_minute", sa.Integer, nullable=True),  # NULL = server default
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)


class KeyStoreError(ValueError):
    """A key store that cannot be opened, or a bad argument to one of its commands."""


@dataclass(frozen=True)
class ApiKey:
    """One stored key (never its secret)."""

    key_id: str
    client: str
    scopes: frozenset[str]
    allowed_ids: frozenset[str] | None  # None: every site and customer
    require_signature: bool
    rate_limit_per_minute: int | None
    created_at: datetime
    revoked_at: datetime | None
    secret_hmac: str = field(default="", repr=False)
    signing_key: str | None = field(default=None, repr=False)

    def allows_scope(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


def keys_url() -> str:
    return os.environ.get("VPP_KEYS_URL") or DEFAULT_URL


def parse_key(text: str) -> tuple[str, str] | None:
    """``(key_id, secret)`` of a well-formed key, else None."""
    match = KEY_PATTERN.match(text)
    return (match.group(1), match.group(2)) if match else None


def signing_key(secret: str) -> str:
    """The key a client signs requests with (hex), derived from the key's secret part."""
    return hmac.new(secret.encode(), SIGNING_CONTEXT, hashlib.sha256).hexdigest()


def signature(key: str, timestamp: str, nonce: str, body: bytes) -> str:
    """hex HMAC-SHA256 of ``timestamp \\n nonce \\n sha256(body)`` with ``key`` (hex signing
    key)."""
    message = f"{timestamp}\n{nonce}\n{hashlib.sha256(body).hexdigest()}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def signed_headers(api_key: str, body: bytes, now: float | None = None,
                   nonce: str | None = None) -> dict[str, str]:
    """The headers of a signed request for ``body`` (a client helper, used by the tests)."""
    parsed = parse_key(api_key)
    if parsed is None:
        raise KeyStoreError("not an API key: expected vpp_<key_id>_<secret>")
    timestamp = str(int(time.time() if now is None else now))
    nonce = nonce or secrets.token_urlsafe(16)
    return {"Authorization": f"Bearer {api_key}", "X-VPP-Timestamp": timestamp,
            "X-VPP-Nonce": nonce,
            "X-VPP-Signature": signature(signing_key(parsed[1]), timestamp, nonce, body)}


def _split(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


class KeyStore:
    """API keys in a SQL database (``url``: SQLAlchemy URL, default :func:`keys_url`)."""

    def __init__(self, url: str | None = None, server_secret: str | None = None):
        self.url = url or keys_url()
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine = sa.create_engine(self.url)
            _metadata.create_all(self.engine)
        except sa.exc.SQLAlchemyError as err:
            raise KeyStoreError(f"cannot open the key store {self._shown()}: "
                                f"{type(err).__name__}; check VPP_KEYS_URL") from None
        if self.url.startswith("sqlite:///"):  # hashes only, but nobody else's business
            with contextlib.suppress(OSError):
                os.chmod(self.url.removeprefix("sqlite:///"), 0o600)
        self._server_secret = (server_secret or os.environ.get("VPP_KEYS_SECRET")
                               or self._secret_file())
        if len(self._server_secret) < 32:
            raise KeyStoreError("VPP_KEYS_SECRET is shorter than 32 characters; use e.g. "
                                "`python -c 'import secrets; print(secrets.token_hex(32))'`")

    def _shown(self) -> str:
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    def _secret_file(self) -> str:
        if not self.url.startswith("sqlite:///"):
            raise KeyStoreError(f"set VPP_KEYS_SECRET (the server secret keys are hashed "
                                f"with) for the key store {self._shown()}")
        path = Path(self.url.removeprefix("sqlite:///") + ".secret")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
        return path.read_text().strip()

    def _hmac(self, secret: str) -> str:
        return hmac.new(self._server_secret.encode(), secret.encode(),
                        hashlib.sha256).hexdigest()

    def create(self, client: str, scopes: list[str] | str, allowed_ids: list[str] | str | None
               = None, require_signature: bool = False,
               rate_limit_per_minute: int | None = None) -> tuple[ApiKey, str]:
        """A new key: ``(record, key text)``. The key text is not kept: show it once."""
        scopes = _split(scopes) if isinstance(scopes, str) else list(scopes)
        unknown = sorted(set(scopes) - set(SCOPES))
        if not scopes or unknown:
            raise KeyStoreError(f"unknown scope(s) {unknown or '(none given)'}, expected some "
                                f"of {', '.join(SCOPES)}")
        if not client.strip():
            raise KeyStoreError("give the client's name (--client)")
        if rate_limit_per_minute is not None and rate_limit_per_minute < 1:
            raise KeyStoreError("rate limit must be at least 1 request per minute")
        ids = _split(allowed_ids) if isinstance(allowed_ids, str) else allowed_ids
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        row = {"key_id": key_id, "secret_hmac": self._hmac(secret), "client": client.strip(),
               "scopes": ",".join(sorted(set(scopes))),
               "allowed_ids": ",".join(sorted(set(ids))) if ids else None,
               "require_signature": require_signature,
               "signing_key": signing_key(secret) if require_signature else None,
               "rate_limit_per_minute": rate_limit_per_minute,
               "created_at": datetime.now(UTC), "revoked_at": None}
        with self.engine.begin() as conn:
            conn.execute(api_keys.insert().values(**row))
        return self._record(row), f"vpp_{key_id}_{secret}"

    def list(self) -> list[ApiKey]:
        with self.engine.connect() as conn:
            rows = conn.execute(api_keys.select().order_by(api_keys.c.created_at)).mappings()
            return [self._record(r) for r in rows]

    def get(self, key_id: str) -> ApiKey | None:
        with self.engine.connect() as conn:
            row = conn.execute(api_keys.select().where(api_keys.c.key_id == key_id)
                               ).mappings().first()
        return self._record(row) if row else None

    def revoke(self, key_id: str) -> ApiKey:
        """Mark a key revoked (kept for the audit trail); KeyStoreError if unknown."""
        with self.engine.begin() as conn:
            done = conn.execute(api_keys.update().where(
                (api_keys.c.key_id == key_id) & api_keys.c.revoked_at.is_(None)).values(
                revoked_at=datetime.now(UTC)))
        record = self.get(key_id)
        if record is None:
            raise KeyStoreError(f"no key {key_id!r}; `vpp keys list` shows the key ids")
        if done.rowcount == 0:
            raise KeyStoreError(f"key {key_id} was already revoked at {record.revoked_at}")
        return record

    def verify(self, record: ApiKey, secret: str) -> bool:
        """True when ``secret`` is the secret of ``record`` (constant-time comparison)."""
        return hmac.compare_digest(record.secret_hmac, self._hmac(secret))

    @staticmethod
    def _record(row) -> ApiKey:
        return ApiKey(key_id=row["key_id"], client=row["client"],
                      scopes=frozenset(_split(row["scopes"])),
                      allowed_ids=frozenset(_split(row["allowed_ids"]))
                      if row["allowed_ids"] else None,
                      require_signature=bool(row["require_signature"]),
                      rate_limit_per_minute=row["rate_limit_per_minute"],
                      created_at=_aware(row["created_at"]), revoked_at=_aware(row["revoked_at"]),
                      secret_hmac=row["secret_hmac"], signing_key=row["signing_key"])


def _aware(value: datetime | None) -> datetime | None:
    """sqlite hands back naive datetimes for timezone=True columns: they were stored in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
