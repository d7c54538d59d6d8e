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
  height and power curve (``forecasting.wind``).

Column names derive from the spec deterministically (``lag_1440m_kw``, ``wx_temp_air_c``,
``wx_ghi_wm2_p1h`` ...). The numeric work is numpy over int64 nanoseconds: a 96-point
forecast builds its features in a few milliseconds, a year of training rows in well under
a second (plus the PV geometry).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.calendar import calendar_features
from forecasting.contract import WEATHER_COLUMNS
from forecasting.portfolio import SiteData

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
        if any(h == 0 for h in self.weather_context_hours):
            raise ValueError("weather_context_hours are offsets from the target; 0 is the "
                             "target itself and always present")

    @property
    def uses_history(self) -> bool:
        """True when any feature reads the site's measurements (lags or last-known stats)."""
        return bool(self.lags_minutes) or self.use_last_known


def _ns(values) -> np.ndarray:
    """UTC nanoseconds (int64) of tz-aware stamps (an index, a Series or an array)."""
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

    def __init__(self, frame: pd.DataFrame, columns: list[str]):
        ts = _ns(frame["timestamp"])
        iss = _ns(frame["issue_time"]) // 10**9
        self.columns = columns
        self.valid = np.unique(ts)
        rank = np.searchsorted(self.valid, ts)
        self.i0 = int(iss.min()) - 1 if len(iss) else 0
        self.span = int(iss.max()) - self.i0 + 2 if len(iss) else 2
        key = rank * self.span + (iss - self.i0)
        order = np.argsort(key, kind="stable")
        self.key = key[order]
        self.rank = rank[order]
        self.issue_ns = iss[order] * 10**9
        self.values = frame[columns].to_numpy(dtype=float)[order] if columns else \
            np.empty((len(order), 0))

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


def _grid_width_ns(timestamps: np.ndarray) -> int:
    """Typical spacing of a weather or price grid (median step of the unique stamps)."""
    u = np.unique(timestamps)
    return int(np.median(np.diff(u))) if len(u) > 1 else 3600 * 10**9


def _forecast_rows(frame: pd.DataFrame, observed_as_forecast: bool) -> pd.DataFrame:
    rows = frame
    if observed_as_forecast and len(rows):
        obs = rows["issue_time"].isna()
        rows = rows.assign(issue_time=rows["issue_time"].where(
            ~obs, pd.Timestamp("1970-01-01", tz="UTC")))
    return rows[rows["issue_time"].notna()] if len(rows) else rows


def _trim(rows: pd.DataFrame, lo_ns: int, hi_ns: int) -> pd.DataFrame:
    """Rows whose valid time lies in [lo, hi] (cheap prefilter before indexing)."""
    if len(rows) < 2048:
        return rows
    t = _ns(rows["timestamp"])
    return rows[(t >= lo_ns) & (t <= hi_ns)]


