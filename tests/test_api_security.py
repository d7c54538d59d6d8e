"""Keys, scopes, signed requests, audit log and request bounds of the API.

Through ``TestClient(VPPService.to_asgi())`` (the middleware as BentoML wires it), one real
``bentoml serve``, the ``vpp keys`` / ``vpp audit`` commands, and the middleware alone in
front of a stub app for what the service cannot be made to do on purpose.
"""

import asyncio
import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from factories import asgi_client, write_portfolio

from inference.audit import AuditLog
from inference.audit import tail as audit_tail
from inference.keys import KeyStore, parse_key, signed_headers, signing_key
from serving.auth import SecurityMiddleware, Settings

ROOT = Path(__file__).resolve().parents[1]

RESOURCES = """resource_id,customer_id,name,level,capacity_kw,response_minutes,min_notice_minutes,max_duration_minutes,cost_cny_per_mwh,requires_approval
cx_r1,cx,battery,I,200,1,0,240,300,False
cx_r2,cx,chiller setback,II,150,10,15,180,100,False
"""
EVENTS = """event_id,customer_id,event_type,notice_time,start,end,target_kw,actual_kw
e1,cx,day_ahead,2024-03-02T10:00:00+08:00,2024-03-02T14:00:00+08:00,2024-03-02T16:00:00+08:00,100,100
e2,cx,day_ahead,2024-03-09T10:00:00+08:00,2024-03-09T14:00:00+08:00,2024-03-09T16:00:00+08:00,100,50
"""
WINDOW = {"start": "2024-03-20T14:00:00+08:00", "end": "2024-03-20T16:00:00+08:00",
          "notice_time": "2024-03-20T10:00:00+08:00"}
