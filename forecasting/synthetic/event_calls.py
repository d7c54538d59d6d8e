"""Synthetic demand-response event calls: when the operator calls an event, with what
notice and compensation, and which customers it invites.

Synthetic: invented events for the sample portfolio (the customers' responses are drawn in
``forecasting.synthetic.achievement``, put together in ``forecasting.synthetic.events``).

- **when**: peak events fall on working days, mostly on hot summer days (afternoon 13:00-16:00
  or evening 17:00-19:30 starts) and cold winter days (morning 09:00-10:30 or evening
  starts), never within a week of the Spring Festival nor in the last 14 days of a grid of
  90 days or more (room to plan a hypothetical event on metered days); valley-filling
  events (negative targets) fall on spring/autumn rest days around noon, when solar infeed is high.
  Durations are 1-4 h on 15-minute boundaries. About 165 events in the default 18 months
  (``EVENTS_PER_DAY``), so that the response likelihood has enough to learn and be scored on.
- **notice**: annual events weeks ahead, day-ahead (and valley filling) the previous
  evening, peak events 4-8 h ahead, real-time events 30-120 minutes ahead.
- **invitations**: each eligible customer with probability 0.45-0.6, at least two; only
  customers with upward-flexible resources are eligible for valley filling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.synthetic.grid import SLOTS_PER_DAY, TimeGrid

EVENTS_PER_DAY = 165 / 546  # about 165 events in the default 18 months
QUIET_DAYS_AT_END = 14  # no event in the last fortnight of a grid of 90+ days: room to plan
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


def invite(
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
