"""Dispatch decomposition: split a VPP instruction into allocations per customer and resource.

``decompose(instruction, resources, reliability, headroom_kw)`` answers "cut 2,000 kW from
14:00 to 16:00, notice 4 h" with kW per resource, chosen by a mixed-integer programme solved
by HiGHS (``scipy.optimize.milp``), then scores the plan's chance of meeting the settlement
threshold by Monte Carlo. ``eligibility`` (``models.dispatch_eligibility``) decides first
which resources may take part (response level, notice, duration, approval).

Glossary (per eligible resource ``r``; kW are mean power over the window):

- ``x_r`` allocated kW, ``y_r`` 1 if the resource is used; ``cap_r`` = ``capacity_kw``;
- ``p_r`` = ``p_deliver``: probability that the resource's achievement reaches the settlement
  threshold (``SettlementRule.min_achievement_ratio``, default 0.8);
- ``e_r`` = ``expected_achievement``: expected delivered / allocated ratio;
- ``T`` = ``target_kw``, ``m`` = ``reserve_margin``, ``d`` = window length (h).

MILP::

    minimise   sum_r  c_r x_r + F y_r
    with       c_r = cost_cny_per_mwh_r * d / 1000 + risk_aversion_cny_per_kw * (1 - p_r)
    subject to sum_r e_r x_r >= T (1 + m)                      (expected delivery with margin)
               s cap_r y_r <= x_r <= cap_r y_r,  y_r in {0, 1} (no slivers: s = min share)
               sum_{r of customer k} x_r <= headroom_kw[k]     (where a headroom is given)

``F`` (``fixed_cost_cny_per_resource``, 1 CNY) is a tie-breaker preferring fewer resources.
When no plan reaches ``T (1 + m)``, a second MILP maximises ``sum e_r x_r`` and a third
finds the cheapest plan with that delivery; the plan is returned with ``feasible=False`` and
``shortfall_kw = T (1 + m) - sum e_r x_r``.

Delivery model of the Monte Carlo (``simulate_achievement``): each used resource delivers
its full allocation ``x_r`` with probability ``p_r``, otherwise ``FAILED_DELIVERY_SHARE *
e_r * x_r`` (half of its expected ratio: an assumption, not fitted on data). Event
achievement = sum of deliveries / ``T``, compared with the rule's threshold.

By default (``correlation`` 0) resources are independent, which is optimistic under a
common cause (a heat wave, a production rush hits all customers at once). ``correlation`` =
rho > 0 makes the draws of one event share a common factor (a one-factor Gaussian copula
[1]_ [2]_): resource ``r`` delivers when ``sqrt(rho) z + sqrt(1 - rho) eps_r < Phi^-1(p_r)``
with ``z`` (one per event) and ``eps_r`` independent standard normals, so each resource still
delivers with probability ``p_r`` and any two resources' latent variables have correlation
rho (``models.correlation`` estimates it from settled events).

A success delivers ratio 1, not ``e_r``: the Monte Carlo ``expected_achievement`` is
therefore not ``planned_expected_kw / T`` (two models: the MILP plans on ``e_r``, the
simulation scores threshold risk on ``p_r``). The plan never counts on over-delivery:
``e_r`` is capped at ``max_planned_achievement`` (1.0) before the MILP, since a customer
that delivered 119 % on average was not asked for it and may stop doing so.

Default reliability where none is given (``DEFAULT_P_DELIVER`` 0.8,
``DEFAULT_EXPECTED_ACHIEVEMENT`` 0.9): a typical demand-response success rate, not a
measurement; the plan lists every resource that used it in ``assumed_reliability``.

``decompose`` runs three steps that ``models.dispatch_plans`` reuses for its alternative
plans (same eligibility, constraints and solver, other objectives): ``plan_inputs``
(eligibility, reliability, costs), ``solve_allocation`` (the MILP for a cost vector and
headroom) and ``assemble_plan`` (the ``DispatchPlan`` of an allocation and its scores).

References
----------
.. [1] Vasicek, O. (2002), "The distribution of loan portfolio value", Risk 15(12): the
   one-factor model of correlated defaults.
.. [2] Li, D. X. (2000), "On default correlation: a copula function approach", Journal of
   Fixed Income 9(4): the Gaussian copula of binary outcomes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array, diags_array, hstack
from scipy.special import ndtri

from forecasting.errors import DuplicateRowsError, ImpossibleValueError, MissingColumnsError
from forecasting.settlement import SettlementRule
from models.dispatch_eligibility import (
    Instruction,
    NoEligibleResourceError,
    ValleyFillingNotImplementedError,
    check_resources,
    eligibility,
    no_eligible_error,
    shorten,
)
from models.response import historical_rate

__all__ = ["DispatchPlan", "DispatchSolverError", "Instruction", "NoEligibleResourceError",
           "PlanInputs", "ValleyFillingNotImplementedError", "achievement_draws",
           "assemble_plan", "check_correlation", "check_resources", "decompose",
           "delivery_draws", "eligibility", "historical_reliability", "plan_inputs",
           "simulate_achievement", "solve_allocation"]

DEFAULT_P_DELIVER = 0.8
DEFAULT_EXPECTED_ACHIEVEMENT = 0.9
FAILED_DELIVERY_SHARE = 0.5
DRAW_BLOCK_VALUES = 4_000_000  # random numbers per block of the Monte Carlo (memory bound)
RELIABILITY_COLUMNS = ("p_deliver", "expected_achievement")
ALLOCATION_COLUMNS = ("resource_id", "customer_id", "name", "level", "allocated_kw",
                      "capacity_kw", "p_deliver", "expected_achievement", "expected_kw",
                      "cost_cny")


class DispatchSolverError(RuntimeError):
    """HiGHS ended without a usable answer (neither a plan nor proven infeasibility)."""


@dataclass
class DispatchPlan:
    """The answer of ``decompose`` (kW: mean power over the window; CNY: energy cost).

    ``correlation``: the common-factor rho the Monte Carlo used; ``p_meets_threshold`` is
    scored with it, ``p_meets_threshold_independent`` with independent resources (rho 0,
    the same seed: equal to ``p_meets_threshold`` when rho is 0).
    """

    instruction: Instruction
    allocations: pd.DataFrame
    by_customer: pd.DataFrame
    excluded: pd.DataFrame
    target_kw: float
    required_expected_kw: float
    planned_expected_kw: float
    shortfall_kw: float
    feasible: bool
    p_meets_threshold: float
    expected_achievement: float
    total_cost_cny: float
    solver_status: str
    assumed_reliability: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    correlation: float = 0.0
    p_meets_threshold_independent: float = float("nan")

    def to_dict(self) -> dict:
        """JSON-ready dict (frames as lists of records, times ISO 8601)."""
        def records(frame: pd.DataFrame) -> list[dict]:
            return json.loads(frame.to_json(orient="records"))

        return {
            "instruction": self.instruction.model_dump(mode="json"),
            "allocations": records(self.allocations),
            "by_customer": records(self.by_customer),
            "excluded": records(self.excluded),
            **{k: float(getattr(self, k)) for k in (
                "target_kw", "required_expected_kw", "planned_expected_kw", "shortfall_kw",
                "p_meets_threshold", "expected_achievement", "total_cost_cny", "correlation",
                "p_meets_threshold_independent")},
            "feasible": bool(self.feasible),
            "solver_status": self.solver_status,
            "assumed_reliability": list(self.assumed_reliability),
            "notes": list(self.notes),
        }


def historical_reliability(events: pd.DataFrame, rule: SettlementRule | None = None,
                           prior_strength: float = 5.0, before=None) -> pd.DataFrame:
    """Per-customer ``p_deliver`` and ``expected_achievement`` from settled past events.

    The reference estimator of ``models.response.historical_rate`` (a Beta-shrunk success
    share and a shrunk mean achievement capped at the paid cap; formula there), applied to
    the rows a reduction plan may use: settled (``actual_kw``), reductions (``target_kw > 0``;
    valley filling is left out) and, if ``before`` is given (tz-aware), ended by then (no
    leakage). Returns a frame indexed by ``customer_id`` with ``p_deliver``,
    ``expected_achievement``, ``n_events``, empty when no event qualifies.
    """
    rule = rule or SettlementRule()
    if prior_strength < 0 or not np.isfinite(prior_strength):
        raise ValueError(f"prior_strength {prior_strength} must be a finite number >= 0")
    columns = ["p_deliver", "expected_achievement", "n_events"]
    empty = pd.DataFrame({"p_deliver": pd.Series(dtype="float64"),
                          "expected_achievement": pd.Series(dtype="float64"),
                          "n_events": pd.Series(dtype="int64")},
                         index=pd.Index([], name="customer_id", dtype="string"))
    if events is None or events.empty:
        return empty
    missing = [c for c in ("customer_id", "target_kw", "actual_kw", "end") if c not in events]
    if missing:
        raise MissingColumnsError(f"events: missing column(s) {missing} for the reliability "
                                   "history", missing)
    rows = settled_reductions(events, before)
    if rows.empty:
        return empty
    if "event_id" not in rows:  # one row per event and customer: any unique id serves
        rows = rows.assign(event_id=np.arange(len(rows)).astype(str))
    out = historical_rate(rows, rule, prior_strength)[columns]
    return out.astype({"n_events": "int64"})


def settled_reductions(events: pd.DataFrame, before=None) -> pd.DataFrame:
    """The rows of events.csv with a settled reduction: ``target_kw`` > 0 and ``actual_kw``
    known (both numeric in the result), and, if ``before`` (tz-aware) is given, ``end`` at or
    before it."""
    target = pd.to_numeric(events["target_kw"], errors="coerce")
    actual = pd.to_numeric(events["actual_kw"], errors="coerce")
    use = (target > 0) & actual.notna()
    if before is not None:
        cut = pd.Timestamp(before)
        if cut.tzinfo is None:
            raise ValueError(f"before {before} has no UTC offset")
        use &= pd.to_datetime(events["end"], utc=True) <= cut
    return events[use].assign(target_kw=target[use], actual_kw=actual[use])


def check_correlation(correlation: float) -> float:
    """The common-factor correlation as a float in [0, 1] (``ImpossibleValueError`` else)."""
    try:
        rho = float(correlation)
    except (TypeError, ValueError):
        rho = np.nan
    if not 0.0 <= rho <= 1.0:
        raise ImpossibleValueError(f"correlation {correlation!r} must lie in 0..1 (0: "
                                   "independent resources; negative values have no "
                                   "one-factor model)")
    return rho


def delivery_draws(p_deliver, n_draws: int, rng: np.random.Generator,
                   correlation: float = 0.0) -> np.ndarray:
    """Which resources deliver in each of ``n_draws`` simulated events: bool (n_draws, n).

    ``correlation`` 0: independent (``rng.random((n_draws, n)) < p``); rho > 0: the one-factor
    Gaussian copula of the module doc (draws in float32: the comparison needs no more).
    Generated in blocks of ``DRAW_BLOCK_VALUES`` random numbers; same ``rng`` state, same
    draws.
    """
    p = np.asarray(p_deliver, dtype="float64")
    rho = check_correlation(correlation)
    out = np.empty((n_draws, p.size), dtype=bool)
    if rho > 0:
        threshold = ndtri(np.clip(p, 0.0, 1.0)).astype("float32")
        loading, noise = np.float32(np.sqrt(rho)), np.float32(np.sqrt(1.0 - rho))
    block = max(1, DRAW_BLOCK_VALUES // max(p.size, 1))
    for begin in range(0, n_draws, block):
        size = min(block, n_draws - begin)
        if rho == 0:
            out[begin:begin + size] = rng.random((size, p.size)) < p
        else:
            common = rng.standard_normal(size, dtype="float32")[:, None]
            own = rng.standard_normal((size, p.size), dtype="float32")
            out[begin:begin + size] = loading * common + noise * own < threshold
    return out


def achievement_draws(success: np.ndarray, allocated_kw, expected_achievement, target_kw
                      ) -> np.ndarray:
    """Event achievement (delivered kW / ``target_kw``) of each draw of ``success``.

    ``success``: ``delivery_draws`` (n_draws, n). ``allocated_kw``: one plan (n,) or ``k``
    plans over the same resources (k, n), scored on the same draws (common random numbers);
    ``target_kw`` a number or one per plan. Returns (n_draws,) or (n_draws, k). A resource
    delivers its allocation when it succeeds, else ``FAILED_DELIVERY_SHARE * e_r`` of it.
    Several plans are summed in float32 (BLAS; about 1e-7 relative: a draw exactly at the
    threshold may fall either side), one plan in float64 as ``simulate_achievement`` does.
    """
    x = np.asarray(allocated_kw, dtype="float64")
    fail_kw = FAILED_DELIVERY_SHARE * np.asarray(expected_achievement, dtype="float64") * x
    gain = x - fail_kw
    if x.ndim == 1:
        return (fail_kw.sum() + success @ gain) / target_kw
    delivered = np.empty((success.shape[0], x.shape[0]))
    rows = max(1, DRAW_BLOCK_VALUES // max(success.shape[1], 1))
    weights = gain.T.astype("float32")
    for begin in range(0, success.shape[0], rows):  # BLAS on float blocks, not bool @ float
        part = success[begin:begin + rows].astype("float32")
        delivered[begin:begin + rows] = part @ weights
    return (fail_kw.sum(axis=1) + delivered) / np.asarray(target_kw, dtype="float64")


def simulate_achievement(allocated_kw, p_deliver, expected_achievement, target_kw: float,
                         threshold: float, n_draws: int = 20_000, seed: int = 0,
                         correlation: float = 0.0) -> tuple[float, float]:
    """Monte Carlo of the event achievement (delivery model in the module doc).

    Arrays per used resource: ``allocated_kw`` (kW), ``p_deliver`` (0..1),
    ``expected_achievement`` (ratio). ``correlation``: the common-factor rho (0: independent
    resources, the draws of earlier versions exactly). Returns (P(achievement >= threshold),
    mean achievement), achievement = delivered kW / ``target_kw``. Draws are processed in
    blocks so memory stays small for many resources; same seed, same answer.
    """
    x = np.asarray(allocated_kw, dtype="float64")
    p = np.asarray(p_deliver, dtype="float64")
    check_correlation(correlation)
    if x.size == 0:
        return 0.0, 0.0
    rng = np.random.default_rng(seed)
    block = max(1, min(n_draws, DRAW_BLOCK_VALUES // x.size))
    hits, total = 0, 0.0
    for begin in range(0, n_draws, block):
        size = min(block, n_draws - begin)
        success = delivery_draws(p, size, rng, correlation)
        achievement = achievement_draws(success, x, expected_achievement, target_kw)
        hits += int(np.count_nonzero(achievement >= threshold))
        total += float(achievement.sum())
    return hits / n_draws, total / n_draws


def _reliability(table: pd.DataFrame, reliability: pd.DataFrame | None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(p, e, assumed) per row of ``table``; resource rows win over customer rows."""
    n = len(table)
    p, e = np.full(n, np.nan), np.full(n, np.nan)
    if reliability is not None:
        rel = reliability
        if any(name in ("customer_id", "resource_id") for name in rel.index.names):
            rel = rel.reset_index()
        missing = [c for c in RELIABILITY_COLUMNS if c not in rel]
        keys = [c for c in ("customer_id", "resource_id") if c in rel]
        if missing or not keys:
            need = missing + ([] if keys else ["customer_id or resource_id"])
            raise MissingColumnsError(f"reliability: missing column(s) {need}; give "
                                       "p_deliver and expected_achievement per customer_id "
                                       "(or resource_id)", need)
        values = {c: pd.to_numeric(rel[c], errors="coerce").astype("float64")
                  for c in RELIABILITY_COLUMNS}
        bad = (values["p_deliver"] < 0) | (values["p_deliver"] > 1) | (
            values["expected_achievement"] < 0)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ImpossibleValueError(
                f"reliability row {i}: p_deliver {values['p_deliver'].iloc[i]} must lie in "
                f"0..1 and expected_achievement {values['expected_achievement'].iloc[i]} be >= 0")
        rid = (rel["resource_id"].astype("string") if "resource_id" in rel
               else pd.Series(pd.NA, index=rel.index, dtype="string"))
        for key, rows in (("customer_id", rid.isna()), ("resource_id", rid.notna())):
            if key not in rel or not rows.any():
                continue
            ids = rel.loc[rows, key].astype("string")
            if ids.duplicated().any():
                raise DuplicateRowsError(f"reliability: {key} {ids[ids.duplicated()].iloc[0]} "
                                         "appears twice")
            look = table[key].astype("string")
            for c, arr in (("p_deliver", p), ("expected_achievement", e)):
                found = look.map(pd.Series(values[c][rows].to_numpy(), index=ids.to_numpy()))
                found = pd.to_numeric(found, errors="coerce").to_numpy(dtype="float64")
                arr[:] = np.where(np.isnan(found), arr, found)
    assumed = np.isnan(p) | np.isnan(e)
    return (np.where(np.isnan(p), DEFAULT_P_DELIVER, p),
            np.where(np.isnan(e), DEFAULT_EXPECTED_ACHIEVEMENT, e), assumed)


