"""Request/response models and the pure handler of ``POST /response-likelihood``.

For a planned event (customers, window, notice, committed ``target_kw``) the handler
answers, per customer, the calibrated probability of delivering (achievement ≥ the
settlement threshold) and the expected achievement, from what was known at the notice time
(earlier settled events, resources, metered load). The model is the registry's champion
of ``response-likelihood`` (``pipelines.response``); without one the answer is the
Beta-shrunk historical rate, and ``source`` says which answered.

Per resource (``resources``): where the customer's resources are settled separately
(``resource_events.csv``), each resource's own likelihood (``level: resource``); otherwise
the customer's, with ``level: customer`` and the ``fallback_reason``. A resource's share of
the customer's ``target_kw`` is its share of the customer's resource capacity.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from forecasting.errors import ModelNotFoundError, UnknownSiteError
from forecasting.settlement import SettlementRule
from inference.response_data import Champion, ResponseData
from inference.response_predict import hypothetical_event, predict_rows
from inference.response_resources import predict_resources
from inference.tracking import TrackingUnavailableError
from serving.limits import (
    MAX_ABS_LOAD_KW,
    MAX_CUSTOMERS,
    MAX_EVENT_WINDOW,
    check_count,
    check_window,
)
from serving.request_types import EventType, Id, Instant, StrictRequest


def _distinct(ids: list[str]) -> list[str]:
    twice = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) < len(ids) else []
    if twice:
        raise ValueError(f"customers named more than once: {twice[:10]}; name each once")
    return ids


def _nonzero(values: list[float]) -> list[float]:
    if any(v == 0 for v in values):
        raise ValueError("a target_kw of 0 commits nothing: an achievement ratio needs a "
                         "non-zero target")
    return values


TargetKw = Annotated[float, Field(ge=-MAX_ABS_LOAD_KW, le=MAX_ABS_LOAD_KW, allow_inf_nan=False)]


class ResponseRequest(StrictRequest):
    customers: list[Id] = Field(min_length=1, description="customer ids (sites.csv "
                                f"customer_id), each once; at most {MAX_CUSTOMERS} (422 "
                                "beyond)")
    start: Instant = Field(description="event start, ISO 8601 with offset")
    end: Instant = Field(description="event end (exclusive), ISO 8601 with offset; at "
                         "most 7 days after the start (422 beyond)")
    notice_time: Instant = Field(description="when the event is announced; only what "
                                 "was known then is used")
    target_kw: list[TargetKw] = Field(min_length=1, description="committed change (kW): one "
                                   "value for all or one per customer; reduction positive, "
                                   "valley filling negative; non-zero, finite, |kW| <= 1e7")
    event_type: EventType = Field("day_ahead", description="events.csv event type")

    @field_validator("customers")
    @classmethod
    def _customers_once(cls, ids: list[str]) -> list[str]:
        return _distinct(ids)

    @field_validator("target_kw")
    @classmethod
    def _targets_nonzero(cls, values: list[float]) -> list[float]:
        return _nonzero(values)


class CustomerLikelihood(BaseModel):
    customer_id: str
    p_deliver: float = Field(description="probability that achievement >= the threshold")
    expected_achievement: float = Field(description="expected actual / target ratio")


class ResourceLikelihood(BaseModel):
    customer_id: str
    resource_id: str = Field(description="resources.csv resource_id")
    target_kw: float = Field(description="the resource's share of the customer's target_kw "
                             "(by capacity), kW")
    p_deliver: float = Field(description="probability that achievement >= the threshold")
    expected_achievement: float = Field(description="expected actual / target ratio")
    level: Literal["resource", "customer"] = Field(
        description="which level answered: the resource's own likelihood, or the customer's")
    fallback_reason: str | None = Field(description="why the customer level answered "
                                        "(None when level is resource)")
    source: str = Field(description="the model or rate that answered")


class ResponseResponse(BaseModel):
    threshold: float = Field(description="settlement threshold of achievement")
    source: str = Field(description="response-likelihood/<version>, or historical_rate "
                        "when no champion is registered")
    notes: list[str] = Field(default_factory=list, description="e.g. a registry fault that "
                             "left the model out: the historical rate answered")
    customers: list[CustomerLikelihood]
    resources: list[ResourceLikelihood] = Field(
        default_factory=list, description="one row per resource of each customer "
        "(resources.csv), with the level that answered")


def registry_champion(registry) -> Champion | None:
    """The ``response-likelihood`` champion from a ``ModelRegistry`` (cached per version), or
    None when there is no registry or no champion."""
    if registry is None:
        return None
    try:
        return registry.response()
    except ModelNotFoundError:
        return None


def handle_response(data: ResponseData, request: ResponseRequest, registry,
                    rule: SettlementRule | None = None) -> ResponseResponse:
    """Likelihood per customer of ``request`` (see the module doc).

    ``registry``: a ``inference.registry.ModelRegistry`` (or None: historical rate only).
    """
    check_count(request.customers, MAX_CUSTOMERS, "customers")
    check_count(request.target_kw, MAX_CUSTOMERS, "target_kw values")
    check_window(request.start, request.end, MAX_EVENT_WINDOW, "event window")
    rule = rule or SettlementRule()
    known = set(data.loads_kw) | set(data.events["customer_id"].astype(str))
    unknown = sorted(set(request.customers) - known)
    if unknown:
        raise UnknownSiteError(f"unknown customer(s) {unknown}; known customers: "
                               f"{', '.join(sorted(known)[:10])}"
                               f"{' ...' if len(known) > 10 else ''}")
    rows = hypothetical_event(request.customers, request.start, request.end,
                              request.notice_time, request.target_kw, request.event_type)
    notes = []
    try:
        champion = registry_champion(registry)
    except TrackingUnavailableError as err:  # registry down or artifacts missing: say so
        champion = None
        notes.append(f"response-likelihood model not available ({err}); the Beta-shrunk "
                     "historical rate answered")
    customer = predict_rows(data, rows, rule, champion)
    per_resource = predict_resources(data, rows, customer, rule, champion)
    out = customer.reset_index()
    return ResponseResponse(
        threshold=rule.min_achievement_ratio, source=str(out["source"].iloc[0]), notes=notes,
        customers=[CustomerLikelihood(customer_id=str(r.customer_id),
                                      p_deliver=round(float(r.p_deliver), 4),
                                      expected_achievement=round(float(r.expected_achievement),
                                                                 4))
                   for r in out.itertuples()],
        resources=[ResourceLikelihood(
            customer_id=str(r.customer_id), resource_id=str(r.resource_id),
            target_kw=float(r.target_kw), p_deliver=round(float(r.p_deliver), 4),
            expected_achievement=round(float(r.expected_achievement), 4), level=r.level,
            fallback_reason=r.fallback_reason if isinstance(r.fallback_reason, str) else None,
            source=str(r.source)) for r in per_resource.itertuples()])
