"""Request/response models and the handlers of ``POST /capacity`` and ``POST /bid/capacity``.

The handlers take the service's ``Portfolio`` and a request and answer with library code
(``inference.bidding.portfolio_capacity`` / ``portfolio_bid``: ``models.capacity``,
``models.bidding``, ``models.correlation``). Each customer's load forecast comes from
``load_forecast(portfolio, start, end, notice_time, customers)``: by default
``inference.bidding.load_quantiles`` (the registered load champions issued at the notice
time, else the customer's similar-days baseline); the service passes its own registry.

Errors are ``forecasting.errors`` types, which the service maps to 4xx with the message as
the reason: a confidence outside (0, 1) (``ImpossibleValueError``), an unknown market type
(``UnknownValueError``), a window without load forecasts (``MissingForecastError``), a
window off the 15-minute grid (``DataError``), an unknown customer (``UnknownSiteError``,
404); a window beyond ``serving.limits.MAX_EVENT_WINDOW`` or more than ``MAX_CUSTOMERS``
customers is a ``BoundExceededError`` (422).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from forecasting.portfolio import Portfolio
from forecasting.settlement import SettlementRule
from serving.limits import MAX_CUSTOMERS, MAX_EVENT_WINDOW, check_count, check_window
from serving.request_types import Instant, StrictRequest

LoadForecast = Callable[[Portfolio, datetime, datetime, datetime, list[str]], pd.DataFrame]


def _records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def _check(start: datetime, end: datetime, customers: list[str] | None) -> None:
    check_window(start, end, MAX_EVENT_WINDOW, "event window")
    check_count(customers, MAX_CUSTOMERS, "customers")


class CapacityRequest(StrictRequest):
    model_config = ConfigDict(extra="forbid")

    start: Instant = Field(description="window start, ISO 8601 with offset, on the "
                                 "15-minute grid")
    end: Instant = Field(description="window end (exclusive), ISO 8601 with offset; at "
                               "most 7 days after the start (422 beyond)")
    notice_time: Instant = Field(description="when the event is notified: decides the "
                                       "eligible response levels, and the load forecasts "
                                       "are issued then")
    customers: list[str] | None = Field(None, min_length=1, description="restrict to these "
                                        "customers (default: every customer with resources); "
                                        f"at most {MAX_CUSTOMERS} (422 beyond)")
    allow_approval: bool = Field(False, description="count resources that need the "
                                 "customer's approval (requires_approval)")
    include_intervals: bool = Field(False, description="also answer every 15-minute "
                                    "interval (per customer and level)")


class CapacityResponse(BaseModel):
    start: AwareDatetime
    end: AwareDatetime
    notice_time: AwareDatetime
    by_customer: list[dict] = Field(description="per customer and level (I, II, III, all): "
                                    "n_resources, resources_kw (eligible nameplate), p10_kw, "
                                    "p50_kw, p90_kw (mean over the window, capped by the "
                                    "customer's load quantile), load_p10_kw..load_p90_kw, "
                                    "source of the load forecast")
    totals: list[dict] = Field(description="portfolio per level: n_resources, resources_kw, "
                               "p10_kw, p50_kw, p90_kw (sums over customers)")
    intervals: list[dict] | None = Field(None, description="per customer, level and "
                                         "15-minute interval: p10_kw, p50_kw, p90_kw")
    excluded: list[dict] = Field(description="resources that cannot answer this window and "
                                 "notice, with the reason")
    notes: list[str]


def handle_capacity(portfolio: Portfolio, request: CapacityRequest,
                    load_forecast: LoadForecast | None = None) -> CapacityResponse:
    """Available capacity per customer and level for ``request`` (see the module doc)."""
    from inference.bidding import portfolio_capacity

    _check(request.start, request.end, request.customers)
    result = portfolio_capacity(portfolio, request.start, request.end, request.notice_time,
                                request.customers, request.allow_approval, load_forecast)
    return CapacityResponse(
        start=request.start, end=request.end, notice_time=request.notice_time,
        by_customer=_records(result.by_customer), totals=_records(result.totals),
        intervals=_records(result.intervals) if request.include_intervals else None,
        excluded=_records(result.excluded), notes=result.notes)


class BidRequest(StrictRequest):
    model_config = ConfigDict(extra="forbid")

    market: str = Field(description="market type: annual, day_ahead, real_time or peak")
    start: Instant = Field(description="event window start, ISO 8601 with offset, on "
                                 "the 15-minute grid")
    end: Instant = Field(description="window end (exclusive); at most 7 days after "
                               "the start (422 beyond)")
    notice_time: Instant = Field(description="when the event is notified (eligible "
                                       "levels; load forecasts and history as known then)")
    confidence: float = Field(description="required P(portfolio achievement >= the "
                              "settlement threshold), strictly between 0 and 1 (e.g. 0.9)")
    customers: list[str] | None = Field(None, min_length=1, description="restrict to these "
                                        "customers (default: every customer with resources); "
                                        f"at most {MAX_CUSTOMERS} (422 beyond)")
    load_quantile: Literal["p10", "p50", "p90"] = Field(
        "p50", description="each customer's shed is capped by its load at this quantile "
        "(p10: pessimistic)")
    correlation: float | None = Field(None, ge=0, le=1, description="common-factor rho of "
                                      "deliveries (default: estimated from the settled "
                                      "events ended by the notice, 0 without history)")
    compensation_cny_per_mw: float | None = Field(
        None, ge=0, description="compensation per MW per event (default: the tariff table's "
        "midpoint for the market: annual 250, day_ahead 325, real_time 600, peak 1150)")
    penalty_cny_per_mw: float | None = Field(
        None, ge=0, description="penalty per MW of shortfall below the threshold (default: "
        "the compensation rate)")
    reserve_margin: float = Field(0.1, ge=0, le=1, description="an offer is planned with "
                                  "expected delivery >= offer x (1 + margin)")
    allow_approval: bool = Field(False, description="use resources that need the "
                                 "customer's approval (requires_approval)")


class BidResponse(BaseModel):
    market: str
    confidence: float
    offer_mw: float = Field(description="the largest offer with P(effective) >= confidence "
                            "(0 when none reaches it)")
    p_effective: float | None = Field(description="P(achievement >= threshold) of the offer's "
                                      "plan with the common cause (Monte Carlo)")
    p_effective_independent: float | None = Field(description="the same plan scored with "
                                                  "independent resources")
    independent_offer_mw: float | None = Field(description="what the independent model "
                                               "would offer at the confidence")
    expected_achievement: float | None
    expected_compensation_cny: float | None = Field(description="per event (CNY)")
    expected_penalty_cny: float | None = Field(description="per event (CNY)")
    expected_net_revenue_cny: float | None = Field(description="compensation - penalty (CNY)")
    planned_energy_cost_cny: float | None = Field(description="the customers' energy cost of "
                                                  "the plan (not subtracted)")
    planned_by: str
    correlation: float | None = Field(description="the rho used")
    correlation_note: str = Field(description="how rho was estimated (or given)")
    load_quantile: str
    capacity_kw: float = Field(description="portfolio capacity (all levels) at the load "
                               "quantile, kW")
    allocations: list[dict] = Field(description="the plan of the offer, per resource")
    curve: list[dict] = Field(description="offer curve: offer_mw, p_effective, "
                              "p_effective_independent, expected_* (CNY), allocated_kw")
    notes: list[str]


def handle_bid(portfolio: Portfolio, request: BidRequest,
               load_forecast: LoadForecast | None = None,
               rule: SettlementRule | None = None) -> BidResponse:
    """Bid capacity advice and offer curve for ``request`` (see the module doc)."""
    from inference.bidding import portfolio_bid
    from models.bidding import (
        BidOptions,
        MarketTariff,
        TariffTable,
        check_confidence,
        check_market,
    )

    check_confidence(request.confidence)
    tariff = TariffTable()
    base = check_market(request.market, tariff)
    _check(request.start, request.end, request.customers)
    if request.compensation_cny_per_mw is not None or request.penalty_cny_per_mw is not None:
        rate = (base.compensation_cny_per_mw if request.compensation_cny_per_mw is None
                else request.compensation_cny_per_mw)
        penalty = rate if request.penalty_cny_per_mw is None else request.penalty_cny_per_mw
        tariff = TariffTable(markets={**tariff.markets, request.market: MarketTariff(
            compensation_cny_per_mw=rate, penalty_cny_per_mw=penalty)})
    options = BidOptions(reserve_margin=request.reserve_margin,
                         allow_approval=request.allow_approval)
    result = portfolio_bid(portfolio, request.market, request.start, request.end,
                           request.notice_time, request.confidence,
                           customers=request.customers, load_quantile=request.load_quantile,
                           correlation=request.correlation, tariff=tariff, rule=rule,
                           options=options, load_forecast=load_forecast)
    body = result.advice.to_dict()
    totals = result.capacity.totals.set_index("level")
    rho = result.correlation.rho
    body.update(correlation=float(rho) if np.isfinite(rho) else None,
                correlation_note=result.correlation.note, load_quantile=request.load_quantile,
                capacity_kw=float(totals.loc["all", f"{request.load_quantile}_kw"]))
    return BidResponse(**body)
