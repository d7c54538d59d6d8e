"""Fast end-to-end runs of the product path on slices of the public data sets (../shared/data).

Each test reads one data set in place through its adapter, checks the adapter's unit and
time conventions, writes the portfolio directory and runs a short slice of its benchmark's
protocol through ``benchmarks.product_path.run_product`` (``read_portfolio`` ->
``train_site`` -> registry -> ``forecast_site``, the path ``vpp train`` / ``vpp forecast``
run) with a small model into a temporary MLflow store. ``test_openstef_one_path`` checks
that the benchmark loop and the ``vpp`` command line give the same forecasts. Skipped with
the reason when the data are absent (``shared_data`` fixture).
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package

from benchmarks.adapters import gefcom2012_wind, gefcom2014_solar, openstef, write_portfolio
from benchmarks.load_openstef import QUANTILES as OPENSTEF_QUANTILES
from benchmarks.load_openstef import TRAIN_END as OPENSTEF_TRAIN_END
from benchmarks.openstef_cli import read_forecast_csv
from benchmarks.product_path import run_product
from forecasting.features import FeatureSpec, build_features
from forecasting.metrics import mean_pinball
from forecasting.portfolio import read_portfolio
from pipelines.cli import app
from pipelines.config import TrainingConfig
from pipelines.evaluation import Schedule, attach_actuals, day_ahead_schedule, score_forecasts

pytestmark = [pytest.mark.shared_data, pytest.mark.integration]
PERCENTILES = tuple(round(q / 100, 2) for q in range(1, 100))


def test_openstef_slice_day_ahead(shared_data, tmp_path):
    frames = openstef.frames(shared_data)
    wx = frames["weather"]
    assert wx["ghi_wm2"].max() < 1000 and wx["ghi_wm2"].min() >= 0  # J/m2 per hour / 3600
    assert (wx["issue_time"] == wx["timestamp"].dt.floor("D") - pd.Timedelta(days=1)).all()
    prices = frames["prices"]
    first = prices[prices["timestamp"] == pd.Timestamp("2020-11-23T00:00", tz="Europe/Amsterdam")]
    assert first["issue_time"].iloc[0] == pd.Timestamp("2020-11-22T13:00", tz="Europe/Amsterdam")
    portfolio = read_portfolio(write_portfolio(frames, tmp_path / "portfolio"))
    data = portfolio.site_data(openstef.SITE_ID)
    assert 1000 < data.values_kw.abs().max() < 30000  # MW -> kW
    # trained on Aug-Oct (to the first issue), two days of November forecast by the champion
    schedule = day_ahead_schedule("2020-11-02T00:00:00+01:00", "2020-11-04T00:00:00+01:00",
                                  openstef.TIMEZONE)
    out = run_product(portfolio, openstef.SITE_ID, schedule, [schedule.issues[0]],
                      TrainingConfig(n_estimators=40, max_training_days=60),
                      uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    fc = out.forecasts
    assert len(fc) == 2 * 96 and len(out.trainings) == 1
    assert (fc["model_version"] == "load-openstef_307/1").all() and (fc["quality"] == "ok").all()
    scores = score_forecasts(attach_actuals(fc, data), None, openstef.TIMEZONE)["overall"]
    assert scores["mae"] < 4000  # kW; the 7-day-earlier base case scores 3,780 in Nov
    # a 12:00 issue for the next day cannot see that day's prices, but has its weather
    X = build_features(data, pd.DatetimeIndex(fc["timestamp"]),
                       pd.DatetimeIndex(fc["issue_time"]), FeatureSpec())
    assert X["price_day_ahead_per_mwh"].isna().all()
    assert X["wx_ghi_wm2"].notna().all()


def test_gefcom2014_solar_slice_competition_protocol(shared_data, tmp_path):
    frames = gefcom2014_solar.frames(shared_data)
    wx = frames["weather"]
    z1 = wx[wx["site_id"] == "zone1"].set_index("timestamp")
    # de-accumulated SSRD peaks near local noon (about 02 UTC at 149 E) and is 0 at night
    by_hour = z1["ghi_wm2"].groupby(z1.index.hour).mean()
    assert by_hour.idxmax() in (0, 1, 2, 3) and by_hour.loc[10:16].max() < 1
    directory = write_portfolio({**frames, "measurements": frames["measurements"][
        frames["measurements"]["site_id"] == "zone1"], "weather": wx[wx["site_id"] == "zone1"],
        "sites": frames["sites"].head(1)}, tmp_path / "portfolio")
    first, _ = gefcom2014_solar.task_month(4)
    days = pd.date_range(first, periods=4, freq="1D")
    schedule = Schedule(list(days), list(days), list(days + pd.Timedelta(days=1)))
    # vpp train --features weather_only --train-end <month start>, then vpp forecast daily
    config = TrainingConfig(features="weather_only", n_estimators=60, max_training_days=180)
    out = run_product(directory, "zone1", schedule, [first], config, PERCENTILES,
                      uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    fc = attach_actuals(out.forecasts, read_portfolio(directory).site_data("zone1"))
    q = fc[[f"q{p:g}" for p in PERCENTILES]].to_numpy()
    assert len(fc) == 4 * 24 and (np.diff(q, axis=1) >= 0).all()
    assert q.min() >= 0 and q.max() <= 1.0
    assert (fc["model_version"] == "pv-zone1/1").all() and (fc["quality"] == "ok").all()
    loss = mean_pinball(fc["actual_kw"].to_numpy(), dict(zip(PERCENTILES, q.T, strict=True)))
    assert loss < 0.0331  # the official benchmark's July 2013 score


def test_gefcom2012_wind_slice_first_windows(shared_data, tmp_path):
    frames = gefcom2012_wind.frames(shared_data, farms=(1,))
    wx = frames["weather"]
    assert set(wx["issue_time"].dt.hour) == {0, 12}
    assert (wx["timestamp"] - wx["issue_time"]).max() == pd.Timedelta(hours=48)
    windows = gefcom2012_wind.windows(shared_data)
    assert len(windows) == 156 and all(e - s == pd.Timedelta(hours=48) for s, e in windows)
    directory = write_portfolio(frames, tmp_path / "portfolio")
    first = windows[:3]
    schedule = Schedule([s for s, _ in first], [s for s, _ in first], [e for _, e in first])
    config = TrainingConfig(quantiles=(0.1, 0.5, 0.9), n_estimators=60, max_training_days=200)
    out = run_product(directory, "wf1", schedule, [first[0][0]], config, (0.1, 0.5, 0.9),
                      uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    fc = out.forecasts
    assert len(fc) == 3 * 48 and fc["q0.9"].max() <= 1.0 and fc["q0.1"].min() >= 0
    assert (fc["q0.1"] <= fc["q0.5"]).all() and (fc["q0.5"] <= fc["q0.9"]).all()
    assert (fc["model_version"] == "wind-wf1/1").all()
    assert not fc["quality"].str.contains("fallback").any()
    truth = gefcom2012_wind.scored_hours(shared_data)["wp1"].reindex(fc["timestamp"])
    bench = gefcom2012_wind.persistence(shared_data)["wp1"].reindex(fc["timestamp"])
    rmse = np.sqrt(np.mean((fc["q0.5"].to_numpy() - truth.to_numpy()) ** 2))
    rmse_persistence = np.sqrt(np.mean((bench.to_numpy() - truth.to_numpy()) ** 2))
    assert rmse < rmse_persistence


def test_gefcom2012_wind_regional_columns(shared_data, tmp_path):
    """Each farm's extra columns are the region's speed forecasts of the same ECMWF issue, and
    the features read them (the wind benchmark's default protocol)."""
    own = gefcom2012_wind.frames(shared_data, farms=(1, 2))["weather"]
    reg = gefcom2012_wind.frames(shared_data, farms=(1, 2), regional=True)["weather"]
    assert len(reg) == len(own)
    assert set(gefcom2012_wind.REGIONAL_COLUMNS) <= set(reg.columns)
    key = ["timestamp", "issue_time"]
    wf1 = reg[reg["site_id"] == "wf1"].set_index(key)
    wf2 = reg[reg["site_id"] == "wf2"].set_index(key)
    np.testing.assert_array_equal(wf1["wf1_wind_speed_10m_mps"], wf1["wind_speed_10m_mps"])
    both = wf1.index.intersection(wf2.index)
    assert len(both) > 10_000
    np.testing.assert_array_equal(wf2.loc[both, "wf1_wind_speed_10m_mps"],
                                  wf1.loc[both, "wind_speed_10m_mps"])
    assert not np.array_equal(wf2.loc[both, "wf1_wind_speed_10m_mps"],
                              wf2.loc[both, "wind_speed_10m_mps"])
    frames = gefcom2012_wind.frames(shared_data, farms=(2,), regional=True)
    data = read_portfolio(write_portfolio(frames, tmp_path / "portfolio")).site_data("wf2")
    targets = pd.date_range("2011-01-01 01:00", periods=48, freq="h", tz="UTC")
    issues = pd.DatetimeIndex([pd.Timestamp("2011-01-01 00:00", tz="UTC")] * 48)
    spec = FeatureSpec(extra_weather_columns=gefcom2012_wind.REGIONAL_COLUMNS)
    X = build_features(data, targets, issues, spec)
    wf7 = [c for c in X.columns if "wf7_wind_speed_10m_mps" in c]
    assert wf7 and X[wf7[0]].notna().all()
    expected = (frames["weather"].set_index(key)["wf7_wind_speed_10m_mps"]
                .reindex(pd.MultiIndex.from_arrays([targets, issues])).to_numpy())
    np.testing.assert_allclose(X[wf7[0]].to_numpy(), expected)


def _cli(*args: str) -> None:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output


def test_openstef_one_path(shared_data, tmp_path, mlflow_uri, monkeypatch):
    """The benchmark loop, ``vpp forecast`` on its store, and ``vpp train`` + ``vpp forecast``
    give the same day-ahead forecast of OpenSTEF 307 (training is deterministic on one
    thread)."""
    directory = write_portfolio(openstef.frames(shared_data), tmp_path / "portfolio")
    issue = pd.Timestamp("2020-11-22T12:00:00+01:00")
    start, end = pd.Timestamp("2020-11-23T00:00:00+01:00"), pd.Timestamp("2020-11-24T00:00:00+01:00")
    config = TrainingConfig(n_estimators=40)
    bench = run_product(directory, openstef.SITE_ID, Schedule([issue], [start], [end]),
                        [OPENSTEF_TRAIN_END], config, OPENSTEF_QUANTILES, uri=mlflow_uri)
    rows = bench.forecasts
    assert len(rows) == 96 and rows["model_version"].iloc[0] == "load-openstef_307/1"
    qcols = [f"q{q:g}" for q in OPENSTEF_QUANTILES]
    forecast_args = ("forecast", "--data", str(directory), "--kind", "load", "--site",
                     openstef.SITE_ID, "--issue-time", issue.isoformat(), "--start",
                     start.isoformat(), "--end", end.isoformat(), "--quantiles",
                     ",".join(f"{q:g}" for q in OPENSTEF_QUANTILES))

    def same_as_bench(csv: Path) -> None:
        fc = read_forecast_csv(csv)
        assert list(fc["timestamp"]) == list(rows["timestamp"])
        assert (fc["issue_time"] == issue).all()
        assert (fc["model_version"] == rows["model_version"]).all()
        assert (fc["quality"] == rows["quality"]).all()
        # equal to the CSV's 4 decimals (kW)
        diff = np.abs(fc[qcols].to_numpy() - rows[qcols].to_numpy(dtype=float))
        assert diff.max() <= 0.5e-4 + 1e-9, diff.max()

    # 1. vpp forecast on the benchmark's store serves the benchmark's champion
    _cli(*forecast_args, "--out", str(tmp_path / "bench_store.csv"))
    same_as_bench(tmp_path / "bench_store.csv")
    # 2. vpp train with the same options into a second store, then vpp forecast
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'cli' / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DIR", str(tmp_path / "cli" / "artifacts"))
    _cli("train", "--data", str(directory), "--kind", "load", "--site", openstef.SITE_ID,
         "--train-end", OPENSTEF_TRAIN_END, "--n-estimators", "40")
    _cli(*forecast_args, "--out", str(tmp_path / "cli_store.csv"))
    same_as_bench(tmp_path / "cli_store.csv")
