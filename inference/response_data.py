"""What a response-likelihood answer needs at request time: the portfolio's settled events,
resources and metered loads (``ResponseData``), the features of events, each customer's
Beta-shrunk historical rate as known at a notice time, and the registered champion.

Training (``pipelines.response_core``) and the API (``serving.response_api``) both build on
these, so the features a model is fitted on are the features it is asked with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from forecasting.errors import DataError
from forecasting.portfolio import Portfolio
from forecasting.resource_events import read_resource_events
from forecasting.settlement import SettlementRule
from models.response import ResponseLikelihood, historical_rate
from models.response_features import achievement, event_features

REGISTERED_NAME = "response-likelihood"


@dataclass
class ResponseData:
    """What the response model needs of a portfolio (timestamps tz-aware)."""

    events: pd.DataFrame
    timezone: str
    holiday_country: str | None = "CN"
    resources: pd.DataFrame | None = None
    loads_kw: dict[str, pd.Series] = field(default_factory=dict)
    name: str = "portfolio"
    resource_events: pd.DataFrame | None = None  # optional resource_events.csv


def response_data(source: Portfolio | Mapping) -> ResponseData:
    """``ResponseData`` of a ``Portfolio``, or of a mapping with keys ``events``,
    ``timezone`` and optional ``holiday_country``, ``resources``, ``loads_kw``, ``name``."""
    if isinstance(source, ResponseData):
        return source
    if isinstance(source, Portfolio):
        if source.events is None or source.events.empty:
            raise DataError(f"{source.source}: no events.csv (or no rows); the response "
                            "likelihood learns from settled demand-response events")
        customers = set(source.events["customer_id"].astype(str))
        sites = [s for s in source.sites_of_kind("load") if s.customer_id in customers]
        if not sites:
            raise DataError(f"{source.source}: no load site in sites.csv belongs to the "
                            "customers of events.csv (column customer_id)")
        zones = {s.timezone for s in sites}
        countries = {s.holiday_country for s in sites}
        if len(zones) > 1 or len(countries) > 1:
            raise DataError(f"{source.source}: the customers' load sites span several "
                            f"timezones or holiday countries ({', '.join(sorted(zones))}; "
                            f"{', '.join(sorted(map(str, countries)))}); train one at a time")
        return ResponseData(events=source.events, timezone=zones.pop(),
                            holiday_country=countries.pop(),
                            resources=source.resources if not source.resources.empty else None,
                            loads_kw=source.customer_loads(), name=source.source.name,
                            resource_events=read_resource_events(
                                source.source, source.events, source.resources))
    missing = [k for k in ("events", "timezone") if k not in source]
    if missing:
        raise DataError(f"frames lack {', '.join(missing)}; give events and timezone (and "
                        "optionally holiday_country, resources, loads_kw)")
    return ResponseData(events=source["events"], timezone=source["timezone"],
                        holiday_country=source.get("holiday_country", "CN"),
                        resources=source.get("resources"),
                        loads_kw=dict(source.get("loads_kw") or {}),
                        name=source.get("name", "frames"),
                        resource_events=source.get("resource_events"))


def build_features(data: ResponseData, rule: SettlementRule,
                   events: pd.DataFrame | None = None) -> pd.DataFrame:
    """``event_features`` of ``events`` (default: the data's events)."""
    return event_features(data.events if events is None else events, data.loads_kw or None,
                          data.resources, timezone=data.timezone,
                          holiday_country=data.holiday_country,
                          min_achievement_ratio=rule.min_achievement_ratio)


def historical_as_of(events: pd.DataFrame, rows: pd.DataFrame, rule: SettlementRule,
                     prior_strength: float) -> pd.DataFrame:
    """``historical_rate`` for each row of ``rows`` (index event_id, customer_id; column
    ``notice_time``) from the events that had ended by that row's notice."""
    ends = pd.to_datetime(events["end"]).dt.tz_convert("UTC")
    out = pd.DataFrame(np.nan, index=rows.index, columns=["p_deliver", "expected_achievement"])
    for notice, group in rows.groupby("notice_time"):
        known = events[(ends <= notice).to_numpy()]
        customers = group.index.get_level_values("customer_id")
        if known.empty or not np.isfinite(achievement(known).to_numpy()).any():
            continue
        rate = historical_rate(known, rule, prior_strength, customers=customers)
        out.loc[group.index, "p_deliver"] = rate.loc[customers, "p_deliver"].to_numpy()
        out.loc[group.index, "expected_achievement"] = rate.loc[
            customers, "expected_achievement"].to_numpy()
    return out



class Champion(NamedTuple):
    model: ResponseLikelihood
    version: str
    resource_model: ResponseLikelihood | None = None  # per-resource likelihood
    resource_method: str | None = None  # resource_model or resource_historical_rate
