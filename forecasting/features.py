"""Horizon-aware features for one site, declared as data (``FeatureSpec``).

Each feature row is a pair (target interval start ``t``, issue time ``T``); ``lead = t - T``.
Only what was known at ``T`` reaches a row:

- lags ``value(t - k)`` are offered only when that interval had ended at ``T``
  (``t - k + resolution <= T``), else NaN — a lag shorter than the lead never leaks in;
- "last known" features (latest reading, means of the last 24 h / 7 days, the same time
  of day on the latest complete day and week) are computed at ``T``;
- weather and day-ahead prices come from the latest forecast issued at or before ``T``,
  linearly interpolated from the weather grid (e.g. hourly NWP) to the site resolution;
  observed weather is never used for a future interval unless the spec says so
  (``observed_weather_as_forecast``, for protocols such as GEFCom2012 load that do);
- calendar features describe ``t`` in the site's local time (``forecasting.calendar``);
- kind features: PV solar geometry and clear-sky terms (``forecasting.solar``), wind at hub
  height and power curve (``forecasting.wind``).

Column names derive from the spec deterministically (``lag_1440m_kw``, ``wx_temp_air_c`` ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.calendar import calendar_features
from forecasting.contract import WEATHER_COLUMNS
from forecasting.portfolio import SiteData, latest_issue, observation_width

DEFAULT_LAGS_MINUTES = (15, 30, 45, 60, 90, 120, 180, 240, 360, 720, 1440, 2880, 4320, 10080,
                        20160)


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
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        bad = [c for c in self.weather_columns if c not in WEATHER_COLUMNS]
        if bad:
            raise ValueError(f"unknown weather columns {bad}; expected a subset of "
                             f"{list(WEATHER_COLUMNS)}")
        if any(k <= 0 for k in self.lags_minutes):
            raise ValueError("lags_minutes must be positive minutes")


def _lookup(values: pd.Series, times: pd.DatetimeIndex) -> np.ndarray:
    """values at exact ``times`` (NaN where absent); ``values`` sorted, unique index."""
    pos = values.index.get_indexer(times)
    out = np.full(len(times), np.nan)
    ok = pos >= 0
    out[ok] = values.to_numpy(dtype=float)[pos[ok]]
    return out


def _last_known_stats(values: pd.Series, issues: pd.DatetimeIndex, res: pd.Timedelta
                      ) -> dict[str, np.ndarray]:
    """Latest reading and trailing means known at each issue time."""
    idx = values.index
    v = values.to_numpy(dtype=float)
    csum = np.concatenate([[0.0], np.cumsum(v)])
    # number of readings whose interval ended by the issue time
    n_known = idx.searchsorted(issues - res, side="right")
    out: dict[str, np.ndarray] = {}
    last = np.where(n_known > 0, v[np.maximum(n_known - 1, 0)], np.nan)
    age = np.where(n_known > 0, (issues - idx[np.maximum(n_known - 1, 0)]).total_seconds() / 60,
                   np.nan)
    out["last_known_kw"] = last
    out["last_known_age_minutes"] = age
    for name, span in (("mean_24h_kw", pd.Timedelta(days=1)), ("mean_7d_kw", pd.Timedelta(days=7))):
        n_start = idx.searchsorted(issues - span, side="left")
        count = n_known - n_start
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (csum[n_known] - csum[n_start]) / count
        out[name] = np.where(count > 0, mean, np.nan)
    return out


def _aligned_weather(weather: pd.DataFrame, targets: pd.DatetimeIndex, issues: pd.DatetimeIndex,
                     columns: list[str], observed_as_forecast: bool) -> pd.DataFrame:
    """Weather for each target from the latest issue known at its issue time, interpolated."""
    rows = weather
    if observed_as_forecast:
        obs = rows["issue_time"].isna()
        rows = rows.assign(issue_time=rows["issue_time"].where(
            ~obs, pd.Timestamp("1970-01-01", tz="UTC")))
    fc = rows[rows["issue_time"].notna()]
    if fc.empty or not columns:
        return pd.DataFrame(np.nan, index=range(len(targets)), columns=columns)
    width = observation_width(fc["timestamp"])
    t0 = targets.floor(width) if width <= pd.Timedelta(days=1) else targets
    t1 = t0 + width
    w = ((targets - t0) / width).to_numpy(dtype=float)
    a = latest_issue(fc, t0, issues, columns)
    b = latest_issue(fc, t1, issues, columns)
    va, vb = a[columns].to_numpy(dtype=float), b[columns].to_numpy(dtype=float)
    # Interpolate where both ends are known, else take the known end (the grid's last step).
    mixed = va * (1 - w)[:, None] + vb * w[:, None]
    mixed = np.where(np.isnan(vb), va, np.where(np.isnan(va), vb, mixed))
    out = pd.DataFrame(mixed, columns=columns)
    dirs = [c for c in columns if c.endswith("_dir_10m_deg") or c.endswith("_dir_100m_deg")]
    for c in dirs:  # directions do not interpolate linearly across north: take the nearer one
        out[c] = np.where(w < 0.5, a[c], np.where(np.isnan(b[c]), a[c], b[c]))
    return out


def _price_column(prices: pd.DataFrame) -> str | None:
    cols = [c for c in prices.columns if c.startswith("price_") and c.endswith("_per_mwh")]
    return cols[0] if cols else None


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
    site = data.site
    res = pd.Timedelta(minutes=site.resolution_minutes)
    values = data.values_kw
    lead_min = ((targets - issues) / pd.Timedelta(minutes=1)).to_numpy(dtype=float)
    cols: dict[str, np.ndarray] = {"lead_minutes": lead_min}
    for k in spec.lags_minutes:
        lag = pd.Timedelta(minutes=k)
        v = _lookup(values, targets - lag)
        known = (targets - lag + res) <= issues
        cols[f"lag_{k}m_kw"] = np.where(known, v, np.nan)
    if spec.use_last_known:
        cols.update(_last_known_stats(values, issues, res))
        # the same interval on the latest day (and week) whose interval had ended at T
        day, week = pd.Timedelta(days=1), pd.Timedelta(days=7)
        ahead = (targets - issues) + res
        n_days = np.maximum(np.ceil(np.asarray(ahead / day, dtype=float)), 1)
        n_weeks = np.maximum(np.ceil(np.asarray(ahead / week, dtype=float)), 1)
        cols["same_time_last_known_day_kw"] = _lookup(
            values, targets - pd.to_timedelta(n_days * 86400, unit="s"))
        cols["same_time_last_known_week_kw"] = _lookup(
            values, targets - pd.to_timedelta(n_weeks * 7 * 86400, unit="s"))
    frame = pd.DataFrame(cols, index=targets)
    if spec.use_calendar:
        cal = calendar_features(targets, site.timezone, site.holiday_country)
        frame = pd.concat([frame, cal], axis=1)
    wx_cols = [c for c in spec.weather_columns if c in data.weather.columns
               and data.weather[c].notna().any()]
    wx = _aligned_weather(data.weather, targets, issues, wx_cols,
                          spec.observed_weather_as_forecast)
    wx.index = targets
    for c in spec.weather_columns:
        frame[f"wx_{c}"] = wx[c].to_numpy() if c in wx else np.nan
    if spec.use_price:
        frame["price_day_ahead_per_mwh"] = _day_ahead_price(data.prices, targets, issues)
    if spec.use_kind_features and site.kind in ("pv", "wind"):
        frame = pd.concat([frame, kind_features(site, targets, wx)], axis=1)
    return frame


def _day_ahead_price(prices: pd.DataFrame, targets: pd.DatetimeIndex,
                     issues: pd.DatetimeIndex) -> np.ndarray:
    col = _price_column(prices) if not prices.empty else None
    if col is None:
        return np.full(len(targets), np.nan)
    da = prices[prices["market"] == "day_ahead"]
    if da.empty:
        return np.full(len(targets), np.nan)
    width = observation_width(da["timestamp"])
    t0 = targets.floor(width) if width <= pd.Timedelta(days=1) else targets
    return latest_issue(da, t0, issues, [col])[col].to_numpy(dtype=float)


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
