"""Capability metrics (issue 11 part 5): known answers on constructed readings, thresholds
with margins, the generator's 1-minute readings, the event_readings reader, vpp capability
and the /capability handler on a small SYNTHETIC portfolio."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecasting.errors import (
    DataError,
    DuplicateRowsError,
    ImpossibleValueError,
    IrregularResolutionError,
    MissingColumnsError,
    NaiveTimestampError,
    UnknownSiteError,
    UnknownValueError,
)
from models.capability import CapabilityThresholds, assess, capability_metrics

TARGET_KW = 100.0


def minutes(n: int) -> np.ndarray:
    return np.arange(n, dtype=float)


def by_name(checks):
    return {c.name: c for c in checks}


# --- metrics on constructed readings ------------------------------------------------------

def test_step_at_minute_7_gives_response_time_7_and_a_step_as_steep_as_one_minute():
    response = np.where(minutes(60) >= 7, TARGET_KW, 0.0)
    m = capability_metrics(minutes(60), response, TARGET_KW, 1.0, 60.0)
    assert m.response_time_minutes == 7.0
    # 10 % .. 90 % crossed between the midpoints 6.5 and 7.5 of the readings
    assert m.ramp_rate_kw_per_min == pytest.approx(TARGET_KW)
    assert m.accuracy == pytest.approx(1.0)
    assert m.sustained_minutes == 53.0 and m.required_sustain_minutes == 45.0
    assert m.regulation_capacity_kw == pytest.approx(TARGET_KW)


def test_linear_ramp_gives_its_slope_and_the_minute_it_reaches_90_percent():
    t = minutes(60)
    # ramp from minute 3 to 13: each reading's mean is the line at its midpoint
    response = np.clip((t + 0.5 - 3.0) / 10.0, 0, 1) * TARGET_KW
    m = capability_metrics(t, response, TARGET_KW, 1.0, 60.0)
    assert m.ramp_rate_kw_per_min == pytest.approx(TARGET_KW / 10)
    assert m.response_time_minutes == 12.0  # reading [12, 13) averages 95 %, [11, 12) 85 %


def test_accuracy_counts_deviation_either_way_after_the_allowed_response_time():
    t = minutes(60)
    response = np.where(t < 15, 0.0, np.where(t % 2 == 0, 80.0, 120.0))
    m = capability_metrics(t, response, TARGET_KW, 1.0, 60.0)
    assert m.accuracy == pytest.approx(0.8)  # |0.8 - 1| and |1.2 - 1|; the ramp not counted
    level_one = CapabilityThresholds.for_level("I")
    m1 = capability_metrics(t, response, TARGET_KW, 1.0, 60.0, level_one)
    # level I holds from minute 5: ten readings at 0 join the 45 at +-20 %
    assert m1.accuracy == pytest.approx(1 - (10 * 1.0 + 45 * 0.2) / 55)


def test_valley_filling_sign_and_regulation_capacity_over_a_window():
    t = minutes(60)
    target = -TARGET_KW  # valley filling: response_kw is already in the requested direction
    response = np.where((t >= 10) & (t < 40), 100.0, 50.0)
    th = CapabilityThresholds(sustain_window_minutes=30)
    m = capability_metrics(t, response, target, 1.0, 60.0, th)
    assert m.regulation_capacity_kw == pytest.approx(100.0)
    assert m.capacity_window_minutes == 30.0 and m.sustained_minutes == 30.0
    assert m.target_kw == target


def test_fifteen_minute_readings_give_fifteen_minute_granularity():
    offsets = np.arange(0, 60, 15, dtype=float)
    response = np.array([70.0, 100.0, 100.0, 100.0])  # the first quarter hour ramps
    m = capability_metrics(offsets, response, TARGET_KW, 15.0, 60.0)
    assert m.response_time_minutes == 15.0
    # curve through (0, 0), (7.5, 0.7), (22.5, 1.0): 10 % at 1.07 min, 90 % at 17.5 min
    assert m.ramp_rate_kw_per_min == pytest.approx(80.0 / (17.5 - 7.5 / 7))
    assert m.sustained_minutes == 45.0 and m.accuracy == pytest.approx(1.0)


def test_missing_readings_break_a_sustained_run_and_never_responding_gives_none():
    t = minutes(60)
    response = np.full(60, TARGET_KW)
    response[30] = np.nan
    m = capability_metrics(t, response, TARGET_KW, 1.0, 60.0)
    assert m.sustained_minutes == 30.0 and m.n_readings == 59
    low = capability_metrics(t, np.full(60, 50.0), TARGET_KW, 1.0, 60.0)
    assert low.response_time_minutes is None and low.ramp_rate_kw_per_min is None
    with pytest.raises(DataError, match="non-zero target"):
        capability_metrics(t, response, 0.0, 1.0, 60.0)
    with pytest.raises(DataError, match="no reading"):
        capability_metrics(t + 100, response, TARGET_KW, 1.0, 60.0)


def test_thresholds_pass_and_fail_with_their_margins():
    response = np.where(minutes(60) >= 7, 90.0, 0.0)
    m = capability_metrics(minutes(60), response, TARGET_KW, 1.0, 60.0)
    level_two = by_name(assess(m, CapabilityThresholds.for_level("II")))
    assert level_two["response_time"].passed and level_two["response_time"].margin == 8.0
    assert level_two["accuracy"].passed and level_two["accuracy"].margin == pytest.approx(0.1)
    assert level_two["sustain"].passed and level_two["sustain"].margin == 53.0 - 45.0
    assert "capacity" not in level_two
    strict = CapabilityThresholds.for_level("I", min_accuracy=0.95, min_capacity_kw=95.0)
    m1 = capability_metrics(minutes(60), response, TARGET_KW, 1.0, 60.0, strict)
    level_one = by_name(assess(m1, strict))
    assert not level_one["response_time"].passed and level_one["response_time"].margin == -2.0
    assert not level_one["accuracy"].passed
    assert level_one["capacity"].margin == pytest.approx(90.0 * 53 / 55 - 95.0)
    assert not level_one["capacity"].passed


@pytest.mark.parametrize("kwargs, match", [
    ({"min_accuracy": 1.5}, "min_accuracy"),
    ({"response_share": 0.05}, "response_share"),
    ({"max_response_minutes": float("nan")}, "finite"),
    ({"min_sustain_minutes": -5.0}, "positive"),
])
def test_bad_thresholds_are_refused_when_built(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CapabilityThresholds(**kwargs)


def test_level_three_has_no_default_response_time():
    with pytest.raises(ValueError, match="level III is planned"):
        CapabilityThresholds.for_level("III")


def test_vpp_sum_uses_the_coarsest_width():
    from inference.capability import _vpp_frame

    start = pd.Timestamp("2025-06-01T06:00:00Z")
    fine_index = pd.date_range(start, periods=30, freq="1min")
    fine = pd.DataFrame({"baseline_kw": 100.0, "actual_kw": np.arange(30.0)}, index=fine_index)
    coarse = pd.DataFrame({"baseline_kw": [50.0, 50.0], "actual_kw": [40.0, 30.0]},
                          index=pd.date_range(start, periods=2, freq="15min"))
    frame, width = _vpp_frame([(fine, 1.0), (coarse, 15.0)], start)
    assert width == 15.0
    assert frame["actual_kw"].tolist() == [7.0 + 40.0, 22.0 + 30.0]
    assert frame["baseline_kw"].tolist() == [150.0, 150.0]


# --- generator and reader -----------------------------------------------------------------

PORTFOLIO = {"seed": 7, "start": "2025-05-01", "end": "2025-06-15", "n_customers": 3,
             "n_pv": 0, "n_wind": 0}


@pytest.fixture(scope="module")
def simulated():
    from forecasting.synthetic import simulate_portfolio

    return simulate_portfolio(**PORTFOLIO)


@pytest.fixture(scope="module")
def portfolio_dir(tmp_path_factory):
    from forecasting.synthetic import generate_portfolio

    return generate_portfolio(tmp_path_factory.mktemp("capability") / "pf", **PORTFOLIO)


@pytest.fixture(scope="module")
def portfolio(portfolio_dir):
    from forecasting.portfolio import read_portfolio

    return read_portfolio(portfolio_dir)


def test_generator_writes_minute_readings_deterministically(simulated, portfolio):
    from forecasting.synthetic.minute import event_readings
    from forecasting.synthetic.random import stream

    def make(seed):
        return event_readings(stream(seed, "minute_readings"), simulated.frames,
                              simulated.load_kw_without_events)

    first, again, other = make(7), make(7), make(8)
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first["load_kw"], other["load_kw"])
    back = portfolio.event_readings
    assert len(back) == len(first) > 0
    np.testing.assert_allclose(back["load_kw"], first["load_kw"])
    events = simulated.frames["events"]
    with_minutes = set(back["event_id"])
    assert with_minutes < set(events["event_id"])  # some events, not all
    reduction = events.groupby("event_id")["target_kw"].min() > 0
    latest = events[events["event_id"].isin(reduction.index[reduction])].sort_values("start")
    kinds = events.groupby("event_id")["event_type"].first()
    for event_id in with_minutes:  # short-notice reduction events, or the latest reduction
        assert reduction[event_id]
        assert kinds[event_id] in ("real_time", "peak") or event_id == latest["event_id"].iloc[-1]
    assert (back.groupby(["event_id", "customer_id"])["timestamp"].diff().dropna()
            == pd.Timedelta(minutes=1)).all()


def test_minute_readings_average_to_the_15_minute_measurements_and_the_settled_actual(
        simulated, portfolio):
    frames = simulated.frames
    sites = frames["sites"].dropna(subset=["customer_id"]).set_index("customer_id")["site_id"]
    meas = frames["measurements"].set_index(["site_id", "timestamp"])["load_kw"]
    readings = portfolio.event_readings
    events = frames["events"].set_index(["event_id", "customer_id"])
    for (event_id, customer_id), rows in readings.groupby(["event_id", "customer_id"]):
        site = sites[customer_id]
        ev = events.loc[(event_id, customer_id)]
        assert rows["timestamp"].min() == ev["start"] - pd.Timedelta(minutes=30)
        assert rows["timestamp"].max() == ev["end"] - pd.Timedelta(minutes=1)
        interval = rows.groupby(rows["timestamp"].dt.floor("15min"))["load_kw"].mean()
        metered = meas.loc[site].reindex(interval.index)
        np.testing.assert_allclose(interval, metered, atol=0.051)
        inside = rows[(rows["timestamp"] >= ev["start"]) & (rows["timestamp"] < ev["end"])]
        truth = simulated.load_kw_without_events[site].reindex(
            inside["timestamp"].dt.floor("15min")).to_numpy()
        assert np.mean(truth - inside["load_kw"].to_numpy()) == pytest.approx(
            ev["actual_kw"], abs=0.2)


@pytest.fixture(scope="module")
def reader_inputs(portfolio_dir, portfolio):
    from forecasting.io import read_table
    from forecasting.validation import validate_sites

    sites = validate_sites(read_table(portfolio_dir / "sites.csv"), "sites.csv")
    raw = pd.read_parquet(portfolio_dir / "event_readings.parquet")
    return raw, portfolio.events, sites


def _corrupt(raw: pd.DataFrame, case: str) -> pd.DataFrame:
    bad = raw.head(40).copy()
    if case == "naive":
        bad["timestamp"] = bad["timestamp"].dt.tz_localize(None)
    elif case == "duplicate":
        bad = pd.concat([bad, bad.iloc[:1]])
    elif case == "unknown_event":
        bad.loc[bad.index[3], "event_id"] = "ev999"
    elif case == "unknown_customer":
        bad.loc[bad.index[3], "customer_id"] = "c77"
    elif case == "not_invited":
        invited = set(raw.loc[raw["event_id"] == bad["event_id"].iloc[0], "customer_id"])
        bad.loc[bad.index[3], "customer_id"] = next(
            c for c in ("c01", "c02", "c03") if c not in invited)
    elif case == "nan":
        bad.loc[bad.index[5], "load_kw"] = np.nan
    elif case == "watts":
        bad["load_kw"] *= 1000
    elif case == "irregular":
        bad.loc[bad.index[10], "timestamp"] += pd.Timedelta(seconds=30)
    elif case == "far":
        bad["timestamp"] += pd.Timedelta(days=3)
    elif case == "missing_column":
        bad = bad.drop(columns="load_kw")
    return bad


@pytest.mark.parametrize("case, error, match", [
    ("naive", NaiveTimestampError, "naive"),
    ("duplicate", DuplicateRowsError, "duplicate"),
    ("unknown_event", UnknownValueError, "ev999"),
    ("unknown_customer", UnknownSiteError, "c77"),
    ("not_invited", UnknownValueError, "has no row for event"),
    ("nan", ImpossibleValueError, "finite load_kw"),
    ("watts", ImpossibleValueError, "W instead of kW"),
    ("irregular", IrregularResolutionError, "regular grid"),
    ("far", ImpossibleValueError, "more than a day"),
    ("missing_column", MissingColumnsError, "load_kw"),
])
def test_reader_refuses_bad_event_readings(reader_inputs, case, error, match):
    from forecasting.event_readings import validate_event_readings

    raw, events, sites = reader_inputs
    with pytest.raises(error, match=match):
        validate_event_readings(_corrupt(raw, case), events, sites, "event_readings.csv")


def test_reader_reads_a_csv_copy_and_refuses_it_without_events(portfolio_dir, tmp_path):
    from forecasting.portfolio import read_portfolio

    copy = shutil.copytree(portfolio_dir, tmp_path / "pf")
    readings = pd.read_parquet(copy / "event_readings.parquet").head(50)
    (copy / "event_readings.parquet").unlink()
    readings.assign(timestamp=readings["timestamp"].dt.tz_convert("Asia/Shanghai")
                    .dt.strftime("%Y-%m-%dT%H:%M:%S+08:00")).to_csv(
        copy / "event_readings.csv", index=False)
    back = read_portfolio(copy).event_readings
    pd.testing.assert_series_equal(back["timestamp"], readings["timestamp"].astype(
        "datetime64[ns, UTC]"), check_names=False)
    (copy / "events.csv").unlink()
    with pytest.raises(DataError, match="need events.csv"):
        read_portfolio(copy)


# --- pipeline, CLI and handler on the synthetic portfolio ---------------------------------

def test_minute_and_15_minute_paths_agree_on_the_mean_reduction(portfolio):
    from inference.capability import customer_series

    event_id, customer_id = portfolio.event_readings.iloc[0][["event_id", "customer_id"]]
    ev = next(portfolio.events[(portfolio.events["event_id"] == event_id)
                               & (portfolio.events["customer_id"] == customer_id)].itertuples())
    fine, width, source, _ = customer_series(portfolio, ev, "similar_days")
    without = dataclasses.replace(portfolio, event_readings=portfolio.event_readings.head(0))
    coarse, coarse_width, coarse_source, _ = customer_series(without, ev, "similar_days")
    assert (width, source) == (1.0, "event_readings")
    assert (coarse_width, coarse_source) == (15.0, "measurements")
    reduction = (fine["baseline_kw"] - fine["actual_kw"]).mean()
    assert reduction == pytest.approx((coarse["baseline_kw"] - coarse["actual_kw"]).mean(),
                                      abs=0.06)


def invoke(*args: str):
    from pipelines.cli import app

    return CliRunner().invoke(app, ["capability", *args])


def test_cli_prints_pass_fail_per_customer_and_the_vpp_and_writes_csv(portfolio_dir, portfolio,
                                                                      tmp_path):
    minute_event = portfolio.event_readings["event_id"].iloc[0]
    events = portfolio.events
    invited = events.groupby("event_id")["customer_id"].size()
    coarse_event = next(e for e in invited.index[invited > 1]
                        if e not in set(portfolio.event_readings["event_id"])
                        and (events.loc[events["event_id"] == e, "target_kw"] > 0).all())
    out = tmp_path / "capability.csv"
    result = invoke("--data", str(portfolio_dir), "--event", minute_event, "--event",
                    coarse_event, "--level", "I", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "VPP" in result.output and ("PASS" in result.output or "FAIL" in result.output)
    assert "response time and ramp have that granularity" in result.output
    rows = pd.read_csv(out)
    assert set(rows["event_id"]) == {minute_event, coarse_event}
    assert set(rows.loc[rows["event_id"] == minute_event, "source"]) == {"event_readings"}
    assert set(rows.loc[rows["event_id"] == coarse_event, "width_minutes"]) == {15.0}
    assert (rows["response_time_margin"].dropna()
            == 5.0 - rows["response_time_minutes"].dropna()).all()
    bad = invoke("--data", str(portfolio_dir), "--event", "ev999")
    assert bad.exit_code == 2 and "unknown event 'ev999'" in bad.output
    bad = invoke("--data", str(portfolio_dir), "--level", "IV")
    assert bad.exit_code == 2 and "unknown level" in bad.output


def test_handler_answers_and_refuses_unknown_events_and_customers(portfolio):
    from serving.capability_api import CapabilityRequest, handle_capability
    from serving.limits import BoundExceededError

    minute_event = portfolio.event_readings["event_id"].iloc[0]
    answer = handle_capability(portfolio, CapabilityRequest(
        event_ids=[minute_event], thresholds={"level": "I", "min_capacity_kw": 50.0}))
    assert answer.thresholds["max_response_minutes"] == 5.0
    assert {r["source"] for r in answer.rows} == {"event_readings"}
    assert all("capacity_margin" in r for r in answer.rows)
    latest = handle_capability(portfolio, CapabilityRequest())
    assert latest.notes[0].startswith("no event or window given: the latest event")
    with pytest.raises(UnknownValueError, match="unknown event 'ev999'"):
        handle_capability(portfolio, CapabilityRequest(event_ids=["ev999"]))
    with pytest.raises(UnknownSiteError, match="unknown customer 'c77'"):
        handle_capability(portfolio, CapabilityRequest(customers=["c77"]))
    with pytest.raises(BoundExceededError, match="at most 7 days"):
        handle_capability(portfolio, CapabilityRequest(since="2025-05-01T00:00:00+08:00",
                                                       until="2025-06-01T00:00:00+08:00"))
    with pytest.raises(ValueError, match="finite"):
        CapabilityRequest(thresholds={"min_capacity_kw": float("inf")})
    with pytest.raises(ValueError, match="Extra inputs"):
        CapabilityRequest(event_id="ev001")
