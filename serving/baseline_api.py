"""Request/response models and pure handlers for ``POST /baseline`` and ``POST /baseline/measure``.

The handlers take a ``Portfolio`` (the readings known to the service) and a request and
return a response; they raise ``forecasting.errors`` types on bad input (``UnknownSiteError``
for an unknown customer or site, ``DataError`` subclasses for bad windows or readings,
``ModelNotFoundError`` when ``ml`` is asked and no model is given), which the service maps
to HTTP 4xx/503. A baseline only ever uses readings from before the event start (day-of
adjustments: before the notice), whatever the portfolio holds after it.

``/baseline/measure`` also answers the energy reduced and the CO2 avoided so far
(``forecasting.carbon``; the factor and its source in the answer) and refuses readings that
cannot be physical (``check_readings``): non-finite numbers or |load_kw| above
``serving.limits.MAX_ABS_LOAD_KW`` in the schema, then above ``LOAD_SCALE_FACTOR`` x the
customer's capacity, or net infeed from a customer whose history never fed in.

``ml_models`` maps a customer id (or ``"pooled"``) to a fitted ``MLBaseline``; the service
loads it from the registry (``pipelines.baselines.load_champion``). Its recent-level history
is refreshed from the portfolio for each request, on a copy (``with_history``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Mapping
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from forecasting.carbon import MAX_FACTOR_KG_PER_KWH
from forecasting.errors import DataError, ImpossibleValueError
from forecasting.portfolio import Portfolio
from forecasting.settlement import (
    SettlementRule,
    aggregate_readings,
    interval_means,
    interval_results,
)
from inference.measurement import (
    baseline_for_customer,
    customer_emissions,
    portfolio_emission_factors,
)
from models.baselines import SERVED_RULES
from models.baselines.ml import MLBaseline
from serving.limits import (
    LOAD_SCALE_FACTOR,
    MAX_ABS_LOAD_KW,
    MAX_EVENT_WINDOW,
    MAX_READINGS,
    MAX_SETTLEMENT_RATIO,
    NEGATIVE_LOAD_TOLERANCE,
    check_count,
    check_window,
)
from serving.request_types import Id, Instant, StrictRequest

Method = Literal[("auto", *SERVED_RULES, "ml")]


ONE_OF_TARGET = {"oneOf": [{"required": ["customer_id"], "not": {"required": ["site_id"]}},
                           {"required": ["site_id"], "not": {"required": ["customer_id"]}}]}


class _Target(StrictRequest):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_OF_TARGET)

    # typed str with a default of None: absent means not given, and the schema says that
    # exactly one of the two is given (ONE_OF_TARGET)
    customer_id: Id = Field(None, description="customer whose load sites are summed "
                            "(sites.csv customer_id); give this or site_id")
    site_id: Id = Field(None, description="one load site (sites.csv site_id); give this or "
                        "customer_id")
    start: Instant = Field(description="event start, ISO 8601 with offset")
    end: Instant = Field(description="event end (exclusive), ISO 8601 with offset; at "
                               "most 7 days after the start (422 beyond)")
    notice_time: Instant | None = Field(
        None, description="when the event was announced; day-of adjustments use readings "
        "before it (default: the start)")
    method: Method = Field("auto", description="baseline method; auto picks per customer the "
                           "lowest CV(RMSE) on placebo days before the event")

    @model_validator(mode="after")
    def _one_target(self):
        if (self.customer_id is None) == (self.site_id is None):
            raise ValueError("give exactly one of customer_id or site_id")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.notice_time is not None and self.notice_time > self.start:
            raise ValueError("notice_time must not be after start")
        return self


class BaselineRequest(_Target):
    """Baseline of a customer or site over an event window."""


class BaselinePoint(BaseModel):
    timestamp: AwareDatetime = Field(description="interval start, in the site's local offset")
    baseline_kw: float = Field(description="baseline, mean kW over the interval")
    baseline_p10_kw: float | None = Field(None, description="10 % quantile (ML only)")
    baseline_p90_kw: float | None = Field(None, description="90 % quantile (ML only)")


class BaselineResponse(BaseModel):
    customer_id: str | None = Field(description="the customer asked for")
    site_id: str | None = Field(description="the site asked for")
    method: str = Field(description="method used (auto resolved)")
    method_requested: str = Field(description="method asked for")
    resolution_minutes: int = Field(ge=1, description="width of each point")
    pool_days: list[dt.date] = Field(default_factory=list, description="local dates averaged "
                                     "(rule baselines)")
    adjustment: float | None = Field(None, description="day-of factor or offset (kW) applied")
    auto_scores: dict[str, float] = Field(default_factory=dict, description="auto: CV(RMSE) "
                                          "of each candidate on the placebo days")
    notes: list[str] = Field(default_factory=list)
    points: list[BaselinePoint]


class Reading(StrictRequest):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    timestamp: Instant = Field(description="start of the reading interval")
    load_kw: float = Field(
        ge=-MAX_ABS_LOAD_KW, le=MAX_ABS_LOAD_KW,
        description="mean power over the reading interval, kW (consumption positive, net "
        f"infeed negative); a finite number, |load_kw| <= {MAX_ABS_LOAD_KW:g}, and at most "
        f"{LOAD_SCALE_FACTOR:g} x the customer's contracted capacity (its peak reading where "
        "capacity_kw is not declared); negative beyond "
        f"{NEGATIVE_LOAD_TOLERANCE:.0%} of that only where its history shows net infeed "
        "(400 else)")


class MeasureRequest(_Target):
    """Readings so far during an event (any regular resolution 5 s .. 15 min)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    target_kw: float = Field(ge=-MAX_ABS_LOAD_KW, le=MAX_ABS_LOAD_KW,
                             description="committed change, kW: reduction positive, valley "
                             "filling negative; finite and non-zero")
    readings: list[Reading] = Field(min_length=1, description="readings since the start; at "
                                    f"most {MAX_READINGS} (422 beyond)")
    rule: SettlementRule | None = Field(None, description="settlement rule (default rule if "
                                        "omitted); its ratios finite, at most "
                                        f"{MAX_SETTLEMENT_RATIO:g}")
    emission_factor_kg_per_kwh: float | None = Field(
        None, gt=0, le=MAX_FACTOR_KG_PER_KWH,
        description="grid emission factor for every interval, kg CO2/kWh (default: the "
        "portfolio's emission_factors.csv, else the MEE/NBS 2023 national average 0.5306)")

    @model_validator(mode="after")
    def _nonzero_target(self):
        if self.target_kw == 0:
            raise ValueError("target_kw must be non-zero (positive = reduction, negative = "
                             "valley filling)")
        return self

    @field_validator("rule")
    @classmethod
    def _finite_rule(cls, rule: SettlementRule | None) -> SettlementRule | None:
        for name, value in (rule.model_dump() if rule is not None else {}).items():
            if isinstance(value, float) and not (math.isfinite(value)
                                                 and abs(value) <= MAX_SETTLEMENT_RATIO):
                raise ValueError(f"rule.{name} is {value}; give a finite ratio within 0 .. "
                                 f"{MAX_SETTLEMENT_RATIO:g} (e.g. 0.8 for 80 %)")
        return rule


