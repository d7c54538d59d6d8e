"""Tests of the synthetic sample-portfolio generator (forecasting.synthetic and its modules).

A 60-day winter window (2025-01-01 .. 2025-03-02) covers Spring Festival 2025 (29 January),
the swapped working Sunday 26 January and winter peak events, and generates in about a second.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd
import pvlib
import pytest

from forecasting.calendar import day_type, spring_festival
from forecasting.contract import TABLES
from forecasting.synthetic import (
    generate_portfolio,
    generate_portfolio_frames,
    simulate_portfolio,
    write_portfolio,
)
from forecasting.synthetic.achievement import coverage, expected_achievement
from forecasting.synthetic.resources import TEMPLATES, Resource

START, END = "2025-01-01", "2025-03-02"
N_DAYS = 60
TZ = "Asia/Shanghai"

# Columns of ../shared/DATA_FORMAT.md (version 1) as forecasting.contract declares them:
# (required, optional) per table; the generator writes prices in CNY.
CONTRACT = {name: (set(spec.required), set(spec.optional)) for name, spec in TABLES.items()}
CONTRACT["prices"][0].add("price_cny_per_mwh")
EXTRA_COLUMNS = {"sites": {"segment"}}  # documented extension of the synthetic data
EVENT_TYPES = {
    "annual",
    "day_ahead",
    "real_time",
    "peak",
    "reserve",
    "peak_shaving",
    "valley_filling",
}


@pytest.fixture(scope="module")
def portfolio():
    return simulate_portfolio(seed=7, start=START, end=END)


@pytest.fixture(scope="module")
def frames(portfolio):
    return portfolio.frames


@pytest.fixture(scope="module")
def capacity(frames):
    return frames["sites"].set_index("site_id")["capacity_kw"]


def _site_series(frames, site_id: str, column: str) -> pd.Series:
    m = frames["measurements"]
    rows = m[m["site_id"] == site_id]
    return pd.Series(rows[column].to_numpy(), index=pd.DatetimeIndex(rows["timestamp"]))


def _daily_mean(series: pd.Series) -> pd.Series:
    local = series.tz_convert(TZ)
    return local.groupby(local.index.date).mean()


# --- determinism ---------------------------------------------------------------------------


def test_same_seed_gives_identical_frames_and_other_seed_differs():
    kwargs = {"start": "2024-07-01", "end": "2024-07-15", "n_customers": 4, "n_pv": 1,
              "n_wind": 1}
    first = generate_portfolio_frames(seed=3, **kwargs)
    again = generate_portfolio_frames(seed=3, **kwargs)
    other = generate_portfolio_frames(seed=4, **kwargs)
    assert set(first) == {"sites", "measurements", "weather", "prices", "events", "resources"}
    for name in first:
        pd.testing.assert_frame_equal(first[name], again[name], obj=name)
    for name in ("measurements", "weather", "prices"):
        assert not first[name].equals(other[name]), name
    assert not np.allclose(
        first["measurements"]["load_kw"].fillna(0), other["measurements"]["load_kw"].fillna(0)
    )


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="after start"):
        generate_portfolio_frames(start="2024-02-01", end="2024-01-01")
    with pytest.raises(ValueError, match="local calendar dates"):
        generate_portfolio_frames(start="2024-01-01T12:00", end="2024-01-03")
    with pytest.raises(ValueError, match="n_pv"):
        generate_portfolio_frames(start="2024-01-01", end="2024-01-03", n_pv=-1)


# --- contract -----------------------------------------------------------------------------


@pytest.mark.parametrize("table", sorted(CONTRACT))
def test_tables_have_contract_columns(frames, table):
    required, optional = CONTRACT[table]
    columns = set(frames[table].columns)
    assert required <= columns, f"{table} lacks {required - columns}"
    unexpected = columns - required - optional - EXTRA_COLUMNS.get(table, set())
    assert not unexpected, f"{table} has columns outside the contract: {unexpected}"
    assert len(frames[table]) > 0


def test_all_weather_columns_and_sites_present(frames):
    weather = frames["weather"]
    assert set(CONTRACT["weather"][1]) <= set(weather.columns)
    assert set(weather["site_id"]) == set(frames["sites"]["site_id"])
    values = weather.drop(columns=["site_id", "timestamp", "issue_time"])
    assert not values.isna().any().any()
    assert weather["cloud_cover_frac"].between(0, 1).all()
    assert (weather[["ghi_wm2", "dni_wm2", "dhi_wm2", "precipitation_mm"]] >= 0).all().all()
    assert weather["wind_dir_10m_deg"].between(0, 360, inclusive="left").all()


def test_sites_catalogue(frames):
    sites = frames["sites"].set_index("site_id")
    assert sites["kind"].value_counts().to_dict() == {"load": 20, "pv": 3, "wind": 2}
    assert (sites["timezone"] == TZ).all() and (sites["holiday_country"] == "CN").all()
    assert sites[["latitude_deg", "longitude_deg", "capacity_kw"]].notna().all().all()
    assert sites["latitude_deg"].between(31, 33).all()
    assert sites["longitude_deg"].between(117.5, 120.5).all()
    load = sites[sites["kind"] == "load"]
    assert list(load.index[:2]) == ["load_c01", "load_c02"]
    assert (load["customer_id"] == load.index.str.removeprefix("load_")).all()
    assert load["capacity_kw"].min() >= 100 and load["capacity_kw"].max() >= 10_000
    assert {
        "factory_2shift",
        "factory_3shift",
        "process_plant",
        "office",
        "mall",
        "cold_storage",
        "data_centre",
    } <= set(load["segment"])
    pv = sites[sites["kind"] == "pv"]
    assert list(pv.index) == ["pv_01", "pv_02", "pv_03"]
    assert pv["tilt_deg"].between(15, 30).all() and pv["azimuth_deg"].between(150, 210).all()
    wind = sites[sites["kind"] == "wind"]
    assert wind["hub_height_m"].between(80, 110).all() and wind["turbine_type"].notna().all()


# --- measurements -------------------------------------------------------------------------


def test_measurement_timestamps_are_aware_and_regular(frames):
    m = frames["measurements"]
    assert str(m["timestamp"].dt.tz) == "UTC"
    assert not m.duplicated(["site_id", "timestamp"]).any()
    first = pd.Timestamp(START, tz=TZ)
    for site_id, rows in m.groupby("site_id"):
        stamps = pd.DatetimeIndex(rows["timestamp"]).sort_values()
        assert len(stamps) == N_DAYS * 96, site_id
        assert stamps[0] == first
        assert (np.diff(stamps.asi8) == np.diff(stamps.asi8)[0]).all(), site_id
        assert stamps[1] - stamps[0] == pd.Timedelta(minutes=15)
    value_of_kind = {"load": "load_kw", "pv": "pv_power_kw", "wind": "wind_power_kw"}
    kinds = frames["sites"].set_index("site_id")["kind"]
    own = m["site_id"].map(kinds).map(value_of_kind)
    for column in value_of_kind.values():
        assert m.loc[own == column, column].notna().all(), column
        assert m.loc[own != column, column].isna().all(), column


def test_pv_is_zero_at_night_and_within_capacity(frames, capacity):
    sites = frames["sites"].set_index("site_id")
    for site_id in ("pv_01", "pv_02", "pv_03"):
        pv = _site_series(frames, site_id, "pv_power_kw")
        lat, lon = sites.loc[site_id, ["latitude_deg", "longitude_deg"]]
        at_start = pvlib.solarposition.ephemeris(pv.index, lat, lon)["elevation"].to_numpy()
        at_end = pvlib.solarposition.ephemeris(pv.index + pd.Timedelta(minutes=15), lat, lon)[
            "elevation"
        ].to_numpy()
        night = (at_start < 0) & (at_end < 0)
        assert night.sum() > 0.4 * len(pv)
        assert (pv[night] == 0).all(), site_id
        assert pv.min() >= 0 and pv.max() <= capacity[site_id]
        assert pv.max() > 0.4 * capacity[site_id]  # clear winter noons are not flat


def test_wind_within_capacity_and_follows_observed_wind(frames, capacity):
    weather = frames["weather"]
    for site_id in ("wind_01", "wind_02"):
        power = _site_series(frames, site_id, "wind_power_kw")
        assert power.min() >= 0 and power.max() <= capacity[site_id]
        assert 0.05 < power.mean() / capacity[site_id] < 0.6
        obs = weather[(weather["site_id"] == site_id) & weather["issue_time"].isna()]
        speed = pd.Series(obs["wind_speed_100m_mps"].to_numpy(), index=obs["timestamp"])
        hourly_power = power.resample("h").mean()
        assert np.corrcoef(speed.loc[hourly_power.index], hourly_power)[0, 1] > 0.8


def test_swapped_working_weekend_and_spring_festival_for_a_factory(frames):
    assert frames["sites"].set_index("site_id").loc["load_c01", "segment"] == "factory_2shift"
    swapped, festival = dt.date(2025, 1, 26), spring_festival(2025)
    assert day_type(swapped, "CN") == "swapped_workday" and swapped.weekday() == 6
    daily = _daily_mean(_site_series(frames, "load_c01", "load_kw"))
    workdays = daily[[dt.date(2025, 1, d) for d in (6, 7, 8, 9, 10, 13, 14, 15, 16, 17)]].mean()
    weekends = daily[[dt.date(2025, 1, d) for d in (11, 12, 18, 19)]].mean()
    assert weekends < 0.6 * workdays  # the factory does rest at weekends...
    assert daily[swapped] > 0.85 * workdays  # ...but works on the swapped Sunday
    assert daily[festival] < 0.25 * workdays  # Spring Festival shutdown
    assert daily[dt.date(2025, 1, 31)] < 0.25 * workdays
    assert daily[festival] < weekends
    late_february = daily[[dt.date(2025, 2, d) for d in (24, 25, 26, 27, 28)]].mean()
    assert late_february > 0.85 * workdays  # back at work after the shutdown


def test_some_load_sites_have_net_infeed(frames):
    m = frames["measurements"]
    negative = set(m.loc[m["load_kw"] < 0, "site_id"])
    assert negative and negative <= {"load_c08", "load_c11", "load_c17"}


def test_load_follows_temperature_and_stays_below_contracted_capacity(frames, capacity):
    m = frames["measurements"]
    loads = m[m["load_kw"].notna()]
    assert (loads["load_kw"] <= loads["site_id"].map(capacity)).all()
    office = _daily_mean(_site_series(frames, "load_c04", "load_kw"))
    obs = frames["weather"]
    obs = obs[(obs["site_id"] == "load_c04") & obs["issue_time"].isna()]
    temp = _daily_mean(pd.Series(obs["temp_air_c"].to_numpy(), index=obs["timestamp"]))
    working = [d for d in office.index if day_type(d, "CN") == "workday"]
    # winter: electric heating makes colder working days heavier
    assert np.corrcoef(temp[working], office[working])[0, 1] < -0.3


# --- events and resources -----------------------------------------------------------------


def test_events_are_well_formed(frames):
    ev = frames["events"]
    assert ev["event_id"].nunique() >= 4
    assert set(ev["event_type"]) <= EVENT_TYPES
    assert not ev.duplicated(["event_id", "customer_id"]).any()
    assert set(ev["customer_id"]) <= set(frames["sites"]["customer_id"].dropna())
    for column in ("notice_time", "start", "end"):
        assert str(ev[column].dt.tz) == "UTC"
    assert (ev["start"].dt.minute % 15 == 0).all() and (ev["start"].dt.second == 0).all()
    assert (ev["end"].dt.minute % 15 == 0).all()
    duration = ev["end"] - ev["start"]
    assert duration.between(pd.Timedelta(hours=1), pd.Timedelta(hours=4)).all()
    notice = ev["start"] - ev["notice_time"]
    assert (notice > pd.Timedelta(0)).all()
    real_time = ev["event_type"] == "real_time"
    assert notice[real_time].between(pd.Timedelta(minutes=30), pd.Timedelta(hours=2)).all()
    assert (notice[ev["event_type"] == "annual"] >= pd.Timedelta(days=7)).all()
    valley = ev["event_type"] == "valley_filling"
    assert (ev.loc[valley, "target_kw"] < 0).all() and (ev.loc[~valley, "target_kw"] > 0).all()
    assert (ev["compensation_cny_per_mw"] > 0).all()
    per_event = ev.groupby("event_id")["customer_id"].nunique()
    assert (per_event < 20).all()  # a subset of customers each time


def test_events_reduce_metered_load_by_actual_kw(portfolio):
    frames = portfolio.frames
    ev = frames["events"]
    m = frames["measurements"]
    metered = m[m["load_kw"].notna()].pivot(index="timestamp", columns="site_id", values="load_kw")
    baseline = portfolio.load_kw_without_events
    assert (ev["actual_kw"] > 0).any()
    for row in ev.itertuples():
        window = (metered.index >= row.start) & (metered.index < row.end)
        site_id = f"load_{row.customer_id}"
        change = (baseline.loc[window, site_id] - metered.loc[window, site_id]).mean()
        assert change == pytest.approx(row.actual_kw, abs=0.1), row.event_id
    # outside events and their one-hour rebound the metered load is the baseline
    touched = np.zeros(len(metered), dtype=bool)
    for row in ev.itertuples():
        touched |= (metered.index >= row.start) & (metered.index < row.end + pd.Timedelta(hours=1))
    untouched = metered.loc[~touched, baseline.columns]
    np.testing.assert_allclose(untouched, baseline.loc[~touched], atol=0.051)


def test_events_visible_against_a_naive_baseline(portfolio):
    """Without the hidden truth: load in the event window is below the same window on the
    previous event-free working days, by about the settled response in total."""
    frames = portfolio.frames
    ev = frames["events"]
    ev = ev[ev["event_type"] != "valley_filling"]
    m = frames["measurements"]
    metered = (
        m[m["load_kw"].notna()]
        .pivot(index="timestamp", columns="site_id", values="load_kw")
        .tz_convert(TZ)
    )
    event_days = {(r.customer_id, r.start.tz_convert(TZ).date()) for r in ev.itertuples()}
    estimated, settled = [], []
    for row in ev.itertuples():
        start, end = row.start.tz_convert(TZ), row.end.tz_convert(TZ)
        site_id = f"load_{row.customer_id}"
        previous = []
        day = start.date()
        while len(previous) < 5 and day > metered.index[0].date():
            day -= dt.timedelta(days=1)
            if day_type(day, "CN") == "workday" and (row.customer_id, day) not in event_days:
                previous.append(day)
        if len(previous) < 3:
            continue
        shifts = [pd.Timedelta(days=(start.date() - d).days) for d in previous]
        reference = np.mean(
            [metered.loc[start - s : end - s, site_id].iloc[:-1].mean() for s in shifts]
        )
        estimated.append(reference - metered.loc[start:end, site_id].iloc[:-1].mean())
        settled.append(row.actual_kw)
    assert len(settled) >= 10
    ratio = np.sum(estimated) / np.sum(settled)
    assert 0.5 < ratio < 1.5, ratio


def test_resources_are_consistent_with_levels_and_loads(frames):
    res = frames["resources"]
    assert res["resource_id"].is_unique
    assert set(res["level"]) <= {"I", "II", "III"}
    level_1, level_2, level_3 = (res[res["level"] == lvl] for lvl in ("I", "II", "III"))
    assert (level_1["response_minutes"] <= 5).all()
    assert (level_2["response_minutes"] <= 15).all()
    assert (level_3["min_notice_minutes"] >= 240).all()
    assert (res[["capacity_kw", "max_duration_minutes", "cost_cny_per_mwh"]] > 0).all().all()
    assert res["requires_approval"].dtype == bool
    counts = res.groupby("customer_id").size()
    assert len(counts) == 20 and counts.between(2, 5).all()
    m = frames["measurements"]
    mean_load = m[m["load_kw"].notna()].groupby("site_id")["load_kw"].mean()
    total = res.groupby("customer_id")["capacity_kw"].sum()
    assert (total < 0.5 * mean_load.rename(lambda s: s.removeprefix("load_"))[total.index]).all()


def _resource(key: str, capacity_kw: float) -> Resource:
    return Resource(f"x_{key}", "x", TEMPLATES[key], capacity_kw)


def test_achievement_falls_with_short_notice_and_level_three_capacity():
    fast = [_resource("battery_storage", 100.0), _resource("hvac_setpoint", 100.0)]
    planned = [_resource("production_line", 150.0), _resource("lighting", 50.0)]
    for resources in (fast, planned):
        long = coverage(resources, 24 * 60, 120, 1.0, 150.0)
        short = coverage(resources, 30, 120, 1.0, 150.0)
        assert short <= long
    # level-III-heavy customers lose most of their coverage on short notice
    assert coverage(planned, 30, 120, 1.0, 150.0) < 0.5 * coverage(fast, 30, 120, 1.0, 150.0)
    assert coverage(planned, 24 * 60, 120, 1.0, 150.0) == pytest.approx(
        coverage(fast, 24 * 60, 120, 1.0, 150.0), rel=0.05
    )
    # idle sites have less to curtail; storage does not depend on activity
    assert coverage(planned, 24 * 60, 120, 0.2, 150.0) < coverage(fast, 24 * 60, 120, 0.2, 150.0)
    values = [expected_achievement(1.0, 1.0, notice, 14.0) for notice in (30, 120, 1440)]
    assert values[0] < values[1] < values[2] == 1.0
    assert expected_achievement(1.0, 1.0, 1440, 19.0) < expected_achievement(1.0, 1.0, 1440, 14.0)
    assert expected_achievement(1.2, 1.0, 1440, 14.0) > 1.0  # reliable customers over-deliver


def test_customers_differ_in_reliability(portfolio):
    reliability = np.array(list(portfolio.customer_reliability.values()))
    assert (reliability > 1.05).any() and (reliability < 0.85).any()


# --- weather forecasts and prices ---------------------------------------------------------


def test_observations_are_hourly_per_site(frames):
    obs = frames["weather"][frames["weather"]["issue_time"].isna()]
    assert str(obs["timestamp"].dt.tz) == "UTC"
    assert (obs["timestamp"].dt.minute == 0).all()
    counts = obs.groupby("site_id").size()
    assert len(counts) == 25 and (counts == N_DAYS * 24).all()
    assert not obs.duplicated(["site_id", "timestamp"]).any()


def test_forecasts_are_issued_before_their_timestamps_with_several_issues(frames):
    weather = frames["weather"]
    fc = weather[weather["issue_time"].notna()]
    assert str(fc["issue_time"].dt.tz) == "UTC"
    lead = fc["timestamp"] - fc["issue_time"]
    assert (lead >= pd.Timedelta(0)).all() and (lead <= pd.Timedelta(hours=72)).all()
    assert (fc["issue_time"].dt.hour == 0).all() and (fc["issue_time"].dt.minute == 0).all()
    assert not fc.duplicated(["site_id", "timestamp", "issue_time"]).any()
    issues = fc.groupby(["site_id", "timestamp"]).size()
    assert issues.index.get_level_values("site_id").nunique() == 25
    middle = issues[issues.index.get_level_values("timestamp") > pd.Timestamp("2025-01-05", tz=TZ)]
    assert (middle >= 3).all()
    # the first local day already has a day-ahead forecast (issued the day before)
    first_day = fc[fc["timestamp"] < pd.Timestamp("2025-01-02", tz=TZ)]
    assert (first_day["issue_time"] < pd.Timestamp(START, tz=TZ)).any()


def test_forecast_errors_grow_with_lead(frames):
    weather = frames["weather"]
    obs = weather[weather["issue_time"].isna()].drop(columns="issue_time")
    fc = weather[weather["issue_time"].notna()]
    joined = fc.merge(obs, on=["site_id", "timestamp"], suffixes=("_fc", "_obs"))
    lead_h = (joined["timestamp"] - joined["issue_time"]).dt.total_seconds() / 3600

    def rmse(column: str, low: float, high: float) -> float:
        sel = (lead_h >= low) & (lead_h < high)
        return float(
            np.sqrt(
                ((joined.loc[sel, column + "_fc"] - joined.loc[sel, column + "_obs"]) ** 2).mean()
            )
        )

    for column in ("temp_air_c", "wind_speed_100m_mps", "cloud_cover_frac"):
        assert 0 < rmse(column, 0, 12) < rmse(column, 48, 73), column
    daylight = joined["ghi_wm2_obs"] > 100
    relative = (joined.loc[daylight, "ghi_wm2_fc"] - joined.loc[daylight, "ghi_wm2_obs"]).abs()
    assert 0.05 < relative.mean() / joined.loc[daylight, "ghi_wm2_obs"].mean() < 0.6


def test_prices(frames):
    prices = frames["prices"]
    assert set(prices["market"]) == {"day_ahead", "real_time"}
    assert prices["price_cny_per_mwh"].between(0, 1500).all()
    for market, rows in prices.groupby("market"):
        assert len(rows) == N_DAYS * 96 and rows["timestamp"].is_unique, market
    da = prices[prices["market"] == "day_ahead"]
    rt = prices[prices["market"] == "real_time"]
    assert rt["issue_time"].isna().all() and da["issue_time"].notna().all()
    issue_local = da["issue_time"].dt.tz_convert(TZ)
    delivery_local = da["timestamp"].dt.tz_convert(TZ)
    assert (issue_local.dt.hour == 17).all() and (issue_local.dt.minute == 0).all()
    assert (
        (delivery_local.dt.normalize() - issue_local.dt.normalize()) == pd.Timedelta(days=1)
    ).all()
    hour = delivery_local.dt.hour
    by_hour = da.groupby(hour.to_numpy())["price_cny_per_mwh"].mean()
    assert by_hour[[18, 19, 20]].mean() > 1.5 * by_hour[[2, 3, 4]].mean()
    weekday = delivery_local.dt.day_of_week.to_numpy()
    assert (
        da.loc[weekday < 5, "price_cny_per_mwh"].mean()
        > da.loc[weekday >= 5, "price_cny_per_mwh"].mean()
    )


# --- files --------------------------------------------------------------------------------

ISO_LOCAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$")


def test_written_files_round_trip(frames, tmp_path):
    out = write_portfolio(frames, tmp_path / "portfolio")
    names = {p.name for p in out.iterdir()}
    assert names == {
        "sites.csv",
        "events.csv",
        "resources.csv",
        "measurements.parquet",
        "weather.parquet",
        "prices.parquet",
        "SYNTHETIC.txt",
    }
    raw = pd.read_csv(out / "events.csv", dtype=str)
    for column in ("notice_time", "start", "end"):
        assert raw[column].str.match(ISO_LOCAL).all(), column
        parsed = pd.to_datetime(raw[column], format="ISO8601", utc=True)
        assert (parsed.to_numpy() == frames["events"][column].to_numpy()).all(), column
    events = pd.read_csv(out / "events.csv")
    pd.testing.assert_series_equal(events["actual_kw"], frames["events"]["actual_kw"])
    sites = pd.read_csv(out / "sites.csv")
    pd.testing.assert_frame_equal(sites, frames["sites"], check_dtype=False)
    resources = pd.read_csv(out / "resources.csv")
    pd.testing.assert_frame_equal(resources, frames["resources"], check_dtype=False)
    for name in ("measurements", "weather", "prices"):
        back = pd.read_parquet(out / f"{name}.parquet")
        assert str(back["timestamp"].dt.tz) == "UTC", name
        pd.testing.assert_frame_equal(back, frames[name], check_dtype=False, obj=name)
    text = (out / "SYNTHETIC.txt").read_text()
    assert "SYNTHETIC" in text and "NOT REAL" in text
    assert "seed:           7" in text and "2025-01-01 00:00" in text


def test_generate_portfolio_writes_and_returns_the_directory(tmp_path):
    out = generate_portfolio(
        tmp_path / "p",
        seed=11,
        start="2024-08-01",
        end="2024-08-04",
        n_customers=2,
        n_pv=1,
        n_wind=1,
    )
    assert out == tmp_path / "p"
    assert "seed:           11" in (out / "SYNTHETIC.txt").read_text()
    m = pd.read_parquet(out / "measurements.parquet")
    assert set(m["site_id"]) == {"load_c01", "load_c02", "pv_01", "wind_01"}
    assert len(m) == 4 * 3 * 96
