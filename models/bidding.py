"""Bid capacity advice: how many MW to offer so the event is effective at a confidence.

For a market (``annual``, ``day_ahead``, ``real_time``, ``peak``), a window, a notice and a
confidence ``c``, ``bid_advice`` answers the largest offer ``M`` (MW) with
``P(portfolio achievement >= threshold) >= c`` (the settlement threshold of
``forecasting.settlement.SettlementRule``, 80 % by default), what it is expected to earn and
to cost in penalties, and the offer curve ``M -> P(effective), expected net revenue``.

Glossary: ``M`` offer (MW); ``A`` the event's achievement = delivered kW / (1000 ``M``);
``thr`` = ``min_achievement_ratio``, ``cap`` = ``max_paid_achievement_ratio``; ``m`` the
plan's reserve margin; ``rate`` / ``penalty`` the market's tariff (CNY per MW per event).

How an offer is scored:

1. **allocation**: an offer ``M`` is planned as ``models.dispatch.decompose`` would dispatch
   it: eligible resources (level, notice, duration, approval), expected delivery
   ``>= 1000 M (1 + m)``, per-customer headroom (``models.capacity``: the load a customer
   would draw), a used resource taking at least ``min_dispatch_share`` of its capacity,
   cheapest first by ``decompose``'s objective (energy cost + risk penalty per expected kW).
   Scanning the curve uses that objective's merit order (the LP relaxation of ``decompose``'s
   MILP, where the minimum share and the per-resource tie-breaker relax away: with only
   per-resource and per-customer limits the greedy order is optimal for it); the advised
   offer is then planned
   by ``decompose`` itself (HiGHS) and scored again; if that plan misses ``c`` the offer
   steps down the scanned grid. An offer whose ``M (1 + m)`` the merit order cannot reach
   in expectation gets the max-delivery plan: every usable resource, each customer's
   headroom filled with its highest expected achievement first (the LP optimum of
   ``decompose``'s max-delivery MILP; ``decompose`` itself spends seconds on that case for
   1,000 resources, so it is not called there).
2. **P(effective)**: ``models.dispatch.delivery_draws`` / ``achievement_draws`` (the dispatch
   Monte Carlo, with the common-factor ``correlation`` of ``models.correlation``), every
   offer scored on the same draws (common random numbers: the curve is smooth and the
   advice monotone in ``c``). The independent model (rho 0) is scored beside it.
3. **search**: a grid of ``grid_points`` offers from ``M_top / K`` to
   ``M_top = sum of usable capacity / thr`` (where only full delivery of every resource
   would count), then the same number of points between the largest offer reaching ``c``
   and the next; the curve need not be monotone (a small offer rests on one resource), so
   the largest qualifying offer is taken, not a bisection's.
4. **money** (per event, CNY), as ``forecasting.settlement.settle`` pays:
   ``paid = min(A, cap)`` if ``A >= thr`` else ``paid_share_below_threshold * max(A, 0)``;
   ``E[compensation] = rate * M * E[paid]``; ``E[penalty] = penalty * E[max(thr - A, 0)] * M``
   (the shortfall below the threshold, in MW: a common provincial rule charges the part of
   ``thr * M`` not delivered; configure ``penalty_cny_per_mw`` 0 where there is none);
   ``net = E[compensation] - E[penalty]`` (both times the duration in hours when the rule's
   ``payment_basis`` is ``per_mwh``). The customers' energy cost of the plan
   (``cost_cny_per_mwh``) is reported beside it, not subtracted: who bears it is a contract
   matter.

Default tariffs (``TariffTable``): the midpoints of the ranges typical of provincial
demand-response rules as issue 11 quotes them, in CNY per MW per event: annual 200-300
(250), day-ahead 250-400 (325), real-time 400-800 (600), peak 800-1,500 (1,150); penalty
per MW of shortfall = the compensation rate. They are defaults, not a province's current
rule: configure the table (the sample portfolio's events.csv pays 10,000-30,000 CNY/MW).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from forecasting.errors import DataError, ImpossibleValueError, UnknownValueError
from forecasting.settlement import SettlementRule
from models.dispatch import (
    _reliability,
    achievement_draws,
    check_correlation,
    decompose,
    delivery_draws,
)
from models.dispatch_eligibility import Instruction, eligibility, no_eligible_error, shorten

MARKETS = ("annual", "day_ahead", "real_time", "peak")
TARIFF_RANGES_CNY_PER_MW = {"annual": (200.0, 300.0), "day_ahead": (250.0, 400.0),
                            "real_time": (400.0, 800.0), "peak": (800.0, 1500.0)}
MAX_PLAN_TRIES = 4  # decompose plans tried while stepping the advice down the grid
ALLOCATION_COLUMNS = ("resource_id", "customer_id", "name", "level", "allocated_kw",
                      "capacity_kw", "p_deliver", "expected_achievement", "expected_kw",
                      "cost_cny")
CURVE_COLUMNS = ("offer_mw", "p_effective", "p_effective_independent", "expected_achievement",
                 "expected_compensation_cny", "expected_penalty_cny",
                 "expected_net_revenue_cny", "planned_energy_cost_cny", "allocated_kw",
                 "n_resources")


class MarketTariff(BaseModel):
    """What one market pays and charges per event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    compensation_cny_per_mw: float = Field(
        ge=0, description="paid per MW of paid response per event (CNY/MW)")
    penalty_cny_per_mw: float = Field(
        ge=0, description="charged per MW of shortfall below the settlement threshold per "
        "event (CNY/MW)")


