"""Rolling-origin backtests: retraining, no leakage per kind, bounds, the `vpp backtest` CLI."""

import numpy as np
import pandas as pd
import pytest
from factories import TZ, empty_prices, site_data, write_portfolio
from mlflow import MlflowClient
from typer.testing import CliRunner

from forecasting.errors import DataError
from forecasting.features import FeatureSpec, build_features
from forecasting.portfolio import Site, SiteData
from forecasting.solar import clear_sky_ghi
from forecasting.wind import power_curve_kw
from models.forecaster import SiteForecaster
from pipelines.backtest import BacktestConfig, backtest_core, retrain_blocks
from pipelines.cli import app
from pipelines.evaluation import day_ahead_schedule, intraday_schedule

FAST = {"n_estimators": 30, "calibration_days": 5}
PERCENTILES = tuple(round(q / 100, 2) for q in range(1, 100))


def _nwp(index: pd.DatetimeIndex, truth: dict[str, np.ndarray], noise: dict[str, float],
         seed: int) -> pd.DataFrame:
    """Hourly forecasts of ``truth`` issued daily 00:00 UTC for 48 h, error growing with lead."""
    rng = np.random.default_rng(seed)
    hourly = pd.Series(np.arange(len(index)), index=index).resample("1h").first()
    rows = []
    for issue in pd.date_range(index[0].floor("D"), index[-1], freq="1D"):
        ts = hourly.index[(hourly.index >= issue) & (hourly.index < issue + pd.Timedelta(hours=48))]
        pos = hourly.loc[ts].to_numpy()
        frame = {"timestamp": ts, "issue_time": issue}
        for col, values in truth.items():
            grow = 1 + (ts - issue) / pd.Timedelta(hours=24)
            frame[col] = values[pos] + rng.normal(0, noise[col], len(ts)) * np.asarray(grow)
        rows.append(pd.DataFrame(frame))
    return pd.concat(rows, ignore_index=True)


def pv_data(days: int = 40, seed: int = 0) -> SiteData:
    """15-minute PV of a 1,000 kW plant near Nanjing: clear sky times a daily cloud factor."""
    idx = pd.date_range("2024-05-01", periods=days * 96, freq="15min", tz="UTC")
    rng = np.random.default_rng(seed)
    cs = clear_sky_ghi(idx, 32.0, 118.8, 15).to_numpy()
    cloud = np.repeat(rng.uniform(0.0, 0.9, days), 96)
    ghi = cs * (1 - 0.75 * cloud)
    power = np.clip(ghi / 1000 * 900 + rng.normal(0, 15, len(idx)) * (cs > 10), 0, 1000)
    site = Site("pv_x", "pv", TZ, 15, latitude_deg=32.0, longitude_deg=118.8, capacity_kw=1000.0)
    wx = _nwp(idx, {"ghi_wm2": ghi, "cloud_cover_frac": cloud, "temp_air_c": 20 + 5 * cs / 900},
              {"ghi_wm2": 60.0, "cloud_cover_frac": 0.1, "temp_air_c": 1.0}, seed + 1)
    wx["ghi_wm2"] = wx["ghi_wm2"].clip(lower=0)
    wx["cloud_cover_frac"] = wx["cloud_cover_frac"].clip(0, 1)
    return SiteData(site, pd.Series(power, index=idx, name="pv_power_kw"), wx, empty_prices())


def wind_data(days: int = 40, seed: int = 0) -> SiteData:
    """15-minute wind of a 2,000 kW farm: an AR(1) wind speed through a power curve with a
    25 m/s cut-out, so storms stop the farm."""
    idx = pd.date_range("2024-01-01", periods=days * 96, freq="15min", tz="UTC")
    rng = np.random.default_rng(seed)
    v = np.empty(len(idx))
    v[0] = 8.0
    for i in range(1, len(idx)):
        v[i] = 8.0 + 0.995 * (v[i - 1] - 8.0) + rng.normal(0, 0.45)
    v = np.clip(v, 0, 35)
    power = np.clip(power_curve_kw(v, 2000.0) + rng.normal(0, 30, len(idx)), 0, 2000)
    site = Site("wind_x", "wind", TZ, 15, capacity_kw=2000.0, hub_height_m=100.0)
    wx = _nwp(idx, {"wind_speed_100m_mps": v}, {"wind_speed_100m_mps": 0.8}, seed + 1)
    wx["wind_speed_100m_mps"] = wx["wind_speed_100m_mps"].clip(lower=0)
    return SiteData(site, pd.Series(power, index=idx, name="wind_power_kw"), wx, empty_prices())


