"""Input-quality flags and the flagged climatology fallback."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from factories import TZ, site_data

from forecasting.portfolio import Site
from forecasting.quality import assess, flatline_mask
from inference.forecast import forecast_core
from inference.registry import LoadedModel
from models.fallback import ClimatologyFallback
from models.forecaster import SiteForecaster

ISSUE = pd.Timestamp("2024-04-11T12:00", tz=TZ)
DAY = pd.date_range("2024-04-12", periods=96, freq="15min", tz=TZ)


def test_flatline_rules_per_kind():
    idx = pd.date_range("2024-01-01", periods=96, freq="15min", tz="UTC")
    v = pd.Series(np.arange(96, dtype=float), index=idx)
    v.iloc[10:10 + 24] = 5.0  # 6 h stuck
    assert flatline_mask(v, "load", 15).sum() == 24
    v2 = pd.Series(np.arange(96, dtype=float), index=idx)
    v2.iloc[10:10 + 23] = 5.0  # 5 h 45 min: not yet a stuck meter
    assert flatline_mask(v2, "load", 15).sum() == 0
    zeros = pd.Series(0.0, index=idx)  # a night or a calm: zeros are normal for PV/wind
    assert not flatline_mask(zeros, "pv", 15).any()
    assert not flatline_mask(zeros, "wind", 15).any()
    assert flatline_mask(zeros, "load", 15).all()


def test_assess_flags_stale_readings_and_missing_weather():
    data = site_data(days=50)
    report = assess(data, ISSUE, DAY.tz_convert("UTC"), ["temp_air_c"])
    assert report.ok, report.messages
    cut = replace(data, values_kw=data.values_kw[data.values_kw.index < ISSUE - pd.Timedelta(
        days=2)], weather=data.weather.iloc[0:0])
    report = assess(cut, ISSUE, DAY.tz_convert("UTC"), ["temp_air_c"])
    assert report.flags == ["stale_measurements", "missing_weather"]


@pytest.fixture(scope="module")
def loaded():
    data = site_data(days=50)
    model = SiteForecaster(n_estimators=30, calibration_days=0).fit(
        data.before(pd.Timestamp("2024-04-05", tz=TZ)))
    return data, LoadedModel("load-load_x", "3", model)


def test_stale_readings_fall_back_with_a_flag(loaded):
    data, model = loaded
    ok = forecast_core(model, data, ISSUE, DAY[0], DAY[-1] + pd.Timedelta(minutes=15))
    assert (ok["quality"] == "ok").all() and ok["model_version"].iloc[0] == "load-load_x/3"
    stale = replace(data, values_kw=data.values_kw[data.values_kw.index < ISSUE - pd.Timedelta(
        days=3)])
    out = forecast_core(model, stale, ISSUE, DAY[0], DAY[-1] + pd.Timedelta(minutes=15),
                        [0.1, 0.5, 0.9])
    assert out["quality"].iloc[0] == "stale_measurements;fallback_climatology"
    assert out["model_version"].iloc[0].startswith("fallback-climatology")
    q = out[["q0.1", "q0.5", "q0.9"]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()
    # the fallback still knows working hours from non-working hours (factory block 08-20)
    local = pd.DatetimeIndex(out["timestamp"]).tz_convert(TZ)
    assert out["q0.5"][local.hour == 12].mean() > out["q0.5"][local.hour == 3].mean() + 300


def test_flatlined_meter_is_removed_and_flagged(loaded):
    data, model = loaded
    v = data.values_kw.copy()
    v[(v.index >= ISSUE - pd.Timedelta(hours=8)) & (v.index < ISSUE)] = 777.0
    out = forecast_core(model, replace(data, values_kw=v), ISSUE, DAY[0],
                        DAY[-1] + pd.Timedelta(minutes=15))
    assert out["quality"].iloc[0] == "flatline_removed"


def test_climatology_fallback_for_pv_is_zero_at_night():
    idx = pd.date_range("2024-06-01", periods=20 * 96, freq="15min", tz=TZ).tz_convert("UTC")
    hour = idx.tz_convert(TZ).hour
    pv = np.where((hour >= 6) & (hour < 18), 500.0, 0.0) * np.random.default_rng(0).uniform(
        0.5, 1, len(idx))
    data = site_data(days=1)
    pv_data = replace(data, site=Site("pv_x", "pv", TZ, 15, 32.0, 118.8, 1000.0),
                      values_kw=pd.Series(pv, index=idx))
    targets = pd.date_range("2024-06-21", periods=96, freq="15min", tz=TZ)
    out = ClimatologyFallback().forecast(pv_data, pd.Timestamp("2024-06-20T12:00", tz=TZ),
                                         targets, [0.1, 0.5, 0.9])
    night = targets.hour < 5
    assert (out[night] == 0).all().all()
    assert (out["q0.9"] <= 500).all() and out["q0.5"].max() > 200


def test_load_zero_runs_on_shutdown_days_or_seen_before_are_not_a_stuck_meter():
    # 2024-04-03 is a Wednesday, 04-04 Qingming (a public holiday in China), 04-07 a Sunday
    # made a working day by the Qingming swap
    idx = pd.date_range("2024-04-01", "2024-04-09", freq="15min", tz=TZ, inclusive="left")
    base = pd.Series(500.0 + np.arange(len(idx)) % 7, index=idx.tz_convert("UTC"))
    holiday = base.copy()
    holiday[(idx.day == 4).tolist()] = 0.0  # a whole holiday shut down
    assert not flatline_mask(holiday, "load", 15, TZ, "CN").any()
    assert flatline_mask(holiday, "load", 15).sum() == 96  # without the calendar: stuck
    weekday = base.copy()
    weekday[((idx.day == 3) & (idx.hour >= 8) & (idx.hour < 16)).tolist()] = 0.0
    assert flatline_mask(weekday, "load", 15, TZ, "CN").sum() == 32  # a working day: stuck
    twice = weekday.copy()
    twice[((idx.day == 5) & (idx.hour >= 8) & (idx.hour < 16)).tolist()] = 0.0
    assert not flatline_mask(twice, "load", 15, TZ, "CN").any()  # shutdowns are normal here
    stuck_value = base.copy()
    stuck_value[(idx.day == 7).tolist()] = 480.0  # a non-zero stuck value, even on a Sunday
    assert flatline_mask(stuck_value, "load", 15, TZ, "CN").sum() == 96


def test_calendar_unannounced_year_is_flagged_not_refused():
    data = site_data(days=50)
    assert "calendar_unannounced" not in assess(data, ISSUE, DAY.tz_convert("UTC")).flags
    far = pd.date_range("2035-01-02", periods=96, freq="15min", tz=TZ).tz_convert("UTC")
    report = assess(data, ISSUE, far)
    assert "calendar_unannounced" in report.flags
    assert any("2035" in m for m in report.messages)


def test_wind_at_rated_power_and_old_runs_are_not_stuck_meters():
    idx = pd.date_range("2024-01-01", periods=96, freq="15min", tz="UTC")
    rated = pd.Series(np.linspace(100, 900, 96), index=idx)
    rated.iloc[20:60] = 1920.0  # 10 h at 96 % of a 2,000 kW farm: full power
    assert not flatline_mask(rated, "wind", 15, rated_kw=2000.0).any()
    assert flatline_mask(rated, "wind", 15).sum() == 40  # without the rating: flagged
    mid = rated.copy()
    mid.iloc[20:60] = 700.0  # 10 h of exactly 700 kW: stuck
    assert flatline_mask(mid, "wind", 15, rated_kw=2000.0).sum() == 40
    # a run a month before the issue reaches no forecast: not checked, nothing flagged
    data = site_data(days=50)
    values = data.values_kw.copy()
    old = (values.index >= ISSUE - pd.Timedelta(days=30)) & (
        values.index < ISSUE - pd.Timedelta(days=29))
    values[old] = 123.0
    report = assess(replace(data, values_kw=values), ISSUE, DAY.tz_convert("UTC"))
    assert "flatline_removed" not in report.flags
    recent = values.copy()
    recent[(values.index >= ISSUE - pd.Timedelta(days=3)) & (
        values.index < ISSUE - pd.Timedelta(days=2))] = 123.0
    assert "flatline_removed" in assess(replace(data, values_kw=recent), ISSUE,
                                        DAY.tz_convert("UTC")).flags
