"""The BentoML service: over ASGI in-process, and one real `bentoml serve` on a free port."""

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from factories import asgi_client, write_portfolio

from forecasting.portfolio import read_portfolio
from pipelines.config import TrainingConfig
from pipelines.training import train_site

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
DAY_AHEAD = {"site_id": "load_x", "issue_time": "2024-04-06T12:00:00+08:00",
             "horizon": "day_ahead"}


RESOURCES = """resource_id,customer_id,name,level,capacity_kw,response_minutes,min_notice_minutes,max_duration_minutes,cost_cny_per_mwh,requires_approval
cx_r1,cx,battery,I,200,1,0,240,300,False
cx_r2,cx,chiller setback,II,150,10,15,180,100,False
cx_r3,cx,process turndown,III,400,180,1440,480,50,False
"""


# settled events of cx (achievement 1.0, 0.5, 0.9): on Saturdays, away from the test days
EVENTS = """event_id,customer_id,event_type,notice_time,start,end,target_kw,actual_kw
e1,cx,day_ahead,2024-03-02T10:00:00+08:00,2024-03-02T14:00:00+08:00,2024-03-02T16:00:00+08:00,100,100
e2,cx,day_ahead,2024-03-09T10:00:00+08:00,2024-03-09T14:00:00+08:00,2024-03-09T16:00:00+08:00,100,50
e3,cx,day_ahead,2024-03-16T10:00:00+08:00,2024-03-16T14:00:00+08:00,2024-03-16T16:00:00+08:00,100,90
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A portfolio and a registry holding a champion for load_x."""
    tmp = tmp_path_factory.mktemp("svc")
    data = write_portfolio(tmp / "pf", days=40)
    (data / "resources.csv").write_text(RESOURCES)
    (data / "events.csv").write_text(EVENTS)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    env = {"VPP_DATA_DIR": str(data), "MLFLOW_TRACKING_URI": uri,
           "MLFLOW_ARTIFACTS_DIR": str(tmp / "artifacts"),
           "VPP_KEYS_URL": f"sqlite:///{tmp / 'keys.db'}",
           "VPP_AUDIT_LOG": str(tmp / "audit" / "audit.jsonl"),
           "VPP_FORECAST_STORE_URL": str(tmp / "forecast_store"),
           "VPP_REGISTRY_TTL_SECONDS": "1", "VPP_STORE_RECHECK_SECONDS": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    train_site(read_portfolio(data), "load_x",
               TrainingConfig(n_estimators=40, holdout_days=5, calibration_days=5))
    yield env
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def api_key(served) -> str:
    """A key of the module's key store with every scope."""
    from inference.keys import KeyStore

    return KeyStore().create("tests", "admin")[1]


@pytest.fixture(scope="module")
def client(served, api_key):
    with asgi_client(headers={"Authorization": f"Bearer {api_key}"}) as c:
        yield c


def test_day_ahead_forecast_over_asgi(client):
    r = client.post("/forecast", json=DAY_AHEAD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == "load-load_x/1"
    assert len(body["points"]) == 96
    assert body["points"][0]["timestamp"] == "2024-04-07T00:00:00+08:00"
    p = body["points"][40]["values_kw"]
    assert p["q0.1"] <= p["q0.5"] <= p["q0.9"]


def test_any_quantiles_and_explicit_window(client):
    r = client.post("/forecast", json={"site_id": "load_x",
                                       "issue_time": "2024-04-06T09:00:00+08:00",
                                       "start": "2024-04-06T10:00:00+08:00",
                                       "end": "2024-04-06T12:00:00+08:00",
                                       "quantiles": [0.05, 0.5, 0.95]})
    assert r.status_code == 200, r.text
    pts = r.json()["points"]
    assert len(pts) == 8 and set(pts[0]["values_kw"]) == {"q0.05", "q0.5", "q0.95"}


@pytest.mark.parametrize("body,status,hint", [
    ({"site_id": "ghost"}, 404, "unknown site 'ghost'"),
    ({**DAY_AHEAD, "issue_time": "2024-04-06T12:00:00"}, 400, "timezone"),
    ({**DAY_AHEAD, "quantiles": [0.5, 1.5]}, 400, "strictly between 0 and 1"),
    ({"site_id": "load_x", "issue_time": "2024-04-06T12:00:00+08:00",
      "start": "2024-04-07T00:07:00+08:00", "end": "2024-04-07T02:00:00+08:00"}, 400, "grid"),
    ({"site_id": "load_x", "issue_time": "now"}, 422, "latest measurement"),
])
def test_bad_requests_get_4xx_with_a_fix(client, body, status, hint):
    r = client.post("/forecast", json=body)
    assert r.status_code == status, r.text
    assert hint.lower() in r.text.lower()


def test_now_on_a_historical_portfolio_says_which_issue_time_to_give(client):
    r = client.post("/forecast", json={"site_id": "load_x"})  # issue_time defaults to now
    assert r.status_code == 422, r.text
    message = r.json()["error"]
    assert "issue_time 'now' is" in message and "give an issue_time, e.g." in message


def _until(call, done, timeout_s: float = 10.0):
    """``call()`` until ``done(result)`` (the alias refresh runs every TTL / 2 = 0.5 s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = call()
        if done(result) or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_no_champion_is_503_with_the_reason(client, served):
    """A removed alias is seen without a restart, and so is its return."""
    from mlflow import MlflowClient

    registry = MlflowClient(served["MLFLOW_TRACKING_URI"])
    registry.delete_registered_model_alias("load-load_x", "champion")
    try:
        r = _until(lambda: client.post("/forecast", json={**DAY_AHEAD, "source": "compute"}),
                   lambda r: r.status_code != 200)
        assert r.status_code == 503 and "vpp train --kind load --site load_x" in r.text
        assert r.json()["type"] == "ModelNotFoundError"
    finally:
        registry.set_registered_model_alias("load-load_x", "champion", "1")
    assert client.post("/forecast", json=DAY_AHEAD).status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_vpp_serve_says_ready_and_its_example_request_works(served, tmp_path):
    """What a newcomer does after ``make run``: wait for READY, run the printed curl."""
    import httpx

    port = _free_port()
    key_file = tmp_path / "local_api_key"
    env = {**os.environ, **served, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "vpp"), "serve", "--data",
                             served["VPP_DATA_DIR"], "--port", str(port), "--local-key-file",
                             str(key_file)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "vpp serve ended: " + "".join(lines[-20:])
            lines.append(line)
            if line.startswith("READY"):
                break
        assert lines[-1].startswith("READY") and "registry ok" in lines[-1], lines[-5:]
        assert all(not line.startswith("example request") for line in lines[:-1])
        key = next(ln.split("=", 1)[1].strip() for ln in lines if "export VPP_API_KEY=" in ln)
        assert key == key_file.read_text().strip()
        curl = proc.stderr.readline() and proc.stderr.readline().strip()  # "example request:"
        assert curl.startswith("curl ") and "$VPP_API_KEY" in curl
        out = subprocess.run(["bash", "-c", curl + " -w '\\n%{http_code}'"], check=True, text=True,
                             capture_output=True, env={**os.environ, "VPP_API_KEY": key},
                             timeout=60)
        body, status = out.stdout.rsplit("\n", 1)
        assert status == "200", out.stdout[-500:]
        assert len(__import__("json").loads(body)["points"]) == 96

        # a slow request does not hold a fast one behind it (the endpoints run on threads)
        auth = {"Authorization": f"Bearer {key}"}
        url = f"http://127.0.0.1:{port}"
        slow_body = {**EVENT, "method": "auto", "start": "2024-03-20T00:00:00+08:00",
                     "end": "2024-03-22T00:00:00+08:00"}
        fast_body = {**DAY_AHEAD, "issue_time": "2024-04-05T12:00:00+08:00"}

        async def both():
            async with httpx.AsyncClient(base_url=url, headers=auth, timeout=120) as c:
                slow = [asyncio.create_task(c.post("/baseline", json=slow_body))
                        for _ in range(3)]
                await asyncio.sleep(0.2)
                t1 = time.perf_counter()
                fast = await c.post("/forecast", json=fast_body)
                fast_s = time.perf_counter() - t1
                await asyncio.gather(*slow)
                return fast, fast_s, time.perf_counter() - t1

        fast, fast_s, slow_s = asyncio.run(both())
        assert fast.status_code == 200, fast.text
        # queued behind three slow ones it would wait about 3 x slow_alone
        assert fast_s < max(0.5 * slow_s, 1.0), (fast_s, slow_s)
    finally:
        _stop(proc)
        time.sleep(0.1)
    # vpp serve took its bentoml server down with it (no orphan left on the port)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


EVENT = {"customer_id": "cx", "start": "2024-03-20T14:00:00+08:00",
         "end": "2024-03-20T16:00:00+08:00", "notice_time": "2024-03-20T10:00:00+08:00"}


def test_baseline_endpoint_rule_method(client):
    r = client.post("/baseline", json={**EVENT, "method": "similar_days"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "similar_days" and len(body["points"]) == 8
    assert body["points"][0]["timestamp"] == "2024-03-20T14:00:00+08:00"  # local offset
    # the factory's working-hours block: 500 + 400 kW on working days (noise sd 20 kW)
    assert all(800 < p["baseline_kw"] < 1000 for p in body["points"])


def test_baseline_measure_endpoint_reports_achievement(client):
    readings = [{"timestamp": f"2024-03-20T14:{m:02d}:00+08:00", "load_kw": 700.0}
                for m in range(0, 30, 5)]  # 5-minute readings for the first half hour
    r = client.post("/baseline/measure", json={**EVENT, "method": "similar_days",
                                               "target_kw": 200.0, "readings": readings})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["n_measured"] == 2 and body["n_intervals"] == 8
    assert 0.8 < body["achievement"] < 1.2  # baseline ~900 kW, actual 700 kW, target 200 kW


def test_baseline_errors(client):
    r = client.post("/baseline", json={**EVENT, "customer_id": "nobody"})
    assert r.status_code == 404, r.text
    r = client.post("/baseline", json={**EVENT, "method": "ml"})
    assert r.status_code == 503 and "baseline" in r.text


DISPATCH = {"target_kw": 250.0, "start": "2024-04-08T14:00:00+08:00",
            "end": "2024-04-08T16:00:00+08:00", "notice_time": "2024-04-08T10:00:00+08:00"}


def test_dispatch_endpoint_allocates_eligible_resources(client):
    r = client.post("/dispatch", json=DISPATCH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["feasible"] and body["shortfall_kw"] == 0
    used = {a["resource_id"]: a["allocated_kw"] for a in body["allocations"]
            if a["allocated_kw"] > 0}
    assert set(used) <= {"cx_r1", "cx_r2"}  # level III needs a day's notice here
    assert body["planned_expected_kw"] >= 250.0 * 1.1 - 1e-6
    assert [e["resource_id"] for e in body["excluded"]] == ["cx_r3"]
    assert "min_notice_minutes 1440" in body["excluded"][0]["reason"]
    assert body["assumed_reliability"] == []  # cx has settled events before the notice
    # Beta-shrunk history of cx: 2 of 3 delivered, portfolio rate 2/3 -> 2/3
    assert [a["p_deliver"] for a in body["allocations"]] == [pytest.approx(2 / 3)] * 2
    assert 0 <= body["p_meets_threshold"] <= 1
    assert body["mode"] == "automatic" and not body["approval_required"]
    assert len(body["plans"]) == 1 and body["plans"][0]["approval_required"] is False
    assert body["correlation"] == 0 and "fewer than 5" in body["correlation_note"]


def test_dispatch_above_the_approval_threshold_answers_three_plans(client):
    r = client.post("/dispatch", json={**DISPATCH, "approval_threshold_kw": 100})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["mode"] == "semi_automatic" and body["approval_required"]
    assert body["approval_reasons"] == [
        "target 250.0 kW exceeds the approval threshold 100.0 kW"]
    names = [p["name"] for p in body["plans"]]
    assert names == ["lowest_cost", "highest_reliability", "least_production_impact"]
    assert all(p["approval_required"] for p in body["plans"])
    first = body["plans"][0]
    for key in ("p_meets_threshold", "p_meets_threshold_independent", "total_cost_cny",
                "planned_expected_kw", "allocations"):
        assert body[key] == first[key]
    # cx's share is of load_x's contracted 2,000 kW (sites.csv)
    (cx,) = first["by_customer"]
    assert cx["curtailed_share"] == pytest.approx(cx["allocated_kw"] / 2000.0)
    r = client.post("/dispatch", json={**DISPATCH, "approval_threshold_kw": -1})
    assert r.status_code == 400 and "approval_threshold_kw" in r.text


@pytest.mark.parametrize("change, status, hint", [
    ({"customers": ["nobody"]}, 404, "no resources for customer"),
    ({"notice_time": "2024-04-08T10:00:00"}, 400, "notice_time"),
    ({"target_kw": -5}, 422, "valley filling"),  # understood, not planned yet: 422
    ({"event_type": "valley_filling"}, 422, "valley filling"),
    ({"target_kw": 0}, 400, "target_kw"),
    ({"notice_time": "2024-04-08T14:00:00+08:00", "customers": ["cx"]}, 400, "notice"),
])
def test_dispatch_bad_requests_get_4xx_with_a_fix(client, change, status, hint):
    r = client.post("/dispatch", json={**DISPATCH, **change})
    assert r.status_code == status, r.text
    assert hint in r.text


LIKELIHOOD = {"customers": ["cx"], "start": "2024-04-08T14:00:00+08:00",
              "end": "2024-04-08T16:00:00+08:00", "notice_time": "2024-04-08T10:00:00+08:00",
              "target_kw": [100.0]}


def test_response_likelihood_endpoint_falls_back_to_the_historical_rate(client):
    r = client.post("/response-likelihood", json=LIKELIHOOD)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "historical_rate"  # no response-likelihood champion registered
    assert body["threshold"] == 0.8
    (cx,) = body["customers"]
    assert cx["customer_id"] == "cx"
    assert cx["p_deliver"] == pytest.approx(2 / 3, abs=1e-4)
    assert cx["expected_achievement"] == pytest.approx(0.8, abs=1e-4)


@pytest.mark.parametrize("change, status, hint", [
    ({"customers": ["nobody"]}, 404, "unknown customer"),
    ({"target_kw": [1.0, 2.0]}, 400, "one value or one per customer"),
    ({"notice_time": "2024-04-08T15:00:00+08:00"}, 400, "notice_time <= start"),
])
def test_response_likelihood_bad_requests(client, change, status, hint):
    r = client.post("/response-likelihood", json={**LIKELIHOOD, **change})
    assert r.status_code == status, r.text
    assert hint in r.text


def test_dispatch_with_model_reliability_and_no_champion_is_503(client):
    r = client.post("/dispatch", json={**DISPATCH, "reliability": "model"})
    assert r.status_code == 503, r.text
    assert "no response-likelihood champion" in r.text
    auto = client.post("/dispatch", json={**DISPATCH, "reliability": "auto"})
    assert auto.status_code == 200 and auto.json()["reliability_source"].startswith("events")


def test_capacity_and_bid_endpoints_use_the_served_champion(client):
    window = {"start": "2024-04-08T14:00:00+08:00", "end": "2024-04-08T16:00:00+08:00",
              "notice_time": "2024-04-08T10:00:00+08:00"}
    r = client.post("/capacity", json=window)
    assert r.status_code == 200, r.text
    body = r.json()
    rows = {row["level"]: row for row in body["by_customer"] if row["customer_id"] == "cx"}
    assert rows["III"]["p50_kw"] == 0  # a day's notice needed, 4 h given
    assert rows["I"]["p50_kw"] == pytest.approx(200.0)
    assert all("load-load_x/1" in row["source"] for row in body["by_customer"])  # the champion
    r = client.post("/bid/capacity", json={**window, "market": "day_ahead", "confidence": 0.8})
    assert r.status_code == 200, r.text
    bid = r.json()
    assert 0 < bid["offer_mw"] <= 0.35 and bid["p_effective"] >= 0.8
    r = client.post("/bid/capacity", json={**window, "market": "spot", "confidence": 0.9})
    assert r.status_code == 400 and "market" in r.text


def test_forecast_answers_the_stored_nightly_forecast_when_asked_or_auto(client, served):
    import time

    import pandas as pd

    from inference.forecast_store import open_store

    computed = client.post("/forecast", json={**DAY_AHEAD, "source": "compute"}).json()
    assert computed["source"] == "compute"
    # the nightly job's rows for that issue (values shifted so the test sees which answered)
    rows = pd.DataFrame([{"site_id": "load_x", "issue_time": pd.Timestamp(DAY_AHEAD["issue_time"]),
                          "timestamp": pd.Timestamp(p["timestamp"]),
                          **{k: v + 1000.0 for k, v in p["values_kw"].items()},
                          "model_version": "load-load_x/1", "quality": "ok"}
                         for p in computed["points"]])
    open_store(served["VPP_FORECAST_STORE_URL"]).write(rows, "load")
    # the computed answer may be served from the cache for VPP_STORE_RECHECK_SECONDS (1 s
    # here) without asking the store; after it, the store is asked and its forecast answers
    time.sleep(1.1)
    stored = client.post("/forecast", json=DAY_AHEAD).json()  # auto is the default
    assert stored["source"] == "store"
    assert stored["points"][5]["values_kw"]["q0.5"] == pytest.approx(
        computed["points"][5]["values_kw"]["q0.5"] + 1000.0, abs=1e-3)
    # a level the store does not hold: auto computes, store refuses with the reason
    other = {**DAY_AHEAD, "quantiles": [0.05, 0.5]}
    assert client.post("/forecast", json=other).json()["source"] == "compute"
    r = client.post("/forecast", json={**other, "source": "store"})
    assert r.status_code == 404 and "no stored forecast" in r.json()["error"]


def test_dispatch_event_types_are_the_contracts():
    import typing

    from forecasting.contract import EVENT_TYPES
    from serving.dispatch_api import EventType

    assert set(typing.get_args(EventType)) == set(EVENT_TYPES)


def test_a_repeated_question_is_answered_from_the_cache_on_the_event_loop(client, served):
    """The second identical request is a cache hit (counted in /readyz) with the same body;
    the answer cache keeps its confirmation time, and an answer older than the store
    re-check is not served without asking the store."""
    from serving.forecast_api import AnswerCache

    body = {**DAY_AHEAD, "issue_time": "2024-03-20T12:00:00+08:00", "source": "auto"}
    first = client.post("/forecast", json=body)
    hits = client.get("/readyz").json()["answer_cache"]["hits"]
    second = client.post("/forecast", json=body)
    assert second.status_code == first.status_code == 200
    assert second.json() == first.json()
    assert client.get("/readyz").json()["answer_cache"]["hits"] == hits + 1
    cache = AnswerCache(4)
    cache.put(("k",), "answer")
    assert cache.get(("k",), max_age_s=60) == "answer"
    assert cache.get(("k",), max_age_s=-1) is None  # older than any re-check: ask again
    cache.touch(("k",))
    assert cache.get(("k",)) == "answer"