def load_data(days: int = 40) -> SiteData:
    """The factory's load shifted down so the site is a net exporter at night."""
    data = site_data(days=days)
    return SiteData(data.site, data.values_kw - 800.0, data.weather, data.prices)


DATA = {"load": load_data, "pv": pv_data, "wind": wind_data}


def test_retrain_blocks_group_issues_by_fit():
    issues = list(pd.date_range("2024-01-01", periods=10, freq="1D", tz="UTC"))
    blocks = retrain_blocks(issues[::-1], 3)
    assert [b[0] for b in blocks] == [issues[0], issues[3], issues[6], issues[9]]
    assert sorted(p for _, pos in blocks for p in pos) == list(range(10))


@pytest.fixture(scope="module")
def load_backtest():
    data = load_data(days=40)
    schedule = day_ahead_schedule("2024-03-30T00:00:00+08:00", "2024-04-04T00:00:00+08:00", TZ)
    config = BacktestConfig(retrain_days=2, **FAST)
    return data, schedule, config, backtest_core(data, schedule, config)


def test_backtest_retrains_and_scores(load_backtest):
    _, _, config, res = load_backtest
    assert len(res.fits) == 3  # issues 29 Mar .. 2 Apr, refit every 2 days
    assert (res.fits["train_end"] < res.fits["fit_time"]).all()
    fc = res.forecasts
    assert len(fc) == 5 * 96 and fc["issue_time"].nunique() == 5
    lead_h = (fc["timestamp"] - fc["issue_time"]) / pd.Timedelta(hours=1)
    assert lead_h.min() == 12 and lead_h.max() == 35.75
    qcols = [f"q{q:g}" for q in config.quantiles]
    assert (np.diff(fc[qcols].to_numpy(), axis=1) >= 0).all()
    for key in ("mae", "rmse", "bias", "mean_pinball", "crps", "coverage_p10_p90"):
        assert np.isfinite(res.overall[key])
    assert res.overall["mae"] < 120  # noise sd 20 kW on a 400 kW working-hours step
    assert list(res.per_lead_hour.index) == list(range(12, 36))
    assert len(res.per_hour_of_day) == 24
    # net load: negative forecasts are allowed (the site exports at night)
    assert (fc["q0.5"] < 0).any()


def test_intraday_schedule_backtest():
    data = load_data(days=30)
    schedule = intraday_schedule("2024-03-29T08:00:00+08:00", "2024-03-29T14:00:00+08:00")
    res = backtest_core(data, schedule, BacktestConfig(schedule="intraday", **FAST))
    assert len(res.forecasts) == 6 * 16
    assert res.per_lead_hour.index.max() == 3


@pytest.mark.parametrize("kind", ["load", "pv", "wind"])
def test_backtest_never_sees_data_after_the_issue(kind):
    """Change everything that became known after issue k: forecasts up to k stay the same."""
    data = DATA[kind](days=30)
    first = data.values_kw.index[0].tz_convert(TZ).normalize() + pd.Timedelta(days=24)
    schedule = day_ahead_schedule(first, first + pd.Timedelta(days=4), TZ)
    config = BacktestConfig(retrain_days=2, **FAST)
    before = backtest_core(data, schedule, config).forecasts
    cut = schedule.issues[1]
    res = pd.Timedelta(minutes=15)
    values = data.values_kw.copy()
    late = values.index + res > cut
    values[late] = values[late] * 0.3 + 7.0
    weather = data.weather.copy()
    num = [c for c in weather.columns if c not in ("timestamp", "issue_time")]
    weather.loc[weather["issue_time"] > cut, num] *= 1.7
    after = backtest_core(SiteData(data.site, values, weather, data.prices), schedule,
                          config).forecasts
    upto = before["issue_time"] <= cut
    cols = [c for c in before.columns if c.startswith("q")]
    pd.testing.assert_frame_equal(before.loc[upto, cols], after.loc[upto, cols])
    # the change does reach later issues (the test can fail)
    assert not np.allclose(before.loc[~upto, cols], after.loc[~upto, cols])