def _default_markets() -> dict[str, MarketTariff]:
    return {m: MarketTariff(compensation_cny_per_mw=sum(r) / 2, penalty_cny_per_mw=sum(r) / 2)
            for m, r in TARIFF_RANGES_CNY_PER_MW.items()}


class TariffTable(BaseModel):
    """Tariffs per market type (defaults and their source in the module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    markets: dict[str, MarketTariff] = Field(
        default_factory=_default_markets, description="market type -> its tariff; the "
        "defaults are the midpoints of the typical provincial ranges")

    def of(self, market: str) -> MarketTariff:
        """The tariff of ``market``; ``UnknownValueError`` naming the known ones."""
        if market not in self.markets:
            raise UnknownValueError(f"unknown market type {market!r}, expected one of "
                                    f"{', '.join(self.markets)}")
        return self.markets[market]


class BidOptions(BaseModel):
    """How offers are planned and scored (module doc)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reserve_margin: float = Field(0.1, ge=0, le=1, description="an offer is planned with "
                                  "expected delivery >= offer x (1 + margin)")
    allow_approval: bool = Field(False, description="use resources with requires_approval")
    min_dispatch_share: float = Field(0.2, ge=0, le=1, description="a used resource takes "
                                      "at least this share of its capacity (decompose's)")
    grid_points: int = Field(32, ge=4, le=400, description="offers per scan of the curve "
                             "(and again between the two offers that bracket the advice)")
    n_draws: int = Field(10_000, ge=200, le=200_000, description="Monte Carlo events")
    seed: int = Field(0, description="random seed of the draws (same seed, same answer)")
    compare_independent: bool = Field(True, description="also score every offer with "
                                      "independent resources (rho 0)")


def check_confidence(confidence: float) -> float:
    """The confidence as a float strictly between 0 and 1 (``ImpossibleValueError`` else)."""
    try:
        value = float(confidence)
    except (TypeError, ValueError):
        value = np.nan
    if not 0.0 < value < 1.0:
        raise ImpossibleValueError(f"confidence {confidence!r} must lie strictly between 0 and "
                                   "1 (e.g. 0.9 for P(effective) >= 90 %)")
    return value


def check_market(market: str, tariff: TariffTable | None = None) -> MarketTariff:
    """The tariff of ``market``; refuses an unknown market type with the known ones."""
    if market not in MARKETS:
        raise UnknownValueError(f"unknown market type {market!r}, expected one of "
                                f"{', '.join(MARKETS)}")
    return (tariff or TariffTable()).of(market)