# one body per endpoint, each answered quickly by the endpoint once admitted (no champion
# is registered: /forecast answers 503, an unknown customer 404)
BODIES = {
    "/forecast": {"site_id": "load_x", "issue_time": "2024-03-25T12:00:00+08:00"},
    "/baseline": {"customer_id": "nobody", **WINDOW},
    "/baseline/measure": {"customer_id": "nobody", **WINDOW, "target_kw": 100.0,
                          "readings": [{"timestamp": WINDOW["start"], "load_kw": 123.456}]},
    "/response-likelihood": {"customers": ["nobody"], **WINDOW, "target_kw": [100.0]},
    "/dispatch": {"target_kw": 100.0, **WINDOW, "customers": ["nobody"]},
    "/capability": {"customers": ["nobody"]},
}
SCOPE = {"/forecast": "forecast:read", "/baseline": "baseline:read",
         "/baseline/measure": "baseline:read", "/response-likelihood": "baseline:read",
         "/dispatch": "dispatch:write", "/capability": "baseline:read"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A portfolio, an empty registry, a key store and an audit log, in the environment."""
    tmp = tmp_path_factory.mktemp("sec")
    data = write_portfolio(tmp / "pf", days=30)
    (data / "resources.csv").write_text(RESOURCES)
    (data / "events.csv").write_text(EVENTS)
    values = {"VPP_DATA_DIR": str(data), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
              "MLFLOW_ARTIFACTS_DIR": str(tmp / "artifacts"),
              "VPP_KEYS_URL": f"sqlite:///{tmp / 'keys.db'}",
              "VPP_AUDIT_LOG": str(tmp / "audit" / "audit.jsonl"),
              "VPP_KEYS_CACHE_SECONDS": "0"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in values.items():
            mp.setenv(k, v)
        mp.delenv("VPP_AUTH_DISABLED", raising=False)
        yield values


@pytest.fixture(scope="module")
def keys(env) -> dict[str, str]:
    store = KeyStore()
    out = {scope: store.create(f"client-{scope}", scope)[1] for scope in
           ("forecast:read", "baseline:read", "dispatch:write", "admin")}
    out["limited"] = store.create("limited", "admin", allowed_ids="load_x,cx")[1]
    out["signed"] = store.create("signed", "admin", require_signature=True)[1]
    out["slow"] = store.create("slow", "admin", rate_limit_per_minute=2)[1]
    revoked, out["revoked"] = store.create("gone", "admin")
    store.revoke(revoked.key_id)
    return out


@pytest.fixture(scope="module")
def client(env):
    with asgi_client(raise_server_exceptions=False) as c:
        yield c


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def audit_lines(env) -> list[str]:
    path = Path(env["VPP_AUDIT_LOG"])
    return path.read_text().splitlines() if path.exists() else []


# -- who may call -------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/livez", "/readyz", "/docs.json", "/"])
def test_health_and_docs_need_no_key(client, path):
    # /metrics too, checked on the real server (in-process BentoML has no metrics store)
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code, r.text[:200])


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.parametrize("headers, hint", [
    ({}, "missing API key"),
    ({"Authorization": "Basic dXNlcjpwdw=="}, "missing API key"),
    ({"Authorization": "Bearer not-a-key"}, "malformed API key"),
    ({"Authorization": "Bearer vpp_000000000000_" + "x" * 43}, "invalid API key"),
])
def test_every_endpoint_refuses_a_call_without_a_valid_key(client, path, headers, hint):
    r = client.post(path, json=BODIES[path], headers=headers)
    assert r.status_code == 401, r.text
    assert r.json() == {"error": r.json()["error"], "type": "AuthenticationError"}
    assert hint in r.json()["error"]
    assert r.headers["www-authenticate"] == "Bearer"


def test_a_wrong_secret_for_a_real_key_id_is_refused(client, keys):
    key_id, secret = parse_key(keys["admin"])
    forged = f"vpp_{key_id}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    r = client.post("/forecast", json=BODIES["/forecast"], headers=bearer(forged))
    assert r.status_code == 401 and "invalid API key" in r.text


def test_a_revoked_key_is_refused(client, keys):
    r = client.post("/forecast", json=BODIES["/forecast"], headers=bearer(keys["revoked"]))
    assert r.status_code == 401 and "revoked" in r.json()["error"]


@pytest.mark.parametrize("path", list(BODIES))
@pytest.mark.parametrize("scope", ["forecast:read", "baseline:read", "dispatch:write", "admin"])
def test_scopes_decide_which_endpoints_a_key_reaches(client, keys, path, scope):
    r = client.post(path, json=BODIES[path], headers=bearer(keys[scope]))
    if scope in (SCOPE[path], "admin"):
        assert r.status_code not in (401, 403), r.text  # the endpoint answered
    else:
        assert r.status_code == 403, r.text
        assert r.json()["type"] == "PermissionDeniedError"
        assert f"lacks the scope {SCOPE[path]}" in r.json()["error"]


def test_a_path_without_a_scope_is_for_admin_keys_only(client, keys):
    r = client.post("/not-yet-scoped", json={}, headers=bearer(keys["dispatch:write"]))
    assert r.status_code == 403 and "lacks the scope admin" in r.json()["error"]
    assert client.post("/not-yet-scoped", json={},
                       headers=bearer(keys["admin"])).status_code == 404


def test_a_revocation_is_seen_by_a_running_service(client, env):
    record, key = KeyStore().create("short-lived", "forecast:read")
    assert client.post("/forecast", json=BODIES["/forecast"],
                       headers=bearer(key)).status_code == 503  # admitted; no champion
    KeyStore().revoke(record.key_id)  # as `vpp keys revoke` would, from another process
    assert client.post("/forecast", json=BODIES["/forecast"],
                       headers=bearer(key)).status_code == 401


@pytest.mark.parametrize("path, body", [
    ("/forecast", {**BODIES["/forecast"], "site_id": "load_other"}),
    ("/baseline", {**BODIES["/baseline"], "customer_id": "ghost"}),  # 403, not 404
    ("/baseline", {**BODIES["/baseline"], "customer_id": None, "site_id": "pv_1"}),
    ("/response-likelihood", {**BODIES["/response-likelihood"], "customers": ["cx", "c2"]}),
    ("/dispatch", {**BODIES["/dispatch"], "customers": ["c2"]}),
    ("/dispatch", {k: v for k, v in BODIES["/dispatch"].items() if k != "customers"}),
])
def test_a_key_limited_to_some_ids_gets_403_for_any_other(client, keys, path, body):
    r = client.post(path, json=body, headers=bearer(keys["limited"]))
    assert r.status_code == 403, r.text
    assert r.json()["type"] == "PermissionDeniedError"


def test_a_limited_key_reaches_its_own_ids(client, keys):
    r = client.post("/dispatch", json={**BODIES["/dispatch"], "customers": ["cx"],
                                       "start": "2024-03-21T14:00:00+08:00",
                                       "end": "2024-03-21T16:00:00+08:00",
                                       "notice_time": "2024-03-21T10:00:00+08:00"},
                    headers=bearer(keys["limited"]))
    assert r.status_code == 200, r.text
    r = client.post("/forecast", json=BODIES["/forecast"], headers=bearer(keys["limited"]))
    assert r.status_code == 503, r.text  # admitted: load_x has no champion here


def test_rate_limit_answers_429_with_retry_after(client, keys):
    statuses = [client.post("/forecast", json=BODIES["/forecast"],
                            headers=bearer(keys["slow"])) for _ in range(3)]
    assert [r.status_code for r in statuses] == [503, 503, 429]
    assert 1 <= int(statuses[2].headers["retry-after"]) <= 30
    assert statuses[2].json()["type"] == "RateLimitedError"


# -- signed requests ------------------------------------------------------------------------

def _signed_post(client, key, body: bytes, **kw):
    headers = {**signed_headers(key, body, **kw), "Content-Type": "application/json"}
    return client.post("/forecast", content=body, headers=headers), headers


def test_a_signed_request_is_admitted_once(client, keys):
    body = json.dumps(BODIES["/forecast"]).encode()
    first, headers = _signed_post(client, keys["signed"], body)
    assert first.status_code == 503, first.text  # admitted; no champion
    replay = client.post("/forecast", content=body, headers=headers)
    assert replay.status_code == 401 and "replayed" in replay.json()["error"]
    assert replay.json()["type"] == "SignatureError"


def test_a_tampered_signed_request_is_refused(client, keys):
    body = json.dumps(BODIES["/forecast"]).encode()
    headers = {**signed_headers(keys["signed"], body), "Content-Type": "application/json"}
    other = body.replace(b"load_x", b"load_y")
    r = client.post("/forecast", content=other, headers=headers)
    assert r.status_code == 401 and "does not match" in r.json()["error"]


def test_a_stale_or_unsigned_request_is_refused(client, keys):
    body = json.dumps(BODIES["/forecast"]).encode()
    stale, _ = _signed_post(client, keys["signed"], body, now=time.time() - 400)
    assert stale.status_code == 401 and "stale" in stale.json()["error"]
    unsigned = client.post("/forecast", content=body, headers={
        **bearer(keys["signed"]), "Content-Type": "application/json"})
    assert unsigned.status_code == 401 and "requires signed" in unsigned.json()["error"]


# -- hardening ------------------------------------------------------------------------------

def test_a_body_over_one_megabyte_is_413(client, keys):
    body = b'{"site_id": "load_x", "pad": "' + b"x" * 1_000_100 + b'"}'
    r = client.post("/forecast", content=body, headers={**bearer(keys["admin"]),
                                                        "Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["type"] == "PayloadTooLargeError"


@pytest.mark.parametrize("content_type", ["multipart/form-data", "text/plain", None])
def test_a_body_that_is_not_declared_json_is_415(client, keys, content_type):
    headers = {**bearer(keys["admin"]), **({"Content-Type": content_type} if content_type
                                           else {})}
    r = client.post("/forecast", content=json.dumps(BODIES["/forecast"]).encode(),
                    headers=headers)
    assert r.status_code == 415 and "application/json" in r.json()["error"]


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_nan_and_infinity_are_refused(client, keys, number):
    body = json.dumps(BODIES["/dispatch"]).replace("100.0", number, 1).encode()
    r = client.post("/dispatch", content=body, headers={**bearer(keys["admin"]),
                                                        "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["type"] == "InvalidNumberError"


@pytest.mark.parametrize("path, change, hint", [
    ("/dispatch", {"customers": [f"c{i}" for i in range(501)]}, "at most 500"),
    ("/response-likelihood", {"customers": [f"c{i}" for i in range(501)]}, "at most 500"),
    ("/baseline", {"end": "2024-03-28T14:00:00+08:00"}, "at most 7 days"),
    ("/dispatch", {"end": "2024-03-28T14:00:00+08:00"}, "at most 7 days"),
    ("/forecast", {"start": "2024-03-26T00:00:00+08:00", "end": "2024-05-11T00:00:00+08:00"},
     "at most 45 days"),
])
def test_requests_beyond_a_bound_are_422_with_the_bound(client, keys, path, change, hint):
    r = client.post(path, json={**BODIES[path], **change}, headers=bearer(keys["admin"]))
    assert r.status_code == 422, r.text
    assert hint in r.json()["error"] and r.json()["type"] == "BoundExceededError"


@pytest.mark.parametrize("path, change, field", [
    ("/dispatch", {"target_kw": False}, "target_kw"),  # false is not a number
    ("/dispatch", {"target_kw": "2000"}, "target_kw"),  # nor is text
    ("/dispatch", {"allow_approval": "yes"}, "allow_approval"),  # "yes" is not a boolean
    ("/baseline", {"start": 1710914400}, "start"),  # an epoch number is not a time
    ("/forecast", {"issue_time": "9999-12-31T12:00:00+08:00"}, "issue_time"),
    ("/forecast", {"horizon_minutes": 60.5}, "horizon_minutes"),
    ("/forecast", {"unknown_field": 1}, "unknown_field"),  # unknown fields are refused
    ("/capability", {"customers": ["nobody"], "thresholds": {"level": 2}}, "thresholds"),
    ("/response-likelihood", {"target_kw": [0.0]}, "commits nothing"),
    ("/response-likelihood", {"target_kw": [1e308]}, "target_kw"),
    ("/response-likelihood", {"customers": ["a", "b", "a"]}, "more than once"),
])
def test_strict_types_refuse_what_json_does_not_say(client, keys, path, change, field):
    r = client.post(path, json={**BODIES[path], **change}, headers=bearer(keys["admin"]))
    assert r.status_code == 400, r.text
    assert field in r.text


def test_a_huge_id_is_refused_and_never_echoed(client, keys, caplog):
    huge = "x" * 300_000
    r = client.post("/forecast", json={**BODIES["/forecast"], "site_id": huge},
                    headers=bearer(keys["admin"]))
    assert r.status_code == 400 and len(r.text) < 5_000
    assert all(len(record.getMessage()) < 5_000 for record in caplog.records)


def test_error_messages_show_no_server_paths(client, keys, env):
    r = client.post("/forecast", json={**BODIES["/forecast"], "site_id": "ghost"},
                    headers=bearer(keys["admin"]))
    assert r.status_code == 404
    assert "<server path>" in r.json()["error"] and env["VPP_DATA_DIR"] not in r.text


def test_an_invalid_body_is_one_warning_line_not_an_error_traceback(client, keys, caplog):
    with caplog.at_level("INFO"):
        r = client.post("/dispatch", json={**BODIES["/dispatch"], "target_kw": "2000"},
                        headers=bearer(keys["admin"]))
    assert r.status_code == 400
    mine = [rec for rec in caplog.records if "invalid request body" in rec.getMessage()]
    assert mine and all(rec.levelname == "WARNING" and rec.exc_info is None for rec in mine)
    assert not [rec for rec in caplog.records if rec.levelname == "ERROR"]


def test_an_unexpected_error_is_a_500_without_details(client, keys, monkeypatch):
    import serving.service

    def broken(*args, **kwargs):
        raise RuntimeError("internal detail /srv/secret/path")

    monkeypatch.setattr(serving.service, "handle_dispatch", broken)
    r = client.post("/dispatch", json=BODIES["/dispatch"], headers=bearer(keys["admin"]))
    assert r.status_code == 500
    assert "error" in r.json()
    assert "secret" not in r.text and "Traceback" not in r.text


# -- audit ----------------------------------------------------------------------------------

def test_the_audit_log_records_each_call_and_no_secret(client, keys, env):
    before = len(audit_lines(env))
    sent = json.dumps(BODIES["/baseline/measure"]).encode()
    calls = [client.post("/baseline/measure", content=sent,
                         headers={**bearer(keys["admin"]), "Content-Type": "application/json"}),
             client.post("/forecast", json=BODIES["/forecast"]),
             client.post("/dispatch", json=BODIES["/dispatch"],
                         headers=bearer(keys["forecast:read"]))]
    assert [c.status_code for c in calls] == [404, 401, 403]
    lines = audit_lines(env)[before:]
    assert len(lines) == 3
    records = [json.loads(line) for line in lines]
    admin_id = parse_key(keys["admin"])[0]
    assert [(r["endpoint"], r["status"]) for r in records] == [
        ("/baseline/measure", 404), ("/forecast", 401), ("/dispatch", 403)]
    assert records[0]["key_id"] == admin_id and records[0]["client"] == "client-admin"
    assert records[0]["body_sha256"] == hashlib.sha256(sent).hexdigest()
    assert records[1]["key_id"] is None and records[1]["reason"] == "missing_key"
    assert all(r["latency_ms"] >= 0 and r["time"].endswith("+00:00") for r in records)
    text = Path(env["VPP_AUDIT_LOG"]).read_text()
    for key in keys.values():
        secret = parse_key(key)[1]
        assert key not in text and secret not in text and signing_key(secret) not in text
    assert "123.456" not in text  # no raw readings


def test_vpp_audit_tail_prints_the_last_calls(client, keys, env):
    from typer.testing import CliRunner

    from pipelines.cli import app

    client.post("/forecast", json=BODIES["/forecast"], headers=bearer(keys["forecast:read"]))
    result = CliRunner().invoke(app, ["audit", "tail", "-n", "1", "--json"])
    assert result.exit_code == 0, result.output
    (record,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["endpoint"] == "/forecast" and record["status"] == 503


# -- the key store and its commands ---------------------------------------------------------

def test_the_store_keeps_no_secret(env, keys):
    db = env["VPP_KEYS_URL"].removeprefix("sqlite:///")
    dump = "\n".join(sqlite3.connect(db).iterdump())
    for key in keys.values():
        assert parse_key(key)[0] in dump and parse_key(key)[1] not in dump
    assert oct(os.stat(db).st_mode & 0o777) == "0o600"


def test_vpp_keys_create_list_revoke(env):
    from typer.testing import CliRunner

    from pipelines.cli import app

    runner = CliRunner()
    made = runner.invoke(app, ["keys", "create", "--client", "platform", "--scopes",
                               "forecast:read,dispatch:write", "--sites", "load_x,cx"])
    assert made.exit_code == 0, made.output
    (key,) = [line for line in made.stdout.splitlines() if line.startswith("vpp_")]
    key_id = parse_key(key)[0]
    listed = runner.invoke(app, ["keys", "list"])
    assert key_id in listed.stdout and parse_key(key)[1] not in listed.stdout
    assert "platform" in listed.stdout and "cx,load_x" in listed.stdout
    assert runner.invoke(app, ["keys", "revoke", key_id]).exit_code == 0
    again = runner.invoke(app, ["keys", "revoke", key_id])
    assert again.exit_code == 2 and "already revoked" in again.output
    bad = runner.invoke(app, ["keys", "create", "--client", "x", "--scopes", "forecast:write"])
    assert bad.exit_code == 2 and "unknown scope" in bad.output


def test_local_key_file_is_reused_and_private(env, tmp_path):
    from pipelines.cli_keys import local_key

    path = tmp_path / "local_api_key"
    key, created = local_key(path)
    assert created and oct(path.stat().st_mode & 0o777) == "0o600"
    assert local_key(path) == (key, False)
    KeyStore().revoke(parse_key(key)[0])
    assert local_key(path)[1]  # a revoked key is replaced


# -- the middleware alone, in front of a stub app --------------------------------------------

def _call(middleware, body: bytes, headers: dict[str, str], chunks: int = 1):
    """Run one POST through ``middleware``; (status, headers, body) of the response."""
    parts = [body[i::chunks] for i in range(chunks)] if chunks > 1 else [body]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
                for i, p in enumerate(parts)]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    headers = {"Content-Type": "application/json", **headers}
    scope = {"type": "http", "method": "POST", "path": "/forecast",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(middleware(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent[1:])


async def _version_app(scope, receive, send):
    message = await receive()
    assert message["body"].startswith(b"{")  # the body buffered by the middleware, replayed
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body",
                "body": b'{"site_id": "load_x", "model_version": "load-load_x/7", "points": []}'})


async def _broken_app(scope, receive, send):
    raise RuntimeError("boom /etc/secret")


def test_middleware_audits_the_model_version_answered(env, keys, tmp_path):
    audit = AuditLog(tmp_path / "a.jsonl")
    mw = SecurityMiddleware(_version_app, audit=audit)
    status, _ = _call(mw, b'{"site_id": "load_x"}', bearer(keys["admin"]))
    assert status == 200
    (record,) = audit_tail(tmp_path / "a.jsonl")
    assert record["model_version"] == "load-load_x/7" and record["status"] == 200


def test_middleware_counts_a_streamed_body_against_the_limit(env, keys, tmp_path):
    mw = SecurityMiddleware(_version_app, audit=AuditLog(tmp_path / "a.jsonl"),
                            settings=Settings(max_body_bytes=100))
    status, body = _call(mw, b'{"x": "' + b"y" * 200 + b'"}', bearer(keys["admin"]), chunks=4)
    assert status == 413 and b"larger than 100 bytes" in body


def test_middleware_turns_an_escaping_error_into_a_generic_500(env, keys, tmp_path):
    mw = SecurityMiddleware(_broken_app, audit=AuditLog(tmp_path / "a.jsonl"))
    status, body = _call(mw, b"{}", bearer(keys["admin"]))
    assert status == 500 and b"secret" not in body and b"Traceback" not in body
    assert json.loads(body)["type"] == "InternalError"


def test_no_auth_mode_admits_without_a_key_but_still_audits(env, tmp_path):
    mw = SecurityMiddleware(_version_app, audit=AuditLog(tmp_path / "a.jsonl"),
                            settings=Settings(auth=False))
    status, _ = _call(mw, b'{"site_id": "load_x"}', {})
    assert status == 200
    assert audit_tail(tmp_path / "a.jsonl")[0]["key_id"] is None


def test_websockets_are_closed(env, tmp_path):
    mw = SecurityMiddleware(_version_app, audit=AuditLog(tmp_path / "a.jsonl"))
    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(mw({"type": "websocket", "path": "/forecast", "headers": []}, None, send))
    assert sent == [{"type": "websocket.close", "code": 1008}]


def test_rotation_keeps_the_audit_log_bounded(tmp_path):
    audit = AuditLog(tmp_path / "a.jsonl", max_bytes=2000, backups=2)
    for i in range(100):
        audit.write(key_id="k", endpoint="/forecast", status=200, latency_ms=1.0, n=i)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["a.jsonl", "a.jsonl.1", "a.jsonl.2"]
    assert all(p.stat().st_size <= 2000 for p in tmp_path.iterdir())
    assert [r["n"] for r in audit_tail(tmp_path / "a.jsonl", n=3)] == [97, 98, 99]


# -- a real server --------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.integration
def test_real_bentoml_server_requires_a_key(env, keys):
    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "bentoml", "serve",
                             "serving.service:VPPService", "--host", "127.0.0.1", "--port",
                             str(port)], cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
            time.sleep(0.5)
        body = {"customer_id": "cx", "method": "similar_days", **WINDOW}
        assert httpx.post(f"{url}/baseline", json=body, timeout=30).status_code == 401
        r = httpx.post(f"{url}/baseline", json=body, timeout=60,
                       headers=bearer(keys["baseline:read"]))
        assert r.status_code == 200, r.text
        assert len(r.json()["points"]) == 8
        metrics = httpx.get(f"{url}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert 'vpp_api_refusals_total{reason="missing_key",status="401"}' in metrics.text
        assert "bentoml_service_request_duration_seconds" in metrics.text
        records = audit_tail(Path(env["VPP_AUDIT_LOG"]), n=2)
        assert [(r["endpoint"], r["status"]) for r in records] == [("/baseline", 401),
                                                                    ("/baseline", 200)]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
