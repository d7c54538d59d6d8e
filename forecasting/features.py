"""Horizon-aware features for one site, declared as data (``FeatureSpec``).

Each feature row is a pair (target interval start ``t``, issue time ``T``); ``lead = t - T``.
Only what was known at ``T`` reaches a row:

- lags ``value(t - k)`` are offered only when that interval had ended at ``T``
  (``t - k + resolution <= T``), else NaN — a lag shorter than the lead never leaks in;
  lags that are not a multiple of the site's resolution are left out (hourly data has no
  15-minute lag);
- "last known" features are computed at ``T``: the latest reading and its age, means of the
  last 24 h and 7 days, the same interval on the latest complete day and week, and the mean
  of the same interval over the 7 latest complete days (a daily profile);
- weather and day-ahead prices come from the latest forecast issued at or before ``T``
  (the contract's weather columns, plus ``extra_weather_columns`` a data set may add),
  linearly interpolated from the weather grid (e.g. hourly NWP) to the site resolution;
  the same issue also gives the weather ``weather_context_hours`` around ``t`` (timing
  errors of the NWP) and the age of that issue at ``t`` (``wx_age_minutes``); observed
  weather is never used for a future interval unless the spec says so
  (``observed_weather_as_forecast``, for protocols such as GEFCom2012 load that do);
- calendar features describe ``t`` in the site's local time (``forecasting.calendar``);
- kind features: PV solar geometry and clear-sky terms (``forecasting.solar``), wind at hub
  height and power curve, and with ``wind_direction_sectors`` the speed split by direction
  sector (``forecasting.wind``).

Column names derive from the spec deterministically (``lag_1440m_kw``, ``wx_temp_air_c``,
``wx_ghi_wm2_p1h`` ...). The numeric work is numpy over int64 nanoseconds: a 96-point
forecast builds its features in a few milliseconds, a year of training rows in well under
a second (plus the PV geometry).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import pandas as pd

from forecasting.calendar import day_type, days_to_spring_festival
from forecasting.contract import WEATHER_COLUMNS
from forecasting.portfolio import SiteData, known_rows

DEFAULT_LAGS_MINUTES = (15, 30, 45, 60, 90, 120, 180, 240, 360, 720, 1440, 2880, 4320, 10080,
                        20160)
DEFAULT_CONTEXT_HOURS = (-3.0, -1.0, 1.0, 3.0)
DEFAULT_CONTEXT_COLUMNS = ("temp_air_c", "ghi_wm2", "cloud_cover_frac", "wind_speed_10m_mps",
                           "wind_speed_100m_mps")
DIRECTION_COLUMNS = ("wind_dir_10m_deg", "wind_dir_100m_deg")
NS_PER_MIN = 60 * 10**9
DAY_NS = 86400 * 10**9


@dataclass(frozen=True)
class FeatureSpec:
    """Which features a model uses. Validated at construction."""

    lags_minutes: tuple[int, ...] = DEFAULT_LAGS_MINUTES
    weather_columns: tuple[str, ...] = WEATHER_COLUMNS
    use_calendar: bool = True
    use_price: bool = True
    use_last_known: bool = True
    use_kind_features: bool = True
    observed_weather_as_forecast: bool = False
    weather_context_hours: tuple[float, ...] = DEFAULT_CONTEXT_HOURS
    weather_context_columns: tuple[str, ...] = DEFAULT_CONTEXT_COLUMNS
    extra_weather_columns: tuple[str, ...] = ()
    use_previous_issue: bool = True
    wind_direction_sectors: int = 0
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        for name, allowed in (("weather_columns", WEATHER_COLUMNS),
                              ("weather_context_columns",
                               (*WEATHER_COLUMNS, *self.extra_weather_columns))):
            bad = [c for c in getattr(self, name) if c not in allowed]
            if bad:
                raise ValueError(f"unknown {name} {bad}; expected a subset of "
                                 f"{list(allowed)}")
        clash = [c for c in self.extra_weather_columns if c in WEATHER_COLUMNS
                 or not c.replace("_", "").isalnum() or c != c.lower()]
        if clash:
            raise ValueError(f"extra_weather_columns {clash}: give lower-case names outside the "
                             "contract's columns, with the unit in the name (e.g. "
                             "toa_net_solar_wm2)")
        if any(k <= 0 for k in self.lags_minutes):
            raise ValueError("lags_minutes must be positive minutes")
        sectors = self.wind_direction_sectors
        if int(sectors) != sectors or sectors < 0 or sectors == 1:
            raise ValueError(f"wind_direction_sectors must be 0 (off) or a whole number >= 2, "
                             f"got {self.wind_direction_sectors}")
        if any(h == 0 for h in self.weather_context_hours):
            raise ValueError("weather_context_hours are offsets from the target; 0 is the "
                             "target itself and always present")

    @property
    def uses_history(self) -> bool:
        """True when any feature reads the site's measurements (lags or last-known stats)."""
        return bool(self.lags_minutes) or self.use_last_known


