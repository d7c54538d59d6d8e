"""Semi-automatic dispatch: three alternative plans when an instruction needs a dispatcher.

``dispatch_plans(instruction, resources, ...)`` answers one plan, automatic, as
``models.dispatch.decompose`` does (the same allocation and Monte Carlo), unless the
instruction's target exceeds ``approval_threshold_kw`` (2,000 kW by default: the 2 MW rule
of issue 11) or a resource of that plan needs the customer's approval
(resources.csv ``requires_approval``). Then it answers three plans, each with
``approval_required`` True, for a dispatcher to pick:

- ``lowest_cost``: ``decompose``'s plan, minimising energy cost plus the risk penalty
  ``sum_r c_r x_r + F y_r`` (``c_r`` in ``models.dispatch``);
- ``highest_reliability``: the same MILP minimising the expected failing kW
  ``sum_r (1 - p_r) x_r`` (priced at ``RELIABILITY_RISK_AVERSION_CNY_PER_KW``, so energy cost
  only breaks ties): the kW least likely to miss the settlement threshold. That linear
  objective is a proxy of P(effective) that cannot see diversification (P also rises when
  the delivery rests on many independent customers), so it is solved again with no customer
  above 50, 25 and 10 % of the required delivery (``SPREAD_SHARES``), and the plan kept is
  the candidate of highest Monte Carlo P(effective) among these and the two other plans
  (same draws; the unconstrained proxy wins ties): this plan's P is never below the
  others'. Its notes list every candidate's P and the one kept;
- ``least_production_impact``: the plan of least total curtailed share: each customer's
  curtailed share is its allocated kW over ``C_k``, and the MILP minimises their sum,
  ``sum_k sum_{r of k} x_r / C_k`` (priced at ``IMPACT_CNY_PER_SHARE`` per whole customer, so
  ``lowest_cost``'s objective only breaks ties). ``C_k`` is the customer's contracted
  capacity (sites.csv ``capacity_kw`` of its load sites, ``contracted_capacity_kw``) where
  given, else the sum of its resources' ``capacity_kw`` in resources.csv (listed in the
  notes). Why this measure: resources.csv names a resource in free text and has no type
  column that says "production process", so what it holds to weigh an impact is capacity;
  a kW shed by a customer stops ``1 / C_k`` of its operation, so a kW at a 20 MW plant
  weighs a tenth of a kW at a 2 MW workshop, and the plan asks the customers for whom the
  event is the smallest part of their business. (Minimising the largest share instead, a
  minimax, was tried: with the minimum dispatch share HiGHS could not close its gap on 1,000
  resources within 30 s, so the answer would depend on the machine's speed.) Each plan
  reports both the total and the largest share (``max_curtailed_share``).

All three plans satisfy the same constraints (eligibility, expected delivery >= target x
(1 + margin), the minimum dispatch share, headroom): they differ only in what they optimise,
and all are solved by HiGHS (``scipy.optimize.milp``). They are scored on common random
numbers (one set of Monte Carlo draws over the resources any plan uses), with the
common-factor ``correlation`` of ``models.correlation`` and, beside it, independently
(rho 0). Two plans may coincide (``same_as`` says so): the cheapest plan can also be the
most reliable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.errors import ImpossibleValueError
from forecasting.settlement import SettlementRule
from models.dispatch import (
    DRAW_BLOCK_VALUES,
    DispatchPlan,
    PlanInputs,
    achievement_draws,
    assemble_plan,
    check_correlation,
    delivery_draws,
    plan_inputs,
    simulate_achievement,
    solve_allocation,
)
from models.dispatch_eligibility import Instruction, check_resources, shorten

PLAN_NAMES = ("lowest_cost", "highest_reliability", "least_production_impact")
DEFAULT_APPROVAL_THRESHOLD_KW = 2000.0
MAX_APPROVAL_THRESHOLD_KW = 10_000_000.0  # 10 GW: beyond any VPP instruction
RELIABILITY_RISK_AVERSION_CNY_PER_KW = 10_000.0  # > 1,000 x the dearest energy per kW
SPREAD_SHARES = (0.5, 0.25, 0.1)  # per-customer caps of the spread reliability candidates
IMPACT_CNY_PER_SHARE = 1e9  # CNY per unit share: >= 10,000 CNY/kW up to C_k 100 MW, costs break ties
OBJECTIVES = {
    "lowest_cost": "minimise energy cost + risk penalty (decompose's objective)",
    "highest_reliability": "the highest P(effective) among plans minimising the expected "
                           "failing kW sum (1 - p_deliver) x allocated (energy cost breaks "
                           "ties), spread over customers or not, and the other two plans",
    "least_production_impact": "minimise the sum over customers of the curtailed share of "
                               "their contracted capacity (cost breaks ties)",
}


@dataclass
class AlternativePlan:
    """One plan for the dispatcher: its ``DispatchPlan`` and what tells it apart.

    ``risk_adjusted_cost_cny``: ``lowest_cost``'s objective for this allocation (energy +
    risk penalty + per-resource tie-breaker, CNY); ``total_curtailed_share``: the sum over
    customers of allocated kW / ``C_k`` (what least_production_impact minimises);
    ``max_curtailed_share``: the largest of them (0..1); ``approval_resources``: used resources
    with ``requires_approval``; ``same_as``: the other plans with the same allocation.
    """

    name: str
    objective: str
    plan: DispatchPlan
    approval_required: bool
    risk_adjusted_cost_cny: float
    total_curtailed_share: float
    max_curtailed_share: float
    curtailed_share: dict[str, float]
    approval_resources: list[str] = field(default_factory=list)
    same_as: list[str] = field(default_factory=list)


@dataclass
class DispatchPlans:
    """The answer of ``dispatch_plans``: ``mode`` automatic (one plan) or semi_automatic
    (three), why, and the plans; ``plans[0]`` is the recommended one (lowest cost)."""

    mode: str
    approval_required: bool
    approval_threshold_kw: float
    reasons: list[str]
    correlation: float
    plans: list[AlternativePlan]
    notes: list[str] = field(default_factory=list)

    @property
    def recommended(self) -> AlternativePlan:
        return self.plans[0]


def check_approval_threshold(value: float) -> float:
    """The approval threshold as kW in 0..``MAX_APPROVAL_THRESHOLD_KW``."""
    try:
        kw = float(value)
    except (TypeError, ValueError):
        kw = np.nan
    if not 0.0 <= kw <= MAX_APPROVAL_THRESHOLD_KW:
        raise ImpossibleValueError(f"approval_threshold_kw {value!r} must lie in 0.."
                                   f"{MAX_APPROVAL_THRESHOLD_KW:,.0f} kW (default "
                                   f"{DEFAULT_APPROVAL_THRESHOLD_KW:,.0f})")
    return kw


def contracted_capacity_kw(sites: Iterable) -> dict[str, float]:
    """customer_id -> contracted capacity (kW): the sum of ``capacity_kw`` of its load
    sites (``forecasting.portfolio.Site``s) where sites.csv gives one (> 0)."""
    out: dict[str, float] = {}
    for site in sites:
        cap = getattr(site, "capacity_kw", None)
        cid = getattr(site, "customer_id", None)
        if site.kind == "load" and cid and cap is not None and np.isfinite(cap) and cap > 0:
            out[str(cid)] = out.get(str(cid), 0.0) + float(cap)
    return out


def _customer_capacity(inputs: PlanInputs, resources: pd.DataFrame,
                       given: Mapping[str, float] | None) -> tuple[np.ndarray, list[str]]:
    """``C_k`` per eligible resource's customer (kW) and the note on its source."""
    customers = inputs.el["customer_id"].astype(str)
    own = check_resources(resources).assign(customer_id=lambda f: f["customer_id"].astype(str))
    fallback = own.groupby("customer_id")["capacity_kw"].sum()
    given = {str(k): float(v) for k, v in dict(given or {}).items()
             if v is not None and np.isfinite(float(v)) and float(v) > 0}
    capacity = customers.map(given)
    missing = sorted(set(customers[capacity.isna()]))
    notes = []
    if missing:
        notes.append(f"no contracted capacity for {len(missing)} customer(s), their curtailed "
                     "share is of their resources' total capacity_kw instead: "
                     f"{shorten(missing)}")
    capacity = capacity.fillna(customers.map(fallback)).to_numpy(dtype="float64")
    return capacity, notes