def _headroom(customers: pd.Series, headroom_kw: Mapping[str, float] | None
              ) -> tuple[csr_array | None, np.ndarray]:
    """Customer rows (customers x resources, 1 where the resource is the customer's) and
    their limits (kW), for the customers of ``headroom_kw`` that have eligible resources."""
    if headroom_kw is None:
        return None, np.empty(0)
    limits = {}
    for cid, limit in dict(headroom_kw).items():
        try:
            value = float(limit)
        except (TypeError, ValueError):
            value = np.nan
        if not np.isfinite(value) or value < 0:
            raise ImpossibleValueError(f"headroom_kw of customer {cid} is {limit!r}; it must be "
                                       "a number >= 0 kW")
        limits[str(cid)] = value
    ids = customers.astype("string").to_numpy(dtype=object)
    chosen = [cid for cid in limits if (ids == cid).any()]
    if not chosen:
        return None, np.empty(0)
    row_of = {cid: i for i, cid in enumerate(chosen)}
    cols = np.array([j for j, cid in enumerate(ids) if cid in row_of], dtype=int)
    rows = np.array([row_of[ids[j]] for j in cols], dtype=int)
    matrix = csr_array((np.ones(len(cols)), (rows, cols)), shape=(len(chosen), len(ids)))
    return matrix, np.array([limits[cid] for cid in chosen])