def _interpolated(table: _IssueTable, width: int, times: np.ndarray, issues: np.ndarray,
                  directions: list[int], cols: list[int] | None = None, back: int = 0
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Weather at ``times`` from the latest issue known at ``issues``, linear in time between
    grid points (the nearer point for directions, which do not interpolate across north)."""
    t0 = times - np.mod(times, width) if width <= DAY_NS else times
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
    present = [c for c in wanted if c in data.weather.columns]
    rows = _forecast_rows(data.weather, spec.observed_weather_as_forecast)
    present = [c for c in present if len(rows) and rows[c].notna().any()]
    feats: dict[str, np.ndarray] = {}
    aligned = pd.DataFrame(index=range(n))
    context = [c for c in spec.weather_context_columns if c in wanted]
    offsets = [int(h * 3600 * 10**9) for h in spec.weather_context_hours]
    if present and n:
        reach = max([abs(o) for o in offsets] + [0]) + 2 * DAY_NS
        rows = _trim(rows, int(targets.min()) - reach, int(targets.max()) + reach)
        width = _grid_width_ns(_ns(rows["timestamp"]))
        table = _IssueTable(rows, present)
        dirs = [j for j, c in enumerate(present) if c in DIRECTION_COLUMNS]
        values, src = _interpolated(table, width, targets, issues, dirs)
        aligned = pd.DataFrame(values, columns=present)
        ctx_idx = [j for j, c in enumerate(present) if c in context]
        for off in offsets:
            if ctx_idx:
                v, _ = _interpolated(table, width, targets + off, issues, [], ctx_idx)
                for k, j in enumerate(ctx_idx):
                    feats[f"wx_{present[j]}_{_offset_suffix(off / 3.6e12)}"] = v[:, k]
        if spec.use_previous_issue and ctx_idx:
            v, _ = _interpolated(table, width, targets, issues, [], ctx_idx, back=1)
            for k, j in enumerate(ctx_idx):
                feats[f"wx_{present[j]}_prev_issue"] = v[:, k]
        age = np.where(src > np.iinfo(np.int64).min, (targets - src) / NS_PER_MIN, np.nan)
    else:
        age = np.full(n, np.nan)
    base = {f"wx_{c}": (aligned[c].to_numpy() if c in aligned else np.full(n, np.nan))
            for c in wanted}
    ctx = {}
    for off in offsets:
        for c in context:
            name = f"wx_{c}_{_offset_suffix(off / 3.6e12)}"
            ctx[name] = feats.get(name, np.full(n, np.nan))
    if spec.use_previous_issue:
        ctx.update({f"wx_{c}_prev_issue": feats.get(f"wx_{c}_prev_issue", np.full(n, np.nan))
                    for c in context})
    return aligned, {**base, **ctx, "wx_age_minutes": age}


def _price_column(prices: pd.DataFrame) -> str | None:
    cols = [c for c in prices.columns if c.startswith("price_") and c.endswith("_per_mwh")]
    return cols[0] if cols else None


def _day_ahead_price(prices: pd.DataFrame, targets: np.ndarray, issues: np.ndarray
                     ) -> np.ndarray:
    col = _price_column(prices) if not prices.empty else None
    if col is None:
        return np.full(len(targets), np.nan)
    da = prices[(prices["market"] == "day_ahead") & prices["issue_time"].notna()]
    da = _trim(da, int(targets.min()) - 2 * DAY_NS, int(targets.max()) + DAY_NS) if len(
        targets) else da
    if da.empty:
        return np.full(len(targets), np.nan)
    width = _grid_width_ns(_ns(da["timestamp"]))
    t0 = targets - np.mod(targets, width) if width <= DAY_NS else targets
    return _IssueTable(da, [col]).lookup(t0, issues)[0][:, 0]


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
    frame = pd.DataFrame(cols, index=targets)
    parts = [frame]
    if spec.use_calendar:
        parts.append(calendar_features(targets, site.timezone, site.holiday_country))
    wx, wx_cols = _weather(data, t_ns, i_ns, spec)
    wx.index = targets
    parts.append(pd.DataFrame(wx_cols, index=targets))
    if spec.use_price:
        parts.append(pd.DataFrame({"price_day_ahead_per_mwh": _day_ahead_price(
            data.prices, t_ns, i_ns)}, index=targets))
    if spec.use_kind_features and site.kind in ("pv", "wind"):
        parts.append(kind_features(site, targets, wx))
    return pd.concat(parts, axis=1) if len(parts) > 1 else frame


def kind_features(site, targets: pd.DatetimeIndex, weather: pd.DataFrame) -> pd.DataFrame:
    """PV or wind physical features for the targets from the aligned weather."""
    if site.kind == "pv":
        from forecasting.solar import pv_features

        return pv_features(targets, weather, site.latitude_deg, site.longitude_deg,
                           resolution_minutes=site.resolution_minutes, tilt_deg=site.tilt_deg,
                           azimuth_deg=site.azimuth_deg, capacity_kw=site.capacity_kw)
    from forecasting.wind import wind_features

    return wind_features(targets, weather, hub_height_m=site.hub_height_m,
                         capacity_kw=site.capacity_kw)
