"""The one forecast facade: site -> window -> champion -> known-at -> predict -> output frame
(DATA_FORMAT.md), for ``POST /forecast``, the nightly batch, ``vpp forecast`` and the
benchmarks alike.

``ask`` checks a request before any model is asked (site and kind, issue time or
``"now"`` floored to the site's resolution, one window on the site's grid);
``forecast_site`` adds the champion from the registry and ``answer``s; ``forecast_core``
is pure (a fitted forecaster and data in, a frame out). The service splits the steps only
to look its answer cache up between them. Checks before forecasting, each a clear error:
naive times, an empty or reversed window, a window that starts before the issue time by
more than a day, no measurement known in the week before the issue time (stale data; not
asked of a ``weather_only`` model, which reads no history).
Poor but usable inputs (flatlined or day-old readings, missing weather for PV/wind) do not
fail: the flagged climatology fallback answers and the ``quality`` column (an extension of
the output format) says why.

Windows: load up to 45 days, PV and wind up to 7 (``MAX_WINDOW_DAYS``). Every row says
which method answered it in the ``method`` column (an extension of the output format):

- ``nwp``: the champion with the latest weather forecast known at the issue time;
- ``weather_scenarios`` (load): the part of the window beyond that forecast's horizon, from
  the champion run on shifted-date scenarios of the site's own weather history and the
  scenario distributions pooled (``models.weather_scenarios``);
- ``climatology``: the flagged fallback (``models.fallback``), for poor inputs, or for load
  beyond the weather forecast when the history holds no past-year window for scenarios
  (quality ``fallback_climatology`` too);
- ``no_weather``: a champion that reads no weather at all answered.

The normal short window (within the model's longest lead and the weather forecast) takes
the path it always took: one call of the forecaster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from forecasting.contract import WEATHER_COLUMNS
from forecasting.errors import DataError, StaleDataError
from forecasting.portfolio import Portfolio, Site, SiteData, as_utc
from forecasting.quality import assess
from inference.registry import LoadedModel, ModelRegistry
from models.fallback import ClimatologyFallback
from models.weather_scenarios import far_features, forecast_scenarios, nwp_end

log = logging.getLogger(__name__)
MAX_HISTORY_AGE = pd.Timedelta(days=7)
OUTPUT_COLUMNS = ("site_id", "issue_time", "timestamp")
MAX_WINDOW_DAYS = {"load": 45, "pv": 7, "wind": 7}
METHODS = ("nwp", "weather_scenarios", "climatology", "no_weather")


def target_index(site, start, end) -> pd.DatetimeIndex:
    """Interval starts from ``start`` (inclusive) to ``end`` (exclusive) at the site resolution."""
    s, e = as_utc(start, "start"), as_utc(end, "end")
    res = pd.Timedelta(minutes=site.resolution_minutes)
    if e <= s:
        raise DataError(f"end {e} must be after start {s}")
    if s.floor(res) != s or e.floor(res) != e:
        raise DataError(f"start and end must lie on the site's {site.resolution_minutes}-minute "
                        f"grid (got {s}, {e})")
    days = MAX_WINDOW_DAYS.get(site.kind, 7)
    if (e - s) > pd.Timedelta(days=days):
        more = (" (month-ahead from weather scenarios)" if site.kind == "load" else
                "; PV and wind forecasts need a weather forecast, which reaches days, not "
                "weeks")
        raise DataError(f"window {s}..{e} is longer than {days} days, the limit for "
                        f"{site.kind}{more}: split it or shorten it")
    return pd.date_range(s, e, freq=res, inclusive="left")


def check_fresh(data: SiteData, issue: pd.Timestamp) -> None:
    """Refuse when nothing at all was measured in the last ``MAX_HISTORY_AGE``."""
    known = data.known_at(issue).values_kw
    if known.empty or issue - known.index.max() > MAX_HISTORY_AGE:
        last = "none" if known.empty else known.index.max().isoformat()
        raise StaleDataError(
            f"site {data.site.site_id}: latest measurement known at {issue.isoformat()} is "
            f"{last}; forecasts need measurements from the last {MAX_HISTORY_AGE.days} days — "
            "load recent readings into the portfolio or choose an earlier issue time")


def weather_columns_of(data: SiteData) -> list[str]:
    """The weather columns this site's forecasts normally carry."""
    return [c for c in WEATHER_COLUMNS if c in data.weather.columns
            and data.weather[c].notna().any()]


def needs_fallback(kind: str, flags: list[str], uses_history: bool = True) -> bool:
    """Stale readings for a model that reads them; missing or stale weather for PV and wind
    (weather-driven)."""
    if uses_history and "stale_measurements" in flags:
        return True
    return kind in ("pv", "wind") and bool({"missing_weather", "stale_weather"} & set(flags))