def _solve(cost: np.ndarray, fixed: float, expected: np.ndarray, cap: np.ndarray, share: float,
           headroom: tuple[csr_array | None, np.ndarray], need_kw: float | None,
           time_limit_s: float):
    """One HiGHS MILP over z = [x, y] (module doc). ``need_kw=None``: maximise expected
    delivery instead of minimising cost. Returns scipy's ``OptimizeResult``."""
    n = len(cap)
    eye = diags_array(np.ones(n))
    constraints = [LinearConstraint(hstack([eye, diags_array(-cap)]), -np.inf, 0.0),
                   LinearConstraint(hstack([eye, diags_array(-share * cap)]), 0.0, np.inf)]
    if need_kw is not None:
        constraints.append(LinearConstraint(np.concatenate([expected, np.zeros(n)])[None, :],
                                            need_kw, np.inf))
    matrix, limits = headroom
    if matrix is not None:
        constraints.append(LinearConstraint(hstack([matrix, csr_array(matrix.shape)]),
                                            -np.inf, limits))
    objective = (np.concatenate([-expected, np.zeros(n)]) if need_kw is None
                 else np.concatenate([cost, np.full(n, fixed)]))
    return milp(objective, constraints=constraints,
                integrality=np.concatenate([np.zeros(n), np.ones(n)]),
                bounds=Bounds(np.zeros(2 * n), np.concatenate([cap, np.ones(n)])),
                options={"time_limit": time_limit_s, "mip_rel_gap": 1e-6})