class MeasureInterval(BaseModel):
    timestamp: AwareDatetime = Field(description="settlement interval start, in the site's "
                                     "local offset")
    baseline_kw: float
    baseline_p10_kw: float | None = None
    baseline_p90_kw: float | None = None
    actual_kw: float | None = Field(description="mean of the readings in the interval")
    coverage: float | None = Field(description="readings present / expected, 0..1")
    reduction_kw: float | None = Field(description="baseline - actual")
    achievement: float | None = Field(description="reduction / target")
    emission_factor_kg_per_kwh: float = Field(description="grid emission factor, kg CO2/kWh")
    reduced_kwh: float | None = Field(None, description="energy below the baseline so far "
                                      "(reduction x interval x coverage, >= 0)")
    increased_kwh: float | None = Field(None, description="energy above the baseline so "
                                        "far (>= 0)")
    avoided_co2_kg: float | None = Field(None, description="reduced_kwh x factor")
    added_co2_kg: float | None = Field(None, description="increased_kwh x factor")


class MeasureResponse(BaseModel):
    customer_id: str | None
    site_id: str | None
    method: str
    target_kw: float
    n_intervals: int = Field(description="intervals in the event window")
    n_measured: int = Field(description="intervals with readings so far")
    reduction_kw: float | None = Field(description="mean reduction over measured intervals")
    achievement: float | None = Field(description="mean reduction / target so far")
    on_track: bool = Field(description="achievement so far reaches the rule's threshold")
    reduced_kwh: float = Field(description="energy below the baseline so far, kWh")
    increased_kwh: float = Field(description="energy above the baseline so far, kWh "
                                 "(valley filling, rebound)")
    avoided_co2_kg: float = Field(description="CO2 avoided so far: reduced kWh x factor")
    added_co2_kg: float = Field(description="CO2 added so far: increased kWh x factor")
    net_avoided_co2_kg: float = Field(description="avoided - added, kg CO2")
    emission_factor_kg_per_kwh: float = Field(description="mean factor of the measured "
                                              "intervals, kg CO2/kWh")
    emission_factor_source: str = Field(description="where the factor came from")
    notes: list[str] = Field(default_factory=list, description="e.g. a registry fault that "
                             "left the ML baseline out of auto")
    intervals: list[MeasureInterval]