@dataclass
class _Book:
    """Eligible resources in merit order with the shared draws (one bid's working data)."""

    instruction: Instruction
    el: pd.DataFrame  # eligible rows, merit order
    p: np.ndarray
    e: np.ndarray
    usable_kw: np.ndarray  # merit order: capacity left by the customer's headroom (0: none)
    max_kw: np.ndarray  # the max-delivery allocation (the plan of an offer out of reach)
    share: float
    energy_cny_per_kw: np.ndarray
    success: np.ndarray
    success_independent: np.ndarray | None
    rule: SettlementRule
    tariff: MarketTariff
    margin: float
    notes: list[str]

    @property
    def top_mw(self) -> float:
        """The offer whose threshold needs every used resource to deliver in full (MW)."""
        return float(self.max_kw.sum()) / self.rule.min_achievement_ratio / 1000.0

    def in_reach(self, offers_mw) -> np.ndarray:
        """True where the merit order reaches offer x (1 + margin) in expectation."""
        need = np.asarray(offers_mw, dtype="float64") * 1000.0 * (1.0 + self.margin)
        return need <= float(self.e @ self.usable_kw)

    def allocate(self, offers_mw) -> np.ndarray:
        """Allocations (kW), one row per offer (module doc, step 1)."""
        offers = np.asarray(offers_mw, dtype="float64")
        need = offers[:, None] * 1000.0 * (1.0 + self.margin)
        expected = self.e * self.usable_kw
        before = np.cumsum(expected) - expected
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(self.e > 0, (need - before[None, :]) / self.e[None, :], 0.0)
        x = np.clip(x, 0.0, self.usable_kw[None, :])
        return np.where(self.in_reach(offers)[:, None], x, self.max_kw[None, :])

    def _achievement(self, allocations: np.ndarray, offers: np.ndarray, draws: np.ndarray
                     ) -> np.ndarray:
        """Achievement draws (n_draws, k); the offers out of reach share one plan, scored
        once and rescaled (achievement is delivered kW over the offer)."""
        reach = self.in_reach(offers)
        rows = np.vstack([allocations[reach], self.max_kw[None, :]])
        delivered = achievement_draws(draws, rows, self.e, 1.0)  # kW
        column = np.where(reach, np.cumsum(reach) - 1, rows.shape[0] - 1)
        return delivered[:, column] / (offers * 1000.0)

    def score(self, allocations: np.ndarray, offers_mw, independent: bool = False
              ) -> pd.DataFrame:
        """The curve's columns for ``allocations`` (k, n) of ``offers_mw`` (k)."""
        offers = np.asarray(offers_mw, dtype="float64")
        draws = self.success_independent if independent else self.success
        a = self._achievement(allocations, offers, draws)
        rule = self.rule
        effective = a >= rule.min_achievement_ratio
        paid = np.where(effective, np.minimum(a, rule.max_paid_achievement_ratio),
                        rule.paid_share_below_threshold * np.maximum(a, 0.0))
        short = np.maximum(rule.min_achievement_ratio - a, 0.0)
        hours = (self.instruction.duration_minutes / 60.0
                 if rule.payment_basis == "per_mwh" else 1.0)
        compensation = self.tariff.compensation_cny_per_mw * offers * paid.mean(axis=0) * hours
        penalty = self.tariff.penalty_cny_per_mw * offers * short.mean(axis=0) * hours
        return pd.DataFrame({
            "offer_mw": offers, "p_effective": effective.mean(axis=0),
            "expected_achievement": a.mean(axis=0),
            "expected_compensation_cny": compensation, "expected_penalty_cny": penalty,
            "expected_net_revenue_cny": compensation - penalty,
            "planned_energy_cost_cny": allocations @ self.energy_cny_per_kw,
            "allocated_kw": allocations.sum(axis=1),
            "n_resources": (allocations > 0).sum(axis=1)})

    def curve(self, offers_mw, allocations: np.ndarray | None = None) -> pd.DataFrame:
        offers = np.asarray(offers_mw, dtype="float64")
        x = self.allocate(offers) if allocations is None else allocations
        frame = self.score(x, offers)
        frame.insert(2, "p_effective_independent",
                     self.score(x, offers, independent=True)["p_effective"].to_numpy()
                     if self.success_independent is not None else np.nan)
        return frame[list(CURVE_COLUMNS)]

    def allocation_table(self, x: np.ndarray) -> pd.DataFrame:
        """``decompose``'s allocation columns for a vector ``x`` (kW) over ``el``."""
        used = x > 0
        out = self.el.loc[used, ["resource_id", "customer_id", "name", "level",
                                 "capacity_kw"]].copy()
        out["allocated_kw"] = x[used]
        out["p_deliver"] = self.p[used]
        out["expected_achievement"] = self.e[used]
        out["expected_kw"] = self.e[used] * x[used]
        out["cost_cny"] = self.energy_cny_per_kw[used] * x[used]
        return out[list(ALLOCATION_COLUMNS)].sort_values(["customer_id", "resource_id"],
                                                         ignore_index=True)