@pytest.mark.parametrize("kind", ["pv", "wind"])
def test_generation_bounds_and_99_percentiles(kind):
    data = DATA[kind](days=35)
    end = data.values_kw.index[-1]
    model = SiteForecaster(kind=kind, **FAST).fit(data.before(end - pd.Timedelta(days=3)))
    issue = (end - pd.Timedelta(days=3)).floor("D")
    targets = pd.date_range(issue, periods=2 * 96, freq="15min")
    out = model.forecast(data, issue, targets, PERCENTILES)
    cap = data.site.capacity_kw
    values = out.to_numpy()
    assert out.shape == (192, 99)
    assert (np.diff(values, axis=1) >= 0).all()
    assert values.min() >= 0 and values.max() <= cap
    actual = data.values_kw.reindex(targets)
    mae = np.mean(np.abs(out["q0.5"] - actual))
    assert mae < 0.12 * cap
    if kind == "pv":
        X = build_features(data.known_at(issue), targets,
                           pd.DatetimeIndex([issue] * len(targets)), model.spec_)
        night = X["pv_is_night"].to_numpy() > 0.5
        assert night.any() and (values[night] == 0).all()
        assert (values[~night, -1] > 0).any()


def test_wind_cut_out_is_not_smoothed_away():
    """Storm rows (hub speed forecast far above cut-out) are forecast near zero."""
    data = wind_data(days=40, seed=3)
    w = data.weather
    storm_issue = w["issue_time"].iloc[-1]
    storm = (w["issue_time"] == storm_issue)
    w.loc[storm, "wind_speed_100m_mps"] = 32.0  # the last issue forecasts a storm
    values = data.values_kw.copy()
    values[values.index >= storm_issue] = 0.0
    # and history holds storms too: put three earlier ones in both measurements and NWP
    for day in (8, 17, 26):
        t0 = values.index[0] + pd.Timedelta(days=day, hours=6)
        span = (values.index >= t0) & (values.index < t0 + pd.Timedelta(hours=12))
        values[span] = 0.0
        wspan = (w["timestamp"] >= t0) & (w["timestamp"] < t0 + pd.Timedelta(hours=12))
        w.loc[wspan, "wind_speed_100m_mps"] = 30.0
    data = SiteData(data.site, values, w, data.prices)
    model = SiteForecaster(kind="wind", **FAST).fit(data.before(storm_issue))
    targets = pd.date_range(storm_issue + pd.Timedelta(hours=6), periods=24, freq="15min")
    out = model.forecast(data, storm_issue + pd.Timedelta(minutes=30), targets, [0.5, 0.9])
    assert out["q0.5"].max() < 0.15 * data.site.capacity_kw


def test_calibrated_interval_coverage_out_of_sample():
    data = load_data(days=60)
    schedule = day_ahead_schedule("2024-04-16T00:00:00+08:00", "2024-04-30T00:00:00+08:00", TZ)
    res = backtest_core(data, schedule, BacktestConfig(retrain_days=7, n_estimators=60,
                                                       calibration_days=14))
    assert 0.7 <= res.overall["coverage_p10_p90"] <= 0.9


def test_empty_window_is_a_clear_error():
    data = load_data(days=20)
    schedule = day_ahead_schedule("2024-03-15T00:00:00+08:00", "2024-03-15T00:00:00+08:00", TZ)
    with pytest.raises(DataError, match="no issue time"):
        backtest_core(data, schedule, BacktestConfig(**FAST))


def test_feature_spec_rejects_bad_extra_columns():
    with pytest.raises(ValueError, match="extra_weather_columns"):
        FeatureSpec(extra_weather_columns=("ghi_wm2",))