def _history(portfolio: Portfolio, request: _Target):
    """(load, timezone, holiday country, event days, customer id) for the request."""
    if request.site_id is not None:
        site = portfolio.site(request.site_id)
        if site.kind != "load":
            raise DataError(f"site {site.site_id} is a {site.kind} site; baselines are for "
                            "load sites")
        load = portfolio.site_data(site.site_id).values_kw
        cid = site.customer_id
        days = portfolio.customer_event_days(cid, site.timezone) if cid else frozenset()
        return load, site.timezone, site.holiday_country, days, cid
    load, sites = portfolio.customer_load(request.customer_id)
    tz = sites[0].timezone
    return (load, tz, sites[0].holiday_country,
            portfolio.customer_event_days(request.customer_id, tz), request.customer_id)


class MLBaselineUnavailable(RuntimeError):
    """The registry could not hand out an ML baseline (``fault``: the registry's error);
    raised by the service's model mapping, so that a rule baseline may still answer."""

    def __init__(self, key: str, fault: Exception):
        super().__init__(f"{key}: {fault}")  # not a KeyError: Mapping.get would swallow it
        self.fault = fault


def _ml_model(ml_models, cid, load, days, request) -> tuple[MLBaseline | None, str]:
    """(the customer's ML baseline or None, a note when a registry fault left it out)."""
    if (not ml_models or request.site_id is not None or cid is None
            or request.method not in ("ml", "auto")):
        return None, ""  # ML models are per customer (a site request uses the rules)
    try:
        model = ml_models.get(cid) or ml_models.get("pooled")
    except MLBaselineUnavailable as err:
        if request.method == "ml":
            raise err.fault from None
        return None, (f"ML baseline not available ({err.fault}); auto chose among the rule "
                      "baselines")
    if model is None or cid not in model.customers_:
        return None, ""
    # a copy with this request's history: the shared model is never changed
    return model.with_history({cid: load}, {cid: days}), ""


def _baseline(portfolio, request, ml_models, history=None):
    check_window(request.start, request.end, MAX_EVENT_WINDOW, "event window")
    load, tz, country, days, cid = history or _history(portfolio, request)
    known = load[load.index < pd.Timestamp(request.start)]
    if known.empty:
        raise DataError(f"no readings of {request.customer_id or request.site_id} before "
                        f"{request.start}; a baseline needs history")
    model, note = _ml_model(ml_models, cid, known, days, request)
    details, scores = baseline_for_customer(
        known, timezone=tz, holiday_country=country, event_days=days, start=request.start,
        end=request.end, notice_time=request.notice_time, method=request.method,
        customer_id=cid, ml_model=model)
    if note:
        details = dataclasses.replace(details, notes=(*details.notes, note))
    return details, scores, known, tz


