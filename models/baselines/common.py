"""What every customer-baseline estimator shares: input checks, the day matrix, windows.

A *baseline* is the load a customer would have drawn in an event window had there been no
event; a demand-response event is paid on ``baseline - actual``. Every estimator here has
the same interface::

    model = SomeBaseline(**params).fit(load_kw, timezone="Asia/Shanghai",
                                       holiday_country="CN", event_days={date, ...})
    frame = model.predict(start, end, notice_time=None)   # index: interval starts (UTC)

``load_kw`` is mean power per interval (kW) on a regular grid, indexed by tz-aware interval
start; gaps are allowed. ``predict`` uses ONLY measurements whose interval had ended by the
event start (and, for day-of adjustments, by the notice time): this is enforced in
``DayMatrix.take`` through a cut-off, not left to the caller. ``predict_details`` returns
the frame plus what was used (pool days, adjustment) for audits.

Glossary: *event day* ``D`` is the local date of the first interval of the window; a *pool
day* is an earlier day whose same-clock-time load stands in for ``D``; a *slot* is the
interval's position in its local day (local minute of day // resolution).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from forecasting.calendar import day_type
from forecasting.errors import (
    DataError,
    DuplicateRowsError,
    ImpossibleValueError,
    IrregularResolutionError,
    NaiveTimestampError,
)
from forecasting.portfolio import as_utc

NS_PER_MINUTE = 60_000_000_000
_NEVER = np.iinfo(np.int64).max  # UTC start of a cell with no data: never "known"

# Which pool of earlier days stands in for a day of each calendar type
# (forecasting.calendar.DAY_TYPES). A swapped working Saturday/Sunday is a working day.
POOL_OF_DAY_TYPE = {"workday": "working", "swapped_workday": "working",
                    "weekend": "weekend", "holiday": "holiday"}
BASELINE_COLUMNS = ("baseline_kw",)


@lru_cache(maxsize=65536)
def pool_of_day(day: dt.date, holiday_country: str | None) -> str:
    """Pool (``working``, ``weekend``, ``holiday``) whose days stand in for ``day``.

    From ``forecasting.calendar.day_type`` via ``POOL_OF_DAY_TYPE``, with one refinement: a
    Saturday/Sunday next to a public holiday belongs to the holiday block (the weekend days
    inside the Spring Festival or a National Day week are rest days of the holiday, not
    ordinary weekends), so it joins the ``holiday`` pool.
    """
    kind = day_type(day, holiday_country)
    if kind == "weekend":
        one = dt.timedelta(days=1)
        if "holiday" in (day_type(day - one, holiday_country),
                         day_type(day + one, holiday_country)):
            return "holiday"
    return POOL_OF_DAY_TYPE[kind]
BAND_COLUMNS = ("baseline_p10_kw", "baseline_p90_kw")


@dataclass(frozen=True)
class BaselineDetails:
    """A baseline and how it was made.

    ``frame``: index ``timestamp`` (UTC interval starts), column ``baseline_kw`` (kW) and, for
    ML baselines, ``baseline_p10_kw``/``baseline_p90_kw``. ``pool_days``: local dates whose
    load was averaged (rule baselines). ``adjustment``: the day-of factor (multiplicative,
    dimensionless) or offset (additive, kW) applied, None when not adjusted.
    """

    frame: pd.DataFrame
    method: str
    pool_days: tuple[dt.date, ...] = ()
    adjustment: float | None = None
    adjustment_kind: str | None = None
    notes: tuple[str, ...] = field(default=())


def check_load(load_kw: pd.Series, name: str = "load_kw") -> tuple[pd.Series, pd.Timedelta]:
    """Validated load (UTC index, sorted, no NaN) and its resolution.

    Refuses naive timestamps, duplicates, non-numeric values and irregular grids (every step
    must be a whole multiple of the smallest, which is the resolution). Rows with NaN load are
    dropped (gaps are allowed).
    """
    if not isinstance(load_kw, pd.Series):
        raise DataError(f"{name} must be a pandas Series indexed by interval start, got "
                        f"{type(load_kw).__name__}")
    if not isinstance(load_kw.index, pd.DatetimeIndex):
        raise DataError(f"{name} must have a DatetimeIndex of interval starts, got "
                        f"{type(load_kw.index).__name__}")
    if load_kw.index.tz is None:
        raise NaiveTimestampError(
            f"{name} has naive timestamps; localise them (e.g. "
            "series.tz_localize('Asia/Shanghai')) or give UTC offsets")
    values = pd.to_numeric(load_kw, errors="coerce").astype("float64")
    bad = values.isna() & load_kw.notna()
    if bad.any():
        raise ImpossibleValueError(f"{name}: non-numeric value at {load_kw.index[bad][0]}")
    values = values.dropna()
    values.index = values.index.tz_convert("UTC").as_unit("ns")
    values = values.sort_index()
    if values.index.has_duplicates:
        first = values.index[values.index.duplicated()][0]
        raise DuplicateRowsError(f"{name}: two readings for interval {first}; keep one")
    if len(values) < 2:
        raise IrregularResolutionError(
            f"{name}: {len(values)} reading(s); at least two are needed to know the resolution")
    steps = np.diff(values.index.asi8)
    res_ns = int(steps.min())
    if (steps % res_ns).any():
        where = values.index[1:][steps % res_ns != 0][0]
        raise IrregularResolutionError(
            f"{name}: irregular grid — the step ending at {where} is not a multiple of the "
            f"{res_ns / NS_PER_MINUTE:g}-minute resolution; resample to mean power first")
    if res_ns % NS_PER_MINUTE or (1440 * NS_PER_MINUTE) % res_ns:
        raise IrregularResolutionError(
            f"{name}: resolution {res_ns / NS_PER_MINUTE:g} minutes does not divide a day; "
            "aggregate to 5, 15, 30 or 60 minutes")
    values.name = "load_kw"
    return values, pd.Timedelta(res_ns, unit="ns")


def check_window(start, end, notice_time=None) -> tuple[pd.Timestamp, pd.Timestamp,
                                                         pd.Timestamp]:
    """UTC ``start < end`` and ``notice <= start`` (notice defaults to start)."""
    s = as_utc(start, "start")
    e = as_utc(end, "end")
    if e <= s:
        raise DataError(f"event window end {e} is not after its start {s}")
    n = s if notice_time is None else as_utc(notice_time, "notice_time")
    if n > s:
        raise DataError(f"notice_time {n} is after the event start {s}; a notice comes first")
    return s, e, n


def window_index(start: pd.Timestamp, end: pd.Timestamp, resolution: pd.Timedelta
                 ) -> pd.DatetimeIndex:
    """Interval starts on the resolution grid covering [start, end) (first one floored)."""
    first = start.floor(resolution)
    return pd.date_range(first, end, freq=resolution, inclusive="left", name="timestamp",
                         unit="ns")


def to_local_dates(days: Iterable) -> frozenset[dt.date]:
    """Event days as a frozenset of ``datetime.date`` (accepts dates, strings, Timestamps)."""
    out = set()
    for d in days or ():
        if isinstance(d, dt.datetime):
            raise DataError(f"event_days holds a datetime {d!r}; give local calendar dates")
        out.add(d if isinstance(d, dt.date) else pd.Timestamp(d).date())
    return frozenset(out)


@dataclass(frozen=True)
class DayMatrix:
    """A customer's load as (local day x slot) arrays, with each cell's UTC start.

    ``values[r, s]``: mean kW of slot ``s`` on local day ``first_day + r`` (NaN if absent).
    ``utc_ns[r, s]``: that cell's UTC interval start (ns); with a daylight-saving fall-back
    two intervals share a cell: the mean is kept and the later start.
    """

    first_day: dt.date
    values: np.ndarray
    utc_ns: np.ndarray
    resolution: pd.Timedelta
    timezone: str

    @property
    def n_days(self) -> int:
        return self.values.shape[0]

    @property
    def n_slots(self) -> int:
        return self.values.shape[1]

    def row(self, day: dt.date) -> int:
        """Row of a local date (may be out of range: negative or >= n_days)."""
        return (day - self.first_day).days

    def day(self, row: int) -> dt.date:
        return self.first_day + dt.timedelta(days=int(row))

    @classmethod
    def build(cls, load_kw: pd.Series, resolution: pd.Timedelta, timezone: str) -> DayMatrix:
        local = load_kw.index.as_unit("ns").tz_convert(timezone)
        res_min = int(resolution / pd.Timedelta(minutes=1))
        day0 = local[0].date()
        ordinal = local.tz_localize(None).normalize().asi8 // (86_400 * 10**9)
        rows = (ordinal - ordinal[0]).astype(np.int64)
        slots = ((local.hour * 60 + local.minute) // res_min).to_numpy().astype(np.int64)
        n_slots = 1440 // res_min
        n_days = int(rows[-1]) + 1
        values = np.full((n_days, n_slots), np.nan)
        utc = np.full((n_days, n_slots), _NEVER, dtype=np.int64)
        v = load_kw.to_numpy(dtype=float)
        t = load_kw.index.asi8
        flat = rows * n_slots + slots
        if len(np.unique(flat)) == len(flat):
            values[rows, slots] = v
            utc[rows, slots] = t
        else:  # daylight-saving fall-back: two intervals in one local slot
            frame = pd.DataFrame({"cell": flat, "v": v, "t": t}).groupby("cell").agg(
                v=("v", "mean"), t=("t", "max"))
            cells = frame.index.to_numpy()
            values[cells // n_slots, cells % n_slots] = frame["v"].to_numpy()
            utc[cells // n_slots, cells % n_slots] = frame["t"].to_numpy()
        return cls(day0, values, utc, resolution, timezone)

    def take(self, rows: np.ndarray, slots: np.ndarray, cutoff: pd.Timestamp) -> np.ndarray:
        """Values at (rows, slots) known at ``cutoff`` (interval ended by then); else NaN.

        ``rows`` and ``slots`` broadcast together; rows out of range give NaN. This is the
        single place where history reaches a baseline, so the no-leakage rule lives here.
        """
        rows, slots = np.broadcast_arrays(np.asarray(rows, dtype=np.int64),
                                          np.asarray(slots, dtype=np.int64))
        inside = (rows >= 0) & (rows < self.n_days)
        r = np.where(inside, rows, 0)
        vals = self.values[r, slots]
        ends = self.utc_ns[r, slots]
        known = inside & (ends != _NEVER) & (ends + self.resolution.value <= cutoff.value)
        return np.where(known, vals, np.nan)

    def locate(self, index: pd.DatetimeIndex, day: dt.date) -> tuple[np.ndarray, np.ndarray]:
        """(day offset from ``day``, slot) of each UTC interval start in ``index``."""
        local = index.as_unit("ns").tz_convert(self.timezone)
        res_min = int(self.resolution / pd.Timedelta(minutes=1))
        ordinal = local.tz_localize(None).normalize().asi8 // (86_400 * 10**9)
        day_ord = (day - dt.date(1970, 1, 1)).days
        offsets = (ordinal - day_ord).astype(np.int64)
        slots = ((local.hour * 60 + local.minute) // res_min).to_numpy().astype(np.int64)
        return offsets, slots


class BaselineEstimator(BaseEstimator):
    """Base class: the common ``fit``/``predict`` of every baseline (see module doc).

    Subclasses implement ``_predict_details(index, start, notice) -> BaselineDetails``.
    """

    method = "baseline"

    def fit(self, load_kw: pd.Series, *, timezone: str, holiday_country: str | None = None,
            event_days: Iterable = (), weather: pd.DataFrame | None = None):
        """Store the customer's history.

        Parameters
        ----------
        load_kw : mean power per interval, kW, tz-aware index of interval starts, regular grid.
        timezone : IANA zone of the customer (day types and clock times are local).
        holiday_country : ISO code for public holidays and swapped working days ('CN'); None
            means no holidays (every Saturday/Sunday is a weekend, every weekday a workday).
        event_days : local dates of the customer's earlier events; never used as pool days.
        weather : ignored by the rule baselines (accepted for a uniform call).
        """
        del weather
        self._validate_params()
        load, res = check_load(load_kw)
        try:
            pd.Timestamp("2024-01-01", tz=timezone)
        except Exception as err:  # zoneinfo raises several types for unknown zones
            raise DataError(f"unknown timezone {timezone!r}; give an IANA name such as "
                            "'Asia/Shanghai'") from err
        self.timezone_ = timezone
        self.holiday_country_ = holiday_country
        self.event_days_ = to_local_dates(event_days)
        self.resolution_ = res
        self.load_ = load
        self.matrix_ = DayMatrix.build(load, res, timezone)
        self.pool_of_row_ = np.array([pool_of_day(self.matrix_.day(r), holiday_country)
                                      for r in range(self.matrix_.n_days)])
        self.event_row_ = np.zeros(self.matrix_.n_days, dtype=bool)
        for d in self.event_days_:
            r = self.matrix_.row(d)
            if 0 <= r < self.matrix_.n_days:
                self.event_row_[r] = True
        return self

    def _validate_params(self) -> None:
        """Reject bad constructor parameters (called by ``fit``)."""

    def predict(self, start, end, notice_time=None) -> pd.DataFrame:
        """Baseline for the intervals of [start, end): frame with ``baseline_kw`` (kW)."""
        return self.predict_details(start, end, notice_time).frame

    def predict_details(self, start, end, notice_time=None) -> BaselineDetails:
        """Like ``predict``, plus the pool days and adjustment used."""
        check_is_fitted(self, "matrix_")
        s, e, n = check_window(start, end, notice_time)
        index = window_index(s, e, self.resolution_)
        return self._predict_details(index, s, n)

    def _predict_details(self, index: pd.DatetimeIndex, start: pd.Timestamp,
                         notice: pd.Timestamp) -> BaselineDetails:  # pragma: no cover
        raise NotImplementedError

    def _frame(self, index: pd.DatetimeIndex, values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame({"baseline_kw": np.asarray(values, dtype=float)}, index=index)
