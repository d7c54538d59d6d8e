"""The BentoML service: forecasts (and baselines) for the operator platform.

Start: ``vpp serve --data DIR`` (or ``bentoml serve serving.service:VPPService``) with
``VPP_DATA_DIR`` (the portfolio the service reads history and weather from) and
``MLFLOW_TRACKING_URI``.

Models come straight from the MLflow registry: the version under alias ``champion`` of
``<kind>-<site_id>``, looked up on each request (cached per version). Why not copy them into
the BentoML model store first: a promotion in MLflow then serves at once, without an import
step or a restart, and the registry stays the one place that says which model is live.
The price is that the registry must be reachable at request time (503 with the reason if not).

Errors: unknown site -> 404; bad request (naive time, window off the grid, bad quantiles,
wrong kind) -> 400 with what to fix; stale data, or a request beyond a bound of
``serving.limits`` (a window, a list length) -> 422; no registered model or an
unreachable registry -> 503 with the reason.

Every endpoint sits behind ``serving.auth.SecurityMiddleware`` (API key, scope, rate limit,
body size, signature, audit log); the endpoints below only see admitted requests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import bentoml
import pandas as pd
from pydantic import AwareDatetime, BaseModel, Field
from starlette.responses import JSONResponse

from forecasting.errors import DataError, ModelNotFoundError, StaleDataError, UnknownSiteError
from forecasting.portfolio import Portfolio, read_portfolio
from models.dispatch import ValleyFillingNotImplementedError
from pipelines.forecast_store import ForecastStoreError, open_store, stored_forecast
from pipelines.forecasting import forecast_core, horizon_window
from pipelines.registry import ModelRegistry
from pipelines.tracking import TrackingUnavailableError
from serving.auth import SecurityMiddleware
from serving.baseline_api import (
    BaselineRequest,
    BaselineResponse,
    MeasureRequest,
    MeasureResponse,
    handle_baseline,
    handle_measure,
)
from serving.bid_api import (
    BidRequest,
    BidResponse,
    CapacityRequest,
    CapacityResponse,
    handle_bid,
    handle_capacity,
)
from serving.dispatch_api import DispatchRequest, DispatchResponse, handle_dispatch
from serving.limits import MAX_FORECAST_WINDOW, BoundExceededError, check_window
from serving.response_api import (
    ResponseRequest,
    ResponseResponse,
    handle_response,
    registry_champion,
)

log = logging.getLogger(__name__)


class ForecastPoint(BaseModel):
    timestamp: AwareDatetime = Field(description="interval start, in the site's local offset")
    values_kw: dict[str, float] = Field(description="quantile level name (q0.1...) -> kW")


class ForecastResponse(BaseModel):
    site_id: str
    kind: str
    timezone: str
    issue_time: AwareDatetime
    resolution_minutes: int
    model_version: str = Field(description="registered model name/version that answered")
    quantiles: list[float]
    quality: str = Field(description="'ok', or input flags joined by ';' (stale_measurements, "
                                     "flatline_removed, missing_weather, stale_weather, "
                                     "calendar_unannounced, fallback_climatology)")
    source: Literal["store", "compute"] = Field(
        description="store: the nightly forecast stored for this issue time; compute: made "
                    "now from the champion")
    points: list[ForecastPoint]


class NoStoredForecastError(LookupError):
    """``source: "store"`` was asked and the store holds no full forecast of that issue."""


HTTP_STATUS = (((UnknownSiteError, NoStoredForecastError), 404), (ForecastStoreError, 503), ((StaleDataError, BoundExceededError, ValleyFillingNotImplementedError), 422),
               ((ModelNotFoundError, TrackingUnavailableError), 503), ((DataError, ValueError), 400))


def error_response(err: Exception) -> JSONResponse | None:
    """A JSON error ``{"error": message, "type": name}`` for a domain error, else None.

    The message is the fix hint. BentoML hides the text of 5xx exceptions, so the 503
    (no model, registry down) is returned as a response rather than raised.
    """
    for types, status in HTTP_STATUS:
        if isinstance(err, types):
            log.warning("%s: %s", status, err)
            return JSONResponse({"error": str(err), "type": type(err).__name__},
                                status_code=status)
    return None


def answer(call: Callable[[], object]):
    """``call()``, or the JSON error response of the domain error it raised (others raise)."""
    try:
        return call()
    except Exception as err:
        response = error_response(err)
        if response is None:
            raise
        return response


class RegistryBaselines(Mapping):
    """ML baselines from the registry: ``baseline-<customer_id>``, else ``baseline-pooled``.

    A missing model is simply absent (the handler then uses the rule baselines for ``auto``
    and answers 503 when ``ml`` was asked explicitly).
    """

    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def __getitem__(self, key: str):
        try:
            return self.registry.load(f"baseline-{key}")[1].baseline
        except ModelNotFoundError:
            raise KeyError(key) from None

    def __iter__(self):
        return iter(())

    def __len__(self) -> int:
        return 1  # never "empty": lookups go to the registry


@bentoml.service(traffic={"timeout": 60}, workers=1)
class VPPService:
    """Forecasts of load, PV and wind per site, from the registered champion models."""

    def __init__(self) -> None:
        data_dir = os.environ.get("VPP_DATA_DIR")
        if not data_dir:
            raise RuntimeError("set VPP_DATA_DIR to the portfolio directory the service reads")
        self.portfolio: Portfolio = read_portfolio(Path(data_dir))
        self.registry = ModelRegistry()
        self.baselines = RegistryBaselines(self.registry)
        self._response_data = None  # built on the first /response-likelihood request
        self.forecast_store = open_store()  # VPP_FORECAST_STORE_URL, else var/forecast_store
        log.info("serving %d sites from %s; registry %s", len(self.portfolio.sites), data_dir,
                 self.registry.uri)

    @bentoml.api(route="/forecast")
    def forecast(
        self,
        site_id: Annotated[str, Field(description="site_id from sites.csv")],
        issue_time: Annotated[AwareDatetime | Literal["now"], Field(
            description="forecast as known at this time (with UTC offset), or 'now'")] = "now",
        horizon: Annotated[Literal["intraday", "day_ahead", "d_plus_2"] | None, Field(
            description="named window: intraday = next 4 h; day_ahead = the next local day "
                        "(96 points at 15 min); d_plus_2 = the day after")] = None,
        horizon_minutes: Annotated[int | None, Field(
            ge=1, le=4320, description="window from the next interval, in minutes")] = None,
        start: Annotated[AwareDatetime | None, Field(description="window start (with end)")
                         ] = None,
        end: Annotated[AwareDatetime | None, Field(description="window end, exclusive")] = None,
        quantiles: Annotated[list[float], Field(
            min_length=1, max_length=99, description="levels in (0, 1)")] = [0.1, 0.5, 0.9],  # noqa: B006
        source: Annotated[Literal["auto", "store", "compute"], Field(
            description="auto: the nightly forecast stored for exactly this issue time and "
                        "window when the store holds it in full, else computed now; store: "
                        "only the stored one (404 if absent); compute: always computed")
                          ] = "auto",
    ) -> ForecastResponse:
        """Quantile forecast of a site's power (kW) at its resolution."""
        try:
            site = self.portfolio.site(site_id)
            issue = (pd.Timestamp(datetime.now(UTC)) if issue_time == "now"
                     else pd.Timestamp(issue_time).tz_convert("UTC"))
            if issue_time == "now":
                issue = issue.floor(f"{site.resolution_minutes}min")
            t0, t1 = horizon_window(site, issue, horizon, horizon_minutes, start, end)
            check_window(t0, t1, MAX_FORECAST_WINDOW, "forecast window")
            frame = self._stored(site_id, issue, t0, t1, quantiles, source)
            answered_by = "store" if frame is not None else "compute"
            if frame is None:
                model = self.registry.champion(site.kind, site_id)
                frame = forecast_core(model, self.portfolio.site_data(site_id), issue, t0, t1,
                                      quantiles)
        except Exception as err:
            response = error_response(err)
            if response is None:
                raise
            return response
        qcols = [c for c in frame.columns if c.startswith("q") and c != "quality"]
        local = pd.DatetimeIndex(frame["timestamp"]).tz_convert(site.timezone)
        values = frame[qcols].to_numpy()
        points = [ForecastPoint(timestamp=ts.to_pydatetime(),
                                values_kw={c: round(float(v), 4) for c, v in zip(qcols, row,
                                                                               strict=True)})
                  for ts, row in zip(local, values, strict=True)]
        return ForecastResponse(
            site_id=site_id, kind=site.kind, timezone=site.timezone,
            issue_time=issue.tz_convert(site.timezone).to_pydatetime(),
            resolution_minutes=site.resolution_minutes,
            model_version=str(frame["model_version"].iloc[0]), quantiles=sorted(quantiles),
            quality=str(frame["quality"].iloc[0]), source=answered_by, points=points)

    def _stored(self, site_id, issue, start, end, quantiles, source: str):
        """The stored nightly forecast for exactly this issue and window, or None."""
        if source == "compute":
            return None
        try:
            frame = stored_forecast(self.forecast_store, site_id, issue, start, end, quantiles)
        except ForecastStoreError:
            if source == "store":
                raise
            log.exception("forecast store unreadable; computing %s issued %s", site_id, issue)
            return None
        if frame is None and source == "store":
            raise NoStoredForecastError(
                f"no stored forecast of {site_id} issued {issue.isoformat()} covers "
                f"{start.isoformat()}..{end.isoformat()} at the levels {quantiles}; the "
                "nightly job (vpp nightly) stores its issues, or ask source 'auto'/'compute'")
        return frame

    @bentoml.api(route="/baseline", input_spec=BaselineRequest)
    def baseline(self, **fields) -> BaselineResponse:
        """Baseline of a customer or site over an event window, with its band and method."""
        return answer(lambda: handle_baseline(self.portfolio, BaselineRequest(**fields),
                                              self.baselines))

    @bentoml.api(route="/baseline/measure", input_spec=MeasureRequest)
    def measure(self, **fields) -> MeasureResponse:
        """Reduction and achievement so far during an event, from the readings sent."""
        return answer(lambda: handle_measure(self.portfolio, MeasureRequest(**fields),
                                             self.baselines))

    @bentoml.api(route="/dispatch", input_spec=DispatchRequest)
    def dispatch(self, **fields) -> DispatchResponse:
        """Split a load-reduction instruction into allocations per customer and resource."""
        return answer(lambda: handle_dispatch(self.portfolio, DispatchRequest(**fields),
                                              likelihood=self._planned_reliability))

    @bentoml.api(route="/response-likelihood", input_spec=ResponseRequest)
    def response_likelihood(self, **fields) -> ResponseResponse:
        """Probability that each customer delivers a planned event, and its expected
        achievement (champion of response-likelihood, else the historical rate)."""
        return answer(lambda: handle_response(self._response_inputs(),
                                              ResponseRequest(**fields), self.registry))

    @bentoml.api(route="/capacity", input_spec=CapacityRequest)
    def capacity(self, **fields) -> CapacityResponse:
        """Available flexible capacity per customer and response level I/II/III for a
        window, P10/P50/P90 kW, each customer capped by its load forecast."""
        return answer(lambda: handle_capacity(self.portfolio, CapacityRequest(**fields),
                                              self._load_forecast))

    @bentoml.api(route="/bid/capacity", input_spec=BidRequest)
    def bid_capacity(self, **fields) -> BidResponse:
        """The largest offer whose P(portfolio achievement >= the threshold) reaches a
        confidence, its expected compensation and penalty, and the offer curve."""
        return answer(lambda: handle_bid(self.portfolio, BidRequest(**fields),
                                         self._load_forecast))

    def _load_forecast(self, portfolio, start, end, notice_time, customers):
        """Customers' load quantiles from this service's registry (pipelines.bidding)."""
        from pipelines.bidding import load_quantiles

        return load_quantiles(portfolio, start, end, notice_time, customers,
                              registry=self.registry)

    def _response_inputs(self):
        """The portfolio's events, resources and loads for the response likelihood (built
        once; DataError when the portfolio has no events.csv)."""
        if self._response_data is None:
            from pipelines.response import response_data

            self._response_data = response_data(self.portfolio)
        return self._response_data

    def _planned_reliability(self, instruction, resources):
        """Reliability per customer from the response-likelihood champion, None without one
        (or without settled events to build its features from)."""
        from forecasting.settlement import SettlementRule
        from pipelines.response import planned_reliability

        champion = registry_champion(self.registry)
        if champion is None:
            return None
        try:
            data = self._response_inputs()
        except DataError:
            return None
        return planned_reliability(data, instruction, resources, SettlementRule(), champion)


VPPService.add_asgi_middleware(SecurityMiddleware)
