"""Request/response models and the pure handler of ``POST /dispatch``.

The handler takes the service's ``Portfolio`` (its ``resources.csv`` and settled
``events.csv``) and a request, and answers the plan of ``models.dispatch.decompose``:
allocations per resource and customer, what was excluded and why, the expected delivery,
the shortfall and the probability of reaching the settlement threshold. Reliability per
customer comes from the registered response likelihood when there is one, else from the
events that had ended by the notice time (``models.dispatch.historical_reliability``:
Beta-shrunk success share); either way a plan never uses what happened after it was made. Errors are ``forecasting.errors`` types (400/404).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import pandas as pd
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from forecasting.errors import DataError, ModelNotFoundError, UnknownSiteError
from forecasting.portfolio import Portfolio
from forecasting.settlement import SettlementRule
from models.dispatch import Instruction, decompose, historical_reliability
from serving.limits import MAX_CUSTOMERS, MAX_EVENT_WINDOW, check_count, check_window

EventType = Literal["annual", "day_ahead", "real_time", "peak", "reserve", "peak_shaving",
                    "valley_filling"]  # forecasting.contract.EVENT_TYPES (a test keeps them equal)


class DispatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_kw: float = Field(allow_inf_nan=False, description="load reduction to deliver over "
                             "the window (kW, mean power), > 0; a valley-filling request (< 0, "
                             "or event_type valley_filling) is understood but not planned yet: "
                             "422 with the reason")
    start: AwareDatetime = Field(description="window start, ISO 8601 with offset")
    end: AwareDatetime = Field(description="window end (exclusive), ISO 8601 with offset; at "
                               "most 7 days after the start (422 beyond)")
    notice_time: AwareDatetime = Field(description="when the instruction reaches the VPP; "
                                       "decides which response levels can take part")
    event_type: EventType | None = Field(None, description="events.csv event type, if any")
    reserve_margin: float = Field(0.1, ge=0, le=1, description="plan expected delivery >= "
                                  "target x (1 + margin)")
    allow_approval: bool = Field(False, description="include resources that need the "
                                 "customer's approval (requires_approval)")
    risk_aversion_cny_per_kw: float | None = Field(
        None, ge=0, description="penalty per kW times its failure probability (default: the "
        "model's)")
    customers: list[str] | None = Field(None, min_length=1, description="restrict to these "
                                        "customers (default: every customer with resources); "
                                        f"at most {MAX_CUSTOMERS} (422 beyond)")
    reliability: Literal["auto", "model", "history"] = Field(
        "auto", description="where p_deliver comes from: model = the response-likelihood "
        "champion (each customer scored on a share of the target proportional to its "
        "eligible capacity), history = settled events ended by the notice (Beta-shrunk), "
        "auto = the model when a champion is registered, else history")


class DispatchResponse(BaseModel):
    target_kw: float
    required_expected_kw: float = Field(description="target x (1 + margin)")
    planned_expected_kw: float = Field(description="sum of allocation x expected achievement")
    shortfall_kw: float = Field(description="required minus planned expected kW (0 if met)")
    feasible: bool
    p_meets_threshold: float = Field(description="probability that the event's achievement "
                                     "reaches the settlement threshold (Monte Carlo)")
    expected_achievement: float
    total_cost_cny: float
    solver_status: str
    reliability_source: str = Field(description="where p_deliver came from")
    allocations: list[dict] = Field(description="per resource: resource_id, customer_id, "
                                    "level, allocated_kw, capacity_kw, p_deliver, "
                                    "expected_kw, cost_cny")
    by_customer: list[dict]
    excluded: list[dict] = Field(description="resources left out, with the reason")
    assumed_reliability: list[str] = Field(description="resources planned with the default "
                                           "reliability (no history)")
    notes: list[str]


def handle_dispatch(portfolio: Portfolio, request: DispatchRequest,
                    rule: SettlementRule | None = None,
                    likelihood: Callable[[Instruction, pd.DataFrame], pd.DataFrame | None]
                    | None = None) -> DispatchResponse:
    """The plan for ``request`` over the portfolio's resources (see the module doc).

    ``likelihood(instruction, resources)``: reliability per customer from the response
    likelihood (``pipelines.response.planned_reliability``), or None when no champion is
    registered; used for ``reliability`` ``model`` and ``auto``.
    """
    check_window(request.start, request.end, MAX_EVENT_WINDOW, "dispatch window")
    check_count(request.customers, MAX_CUSTOMERS, "customers")
    rule = rule or SettlementRule()
    resources = portfolio.resources
    if resources is None or resources.empty:
        raise DataError(f"{portfolio.source}: no resources.csv; dispatch needs the "
                        "controllable resources behind each customer (DATA_FORMAT.md)")
    if request.customers:
        known = set(resources["customer_id"].astype(str))
        unknown = sorted(set(request.customers) - known)
        if unknown:
            raise UnknownSiteError(f"no resources for customer(s) {unknown}; customers with "
                                   f"resources: {', '.join(sorted(known)[:10])}"
                                   f"{' ...' if len(known) > 10 else ''}")
        resources = resources[resources["customer_id"].astype(str).isin(request.customers)]
    fields = request.model_dump(exclude={"customers", "risk_aversion_cny_per_kw",
                                         "reliability"})
    if request.risk_aversion_cny_per_kw is not None:
        fields["risk_aversion_cny_per_kw"] = request.risk_aversion_cny_per_kw
    instruction = Instruction(**fields)
    reliability = None
    if request.reliability != "history" and likelihood is not None:
        reliability = likelihood(instruction, resources)
    if reliability is None and request.reliability == "model":
        raise ModelNotFoundError("no response-likelihood champion is registered; train one "
                                 "with `vpp response-train --data DIR` or ask for "
                                 "reliability 'history'")
    if reliability is not None:
        source = (f"{reliability.attrs.get('source', 'response-likelihood')} (each customer "
                  "scored on a target share proportional to its eligible capacity)")
    else:
        reliability = historical_reliability(portfolio.events, rule,
                                             before=pd.Timestamp(instruction.notice_time))
        source = (f"events.csv history ended by the notice time ({len(reliability)} "
                  "customers), Beta-shrunk to the portfolio rate")
    plan = decompose(instruction, resources, reliability, rule=rule)
    body = plan.to_dict()
    body.pop("instruction")
    return DispatchResponse(**body, reliability_source=source)
