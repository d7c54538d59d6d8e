"""Bounded load test of the API on 127.0.0.1: latency, throughput, errors; prints, asserts
nothing, stops by itself.

Run from the repository root (about 5 minutes on 2 cores)::

    .venv/bin/python -m benchmarks.api_load [--requests 400] [--clients 8,32]

Set-up, all in a temporary directory: the SYNTHETIC sample portfolio over 2025-01..06 (its
resources replaced by 1,000 random ones over its 20 customers, as ``benchmarks.dispatch``
draws them), one load site trained with the product's defaults (``train_site``), a key
store with one key (no rate limit in the way) and an audit log. Three ``bentoml serve``
processes, one worker each:

- ``VPPService`` as shipped (API key, scopes, audit log: ``serving.auth``);
- the same service without the security middleware (``UnguardedVPPService`` below);
- the floor: a bare BentoML service whose ``/forecast`` answers the LightGBM boosters'
  predict on the same day-ahead features, built once at start-up (``FloorService``).

Scenarios (each after a warm-up): ``POST /forecast`` D+1 of one site at each ``--clients``
count against the service and the floor (the gap printed as a ratio): the same question
again (answered from the service's answer cache after the first) and a different issue
time per request (each computed: ``uncached``), ``/dispatch``
(1,000 resources, 20 MW: one automatic plan with the approval threshold raised, and the
three plans of semi-automatic mode) and ``/baseline`` at 8 clients, then single-client requests alternating
between the service with and without the middleware (what authentication and the audit
add at p50), and the middleware alone in-process around a stub app. Issue 10's targets:
p99 <= 30 ms and 0 errors for /forecast at 8 clients; auth + audit <= 1 ms at p50.

The load generator (asyncio + httpx) runs on the same 2 cores as the server: its own CPU
is part of every figure, as it would be for a client on the same host.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import bentoml
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SITE = "load_c01"
ISSUE = "2025-06-29T12:00:00+08:00"
FORECAST = {"site_id": SITE, "issue_time": ISSUE, "horizon": "day_ahead"}
DISPATCH = {"target_kw": 20_000.0, "start": "2025-06-30T14:00:00+08:00",
            "end": "2025-06-30T16:00:00+08:00", "notice_time": "2025-06-30T10:00:00+08:00",
            "reliability": "history"}
BASELINE = {"customer_id": "c01", "start": "2025-06-30T14:00:00+08:00",
            "end": "2025-06-30T16:00:00+08:00", "notice_time": "2025-06-30T10:00:00+08:00",
            "method": "x_of_y"}


# -- the two services besides VPPService (imported by `bentoml serve` in its own process) --

def __getattr__(name: str):
    """``UnguardedVPPService``: ``VPPService`` with its ASGI middlewares removed. Built on
    demand so that importing this module leaves the shipped service untouched."""
    if name == "UnguardedVPPService":
        from serving.service import VPPService

        VPPService.middlewares.clear()  # only in the benchmark's own server process
        return VPPService
    raise AttributeError(name)


@bentoml.service(traffic={"timeout": 60}, workers=1)
class FloorService:
    """The boosters of the champion answering the same request's features (built once)."""

    def __init__(self) -> None:
        from forecasting.features import build_features, window_known_at
        from forecasting.portfolio import read_portfolio
        from inference.forecast import horizon_window, target_index
        from inference.registry import ModelRegistry

        portfolio = read_portfolio(Path(os.environ["VPP_DATA_DIR"]))
        site = portfolio.site(SITE)
        issue = pd.Timestamp(ISSUE).tz_convert("UTC")
        forecaster = ModelRegistry().champion("load", SITE).forecaster
        targets = target_index(site, *horizon_window(site, issue, "day_ahead"))
        known = window_known_at(portfolio.site_data(SITE), targets, issue, forecaster.spec_)
        X = build_features(known, targets, pd.DatetimeIndex([issue] * len(targets)),
                           forecaster.spec_)
        self.values = X[forecaster.feature_names_].to_numpy(dtype=float)
        buckets = forecaster._bucket_of(X["lead_minutes"].to_numpy(dtype=float))
        self.parts = [(buckets == name, model) for name, model in forecaster.models_.items()
                      if (buckets == name).any()]
        self.columns = [f"q{q:g}" for q in forecaster.quantiles_]
        self.timestamps = [t.isoformat() for t in targets.tz_convert(site.timezone)]

    @bentoml.api(route="/forecast")
    def forecast(self, site_id: str, issue_time: str = "now", horizon: str = "day_ahead"
                 ) -> dict:
        pred = np.empty((len(self.values), len(self.columns)))
        for rows, model in self.parts:
            pred[rows] = np.sort(model.predict(self.values[rows]), axis=1)
        return {"site_id": site_id, "points": [
            {"timestamp": ts, "values_kw": dict(zip(self.columns, map(float, row),
                                                    strict=True))}
            for ts, row in zip(self.timestamps, pred, strict=True)]}