_STATUS = {0: "optimal", 1: "limit reached (best plan found)", 2: "infeasible",
           3: "unbounded", 4: "solver error"}


def _usable(result) -> bool:
    return result.status in (0, 1) and result.x is not None


@dataclass
class PlanInputs:
    """What every plan of one instruction shares (``plan_inputs``): the eligibility table,
    the eligible rows ``el`` with their ``p`` / ``e`` (capped), capacity ``cap`` (kW), the
    energy cost per allocated kW ``energy_cny_per_kw`` and ``decompose``'s unit cost ``cost``
    (energy + risk penalty, CNY/kW), the headroom rows and the notes so far."""

    instruction: Instruction
    table: pd.DataFrame
    el: pd.DataFrame
    p: np.ndarray
    e: np.ndarray
    cap: np.ndarray
    energy_cny_per_kw: np.ndarray
    cost: np.ndarray
    headroom_kw: dict[str, float]
    min_dispatch_share: float
    fixed_cost_cny_per_resource: float
    time_limit_s: float
    assumed_ids: list[str]
    notes: list[str]

    def headroom(self, headroom_kw: Mapping[str, float] | None = None
                 ) -> tuple[csr_array | None, np.ndarray]:
        """The headroom rows of ``_solve`` for ``headroom_kw`` (default the plan's)."""
        return _headroom(self.el["customer_id"],
                         self.headroom_kw if headroom_kw is None else headroom_kw)