def _ns(values) -> np.ndarray:
    """UTC nanoseconds (int64) of tz-aware stamps (an index, a Series or an array)."""
    arr = values.array if isinstance(values, (pd.Series, pd.Index)) else values
    if isinstance(arr, pd.arrays.DatetimeArray) and arr.tz is not None:
        return (arr if arr.unit == "ns" else arr.as_unit("ns")).asi8
    idx = pd.DatetimeIndex(values)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC")
    return idx.as_unit("ns").asi8


def _offset_suffix(hours: float) -> str:
    return f"{'p' if hours > 0 else 'm'}{abs(hours):g}h"


class _Series:
    """A measured series as sorted int64 ns stamps and float values, for exact lookups."""

    def __init__(self, values: pd.Series):
        self.t = _ns(values.index)
        self.v = values.to_numpy(dtype=float)
        self.csum = np.concatenate([[0.0], np.cumsum(self.v)])

    def at(self, times_ns: np.ndarray) -> np.ndarray:
        """values at exactly ``times_ns`` (NaN where absent)."""
        out = np.full(len(times_ns), np.nan)
        if not len(self.t):
            return out
        pos = np.searchsorted(self.t, times_ns).clip(0, len(self.t) - 1)
        hit = self.t[pos] == times_ns
        out[hit] = self.v[pos[hit]]
        return out


def _last_known_stats(s: _Series, issues: np.ndarray, res_ns: int) -> dict[str, np.ndarray]:
    """Latest reading and trailing means known at each issue time."""
    n_known = np.searchsorted(s.t, issues - res_ns, side="right")
    last_pos = np.maximum(n_known - 1, 0)
    has = n_known > 0
    out: dict[str, np.ndarray] = {}
    if len(s.t):
        out["last_known_kw"] = np.where(has, s.v[last_pos], np.nan)
        out["last_known_age_minutes"] = np.where(has, (issues - s.t[last_pos]) / NS_PER_MIN,
                                                 np.nan)
    else:
        out["last_known_kw"] = out["last_known_age_minutes"] = np.full(len(issues), np.nan)
    for name, span in (("mean_24h_kw", DAY_NS), ("mean_7d_kw", 7 * DAY_NS)):
        n_start = np.searchsorted(s.t, issues - span, side="left")
        count = n_known - n_start
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (s.csum[n_known] - s.csum[n_start]) / count
        out[name] = np.where(count > 0, mean, np.nan)
    return out


def _same_time_features(s: _Series, targets: np.ndarray, issues: np.ndarray, res_ns: int
                        ) -> dict[str, np.ndarray]:
    """The same interval on the latest complete day and week known at the issue, and the
    mean of the same interval over the 7 latest complete days (NaN-skipping)."""
    ahead = targets - issues + res_ns
    n_days = np.maximum(np.ceil(ahead / DAY_NS), 1).astype(np.int64)
    n_weeks = np.maximum(np.ceil(ahead / (7 * DAY_NS)), 1).astype(np.int64)
    days = np.column_stack([s.at(targets - (n_days + k) * DAY_NS) for k in range(7)])
    with np.errstate(invalid="ignore"):
        count = np.sum(~np.isnan(days), axis=1)
        profile = np.where(count > 0, np.nansum(days, axis=1) / np.maximum(count, 1), np.nan)
    return {"same_time_last_known_day_kw": days[:, 0],
            "same_time_last_known_week_kw": s.at(targets - n_weeks * 7 * DAY_NS),
            "same_time_mean_7d_kw": profile}


