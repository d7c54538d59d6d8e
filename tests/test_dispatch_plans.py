"""Semi-automatic dispatch (models.dispatch_plans, POST /dispatch's handler): the 2 MW rule,
three plans that optimise different things on a hand-built portfolio, approval-bound
resources, and the delivery correlation estimated from events before the notice only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from forecasting.errors import ImpossibleValueError
from forecasting.portfolio import Portfolio, Site
from models.correlation import estimate_correlation
from models.dispatch import Instruction, decompose
from models.dispatch_plans import (
    PLAN_NAMES,
    contracted_capacity_kw,
    dispatch_plans,
    score_plans,
)
from serving.dispatch_api import DispatchRequest, handle_dispatch

START = "2025-07-01T14:00:00+08:00"
END = "2025-07-01T16:00:00+08:00"
NOTICE = "2025-07-01T10:00:00+08:00"
BASE = {"name": "test", "level": "I", "response_minutes": 1, "min_notice_minutes": 0,
        "max_duration_minutes": 240, "requires_approval": False}
# per kW of 2 h: energy = cost_cny_per_mwh x 2 / 1000; risk penalty 30 x (1 - p)
#   cheap  0.2 + 4.5 = 4.7 CNY/kW  (unreliable, cheapest, a small customer)
#   sure   6.0 + 0.9 = 6.9 CNY/kW  (reliable, dear, a mid-sized customer)
#   spread 3.0 + 4.5 = 7.5 CNY/kW  (two large customers: a small share of their load)
ROWS = [("cheap", "small", 2000.0, 100.0, 0.85), ("sure", "mid", 2000.0, 3000.0, 0.97),
        ("spread_a", "big_a", 1500.0, 1500.0, 0.85),
        ("spread_b", "big_b", 1500.0, 1500.0, 0.85)]
CONTRACTED_KW = {"small": 3000.0, "mid": 4000.0, "big_a": 20000.0, "big_b": 20000.0}


def portfolio_rows(*extra: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    resources = pd.DataFrame([{**BASE, "resource_id": r, "customer_id": c, "capacity_kw": cap,
                               "cost_cny_per_mwh": cost} for r, c, cap, cost, _ in ROWS]
                             + [{**BASE, **row} for row in extra])
    reliability = pd.DataFrame({"resource_id": resources["resource_id"],
                                "p_deliver": [p for *_, p in ROWS] + [0.9] * len(extra),
                                "expected_achievement": 0.95})
    return resources, reliability


def instruction(target_kw: float = 1500.0, **kw) -> Instruction:
    return Instruction(target_kw=target_kw, start=START, end=END, notice_time=NOTICE, **kw)


@pytest.fixture(scope="module")
def three():
    resources, reliability = portfolio_rows()
    return dispatch_plans(instruction(), resources, reliability, approval_threshold_kw=1000.0,
                          customer_capacity_kw=CONTRACTED_KW, n_draws=20_000)


def test_above_the_threshold_three_feasible_plans_each_needing_approval(three):
    assert three.mode == "semi_automatic" and three.approval_required
    assert three.reasons == ["target 1,500.0 kW exceeds the approval threshold 1,000.0 kW"]
    assert [p.name for p in three.plans] == list(PLAN_NAMES)
    caps = {r: cap for r, _, cap, *_ in ROWS}
    for one in three.plans:
        plan = one.plan
        assert one.approval_required
        assert plan.feasible and plan.shortfall_kw == 0
        assert plan.planned_expected_kw >= 1500.0 * 1.1 - 1e-6  # target x (1 + margin)
        for row in plan.allocations.itertuples():
            assert 0.2 * caps[row.resource_id] - 1e-6 <= row.allocated_kw
            assert row.allocated_kw <= caps[row.resource_id] + 1e-6
        assert one.same_as == []  # three distinct plans


def test_each_plan_is_best_at_what_it_optimises(three):
    cost, reliable, impact = three.plans
    used = {p.name: set(p.plan.allocations["resource_id"]) for p in three.plans}
    assert used["lowest_cost"] == {"cheap"}  # 1650 / 0.95 kW of the 4.7 CNY/kW resource
    assert used["least_production_impact"] <= {"spread_a", "spread_b"}
    assert "sure" in used["highest_reliability"]
    # lowest_cost: the least energy + risk penalty, and here the least energy too
    assert cost.risk_adjusted_cost_cny == pytest.approx(1650 / 0.95 * 4.7 + 1.0)
    assert cost.risk_adjusted_cost_cny < min(reliable.risk_adjusted_cost_cny,
                                             impact.risk_adjusted_cost_cny)
    assert cost.plan.total_cost_cny < min(reliable.plan.total_cost_cny,
                                          impact.plan.total_cost_cny)
    # highest_reliability: the highest P(effective), scored on the same draws
    assert reliable.plan.p_meets_threshold > max(cost.plan.p_meets_threshold,
                                                 impact.plan.p_meets_threshold)
    # least_production_impact: the least total share of the contracted capacities,
    # 1650 / 0.95 kW from the two 20,000 kW customers (how it splits them is a tie)
    assert impact.total_curtailed_share == pytest.approx(1650 / 0.95 / 20000, rel=1e-6)
    assert cost.total_curtailed_share == pytest.approx(1650 / 0.95 / 3000)
    assert impact.total_curtailed_share < min(cost.total_curtailed_share,
                                              reliable.total_curtailed_share)
    assert impact.max_curtailed_share <= impact.total_curtailed_share + 1e-12
    assert any("kept" in note for note in reliable.plan.notes)  # the candidates' P listed


def test_the_plans_scores_are_the_monte_carlo_on_common_draws(three):
    x = np.vstack([[p.plan.allocations.set_index("resource_id")["allocated_kw"].get(r, 0.0)
                    for r, *_ in ROWS] for p in three.plans])
    p, e = np.array([p for *_, p in ROWS]), np.full(4, 0.95)
    p_meets, achievement = score_plans(x, p, e, 1500.0, 0.8, n_draws=20_000, seed=0)
    np.testing.assert_allclose(p_meets, [one.plan.p_meets_threshold for one in three.plans])
    np.testing.assert_allclose(achievement,
                               [one.plan.expected_achievement for one in three.plans])
    # one resource of p 0.85: effective exactly when it delivers
    assert three.plans[0].plan.p_meets_threshold == pytest.approx(0.85, abs=0.01)


def test_below_the_threshold_one_automatic_plan_equal_to_decompose():
    resources, reliability = portfolio_rows()
    ins = instruction(1500.0)
    auto = dispatch_plans(ins, resources, reliability, customer_capacity_kw=CONTRACTED_KW)
    assert auto.mode == "automatic" and not auto.approval_required and auto.reasons == []
    (only,) = auto.plans
    assert only.name == "lowest_cost" and not only.approval_required
    assert only.plan.to_dict() == decompose(ins, resources, reliability).to_dict()
    # the threshold is "exceeds": a target equal to it stays automatic
    assert dispatch_plans(ins, resources, reliability,
                          approval_threshold_kw=1500.0).mode == "automatic"
    with pytest.raises(ImpossibleValueError, match="approval_threshold_kw -1"):
        dispatch_plans(ins, resources, reliability, approval_threshold_kw=-1)


def test_a_chosen_resource_needing_approval_makes_it_semi_automatic():
    diesel = {"resource_id": "diesel", "customer_id": "small", "capacity_kw": 800.0,
              "cost_cny_per_mwh": 0.0, "requires_approval": True}
    resources, reliability = portfolio_rows(diesel)
    small = instruction(500.0, allow_approval=True)  # well below 2,000 kW
    answer = dispatch_plans(small, resources, reliability, customer_capacity_kw=CONTRACTED_KW)
    assert answer.mode == "semi_automatic" and len(answer.plans) == 3
    assert "needing the customer's approval: diesel" in answer.reasons[0]
    assert answer.plans[0].approval_resources == ["diesel"]
    assert all(p.approval_required for p in answer.plans)
    # without approval arranged the diesel cannot be chosen: automatic again
    plain = dispatch_plans(instruction(500.0), resources, reliability)
    assert plain.mode == "automatic" and "diesel" not in set(
        plain.plans[0].plan.allocations["resource_id"])


def test_correlation_changes_p_and_the_independent_model_is_reported():
    resources = pd.DataFrame([{**BASE, "resource_id": f"r{i}", "customer_id": f"c{i}",
                               "capacity_kw": 400.0, "cost_cny_per_mwh": 100.0}
                              for i in range(6)])
    reliability = pd.DataFrame({"resource_id": resources["resource_id"], "p_deliver": 0.8,
                                "expected_achievement": 1.0})
    ins = instruction(1800.0)
    answer = dispatch_plans(ins, resources, reliability, correlation=0.6,
                            approval_threshold_kw=1000.0)
    independent = dispatch_plans(ins, resources, reliability, approval_threshold_kw=1000.0)
    for with_rho, without in zip(answer.plans, independent.plans, strict=True):
        assert with_rho.plan.correlation == 0.6 and without.plan.correlation == 0.0
        assert with_rho.plan.p_meets_threshold_independent == pytest.approx(
            without.plan.p_meets_threshold)
        # a common cause makes the five-resource plans less sure than independence says
        assert with_rho.plan.p_meets_threshold < with_rho.plan.p_meets_threshold_independent - 0.05


def events_frame() -> pd.DataFrame:
    """Three customers; 8 events ended before the notice with mixed outcomes, 8 after it in
    which all deliver or all fail together (a strong common cause seen only later)."""
    rows = []
    before = ["110", "011", "101", "110", "011", "101", "111", "100"]
    after = ["111", "000", "111", "000", "111", "000", "111", "000"]
    for k, pattern in enumerate(before + after):
        day = pd.Timestamp("2025-05-01T14:00:00+08:00") + pd.Timedelta(days=7 * k)
        for c, hit in zip(("c0", "c1", "c2"), pattern, strict=True):
            rows.append({"event_id": f"e{k:02d}", "customer_id": c, "event_type": "day_ahead",
                         "notice_time": day - pd.Timedelta(hours=4), "start": day,
                         "end": day + pd.Timedelta(hours=2), "target_kw": 100.0,
                         "actual_kw": 100.0 if hit == "1" else 40.0})
    frame = pd.DataFrame(rows)
    for col in ("notice_time", "start", "end"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def test_the_service_handler_uses_rho_of_events_ended_before_the_notice():
    events = events_frame()
    notice = pd.Timestamp("2025-06-20T10:00:00+08:00")  # after event 7, before event 8
    assert (events["end"] <= notice).sum() == 24
    resources = pd.DataFrame([{**BASE, "resource_id": f"{c}_r1", "customer_id": c,
                               "capacity_kw": 600.0, "cost_cny_per_mwh": 100.0}
                              for c in ("c0", "c1", "c2")])
    sites = {"load_c0": Site(site_id="load_c0", kind="load", timezone="Asia/Shanghai",
                             capacity_kw=6000.0, customer_id="c0")}
    portfolio = Portfolio(sites=sites, measurements=pd.DataFrame(), weather=pd.DataFrame(),
                          prices=pd.DataFrame(), events=events, resources=resources,
                          source=Path("constructed"))
    request = DispatchRequest(target_kw=900.0, start="2025-06-20T14:00:00+08:00",
                              end="2025-06-20T16:00:00+08:00", notice_time=notice,
                              approval_threshold_kw=500.0)
    body = handle_dispatch(portfolio, request)
    known = estimate_correlation(events[events["end"] <= notice], before=notice)
    leaked = estimate_correlation(events)
    assert body.correlation == pytest.approx(known.rho) and body.correlation_note == known.note
    assert leaked.rho > known.rho + 0.3  # what the later events would have said
    assert body.mode == "semi_automatic" and len(body.plans) == 3 and body.approval_required
    first = body.plans[0]
    assert first.name == "lowest_cost"
    assert (body.p_meets_threshold, body.total_cost_cny, body.planned_expected_kw) == (
        first.p_meets_threshold, first.total_cost_cny, first.planned_expected_kw)
    assert [a.model_dump() for a in first.allocations] == body.allocations
    assert body.p_meets_threshold_independent == first.p_meets_threshold_independent
    # c0's share is of its contracted 6,000 kW; c1 and c2 have none: their resources' 600 kW
    shares = {row.customer_id: row.curtailed_share for p in body.plans for row in p.by_customer}
    for row in (r for p in body.plans for r in p.by_customer):
        assert row.curtailed_share == pytest.approx(
            row.allocated_kw / (6000.0 if row.customer_id == "c0" else 600.0))
    assert set(shares) <= {"c0", "c1", "c2"}
    assert any("no contracted capacity for 2 customer(s)" in n for n in body.notes)
    given = handle_dispatch(portfolio, request.model_copy(update={"correlation": 0.5}))
    assert given.correlation == 0.5 and given.correlation_note == "given in the request"
    with pytest.raises(ValidationError, match="approval_threshold_kw"):
        DispatchRequest(**{**request.model_dump(), "approval_threshold_kw": -1})


def test_contracted_capacity_sums_a_customers_load_sites():
    sites = [Site(site_id="a", kind="load", timezone="UTC", capacity_kw=100.0, customer_id="c"),
             Site(site_id="b", kind="load", timezone="UTC", capacity_kw=50.0, customer_id="c"),
             Site(site_id="p", kind="pv", timezone="UTC", capacity_kw=900.0, customer_id="c"),
             Site(site_id="n", kind="load", timezone="UTC", customer_id="d")]
    assert contracted_capacity_kw(sites) == {"c": 150.0}


def test_an_unreachable_target_gives_three_max_delivery_plans_with_the_shortfall():
    resources, reliability = portfolio_rows()
    answer = dispatch_plans(instruction(9000.0), resources, reliability)  # 7,000 kW in all
    assert answer.mode == "semi_automatic" and len(answer.plans) == 3
    for one in answer.plans:
        assert not one.plan.feasible
        assert one.plan.shortfall_kw == pytest.approx(9900.0 - 7000 * 0.95, rel=1e-6)


def test_decompose_reports_the_independent_p_beside_the_correlated_one():
    resources, reliability = portfolio_rows()
    ins = instruction(3000.0)
    correlated = decompose(ins, resources, reliability, correlation=0.7)
    independent = decompose(ins, resources, reliability)
    assert correlated.correlation == 0.7 and independent.correlation == 0.0
    assert correlated.p_meets_threshold_independent == independent.p_meets_threshold
    assert independent.p_meets_threshold_independent == independent.p_meets_threshold
    assert correlated.p_meets_threshold < independent.p_meets_threshold - 0.01  # 0.978, 0.997
