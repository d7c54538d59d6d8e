"""The LCL dToU adapter and the London benchmark on a slice of the real trial data."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from inference.measurement import baseline_for_customer
from models.baselines.common import check_load, pool_of_day

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
pytestmark = pytest.mark.shared_data

EASTER_MONDAY, SUMMER_BANK_HOLIDAY = dt.date(2013, 4, 1), dt.date(2013, 8, 26)


_CACHE: dict = {}


@pytest.fixture
def lcl(shared_data):
    """The adapter module and the first 75 days of the trial (read once per session)."""
    from benchmarks.adapters import lcl_dtou

    if shared_data not in _CACHE:
        _CACHE[shared_data] = lcl_dtou.load_dataset(root=shared_data, first_days=75)
    data, blocks = _CACHE[shared_data]
    return lcl_dtou, shared_data, data, blocks


def test_half_hour_grid_per_group_in_kw(lcl):
    mod, shared, data, _ = lcl
    assert set(data.loads) == {"lcl_flex", "lcl_noflex", "lcl_all"}
    for load in data.loads.values():
        checked, res = check_load(load)
        assert res == pd.Timedelta(minutes=30) and len(checked) == 75 * 48
        assert str(load.index.tz) == "UTC" and load.index[0] == pd.Timestamp("2013-01-01",
                                                                             tz="UTC")
    raw = pd.read_csv(mod.data_dir(shared) / "dToU_group_aggregate_demand_2013.csv", nrows=3)
    # kWh per household per half hour -> mean kW
    np.testing.assert_allclose(data.loads["lcl_flex"].iloc[:3], 2 * raw["mean_flex"])
    temp = data.weather["lcl_flex"]
    assert temp["timestamp"].dt.tz is not None and temp["temp_air_c"].between(-15, 40).all()


def test_bank_holidays_calendar_and_the_england_only_days(lcl):
    mod, shared, data, _ = lcl
    assert mod.HOLIDAY_COUNTRY == "GB"
    assert pool_of_day(dt.date(2013, 1, 1), "GB") == "holiday"
    assert pool_of_day(dt.date(2013, 12, 25), "GB") == "holiday"
    # the GB calendar lacks England's Easter Monday and Summer Bank Holiday: reported ...
    assert mod.uncovered_bank_holidays(shared) == {EASTER_MONDAY, SUMMER_BANK_HOLIDAY}
    assert pool_of_day(EASTER_MONDAY, "GB") == "working"
    # ... and kept out of every pool and placebo draw
    for days in data.event_days.values():
        assert {EASTER_MONDAY, SUMMER_BANK_HOLIDAY} <= days


def test_price_events_are_blocks_of_the_tariff_schedule(lcl):
    mod, shared, data, blocks = lcl
    tariffs = mod.read_tariffs(shared)
    assert set(blocks["price_signal"]) == {"High", "Low"}
    for b in blocks.itertuples():
        inside = tariffs[(tariffs.index >= b.start) & (tariffs.index < b.end)]
        assert (inside == b.price_signal).all() and len(inside) == b.n_intervals
        assert tariffs.get(b.start - mod.RESOLUTION) != b.price_signal
        assert tariffs.get(b.end) != b.price_signal
        notice = b.notice_time.tz_convert(mod.TIMEZONE)
        assert notice.hour == 12 and notice.date() == (
            b.start.tz_convert(mod.TIMEZONE).date() - dt.timedelta(days=1))
    demand = mod.read_demand(shared)
    high = tariffs[tariffs == "High"].index
    assert (demand.loc[high, "price_gbp_per_kwh"] == 0.672).all()
    # every day a block touches is excluded for all groups
    first = blocks.iloc[0]
    assert first["start"].tz_convert(mod.TIMEZONE).date() in data.event_days["lcl_flex"]
    table = mod.events_table(blocks)
    assert len(table) == 3 * len(blocks)
    assert set(table["event_type"]) == {"peak_shaving", "valley_filling"}


def test_london_benchmark_measures_through_the_product_function(lcl):
    from benchmarks import london_dr

    _, _, data, blocks = lcl
    sub = blocks[blocks["start"] >= pd.Timestamp("2013-02-15", tz="UTC")].iloc[:2]
    rows, _ = london_dr.measure(data, sub, methods=("similar_days", "x_of_y"), placebo_days=3)
    assert set(rows["kind"]) == {"event", "placebo"}
    # the benchmark's event baseline is baseline_for_customer's on the full history
    ev = rows[(rows["kind"] == "event") & (rows["method"] == "x_of_y")].iloc[0]
    b = sub.iloc[int(ev["block"])]
    details, _ = baseline_for_customer(
        data.loads[ev["customer_id"]], timezone=data.timezone,
        holiday_country=data.holiday_country, event_days=data.event_days[ev["customer_id"]],
        start=b["start"], end=b["end"], notice_time=b["notice_time"], method="x_of_y")
    assert ev["baseline_kwh"] == pytest.approx(details.frame["baseline_kw"].sum() * 0.5)
    table = london_dr.summarise(rows, n_boot=200)
    assert (table["ci_lo_kwh"] <= table["ci_hi_kwh"]).all()
    assert (table["placebo_cvrmse"] > 0).all() and (table["n_placebo"] > 0).all()