def plan_inputs(instruction: Instruction, resources: pd.DataFrame,
                reliability: pd.DataFrame | None = None,
                headroom_kw: Mapping[str, float] | None = None, *,
                min_dispatch_share: float = 0.2, fixed_cost_cny_per_resource: float = 1.0,
                time_limit_s: float = 30.0, max_planned_achievement: float = 1.0
                ) -> PlanInputs:
    """Eligibility, reliability, costs and checks of ``decompose`` (arguments there)."""
    if not isinstance(instruction, Instruction):
        raise TypeError(f"instruction must be an Instruction, got {type(instruction).__name__}")
    if not 0 <= min_dispatch_share <= 1:
        raise ValueError(f"min_dispatch_share {min_dispatch_share} must lie in 0..1")
    table = eligibility(resources, instruction)
    if not table["eligible"].any():
        raise no_eligible_error(table)
    notes: list[str] = []
    el = table[table["eligible"]].reset_index(drop=True)
    p, e, assumed = _reliability(el, reliability)
    if max_planned_achievement <= 0:
        raise ValueError(f"max_planned_achievement {max_planned_achievement} must be > 0")
    over = e > max_planned_achievement
    if over.any():
        notes.append(f"expected_achievement above {max_planned_achievement:g} planned as "
                     f"{max_planned_achievement:g} for {int(over.sum())} resource(s) "
                     "(max_planned_achievement): over-delivery is not counted on")
        e = np.minimum(e, max_planned_achievement)
    assumed_ids = el.loc[assumed, "resource_id"].astype(str).tolist()
    if assumed_ids:
        notes.append(f"no reliability for {len(assumed_ids)} resource(s), assumed p_deliver "
                     f"{DEFAULT_P_DELIVER} and expected_achievement "
                     f"{DEFAULT_EXPECTED_ACHIEVEMENT}: {shorten(assumed_ids)}")
    price = el["cost_cny_per_mwh"].to_numpy(dtype="float64")
    if np.isnan(price).any():
        notes.append("no cost_cny_per_mwh for "
                     f"{shorten(el.loc[np.isnan(price), 'resource_id'].astype(str).tolist())}"
                     ": energy cost taken as 0")
        price = np.nan_to_num(price, nan=0.0)
    energy_cny_per_kw = price * (instruction.duration_minutes / 60.0) / 1000.0
    cost = energy_cny_per_kw + instruction.risk_aversion_cny_per_kw * (1.0 - p)
    cap = el["capacity_kw"].to_numpy(dtype="float64")
    _headroom(el["customer_id"], headroom_kw)  # checks the limits
    limits = {str(k): float(v) for k, v in dict(headroom_kw or {}).items()}
    return PlanInputs(instruction, table, el, p, e, cap, energy_cny_per_kw, cost, limits,
                      min_dispatch_share, fixed_cost_cny_per_resource, time_limit_s,
                      assumed_ids, notes)