def handle_baseline(portfolio: Portfolio, request: BaselineRequest,
                    ml_models: Mapping[str, MLBaseline] | None = None) -> BaselineResponse:
    """``POST /baseline``: the baseline series (with band for ML) and the method used."""
    details, scores, known, tz = _baseline(portfolio, request, ml_models)
    frame = details.frame
    res = (frame.index[1] - frame.index[0]) if len(frame) > 1 else (
        known.index[-1] - known.index[-2])
    points = [BaselinePoint(timestamp=ts.tz_convert(tz).to_pydatetime(),
                            baseline_kw=float(row.baseline_kw),
                            baseline_p10_kw=_opt(row, "baseline_p10_kw"),
                            baseline_p90_kw=_opt(row, "baseline_p90_kw"))
              for ts, row in frame.iterrows()]
    return BaselineResponse(customer_id=request.customer_id, site_id=request.site_id,
                            method=details.method, method_requested=request.method,
                            resolution_minutes=int(res / pd.Timedelta(minutes=1)),
                            pool_days=list(details.pool_days), adjustment=details.adjustment,
                            auto_scores=scores, notes=list(details.notes), points=points)


def _opt(row, col):
    value = row.get(col) if hasattr(row, "get") else None
    return None if value is None or pd.isna(value) else float(value)


def _load_sites(portfolio: Portfolio, request: _Target) -> list:
    if request.site_id is not None:
        return [portfolio.site(request.site_id)]
    return [s for s in portfolio.sites.values()
            if s.kind == "load" and s.customer_id == request.customer_id]


def check_readings(readings: pd.Series, history: pd.Series, sites: list, who: str) -> None:
    """Refuse physically absurd readings (``ImpossibleValueError``, 400) with what to fix.

    Scale = the sites' summed ``capacity_kw`` when every site declares it, else the largest
    |reading| of the history. A reading beyond ``LOAD_SCALE_FACTOR`` x scale is refused (a
    unit error: W or MW for kW); a negative one (net infeed) below
    ``-NEGATIVE_LOAD_TOLERANCE`` x scale only where the history never shows net infeed.
    """
    capacities = [s.capacity_kw for s in sites]
    declared = bool(capacities) and all(c is not None and c > 0 for c in capacities)
    peak = float(np.nanmax(np.abs(history.to_numpy()))) if len(history) else 0.0
    scale, basis = ((float(sum(capacities)), "contracted capacity") if declared
                    else (peak, "largest reading"))
    if not scale > 0:
        return  # no scale to compare with (the baseline then refuses the empty history)
    bound = LOAD_SCALE_FACTOR * scale
    high = readings.abs() > bound
    if high.any():
        ts = readings.index[high.to_numpy()][0]
        raise ImpossibleValueError(
            f"reading load_kw = {readings[ts]:g} at {ts.isoformat()} is beyond "
            f"{LOAD_SCALE_FACTOR:g} x the {basis} of {who} ({scale:g} kW): send mean kW per "
            "reading interval (not W or MW), or check capacity_kw in sites.csv")
    infeed_seen = bool((history < 0).any())
    floor = -bound if infeed_seen else -NEGATIVE_LOAD_TOLERANCE * scale
    low = readings < floor
    if low.any():
        ts = readings.index[low.to_numpy()][0]
        raise ImpossibleValueError(
            f"reading load_kw = {readings[ts]:g} at {ts.isoformat()} is net infeed, but the "
            f"readings of {who} before the event never are (below "
            f"-{NEGATIVE_LOAD_TOLERANCE:.0%} of its {basis}, {scale:g} kW, is refused): "
            "consumption is positive (DATA_FORMAT.md), check the sign")