# -- set-up --------------------------------------------------------------------------------

def _prepare(tmp: Path) -> tuple[dict[str, str], str]:
    """Portfolio, trained champion, key store: (environment of the servers, API key)."""
    from benchmarks.dispatch import random_portfolio
    from forecasting.portfolio import read_portfolio
    from forecasting.synthetic import generate_portfolio
    from inference.keys import KeyStore
    from pipelines.training import train_site

    env = {"VPP_DATA_DIR": str(tmp / "portfolio"),
           "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
           "MLFLOW_ARTIFACTS_DIR": str(tmp / "artifacts"),
           "VPP_KEYS_URL": f"sqlite:///{tmp / 'keys.db'}",
           "VPP_AUDIT_LOG": str(tmp / "audit" / "audit.jsonl"),
           "BENTOML_HOME": str(tmp / "bentoml"), "OMP_NUM_THREADS": "1"}
    os.environ.update(env)
    t0 = time.perf_counter()
    data = generate_portfolio(tmp / "portfolio", start="2025-01-01", end="2025-07-01")
    resources, _, _ = random_portfolio(1000, seed=0)
    customers = sorted(pd.read_csv(data / "resources.csv")["customer_id"].unique())
    rng = np.random.default_rng(1)
    resources["customer_id"] = rng.choice(customers, len(resources))
    resources.to_csv(data / "resources.csv", index=False)
    print(f"portfolio (SYNTHETIC, 1,000 resources) in {time.perf_counter() - t0:.0f} s",
          flush=True)
    t0 = time.perf_counter()
    train_site(read_portfolio(data), SITE, kind="load")
    print(f"trained {SITE} in {time.perf_counter() - t0:.0f} s", flush=True)
    _, key = KeyStore().create("api-load-benchmark", "admin",
                               rate_limit_per_minute=10_000_000)
    return env, key


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(target: str, env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "bentoml", "serve", target, "--host",
                             "127.0.0.1", "--port", str(port)], cwd=ROOT,
                            env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _wait_ready(servers: dict[str, tuple[subprocess.Popen, str]], timeout_s: float = 180):
    import httpx

    deadline = time.monotonic() + timeout_s
    for name, (proc, url) in servers.items():
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} server exited with {proc.returncode}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} server not ready after {timeout_s} s")
            time.sleep(0.5)


# -- load ----------------------------------------------------------------------------------