def _fill(order: np.ndarray, customer: np.ndarray, cap: np.ndarray, limit: np.ndarray,
          share: float) -> np.ndarray:
    """Capacity (kW) each resource keeps when its customer's ``limit`` is filled in
    ``order`` (positions into the arrays); below ``share`` of its capacity it keeps 0."""
    c, k = cap[order], customer[order]
    used_before = pd.Series(c).groupby(k).cumsum().to_numpy() - c
    kept = np.clip(limit[order] - used_before, 0.0, c)
    kept[kept < share * c] = 0.0
    out = np.empty_like(cap)
    out[order] = kept
    return out


def _book(resources: pd.DataFrame, market: str, start, end, notice_time, *,
          reliability: pd.DataFrame | None, headroom_kw: dict[str, float] | None,
          correlation: float, tariff: TariffTable | None, rule: SettlementRule | None,
          options: BidOptions) -> _Book:
    rho = check_correlation(correlation)
    market_tariff = check_market(market, tariff)
    rule = rule or SettlementRule()
    instruction = Instruction(target_kw=1.0, start=start, end=end, notice_time=notice_time,
                              event_type=market, reserve_margin=options.reserve_margin,
                              allow_approval=options.allow_approval)
    table = eligibility(resources, instruction)
    if not table["eligible"].any():
        raise no_eligible_error(table)
    el = table[table["eligible"]].reset_index(drop=True)
    p, e, assumed = _reliability(el, reliability)
    notes = []
    if assumed.any():
        notes.append(f"no reliability for {int(assumed.sum())} resource(s): defaults assumed "
                     f"({shorten(el.loc[assumed, 'resource_id'].astype(str).tolist())})")
    excluded = int((~table["eligible"]).sum())
    if excluded:
        notes.append(f"{excluded} resource(s) cannot answer this window and notice (level, "
                     "notice, duration or approval)")
    e = np.minimum(e, 1.0)  # decompose's max_planned_achievement: over-delivery not counted on
    price = el["cost_cny_per_mwh"].to_numpy(dtype="float64")
    if np.isnan(price).any():
        notes.append(f"no cost_cny_per_mwh for {int(np.isnan(price).sum())} resource(s): "
                     "energy cost taken as 0")
    energy = np.nan_to_num(price, nan=0.0) * (instruction.duration_minutes / 60.0) / 1000.0
    unit = energy + instruction.risk_aversion_cny_per_kw * (1.0 - p)  # decompose's c_r
    per_expected = np.where(e > 0, unit / np.where(e > 0, e, 1.0), np.inf)
    ids = el["resource_id"].astype(str).to_numpy()
    order = np.lexsort((ids, -p, per_expected))
    el, p, e, energy, unit = (el.iloc[order].reset_index(drop=True), p[order], e[order],
                              energy[order], unit[order])
    cap = el["capacity_kw"].to_numpy(dtype="float64")
    customer = el["customer_id"].astype(str).to_numpy()
    limits = {str(k): float(v) for k, v in (headroom_kw or {}).items()}
    limit = pd.Series(customer).map(limits).fillna(np.inf).to_numpy(dtype="float64")
    share = options.min_dispatch_share
    usable = _fill(np.arange(len(el)), customer, cap, limit, share)
    most = _fill(np.lexsort((unit, -e)), customer, cap, limit, share)
    usable[e <= 0] = most[e <= 0] = 0.0
    capped = sorted(set(customer[limit < np.inf]) & set(
        customer[(pd.Series(cap).groupby(customer).transform("sum") > limit).to_numpy()]))
    if capped:
        notes.append(f"the load headroom limits {len(capped)} customer(s): {shorten(capped)}")
    if (e * most).sum() <= 0:
        raise DataError("no eligible resource has usable capacity in this window (headroom "
                        "0: the customers' load leaves nothing to shed)")
    success = delivery_draws(p, options.n_draws, np.random.default_rng(options.seed), rho)
    independent = None
    if options.compare_independent:
        independent = (success if rho == 0 else
                       delivery_draws(p, options.n_draws, np.random.default_rng(options.seed)))
    return _Book(instruction, el, p, e, usable, most, share, energy, success, independent,
                 rule, market_tariff, options.reserve_margin, notes)


