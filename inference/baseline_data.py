"""The customers of a portfolio as the baselines see them: each customer's load (the sum
of its load sites, ``Portfolio.customer_load``), its weather and the local dates of its
events, in one time zone and holiday calendar. Built per request by the measurement and
per run by the placebo evaluation and the training of ML baselines.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from forecasting.errors import DataError
from forecasting.portfolio import Portfolio


@dataclass
class EvalDataset:
    """Customers' load (kW, UTC index), their weather and real event days, one zone."""

    name: str
    loads: dict[str, pd.Series]
    timezone: str
    holiday_country: str | None
    weather: dict[str, pd.DataFrame] = field(default_factory=dict)
    event_days: dict[str, frozenset] = field(default_factory=dict)
    notes: str = ""



def dataset_from_portfolio(portfolio: Portfolio, customers: list[str] | None = None,
                           name: str | None = None) -> EvalDataset:
    """An ``EvalDataset`` of a portfolio's customers (load sites grouped by customer_id)."""
    ids = customers or sorted({s.customer_id for s in portfolio.sites.values()
                               if s.kind == "load" and s.customer_id})
    if not ids:
        raise DataError(f"{portfolio.source}: no load site has a customer_id; baselines are "
                        "per customer")
    loads, weather, events = {}, {}, {}
    zones, countries = set(), set()
    for cid in ids:
        load, sites = portfolio.customer_load(cid)
        zones.add(sites[0].timezone)
        countries.add(sites[0].holiday_country)
        loads[cid] = load
        wx = portfolio.site_data(sites[0].site_id).weather
        if not wx.empty and "temp_air_c" in wx:
            weather[cid] = wx
        events[cid] = portfolio.customer_event_days(cid, sites[0].timezone)
    if len(zones) > 1 or len(countries) > 1:
        raise DataError(f"customers span several time zones/holiday calendars {zones} "
                        f"{countries}; evaluate them separately")
    return EvalDataset(name or str(portfolio.source), loads, zones.pop(), countries.pop(),
                       weather, events)
