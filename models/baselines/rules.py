"""Rule baselines: similar days, X-of-Y with day-of adjustment, pre-event average.

All follow ``models.baselines.common.BaselineEstimator`` (``fit(load_kw, *, timezone,
holiday_country, event_days)``, ``predict(start, end, notice_time=None)``) and use only
measurements whose interval had ended by the event start (adjustments: by the notice).

Formulas (``L_d(s)``: mean kW of slot ``s`` on local day ``d``; ``D``: the event day; ``P``:
the pool of days chosen for ``D``; ``W``: the event window's slots; ``A``: the adjustment
window's slots)

* Similar days [1]_ [2]_: ``P`` = the latest ``n`` *normal* days before ``D`` of the same pool
  as ``D``: working days (ordinary weekdays *and* swapped working Saturdays/Sundays, 调休)
  for a working day, ordinary weekend days for a weekend day, and for a public holiday (or
  a weekend day inside a holiday block, ``common.pool_of_day``) the pool chosen by
  ``holiday_pool``. Earlier event days of the customer, days of another pool
  and days with a missing reading in ``W`` are skipped, looking back at most
  ``lookback_days``. ``B(s) = mean_{d in P'} L_d(s)`` where ``P'`` is ``P`` or, for the
  *high X of Y* variant, the ``x`` days of ``P`` with the highest mean load over ``W``.
* X of Y with day-of adjustment [2]_ [3]_: the same pool with ``y`` days, the ``x`` highest
  averaged (``x = y``: plain average, CAISO "10 in 10"), then adjusted with the hours before
  the notice: ``A`` = the ``adjustment_window_minutes`` ending ``adjustment_gap_minutes``
  before ``min(notice, start)``.
  multiplicative: ``B'(s) = B(s) * clip(mean_A L_D / mean_A B, 1 - cap, 1 + cap)``;
  additive: ``B'(s) = B(s) + clip(mean_A L_D - mean_A B, -cap * mean_W B, +cap * mean_W B)``.
  ``B`` over ``A`` is the pool average on the event day; where ``A`` lies on an earlier day
  (a notice the day before) it is that day's own similar-day average, so that e.g. a Sunday
  evening before a Monday event is compared with earlier Sundays.
* Pre-event average [4]_: ``B(s) = mean L`` over the intervals that end within the
  ``window_minutes`` before the event start (at least the last interval before it).

A window longer than a day uses the pool of its first day, shifted day by day.

References
----------
.. [1] Chinese provincial demand-response implementation rules (e.g. Jiangsu, Guangdong)
   commonly define the baseline as the mean load at the same times on the latest 5 normal
   working days (3 for non-working days), skipping holidays and earlier response days.
.. [2] PJM Manual 11, "Energy & Ancillary Services Market Operations", Customer Baseline
   Load: high 4 of 5 weekdays (high 2 of 3 weekend days) with a symmetric additive
   adjustment from the hours before the event.
.. [3] CAISO Business Practice Manual for Demand Response / NAESB WEQ-015: "10 in 10"
   baseline with a day-of (load point) adjustment capped at ±20 %.
.. [4] EnerNOC (2011), "The Demand Response Baseline", white paper: "meter before / meter
   after" and pre-event averages for fast (ancillary-service) responses.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from forecasting.calendar import day_type
from forecasting.errors import DataError, InsufficientDataError
from models.baselines.common import (
    BaselineDetails,
    BaselineEstimator,
    pool_of_day,
    window_index,
)

HOLIDAY_POOLS = {"weekend": ("weekend",), "holiday": ("holiday",),
                 "non_working": ("weekend", "holiday")}
ADJUSTMENTS = (None, "multiplicative", "additive")


def _check_int(name: str, value, low: int = 1) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


class _PoolBaseline(BaselineEstimator):
    """Shared machinery of the pool baselines (similar days, X of Y)."""

    lookback_days: int
    holiday_pool: str
    min_days: int

    def _pool_size(self, pool: str) -> tuple[int, int | None]:  # pragma: no cover
        raise NotImplementedError

    def _adjustment(self) -> tuple[str | None, float | None, int, int]:
        return None, None, 0, 0

    def _validate_common(self) -> None:
        _check_int("lookback_days", self.lookback_days)
        _check_int("min_days", self.min_days)
        if self.holiday_pool not in HOLIDAY_POOLS:
            raise ValueError(f"unknown holiday_pool {self.holiday_pool!r}, expected one of "
                             f"{sorted(HOLIDAY_POOLS)}")

    def _who(self) -> str:
        return f"customer {self.customer_id_}" if getattr(self, "customer_id_", None) else \
            "this customer"

    def fit(self, load_kw, *, timezone, holiday_country=None, event_days=(), weather=None,
            customer_id: str | None = None):
        """See ``BaselineEstimator.fit``; ``customer_id`` only names the customer in errors."""
        self.customer_id_ = customer_id
        return super().fit(load_kw, timezone=timezone, holiday_country=holiday_country,
                           event_days=event_days, weather=weather)

    def _choose(self, day, offsets, slots, start, index, extra=None):
        """Pool of ``day`` for the intervals (offsets, slots): (used rows, their values).

        ``extra``: further (offsets, slots) a pool day must also have readings for. Raises
        ``InsufficientDataError`` when fewer than ``min_days`` days qualify.
        """
        m = self.matrix_
        kind = pool_of_day(day, self.holiday_country_)
        accepted = HOLIDAY_POOLS[self.holiday_pool] if kind == "holiday" else (kind,)
        y, x = self._pool_size("working" if kind == "working" else "non_working")
        cand = m.row(day) - np.arange(1, self.lookback_days + 1)
        inside = (cand >= 0) & (cand < m.n_days)
        c = np.where(inside, cand, 0)
        kind_ok = inside & np.isin(self.pool_of_row_[c], accepted)
        not_event = inside & ~self.event_row_[c]
        vals = m.take(cand[:, None] + offsets[None, :], slots[None, :], start)
        complete = ~np.isnan(vals).any(axis=1)
        extra_vals = None
        if extra is not None and len(extra[0]):
            extra_vals = m.take(cand[:, None] + extra[0][None, :], extra[1][None, :], start)
            complete &= ~np.isnan(extra_vals).any(axis=1)
        chosen = np.flatnonzero(kind_ok & not_event & complete)[:y]
        if len(chosen) < self.min_days:
            raise InsufficientDataError(
                f"{self._who()}: no similar-day pool for the window {index[0]} .. "
                f"{index[-1] + self.resolution_} (local day {day}, a "
                f"{day_type(day, self.holiday_country_)} -> pool {'/'.join(accepted)}): found "
                f"{len(chosen)} of the {self.min_days} day(s) needed within the "
                f"{self.lookback_days} days before it ({int((kind_ok & ~not_event).sum())} "
                f"earlier event day(s) and {int((kind_ok & not_event & ~complete).sum())} "
                "day(s) with missing readings skipped); give more history before the event or "
                "raise lookback_days")
        used = chosen
        if x is not None and x < len(chosen):
            order = np.argsort(-vals[chosen].mean(axis=1), kind="stable")[:x]
            used = chosen[np.sort(order)]
        return cand[used], vals[used], extra_vals[used] if extra_vals is not None else None, \
            len(chosen) < y, y

    def _predict_details(self, index, start, notice) -> BaselineDetails:
        m = self.matrix_
        day = index[0].tz_convert(self.timezone_).date()
        offsets, slots = m.locate(index, day)
        adj_kind, cap, adj_window, adj_gap = self._adjustment()
        same_day = None
        if adj_kind is not None:
            ref = notice - pd.Timedelta(minutes=adj_gap)
            adj_index = window_index(ref - pd.Timedelta(minutes=adj_window), ref,
                                     self.resolution_)
            adj_index = adj_index[adj_index + self.resolution_ <= ref]
            if adj_index.empty:
                raise DataError(
                    f"the adjustment window ({adj_window} min ending {adj_gap} min before the "
                    f"notice {notice}) holds no whole {self.resolution_} interval; lengthen "
                    "adjustment_window_minutes")
            a_off, a_slot = m.locate(adj_index, day)
            same_day = a_off == 0
        extra = (a_off[same_day], a_slot[same_day]) if adj_kind is not None else None
        rows, pool_vals, same_day_ref, short, y = self._choose(day, offsets, slots, start, index,
                                                               extra)
        baseline = pool_vals.mean(axis=0)
        pool_days = tuple(m.day(r) for r in rows)

        adjustment = None
        notes: list[str] = []
        if adj_kind is not None:
            actual = m.take(m.row(day) + a_off, a_slot, notice)
            ok = ~np.isnan(actual)
            if not ok.any():
                raise InsufficientDataError(
                    f"{self._who()}: no reading in the adjustment window {adj_index[0]} .. "
                    f"{adj_index[-1] + self.resolution_} before the notice {notice}; use "
                    "adjustment=None or the similar-days baseline")
            # the unadjusted baseline over the adjustment window: on the event day from the
            # event's pool; on an earlier day (a notice the day before) from that day's own
            # pool, so that a Sunday evening is compared with Sundays, not with the weekdays
            # before the event's pool days
            ref_vals = np.full(len(a_off), np.nan)
            if same_day.any():
                ref_vals[same_day] = same_day_ref.mean(axis=0)
            for k in np.unique(a_off[~same_day]):
                sel = a_off == k
                other = day + dt.timedelta(days=int(k))
                _, v, _, _, _ = self._choose(other, np.zeros(int(sel.sum()), dtype=np.int64),
                                             a_slot[sel], start, adj_index[sel])
                ref_vals[sel] = v.mean(axis=0)
            ok &= ~np.isnan(ref_vals)
            if not ok.all():
                notes.append(f"adjustment from {int(ok.sum())} of {len(ok)} intervals")
            actual_mean = float(actual[ok].mean())
            ref_mean = float(ref_vals[ok].mean())
            if adj_kind == "multiplicative":
                if ref_mean <= 0:
                    raise DataError(
                        f"{self._who()}: the baseline over the adjustment window is "
                        f"{ref_mean:.3g} kW (<= 0), a ratio is undefined; use "
                        "adjustment='additive'")
                factor = actual_mean / ref_mean
                if cap is not None:
                    factor = float(np.clip(factor, 1 - cap, 1 + cap))
                baseline = baseline * factor
                adjustment = factor
            else:
                offset = actual_mean - ref_mean
                if cap is not None:
                    limit = cap * abs(float(baseline.mean()))
                    offset = float(np.clip(offset, -limit, limit))
                baseline = baseline + offset
                adjustment = offset
        if short:
            notes.append(f"the pool holds fewer than {y} days")
        return BaselineDetails(self._frame(index, baseline), self.method, pool_days,
                               adjustment, adj_kind, tuple(notes))


class SimilarDaysBaseline(_PoolBaseline):
    """Mean of the same intervals on the latest ``n_days`` normal days of the same type.

    Parameters
    ----------
    n_days : pool size for a working-day event (5 by default [1]_).
    high_x : if set, average only the ``high_x`` pool days with the highest load over the
        window ("high 4 of 5" [2]_); None averages the whole pool.
    n_days_non_working, high_x_non_working : the same for weekend and holiday events
        (3 and None by default).
    lookback_days : how far back (calendar days) to look for pool days (45).
    holiday_pool : pool for a public-holiday event: ``'weekend'`` (ordinary weekend days,
        default), ``'holiday'`` (earlier public holidays only) or ``'non_working'`` (both).
    min_days : fewest pool days accepted; fewer raise ``InsufficientDataError`` (1).

    See the module doc for the formula and references.
    """

    method = "similar_days"

    def __init__(self, n_days: int = 5, high_x: int | None = None, n_days_non_working: int = 3,
                 high_x_non_working: int | None = None, lookback_days: int = 45,
                 holiday_pool: str = "weekend", min_days: int = 1):
        self.n_days = n_days
        self.high_x = high_x
        self.n_days_non_working = n_days_non_working
        self.high_x_non_working = high_x_non_working
        self.lookback_days = lookback_days
        self.holiday_pool = holiday_pool
        self.min_days = min_days

    def _validate_params(self) -> None:
        self._validate_common()
        for n_name, x_name in (("n_days", "high_x"),
                               ("n_days_non_working", "high_x_non_working")):
            n, x = getattr(self, n_name), getattr(self, x_name)
            _check_int(n_name, n)
            if x is not None:
                _check_int(x_name, x)
                if x > n:
                    raise ValueError(f"{x_name}={x} exceeds {n_name}={n}; high X of Y needs "
                                     "X <= Y")

    def _pool_size(self, pool):
        if pool == "working":
            return self.n_days, self.high_x
        return self.n_days_non_working, self.high_x_non_working


class XofYBaseline(_PoolBaseline):
    """High ``x`` of the latest ``y`` pool days, with a capped day-of adjustment.

    Parameters
    ----------
    x, y : days averaged and pool size for working-day events (10 of 10 by default [3]_).
    x_non_working, y_non_working : the same for weekend/holiday events (4 of 4).
    adjustment : ``'multiplicative'`` (default), ``'additive'`` or None.
    adjustment_cap : the factor is clipped to ``1 ± cap``; the additive offset to ``± cap``
        times the unadjusted baseline's mean over the window (0.2); None: no cap.
    adjustment_window_minutes : length of the adjustment window (180).
    adjustment_gap_minutes : the window ends this long before ``min(notice, start)`` (60), so
        that pre-event behaviour after the notice cannot inflate the baseline.
    lookback_days, holiday_pool, min_days : as in ``SimilarDaysBaseline``.

    See the module doc for the formula and references.
    """

    method = "x_of_y"

    def __init__(self, x: int = 10, y: int = 10, x_non_working: int = 4,
                 y_non_working: int = 4, adjustment: str | None = "multiplicative",
                 adjustment_cap: float | None = 0.2, adjustment_window_minutes: int = 180,
                 adjustment_gap_minutes: int = 60, lookback_days: int = 45,
                 holiday_pool: str = "weekend", min_days: int = 1):
        self.x = x
        self.y = y
        self.x_non_working = x_non_working
        self.y_non_working = y_non_working
        self.adjustment = adjustment
        self.adjustment_cap = adjustment_cap
        self.adjustment_window_minutes = adjustment_window_minutes
        self.adjustment_gap_minutes = adjustment_gap_minutes
        self.lookback_days = lookback_days
        self.holiday_pool = holiday_pool
        self.min_days = min_days

    def _validate_params(self) -> None:
        self._validate_common()
        for x_name, y_name in (("x", "y"), ("x_non_working", "y_non_working")):
            x, y = getattr(self, x_name), getattr(self, y_name)
            _check_int(x_name, x)
            _check_int(y_name, y)
            if x > y:
                raise ValueError(f"{x_name}={x} exceeds {y_name}={y}; X of Y needs X <= Y")
        if self.adjustment not in ADJUSTMENTS:
            raise ValueError(f"unknown adjustment {self.adjustment!r}, expected one of "
                             f"{list(ADJUSTMENTS)}")
        if self.adjustment_cap is not None and not 0 <= self.adjustment_cap < 1:
            raise ValueError(f"adjustment_cap must lie in [0, 1), got {self.adjustment_cap}")
        _check_int("adjustment_window_minutes", self.adjustment_window_minutes)
        _check_int("adjustment_gap_minutes", self.adjustment_gap_minutes, low=0)

    def _pool_size(self, pool):
        if pool == "working":
            return self.y, self.x
        return self.y_non_working, self.x_non_working

    def _adjustment(self):
        return (self.adjustment, self.adjustment_cap, self.adjustment_window_minutes,
                self.adjustment_gap_minutes)


class PreEventAverageBaseline(BaselineEstimator):
    """Flat baseline: mean load of the ``window_minutes`` before the event start [4]_.

    Parameters
    ----------
    window_minutes : length of the averaging window (15). With readings coarser than the
        window, the last whole interval before the reference is used.
    reference : ``'start'`` (default: the response start) or ``'notice'`` (the window ends at
        the notice time, so that pre-cooling or early ramp-down after the notice is excluded).
    """

    method = "pre_event"

    def __init__(self, window_minutes: int = 15, reference: str = "start"):
        self.window_minutes = window_minutes
        self.reference = reference

    def _validate_params(self) -> None:
        _check_int("window_minutes", self.window_minutes)
        if self.reference not in ("start", "notice"):
            raise ValueError(f"unknown reference {self.reference!r}, expected 'start' or "
                             "'notice'")

    def fit(self, load_kw, *, timezone, holiday_country=None, event_days=(), weather=None,
            customer_id: str | None = None):
        """See ``BaselineEstimator.fit``; ``customer_id`` only names the customer in errors."""
        self.customer_id_ = customer_id
        return super().fit(load_kw, timezone=timezone, holiday_country=holiday_country,
                           event_days=event_days, weather=weather)

    def _predict_details(self, index, start, notice) -> BaselineDetails:
        ref = start if self.reference == "start" else notice
        load = self.load_
        ends = load.index + self.resolution_
        lo = ref - pd.Timedelta(minutes=self.window_minutes)
        window = load[(ends <= ref) & (ends > lo)]
        if window.empty:
            last = load[ends <= ref]
            window = last.iloc[-1:] if not last.empty and (
                ref - (last.index[-1] + self.resolution_) < self.resolution_) else window
        if window.empty:
            who = f"customer {self.customer_id_}" if self.customer_id_ else "this customer"
            raise InsufficientDataError(
                f"{who}: no reading in the {self.window_minutes} min before {ref} "
                f"(the event {self.reference}); the pre-event average needs the meter "
                "readings just before the event")
        value = float(window.mean())
        note = f"mean of {len(window)} reading(s) from {window.index[0]} to {window.index[-1]}"
        return BaselineDetails(self._frame(index, np.full(len(index), value)), self.method,
                               notes=(note,))