def forecast_core(model: LoadedModel, data: SiteData, issue_time, start, end,
                  quantiles=None) -> pd.DataFrame:
    """Forecast with the model, or with the flagged climatology fallback when inputs are poor.

    The ``quality`` column is ``ok`` or the input flags (``forecasting.quality``) joined by
    ``;``, plus ``fallback_climatology`` where the fallback answered.
    """
    issue = as_utc(issue_time, "issue_time")
    targets = target_index(data.site, start, end)
    if targets[0] < issue - pd.Timedelta(days=1):
        raise DataError(f"window starts {targets[0]}, more than a day before issue time {issue}")
    uses_history = model.forecaster.spec_.uses_history
    if uses_history:  # a weather-only model needs no recent readings
        check_fresh(data, issue)
    report = assess(data, issue, targets, weather_columns_of(data))
    flags = list(dict.fromkeys(report.flags))
    for message in report.messages:
        log.warning(message)
    levels = quantiles if quantiles is not None else model.forecaster.quantiles_
    method = None
    if needs_fallback(data.site.kind, flags, uses_history):
        out = ClimatologyFallback().forecast(report.data, issue, targets, levels)
        flags.append("fallback_climatology")
        version = f"fallback-climatology (champion {model.label} not used)"
        method = "climatology"
        log.warning("site %s: forecast issued %s from the climatology fallback (%s)",
                    data.site.site_id, issue, ", ".join(flags))
    elif not _long_window(model.forecaster, data.site.kind, flags, issue, targets):
        out = model.forecaster.forecast(report.data, issue, targets, levels)
        version = model.label
        method = "nwp" if getattr(model.forecaster.spec_, "weather_columns", ()) else \
            "no_weather"
    else:
        out, method = _forecast_long(model.forecaster, report.data, issue, targets, levels,
                                     flags)
        version = model.label
    out.index.name = "timestamp"
    out = out.reset_index()
    out.insert(0, "issue_time", issue)
    out.insert(0, "site_id", data.site.site_id)
    out["model_version"] = version
    out["quality"] = ";".join(flags) if flags else "ok"
    out["method"] = method
    return out


def _long_window(forecaster, kind: str, flags: list[str], issue: pd.Timestamp,
                 targets: pd.DatetimeIndex) -> bool:
    """A load window beyond the model's longest lead or the weather forecast (flagged
    ``missing_weather`` by ``assess``): the path of ``_forecast_long``. Two comparisons,
    so the normal day-ahead request does no new work."""
    buckets = getattr(forecaster, "buckets_", None)
    if kind != "load" or not buckets:  # a forecaster without lead buckets answers as it is
        return False
    reach = pd.Timedelta(minutes=max(b[2] for b in buckets))
    return "missing_weather" in flags or targets[-1] - issue > reach


def _forecast_long(forecaster, data: SiteData, issue: pd.Timestamp,
                   targets: pd.DatetimeIndex, levels, flags: list[str]
                   ) -> tuple[pd.DataFrame, np.ndarray | str]:
    """Load beyond the weather forecast or the trained lead: ``nwp`` where the latest
    weather forecast known at the issue covers the target, ``weather_scenarios`` beyond it,
    ``climatology`` (flagged) beyond it when the history holds no scenario."""
    columns = forecaster.spec_.weather_columns
    if not columns:  # the champion reads no weather: it answers every row as it is
        X = far_features(forecaster, data, issue, targets)
        return forecaster.predict_features(X, levels), "no_weather"
    end = nwp_end(data.weather, columns)
    covered = (np.zeros(len(targets), dtype=bool) if end is None
               else np.asarray(targets <= end))
    parts, methods = [], []
    if covered.any():
        X = far_features(forecaster, data, issue, targets[covered])
        parts.append(forecaster.predict_features(X, levels))
        methods.append(pd.Series("nwp", index=targets[covered]))
    beyond = targets[~covered]
    if len(beyond):
        scen = forecast_scenarios(forecaster, data, issue, beyond, levels)
        if scen is not None:
            parts.append(scen.quantiles)
            methods.append(pd.Series("weather_scenarios", index=beyond))
            log.info("site %s: %d intervals beyond the weather forecast (ends %s) from %d "
                     "weather scenarios", data.site.site_id, len(beyond), end,
                     len(scen.scenarios))
        else:
            parts.append(ClimatologyFallback().forecast(data, issue, beyond, levels))
            methods.append(pd.Series("climatology", index=beyond))
            flags.append("fallback_climatology")
            log.warning("site %s: %d intervals beyond the weather forecast (ends %s) from the "
                        "climatology fallback: no past-year window of weather history known "
                        "at %s for scenarios", data.site.site_id, len(beyond), end, issue)
    out = pd.concat(parts).sort_index()
    method = pd.concat(methods).sort_index()
    return out, method.to_numpy()


