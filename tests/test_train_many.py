"""Integration: `vpp train-all` on a real Dask LocalCluster equals training the sites one by one.

A small SYNTHETIC portfolio (the project's generator: one customer, one PV plant, 45 days),
two worker processes, a real MLflow sqlite store. Fits are deterministic (one LightGBM
thread, fixed seeds), so the registered champions of the Dask run forecast exactly what
the in-process run's champions forecast; a failing site is reported while the other is
trained.
"""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from forecasting.portfolio import read_portfolio
from forecasting.synthetic import generate_portfolio
from inference.registry import ModelRegistry
from pipelines.batch import train_many
from pipelines.cli import app
from pipelines.config import TrainingConfig

pytestmark = pytest.mark.integration

FAST = TrainingConfig(n_estimators=20, holdout_days=5, calibration_days=5)


@pytest.fixture(scope="module")
def portfolio_dir(tmp_path_factory):
    return generate_portfolio(tmp_path_factory.mktemp("pf"), seed=3, start="2024-05-01",
                              end="2024-06-15", n_customers=1, n_pv=1, n_wind=0)


def _forecasts(uri: str, portfolio) -> dict[str, pd.DataFrame]:
    registry = ModelRegistry(uri)
    out = {}
    for site in portfolio.sites.values():
        model = registry.champion(site.kind, site.site_id)
        data = portfolio.site_data(site.site_id)
        issue = data.values_kw.index.max() - pd.Timedelta(days=3)
        targets = pd.date_range(issue + pd.Timedelta(hours=12), periods=96, freq="15min")
        out[site.site_id] = model.forecaster.forecast(data, issue, targets)
    return out


def test_train_many_on_dask_equals_in_process(portfolio_dir, tmp_path, monkeypatch):
    portfolio = read_portfolio(portfolio_dir)
    sites = sorted(portfolio.sites)
    local_uri = f"sqlite:///{tmp_path / 'local.db'}"
    dask_uri = f"sqlite:///{tmp_path / 'dask.db'}"
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    local = train_many(portfolio, sites, FAST, workers=1, uri=local_uri)
    parallel = train_many(portfolio, sites, FAST, workers=2, uri=dask_uri)
    assert [r["site_id"] for r in parallel] == sites
    assert all(not r.get("error") and r["alias"] == "champion" for r in parallel), parallel
    for a, b in zip(local, parallel, strict=True):
        assert a["metrics"]["mae"] == pytest.approx(b["metrics"]["mae"], rel=1e-12)
    ours, theirs = _forecasts(local_uri, portfolio), _forecasts(dask_uri, portfolio)
    for sid in sites:
        pd.testing.assert_frame_equal(ours[sid], theirs[sid])


def test_train_all_reports_a_failing_site_and_trains_the_rest(portfolio_dir, tmp_path,
                                                               mlflow_uri):
    # a copy of the portfolio whose PV plant has only two days of readings
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in portfolio_dir.iterdir():
        if f.is_file():
            (broken / f.name).write_bytes(f.read_bytes())
    meas_file = next(broken.glob("measurements.*"))
    meas = (pd.read_parquet(meas_file) if meas_file.suffix == ".parquet"
            else pd.read_csv(meas_file))
    pv = meas["site_id"].str.startswith("pv")
    ts = pd.to_datetime(meas["timestamp"], utc=True)
    keep = ~pv | (ts < ts[pv].min() + pd.Timedelta(days=2))
    if meas_file.suffix == ".parquet":
        meas[keep].to_parquet(meas_file, index=False)
    else:
        meas[keep].to_csv(meas_file, index=False)
    res = CliRunner().invoke(app, ["train-all", "--data", str(broken), "--workers", "2",
                                   "--n-estimators", "20", "--holdout-days", "5"])
    assert res.exit_code == 0, res.output
    assert "1 of 2 sites failed" in res.output
    registry = ModelRegistry(mlflow_uri)
    load_site = next(s for s in read_portfolio(broken).sites.values() if s.kind == "load")
    assert registry.champion("load", load_site.site_id).version == "1"