def _grid(book: _Book, points: int) -> np.ndarray:
    return book.top_mw * np.arange(1, points + 1) / points


def offer_curve(resources: pd.DataFrame, market: str, start: datetime, end: datetime,
                notice_time: datetime, *, reliability: pd.DataFrame | None = None,
                headroom_kw: dict[str, float] | None = None, correlation: float = 0.0,
                tariff: TariffTable | None = None, rule: SettlementRule | None = None,
                options: BidOptions | None = None, offers_mw=None) -> pd.DataFrame:
    """The offer curve: one row per offer (MW) with P(effective) (correlated and
    independent), expected achievement, compensation, penalty, net revenue (CNY per event),
    the plan's energy cost, allocated kW and resources (module doc). ``offers_mw``: the
    offers to score (default ``grid_points`` from ``M_top / K`` to ``M_top``).

    ``reliability``: p_deliver / expected_achievement per customer_id or resource_id (as
    ``decompose`` takes it); ``headroom_kw``: customer_id -> most it can shed (kW), e.g.
    ``CapacityForecast.headroom_kw('p50')``; ``correlation``: the common-factor rho.
    """
    options = options or BidOptions()
    book = _book(resources, market, start, end, notice_time, reliability=reliability,
                 headroom_kw=headroom_kw, correlation=correlation, tariff=tariff, rule=rule,
                 options=options)
    offers = _grid(book, options.grid_points) if offers_mw is None else np.asarray(
        offers_mw, dtype="float64").ravel()
    if offers.size == 0 or not np.isfinite(offers).all() or (offers <= 0).any():
        raise ImpossibleValueError("offers_mw must be finite offers > 0 MW")
    return book.curve(offers)