@dataclass(frozen=True)
class ForecastQuestion:
    """A checked forecast request: the site, the issue time (UTC) and the target window."""

    site: Site
    issue: pd.Timestamp  # UTC
    start: pd.Timestamp  # UTC, on the site's grid
    end: pd.Timestamp  # exclusive
    quantiles: tuple[float, ...] | None  # None: the champion's own levels
    now: bool = False  # the caller asked for "now"


def issue_time_of(value, site: Site) -> pd.Timestamp:
    """The issue time in UTC: ``"now"`` is the current time floored to the site's
    resolution (the one definition, for the API, the batch and the command line); any other
    value must be tz-aware."""
    if isinstance(value, str) and value.strip().lower() == "now":
        return pd.Timestamp.now(tz="UTC").floor(f"{site.resolution_minutes}min")
    return as_utc(value, "issue_time")


def ask(portfolio: Portfolio, site_id: str, issue_time="now", *, kind: str | None = None,
        horizon: str | None = None, horizon_minutes: int | None = None, start=None, end=None,
        quantiles=None, bound: Callable[[pd.Timestamp, pd.Timestamp], None] | None = None
        ) -> ForecastQuestion:
    """Check a request before any model is asked: a known site of ``kind``, a tz-aware issue
    time (or ``"now"``), one window (start and end, ``horizon_minutes`` or a named
    ``horizon``; default ``day_ahead``) on the site's grid within its length limit.
    ``bound(start, end)``: the caller's own limit, checked before the site's."""
    site = portfolio.site(site_id)
    if kind is not None and site.kind != kind:
        raise DataError(f"site {site_id} is of kind {site.kind!r}, not {kind!r}")
    issue = issue_time_of(issue_time, site)
    t0, t1 = horizon_window(site, issue, horizon, horizon_minutes, start, end)
    if bound is not None:
        bound(as_utc(t0, "start"), as_utc(t1, "end"))
    target_index(site, t0, t1)  # on the grid, within the limit
    now = isinstance(issue_time, str) and issue_time.strip().lower() == "now"
    return ForecastQuestion(site, issue, as_utc(t0, "start"), as_utc(t1, "end"),
                            None if quantiles is None else tuple(quantiles), now)


def answer(portfolio: Portfolio, question: ForecastQuestion, model: LoadedModel
           ) -> pd.DataFrame:
    """The forecast of ``question`` by ``model`` (``forecast_core``); for ``"now"`` on data
    whose readings ended long ago, the stale-data error says which issue time to give."""
    q = question
    data = portfolio.site_data(q.site.site_id)
    try:
        return forecast_core(model, data, q.issue, q.start, q.end,
                             None if q.quantiles is None else list(q.quantiles))
    except StaleDataError as err:
        if not q.now or data.values_kw.empty:
            raise
        last = data.values_kw.index.max().tz_convert(q.site.timezone)
        example = (last.normalize() - pd.Timedelta(hours=12)).isoformat()
        raise StaleDataError(
            f"{err}. issue_time 'now' is {q.issue.tz_convert(q.site.timezone).isoformat()}, "
            f"but the readings of {q.site.site_id} end {last.isoformat()}: for a historical "
            f"portfolio (the synthetic sample ends 2025-06-30) give an issue_time, e.g. "
            f"\"{example}\"") from err


def forecast_site(portfolio: Portfolio, kind: str | None, site_id: str, issue_time="now",
                  start=None, end=None, quantiles=None, registry: ModelRegistry | None = None,
                  *, horizon: str | None = None, horizon_minutes: int | None = None
                  ) -> pd.DataFrame:
    """The one forecast path of ``vpp forecast``, the batch, ``POST /forecast`` and the
    benchmarks: request checked (``ask``), the site's champion from the registry,
    ``forecast_core`` on what was known at the issue time, the output frame (UTC)."""
    question = ask(portfolio, site_id, issue_time, kind=kind, horizon=horizon,
                   horizon_minutes=horizon_minutes, start=start, end=end, quantiles=quantiles)
    model = (registry or ModelRegistry()).champion(question.site.kind, site_id)
    return answer(portfolio, question, model)


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


def write_forecast_csv(frame: pd.DataFrame, path, timezone: str | None = None) -> None:
    """The forecast output format as CSV (the one writer): ISO timestamps in the site's zone
    (``timezone``), or in UTC (``+00:00``) for a frame of several sites."""
    local = to_local(frame, timezone) if timezone else frame.copy()
    for col in ("issue_time", "timestamp"):
        local[col] = local[col].map(lambda t: pd.Timestamp(t).isoformat())
    local.to_csv(path, index=False, float_format="%.4f")
