"""Demand-response measurement and settlement arithmetic (pure functions, no I/O).

Sign convention (../shared/DATA_FORMAT.md, events.csv): ``target_kw`` is the committed
change, a reduction positive, valley filling (an increase of load) negative.

Per interval ``t`` of an event (all kW, mean power over the interval):

- ``reduction_kw(t) = baseline_kw(t) - actual_kw(t)`` (negative when load rose);
- ``response_kw(t) = reduction_kw(t) * sign(target_kw)``: the change in the requested
  direction, positive when the customer did what was asked (valley filling: load rose);
- ``achievement(t) = reduction_kw(t) / target_kw`` (dimensionless; 1.0 = exactly the target;
  for valley filling both are negative, so an increase of load gives a positive achievement).

Per event: ``achievement = mean_t reduction_kw / target_kw`` over the measured intervals.
A ``SettlementRule`` then decides whether the event counts and how much is paid:

- the response counts when ``achievement >= min_achievement_ratio`` (default 0.8) and, if
  ``min_interval_achievement_ratio`` is set, every measured interval reaches that too, and
  the measured share of intervals is at least ``min_measured_share``;
- ``paid_achievement = min(achievement, max_paid_achievement_ratio)`` (default cap 1.2) when
  it counts, else ``paid_share_below_threshold * max(achievement, 0)`` (default 0: nothing);
- ``paid_response_kw = paid_achievement * |target_kw|``;
- ``payment_cny = paid_response_kw / 1000 * compensation_cny_per_mw`` (``payment_basis``
  ``per_mw``) or ``... * duration_h`` (``per_mwh``).

A province's rule is a configuration: e.g. ``SettlementRule(name="jiangsu-2024",
min_achievement_ratio=0.8, max_paid_achievement_ratio=1.2)``; the numbers above are the
defaults asked for in the issue, not a statement about any province's current rule.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from forecasting.errors import (
    DataError,
    ImpossibleValueError,
    IrregularResolutionError,
    NaiveTimestampError,
)

INTERVAL_COLUMNS = ("baseline_kw", "actual_kw", "reduction_kw", "response_kw", "target_kw",
                    "achievement")
MIN_READING_SECONDS = 5


class SettlementRule(BaseModel):
    """How a market settles a demand-response event (see the module doc for the formulas)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("default", description="name of the rule, e.g. a province and year")
    interval_minutes: int = Field(
        15, gt=0, le=60,
        description="settlement interval: readings and baselines are averaged to it (minutes)")
    min_achievement_ratio: float = Field(
        0.8, ge=0, description="the response counts when the event's achievement "
        "(mean reduction / target) reaches this ratio")
    max_paid_achievement_ratio: float = Field(
        1.2, gt=0, description="achievement above this ratio is not paid (cap)")
    min_interval_achievement_ratio: float | None = Field(
        None, description="if set, every measured interval must also reach this achievement "
        "ratio for the response to count")
    min_measured_share: float = Field(
        1.0, ge=0, le=1, description="share of the event's intervals that must have readings "
        "for the response to count")
    paid_share_below_threshold: float = Field(
        0.0, ge=0, le=1, description="share of the achieved response paid when it does not "
        "count (0: nothing)")
    payment_basis: Literal["per_mw", "per_mwh"] = Field(
        "per_mw", description="compensation_cny_per_mw is per MW of paid response and event "
        "(per_mw) or per MWh of paid response (per_mwh)")

    @model_validator(mode="after")
    def _cap_above_threshold(self):
        if self.max_paid_achievement_ratio < self.min_achievement_ratio:
            raise ValueError(
                f"max_paid_achievement_ratio {self.max_paid_achievement_ratio} is below "
                f"min_achievement_ratio {self.min_achievement_ratio}; no response could be paid")
        if 1440 % self.interval_minutes:
            raise ValueError(f"interval_minutes {self.interval_minutes} does not divide a day")
        return self


@dataclass(frozen=True)
class EventResult:
    """One customer's result for one event (kW are means over the event's intervals)."""

    target_kw: float
    n_intervals: int
    n_measured: int
    baseline_kw: float
    actual_kw: float
    reduction_kw: float
    response_kw: float
    achievement: float
    counts: bool
    paid_achievement: float
    paid_response_kw: float
    reduction_energy_kwh: float
    payment_cny: float | None
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


