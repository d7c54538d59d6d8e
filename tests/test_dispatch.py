"""Dispatch decomposition: eligibility rules, the MILP on hand-computed cases, the Monte Carlo
against exact enumeration, the reliability estimator, errors and the ``dispatch`` CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from forecasting.errors import ImpossibleValueError, MissingColumnsError, UnknownValueError
from forecasting.settlement import SettlementRule
from models.dispatch import (
    DEFAULT_EXPECTED_ACHIEVEMENT,
    DEFAULT_P_DELIVER,
    FAILED_DELIVERY_SHARE,
    Instruction,
    NoEligibleResourceError,
    ValleyFillingNotImplementedError,
    decompose,
    eligibility,
    historical_reliability,
    simulate_achievement,
)
from pipelines.cli_dispatch import app

START = "2025-07-01T14:00:00+08:00"
END = "2025-07-01T16:00:00+08:00"  # 120 min
NOTICE_4H = "2025-07-01T10:00:00+08:00"


def instruction(target_kw=600.0, start=START, end=END, notice_time=NOTICE_4H, **kw):
    return Instruction(target_kw=target_kw, start=start, end=end, notice_time=notice_time, **kw)


def resources(*rows: dict) -> pd.DataFrame:
    """resources.csv rows; defaults: level I, 1-min response, no notice, 240 min, 100 CNY/MWh."""
    base = {"name": "test", "level": "I", "capacity_kw": 500.0, "response_minutes": 1,
            "min_notice_minutes": 0, "max_duration_minutes": 240, "cost_cny_per_mwh": 100.0,
            "requires_approval": False}
    out = []
    for i, row in enumerate(rows):
        rid = row.get("resource_id", f"r{i}")
        out.append({**base, "resource_id": rid, "customer_id": row.get("customer_id", f"c_{rid}"),
                    **row})
    return pd.DataFrame(out)


def certain(frame: pd.DataFrame, p=1.0, e=1.0) -> pd.DataFrame:
    """Reliability keyed by resource_id: every resource delivers exactly (risk term 0)."""
    return pd.DataFrame({"resource_id": frame["resource_id"], "p_deliver": p,
                         "expected_achievement": e})


def allocated(plan) -> dict[str, float]:
    return dict(zip(plan.allocations["resource_id"], plan.allocations["allocated_kw"],
                    strict=True))


# --- the MILP on small hand-computed cases (window 2 h: energy cost = price * kW * 2 / 1000)

def test_cheapest_eligible_resources_reach_target_times_margin():
    frame = resources({"resource_id": "a", "cost_cny_per_mwh": 100.0},
                      {"resource_id": "b", "cost_cny_per_mwh": 200.0},
                      {"resource_id": "c", "cost_cny_per_mwh": 300.0, "capacity_kw": 1000.0})
    plan = decompose(instruction(600.0, reserve_margin=0.1), frame, certain(frame))
    # need 660 kW: all of the cheapest (500), the rest (160) from the next cheapest
    assert allocated(plan) == pytest.approx({"a": 500.0, "b": 160.0})
    assert plan.feasible and plan.shortfall_kw == 0.0
    assert plan.required_expected_kw == pytest.approx(660.0)
    assert plan.planned_expected_kw == pytest.approx(660.0)
    assert plan.total_cost_cny == pytest.approx(500 * 100 * 2 / 1000 + 160 * 200 * 2 / 1000)
    assert plan.p_meets_threshold == 1.0 and plan.expected_achievement == pytest.approx(1.1)
    assert plan.solver_status == "optimal" and plan.assumed_reliability == []
    assert list(plan.by_customer["customer_id"]) == ["c_a", "c_b"]
    json.dumps(plan.to_dict())  # JSON-ready


def test_over_delivery_is_not_counted_on():
    frame = resources({"resource_id": "a", "capacity_kw": 1000.0})
    plan = decompose(instruction(500.0, reserve_margin=0.0), frame, certain(frame, e=1.2))
    # the customer's 120 % habit would let 417 kW look like 500: it is planned at 100 %
    assert allocated(plan) == pytest.approx({"a": 500.0})
    assert any("over-delivery is not counted on" in n for n in plan.notes)
    loose = decompose(instruction(500.0, reserve_margin=0.0), frame, certain(frame, e=1.2),
                      max_planned_achievement=1.2)
    assert allocated(loose) == pytest.approx({"a": 500.0 / 1.2})


def test_level_iii_excluded_at_60_minutes_notice():
    frame = resources({"resource_id": "fast"},
                      {"resource_id": "planned", "level": "III", "response_minutes": 30,
                       "min_notice_minutes": 1440})
    ins = instruction(notice_time="2025-07-01T13:00:00+08:00")
    table = eligibility(frame, ins).set_index("resource_id")
    assert table.loc["fast", "eligible"] and table.loc["fast", "reason"] == ""
    assert not table.loc["planned", "eligible"]
    assert "level III needs >= 240 min notice" in table.loc["planned", "reason"]
    assert "notice 60 min < min_notice_minutes 1440" in table.loc["planned", "reason"]
    plan = decompose(ins, frame, certain(frame), rule=SettlementRule())
    assert list(plan.excluded["resource_id"]) == ["planned"]
    assert set(allocated(plan)) == {"fast"}


def test_five_minute_notice_leaves_only_level_i():
    frame = resources({"resource_id": "one", "response_minutes": 5},
                      {"resource_id": "two", "level": "II", "response_minutes": 15,
                       "min_notice_minutes": 15},
                      {"resource_id": "slow_one", "response_minutes": 8},
                      {"resource_id": "three", "level": "III", "response_minutes": 60})
    table = eligibility(frame, instruction(notice_time="2025-07-01T13:55:00+08:00"))
    reasons = dict(zip(table["resource_id"], table["reason"], strict=True))
    assert list(table.loc[table["eligible"], "resource_id"]) == ["one"]
    assert "level II needs >= 15 min notice" in reasons["two"]
    assert "response_minutes 15 > notice 5 min" in reasons["two"]
    assert "level I needs response_minutes <= 5 (has 8)" in reasons["slow_one"]
    assert "level III needs >= 240 min notice" in reasons["three"]


def test_max_duration_excludes():
    frame = resources({"resource_id": "short", "max_duration_minutes": 120},
                      {"resource_id": "long", "max_duration_minutes": 240})
    table = eligibility(frame, instruction(end="2025-07-01T17:00:00+08:00"))
    assert list(table["eligible"]) == [False, True]
    assert table["reason"].iloc[0] == "duration 180 min > max_duration_minutes 120"


def test_requires_approval_excluded_unless_allowed():
    frame = resources({"resource_id": "diesel", "level": "II", "response_minutes": 15,
                       "requires_approval": True, "cost_cny_per_mwh": 10.0},
                      {"resource_id": "pumps", "level": "II", "response_minutes": 15,
                       "cost_cny_per_mwh": 300.0})
    plan = decompose(instruction(400.0, reserve_margin=0.0), frame, certain(frame))
    assert allocated(plan) == pytest.approx({"pumps": 400.0})
    assert plan.excluded["reason"].tolist() == ["requires approval (allow_approval=False)"]
    plan = decompose(instruction(400.0, reserve_margin=0.0, allow_approval=True), frame,
                     certain(frame))
    assert allocated(plan) == pytest.approx({"diesel": 400.0})
    assert plan.excluded.empty


def test_more_reliable_resource_used_first_at_equal_cost():
    frame = resources({"resource_id": "shaky", "capacity_kw": 1000.0},
                      {"resource_id": "solid", "capacity_kw": 1000.0})
    reliability = pd.DataFrame({"resource_id": ["shaky", "solid"], "p_deliver": [0.6, 0.95],
                                "expected_achievement": [1.0, 1.0]})
    plan = decompose(instruction(500.0, reserve_margin=0.0), frame, reliability)
    assert allocated(plan) == pytest.approx({"solid": 500.0})


def test_customer_headroom_caps_the_customer():
    frame = resources({"resource_id": "a", "customer_id": "c1", "cost_cny_per_mwh": 100.0},
                      {"resource_id": "b", "customer_id": "c1", "cost_cny_per_mwh": 150.0},
                      {"resource_id": "c", "customer_id": "c2", "cost_cny_per_mwh": 300.0,
                       "capacity_kw": 1000.0})
    ins = instruction(1000.0, reserve_margin=0.0)
    assert allocated(decompose(ins, frame, certain(frame))) == pytest.approx(
        {"a": 500.0, "b": 500.0})
    plan = decompose(ins, frame, certain(frame), headroom_kw={"c1": 700.0})
    assert allocated(plan) == pytest.approx({"a": 500.0, "b": 200.0, "c": 300.0})
    by = plan.by_customer.set_index("customer_id")
    assert by.loc["c1", "allocated_kw"] == pytest.approx(700.0)
    assert by.loc["c1", "headroom_kw"] == 700.0 and np.isnan(by.loc["c2", "headroom_kw"])
    assert by.loc["c1", "resources"] == "a, b"


def test_min_dispatch_share_no_slivers():
    frame = resources({"resource_id": "a", "cost_cny_per_mwh": 100.0},
                      {"resource_id": "b", "cost_cny_per_mwh": 200.0, "capacity_kw": 1000.0})
    ins = instruction(600.0, reserve_margin=0.0)
    # without the share: a 500 + b 100; with 0.2: b takes at least 200, so a drops to 400
    assert allocated(decompose(ins, frame, certain(frame), min_dispatch_share=0.0)) == (
        pytest.approx({"a": 500.0, "b": 100.0}))
    assert allocated(decompose(ins, frame, certain(frame))) == pytest.approx(
        {"a": 400.0, "b": 200.0})


def test_infeasible_target_gives_max_delivery_plan_and_shortfall():
    frame = resources({"resource_id": "a"}, {"resource_id": "b", "capacity_kw": 300.0})
    plan = decompose(instruction(1000.0, reserve_margin=0.1), frame)  # default reliability
    assert not plan.feasible
    assert allocated(plan) == pytest.approx({"a": 500.0, "b": 300.0})
    expected = DEFAULT_EXPECTED_ACHIEVEMENT * 800.0  # 720 kW
    assert plan.planned_expected_kw == pytest.approx(expected)
    assert plan.shortfall_kw == pytest.approx(1100.0 - expected)
    assert plan.assumed_reliability == ["a", "b"]
    assert (plan.allocations["p_deliver"] == DEFAULT_P_DELIVER).all()
    assert any("at most 720.0 kW" in note for note in plan.notes)
    assert "infeasible" in plan.solver_status


def test_resource_reliability_wins_over_customer_and_missing_cost_noted():
    frame = resources({"resource_id": "a", "customer_id": "c1", "cost_cny_per_mwh": np.nan},
                      {"resource_id": "b", "customer_id": "c1"},
                      {"resource_id": "c", "customer_id": "c2"})
    reliability = pd.DataFrame({"customer_id": ["c1", None], "resource_id": [None, "b"],
                                "p_deliver": [0.7, 0.9], "expected_achievement": [0.8, 1.1]})
    plan = decompose(instruction(1300.0, reserve_margin=0.0), frame, reliability,
                     min_dispatch_share=0.0)
    rel = plan.allocations.set_index("resource_id")
    # b (500 kW expected: its 1.1 is planned as 1.0) and c (450) first, a the rest:
    # 350 kW expected / 0.8 = 437.5 kW
    assert rel["allocated_kw"].to_dict() == pytest.approx({"a": 437.5, "b": 500.0, "c": 500.0})
    assert rel.loc["a", "p_deliver"] == 0.7 and rel.loc["a", "expected_achievement"] == 0.8
    assert rel.loc["b", "p_deliver"] == 0.9 and rel.loc["b", "expected_achievement"] == 1.0
    assert plan.assumed_reliability == ["c"]
    assert rel.loc["a", "cost_cny"] == 0.0
    assert any("no cost_cny_per_mwh for a" in note for note in plan.notes)


# --- Monte Carlo against exact enumeration of the delivery model

def test_monte_carlo_matches_exact_two_resources():
    x, p, e = np.array([700.0, 300.0]), np.array([0.9, 0.7]), np.array([0.9, 1.0])
    target, threshold = 1000.0, 0.8
    exact_p, exact_mean = 0.0, 0.0
    for outcome in itertools.product([True, False], repeat=2):
        ok = np.array(outcome)
        prob = np.prod(np.where(ok, p, 1 - p))
        achievement = np.where(ok, x, FAILED_DELIVERY_SHARE * e * x).sum() / target
        exact_p += prob * (achievement >= threshold)
        exact_mean += prob * achievement
    # by hand: only "a fails" (315 + 300 = 615 kW) and "both fail" miss 80 %: P = 0.9
    assert exact_p == pytest.approx(0.9)
    assert exact_mean == pytest.approx((700 * 0.945 + 300 * 0.85) / 1000)
    p_meets, mean = simulate_achievement(x, p, e, target, threshold)
    assert abs(p_meets - exact_p) <= 0.01
    assert abs(mean - exact_mean) <= 0.01
    assert simulate_achievement(x, p, e, target, threshold) == (p_meets, mean)  # fixed seed


# --- the reliability estimator

def test_historical_reliability_shrinkage_by_hand():
    events = pd.DataFrame({
        "event_id": ["e1", "e2", "e3", "e1", "e4", "e5"],
        "customer_id": ["A", "A", "A", "B", "B", "B"],
        "end": pd.to_datetime(["2025-06-01T16:00+08:00"] * 5 + ["2025-06-20T16:00+08:00"]),
        "target_kw": [100.0, 100.0, 100.0, 200.0, -50.0, 100.0],
        "actual_kw": [100.0, 50.0, 90.0, 120.0, -60.0, np.nan],
    })
    rel = historical_reliability(events, SettlementRule(), prior_strength=5.0)
    # usable: A 1.0, 0.5, 0.9 (2 successes); B 0.6 (valley filling and NaN actual left out)
    # p0 = 2/4 = 0.5, a0 = 3.0/4 = 0.75
    assert rel.loc["A", "p_deliver"] == pytest.approx((2 + 5 * 0.5) / (3 + 5))
    assert rel.loc["B", "p_deliver"] == pytest.approx((0 + 5 * 0.5) / (1 + 5))
    assert rel.loc["A", "expected_achievement"] == pytest.approx((2.4 + 5 * 0.75) / 8)
    assert rel.loc["B", "expected_achievement"] == pytest.approx((0.6 + 5 * 0.75) / 6)
    assert rel["n_events"].to_dict() == {"A": 3, "B": 1}
    strong = pd.DataFrame({"customer_id": ["C", "C"], "end": events["end"].iloc[:2],
                           "target_kw": [100.0, 100.0], "actual_kw": [200.0, 180.0]})
    capped = historical_reliability(strong, prior_strength=0.0)
    assert capped.loc["C", "expected_achievement"] == 1.2  # mean 1.9 capped
    assert capped.loc["C", "p_deliver"] == 1.0
    later = historical_reliability(events.assign(end=pd.to_datetime(
        ["2025-06-20T16:00+08:00"] * 6)), before=pd.Timestamp("2025-06-10T00:00+08:00"))
    assert later.empty
    assert historical_reliability(pd.DataFrame()).empty


# --- errors

def test_naive_timestamps_and_bad_windows_refused():
    with pytest.raises(ValidationError, match="start 2025-07-01T14:00:00 has no UTC offset"):
        instruction(start="2025-07-01T14:00:00")
    with pytest.raises(ValidationError, match="notice_time .* has no UTC offset"):
        instruction(notice_time="2025-07-01T10:00:00")
    with pytest.raises(ValidationError, match="end .* must be after start"):
        instruction(end=START)
    with pytest.raises(ValidationError, match="notice_time .* is after start"):
        instruction(notice_time="2025-07-01T15:00:00+08:00")
    with pytest.raises(ValidationError, match="Extra inputs"):
        instruction(target=5)
    with pytest.raises(ValidationError, match="unknown event_type 'spot'"):
        instruction(event_type="spot")


def test_valley_filling_not_implemented():
    with pytest.raises(ValleyFillingNotImplementedError, match="valley filling .* not "
                       "implemented"):
        instruction(-500.0)
    with pytest.raises(ValleyFillingNotImplementedError, match="load reductions only"):
        instruction(500.0, event_type="valley_filling")


def test_bad_resources_frames():
    ins = instruction()
    with pytest.raises(MissingColumnsError, match=r"\['level', 'capacity_kw'\]"):
        eligibility(resources({}).drop(columns=["capacity_kw", "level"]), ins)
    with pytest.raises(UnknownValueError, match="unknown level 'IV' of resource r0; expected "
                       "one of I, II, III"):
        decompose(ins, resources({"level": "IV"}))
    with pytest.raises(ImpossibleValueError, match="capacity_kw -5 of resource r0 is negative"):
        decompose(ins, resources({"capacity_kw": -5.0}))
    with pytest.raises(ValueError, match="no rows"):
        decompose(ins, resources())
    with pytest.raises(NoEligibleResourceError, match=r"r0: level III needs >= 240 min notice"
                       r".*r1: requires approval"):
        decompose(instruction(notice_time="2025-07-01T13:00:00+08:00"),
                  resources({"level": "III", "response_minutes": 30},
                            {"requires_approval": True}))
    with pytest.raises(ImpossibleValueError, match="p_deliver 1.5 must lie in 0..1"):
        decompose(ins, resources({}), pd.DataFrame({"customer_id": ["c_r0"], "p_deliver": [1.5],
                                                    "expected_achievement": [1.0]}))
    with pytest.raises(ImpossibleValueError, match="headroom_kw of customer c_r0"):
        decompose(ins, resources({}), headroom_kw={"c_r0": -1.0})


# --- the CLI on a short synthetic portfolio

@pytest.fixture(scope="module")
def portfolio_dir(tmp_path_factory):
    from forecasting.synthetic import generate_portfolio

    return generate_portfolio(tmp_path_factory.mktemp("dispatch") / "pf", seed=7,
                              start="2025-06-01", end="2025-06-08", n_customers=4, n_pv=0,
                              n_wind=0)


def cli_args(data, **over) -> list[str]:
    opts = {"--data": str(data), "--target-kw": "500", "--start": "2025-06-10T14:00:00+08:00",
            "--end": "2025-06-10T16:00:00+08:00",
            "--notice-time": "2025-06-10T10:00:00+08:00", **over}
    return ["dispatch", *itertools.chain.from_iterable(opts.items())]


def test_cli_dispatch_on_sample_portfolio(portfolio_dir, tmp_path):
    out = tmp_path / "alloc.csv"
    result = CliRunner().invoke(app, cli_args(portfolio_dir, **{"--out": str(out)}))
    assert result.exit_code == 0, result.output
    assert "totals: target 500.0 kW, required expected 550.0 kW" in result.output
    assert "shortfall 0.0 kW, P(achievement >= 80%)" in result.output
    assert "excluded resources" in result.output
    written = pd.read_csv(out)
    assert written["expected_kw"].sum() == pytest.approx(550.0, abs=1e-3)
    assert {"resource_id", "customer_id", "allocated_kw", "p_deliver"} <= set(written)


def test_cli_dispatch_bad_input_exits_2(portfolio_dir):
    result = CliRunner().invoke(app, cli_args(portfolio_dir,
                                              **{"--start": "2025-06-10T14:00:00"}))
    assert result.exit_code == 2
    assert "error: --start '2025-06-10T14:00:00' has no UTC offset" in result.output
    result = CliRunner().invoke(app, cli_args(portfolio_dir, **{"--target-kw": "-100"}))
    assert result.exit_code == 2 and "valley filling" in result.output


def test_cli_dispatch_prints_three_plans_above_the_threshold(portfolio_dir, tmp_path):
    out = tmp_path / "plans.csv"
    result = CliRunner().invoke(app, cli_args(portfolio_dir, **{
        "--approval-threshold-kw": "100", "--out": str(out)}))
    assert result.exit_code == 0, result.output
    assert ("semi-automatic: target 500.0 kW exceeds the approval threshold 100.0 kW"
            in result.output)
    assert "alternative plans (approval required)" in result.output
    assert "correlation rho " in result.output and "if resources were independent" in (
        result.output)
    written = pd.read_csv(out)
    assert list(written["plan"].unique()) == ["lowest_cost", "highest_reliability",
                                              "least_production_impact"]
    for _, plan in written.groupby("plan"):
        assert plan["expected_kw"].sum() >= 550.0 - 1e-3
    default = CliRunner().invoke(app, cli_args(portfolio_dir))
    assert default.exit_code == 0 and "automatic: one plan, no approval required" in (
        default.output)