@pytest.mark.integration
def test_cli_backtest_writes_forecasts_metrics_and_mlflow_run(tmp_path, mlflow_uri):
    pf = write_portfolio(tmp_path / "pf", days=30)
    out = tmp_path / "bt"
    res = CliRunner().invoke(app, [
        "backtest", "--data", str(pf), "--kind", "load", "--site", "load_x",
        "--start", "2024-03-27T00:00:00+08:00", "--end", "2024-03-30T00:00:00+08:00",
        "--schedule", "day_ahead", "--retrain-days", "2", "--out", str(out),
        "--quantiles", "0.1,0.5,0.9", "--n-estimators", "30"])
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out / "forecasts.csv")
    assert list(fc.columns) == ["site_id", "issue_time", "timestamp", "q0.1", "q0.5", "q0.9",
                                "model_version"]
    assert len(fc) == 3 * 96 and fc["issue_time"].iloc[0] == "2024-03-26T12:00:00+08:00"
    assert (fc["q0.1"] <= fc["q0.5"]).all() and (fc["q0.5"] <= fc["q0.9"]).all()
    for name in ("metrics.csv", "metrics_per_lead_hour.csv", "metrics_per_hour_of_day.csv",
                 "fits.csv", "actuals.csv"):
        assert (out / name).is_file()
    per_lead = pd.read_csv(out / "metrics_per_lead_hour.csv")
    assert {"lead_hour", "mae", "rmse", "mean_pinball", "crps", "coverage_p10_p90",
            "bias"} <= set(per_lead.columns)
    client = MlflowClient(tracking_uri=mlflow_uri)
    exp = client.get_experiment_by_name("vpp-backtest")
    run = client.search_runs([exp.experiment_id])[0]
    assert {"mae", "rmse", "mean_pinball", "coverage_p10_p90"} <= set(run.data.metrics)
    assert run.data.params["n_fits"] == "2"
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/forecast_vs_actual.png" in plots and "plots/mae_by_lead_hour.png" in plots


def test_cli_backtest_errors_say_what_to_fix(tmp_path):
    pf = write_portfolio(tmp_path / "pf", days=20)
    runner = CliRunner()
    res = runner.invoke(app, ["backtest", "--data", str(pf), "--kind", "pv", "--site", "load_x",
                              "--start", "2024-03-15T00:00:00+08:00",
                              "--end", "2024-03-17T00:00:00+08:00", "--no-mlflow"])
    assert res.exit_code == 2 and "use --kind load" in res.output
    res = runner.invoke(app, ["backtest", "--data", str(pf), "--kind", "load", "--site", "load_x",
                              "--start", "2024-03-15T00:00:00", "--end",
                              "2024-03-17T00:00:00+08:00", "--no-mlflow"])
    assert res.exit_code == 2 and "no UTC offset" in res.output


@pytest.mark.parametrize("kind", ["load", "wind"])
def test_single_forecast_equals_the_backtest_rows(kind):
    """``forecast`` cuts the history to a window for speed; the numbers must not move."""
    data = DATA[kind](days=30)
    first = data.values_kw.index[0].tz_convert(TZ).normalize() + pd.Timedelta(days=25)
    schedule = day_ahead_schedule(first, first + pd.Timedelta(days=2), TZ)
    config = BacktestConfig(retrain_days=5, **FAST)
    model = SiteForecaster(kind=kind, **FAST).fit(data.known_at(schedule.issues[0]))
    res = backtest_core(data, schedule, config, lambda _: model)
    for issue, start, end in zip(schedule.issues, schedule.starts, schedule.ends, strict=True):
        targets = pd.date_range(start, end, freq="15min", inclusive="left")
        one = model.forecast(data, issue, targets, config.quantiles)
        rows = res.forecasts[res.forecasts["issue_time"] == issue]
        np.testing.assert_allclose(one.to_numpy(), rows[one.columns].to_numpy(), rtol=1e-9)


def test_day_ahead_schedule_keeps_the_wall_clock_over_a_clock_change():
    """25 Oct 2020 in Amsterdam has 25 hours: issued 12:00 local the day before, it ends at
    local midnight (23:00 UTC), and the next day's issue is 12:00 local again."""
    from pipelines.evaluation import day_ahead_schedule

    s = day_ahead_schedule("2020-10-24T00:00:00+02:00", "2020-10-27T00:00:00+01:00",
                           "Europe/Amsterdam")
    local = [pd.Timestamp(t).tz_convert("Europe/Amsterdam") for t in s.issues]
    assert [t.hour for t in local] == [12, 12, 12]
    assert [str(pd.Timestamp(e)) for e in s.ends] == ["2020-10-24 22:00:00+00:00",
                                                     "2020-10-25 23:00:00+00:00",
                                                     "2020-10-26 23:00:00+00:00"]
    assert all(a == b for a, b in zip(s.ends[:-1], s.starts[1:], strict=False))