def solve_allocation(inputs: PlanInputs, cost: np.ndarray | None = None,
                     headroom_kw: Mapping[str, float] | None = None
                     ) -> tuple[np.ndarray, bool, str, list[str]]:
    """The MILP of the module doc with objective ``cost`` (CNY/kW per resource of
    ``inputs.el``; default ``decompose``'s) and ``headroom_kw`` (default the inputs').

    Returns (allocation kW per eligible resource, feasible, solver status, notes); an
    unreachable target gives the cheapest max-delivery plan with ``feasible=False``.
    """
    cost = inputs.cost if cost is None else np.asarray(cost, dtype="float64")
    e, cap, share = inputs.e, inputs.cap, inputs.min_dispatch_share
    args = (cost, inputs.fixed_cost_cny_per_resource, e, cap, share,
            inputs.headroom(headroom_kw))
    need = inputs.instruction.required_expected_kw
    time_limit_s = inputs.time_limit_s
    notes: list[str] = []
    result = _solve(*args, need, time_limit_s)
    feasible = result.status != 2
    status = _STATUS.get(result.status, "unknown")
    if not feasible:
        best = _solve(*args, None, time_limit_s)
        if not _usable(best):
            raise DispatchSolverError(f"HiGHS could not maximise delivery: {best.message}")
        most = float(e @ best.x[:len(cap)])
        cheapest = _solve(*args, most * (1 - 1e-9) - 1e-6, time_limit_s)
        result = cheapest if _usable(cheapest) else best
        status = f"target infeasible; max-delivery plan {_STATUS.get(result.status, '')}"
        notes.append(f"eligible resources reach at most {most:.1f} kW expected (capacity, "
                     f"headroom and min_dispatch_share {share:g}), below the "
                     f"required {need:.1f} kW = target x (1 + reserve_margin "
                     f"{inputs.instruction.reserve_margin:g}); the plan maximises expected "
                     "delivery")
    if not _usable(result):
        raise DispatchSolverError(f"HiGHS ended without a plan: {result.message}")
    if result.status == 1:
        notes.append(f"HiGHS stopped at its limit ({time_limit_s:g} s): the plan may not be "
                     "the cheapest")
    n = len(cap)
    used = (result.x[n:] > 0.5) & (result.x[:n] > 1e-6)
    return np.where(used, np.clip(result.x[:n], 0.0, cap), 0.0), feasible, status, notes