def _check_target(target_kw: float) -> float:
    target = float(target_kw)
    if not np.isfinite(target) or target == 0:
        raise ImpossibleValueError(
            f"target_kw is {target_kw!r}; a demand-response target must be a non-zero number "
            "(positive = reduction, negative = valley filling)")
    return target


def interval_results(baseline_kw: pd.Series, actual_kw: pd.Series, target_kw: float
                     ) -> pd.DataFrame:
    """Per-interval baseline, actual, reduction, response and achievement.

    ``baseline_kw`` defines the intervals (index = interval starts); ``actual_kw`` is aligned
    to it (an interval without a reading gets NaN actual, reduction and achievement).
    """
    target = _check_target(target_kw)
    base = pd.Series(baseline_kw, dtype="float64")
    actual = pd.Series(actual_kw, dtype="float64").reindex(base.index)
    reduction = base - actual
    frame = pd.DataFrame({
        "baseline_kw": base,
        "actual_kw": actual,
        "reduction_kw": reduction,
        "response_kw": reduction * np.sign(target),
        "target_kw": target,
        "achievement": reduction / target,
    }, index=base.index)
    frame.index.name = "timestamp"
    return frame


def settle(intervals: pd.DataFrame, rule: SettlementRule | None = None,
           compensation_cny_per_mw: float | None = None,
           interval_minutes: float | None = None) -> EventResult:
    """Event-level result of ``interval_results`` output under ``rule``.

    ``interval_minutes`` is the width of the rows (default: the rule's interval), used for
    the energy (kWh) and the per-MWh payment.
    """
    rule = rule or SettlementRule()
    if intervals.empty:
        raise DataError("no intervals to settle; the event window is empty")
    target = _check_target(intervals["target_kw"].iloc[0])
    width_h = (interval_minutes or rule.interval_minutes) / 60.0
    measured = intervals.dropna(subset=["actual_kw", "baseline_kw"])
    n, n_meas = len(intervals), len(measured)
    if n_meas == 0:
        return EventResult(target, n, 0, float(intervals["baseline_kw"].mean()), np.nan, np.nan,
                           np.nan, np.nan, False, 0.0, 0.0, np.nan,
                           0.0 if compensation_cny_per_mw is not None else None,
                           "no readings in the event window")
    reduction = float(measured["reduction_kw"].mean())
    achievement = reduction / target
    reasons = []
    counts = True
    if achievement < rule.min_achievement_ratio:
        counts = False
        reasons.append(f"achievement {achievement:.1%} below {rule.min_achievement_ratio:.0%}")
    if rule.min_interval_achievement_ratio is not None:
        low = measured["achievement"] < rule.min_interval_achievement_ratio
        if low.any():
            counts = False
            reasons.append(f"{int(low.sum())} interval(s) below "
                           f"{rule.min_interval_achievement_ratio:.0%}")
    if n_meas / n < rule.min_measured_share:
        counts = False
        reasons.append(f"only {n_meas} of {n} intervals measured")
    if counts:
        paid = min(achievement, rule.max_paid_achievement_ratio)
        reasons.append("counts" + (f"; paid achievement capped at "
                                   f"{rule.max_paid_achievement_ratio:.0%}"
                                   if achievement > rule.max_paid_achievement_ratio else ""))
    else:
        paid = rule.paid_share_below_threshold * max(achievement, 0.0)
    paid_kw = paid * abs(target)
    duration_h = n * width_h
    payment = None
    if compensation_cny_per_mw is not None and np.isfinite(compensation_cny_per_mw):
        payment = paid_kw / 1000.0 * float(compensation_cny_per_mw)
        if rule.payment_basis == "per_mwh":
            payment *= duration_h
    return EventResult(
        target_kw=target, n_intervals=n, n_measured=n_meas,
        baseline_kw=float(measured["baseline_kw"].mean()),
        actual_kw=float(measured["actual_kw"].mean()), reduction_kw=reduction,
        response_kw=reduction * float(np.sign(target)), achievement=achievement, counts=counts,
        paid_achievement=float(paid), paid_response_kw=float(paid_kw),
        reduction_energy_kwh=float(measured["reduction_kw"].sum() * width_h),
        payment_cny=payment, reason="; ".join(reasons))


