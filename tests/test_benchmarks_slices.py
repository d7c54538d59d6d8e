"""Fast end-to-end backtests on slices of the public data sets (../shared/data).

Each test reads one data set in place through its adapter, checks the adapter's unit and
time conventions, and runs a short rolling-origin backtest with a small model. Skipped
with the reason when the data are absent (``shared_data`` fixture).
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks package

from benchmarks import portfolio_from
from benchmarks.adapters import gefcom2012_wind, gefcom2014_solar, openstef
from forecasting.features import FeatureSpec, build_features
from forecasting.metrics import mean_pinball
from models.forecaster import SiteForecaster
from pipelines.backtest import BacktestConfig, backtest_core
from pipelines.evaluation import Schedule, day_ahead_schedule

pytestmark = pytest.mark.shared_data
PERCENTILES = tuple(round(q / 100, 2) for q in range(1, 100))


def test_openstef_slice_day_ahead(shared_data):
    frames = openstef.frames(shared_data)
    wx = frames["weather"]
    assert wx["ghi_wm2"].max() < 1000 and wx["ghi_wm2"].min() >= 0  # J/m2 per hour / 3600
    assert (wx["issue_time"] == wx["timestamp"].dt.floor("D") - pd.Timedelta(days=1)).all()
    prices = frames["prices"]
    first = prices[prices["timestamp"] == pd.Timestamp("2020-11-23T00:00", tz="Europe/Amsterdam")]
    assert first["issue_time"].iloc[0] == pd.Timestamp("2020-11-22T13:00", tz="Europe/Amsterdam")
    portfolio = portfolio_from(frames)
    data = portfolio.site_data(openstef.SITE_ID)
    assert 1000 < data.values_kw.abs().max() < 30000  # MW -> kW
    # trained on Aug-Oct (as of the first issue), two days of November scored
    schedule = day_ahead_schedule("2020-11-02T00:00:00+01:00", "2020-11-04T00:00:00+01:00",
                                  openstef.TIMEZONE)
    res = backtest_core(data, schedule, BacktestConfig(n_estimators=40, calibration_days=14,
                                                       retrain_days=30))
    assert len(res.forecasts) == 2 * 96
    assert res.overall["mae"] < 4000  # kW; the 7-day-earlier base case scores 3,780 in Nov
    # a 12:00 issue for the next day cannot see that day's prices, but has its weather
    X = build_features(data, pd.DatetimeIndex(res.forecasts["timestamp"]),
                       pd.DatetimeIndex(res.forecasts["issue_time"]), FeatureSpec())
    assert X["price_day_ahead_per_mwh"].isna().all()
    assert X["wx_ghi_wm2"].notna().all()


def test_gefcom2014_solar_slice_competition_protocol(shared_data):
    frames = gefcom2014_solar.frames(shared_data)
    wx = frames["weather"]
    z1 = wx[wx["site_id"] == "zone1"].set_index("timestamp")
    # de-accumulated SSRD peaks near local noon (about 02 UTC at 149 E) and is 0 at night
    by_hour = z1["ghi_wm2"].groupby(z1.index.hour).mean()
    assert by_hour.idxmax() in (0, 1, 2, 3) and by_hour.loc[10:16].max() < 1
    portfolio = portfolio_from({**frames, "measurements": frames["measurements"][
        frames["measurements"]["site_id"] == "zone1"], "weather": wx[wx["site_id"] == "zone1"],
        "sites": frames["sites"].head(1)})
    data = portfolio.site_data("zone1")
    first, _ = gefcom2014_solar.task_month(4)
    days = pd.date_range(first, periods=4, freq="1D")
    schedule = Schedule(list(days), list(days), list(days + pd.Timedelta(days=1)))
    spec = FeatureSpec(lags_minutes=(), use_last_known=False, use_price=False)
    res = backtest_core(
        data, schedule, BacktestConfig(quantiles=PERCENTILES, retrain_days=60),
        lambda kind: SiteForecaster(kind=kind, feature_spec=spec, n_estimators=60,
                                    calibration_days=14, max_training_days=180))
    fc = res.forecasts
    q = fc[[f"q{p:g}" for p in PERCENTILES]].to_numpy()
    assert len(fc) == 4 * 24 and (np.diff(q, axis=1) >= 0).all()
    assert q.min() >= 0 and q.max() <= 1.0
    loss = mean_pinball(fc["actual_kw"].to_numpy(), dict(zip(PERCENTILES, q.T, strict=True)))
    assert loss < 0.0331  # the official benchmark's July 2013 score


def test_gefcom2012_wind_slice_first_windows(shared_data):
    frames = gefcom2012_wind.frames(shared_data, farms=(1,))
    wx = frames["weather"]
    assert set(wx["issue_time"].dt.hour) == {0, 12}
    assert (wx["timestamp"] - wx["issue_time"]).max() == pd.Timedelta(hours=48)
    windows = gefcom2012_wind.windows(shared_data)
    assert len(windows) == 156 and all(e - s == pd.Timedelta(hours=48) for s, e in windows)
    data = portfolio_from(frames).site_data("wf1")
    first = windows[:3]
    schedule = Schedule([s for s, _ in first], [s for s, _ in first], [e for _, e in first])
    res = backtest_core(data, schedule, BacktestConfig(quantiles=(0.1, 0.5, 0.9),
                                                       retrain_days=60, n_estimators=60,
                                                       max_training_days=200))
    fc = res.forecasts
    assert len(fc) == 3 * 48 and fc["q0.9"].max() <= 1.0 and fc["q0.1"].min() >= 0
    truth = gefcom2012_wind.scored_hours(shared_data)["wp1"].reindex(fc["timestamp"])
    bench = gefcom2012_wind.persistence(shared_data)["wp1"].reindex(fc["timestamp"])
    rmse = np.sqrt(np.mean((fc["q0.5"].to_numpy() - truth.to_numpy()) ** 2))
    rmse_persistence = np.sqrt(np.mean((bench.to_numpy() - truth.to_numpy()) ** 2))
    assert rmse < rmse_persistence
