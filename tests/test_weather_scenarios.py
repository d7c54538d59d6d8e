"""Month-ahead load from shifted-date weather scenarios (models.weather_scenarios) and the
method the forecast says answered it (inference.forecast, POST /forecast).

Synthetic data (hand-made here, says so): an hourly load site whose load follows its
temperature, 430 days of observed temperature and, for the last 120 days, daily 48-h
temperature forecasts (the observation plus noise).
"""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from factories import asgi_client, site_data

from forecasting.errors import DataError
from forecasting.portfolio import Site, SiteData, read_portfolio
from inference.forecast import forecast_core
from inference.registry import LoadedModel
from models.forecaster import SiteForecaster
from models.quantile import DEFAULT_QUANTILES
from models.weather_scenarios import (
    POOL_LEVELS,
    build_scenarios,
    forecast_scenarios,
    pool_quantiles,
    weather_history,
)
from pipelines.config import TrainingConfig
from pipelines.training import train_site

TZ = "Asia/Shanghai"
END = pd.Timestamp("2024-06-01T00:00Z")
ISSUE = END - pd.Timedelta(days=45)
MONTH = (ISSUE, ISSUE + pd.Timedelta(days=30))
PERCENTILES = [k / 100 for k in range(1, 100)]


def synthetic_year_site(days: int = 430, forecast_days: int = 120, seed: int = 3) -> SiteData:
    """Synthetic: hourly load = f(temperature, working hours) + noise; observed weather for
    all ``days``, daily 48-h forecasts issued 00:00 UTC for the last ``forecast_days``."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(END - pd.Timedelta(days=days), END, freq="1h", inclusive="left")
    local = idx.tz_convert(TZ)
    day = np.arange(len(idx)) // 24
    anomaly = np.repeat(np.convolve(rng.normal(0, 3, days + 6), np.ones(7) / 7 ** 0.5,
                                    "valid")[:days], 24)[:len(idx)]
    temp = (16 + 10 * np.sin(2 * np.pi * (local.dayofyear - 110) / 365.25)
            + 5 * np.sin(2 * np.pi * (local.hour - 9) / 24) + anomaly + 0 * day)
    working = (local.dayofweek < 5) & (local.hour >= 8) & (local.hour < 20)
    load = 600 + 25 * np.abs(temp - 18) + 250 * working + rng.normal(0, 15, len(idx))
    obs = pd.DataFrame({"site_id": "load_y", "timestamp": idx, "issue_time": pd.NaT,
                        "temp_air_c": temp})
    obs["issue_time"] = pd.to_datetime(obs["issue_time"], utc=True)
    truth = pd.Series(temp, index=idx)
    runs = []
    for issue in pd.date_range(END - pd.Timedelta(days=forecast_days), END, freq="1D",
                               inclusive="left"):
        ts = truth.index[(truth.index >= issue) & (truth.index < issue + pd.Timedelta(hours=48))]
        runs.append(pd.DataFrame({"site_id": "load_y", "timestamp": ts, "issue_time": issue,
                                  "temp_air_c": truth[ts].to_numpy()
                                  + rng.normal(0, 1, len(ts))}))
    weather = pd.concat([obs, *runs], ignore_index=True)
    site = Site("load_y", "load", TZ, 60, capacity_kw=3000.0, holiday_country=None)
    prices = pd.DataFrame({"timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
                           "issue_time": pd.Series(dtype="datetime64[ns, UTC]"),
                           "market": pd.Series(dtype="string")})
    return SiteData(site, pd.Series(load, index=idx, name="load_kw"), weather, prices)


@pytest.fixture(scope="module")
def year_site():
    data = synthetic_year_site()
    model = SiteForecaster(kind="load", n_estimators=40, learning_rate=0.2, calibration_days=0,
                           max_training_days=100).fit(data.before(ISSUE))
    return data, LoadedModel("load-load_y", "1", model)


# ------------------------------------------------------------------ the scenario builder
def _clock_history(start: str, end: str) -> pd.DataFrame:
    """Synthetic: a 'temperature' equal to the hours since 2000-01-01 UTC, so each value
    names the time it was read from."""
    idx = pd.date_range(start, end, freq="1h", tz="UTC", inclusive="left")
    hours = (idx - pd.Timestamp("2000-01-01", tz="UTC")) / pd.Timedelta(hours=1)
    return pd.DataFrame({"temp_air_c": hours.to_numpy(dtype=float)}, index=idx)


def _hours(ts: str) -> float:
    return (pd.Timestamp(ts) - pd.Timestamp("2000-01-01", tz="UTC")) / pd.Timedelta(hours=1)


def test_known_history_gives_known_scenario_dates_leap_day_included():
    history = _clock_history("2021-06-01", "2024-02-20")
    issue = pd.Timestamp("2024-02-20T00:00Z")
    scenarios = build_scenarios(history, "2024-02-27T00:00Z", "2024-03-02T00:00Z", issue,
                                shifts_days=(-1, 0, 2))
    got = {(s.years_back, s.shift_days) for s in scenarios}
    # 2021-02-27 lies before the history: three years back is not a scenario
    assert got == {(y, d) for y in (1, 2) for d in (-1, 0, 2)}
    by = {(s.years_back, s.shift_days): s.values["temp_air_c"] for s in scenarios}
    t = pd.Timestamp("2024-02-28T12:00Z")
    assert by[1, 2][t] == _hours("2023-03-02T12:00Z")
    assert by[2, -1][t] == _hours("2022-02-27T12:00Z")
    leap = pd.Timestamp("2024-02-29T12:00Z")  # no 29 February in 2023: the 28th is read
    assert by[1, 0][leap] == _hours("2023-02-28T12:00Z")
    assert by[1, 0][pd.Timestamp("2024-03-01T12:00Z")] == _hours("2023-03-01T12:00Z")


def test_history_is_only_what_was_known_at_the_issue():
    data = synthetic_year_site(days=60, forecast_days=60)
    issue = pd.Timestamp("2024-05-10T00:00Z")
    hist = weather_history(data.weather, issue, ["temp_air_c"])
    assert hist.index.max() < issue
    # observations win over forecasts where both exist
    obs = data.weather[data.weather["issue_time"].isna()].set_index("timestamp")["temp_air_c"]
    common = hist.index[:100]
    assert np.allclose(hist.loc[common, "temp_air_c"], obs.loc[common])
    assert build_scenarios(hist, issue, issue + pd.Timedelta(days=30), issue) == []


def test_pooled_quantiles_mix_the_scenario_distributions():
    z = np.array([np.quantile(np.random.default_rng(0).normal(size=200_000), POOL_LEVELS)])
    one = z[None, :, :]
    assert np.allclose(pool_quantiles(one, POOL_LEVELS), z)  # one scenario: its own
    two = np.stack([z, z + 4.0])
    pooled = pool_quantiles(two, [0.1, 0.5, 0.9])
    # the mixture 0.5 N(0, 1) + 0.5 N(4, 1): F(-0.842) = 0.1 (as Phi(-0.842) = 0.2), F(2) = 0.5
    assert np.allclose(pooled[0], [-0.842, 2.0, 4.842], atol=0.06), pooled


# ------------------------------------------------------------------ through forecast_core
def test_month_window_is_nwp_within_the_forecast_and_scenarios_beyond(year_site):
    data, model = year_site
    out = forecast_core(model, data, ISSUE, *MONTH, PERCENTILES)
    assert len(out) == 30 * 24 and out["model_version"].iloc[0] == "load-load_y/1"
    nwp_end = ISSUE + pd.Timedelta(hours=47)  # the run issued at the issue time
    ts = pd.DatetimeIndex(out["timestamp"])
    assert (out.loc[ts <= nwp_end, "method"] == "nwp").all()
    assert (out.loc[ts > nwp_end, "method"] == "weather_scenarios").all()
    q = out[[f"q{p:g}" for p in PERCENTILES]].to_numpy()
    assert np.isfinite(q).all() and (np.diff(q, axis=1) >= 0).all()
    truth = data.values_kw.reindex(ts).to_numpy()
    inside = ((truth >= out["q0.05"]) & (truth <= out["q0.95"])).mean()
    assert inside > 0.6, inside  # a sane distribution, not a point repeated


def test_scenario_forecast_ignores_data_after_the_issue(year_site):
    data, model = year_site
    before = forecast_core(model, data, ISSUE, *MONTH, [0.1, 0.5, 0.9])
    wx = data.weather.copy()
    after = (wx["timestamp"] >= ISSUE) & wx["issue_time"].isna()  # observed later
    wx.loc[after, "temp_air_c"] = wx.loc[after, "temp_air_c"] + 15.0
    late = wx["issue_time"] > ISSUE
    wx.loc[late, "temp_air_c"] = -30.0
    values = data.values_kw.where(data.values_kw.index < ISSUE, 5000.0)
    changed = forecast_core(model, replace(data, weather=wx, values_kw=values), ISSUE,
                            *MONTH, [0.1, 0.5, 0.9])
    pd.testing.assert_frame_equal(before, changed)


def test_pooled_scenarios_are_wider_than_one_scenario(year_site):
    data, model = year_site
    beyond = pd.date_range(ISSUE + pd.Timedelta(days=2), MONTH[1], freq="1h", inclusive="left")
    pooled = forecast_scenarios(model.forecaster, data, ISSUE, beyond, [0.1, 0.9])
    single = forecast_scenarios(model.forecaster, data, ISSUE, beyond, [0.1, 0.9],
                                shifts_days=(0,), max_years=1)
    assert len(pooled.scenarios) == 7 and len(single.scenarios) == 1
    width = (pooled.quantiles["q0.9"] - pooled.quantiles["q0.1"]).mean()
    one = (single.quantiles["q0.9"] - single.quantiles["q0.1"]).mean()
    assert width > 1.02 * one, (width, one)  # measured: 150.6 vs 142.9 kW


def test_under_a_year_of_weather_answers_climatology_and_says_so(year_site):
    data, model = year_site
    recent = data.weather[data.weather["timestamp"] >= ISSUE - pd.Timedelta(days=200)]
    out = forecast_core(model, replace(data, weather=recent), ISSUE, *MONTH, [0.1, 0.5, 0.9])
    ts = pd.DatetimeIndex(out["timestamp"])
    beyond = ts > ISSUE + pd.Timedelta(hours=47)
    assert (out.loc[beyond, "method"] == "climatology").all()
    assert (out.loc[~beyond, "method"] == "nwp").all()
    assert "fallback_climatology" in out["quality"].iloc[0]


def test_day_ahead_takes_the_plain_path_and_says_nwp(year_site):
    data, model = year_site
    day = (ISSUE + pd.Timedelta(hours=16), ISSUE + pd.Timedelta(hours=40))
    out = forecast_core(model, data, ISSUE, *day, [0.1, 0.5, 0.9])
    direct = model.forecaster.forecast(data, ISSUE, pd.DatetimeIndex(out["timestamp"]),
                                       [0.1, 0.5, 0.9])
    assert (out["method"] == "nwp").all() and out["quality"].iloc[0] == "ok"
    assert np.allclose(out[["q0.1", "q0.5", "q0.9"]].to_numpy(), direct.to_numpy())


def test_window_limits_by_kind():
    data = site_data(30)
    pv = replace(data.site, site_id="pv_x", kind="pv")
    from inference.forecast import target_index

    assert len(target_index(data.site, ISSUE, ISSUE + pd.Timedelta(days=45))) == 45 * 96
    with pytest.raises(DataError, match="longer than 45 days"):
        target_index(data.site, ISSUE, ISSUE + pd.Timedelta(days=46))
    with pytest.raises(DataError, match="longer than 7 days"):
        target_index(pv, ISSUE, ISSUE + pd.Timedelta(days=8))


# ------------------------------------------------------------------ POST /forecast
def _write_portfolio(data: SiteData, directory):
    directory.mkdir(parents=True)
    pd.DataFrame([{"site_id": "load_y", "kind": "load", "timezone": TZ, "capacity_kw": 3000,
                   "resolution_minutes": 60}]).to_csv(directory / "sites.csv", index=False)
    pd.DataFrame({"site_id": "load_y", "timestamp": data.values_kw.index,
                  "load_kw": data.values_kw.to_numpy()}).to_csv(
        directory / "measurements.csv", index=False)
    data.weather.to_csv(directory / "weather.csv", index=False)
    return directory


@pytest.mark.integration
def test_api_month_ahead_for_a_load_site_says_the_method(tmp_path, monkeypatch, mlflow_uri):
    pf = _write_portfolio(synthetic_year_site(), tmp_path / "pf")
    train_site(read_portfolio(pf), "load_y",
               TrainingConfig(quantiles=DEFAULT_QUANTILES, n_estimators=20, holdout_days=5,
                              calibration_days=0, max_training_days=100, n_bags=1),
               train_end=ISSUE)
    for key, value in {"VPP_DATA_DIR": str(pf), "VPP_AUTH_DISABLED": "1",
                       "VPP_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
                       "VPP_FORECAST_STORE_URL": str(tmp_path / "store")}.items():
        monkeypatch.setenv(key, value)
    body = {"site_id": "load_y", "issue_time": ISSUE.isoformat(), "source": "compute",
            "start": MONTH[0].isoformat(), "end": MONTH[1].isoformat(),
            "quantiles": [0.05, 0.5, 0.95]}
    with asgi_client() as client:
        r = client.post("/forecast", json=body)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["methods"] == ["nwp", "weather_scenarios"]
        points = answer["points"]
        assert len(points) == 720 and points[-1]["method"] == "weather_scenarios"
        assert points[0]["method"] == "nwp"
        too_long = client.post("/forecast", json={
            **body, "end": (ISSUE + pd.Timedelta(days=46)).isoformat()})
        assert too_long.status_code == 422 and "45 days" in too_long.text
    # vpp forecast carries the method to its CSV (an extension of the output format)
    from typer.testing import CliRunner

    from pipelines.cli import app

    out = tmp_path / "month.csv"
    res = CliRunner().invoke(app, ["forecast", "--data", str(pf), "--kind", "load",
                                   "--site", "load_y", "--issue-time", ISSUE.isoformat(),
                                   "--start", MONTH[0].isoformat(), "--end",
                                   MONTH[1].isoformat(), "--out", str(out)])
    assert res.exit_code == 0, res.output
    csv = pd.read_csv(out)
    assert list(csv.columns)[-3:] == ["model_version", "quality", "method"]
    assert list(dict.fromkeys(csv["method"])) == ["nwp", "weather_scenarios"]
    assert len(csv) == 720


# ------------------------------------------------------------------ GEFCom2014 load adapter
def test_gefcom2014_load_adapter_units_times_and_no_run_of_the_month(shared_data):
    from benchmarks.adapters import gefcom2014_load as gl

    first, end = gl.task_month(4)
    assert (first, end) == (pd.Timestamp("2011-01-01T05:00Z"), pd.Timestamp("2011-02-01T05:00Z"))
    raw = gl.read_raw(shared_data)
    frames = gl.frames(shared_data, forecast_until=first - pd.Timedelta(hours=48), raw=raw)
    meas, wx = frames["measurements"], frames["weather"]
    # hour-ending 2005-01-01 01:00 local (UTC-05:00) is the interval starting 05:00 UTC
    assert meas["timestamp"].iloc[0] == pd.Timestamp("2005-01-01T05:00Z")
    first_mw = raw.dropna(subset=["LOAD"])["LOAD"].iloc[0]
    assert meas["load_kw"].iloc[0] == pytest.approx(first_mw * 1000.0)
    runs = wx[wx["issue_time"].notna()]
    assert runs["issue_time"].max() < first - pd.Timedelta(hours=47)
    assert runs["timestamp"].max() < first  # no temperature of the month is forecast
    obs = wx[wx["issue_time"].isna()]
    f = raw.loc[0, list(gl.STATIONS)].mean()
    assert obs["temp_air_c"].iloc[0] == pytest.approx((f - 32) * 5 / 9)
