"""Registry faults told apart and survived: a corrupt store, missing artifacts, a moved alias.

Real MLflow sqlite stores, a real trained model; the service over ASGI in-process.
"""

import shutil
import threading
import time

import pytest
from factories import asgi_client, write_portfolio
from mlflow import MlflowClient
from test_service import EVENTS, RESOURCES

from forecasting.errors import ModelNotFoundError
from forecasting.portfolio import read_portfolio
from inference.registry import ModelArtifactError, ModelRegistry, RegistryUnavailableError
from pipelines.config import TrainingConfig
from pipelines.training import train_site

pytestmark = pytest.mark.integration
DAY_AHEAD = {"site_id": "load_x", "issue_time": "2024-04-06T12:00:00+08:00",
             "horizon": "day_ahead", "source": "compute"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A portfolio and a store holding load_x v1 as champion (the original, never broken)."""
    tmp = tmp_path_factory.mktemp("faults")
    data = write_portfolio(tmp / "pf", days=40)
    (data / "resources.csv").write_text(RESOURCES)
    (data / "events.csv").write_text(EVENTS)
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        mp.setenv("MLFLOW_ARTIFACTS_DIR", str(tmp / "artifacts"))
        train_site(read_portfolio(data), "load_x",
                   TrainingConfig(n_estimators=30, holdout_days=5, calibration_days=5))
    return {"data": data, "db": tmp / "mlflow.db", "artifacts": tmp / "artifacts"}


def _copy_store(trained, tmp_path) -> str:
    """A copy of the store (the artifacts stay where the versions say)."""
    shutil.copy(trained["db"], tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _corrupt(path) -> None:
    path.write_bytes(b"this is not a database " * 200)


def _second_version(uri: str, source: str | None = None) -> str:
    """Register v2 of load-load_x: v1's artifacts, or a ``source`` that does not exist."""
    client = MlflowClient(uri, registry_uri=uri)
    v1 = client.get_model_version("load-load_x", "1")
    return client.create_model_version("load-load_x", source or v1.source,
                                       run_id=v1.run_id).version


def test_corrupt_store_is_not_called_no_model(trained, tmp_path):
    uri = _copy_store(trained, tmp_path)
    registry = ModelRegistry(uri)
    loaded = registry.champion("load", "load_x")
    assert loaded.version == "1" and not loaded.note
    _corrupt(tmp_path / "mlflow.db")
    again = registry.champion("load", "load_x")  # loaded before: it keeps answering, flagged
    assert again.version == "1" and "registry unavailable" in again.note
    with pytest.raises(RegistryUnavailableError, match="cannot answer"):
        registry.champion("load", "load_never_loaded")
    assert registry.state().status == "unavailable"
    fresh = ModelRegistry(uri)  # nothing loaded: the fault, not "train one"
    with pytest.raises(RegistryUnavailableError) as err:
        fresh.champion("load", "load_x")
    assert not isinstance(err.value, ModelNotFoundError)


def test_missing_artifacts_are_a_named_fault_and_the_loaded_version_answers(trained,
                                                                            tmp_path):
    uri = _copy_store(trained, tmp_path)
    broken = _second_version(uri, source=str(tmp_path / "no_such_artifacts"))
    client = MlflowClient(uri, registry_uri=uri)
    registry = ModelRegistry(uri)
    assert registry.champion("load", "load_x").version == "1"
    client.set_registered_model_alias("load-load_x", "champion", broken)
    loaded = registry.champion("load", "load_x")
    assert loaded.version == "1" and f"load-load_x/{broken} cannot be loaded" in loaded.note
    with pytest.raises(ModelArtifactError, match="artifacts cannot be loaded"):
        ModelRegistry(uri).champion("load", "load_x")


def test_service_under_a_corrupt_registry(trained, tmp_path, monkeypatch):
    uri = _copy_store(trained, tmp_path)
    for key, value in {"VPP_DATA_DIR": str(trained["data"]), "MLFLOW_TRACKING_URI": uri,
                       "VPP_AUTH_DISABLED": "1", "VPP_REGISTRY_TTL_SECONDS": "0.5",
                       "VPP_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
                       "VPP_FORECAST_STORE_URL": str(tmp_path / "store")}.items():
        monkeypatch.setenv(key, value)
    with asgi_client() as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["registry"]["status"] == "ok"
        first = client.post("/forecast", json=DAY_AHEAD)
        assert first.status_code == 200 and first.json()["notes"] == []
        _corrupt(tmp_path / "mlflow.db")
        time.sleep(1.0)  # past the alias TTL: the next lookup asks the registry
        served = client.post("/forecast", json={**DAY_AHEAD, "quantiles": [0.2, 0.8]})
        assert served.status_code == 200, served.text
        assert served.json()["model_version"] == "load-load_x/1"
        assert any("registry unavailable" in n for n in served.json()["notes"])
        ready = client.get("/readyz").json()
        assert ready["status"] == "degraded" and ready["registry"]["status"] == "unavailable"
        assert "mlflow.db" not in ready["registry"]["error"]  # no server path shown
        other = client.post("/forecast", json={**DAY_AHEAD, "site_id": "no_site"})
        assert other.status_code == 404


def test_service_with_the_registry_down_from_the_start(trained, tmp_path, monkeypatch):
    (tmp_path / "mlflow.db").write_bytes(b"garbage" * 100)
    for key, value in {"VPP_DATA_DIR": str(trained["data"]),
                       "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
                       "VPP_AUTH_DISABLED": "1",
                       "VPP_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
                       "VPP_FORECAST_STORE_URL": str(tmp_path / "store")}.items():
        monkeypatch.setenv(key, value)
    with asgi_client() as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
        r = client.post("/forecast", json=DAY_AHEAD)
        assert r.status_code == 503 and r.json()["type"] == "RegistryUnavailableError"
        assert "no model registered" not in r.text and str(tmp_path) not in r.text
        # what can honestly answer without the registry does, and says what is missing
        window = {"start": "2024-03-20T14:00:00+08:00", "end": "2024-03-20T16:00:00+08:00",
                  "notice_time": "2024-03-20T10:00:00+08:00"}
        auto = client.post("/baseline", json={"customer_id": "cx", **window})
        assert auto.status_code == 200, auto.text
        assert auto.json()["method"] != "ml"
        assert any("ML baseline not available" in n for n in auto.json()["notes"])
        ml = client.post("/baseline", json={"customer_id": "cx", **window, "method": "ml"})
        assert ml.status_code == 503 and ml.json()["type"] == "RegistryUnavailableError"
        plan = client.post("/dispatch", json={"target_kw": 100.0, **window})
        assert plan.status_code == 200, plan.text
        assert plan.json()["reliability_source"].startswith("events.csv history")
        assert any("response-likelihood model not available" in n
                   for n in plan.json()["notes"])
        model = client.post("/dispatch", json={"target_kw": 100.0, **window,
                                               "reliability": "model"})
        assert model.status_code == 503
        likely = client.post("/response-likelihood", json={"customers": ["cx"], **window,
                                                           "target_kw": [100.0]})
        assert likely.status_code == 200, likely.text
        assert likely.json()["source"] == "historical_rate" and likely.json()["notes"]


def test_a_moved_champion_serves_without_restart_or_failed_requests(trained, tmp_path,
                                                                    monkeypatch):
    uri = _copy_store(trained, tmp_path)
    for key, value in {"VPP_DATA_DIR": str(trained["data"]), "MLFLOW_TRACKING_URI": uri,
                       "VPP_AUTH_DISABLED": "1", "VPP_REGISTRY_TTL_SECONDS": "0.5",
                       "VPP_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
                       "VPP_FORECAST_STORE_URL": str(tmp_path / "store")}.items():
        monkeypatch.setenv(key, value)
    v2 = _second_version(uri)
    with asgi_client() as client:
        assert client.post("/forecast", json=DAY_AHEAD).json()["model_version"] == \
            "load-load_x/1"
        answers, stop = [], threading.Event()

        def keep_asking():
            while not stop.is_set():
                r = client.post("/forecast", json=DAY_AHEAD)
                answers.append((r.status_code, r.json().get("model_version")))

        asker = threading.Thread(target=keep_asking)
        asker.start()
        try:
            time.sleep(0.3)
            MlflowClient(uri, registry_uri=uri).set_registered_model_alias(
                "load-load_x", "champion", v2)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and (not answers
                                                   or answers[-1][1] != f"load-load_x/{v2}"):
                time.sleep(0.1)
        finally:
            stop.set()
            asker.join()
    assert {status for status, _ in answers} == {200}
    versions = [v for _, v in answers]
    assert versions[-1] == f"load-load_x/{v2}" and "load-load_x/1" in versions