def handle_measure(portfolio: Portfolio, request: MeasureRequest,
                   ml_models: Mapping[str, MLBaseline] | None = None) -> MeasureResponse:
    """``POST /baseline/measure``: reduction, achievement and avoided emissions so far.

    Readings (any regular resolution from 5 s to the rule's interval) are averaged to the
    settlement interval (15 min by default); they must lie inside the event window and be
    physically plausible (``check_readings``). Emissions (``forecasting.carbon``): each
    interval's kWh so far (reduction x width x coverage) times the grid emission factor.
    """
    check_count(request.readings, MAX_READINGS, "readings")
    rule = request.rule or SettlementRule()
    readings = pd.Series([r.load_kw for r in request.readings],
                         index=pd.DatetimeIndex([pd.Timestamp(r.timestamp)
                                                 for r in request.readings]).tz_convert("UTC"))
    start, end = pd.Timestamp(request.start), pd.Timestamp(request.end)
    outside = (readings.index < start) | (readings.index >= end)
    if outside.any():
        raise DataError(f"reading at {readings.index[outside][0]} lies outside the event "
                        f"window {start} .. {end}; send only readings since the start")
    history = _history(portfolio, request)
    sites = _load_sites(portfolio, request)
    check_readings(readings, history[0][history[0].index < start], sites,
                   f"customer {request.customer_id}" if request.customer_id is not None
                   else f"site {request.site_id}")
    agg = aggregate_readings(readings.sort_index(), rule.interval_minutes, "readings")
    details, _, _, tz = _baseline(portfolio, request, ml_models, history)
    base = details.frame
    base = interval_means(base, rule.interval_minutes)
    rows = interval_results(base["baseline_kw"], agg["actual_kw"], request.target_kw)
    coverage = agg["coverage"].reindex(rows.index)
    factors = portfolio_emission_factors(
        portfolio, override_kg_per_kwh=request.emission_factor_kg_per_kwh)
    so_far = rows.assign(reduction_kw=rows["reduction_kw"] * coverage.clip(upper=1.0))
    carbon_rows, carbon = customer_emissions(so_far, factors, [s.site_id for s in sites], tz,
                                             rule.interval_minutes)
    measured = rows.dropna(subset=["actual_kw"])
    reduction = float(measured["reduction_kw"].mean()) if len(measured) else None
    achievement = reduction / request.target_kw if reduction is not None else None
    intervals = []
    for ts, row in rows.iterrows():
        co2 = carbon_rows.loc[ts]
        seen = pd.notna(row["actual_kw"])
        intervals.append(MeasureInterval(
            timestamp=ts.tz_convert(tz).to_pydatetime(), baseline_kw=float(row["baseline_kw"]),
            baseline_p10_kw=_opt(base.loc[ts], "baseline_p10_kw"),
            baseline_p90_kw=_opt(base.loc[ts], "baseline_p90_kw"),
            actual_kw=_none(row["actual_kw"]), coverage=_none(coverage.loc[ts]),
            reduction_kw=_none(row["reduction_kw"]), achievement=_none(row["achievement"]),
            emission_factor_kg_per_kwh=float(co2["emission_factor_kg_per_kwh"]),
            **{c: float(co2[c]) if seen else None
               for c in ("reduced_kwh", "increased_kwh", "avoided_co2_kg", "added_co2_kg")}))
    return MeasureResponse(
        customer_id=request.customer_id, site_id=request.site_id, method=details.method,
        target_kw=request.target_kw, n_intervals=len(rows), n_measured=len(measured),
        reduction_kw=reduction, achievement=achievement,
        on_track=bool(achievement is not None and achievement >= rule.min_achievement_ratio),
        notes=list(details.notes), intervals=intervals, **carbon)


def _none(value) -> float | None:
    return None if value is None or (isinstance(value, float) and np.isnan(value)) or pd.isna(
        value) else float(value)


__all__ = ["BaselinePoint", "BaselineRequest", "BaselineResponse", "MeasureInterval",
           "MeasureRequest", "MeasureResponse", "Reading", "check_readings", "handle_baseline",
           "handle_measure"]
