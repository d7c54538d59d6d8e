"""``vpp keys create|list|revoke`` (the API keys of the service) and ``vpp audit tail``.

The key store and the audit log (``inference.keys``, ``inference.audit``) are read by the
service's middleware (``serving.auth``) and written here; they live in ``pipelines`` so that
imports point one way (serving -> pipelines). Imported inside each command so that
``vpp --help`` stays light.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from pipelines.cli_common import fail

app = typer.Typer()
keys_app = typer.Typer(help="API keys of the service (store: VPP_KEYS_URL, default "
                            "sqlite:///var/keys.db).", no_args_is_help=True)
audit_app = typer.Typer(help="The API's audit log (VPP_AUDIT_LOG, default "
                             "var/audit/audit.jsonl).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
console = Console(stderr=True)


def _out() -> Console:
    """stdout; wide when it is not a terminal, so that ids are never cut."""
    return Console(width=None if sys.stdout.isatty() else 200)


def _store():
    from inference.keys import KeyStore, KeyStoreError

    try:
        return KeyStore()
    except KeyStoreError as err:
        fail(err)


@keys_app.command("create")
def create(
    client: Annotated[str, typer.Option(help="who gets the key (e.g. operator-platform)")],
    scopes: Annotated[str, typer.Option(
        help="comma-separated: forecast:read, baseline:read, dispatch:write, admin")],
    sites: Annotated[str | None, typer.Option(
        help="comma-separated site and customer ids the key may name (default: all)")] = None,
    require_signature: Annotated[bool, typer.Option(
        "--require-signature", help="refuse requests not signed with X-VPP-Signature")] = False,
    rate_limit: Annotated[int | None, typer.Option(
        help="requests per minute (default: the server's VPP_RATE_LIMIT_PER_MINUTE)")] = None,
    quiet: Annotated[bool, typer.Option(
        "--quiet", help="print only the key on stdout (for scripts)")] = False,
):
    """Issue a key. It is printed once, here: the store keeps only a keyed hash of it."""
    from inference.keys import KeyStoreError, parse_key, signing_key

    store = _store()
    try:
        record, key = store.create(client, scopes, sites, require_signature, rate_limit)
    except KeyStoreError as err:
        fail(err)
    if quiet:
        print(key)
        return
    console.print(f"key {record.key_id} for {record.client}: scopes "
                  f"{', '.join(sorted(record.scopes))}"
                  + (f"; limited to {', '.join(sorted(record.allowed_ids))}"
                     if record.allowed_ids else "")
                  + ("; signed requests only" if record.require_signature else ""))
    console.print("the key (shown only now; store it in the client's secret store):")
    print(key)
    if require_signature:
        console.print("signing key (HMAC-SHA256 key of X-VPP-Signature, derived from the key):")
        print(signing_key(parse_key(key)[1]))


@keys_app.command("list")
def list_keys():
    """Every key with its client, scopes, limits and state (never a secret)."""
    table = Table("key_id", "client", "scopes", "sites", "signed", "rate/min", "created",
                  "revoked")
    for k in _store().list():
        table.add_row(k.key_id, k.client, ",".join(sorted(k.scopes)),
                      ",".join(sorted(k.allowed_ids)) if k.allowed_ids else "all",
                      "yes" if k.require_signature else "no",
                      str(k.rate_limit_per_minute or "default"),
                      k.created_at.isoformat(timespec="seconds"),
                      k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "")
    _out().print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="the key id (`vpp keys list`)")]):
    """Revoke a key: refused by the service from then on (within VPP_KEYS_CACHE_SECONDS)."""
    from inference.keys import KeyStoreError

    try:
        record = _store().revoke(key_id)
    except KeyStoreError as err:
        fail(err)
    console.print(f"revoked key {record.key_id} of {record.client} at {record.revoked_at}")


@audit_app.command("tail")
def tail(
    n: Annotated[int, typer.Option("-n", help="how many records")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")]
    = False,
):
    """The last calls of the API: time, key, endpoint, status, latency, model version."""
    from inference.audit import audit_path
    from inference.audit import tail as read_tail

    records = read_tail(n=n)
    if not records:
        console.print(f"no audit records in {audit_path()}")
        return
    if as_json:
        for record in records:
            print(json.dumps(record, ensure_ascii=False))
        return
    table = Table("time", "key_id", "client", "endpoint", "status", "ms", "model_version",
                  "reason", title=str(audit_path()))
    for r in records:
        table.add_row(r.get("time", ""), r.get("key_id") or "", r.get("client") or "",
                      f"{r.get('method', '')} {r.get('endpoint', '')}", str(r.get("status")),
                      f"{r.get('latency_ms', 0):.1f}", r.get("model_version") or "",
                      r.get("reason") or "")
    _out().print(table)


LOCAL_CLIENT = "local"
LOCAL_SCOPES = "forecast:read,baseline:read,dispatch:write"


def local_key(path) -> tuple[str, bool]:
    """The key of client ``local`` saved in ``path`` (mode 0600), created when the file
    holds no valid key: ``(key, created)``. For ``make run`` on a developer's machine."""
    import os
    from pathlib import Path

    from inference.keys import KeyStoreError, parse_key

    path = Path(path)
    store = _store()
    if path.exists():
        saved = path.read_text().strip()
        parsed = parse_key(saved)
        record = store.get(parsed[0]) if parsed else None
        if record is not None and record.revoked_at is None and store.verify(record,
                                                                              parsed[1]):
            return saved, False
    try:
        _, key = store.create(LOCAL_CLIENT, LOCAL_SCOPES)
    except KeyStoreError as err:
        fail(err)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key, True
