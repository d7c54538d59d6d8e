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
import re
from collections.abc import Callable
from pathlib import Path

import anyio
import bentoml
from starlette.responses import JSONResponse

from forecasting.errors import DataError, ModelNotFoundError, StaleDataError, UnknownSiteError
from forecasting.portfolio import Portfolio, read_portfolio
from inference.forecast_store import ForecastStoreError, open_store
from inference.registry import ModelRegistry
from inference.tracking import TrackingUnavailableError
from models.dispatch import ValleyFillingNotImplementedError
from serving import health, quiet_logs
from serving.auth import SecurityMiddleware
from serving.baseline_api import (
    BaselineRequest,
    BaselineResponse,
    MeasureRequest,
    MeasureResponse,
    MLBaselineUnavailable,
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
from serving.capability_api import CapabilityRequest, CapabilityResponse, handle_capability
from serving.dispatch_api import (
    DispatchRequest,
    DispatchResponse,
    ReliabilityUnavailable,
    handle_dispatch,
)
from serving.forecast_api import (
    AnswerCache,
    ForecastRequest,
    ForecastResponse,
    NoStoredForecastError,
    cached_forecast,
    handle_forecast,
)
from serving.health import HealthMiddleware
from serving.limits import BoundExceededError
from serving.openapi import DocumentMiddleware
from serving.response_api import (
    ResponseRequest,
    ResponseResponse,
    handle_response,
    registry_champion,
)

log = logging.getLogger(__name__)


HTTP_STATUS = (((UnknownSiteError, NoStoredForecastError), 404), (ForecastStoreError, 503),
               ((StaleDataError, BoundExceededError, ValleyFillingNotImplementedError), 422),
               ((ModelNotFoundError, TrackingUnavailableError), 503),
               ((DataError, ValueError), 400))
MAX_MESSAGE_CHARS = 1000
# a server-side location in a message: a file/sqlite URI or an absolute path of 3+ parts
SERVER_PATH = re.compile(r"\b(?:file|sqlite|postgresql|mysql)[\w+]*:/{2,3}[^\s'\";,)]*"
                         r"|(?<![\w.:/])/(?:[\w.~-]+/){2,}[\w.~-]*")
PYDANTIC_HINT = re.compile(r"\n\s*For further information visit \S+")


def error_response(err: Exception) -> JSONResponse | None:
    """A JSON error ``{"error": message, "type": name}`` for a domain error, else None.

    The message is the fix hint. BentoML hides the text of 5xx exceptions, so the 503
    (no model, registry down) is returned as a response rather than raised.
    """
    for types, status in HTTP_STATUS:
        if isinstance(err, types):
            message = public_message(err)
            log.warning("%s %s: %s", status, type(err).__name__, message)
            return JSONResponse({"error": message, "type": type(err).__name__},
                                status_code=status)
    return None


def public_message(err: Exception) -> str:
    """The error's message as a caller may see it: server paths replaced by ``<server
    path>``, cut to ``MAX_MESSAGE_CHARS`` (a request may send megabytes in a field)."""
    text = SERVER_PATH.sub("<server path>", PYDANTIC_HINT.sub("", str(err)))
    if len(text) > MAX_MESSAGE_CHARS:
        text = f"{text[:MAX_MESSAGE_CHARS]}... (message cut at {MAX_MESSAGE_CHARS} characters)"
    return text


def built(model: type, fields: dict):
    """The request model of fields BentoML has already validated against that same model
    (its input_spec): constructed, not validated twice (an absent optional field arrives
    as None, which the strict model would refuse)."""
    return model.model_construct(**fields)


def answer(call: Callable[[], object]):
    """``call()``, or the JSON error response of the domain error it raised (others raise)."""
    try:
        return call()
    except Exception as err:
        response = error_response(err)
        if response is None:
            raise
        return response


class RegistryBaselines:
    """ML baselines from the registry: ``get("<customer_id>")`` is ``baseline-<customer>``,
    ``get("pooled")`` ``baseline-pooled``, None when not registered.

    A missing model is simply absent (the handler then uses the rule baselines for ``auto``
    and answers 503 when ``ml`` was asked explicitly); a registry fault is
    ``MLBaselineUnavailable`` (``auto`` answers from the rules with a note, ``ml`` 503).
    """

    def __init__(self, registry: ModelRegistry):
        self.registry = registry

    def get(self, key: str):
        try:
            return self.registry.baseline(f"baseline-{key}")
        except ModelNotFoundError:
            return None
        except TrackingUnavailableError as err:  # registry down or artifacts missing
            raise MLBaselineUnavailable(key, err) from err


THREADS = int(os.environ.get("VPP_SERVICE_THREADS", "4"))


@bentoml.service(traffic={"timeout": 60}, workers=1, threads=THREADS)
class VPPService:
    """Forecasts of load, PV and wind per site, from the registered champion models.

    One worker process (rate limits and signature nonces are per process) running the
    endpoints on ``VPP_SERVICE_THREADS`` threads (default 4), so that a long request does
    not hold the others in a queue behind it; every request is bounded before any work
    (``serving.limits``). Champion aliases are looked up again every
    ``VPP_REGISTRY_TTL_SECONDS`` (default 10) by a background thread.
    """

    def __init__(self) -> None:
        data_dir = os.environ.get("VPP_DATA_DIR")
        if not data_dir:
            raise RuntimeError("set VPP_DATA_DIR to the portfolio directory the service reads")
        self.portfolio: Portfolio = read_portfolio(Path(data_dir))
        self.registry = ModelRegistry(
            ttl_s=float(os.environ.get("VPP_REGISTRY_TTL_SECONDS", "10")))
        self.registry.probe()
        self.registry.start_refresh()
        self.baselines = RegistryBaselines(self.registry)
        self.answers = AnswerCache(int(os.environ.get("VPP_ANSWER_CACHE_SIZE", "4096")))
        self._threads = anyio.CapacityLimiter(THREADS)  # computed /forecast answers
        self._response_data = None  # built on the first /response-likelihood request
        self.forecast_store = open_store()  # VPP_FORECAST_STORE_URL, else var/forecast_store
        health.register(self.readiness)
        log.info("serving %d sites from %s; registry %s (%s)", len(self.portfolio.sites),
                 data_dir, self.registry.uri, self.registry.state().status)

    @bentoml.on_shutdown
    def stop_background(self) -> None:
        self.registry.stop_refresh()

    def readiness(self) -> dict:
        """What ``GET /readyz`` answers (see ``serving.health``)."""
        state = self.registry.state()
        return {"portfolio_sites": len(self.portfolio.sites),
                "registry": {"status": state.status, "checked_at": state.checked_at,
                             "last_ok_at": state.last_ok_at, "error": public_message(
                                 Exception(state.error)) if state.error else ""},
                "models_loaded": state.models_loaded,
                "answer_cache": {"hits": self.answers.hits, "misses": self.answers.misses}}

    @bentoml.api(route="/forecast", input_spec=ForecastRequest)
    async def forecast(self, **fields) -> ForecastResponse:
        """Quantile forecast of a site's power (kW) at its resolution."""
        request = built(ForecastRequest, fields)
        # an answer already given is answered on the event loop (CPU only, no I/O); the rest
        # runs on one of the service's threads, like the other endpoints
        hit = cached_forecast(self.portfolio, request, self.registry, self.answers)
        if hit is not None:
            return hit
        return await anyio.to_thread.run_sync(
            lambda: answer(lambda: handle_forecast(self.portfolio, request, self.registry,
                                                   self.forecast_store, self.answers, log)),
            limiter=self._threads)

    @bentoml.api(route="/baseline", input_spec=BaselineRequest)
    def baseline(self, **fields) -> BaselineResponse:
        """Baseline of a customer or site over an event window, with its band and method."""
        return answer(lambda: handle_baseline(self.portfolio, built(BaselineRequest, fields),
                                              self.baselines))

    @bentoml.api(route="/baseline/measure", input_spec=MeasureRequest)
    def measure(self, **fields) -> MeasureResponse:
        """Reduction and achievement so far during an event, from the readings sent."""
        return answer(lambda: handle_measure(self.portfolio, built(MeasureRequest, fields),
                                             self.baselines))

    @bentoml.api(route="/dispatch", input_spec=DispatchRequest)
    def dispatch(self, **fields) -> DispatchResponse:
        """Split a load-reduction instruction into allocations per customer and resource."""
        return answer(lambda: handle_dispatch(self.portfolio, built(DispatchRequest, fields),
                                              likelihood=self._planned_reliability))

    @bentoml.api(route="/response-likelihood", input_spec=ResponseRequest)
    def response_likelihood(self, **fields) -> ResponseResponse:
        """Probability that each customer delivers a planned event, and its expected
        achievement (champion of response-likelihood, else the historical rate)."""
        return answer(lambda: handle_response(self._response_inputs(),
                                              built(ResponseRequest, fields), self.registry))

    @bentoml.api(route="/capacity", input_spec=CapacityRequest)
    def capacity(self, **fields) -> CapacityResponse:
        """Available flexible capacity per customer and response level I/II/III for a
        window, P10/P50/P90 kW, each customer capped by its load forecast."""
        return answer(lambda: handle_capacity(self.portfolio, built(CapacityRequest, fields),
                                              self._load_forecast))

    @bentoml.api(route="/capability", input_spec=CapabilityRequest)
    def capability(self, **fields) -> CapabilityResponse:
        """Capability metrics of measured events per customer and for the VPP (regulation
        capacity, response time, ramp rate, adjustment accuracy) with pass/fail and the
        margin to each threshold."""
        return answer(lambda: handle_capability(self.portfolio, built(CapabilityRequest, fields)))

    @bentoml.api(route="/bid/capacity", input_spec=BidRequest)
    def bid_capacity(self, **fields) -> BidResponse:
        """The largest offer whose P(portfolio achievement >= the threshold) reaches a
        confidence, its expected compensation and penalty, and the offer curve."""
        return answer(lambda: handle_bid(self.portfolio, built(BidRequest, fields),
                                         self._load_forecast))

    def _load_forecast(self, portfolio, start, end, notice_time, customers):
        """Customers' load quantiles from this service's registry (inference.bidding)."""
        from inference.bidding import load_quantiles

        return load_quantiles(portfolio, start, end, notice_time, customers,
                              registry=self.registry)

    def _response_inputs(self):
        """The portfolio's events, resources and loads for the response likelihood (built
        once; DataError when the portfolio has no events.csv)."""
        if self._response_data is None:
            from inference.response_data import response_data

            self._response_data = response_data(self.portfolio)
        return self._response_data

    def _planned_reliability(self, instruction, resources):
        """Reliability per customer from the response-likelihood champion, None without one
        (or without settled events to build its features from)."""
        from forecasting.settlement import SettlementRule
        from inference.response_predict import planned_reliability

        try:
            champion = registry_champion(self.registry)
        except TrackingUnavailableError as err:  # registry down, artifacts missing
            raise ReliabilityUnavailable(err) from err
        if champion is None:
            return None
        try:
            data = self._response_inputs()
        except DataError:
            return None
        return planned_reliability(data, instruction, resources, SettlementRule(), champion)


VPPService.add_asgi_middleware(SecurityMiddleware)
VPPService.add_asgi_middleware(HealthMiddleware)
VPPService.add_asgi_middleware(DocumentMiddleware)
quiet_logs.install()
