"""Request/response models and the pure handler of ``POST /dispatch``.

The handler takes the service's ``Portfolio`` (its ``resources.csv`` and settled
``events.csv``) and a request, and answers the plan of ``models.dispatch.decompose``:
allocations per resource and customer, what was excluded and why, the expected delivery,
the shortfall and the probability of reaching the settlement threshold. Reliability per
customer comes from the registered response likelihood when there is one, else from the
events that had ended by the notice time (``models.dispatch.historical_reliability``:
Beta-shrunk success share); either way a plan never uses what happened after it was made.
The Monte Carlo uses the portfolio's common-factor correlation of deliveries, estimated from
the same settled events ended by the notice (``models.correlation.estimate_correlation``) or
given in the request, and reports P(effective) of independent resources beside it.

Semi-automatic mode (``models.dispatch_plans``): a target above ``approval_threshold_kw``
(2,000 kW by default) or a plan using a resource that needs approval answers three plans
(lowest cost, highest reliability, least production impact), each ``approval_required``;
otherwise one automatic plan. The top-level plan fields are always those of ``plans[0]``
(the recommended, lowest-cost plan), so a client of the one-plan answer keeps working.
Errors are ``forecasting.errors`` types (400/404).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from forecasting.errors import DataError, ModelNotFoundError, UnknownSiteError
from forecasting.portfolio import Portfolio
from forecasting.settlement import SettlementRule
from models.correlation import CorrelationEstimate, estimate_correlation
from models.dispatch import Instruction, historical_reliability
from models.dispatch_plans import (
    DEFAULT_APPROVAL_THRESHOLD_KW,
    MAX_APPROVAL_THRESHOLD_KW,
    AlternativePlan,
    contracted_capacity_kw,
    dispatch_plans,
)
from serving.limits import MAX_CUSTOMERS, MAX_EVENT_WINDOW, check_count, check_window
from serving.request_types import EventType, Instant, StrictRequest


class ReliabilityUnavailable(RuntimeError):
    """The likelihood callback could not ask its model (``fault``: the registry's error):
    ``auto`` plans from the history with a note, ``model`` answers the fault."""

    def __init__(self, fault: Exception):
        super().__init__(str(fault))
        self.fault = fault


class DispatchRequest(StrictRequest):
    model_config = ConfigDict(extra="forbid")

    target_kw: float = Field(allow_inf_nan=False, description="load reduction to deliver over "
                             "the window (kW, mean power), > 0; a valley-filling request (< 0, "
                             "or event_type valley_filling) is understood but not planned yet: "
                             "422 with the reason")
    start: Instant = Field(description="window start, ISO 8601 with offset")
    end: Instant = Field(description="window end (exclusive), ISO 8601 with offset; at "
                               "most 7 days after the start (422 beyond)")
    notice_time: Instant = Field(description="when the instruction reaches the VPP; "
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
    approval_threshold_kw: float = Field(
        DEFAULT_APPROVAL_THRESHOLD_KW, ge=0, le=MAX_APPROVAL_THRESHOLD_KW,
        description="a target above this (kW) answers three plans for a dispatcher "
        "(semi-automatic mode), as does a plan using a resource that needs approval")
    correlation: float | None = Field(
        None, ge=0, le=1, description="common-factor rho of deliveries for the Monte Carlo "
        "(0: independent); default: estimated from the settled events ended by the notice")


class Allocation(BaseModel):
    """One used resource of a plan (kW: mean power over the window)."""

    resource_id: str
    customer_id: str
    name: str | None = None
    level: str
    allocated_kw: float
    capacity_kw: float
    p_deliver: float = Field(description="probability of reaching the settlement threshold")
    expected_achievement: float = Field(description="expected delivered / allocated ratio")
    expected_kw: float
    cost_cny: float = Field(description="energy cost of the allocation (CNY)")


class CustomerAllocation(BaseModel):
    """One customer's part of a plan."""

    customer_id: str
    allocated_kw: float
    expected_kw: float
    cost_cny: float
    resources: str = Field(description="its used resource ids, comma-separated")
    headroom_kw: float | None = Field(None, description="its headroom limit, if one was set")
    curtailed_share: float = Field(description="allocated kW / the customer's contracted "
                                   "capacity (sites.csv capacity_kw of its load sites; else "
                                   "its resources' total capacity_kw)")


class PlanOption(BaseModel):
    """One alternative plan for the dispatcher to pick (``models.dispatch_plans``)."""

    name: Literal["lowest_cost", "highest_reliability", "least_production_impact"]
    objective: str = Field(description="what this plan optimises")
    approval_required: bool = Field(description="a dispatcher must approve it before it is "
                                    "sent (true in semi-automatic mode)")
    allocations: list[Allocation]
    by_customer: list[CustomerAllocation]
    required_expected_kw: float
    planned_expected_kw: float
    shortfall_kw: float
    feasible: bool
    total_cost_cny: float = Field(description="energy cost (CNY)")
    risk_adjusted_cost_cny: float = Field(description="energy cost + risk penalty + "
                                          "per-resource tie-breaker: what lowest_cost "
                                          "minimises (CNY)")
    p_meets_threshold: float = Field(description="P(effective): P(event achievement >= "
                                     "the settlement threshold) with the correlation")
    p_meets_threshold_independent: float = Field(description="the same with independent "
                                                 "resources (rho 0)")
    expected_achievement: float
    total_curtailed_share: float = Field(description="sum over the customers of their "
                                         "curtailed share: what least_production_impact "
                                         "minimises")
    max_curtailed_share: float = Field(description="largest curtailed share of a customer's "
                                       "contracted capacity")
    approval_resources: list[str] = Field(description="used resources that need the "
                                          "customer's approval")
    same_as: list[str] = Field(description="other plans with the same allocation")
    solver_status: str
    notes: list[str]


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
    mode: Literal["automatic", "semi_automatic"] = Field(
        description="semi_automatic: three plans for a dispatcher to pick")
    approval_required: bool = Field(description="the answer needs a dispatcher's approval")
    approval_reasons: list[str] = Field(description="why (target above the threshold, "
                                        "resources needing approval); empty when automatic")
    approval_threshold_kw: float
    correlation: float = Field(description="common-factor rho of deliveries the Monte Carlo "
                               "used (0: independent)")
    correlation_note: str = Field(description="how rho was estimated (or given)")
    p_meets_threshold_independent: float = Field(
        description="P(effective) of the recommended plan with independent resources: the "
        "optimism of ignoring the common cause is p_meets_threshold_independent - "
        "p_meets_threshold")
    plans: list[PlanOption] = Field(description="1 plan (automatic) or 3 (semi-automatic); "
                                    "the top-level fields are plans[0]'s", min_length=1,
                                    max_length=3)


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
                                         "reliability", "approval_threshold_kw",
                                         "correlation"})
    if request.risk_aversion_cny_per_kw is not None:
        fields["risk_aversion_cny_per_kw"] = request.risk_aversion_cny_per_kw
    instruction = Instruction(**fields)
    reliability, fault_note = None, ""
    if request.reliability != "history" and likelihood is not None:
        try:
            reliability = likelihood(instruction, resources)
        except ReliabilityUnavailable as err:
            if request.reliability == "model":
                raise err.fault from None
            fault_note = (f"response-likelihood model not available ({err.fault}); "
                          "reliability from the settled events instead")
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
    notice = pd.Timestamp(instruction.notice_time)
    if request.correlation is None:
        estimate = estimate_correlation(portfolio.events, rule, before=notice)
    else:
        estimate = CorrelationEstimate(float(request.correlation), 0, 0, 0, float("nan"),
                                       "given in the request")
    answer = dispatch_plans(instruction, resources, reliability, rule=rule,
                            approval_threshold_kw=request.approval_threshold_kw,
                            customer_capacity_kw=contracted_capacity_kw(
                                portfolio.sites.values()),
                            correlation=estimate.rho)
    body = answer.recommended.plan.to_dict()
    for key in ("instruction", "correlation"):
        body.pop(key)
    body["notes"] = body["notes"] + answer.notes + ([fault_note] if fault_note else [])
    return DispatchResponse(**body, reliability_source=source, mode=answer.mode,
                            approval_required=answer.approval_required,
                            approval_reasons=answer.reasons,
                            approval_threshold_kw=answer.approval_threshold_kw,
                            correlation=answer.correlation, correlation_note=estimate.note,
                            plans=[plan_option(one) for one in answer.plans])


def plan_option(one: AlternativePlan) -> PlanOption:
    """The response model of one ``models.dispatch_plans`` plan."""
    body = one.plan.to_dict()
    shares = one.curtailed_share
    customers = [{**row, "curtailed_share": shares[str(row["customer_id"])]}
                 for row in body["by_customer"]]
    keep = {"required_expected_kw", "planned_expected_kw", "shortfall_kw", "feasible",
            "total_cost_cny", "p_meets_threshold", "p_meets_threshold_independent",
            "expected_achievement", "solver_status", "notes", "allocations"}
    return PlanOption(name=one.name, objective=one.objective,
                      approval_required=one.approval_required, by_customer=customers,
                      risk_adjusted_cost_cny=one.risk_adjusted_cost_cny,
                      total_curtailed_share=one.total_curtailed_share,
                      max_curtailed_share=one.max_curtailed_share,
                      approval_resources=one.approval_resources, same_as=one.same_as,
                      **{k: v for k, v in body.items() if k in keep})
