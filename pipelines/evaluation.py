"""Pure evaluation cores (no MLflow, no files): issue schedules, forecasts over a window, scores.

``issue_schedule`` lists issue times and the window each one forecasts, e.g. the day-ahead
schedule (issued 12:00 local on D-1 for the 96 quarter-hours of D) or an intraday one
(every hour for the next 4 hours). ``forecast_schedule`` runs a fitted forecaster over a
schedule using, for every issue, only what was known then, and ``score_forecasts`` scores
the result against the measurements (overall, per lead hour and per hour of day).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.features import build_features
from forecasting.metrics import forecast_scores
from forecasting.portfolio import SiteData, as_utc


@dataclass(frozen=True)
class Schedule:
    """Issue times and the target window of each (lists of equal length, UTC)."""

    issues: list[pd.Timestamp]
    starts: list[pd.Timestamp]
    ends: list[pd.Timestamp]


def day_ahead_schedule(start, end, timezone: str, issue_hour_local: float = 12.0,
                       days_ahead: int = 1) -> Schedule:
    """One issue a day at ``issue_hour_local`` on D-``days_ahead`` for local day D in [start, end)."""
    first = as_utc(start, "start").tz_convert(timezone).normalize()
    last = as_utc(end, "end").tz_convert(timezone)
    days = pd.date_range(first, last, freq="1D", inclusive="left")
    issues, starts, ends = [], [], []
    for day in days:
        if day < first:
            continue
        # on the local wall clock: a 23- or 25-hour day (DST) keeps its issue hour and end
        wall = day.tz_localize(None)
        issue = (wall - pd.Timedelta(days=days_ahead)
                 + pd.Timedelta(hours=issue_hour_local)).tz_localize(
            timezone, ambiguous=False, nonexistent="shift_forward")
        issues.append(issue.tz_convert("UTC"))
        starts.append(day.tz_convert("UTC"))
        ends.append((wall + pd.Timedelta(days=1)).tz_localize(
            timezone, ambiguous=False, nonexistent="shift_forward").tz_convert("UTC"))
    return Schedule(issues, starts, ends)


def intraday_schedule(start, end, every_minutes: int = 60, horizon_minutes: int = 240) -> Schedule:
    """An issue every ``every_minutes`` for the next ``horizon_minutes``."""
    issues = pd.date_range(as_utc(start, "start"), as_utc(end, "end"),
                           freq=f"{every_minutes}min", inclusive="left")
    h = pd.Timedelta(minutes=horizon_minutes)
    return Schedule(list(issues), list(issues), [i + h for i in issues])


def forecast_schedule(model, data: SiteData, schedule: Schedule, quantiles=None
                      ) -> pd.DataFrame:
    """Forecasts for every issue of ``schedule`` in the output format (long, UTC).

    Features for all issues are built in one pass; each row only sees data known at its own
    issue time (``forecasting.features``), so this equals calling ``model.forecast`` per issue.
    """
    res = pd.Timedelta(minutes=data.site.resolution_minutes)
    targets, issues = [], []
    for issue, start, end in zip(schedule.issues, schedule.starts, schedule.ends, strict=True):
        t = pd.date_range(start, end, freq=res, inclusive="left")
        targets.append(t)
        issues.append(pd.DatetimeIndex([issue] * len(t)))
    if not targets:
        return pd.DataFrame()
    targets = targets[0].append(targets[1:]) if len(targets) > 1 else targets[0]
    issues = issues[0].append(issues[1:]) if len(issues) > 1 else issues[0]
    X = build_features(data, targets, issues, model.spec_)
    out = model.predict_features(X, quantiles)
    out.insert(0, "issue_time", issues)
    out.insert(0, "site_id", data.site.site_id)
    out.index.name = "timestamp"
    return out.reset_index()[["site_id", "issue_time", "timestamp", *out.columns[2:]]]


def attach_actuals(forecasts: pd.DataFrame, data: SiteData) -> pd.DataFrame:
    """Add the measured value (``actual_kw``) to each forecast row (NaN where missing)."""
    actual = data.values_kw.reindex(pd.DatetimeIndex(forecasts["timestamp"]))
    return forecasts.assign(actual_kw=actual.to_numpy())


def quantile_columns(frame: pd.DataFrame) -> dict[float, str]:
    return {float(c[1:]): c for c in frame.columns if c.startswith("q") and _is_float(c[1:])}


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def score_forecasts(scored: pd.DataFrame, capacity_kw: float | None = None,
                    timezone: str = "UTC") -> dict[str, pd.DataFrame | dict]:
    """Scores of forecasts with ``actual_kw``: overall, per lead hour, per local hour of day."""
    qcols = quantile_columns(scored)
    rows = scored.dropna(subset=["actual_kw"])

    def scores(frame: pd.DataFrame) -> dict:
        return forecast_scores(frame["actual_kw"].to_numpy(),
                               {q: frame[c].to_numpy() for q, c in qcols.items()}, capacity_kw)

    lead_h = ((rows["timestamp"] - rows["issue_time"]) / pd.Timedelta(hours=1)).astype(float)
    per_lead = pd.DataFrame({h: scores(g) for h, g in rows.groupby(np.floor(lead_h))}).T
    per_lead.index.name = "lead_hour"
    hour = pd.DatetimeIndex(rows["timestamp"]).tz_convert(timezone).hour
    per_hour = pd.DataFrame({h: scores(g) for h, g in rows.groupby(hour)}).T
    per_hour.index.name = "hour_of_day"
    return {"overall": scores(rows) if len(rows) else {}, "per_lead_hour": per_lead,
            "per_hour_of_day": per_hour}