class _IssueTable:
    """Forecast rows indexed for "latest issue at or before T" lookups per valid time.

    Rows are keyed by (rank of the valid time, issue time in seconds) in one sorted int64
    array, so a lookup of many (valid time, issue) pairs is two ``searchsorted`` calls.
    """

    def __init__(self, ts: np.ndarray, issue_ns: np.ndarray, values: np.ndarray):
        """``ts``/``issue_ns``: valid and issue times (int64 ns); ``values``: (rows, cols)."""
        iss = issue_ns // 10**9
        self.valid = np.unique(ts)
        rank = np.searchsorted(self.valid, ts)
        self.i0 = int(iss.min()) - 1 if len(iss) else 0
        self.span = int(iss.max()) - self.i0 + 2 if len(iss) else 2
        key = rank * self.span + (iss - self.i0)
        order = np.argsort(key, kind="stable")
        self.key = key[order]
        self.rank = rank[order]
        self.issue_ns = iss[order] * 10**9
        self.values = values[order]

    def lookup(self, times_ns: np.ndarray, issues_ns: np.ndarray, cols: list[int] | None = None,
               back: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Values (n, columns) of the latest issue <= each issue at each time; NaN if none,
        and that issue time (ns; min int64 if none). ``cols`` picks column positions;
        ``back=1`` gives the issue before the latest instead (a lagged NWP ensemble)."""
        n = len(times_ns)
        values = self.values if cols is None else self.values[:, cols]
        out = np.full((n, values.shape[1]), np.nan)
        src = np.full(n, np.iinfo(np.int64).min)
        if not len(self.key) or not n:
            return out, src
        r = np.searchsorted(self.valid, times_ns).clip(0, len(self.valid) - 1)
        ok = self.valid[r] == times_ns
        iss = np.clip(issues_ns // 10**9 - self.i0, 0, self.span - 1)
        pos = np.searchsorted(self.key, r * self.span + iss, side="right") - 1 - back
        ok &= pos >= 0
        pos = pos.clip(0)
        ok &= self.rank[pos] == r
        out[ok] = values[pos[ok]]
        src[ok] = self.issue_ns[pos[ok]]
        return out, src


@dataclass(frozen=True)
class Grid:
    """The time grid of a weather or price table: its step and where the steps fall.

    ``phase_ns`` is the offset of the grid points from the UTC epoch grid: 0 for hourly
    data on whole UTC hours, 30 minutes for hourly data on the whole local hours of
    Asia/Kolkata (UTC+05:30)."""

    width_ns: int
    phase_ns: int = 0

    @classmethod
    def of(cls, timestamps: np.ndarray) -> Grid:
        """Typical spacing (median step of the unique stamps; 1 h for a single stamp) and
        the most common phase."""
        u = np.unique(timestamps)
        width = int(np.median(np.diff(u))) if len(u) > 1 else 3600 * 10**9
        if width <= 0 or width > DAY_NS:
            return cls(width)
        phases, counts = np.unique(np.mod(u, width), return_counts=True)
        return cls(width, int(phases[np.argmax(counts)]))

    def floor(self, times: np.ndarray) -> np.ndarray:
        """The grid point at or before each time (int64 ns); times themselves beyond a
        daily grid."""
        if self.width_ns > DAY_NS:
            return times
        return times - np.mod(times - self.phase_ns, self.width_ns)


def _forecast_arrays(frame: pd.DataFrame, columns: list[str], observed_as_forecast: bool
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Valid times, issue times (int64 ns) and values of a table's forecast rows.

    Observations (no ``issue_time``) are left out, or with ``observed_as_forecast`` taken
    as forecasts issued at the epoch (known to every issue)."""
    if frame.empty:
        return (np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, len(columns))))
    ts = _ns(frame["timestamp"])
    iss = _ns(frame["issue_time"])
    obs = iss == np.iinfo(np.int64).min
    if observed_as_forecast:
        iss = np.where(obs, 0, iss)
        obs = np.zeros(len(iss), dtype=bool)
    vals = frame[columns].to_numpy(dtype=float) if columns else np.empty((len(frame), 0))
    if obs.any():
        keep = ~obs
        return ts[keep], iss[keep], vals[keep]
    return ts, iss, vals


