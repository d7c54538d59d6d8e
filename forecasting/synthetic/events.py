"""Synthetic demand-response events, the customers' realised responses, and their effect on
the metered load.

Synthetic: invented events for the sample portfolio. What is modelled:

- **when**: peak events fall on working days, mostly on hot summer days (afternoon 13:00-16:00
  or evening 17:00-19:30 starts) and cold winter days (morning 09:00-10:30 or evening
  starts), never within a week of the Spring Festival nor in the last 14 days of a grid of
  90 days or more (room to plan a hypothetical event on metered days); valley-filling
  events (negative targets) fall on spring/autumn rest days around noon, when solar infeed is high.
  Durations are 1-4 h on 15-minute boundaries. About 165 events in the default 18 months
  (``EVENTS_PER_DAY``), so that the response likelihood has enough to learn and be scored on.
- **notice**: annual events weeks ahead, day-ahead (and valley filling) the previous
  evening, peak events 4-8 h ahead, real-time events 30-120 minutes ahead.
- **targets**: each invited customer commits ``target_kw`` of at most 95 % of its
  resources and at most 30 % of its load in the window.
- **achievement** (``actual_kw / target_kw``) = reliability x coverage**0.6 x notice penalty
  x time-of-day factor x lognormal noise, where *coverage* is what the customer's resources
  can deliver given the notice (level-III resources mostly miss short notice, level II
  partly), their maximum duration and how much of the site is running (an office at 20:00
  has little lighting and HVAC left to curtail), over the target. Reliability is a
  per-customer trait: some customers reliably over-deliver (1.08-1.25), some under-deliver
  (0.6-0.82), most are near 1. A few no-shows deliver 0-15 %.
- **sub-metering**: ``SUB_METERED_SHARE`` of the customers (with two or more resources)
  are settled per resource on reduction events: the target is split over their resources
  by capacity, each resource's achievement follows the same model with its own coverage and
  noise (the no-show is the customer's), and the customer's ``actual_kw`` is their sum
  (``resource_events`` table).
- **truth**: every row's probability of delivering (achievement >= 0.8, the default
  settlement rule) is known from the law it was drawn from (``forecasting.synthetic.truth``)
  and returned as ``EventOutcome.truth``; the generator writes it beside the portfolio.
- **metering**: during the event the load is reduced by ``actual_kw`` on average (the first
  quarter hour ramps), so counterfactual minus metered load averages exactly ``actual_kw``;
  thermal resources (HVAC, refrigeration) rebound for an hour afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.synthetic.grid import SLOTS_PER_DAY, TimeGrid
from forecasting.synthetic.load import LoadTruth
from forecasting.synthetic.resources import Resource
from forecasting.synthetic.sites import SiteSpec
from forecasting.synthetic.truth import (
    NO_SHOW_MAX_ACHIEVEMENT,
    AchievementLaw,
    joint_p_deliver,
    truth_frame,
    truth_row,
)

EVENTS_PER_DAY = 165 / 546  # about 165 events in the default 18 months
SUB_METERED_SHARE = 0.3  # customers settled per resource (reduction events)
NOISE_SIGMA = 0.12  # lognormal noise of the achievement, reductions
VALLEY_NOISE_SIGMA = 0.15
QUIET_DAYS_AT_END = 14  # no event in the last fortnight of a grid of 90+ days: room to plan
RESOURCE_EVENT_COLUMNS = ("event_id", "customer_id", "resource_id", "target_kw", "actual_kw")
VALLEY_SHARE = 0.12
PEAK_MONTHS = (6, 7, 8, 9, 12, 1, 2)
PEAK_EVENT_TYPES = ("annual", "day_ahead", "real_time", "peak")
PEAK_EVENT_TYPE_P = (0.15, 0.35, 0.3, 0.2)
COMPENSATION_CNY_PER_MW = {
    "annual": 10000.0,
    "day_ahead": 20000.0,
    "real_time": 30000.0,
    "peak": 15000.0,
    "valley_filling": 6000.0,
}
UNAVAILABLE_ON_SHORT_NOTICE = {"I": 1.0, "II": 0.6, "III": 0.15}  # share still deliverable
MAX_TARGET_SHARE_OF_LOAD = 0.30
MAX_ACTUAL_SHARE_OF_LOAD = 0.5
RAMP_FIRST_SLOT = 0.7
REBOUND_SHAPE = np.array([1.0, 0.75, 0.5, 0.25])
REBOUND_SHARE = 0.3


@dataclass(frozen=True)
class EventCall:
    """One event as called by the operator (all stamps tz-aware, local zone)."""

    event_type: str
    notice_time: pd.Timestamp
    start: pd.Timestamp
    first_slot: int  # index into the grid's 15-minute stamps
    n_slots: int
    compensation_cny_per_mw: float

    @property
    def end(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(minutes=15 * self.n_slots)

    @property
    def notice_minutes(self) -> float:
        return (self.start - self.notice_time) / pd.Timedelta(minutes=1)


@dataclass(frozen=True)
class EventOutcome:
    """``events`` table and, per customer, the response in kW on the 15-minute grid
    (positive = load reduced; metered = counterfactual - response); ``resource_events`` the
    per-resource split of the sub-metered customers' rows; ``truth`` every row's (and
    resource share's) probability of delivering (``forecasting.synthetic.truth``)."""

    events: pd.DataFrame
    response_kw: dict[str, np.ndarray]
    reliability: dict[str, float]
    resource_events: pd.DataFrame  # per-resource settlement of sub-metered customers
    truth: pd.DataFrame  # delivery probabilities (truth.TRUTH_COLUMNS)


def draw_reliability(rng: np.random.Generator, customer_ids: list[str]) -> dict[str, float]:
    """Per-customer reliability: a quarter over-deliver, a quarter under-deliver."""
    out = {}
    for customer_id in customer_ids:
        u = rng.uniform()
        if u < 0.25:
            out[customer_id] = float(rng.uniform(1.08, 1.25))
        elif u < 0.5:
            out[customer_id] = float(rng.uniform(0.6, 0.82))
        else:
            out[customer_id] = float(rng.uniform(0.9, 1.03))
    return out


def _festival_zone(grid: TimeGrid, margin_days: int = 7) -> np.ndarray:
    zone = np.zeros(grid.n_days, dtype=bool)
    for first, _festival, last in grid.spring_festival_blocks():
        lo = (first - grid.dates[0]).days - margin_days
        hi = (last - grid.dates[0]).days + margin_days + 1
        zone[max(lo, 0) : max(min(hi, grid.n_days), 0)] = True
    return zone


def _pick_days(rng: np.random.Generator, weight: np.ndarray, count: int) -> np.ndarray:
    count = min(count, int((weight > 0).sum()))
    if count == 0:
        return np.array([], dtype=int)
    return np.sort(rng.choice(weight.size, size=count, replace=False, p=weight / weight.sum()))


def _quarter(rng: np.random.Generator, first_hour: float, last_hour: float) -> int:
    """Random 15-minute slot of the day between two local hours (inclusive)."""
    return int(rng.integers(int(first_hour * 4), int(last_hour * 4) + 1))


def plan_events(
    rng: np.random.Generator, grid: TimeGrid, regional_temp_c: np.ndarray
) -> list[EventCall]:
    """Event calls over the grid, chronological (see module docstring)."""
    daily = regional_temp_c.reshape(grid.n_days, SLOTS_PER_DAY)
    t_max, t_min = daily.max(axis=1), daily.min(axis=1)
    months = np.array([d.month for d in grid.dates])
    festival = _festival_zone(grid)
    n_events = max(3, round(EVENTS_PER_DAY * grid.n_days))
    n_valley = max(1, round(VALLEY_SHARE * n_events)) if grid.n_days >= 30 else 0

    stress = np.exp((t_max - 31.0) / 2.5) + np.exp((1.0 - t_min) / 2.5) + 0.01
    peak_season = np.where(np.isin(months, PEAK_MONTHS), 1.0, 0.05)
    if grid.n_days >= 90:  # leave the last fortnight free for planned (hypothetical) events
        festival = festival | (np.arange(grid.n_days) >= grid.n_days - QUIET_DAYS_AT_END)
    peak_weight = np.where(grid.working & ~festival, stress * peak_season, 0.0)
    peak_days = _pick_days(rng, peak_weight, n_events - n_valley)
    shoulder = np.isin(months, (3, 4, 5, 9, 10, 11))
    valley_weight = np.where(~grid.working & ~festival, np.where(shoulder, 1.0, 0.3), 0.0)
    valley_weight[peak_days] = 0.0
    valley_days = _pick_days(rng, valley_weight, n_valley)

    calls = []
    for day, kind in sorted(
        [(d, "peak") for d in peak_days] + [(d, "valley") for d in valley_days]
    ):
        date = grid.dates[day]
        midnight = grid.local_midnight(date)
        if kind == "valley":
            event_type = "valley_filling"
            slot = _quarter(rng, 11.0, 12.0)
            n_slots = int(rng.integers(8, 13))
        else:
            event_type = str(rng.choice(PEAK_EVENT_TYPES, p=PEAK_EVENT_TYPE_P))
            summer = 5 <= date.month <= 10
            if summer:
                slot = (
                    _quarter(rng, 13.0, 16.0) if rng.uniform() < 0.6 else _quarter(rng, 17.0, 19.5)
                )
            else:
                slot = (
                    _quarter(rng, 9.0, 10.5) if rng.uniform() < 0.3 else _quarter(rng, 17.0, 19.0)
                )
            n_slots = int(rng.choice([4, 6, 8, 10, 12, 16], p=[0.2, 0.2, 0.25, 0.1, 0.15, 0.1]))
        n_slots = min(n_slots, SLOTS_PER_DAY - slot)
        start = midnight + pd.Timedelta(minutes=15 * slot)
        if event_type == "annual":
            notice = (
                midnight - pd.Timedelta(days=int(rng.integers(14, 46))) + pd.Timedelta(hours=10)
            )
        elif event_type in ("day_ahead", "valley_filling"):
            notice = (
                midnight
                - pd.Timedelta(hours=7)
                + pd.Timedelta(minutes=15 * int(rng.integers(0, 13)))
            )
        elif event_type == "peak":
            notice = start - pd.Timedelta(minutes=15 * int(rng.integers(16, 33)))
        else:  # real_time
            notice = start - pd.Timedelta(minutes=15 * int(rng.integers(2, 9)))
        compensation = (
            round(COMPENSATION_CNY_PER_MW[event_type] * rng.uniform(0.9, 1.1) / 500) * 500
        )
        calls.append(
            EventCall(
                event_type, notice, start, day * SLOTS_PER_DAY + slot, n_slots, float(compensation)
            )
        )
    return calls


def coverage(
    resources: list[Resource],
    notice_minutes: float,
    duration_minutes: float,
    activity: float,
    target_kw: float,
) -> float:
    """Share of ``target_kw`` the resources can deliver: a resource given less than its
    ``min_notice_minutes`` delivers only ``UNAVAILABLE_ON_SHORT_NOTICE[level]`` of its
    capacity, half of that again if it cannot respond before the start; one whose
    ``max_duration_minutes`` is shorter than the event delivers pro rata; curtailment of
    running equipment scales with the site's ``activity`` (0..1)."""
    deliverable_kw = 0.0
    for r in resources:
        t = r.template
        available = (
            1.0 if notice_minutes >= t.min_notice_minutes else UNAVAILABLE_ON_SHORT_NOTICE[t.level]
        )
        if t.response_minutes > notice_minutes:
            available *= 0.5
        lasting = min(1.0, t.max_duration_minutes / duration_minutes)
        running = activity if t.follows_activity else 1.0
        deliverable_kw += r.capacity_kw * available * lasting * running
    return deliverable_kw / abs(target_kw)


def expected_achievement(
    reliability: float, coverage_share: float, notice_minutes: float, start_local_hour: float
) -> float:
    """Median ``actual_kw / target_kw`` of a reduction event (before noise and no-shows):
    ``reliability * min(coverage, 1)**0.6 * notice penalty * evening factor``; the penalty
    is 0.85 under 60 minutes' notice and 0.94 under 240, the evening factor 0.93 from 18:00."""
    penalty = 0.85 if notice_minutes < 60 else 0.94 if notice_minutes < 240 else 1.0
    evening = 0.93 if start_local_hour >= 18 else 1.0
    return reliability * min(coverage_share, 1.0) ** 0.6 * penalty * evening


def _invite(
    rng: np.random.Generator, call: EventCall, customer_ids: list[str], by_customer: dict
) -> list[str]:
    """Invited customers: each eligible one with probability 0.45-0.6, at least two."""
    if call.event_type == "valley_filling":
        eligible = [c for c in customer_ids if any(r.template.flexible_up for r in by_customer[c])]
    else:
        eligible = list(customer_ids)
    invite_p = 0.6 if call.event_type in ("annual", "day_ahead", "valley_filling") else 0.45
    invited = [c for c in eligible if rng.uniform() < invite_p]
    missing = min(2, len(eligible)) - len(invited)
    if missing > 0:
        extra = [c for c in eligible if c not in invited]
        invited += list(rng.choice(extra, size=missing, replace=False))
    return [c for c in customer_ids if c in invited]


def _settle(
    rng: np.random.Generator,
    call: EventCall,
    load: LoadTruth,
    own: list[Resource],
    reliability: float,
    capacity_kw: float,
    per_resource: bool = False,
) -> tuple[float, AchievementLaw, list[tuple[Resource, AchievementLaw]]]:
    """Committed ``target_kw`` of one customer in one event and the law of its settled
    response; for a sub-metered customer on a reduction event (``per_resource``), the laws
    of its resources' shares instead (the customer's law is then None)."""
    window = slice(call.first_slot, call.first_slot + call.n_slots)
    gross = load.gross_kw[window]
    if call.event_type == "valley_filling":
        flexible_kw = sum(r.capacity_kw for r in own if r.template.flexible_up)
        headroom_kw = max(capacity_kw - gross.max(), 0.0)
        target_kw = min(
            rng.uniform(0.3, 0.6) * flexible_kw,
            MAX_TARGET_SHARE_OF_LOAD * gross.mean(),
            0.8 * headroom_kw,
        )
        target_kw = -max(10.0, np.floor(target_kw / 10) * 10)
        law = AchievementLaw(reliability, VALLEY_NOISE_SIGMA, 0.0, target_kw, 0.9 * headroom_kw)
        return target_kw, law, []
    total_kw = sum(r.capacity_kw for r in own)
    target_kw = min(rng.uniform(0.55, 0.95) * total_kw, MAX_TARGET_SHARE_OF_LOAD * gross.mean())
    target_kw = max(10.0, np.floor(target_kw / 10) * 10)
    activity = float(load.activity[window].mean())
    no_show_p = 0.04 * float(np.clip((1.25 - reliability) / 0.25, 0.2, 2.5))
    start_hour = call.start.hour + call.start.minute / 60
    max_kw = MAX_ACTUAL_SHARE_OF_LOAD * gross.min()

    def law_of(resources: list[Resource], kw: float, cap_kw: float) -> AchievementLaw:
        share = coverage(resources, call.notice_minutes, 15 * call.n_slots, activity, kw)
        median = expected_achievement(reliability, share, call.notice_minutes, start_hour)
        return AchievementLaw(median, NOISE_SIGMA, no_show_p, kw, cap_kw)

    if not per_resource:
        return target_kw, law_of(own, target_kw, max_kw), []
    weights = np.array([r.capacity_kw for r in own]) / total_kw
    shares = np.round(target_kw * weights, 1)
    shares[-1] = round(target_kw - shares[:-1].sum(), 1)
    parts = [(r, law_of([r], float(kw), max_kw * w))
             for r, kw, w in zip(own, shares, weights, strict=True) if kw > 0]
    return target_kw, None, parts


def _draw_resources(
    rng: np.random.Generator, parts: list[tuple[Resource, AchievementLaw]]
) -> list[float]:
    """Settled kW of each resource: one no-show draw for the customer, noise per resource."""
    absent = rng.uniform() < parts[0][1].no_show_p
    out = []
    for _, law in parts:
        achievement = (
            rng.uniform(0.0, NO_SHOW_MAX_ACHIEVEMENT)
            if absent
            else law.median * np.exp(rng.normal(0.0, law.sigma))
        )
        out.append(law.settle_kw(achievement))
    return out


def _add_response(
    response_kw: np.ndarray, call: EventCall, actual_kw: float, own: list[Resource]
) -> None:
    """Add the event's load change to ``response_kw`` in place: ``actual_kw`` on average over
    the event (first quarter hour ramping), then the rebound of thermal resources."""
    window = slice(call.first_slot, call.first_slot + call.n_slots)
    shape = np.ones(call.n_slots)
    shape[0] = RAMP_FIRST_SLOT
    response_kw[window] += actual_kw * shape / shape.mean()
    thermal_kw = sum(r.capacity_kw for r in own if r.template.thermal)
    if actual_kw > 0 and thermal_kw > 0:
        thermal_share = min(1.0, thermal_kw / sum(r.capacity_kw for r in own))
        after = np.arange(window.stop, min(window.stop + REBOUND_SHAPE.size, response_kw.size))
        response_kw[after] -= (
            REBOUND_SHARE * actual_kw * thermal_share * REBOUND_SHAPE[: after.size]
        )


def _sub_metered(rng: np.random.Generator, customer_ids: list[str], by_customer: dict
                 ) -> set[str]:
    """Customers whose resources are metered and settled separately: ``SUB_METERED_SHARE``
    of those with at least two resources."""
    candidates = [c for c in customer_ids if len(by_customer[c]) >= 2]
    count = min(len(candidates), round(SUB_METERED_SHARE * len(customer_ids)))
    return set(rng.choice(candidates, size=count, replace=False)) if count else set()


def simulate_events(
    rng: np.random.Generator,
    grid: TimeGrid,
    load_sites: list[SiteSpec],
    loads: dict[str, LoadTruth],
    resources: list[Resource],
    regional_temp_c: np.ndarray,
) -> EventOutcome:
    """Plan events, invite customers, settle their responses (see module docstring)."""
    customer_ids = [s.customer_id for s in load_sites]
    capacity_kw = {s.customer_id: s.capacity_kw for s in load_sites}
    by_customer = {c: [r for r in resources if r.customer_id == c] for c in customer_ids}
    reliability = draw_reliability(rng, customer_ids)
    sub_metered = _sub_metered(rng, customer_ids, by_customer)
    truth_rng = np.random.default_rng(int(rng.integers(2**32)))  # Monte Carlo of the truth
    response = {c: np.zeros(len(grid.index_15min)) for c in customer_ids}
    rows, resource_rows, truth = [], [], []
    calls = plan_events(rng, grid, regional_temp_c) if customer_ids else []
    number = 0
    for call in calls:
        invited = _invite(rng, call, customer_ids, by_customer)
        if not invited:
            continue
        number += 1
        event_id = f"ev{number:03d}"
        for customer_id in invited:
            own = by_customer[customer_id]
            target_kw, law, parts = _settle(
                rng,
                call,
                loads[customer_id],
                own,
                reliability[customer_id],
                capacity_kw[customer_id],
                per_resource=customer_id in sub_metered,
            )
            if law is not None:
                actual_kw = law.settle_kw(law.draw(rng))
                truth.append(truth_row(event_id, customer_id, None, law, law.p_deliver(),
                                       target_kw))
            else:
                settled = _draw_resources(rng, parts)
                actual_kw = float(np.round(sum(settled), 1))
                p_joint = joint_p_deliver([part for _, part in parts], truth_rng)
                truth.append(truth_row(event_id, customer_id, None, None, p_joint, target_kw))
                for (resource, part), kw in zip(parts, settled, strict=True):
                    resource_rows.append({"event_id": event_id, "customer_id": customer_id,
                                          "resource_id": resource.resource_id,
                                          "target_kw": part.target_kw, "actual_kw": kw})
                    truth.append(truth_row(event_id, customer_id, resource.resource_id, part,
                                           part.p_deliver(), part.target_kw))
            _add_response(response[customer_id], call, actual_kw, own)
            rows.append(
                {
                    "event_id": event_id,
                    "customer_id": customer_id,
                    "event_type": call.event_type,
                    "notice_time": call.notice_time.tz_convert("UTC"),
                    "start": call.start.tz_convert("UTC"),
                    "end": call.end.tz_convert("UTC"),
                    "target_kw": float(target_kw),
                    "compensation_cny_per_mw": call.compensation_cny_per_mw,
                    "actual_kw": actual_kw,
                }
            )
    columns = [
        "event_id",
        "customer_id",
        "event_type",
        "notice_time",
        "start",
        "end",
        "target_kw",
        "compensation_cny_per_mw",
        "actual_kw",
    ]
    events = pd.DataFrame(rows, columns=columns)
    for column in ("notice_time", "start", "end"):
        events[column] = pd.to_datetime(events[column], utc=True).dt.as_unit(grid.index_15min.unit)
    resource_events = pd.DataFrame(resource_rows, columns=list(RESOURCE_EVENT_COLUMNS))
    return EventOutcome(events, response, reliability, resource_events, truth_frame(truth))
