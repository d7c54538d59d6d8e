"""Forecasts from the registered champion, in the output format of DATA_FORMAT.md.

``forecast_core`` is pure (a fitted forecaster and data in, a frame out); ``forecast_site``
looks the champion up in the registry. Checks before forecasting, each a clear error:
naive times, an empty or reversed window, a window that starts before the issue time by
more than a day, no measurement known in the week before the issue time (stale data).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

from forecasting.errors import DataError, StaleDataError
from forecasting.portfolio import Portfolio, SiteData, as_utc
from models.forecaster import quantile_column
from pipelines.registry import LoadedModel, ModelRegistry

MAX_HISTORY_AGE = pd.Timedelta(days=7)
OUTPUT_COLUMNS = ("site_id", "issue_time", "timestamp")


def target_index(site, start, end) -> pd.DatetimeIndex:
    """Interval starts from ``start`` (inclusive) to ``end`` (exclusive) at the site resolution."""
    s, e = as_utc(start, "start"), as_utc(end, "end")
    res = pd.Timedelta(minutes=site.resolution_minutes)
    if e <= s:
        raise DataError(f"end {e} must be after start {s}")
    if s.floor(res) != s or e.floor(res) != e:
        raise DataError(f"start and end must lie on the site's {site.resolution_minutes}-minute "
                        f"grid (got {s}, {e})")
    if (e - s) > pd.Timedelta(days=7):
        raise DataError(f"window {s}..{e} is longer than 7 days; forecasts reach D+2")
    return pd.date_range(s, e, freq=res, inclusive="left")


def check_fresh(data: SiteData, issue: pd.Timestamp) -> None:
    known = data.known_at(issue).values_kw
    if known.empty or issue - known.index.max() > MAX_HISTORY_AGE:
        last = "none" if known.empty else known.index.max().isoformat()
        raise StaleDataError(
            f"site {data.site.site_id}: latest measurement known at {issue.isoformat()} is "
            f"{last}; forecasts need measurements from the last {MAX_HISTORY_AGE.days} days — "
            "load recent readings into the portfolio or choose an earlier issue time")


def forecast_core(model: LoadedModel, data: SiteData, issue_time, start, end,
                  quantiles=None) -> pd.DataFrame:
    issue = as_utc(issue_time, "issue_time")
    targets = target_index(data.site, start, end)
    if targets[0] < issue - pd.Timedelta(days=1):
        raise DataError(f"window starts {targets[0]}, more than a day before issue time {issue}")
    check_fresh(data, issue)
    out = model.forecaster.forecast(data, issue, targets, quantiles)
    out.index.name = "timestamp"
    out = out.reset_index()
    out.insert(0, "issue_time", issue)
    out.insert(0, "site_id", data.site.site_id)
    out["model_version"] = model.label
    return out


def forecast_site(portfolio: Portfolio, kind: str, site_id: str, issue_time, start, end,
                  quantiles=None, registry: ModelRegistry | None = None) -> pd.DataFrame:
    site = portfolio.site(site_id)
    if site.kind != kind:
        raise DataError(f"site {site_id} is of kind {site.kind!r}, not {kind!r}")
    as_utc(issue_time, "issue_time")  # bad input first, before the registry is asked
    target_index(site, start, end)
    model = (registry or ModelRegistry()).champion(kind, site_id)
    return forecast_core(model, portfolio.site_data(site_id), issue_time, start, end, quantiles)


HORIZONS = ("intraday", "day_ahead", "d_plus_2")


def horizon_window(site, issue: pd.Timestamp, horizon: str | None = None,
                   horizon_minutes: int | None = None, start: datetime | None = None,
                   end: datetime | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The target window from one of: start+end, horizon_minutes, or a horizon name.

    ``intraday``: the next 4 hours from the first interval starting at or after the issue;
    ``day_ahead``: the next local day; ``d_plus_2``: the local day after it (default
    ``day_ahead``).
    """
    given = sum(x is not None for x in (horizon_minutes, start or end))
    if given > 1 or (horizon and given):
        raise DataError("give one of: start and end, horizon_minutes, or horizon")
    if (start is None) != (end is None):
        raise DataError("give both start and end")
    if horizon is not None and horizon not in HORIZONS:
        raise DataError(f"unknown horizon {horizon!r}, expected one of {list(HORIZONS)}")
    first = issue.ceil(pd.Timedelta(minutes=site.resolution_minutes))
    if start is not None:
        return pd.Timestamp(start), pd.Timestamp(end)
    if horizon_minutes is not None:
        return first, first + pd.Timedelta(minutes=horizon_minutes)
    local = issue.tz_convert(site.timezone)
    days = {"day_ahead": 1, "d_plus_2": 2}.get(horizon or "day_ahead")
    if days is None:  # intraday
        return first, first + pd.Timedelta(hours=4)
    day = local.normalize() + pd.Timedelta(days=days)
    return day.tz_convert("UTC"), (day + pd.Timedelta(days=1)).tz_convert("UTC")


def to_local(frame: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """Timestamps in the site's zone (ISO text keeps the offset)."""
    out = frame.copy()
    for col in ("issue_time", "timestamp"):
        out[col] = pd.DatetimeIndex(out[col]).tz_convert(timezone)
    return out


def write_forecast_csv(frame: pd.DataFrame, path, timezone: str) -> None:
    local = to_local(frame, timezone)
    for col in ("issue_time", "timestamp"):
        local[col] = local[col].map(lambda t: t.isoformat())
    local.to_csv(path, index=False, float_format="%.4f")


__all__ = ["forecast_core", "forecast_site", "quantile_column", "write_forecast_csv"]