def assemble_plan(inputs: PlanInputs, x: np.ndarray, feasible: bool, status: str,
                  notes: list[str], p_meets_threshold: float, expected_achievement: float,
                  *, correlation: float = 0.0,
                  p_meets_threshold_independent: float | None = None) -> DispatchPlan:
    """The ``DispatchPlan`` of allocation ``x`` (kW per eligible resource) and its scores."""
    el, p, e = inputs.el, inputs.p, inputs.e
    instruction = inputs.instruction
    used = x > 0
    alloc = el.loc[used, ["resource_id", "customer_id", "name", "level", "capacity_kw"]].copy()
    alloc["allocated_kw"] = x[used]
    alloc["p_deliver"] = p[used]
    alloc["expected_achievement"] = e[used]
    alloc["expected_kw"] = e[used] * x[used]
    alloc["cost_cny"] = inputs.energy_cny_per_kw[used] * x[used]
    alloc = alloc[list(ALLOCATION_COLUMNS)].sort_values(["customer_id", "resource_id"],
                                                        ignore_index=True)
    by_customer = (alloc.groupby("customer_id", sort=True)
                   .agg(allocated_kw=("allocated_kw", "sum"), expected_kw=("expected_kw", "sum"),
                        cost_cny=("cost_cny", "sum"),
                        resources=("resource_id", lambda ids: ", ".join(map(str, ids))))
                   .reset_index())
    by_customer["headroom_kw"] = by_customer["customer_id"].astype(str).map(
        inputs.headroom_kw).astype("float64")
    table = inputs.table
    excluded = table.loc[~table["eligible"], ["resource_id", "customer_id", "level", "reason"]]
    need = instruction.required_expected_kw
    planned = float(e @ x)
    return DispatchPlan(
        instruction=instruction, allocations=alloc, by_customer=by_customer,
        excluded=excluded.reset_index(drop=True), target_kw=instruction.target_kw,
        required_expected_kw=need, planned_expected_kw=planned,
        shortfall_kw=0.0 if feasible else max(0.0, need - planned), feasible=feasible,
        p_meets_threshold=p_meets_threshold, expected_achievement=expected_achievement,
        total_cost_cny=float(alloc["cost_cny"].sum()), solver_status=status,
        assumed_reliability=list(inputs.assumed_ids), notes=list(inputs.notes) + notes,
        correlation=float(correlation),
        p_meets_threshold_independent=(p_meets_threshold if p_meets_threshold_independent
                                       is None else p_meets_threshold_independent))


