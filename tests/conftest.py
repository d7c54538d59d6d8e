import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("OMP_NUM_THREADS", "1")

SHARED_DATA = Path(os.environ.get("VPP_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"public data sets not found at {SHARED_DATA} (set VPP_SHARED_DATA); "
                    "CI has them, a user's clone may not")
    return SHARED_DATA


@pytest.fixture
def mlflow_uri(tmp_path, monkeypatch) -> str:
    """A real MLflow sqlite store in a temporary directory."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    return uri


def pytest_runtest_makereport(item, call):
    """With ``VPP_FAIL_ON_SKIP=1`` (set by .ci/run: CI has the shared data, the kernel and the
    servers) a skipped test fails with its skip reason, so nothing CI should run is silently
    left out."""
    if os.environ.get("VPP_FAIL_ON_SKIP") != "1" or call.excinfo is None:
        return None
    if call.excinfo.errisinstance(pytest.skip.Exception):
        from _pytest.reports import TestReport

        report = TestReport.from_item_and_call(item, call)
        report.outcome = "failed"
        report.longrepr = (f"skipped, but VPP_FAIL_ON_SKIP=1 requires it to run: "
                           f"{call.excinfo.value}")
        return report
    return None