def curtailed_shares(plan: DispatchPlan, capacity_kw: Mapping[str, float]) -> dict[str, float]:
    """customer_id -> allocated kW / ``C_k`` of ``plan`` (customers it uses)."""
    return {str(row.customer_id): float(row.allocated_kw) / capacity_kw[str(row.customer_id)]
            for row in plan.by_customer.itertuples()}


def score_plans(allocations: np.ndarray, p_deliver, expected_achievement, target_kw: float,
                threshold: float, n_draws: int = 20_000, seed: int = 0,
                correlation: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """P(achievement >= ``threshold``) and mean achievement of ``k`` plans (k, n) over the
    same ``n`` resources, on common random numbers (``models.dispatch``'s delivery model)."""
    x = np.atleast_2d(np.asarray(allocations, dtype="float64"))
    used = (x > 0).any(axis=0)
    x, p = x[:, used], np.asarray(p_deliver, dtype="float64")[used]
    e = np.asarray(expected_achievement, dtype="float64")[used]
    hits, total = np.zeros(x.shape[0]), np.zeros(x.shape[0])
    if not used.any():
        return hits, total
    rng = np.random.default_rng(seed)
    block = max(1, min(n_draws, DRAW_BLOCK_VALUES // x.shape[1]))
    for begin in range(0, n_draws, block):
        size = min(block, n_draws - begin)
        achievement = achievement_draws(delivery_draws(p, size, rng, correlation), x, e,
                                        target_kw)
        hits += np.count_nonzero(achievement >= threshold, axis=0)
        total += achievement.sum(axis=0)
    return hits / n_draws, total / n_draws


def _within(inputs: PlanInputs, limit_kw: np.ndarray) -> dict[str, float]:
    """Headroom per customer: ``limit_kw`` (per eligible resource's customer, kW) within the
    inputs' own headroom."""
    limits = pd.Series(limit_kw).groupby(inputs.el["customer_id"].astype(str)).first()
    for cid, kw in inputs.headroom_kw.items():
        if cid in limits.index:
            limits[cid] = min(limits[cid], kw)
    return limits.to_dict()


def _alternative(name: str, inputs: PlanInputs, plan: DispatchPlan, capacity_kw: dict,
                 approval: pd.Series, approval_required: bool, x: np.ndarray
                 ) -> AlternativePlan:
    shares = curtailed_shares(plan, capacity_kw)
    used = x > 0
    risk_cost = float(inputs.cost @ x + inputs.fixed_cost_cny_per_resource * used.sum())
    ids = plan.allocations["resource_id"].astype(str)
    return AlternativePlan(name, OBJECTIVES[name], plan, approval_required, risk_cost,
                           float(sum(shares.values())), max(shares.values(), default=0.0),
                           shares,
                           sorted(ids[ids.map(approval).fillna(False).astype(bool)]))


def dispatch_plans(instruction: Instruction, resources: pd.DataFrame,
                   reliability: pd.DataFrame | None = None,
                   headroom_kw: Mapping[str, float] | None = None,
                   rule: SettlementRule | None = None, *,
                   approval_threshold_kw: float = DEFAULT_APPROVAL_THRESHOLD_KW,
                   customer_capacity_kw: Mapping[str, float] | None = None,
                   correlation: float = 0.0, min_dispatch_share: float = 0.2,
                   n_draws: int = 20_000, seed: int = 0, time_limit_s: float = 30.0,
                   max_planned_achievement: float = 1.0) -> DispatchPlans:
    """One automatic plan, or three for a dispatcher when the target exceeds
    ``approval_threshold_kw`` (kW) or the plan uses a resource needing approval (module doc).

    Arguments as ``models.dispatch.decompose``; ``customer_capacity_kw``: customer_id ->
    contracted capacity (kW, e.g. ``contracted_capacity_kw(portfolio.sites.values())``), the
    denominator of the curtailed share. The automatic plan equals ``decompose``'s.
    """
    rule = rule or SettlementRule()
    threshold_kw = check_approval_threshold(approval_threshold_kw)
    rho = check_correlation(correlation)
    inputs = plan_inputs(instruction, resources, reliability, headroom_kw,
                         min_dispatch_share=min_dispatch_share, time_limit_s=time_limit_s,
                         max_planned_achievement=max_planned_achievement)
    capacity, notes = _customer_capacity(inputs, resources, customer_capacity_kw)
    capacity_kw = dict(zip(inputs.el["customer_id"].astype(str), capacity, strict=True))
    approval = pd.Series(inputs.el["requires_approval"].to_numpy(dtype=bool),
                         index=inputs.el["resource_id"].astype(str).to_numpy())
    target, thr = instruction.target_kw, rule.min_achievement_ratio
    x_cost, feasible, status, solve_notes = solve_allocation(inputs)
    reasons = []
    if target > threshold_kw:
        reasons.append(f"target {target:,.1f} kW exceeds the approval threshold "
                       f"{threshold_kw:,.1f} kW")
    chosen = approval.index[approval.to_numpy() & (x_cost > 0)].tolist()
    if chosen:
        reasons.append(f"the plan uses {len(chosen)} resource(s) needing the customer's "
                       f"approval: {shorten(sorted(chosen))}")
    if not reasons:
        used = x_cost > 0
        args = (x_cost[used], inputs.p[used], inputs.e[used], target, thr)
        p_meets, achievement = simulate_achievement(*args, n_draws=n_draws, seed=seed,
                                                    correlation=rho)
        independent = (p_meets if rho == 0 else
                       simulate_achievement(*args, n_draws=n_draws, seed=seed)[0])
        plan = assemble_plan(inputs, x_cost, feasible, status, solve_notes, p_meets,
                             achievement, correlation=rho,
                             p_meets_threshold_independent=independent)
        one = _alternative("lowest_cost", inputs, plan, capacity_kw, approval, False, x_cost)
        return DispatchPlans("automatic", False, threshold_kw, [], rho, [one], notes)

    solved = {"lowest_cost": (x_cost, feasible, status, solve_notes)}
    failing = (RELIABILITY_RISK_AVERSION_CNY_PER_KW * (1.0 - inputs.p)
               + inputs.energy_cny_per_kw)
    impact = IMPACT_CNY_PER_SHARE / capacity + inputs.cost
    solved["least_production_impact"] = solve_allocation(inputs, cost=impact)
    candidates = {"the plan minimising the expected failing kW":
                  solve_allocation(inputs, cost=failing)}
    for share in SPREAD_SHARES if feasible else ():
        limit = np.full(len(inputs.cap), share * inputs.instruction.required_expected_kw)
        found = solve_allocation(inputs, cost=failing, headroom_kw=_within(inputs, limit))
        if found[1]:
            candidates[f"the same with no customer above {share:.0%} of the required "
                       "delivery"] = found
    names = [*candidates, "lowest_cost", "least_production_impact"]
    pool = [*candidates.values(), solved["lowest_cost"], solved["least_production_impact"]]
    allocations = np.vstack([one[0] for one in pool])
    p_meets, achievement = score_plans(allocations, inputs.p, inputs.e, target, thr,
                                       n_draws, seed, rho)
    independent = (p_meets if rho == 0 else
                   score_plans(allocations, inputs.p, inputs.e, target, thr, n_draws, seed)[0])
    best = int(np.argmax(p_meets))  # the first (a reliability candidate) on ties
    x, ok, st, more = pool[best]
    scored = ", ".join(f"{name} {p:.3f}" for name, p in zip(names, p_meets, strict=True))
    solved["highest_reliability"] = (x, ok, st, more + [
        f"P(effective) of the candidates: {scored}; kept {names[best]}"])
    order = [len(candidates), best, len(candidates) + 1]  # rows of PLAN_NAMES in the pool
    allocations, p_meets, achievement, independent = (
        allocations[order], p_meets[order], achievement[order], independent[order])
    plans = []
    for i, name in enumerate(PLAN_NAMES):
        x, ok, st, more = solved[name]
        plan = assemble_plan(inputs, x, ok, st, more, float(p_meets[i]), float(achievement[i]),
                             correlation=rho,
                             p_meets_threshold_independent=float(independent[i]))
        plans.append(_alternative(name, inputs, plan, capacity_kw, approval, True, x))
    for i, one in enumerate(plans):
        one.same_as = [other.name for j, other in enumerate(plans)
                       if j != i and np.allclose(allocations[i], allocations[j], atol=1e-6)]
    return DispatchPlans("semi_automatic", True, threshold_kw, reasons, rho, plans, notes)