@dataclass
class BidAdvice:
    """The answer of ``bid_advice`` (MW offers, CNY per event; see the module doc)."""

    market: str
    confidence: float
    correlation: float
    offer_mw: float
    p_effective: float
    p_effective_independent: float
    independent_offer_mw: float
    expected_achievement: float
    expected_compensation_cny: float
    expected_penalty_cny: float
    expected_net_revenue_cny: float
    planned_energy_cost_cny: float
    planned_by: str
    allocations: pd.DataFrame
    curve: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    NUMBERS = ("confidence", "correlation", "offer_mw", "p_effective",
               "p_effective_independent", "independent_offer_mw", "expected_achievement",
               "expected_compensation_cny", "expected_penalty_cny", "expected_net_revenue_cny",
               "planned_energy_cost_cny")

    def to_dict(self) -> dict:
        """JSON-ready dict (the curve and the allocations as lists of records; NaN as None)."""
        def number(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {"market": self.market, **{k: number(getattr(self, k)) for k in self.NUMBERS},
                "planned_by": self.planned_by,
                "allocations": json.loads(self.allocations.to_json(orient="records")),
                "curve": json.loads(self.curve.to_json(orient="records")),
                "notes": list(self.notes)}


def _largest(curve: pd.DataFrame, column: str, confidence: float) -> int | None:
    ok = np.flatnonzero(curve[column].to_numpy() >= confidence)
    return int(ok[-1]) if ok.size else None


def _bracket(coarse: pd.DataFrame, column: str, confidence: float, points: int) -> np.ndarray:
    """Offers between the largest coarse offer reaching ``confidence`` and the next."""
    offers = coarse["offer_mw"].to_numpy()
    k = _largest(coarse, column, confidence)
    if k is not None and k + 1 == len(offers):
        return np.empty(0)
    low, high = (0.0, offers[0]) if k is None else (offers[k], offers[k + 1])
    return np.linspace(low, high, points + 2)[1:-1]


def bid_advice(resources: pd.DataFrame, market: str, start: datetime, end: datetime,
               notice_time: datetime, confidence: float, *,
               reliability: pd.DataFrame | None = None,
               headroom_kw: dict[str, float] | None = None, correlation: float = 0.0,
               tariff: TariffTable | None = None, rule: SettlementRule | None = None,
               options: BidOptions | None = None) -> BidAdvice:
    """The largest offer (MW) with P(effective) >= ``confidence`` and its money (module doc).

    Arguments as ``offer_curve``. ``confidence`` strictly between 0 and 1
    (``ImpossibleValueError``), ``market`` one of ``MARKETS`` (``UnknownValueError``). The
    offer is 0 (with a note) when no offer reaches the confidence. ``allocations``: the plan
    of the offer (``decompose``'s columns), ``planned_by`` says which plan it is.
    """
    confidence = check_confidence(confidence)
    options = options or BidOptions()
    book = _book(resources, market, start, end, notice_time, reliability=reliability,
                 headroom_kw=headroom_kw, correlation=correlation, tariff=tariff, rule=rule,
                 options=options)
    coarse = book.curve(_grid(book, options.grid_points))
    columns = ["p_effective"] + (["p_effective_independent"] if options.compare_independent
                                 else [])
    fine = np.concatenate([_bracket(coarse, c, confidence, options.grid_points)
                           for c in columns])
    scanned = (pd.concat([coarse, book.curve(fine)]) if fine.size else coarse).sort_values(
        "offer_mw", ignore_index=True)
    notes = list(book.notes)
    independent_offer = np.nan
    if options.compare_independent:
        k = _largest(scanned, "p_effective_independent", confidence)
        independent_offer = float(scanned["offer_mw"].iloc[k]) if k is not None else 0.0
    candidates = np.flatnonzero(scanned["p_effective"].to_numpy() >= confidence)[::-1]
    row, allocations, planned_by, missed = None, None, "", []
    for i in candidates[:MAX_PLAN_TRIES]:
        offer = float(scanned["offer_mw"].iloc[i])
        if not book.in_reach([offer])[0]:
            row = scanned.iloc[i].to_dict()
            allocations = book.allocation_table(book.max_kw)
            planned_by = ("max delivery: every usable resource (the offer x (1 + margin) is "
                          "beyond the portfolio's expected capacity)")
            break
        instruction = book.instruction.model_copy(update={"target_kw": offer * 1000.0})
        plan = decompose(instruction, resources, reliability, headroom_kw, book.rule,
                         min_dispatch_share=options.min_dispatch_share, n_draws=1,
                         seed=options.seed)
        x = _in_order(book.el, plan)
        candidate = book.curve([offer], x[None, :]).iloc[0].to_dict()
        if candidate["p_effective"] >= confidence:
            row, allocations = candidate, book.allocation_table(x)
            planned_by = f"decompose (HiGHS MILP, {plan.solver_status})"
            notes += [n for n in plan.notes if not n.startswith("no reliability")]
            break
        missed.append(f"{offer:.3f} MW: {candidate['p_effective']:.3f} (merit order "
                      f"{scanned['p_effective'].iloc[i]:.3f})")
    if missed:
        notes.append(f"the HiGHS plans of {len(missed)} larger offer(s) miss P(effective) "
                     f">= {confidence:g}, so the advice stepped down: {'; '.join(missed)}")
    if row is None:
        notes.append(f"no offer reaches P(effective) >= {confidence:g} (best "
                     f"{scanned['p_effective'].max():.3f} on the curve): offer 0 MW, or lower "
                     "the confidence, give more notice or allow approval-bound resources")
        row = {c: 0.0 for c in CURVE_COLUMNS}
        row["p_effective"] = row["p_effective_independent"] = np.nan
        allocations = book.allocation_table(np.zeros(len(book.el)))
        planned_by = "nothing offered"
    return BidAdvice(
        market=market, confidence=confidence, correlation=float(correlation),
        offer_mw=float(row["offer_mw"]), p_effective=float(row["p_effective"]),
        p_effective_independent=float(row["p_effective_independent"]),
        independent_offer_mw=independent_offer,
        expected_achievement=float(row["expected_achievement"]),
        expected_compensation_cny=float(row["expected_compensation_cny"]),
        expected_penalty_cny=float(row["expected_penalty_cny"]),
        expected_net_revenue_cny=float(row["expected_net_revenue_cny"]),
        planned_energy_cost_cny=float(row["planned_energy_cost_cny"]), planned_by=planned_by,
        allocations=allocations, curve=coarse, notes=notes)


def _in_order(el: pd.DataFrame, plan) -> np.ndarray:
    """A ``DispatchPlan``'s allocations (kW) as a vector over ``el``'s rows."""
    column = pd.Series(np.arange(len(el)), index=el["resource_id"].astype(str))
    x = np.zeros(len(el))
    x[column[plan.allocations["resource_id"].astype(str)].to_numpy()] = (
        plan.allocations["allocated_kw"].to_numpy(dtype="float64"))
    return x