def measure(baseline_kw: pd.Series, actual_kw: pd.Series, target_kw: float,
            rule: SettlementRule | None = None, compensation_cny_per_mw: float | None = None
            ) -> tuple[pd.DataFrame, EventResult]:
    """``interval_results`` and ``settle`` in one call."""
    rows = interval_results(baseline_kw, actual_kw, target_kw)
    return rows, settle(rows, rule, compensation_cny_per_mw)


def interval_means(frame, interval_minutes: int):
    """Mean per settlement interval of a frame or series on a finer regular grid (e.g. a
    baseline at 5 minutes on 15-minute settlement); unchanged when already as coarse."""
    if len(frame) < 2 or frame.index[1] - frame.index[0] >= pd.Timedelta(
            minutes=interval_minutes):
        return frame
    return frame.groupby(frame.index.floor(f"{interval_minutes}min")).mean()


def aggregate_readings(readings_kw: pd.Series, interval_minutes: int = 15,
                       name: str = "readings") -> pd.DataFrame:
    """Mean power per settlement interval from readings at any regular resolution.

    ``readings_kw``: mean kW per reading interval (5 s .. ``interval_minutes``), tz-aware index
    of reading starts. Returns, per interval start (UTC): ``actual_kw`` (mean of the readings
    in it), ``n_readings`` and ``coverage`` (readings present / readings expected, 0..1).
    """
    if not isinstance(readings_kw.index, pd.DatetimeIndex) or readings_kw.index.tz is None:
        raise NaiveTimestampError(f"{name}: timestamps need a UTC offset or zone "
                                  "(e.g. 2025-07-01T14:00:05+08:00)")
    values = pd.to_numeric(readings_kw, errors="coerce").astype("float64").dropna()
    if values.empty:
        raise DataError(f"{name}: no numeric readings")
    values.index = values.index.tz_convert("UTC").as_unit("ns")
    values = values.sort_index()
    if values.index.has_duplicates:
        raise DataError(f"{name}: two readings at {values.index[values.index.duplicated()][0]}")
    interval = pd.Timedelta(minutes=interval_minutes)
    if len(values) > 1:
        steps = np.diff(values.index.asi8)
        step = pd.Timedelta(int(steps.min()), unit="ns")
        if (steps % step.value).any():
            raise IrregularResolutionError(
                f"{name}: readings are not on one regular grid (smallest step {step}); send "
                "readings at one fixed resolution")
    else:
        step = interval
    if step < pd.Timedelta(seconds=MIN_READING_SECONDS) or step > interval or (
            interval.value % step.value):
        raise IrregularResolutionError(
            f"{name}: reading resolution {step} must lie between {MIN_READING_SECONDS} s and "
            f"{interval_minutes} min and divide {interval_minutes} min")
    bins = values.index.floor(interval)
    grouped = values.groupby(bins)
    out = pd.DataFrame({"actual_kw": grouped.mean(), "n_readings": grouped.size()})
    out["coverage"] = out["n_readings"] / (interval / step)
    out.index.name = "timestamp"
    return out


def portfolio_result(results: pd.DataFrame) -> dict:
    """Sum of per-customer event results (``EventResult.to_dict`` rows) for the portfolio.

    Returns target, baseline, actual, reduction (kW, sums over customers), the portfolio's
    achievement (sum reduction / sum target), the number of customers that count, and the
    paid response and payment (sums).
    """
    if results.empty:
        raise DataError("no customer results to add up")
    target = float(results["target_kw"].sum())
    reduction = float(results["reduction_kw"].sum())
    payment = results["payment_cny"].dropna() if "payment_cny" in results else pd.Series()
    return {
        "n_customers": len(results),
        "n_counting": int(results["counts"].sum()),
        "target_kw": target,
        "baseline_kw": float(results["baseline_kw"].sum()),
        "actual_kw": float(results["actual_kw"].sum()),
        "reduction_kw": reduction,
        "achievement": reduction / target if target else float("nan"),
        "paid_response_kw": float(results["paid_response_kw"].sum()),
        "payment_cny": float(payment.sum()) if len(payment) else None,
    }