async def _load(url: str, path: str, body, headers: dict[str, str], clients: int,
                total: int, warmup: int) -> dict:
    """``body``: one dict for every request, or a function of the request number."""
    import httpx

    make = body if callable(body) else (lambda _: body)
    content = json.dumps(make(-1)).encode()
    headers = {**headers, "Content-Type": "application/json"}
    latencies: list[float] = []
    errors = 0
    sent = 0
    async with httpx.AsyncClient(base_url=url, timeout=120,
                                 limits=httpx.Limits(max_connections=clients)) as client:
        for _ in range(warmup):
            await client.post(path, content=content, headers=headers)

        async def worker():
            nonlocal errors, sent
            while sent < total:
                sent += 1
                data = content if not callable(body) else json.dumps(make(sent)).encode()
                t0 = time.perf_counter()
                try:
                    r = await client.post(path, content=data, headers=headers)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append((time.perf_counter() - t0) * 1000)
                errors += not ok

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        wall = time.perf_counter() - t0
    lat = np.array(latencies)
    return {"requests": len(lat), "p50_ms": float(np.percentile(lat, 50)),
            "p99_ms": float(np.percentile(lat, 99)), "req_per_s": len(lat) / wall,
            "errors": errors}


def _alternating(guarded: str, bare: str, key: str, n: int, body: dict, status: int) -> dict:
    """Single-client /forecast p50 (ms), alternating between the two servers so that both
    see the same background load; only answers with ``status`` count."""
    import httpx

    content = json.dumps(body).encode()
    times: dict[str, list[float]] = {"guarded": [], "bare": []}
    heads = {"guarded": {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
             "bare": {"Content-Type": "application/json"}}
    with httpx.Client(base_url=guarded, timeout=60) as g, httpx.Client(base_url=bare,
                                                                        timeout=60) as b:
        clients = {"guarded": g, "bare": b}
        for i in range(n + 20):
            order = ("guarded", "bare") if i % 2 else ("bare", "guarded")
            for name in order:
                t0 = time.perf_counter()
                r = clients[name].post("/forecast", content=content, headers=heads[name])
                if i >= 20 and r.status_code == status:
                    times[name].append((time.perf_counter() - t0) * 1000)
    return {name: float(np.median(v)) for name, v in times.items()}


def _middleware_alone(tmp: Path, key: str, n: int = 5000) -> dict:
    """Per-call time of a stub ASGI app with and without ``SecurityMiddleware`` (µs, p50)."""
    from inference.audit import AuditLog
    from serving.auth import SecurityMiddleware

    body = json.dumps(FORECAST).encode()
    answer = json.dumps({"site_id": SITE, "model_version": "load-load_c01/1", "points": [
        {"timestamp": "2025-06-30T00:00:00+08:00", "values_kw": {"q0.1": 1.0, "q0.5": 2.0,
                                                                "q0.9": 3.0}}] * 96}).encode()

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    guarded = SecurityMiddleware(app, audit=AuditLog(tmp / "bench-audit.jsonl"))
    scope = {"type": "http", "method": "POST", "path": "/forecast",
             "headers": [(b"authorization", f"Bearer {key}".encode()),
                         (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())]}

    async def run(target) -> float:
        times = []
        for _ in range(n):
            async def receive():
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message):
                pass

            t0 = time.perf_counter()
            await target(scope, receive, send)
            times.append(time.perf_counter() - t0)
        return float(np.median(times[n // 10:]) * 1e6)

    async def both():
        return await run(app), await run(guarded)

    bare_us, guarded_us = asyncio.run(both())
    return {"stub_us": bare_us, "with_middleware_us": guarded_us}


_ISSUES_ASKED = itertools.count(2)


def uncached(_: int) -> dict:
    """A D+1 forecast issued one more quarter-hour before ``ISSUE`` than any asked before in
    this run (each one computed: the answer cache holds finished answers per issue time)."""
    issue = pd.Timestamp(ISSUE) - pd.Timedelta(minutes=15 * next(_ISSUES_ASKED))
    return {**FORECAST, "issue_time": issue.isoformat(), "source": "compute"}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per scenario")
    parser.add_argument("--clients", default="8,32", help="concurrent /forecast clients")
    args = parser.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory(prefix="vpp-api-load-") as name:
        tmp = Path(name)
        env, key = _prepare(tmp)
        auth = {"Authorization": f"Bearer {key}"}
        servers = {"service": _serve("serving.service:VPPService", env, tmp / "service.log"),
                   "unguarded": _serve("benchmarks.api_load:UnguardedVPPService", env,
                                       tmp / "unguarded.log"),
                   "floor": _serve("benchmarks.api_load:FloorService", env,
                                   tmp / "floor.log")}
        try:
            t0 = time.perf_counter()
            _wait_ready(servers)
            print(f"3 servers ready in {time.perf_counter() - t0:.0f} s", flush=True)
            rows = []

            def scenario(label, server, path, body, n_clients, total, headers=auth):
                out = asyncio.run(_load(servers[server][1], path, body, headers, n_clients,
                                        total, warmup=min(20, total // 10)))
                rows.append({"scenario": label, "server": server, "clients": n_clients, **out})
                print(f"  {label} ({server}, {n_clients} clients): p50 {out['p50_ms']:.1f} ms, "
                      f"p99 {out['p99_ms']:.1f} ms, {out['req_per_s']:.0f} req/s, "
                      f"{out['errors']} errors", flush=True)

            for n in clients:
                scenario("POST /forecast D+1", "service", "/forecast", FORECAST, n,
                         args.requests)
                scenario("POST /forecast D+1 uncached", "service", "/forecast", uncached, n,
                         args.requests)
                scenario("POST /forecast D+1", "floor", "/forecast", FORECAST, n,
                         args.requests, headers={})
            scenario("POST /dispatch 1,000 resources, one plan", "service", "/dispatch",
                     {**DISPATCH, "approval_threshold_kw": 1e6}, 8, max(40, args.requests // 10))
            scenario("POST /dispatch 1,000 resources, three plans", "service", "/dispatch",
                     DISPATCH, 8, max(16, args.requests // 25))
            scenario("POST /baseline x_of_y", "service", "/baseline", BASELINE, 8,
                     max(80, args.requests // 5))
            seq = _alternating(servers["service"][1], servers["unguarded"][1], key,
                               args.requests // 2, FORECAST, 200)
            cheap = _alternating(servers["service"][1], servers["unguarded"][1], key,
                                 args.requests, {"site_id": "ghost"}, 404)
            alone = _middleware_alone(tmp, key)
        finally:
            for proc, _ in servers.values():
                proc.terminate()
            for proc, _ in servers.values():
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()

    table = pd.DataFrame(rows)
    print("\nLoad on 127.0.0.1 (one bentoml worker per server; client on the same 2 cores)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    for n in clients:
        here = table[table.clients == n]
        floor = here[(here.server == "floor")].iloc[0]
        for label in ("POST /forecast D+1", "POST /forecast D+1 uncached"):
            svc = here[(here.scenario == label) & (here.server == "service")].iloc[0]
            print(f"{label[5:]} at {n} clients: service / floor = p50 "
                  f"x{svc.p50_ms / floor.p50_ms:.1f}, p99 x{svc.p99_ms / floor.p99_ms:.1f}, "
                  f"throughput x{svc.req_per_s / floor.req_per_s:.2f} (target: p99 <= "
                  "30 ms at 8 clients, 0 errors)")
    for label, out in (("/forecast D+1", seq), ("/forecast of an unknown site (404)", cheap)):
        print(f"auth + audit, 1 client, {label} p50: {out['guarded']:.2f} ms with, "
              f"{out['bare']:.2f} ms without -> {out['guarded'] - out['bare']:+.2f} ms "
              "(target <= 1 ms)")
    print(f"middleware alone in-process (stub app, p50): {alone['stub_us']:.0f} us without, "
          f"{alone['with_middleware_us']:.0f} us with -> "
          f"+{alone['with_middleware_us'] - alone['stub_us']:.0f} us")


if __name__ == "__main__":
    main()
