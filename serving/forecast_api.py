"""Request/response models and the handler of ``POST /forecast``.

The handler takes what the service holds (portfolio, registry, forecast store, answer
cache) and a request, and answers the stored nightly forecast for exactly that issue and
window when asked and available, else one computed now from the champion through
``inference.forecast`` (what ``vpp forecast`` and the batch run).

Computed answers are kept in a bounded cache keyed by site, issue time, window, levels and
the model version: the portfolio is read once at start-up, so the same question to the same
model has the same answer, and a platform asking it from several places gets it without a
second computation. A promoted champion has a new version, hence new keys. Answers given
by an earlier loaded version during a registry fault are not cached. A cached answer is
given straight from the service's event loop (``cached_forecast``: no thread hop, no I/O)
while the champion's version is known within the registry's TTL and, for source ``auto``,
the store was found without that forecast within ``VPP_STORE_RECHECK_SECONDS`` (10); the
rest runs on the service's threads (``handle_forecast``).

Windows: load up to 45 days ahead (``MAX_FORECAST_WINDOW``; beyond the weather forecast
from weather scenarios), PV and wind up to 7 days (``inference.forecast.
MAX_WINDOW_DAYS``; beyond: 400 with the limit in the message). Each point says which
method answered it (``nwp``, ``weather_scenarios``, ``climatology``, ``no_weather``) and
``methods`` lists those of the answer.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from datetime import datetime
from typing import Annotated, Literal

import pandas as pd
from pydantic import AfterValidator, BaseModel, Field

from forecasting.portfolio import Portfolio
from inference.forecast import answer, ask
from inference.forecast_store import ForecastStoreError, stored_forecast
from serving.limits import MAX_FORECAST_WINDOW, check_window
from serving.request_types import Id, Instant, StrictRequest


def _level(value: float) -> float:
    if not 0 < value < 1:
        raise ValueError(f"quantile level {value} must lie strictly between 0 and 1")
    return value


Level = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_level)]
MAX_FORECAST_MINUTES = int(MAX_FORECAST_WINDOW.total_seconds() // 60)
Method = Literal["nwp", "weather_scenarios", "climatology", "no_weather"]
METHOD_HELP = ("nwp: the champion with the latest weather forecast known at the issue time; "
               "weather_scenarios: load beyond that forecast, the champion on shifted-date "
               "scenarios of the site's own weather history, pooled; climatology: the flagged "
               "fallback (poor inputs, or no past-year weather history for scenarios); "
               "no_weather: a champion that reads no weather")


class ForecastRequest(StrictRequest):
    site_id: Id = Field(description="site_id from sites.csv")
    issue_time: Instant | Literal["now"] = Field(
        "now", description="forecast as known at this time (with UTC offset), or 'now' (the "
        "current time floored to the site's resolution)")
    horizon: Literal["intraday", "day_ahead", "d_plus_2"] | None = Field(
        None, description="named window: intraday = next 4 h; day_ahead = the next local day "
        "(96 points at 15 min); d_plus_2 = the day after. Give one of horizon, "
        "horizon_minutes, or start and end (default day_ahead)")
    horizon_minutes: int | None = Field(
        None, ge=1, le=MAX_FORECAST_MINUTES,
        description="window from the next interval, minutes (load up to 45 days; PV and wind "
                    "up to 7 days)")
    start: Instant | None = Field(None, description="window start (with end)")
    end: Instant | None = Field(None, description="window end, exclusive")
    quantiles: list[Level] = Field([0.1, 0.5, 0.9], min_length=1, max_length=99,
                                   description="levels, each strictly between 0 and 1")
    source: Literal["auto", "store", "compute"] = Field(
        "auto", description="auto: the nightly forecast stored for exactly this issue time "
        "and window when the store holds it in full, else computed now; store: only the "
        "stored one (404 if absent); compute: always computed")


class ForecastPoint(BaseModel):
    timestamp: datetime = Field(description="interval start, in the site's local offset")
    values_kw: dict[str, float] = Field(description="quantile level name (q0.1...) -> kW")
    method: Method = Field(description=METHOD_HELP)


class ForecastResponse(BaseModel):
    site_id: str
    kind: str
    timezone: str
    issue_time: datetime
    resolution_minutes: int
    model_version: str = Field(description="registered model name/version that answered")
    quantiles: list[float]
    quality: str = Field(description="'ok', or input flags joined by ';' (stale_measurements, "
                                     "flatline_removed, missing_weather, stale_weather, "
                                     "calendar_unannounced, fallback_climatology)")
    source: Literal["store", "compute"] = Field(
        description="store: the nightly forecast stored for this issue time; compute: made "
                    "now from the champion")
    methods: list[Method] = Field(description="the methods that answered the points, in "
                                  "the order of the window")
    notes: list[str] = Field(default_factory=list, description="what the caller should know: "
                             "e.g. the registry was unavailable and an earlier loaded "
                             "version answered")
    points: list[ForecastPoint]


class NoStoredForecastError(LookupError):
    """``source: "store"`` was asked and the store holds no full forecast of that issue."""


class AnswerCache:
    """A bounded, thread-safe LRU of finished answers (immutable response objects), each with
    the time it was last confirmed (``put`` or ``touch``)."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._items: OrderedDict[tuple, tuple[ForecastResponse, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple, max_age_s: float | None = None, count_miss: bool = True
            ) -> ForecastResponse | None:
        """The answer under ``key`` (confirmed at most ``max_age_s`` ago), or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None or (max_age_s is not None
                                and time.monotonic() - item[1] > max_age_s):
                self.misses += count_miss
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: tuple, value: ForecastResponse) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = (value, time.monotonic())
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def touch(self, key: tuple) -> None:
        """Confirm the answer under ``key`` again (the store still has none for it)."""
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items[key] = (item[0], time.monotonic())


# how long a cached answer to source "auto" is served without asking the forecast store
# again (the store may have received the nightly forecast of that issue since; then the
# stored one answers from the next check on)
STORE_RECHECK_S = float(os.environ.get("VPP_STORE_RECHECK_SECONDS", "10"))


def _question(portfolio: Portfolio, request: ForecastRequest):
    return ask(portfolio, request.site_id,
               "now" if request.issue_time == "now" else pd.Timestamp(request.issue_time),
               horizon=request.horizon, horizon_minutes=request.horizon_minutes,
               start=request.start, end=request.end, quantiles=list(request.quantiles),
               bound=lambda s, e: check_window(s, e, MAX_FORECAST_WINDOW, "forecast window"))


def _key(q, model) -> tuple:
    return (q.site.site_id, q.issue.value, q.start.value, q.end.value, q.quantiles,
            model.label)


def cached_forecast(portfolio: Portfolio, request: ForecastRequest, registry,
                    cache: AnswerCache | None) -> ForecastResponse | None:
    """The answer ``handle_forecast`` would give, when it is in the cache and no I/O is
    needed to know it (the champion's version known within the registry's TTL; for source
    ``auto`` confirmed against the store within ``STORE_RECHECK_S``), else None. CPU only, so
    the service answers it on its event loop; any doubt (an invalid request included) is
    None, and ``handle_forecast`` answers."""
    if cache is None or request.source == "store":
        return None
    try:
        q = _question(portfolio, request)
    except Exception:  # noqa: BLE001 - handle_forecast raises it with its status
        return None
    model = registry.peek_champion(q.site.kind, q.site.site_id)
    if model is None:
        return None
    return cache.get(_key(q, model), None if request.source == "compute" else STORE_RECHECK_S,
                     count_miss=False)


def handle_forecast(portfolio: Portfolio, request: ForecastRequest, registry, store,
                    cache: AnswerCache | None = None, log=None) -> ForecastResponse:
    """``inference.forecast``'s steps (``ask``, champion, ``answer``), with the stored
    nightly forecast and the answer cache looked up between them."""
    q = _question(portfolio, request)
    site, issue, levels = q.site, q.issue, list(request.quantiles)
    frame = None if request.source == "compute" else _stored(store, site.site_id, issue,
                                                             q.start, q.end, levels,
                                                             request.source, log)
    if frame is not None:
        return _response(site, issue, levels, frame, "store", [])
    model = registry.champion(site.kind, site.site_id)
    key = _key(q, model)
    if not model.note and cache is not None:
        cached = cache.get(key)
        if cached is not None:
            if request.source == "auto":
                cache.touch(key)  # the store was asked above and has none: confirmed
            return cached
    frame = answer(portfolio, q, model)
    result = _response(site, issue, levels, frame, "compute", [model.note] if model.note
                       else [])
    if not model.note and cache is not None:
        cache.put(key, result)
    return result


def _stored(store, site_id, issue, start, end, quantiles, source: str, log):
    """The stored nightly forecast for exactly this issue and window, or None."""
    try:
        frame = stored_forecast(store, site_id, issue, start, end, quantiles)
    except ForecastStoreError:
        if source == "store":
            raise
        if log is not None:
            log.warning("forecast store unreadable; computing %s issued %s", site_id, issue)
        return None
    if frame is None and source == "store":
        raise NoStoredForecastError(
            f"no stored forecast of {site_id} issued {issue.isoformat()} covers "
            f"{start.isoformat()}..{end.isoformat()} at the levels {quantiles}; the "
            "nightly job (vpp nightly) stores its issues, or ask source 'auto'/'compute'")
    return frame


def _response(site, issue, levels, frame: pd.DataFrame, source: str,
              notes: list[str]) -> ForecastResponse:
    qcols = [c for c in frame.columns if c.startswith("q") and c != "quality"]
    local = pd.DatetimeIndex(frame["timestamp"]).tz_convert(site.timezone)
    values = frame[qcols].to_numpy().round(4).tolist()
    methods = _methods(frame)
    points = [ForecastPoint(timestamp=ts, values_kw=dict(zip(qcols, row, strict=True)),
                            method=m)
              for ts, row, m in zip(local.to_pydatetime(), values, methods, strict=True)]
    return ForecastResponse(
        site_id=site.site_id, kind=site.kind, timezone=site.timezone,
        issue_time=issue.tz_convert(site.timezone).to_pydatetime(),
        resolution_minutes=site.resolution_minutes,
        model_version=str(frame["model_version"].iloc[0]), quantiles=sorted(levels),
        quality=str(frame["quality"].iloc[0]), source=source,
        methods=list(dict.fromkeys(methods)), notes=notes, points=points)


def _methods(frame: pd.DataFrame) -> list[str]:
    """The ``method`` column; for a stored forecast written before it existed, from the
    quality flags (the fallback is flagged there; the rest was the champion with NWP)."""
    if "method" in frame.columns and frame["method"].notna().all():
        return [str(m) for m in frame["method"]]
    fallback = frame["quality"].astype(str).str.contains("fallback_climatology")
    return ["climatology" if f else "nwp" for f in fallback]