def decompose(instruction: Instruction, resources: pd.DataFrame,
              reliability: pd.DataFrame | None = None,
              headroom_kw: Mapping[str, float] | None = None,
              rule: SettlementRule | None = None, *, min_dispatch_share: float = 0.2,
              fixed_cost_cny_per_resource: float = 1.0, n_draws: int = 20_000, seed: int = 0,
              time_limit_s: float = 30.0,
              max_planned_achievement: float = 1.0, correlation: float = 0.0) -> DispatchPlan:
    """Allocate ``instruction`` over ``resources`` (resources.csv rows) by MILP (module doc).

    ``reliability``: frame keyed (column or index) by ``customer_id`` and/or ``resource_id``
    (a resource row wins) with ``p_deliver`` (0..1) and ``expected_achievement`` (>= 0);
    missing values take the defaults and are listed in ``assumed_reliability``.
    ``headroom_kw``: customer_id -> the most that customer can reduce (kW), e.g. its baseline
    minus a floor. ``min_dispatch_share``: a used resource takes at least this share of its
    capacity. ``rule``: the settlement rule whose threshold the Monte Carlo scores.
    ``max_planned_achievement``: the plan never counts on more than this expected
    delivered/allocated ratio (1.0: a customer's habit of over-delivering is not bought as
    capacity; the Monte Carlo's success delivers ratio 1 too). ``correlation``: the
    common-factor rho of the Monte Carlo (0: independent resources; the plan itself does
    not depend on it); with rho > 0 the plan also carries ``p_meets_threshold_independent``,
    the same Monte Carlo (seed) at rho 0.

    Raises ``NoEligibleResourceError`` (reasons listed), ``MissingColumnsError``,
    ``UnknownValueError``, ``ImpossibleValueError`` for bad inputs; an unreachable target is
    not an error: the plan comes back with ``feasible=False`` and ``shortfall_kw > 0``.
    """
    rule = rule or SettlementRule()
    if not isinstance(instruction, Instruction):
        raise TypeError(f"instruction must be an Instruction, got {type(instruction).__name__}")
    rho = check_correlation(correlation)
    inputs = plan_inputs(instruction, resources, reliability, headroom_kw,
                         min_dispatch_share=min_dispatch_share,
                         fixed_cost_cny_per_resource=fixed_cost_cny_per_resource,
                         time_limit_s=time_limit_s,
                         max_planned_achievement=max_planned_achievement)
    x, feasible, status, notes = solve_allocation(inputs)
    used = x > 0
    args = (x[used], inputs.p[used], inputs.e[used], instruction.target_kw,
            rule.min_achievement_ratio)
    p_meets, achievement = simulate_achievement(*args, n_draws=n_draws, seed=seed,
                                                correlation=rho)
    independent = (p_meets if rho == 0 else
                   simulate_achievement(*args, n_draws=n_draws, seed=seed)[0])
    return assemble_plan(inputs, x, feasible, status, notes, p_meets, achievement,
                         correlation=rho, p_meets_threshold_independent=independent)
