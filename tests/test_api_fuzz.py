"""Schemathesis against the OpenAPI document a real ``bentoml serve`` publishes.

Every operation of ``/docs.json`` gets up to ``MAX_EXAMPLES`` generated requests (fixed
seed, no example database), sent with an admin key. Checked: no 5xx but the documented 503
(no champion registered: only ``load_x`` has one here), and every answer, errors included,
conforms to the response schema of the document as served (``serving.openapi`` corrects
BentoML's: OpenAPI 3.1 label, error bodies, info block), which is read unchanged.
"""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import schemathesis
from factories import write_portfolio
from hypothesis import HealthCheck, given, seed, settings
from schemathesis.checks import response_schema_conformance

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
MAX_EXAMPLES = 25
RESOURCES = """resource_id,customer_id,name,level,capacity_kw,response_minutes,min_notice_minutes,max_duration_minutes,cost_cny_per_mwh,requires_approval
cx_r1,cx,battery,I,200,1,0,240,300,False
cx_r2,cx,chiller setback,II,150,10,15,180,100,False
"""
EVENTS = """event_id,customer_id,event_type,notice_time,start,end,target_kw,actual_kw
e1,cx,day_ahead,2024-03-02T10:00:00+08:00,2024-03-02T14:00:00+08:00,2024-03-02T16:00:00+08:00,100,100
e2,cx,day_ahead,2024-03-09T10:00:00+08:00,2024-03-09T14:00:00+08:00,2024-03-09T16:00:00+08:00,100,50
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real server over a one-site portfolio with a champion: (base URL, admin key)."""
    from forecasting.portfolio import read_portfolio
    from inference.keys import KeyStore
    from pipelines.config import TrainingConfig
    from pipelines.training import train_site

    tmp = tmp_path_factory.mktemp("fuzz")
    data = write_portfolio(tmp / "pf", days=40)
    (data / "resources.csv").write_text(RESOURCES)
    (data / "events.csv").write_text(EVENTS)
    env = {"VPP_DATA_DIR": str(data), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp / 'mlflow.db'}",
           "MLFLOW_ARTIFACTS_DIR": str(tmp / "artifacts"),
           "VPP_KEYS_URL": f"sqlite:///{tmp / 'keys.db'}",
           "VPP_AUDIT_LOG": str(tmp / "audit.jsonl"), "OMP_NUM_THREADS": "1"}
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        train_site(read_portfolio(data), "load_x",
                   TrainingConfig(n_estimators=40, holdout_days=5, calibration_days=5))
        key = KeyStore().create("fuzz", "admin", rate_limit_per_minute=1_000_000)[1]
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "bentoml", "serve",
                             "serving.service:VPPService", "--host", "127.0.0.1", "--port",
                             str(port)], cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
        yield url, key
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def api_schema(server):
    url, _ = server
    document = httpx.get(f"{url}/docs.json", timeout=30).json()
    return schemathesis.openapi.from_dict(document)


def test_the_document_is_the_services_own(server):
    url, _ = server
    document = httpx.get(f"{url}/docs.json", timeout=30).json()
    assert document["openapi"] == "3.1.0"
    assert document["info"]["version"] not in ("None", "") and "BentoML" not in str(
        document["info"])
    forecast = document["paths"]["/forecast"]["post"]
    assert {"401", "403", "413", "415", "422", "429", "503"} <= set(forecast["responses"])
    body = document["components"]["schemas"]["ForecastRequestIODescriptor"]
    assert body.get("additionalProperties") is False  # unknown fields are refused


OPERATIONS = [("POST", "/forecast"), ("POST", "/baseline"), ("POST", "/baseline/measure"),
              ("POST", "/response-likelihood"), ("POST", "/dispatch"), ("POST", "/capacity"),
              ("POST", "/bid/capacity"), ("POST", "/capability"), ("GET", "/livez"),
              ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")]


def test_every_documented_operation_is_fuzzed(api_schema):
    documented = {(method.upper(), path) for path, methods in api_schema.items()
                  for method in methods}
    assert documented == set(OPERATIONS)


@pytest.mark.parametrize("method, path", OPERATIONS)
def test_generated_requests_get_no_5xx_and_documented_answers(api_schema, server, method,
                                                              path):
    url, key = server
    headers = {"Authorization": f"Bearer {key}"}

    @given(case=api_schema[path][method].as_strategy())
    @seed(20261203)
    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case):
        response = case.call(base_url=url, headers=headers, timeout=60)
        status = response.status_code
        if status >= 500:
            assert status == 503 and response.json()["type"] == "ModelNotFoundError", (
                f"{method} {path} -> {status}: {response.text[:300]}")
        if path != "/readyz":  # BentoML's /readyz is documented as text; ours answers JSON
            case.validate_response(response, checks=[response_schema_conformance])
        if status != 200 and method == "POST":
            assert "error" in response.json(), response.text[:300]

    check()