def _interpolated(table: _IssueTable, grid: Grid, times: np.ndarray, issues: np.ndarray,
                  directions: list[int], cols: list[int] | None = None, back: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Weather at ``times`` from the latest issue known at ``issues``, linear in time between
    grid points (the nearer point for directions, which do not interpolate across north)."""
    width = grid.width_ns
    t0 = grid.floor(times)
    w = ((times - t0) / width)[:, None]
    va, sa = table.lookup(t0, issues, cols, back)
    vb, _ = table.lookup(t0 + width, issues, cols, back)
    mixed = va * (1 - w) + vb * w
    mixed = np.where(np.isnan(vb), va, np.where(np.isnan(va), vb, mixed))
    for j in directions:
        mixed[:, j] = np.where((w[:, 0] < 0.5) | np.isnan(vb[:, j]), va[:, j], vb[:, j])
    return mixed, sa


def _weather(data: SiteData, targets: np.ndarray, issues: np.ndarray, spec: FeatureSpec
             ) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Aligned weather at the targets (contract names) and the ``wx_*`` feature columns."""
    n = len(targets)
    wanted = (*spec.weather_columns, *spec.extra_weather_columns)
    present = table_columns = [c for c in wanted if c in data.weather.columns]
    reach = max([abs(int(h * 3.6e12)) for h in spec.weather_context_hours] + [0]) + 2 * DAY_NS
    ts, iss, vals = _forecast_arrays(data.weather, present, spec.observed_weather_as_forecast)
    if n and len(ts):  # rows near the targets only
        near = (ts >= int(targets.min()) - reach) & (ts <= int(targets.max()) + reach)
        ts, iss, vals = ts[near], iss[near], vals[near]
    has = ~np.isnan(vals).all(axis=0) if len(ts) else np.zeros(len(present), dtype=bool)
    present = [c for c, h in zip(present, has, strict=True) if h]
    vals = vals[:, has]
    feats: dict[str, np.ndarray] = {}
    values = np.empty((n, 0))
    context = [c for c in spec.weather_context_columns if c in wanted]
    offsets = [int(h * 3600 * 10**9) for h in spec.weather_context_hours]
    if present and n:
        grid = Grid.of(ts)
        table = _IssueTable(ts, iss, vals)
        dirs = [j for j, c in enumerate(present) if c in DIRECTION_COLUMNS]
        values, src = _interpolated(table, grid, targets, issues, dirs)
        ctx_idx = [j for j, c in enumerate(present) if c in context]
        for off in offsets:
            if ctx_idx:
                v, _ = _interpolated(table, grid, targets + off, issues, [], ctx_idx)
                for k, j in enumerate(ctx_idx):
                    feats[f"wx_{present[j]}_{_offset_suffix(off / 3.6e12)}"] = v[:, k]
        if spec.use_previous_issue and ctx_idx:
            v, _ = _interpolated(table, grid, targets, issues, [], ctx_idx, back=1)
            for k, j in enumerate(ctx_idx):
                feats[f"wx_{present[j]}_prev_issue"] = v[:, k]
        age = np.where(src > np.iinfo(np.int64).min, (targets - src) / NS_PER_MIN, np.nan)
    else:
        age = np.full(n, np.nan)
    where = {c: j for j, c in enumerate(present)}
    base = {f"wx_{c}": (values[:, where[c]] if c in where else np.full(n, np.nan))
            for c in wanted}
    # the aligned frame has every wanted column of the table, NaN where no forecast is near
    # the targets: the kind features choose their inputs by the columns, so the columns must
    # not depend on which rows a call sees (a fit's calibration rows, a forecast's window)
    aligned = pd.DataFrame({c: base[f"wx_{c}"] for c in table_columns})
    ctx = {}
    for off in offsets:
        for c in context:
            name = f"wx_{c}_{_offset_suffix(off / 3.6e12)}"
            ctx[name] = feats.get(name, np.full(n, np.nan))
    if spec.use_previous_issue:
        ctx.update({f"wx_{c}_prev_issue": feats.get(f"wx_{c}_prev_issue", np.full(n, np.nan))
                    for c in context})
    return aligned, {**base, **ctx, "wx_age_minutes": age}


def forecast_weather_columns(weather: pd.DataFrame, spec: FeatureSpec) -> tuple[str, ...]:
    """The spec's contract weather columns that hold a forecast value in ``weather`` (any
    value with ``observed_weather_as_forecast``): what a model fitted on it can be given.

    Observed-only columns never reach a forecast row; left in, a PV model would take an
    observed-only ``ghi_wm2`` (NaN in every forecast) as its irradiance source instead of a
    forecast ``cloud_cover_frac``."""
    if weather.empty:
        return ()
    rows = weather if spec.observed_weather_as_forecast else weather[weather["issue_time"].notna()]
    return tuple(c for c in spec.weather_columns if c in rows.columns and rows[c].notna().any())


def _price_column(prices: pd.DataFrame) -> str | None:
    cols = [c for c in prices.columns if c.startswith("price_") and c.endswith("_per_mwh")]
    return cols[0] if cols else None


def _day_ahead_price(prices: pd.DataFrame, targets: np.ndarray, issues: np.ndarray
                     ) -> np.ndarray:
    col = _price_column(prices) if not prices.empty else None
    if col is None:
        return np.full(len(targets), np.nan)
    ts, iss, vals = _forecast_arrays(prices, [col], False)
    if "market" in prices and len(ts):
        market = prices["market"].to_numpy(dtype=object)
        market = market[_ns(prices["issue_time"]) != np.iinfo(np.int64).min]
        day_ahead = market == "day_ahead"
        ts, iss, vals = ts[day_ahead], iss[day_ahead], vals[day_ahead]
    if len(targets) and len(ts):
        near = (ts >= int(targets.min()) - 2 * DAY_NS) & (ts <= int(targets.max()) + DAY_NS)
        ts, iss, vals = ts[near], iss[near], vals[near]
    if not len(ts):
        return np.full(len(targets), np.nan)
    return _IssueTable(ts, iss, vals).lookup(Grid.of(ts).floor(targets), issues)[0][:, 0]


def lookback_ns(spec: FeatureSpec, max_lead_ns: int) -> int:
    """How far before its targets a row's features may read measurements (ns)."""
    lags = max(spec.lags_minutes, default=0) * NS_PER_MIN
    profile = (8 * DAY_NS + max_lead_ns + DAY_NS) if spec.use_last_known else 0
    return max(lags, profile, 8 * DAY_NS if spec.use_last_known else 0) + DAY_NS


def window_known_at(data: SiteData, targets: pd.DatetimeIndex, issue: pd.Timestamp,
                    spec: FeatureSpec) -> SiteData:
    """The part of ``data`` a forecast of ``targets`` issued at ``issue`` can use: what was
    known then (``SiteData.known_at``) and near the targets in time. Cutting by time first
    keeps a single forecast fast however long the history is."""
    t = _ns(targets)
    if not len(t):
        return data.known_at(issue)
    i = int(pd.Timestamp(issue).value)
    back = lookback_ns(spec, int(t.max()) - i)
    v = data.values_kw
    vt = _ns(v.index)
    lo = np.searchsorted(vt, int(t.min()) - back, side="left")
    reach = max([abs(int(h * 3.6e12)) for h in spec.weather_context_hours] + [0]) + 2 * DAY_NS

    def cut(frame: pd.DataFrame, observations: bool) -> pd.DataFrame:
        """Rows near the targets that were known at the issue, in one selection."""
        if frame.empty:
            return frame
        ft = _ns(frame["timestamp"])
        keep = (ft >= int(t.min()) - reach) & (ft <= int(t.max()) + reach)
        if observations:  # observations count once their interval has ended
            return known_rows(frame[keep], pd.Timestamp(issue))
        iss = _ns(frame["issue_time"])
        return frame[keep & (iss != np.iinfo(np.int64).min) & (iss <= i)]

    res = data.site.resolution_minutes * NS_PER_MIN
    hi = np.searchsorted(vt, i - res, side="right")  # intervals ended by the issue
    return replace(data, values_kw=v.iloc[lo:max(hi, lo)],
                   weather=cut(data.weather, spec.observed_weather_as_forecast),
                   prices=cut(data.prices, False))


@lru_cache(maxsize=8192)
def _day_calendar(day: int, country: str | None) -> tuple[float, ...]:
    """Day-level calendar values of the local day ``day`` (days since 1970-01-01)."""
    date = dt.date(1970, 1, 1) + dt.timedelta(days=int(day))
    working = ("workday", "swapped_workday")
    kind = day_type(date, country)
    prev = day_type(date - dt.timedelta(days=1), country) in working
    nxt = day_type(date + dt.timedelta(days=1), country) in working
    to_sf = (float(np.clip(days_to_spring_festival(pd.Index([date]))[0], -30, 30))
             if country == "CN" else np.nan)
    doy = date.timetuple().tm_yday
    return (float(kind in working), float(kind == "holiday"), float(kind == "swapped_workday"),
            float(kind == "weekend"), float(prev), float(nxt),
            np.sin(2 * np.pi * doy / 365.25), np.cos(2 * np.pi * doy / 365.25), to_sf)


_DAY_COLUMNS = ("cal_is_working_day", "cal_is_holiday", "cal_is_swapped_workday",
                "cal_is_weekend", "cal_prev_day_working", "cal_next_day_working",
                "cal_day_of_year_sin", "cal_day_of_year_cos", "cal_days_to_spring_festival")


def _calendar(targets: pd.DatetimeIndex, timezone: str, country: str | None
              ) -> dict[str, np.ndarray]:
    """``forecasting.calendar.calendar_features`` as arrays, with day-level values cached per
    local day (the same values, a fraction of the time for short windows)."""
    wall = targets.tz_convert(timezone).tz_localize(None).as_unit("ns").asi8
    day = np.floor_divide(wall, DAY_NS)
    days, inverse = np.unique(day, return_inverse=True)
    table = np.array([_day_calendar(int(d), country) for d in days], dtype=float)
    rows = table[inverse]
    out = {"cal_minute_of_day": (wall - day * DAY_NS) // NS_PER_MIN,
           "cal_day_of_week": (day + 3) % 7}  # 1970-01-01 was a Thursday; Monday = 0
    out.update({c: rows[:, j] for j, c in enumerate(_DAY_COLUMNS)})
    return out


def build_features(data: SiteData, targets: pd.DatetimeIndex, issues: pd.DatetimeIndex,
                   spec: FeatureSpec) -> pd.DataFrame:
    """Feature frame, one row per (target, issue) pair, index = ``targets``.

    ``targets`` and ``issues`` are tz-aware and of equal length. ``data`` may hold history
    after the issue times (training): the masking here keeps each row leak-free.
    """
    if len(targets) != len(issues):
        raise ValueError("targets and issues must have the same length")
    targets = pd.DatetimeIndex(targets).tz_convert("UTC")
    issues = pd.DatetimeIndex(issues).tz_convert("UTC")
    t_ns, i_ns = _ns(targets), _ns(issues)
    site = data.site
    res_ns = site.resolution_minutes * NS_PER_MIN
    cols: dict[str, np.ndarray] = {"lead_minutes": (t_ns - i_ns) / NS_PER_MIN}
    if spec.uses_history:
        s = _Series(data.values_kw)
        for k in spec.lags_minutes:
            if k % site.resolution_minutes:
                continue
            lag = k * NS_PER_MIN
            known = (t_ns - lag + res_ns) <= i_ns
            cols[f"lag_{k}m_kw"] = np.where(known, s.at(t_ns - lag), np.nan)
        if spec.use_last_known:
            cols.update(_last_known_stats(s, i_ns, res_ns))
            cols.update(_same_time_features(s, t_ns, i_ns, res_ns))
    if spec.use_calendar:
        cols.update(_calendar(targets, site.timezone, site.holiday_country))
    wx, wx_cols = _weather(data, t_ns, i_ns, spec)
    cols.update(wx_cols)
    if spec.use_price:
        cols["price_day_ahead_per_mwh"] = _day_ahead_price(data.prices, t_ns, i_ns)
    if spec.use_kind_features and site.kind in ("pv", "wind"):
        wx.index = targets
        kind = kind_features(site, targets, wx, spec)
        cols.update({c: kind[c].to_numpy(dtype=float) for c in kind.columns})
    # one float block: cheap to build, to select columns from and to hand to LightGBM
    block = np.empty((len(targets), len(cols)))
    for j, v in enumerate(cols.values()):
        block[:, j] = v
    return pd.DataFrame(block, index=targets, columns=list(cols))


def kind_features(site, targets: pd.DatetimeIndex, weather: pd.DataFrame,
                  spec: FeatureSpec | None = None) -> pd.DataFrame:
    """PV or wind physical features for the targets from the aligned weather (wind: the
    spec's ``wind_direction_sectors``)."""
    if site.kind == "pv":
        from forecasting.solar import pv_features

        return pv_features(targets, weather, site.latitude_deg, site.longitude_deg,
                           resolution_minutes=site.resolution_minutes, tilt_deg=site.tilt_deg,
                           azimuth_deg=site.azimuth_deg, capacity_kw=site.capacity_kw)
    from forecasting.wind import wind_features

    spec = spec or FeatureSpec()
    return wind_features(targets, weather, hub_height_m=site.hub_height_m,
                         capacity_kw=site.capacity_kw, turbine_type=site.turbine_type,
                         direction_sectors=spec.wind_direction_sectors)
