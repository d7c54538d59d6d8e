"""Bidding decision support on a portfolio: the I/O around ``models.capacity`` and
``models.bidding``, shared by ``vpp capacity``/``vpp bid`` (``pipelines.cli_bid``) and the
service's ``POST /capacity`` and ``POST /bid/capacity`` (``serving.bid_api``).

- ``load_quantiles``: each customer's load P10/P50/P90 for the window as known at the notice
  time: the sum of the registered champions of its load sites (sites.csv ``customer_id``)
  through ``inference.forecast.forecast_site``, issued at the notice; where a site has no
  champion, the customer's similar-days rule baseline on its readings before the notice
  (``models.capacity.rule_baseline_quantiles``). The ``source`` column says which. Several
  sites' quantiles are added (exact when their loads move together).
- ``portfolio_capacity`` and ``portfolio_bid``: the library calls on a portfolio.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from forecasting.errors import DataError, ModelNotFoundError

QUANTILES = (0.1, 0.5, 0.9)


def _customers_with_resources(portfolio, customers: list[str] | None) -> list[str]:
    resources = portfolio.resources
    if resources is None or resources.empty:
        raise DataError(f"{portfolio.source}: no resources.csv; capacity and bids need the "
                        "controllable resources behind each customer (DATA_FORMAT.md)")
    known = sorted(resources["customer_id"].astype(str).unique())
    if not customers:
        return known
    from forecasting.errors import UnknownSiteError
    from models.dispatch_eligibility import shorten

    unknown = sorted(set(customers) - set(known))
    if unknown:
        raise UnknownSiteError(f"no resources for customer(s) {unknown}; customers with "
                               f"resources: {shorten(known, 10)}")
    return sorted(set(customers))


def load_quantiles(portfolio, start, end, notice_time, customers: list[str] | None = None,
                   registry=None) -> pd.DataFrame:
    """Each customer's load P10/P50/P90 (kW) over [start, end) as known at ``notice_time``.

    Returns ``customer_id``, ``timestamp`` (UTC), ``q0.1``, ``q0.5``, ``q0.9``, ``source``
    (module doc). ``customers``: default every customer with resources. Raises
    ``MissingForecastError`` for a customer without a load site in sites.csv.
    """
    from inference.forecast import forecast_site
    from inference.registry import ModelRegistry
    from models.capacity import MissingForecastError, rule_baseline_quantiles

    chosen = _customers_with_resources(portfolio, customers)
    registry = registry or ModelRegistry()
    columns = [f"q{q:g}" for q in QUANTILES]
    frames = []
    for cid in chosen:
        sites = [s for s in portfolio.sites.values()
                 if s.kind == "load" and s.customer_id == cid]
        if not sites:
            raise MissingForecastError(
                f"customer {cid} has resources but no load site in sites.csv (customer_id), so "
                "its load in the window cannot be forecast; declare its load site or leave it "
                "out with --customers / customers")
        parts, versions, missing = [], [], None
        for site in sites:
            try:
                out = forecast_site(portfolio, "load", site.site_id, notice_time, start, end,
                                    quantiles=list(QUANTILES), registry=registry)
            except ModelNotFoundError:
                missing = site.site_id
                break
            parts.append(out.set_index("timestamp")[columns])
            versions.append(str(out["model_version"].iloc[0]))
        if missing is None:
            total = sum(parts[1:], parts[0])
            source = f"champion {', '.join(versions)} issued at the notice"
        else:
            load, _ = portfolio.customer_load(cid)
            site = sites[0]
            total = rule_baseline_quantiles(
                load, timezone=site.timezone, holiday_country=site.holiday_country,
                event_days=portfolio.customer_event_days(cid, site.timezone), start=start,
                end=end, notice_time=notice_time, customer_id=cid)
            source = (f"rule baseline similar_days (no champion for load-{missing}): P50 the "
                      "pool mean, P10/P90 the pool days' spread")
        frame = total.rename_axis("timestamp").reset_index()
        frame.insert(0, "customer_id", cid)
        frame["source"] = source
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def portfolio_capacity(portfolio, start, end, notice_time, customers: list[str] | None = None,
                       allow_approval: bool = False, load_forecast=None):
    """``models.capacity.available_capacity`` on a portfolio; ``load_forecast(portfolio,
    start, end, notice_time, customers)`` gives the load quantiles (default
    ``load_quantiles`` with the registry of ``MLFLOW_TRACKING_URI``)."""
    from models.capacity import available_capacity

    chosen = _customers_with_resources(portfolio, customers)
    load = (load_forecast or load_quantiles)(portfolio, start, end, notice_time, chosen)
    return available_capacity(portfolio.resources, load, start, end, notice_time,
                              allow_approval=allow_approval, customers=chosen)


@dataclass
class PortfolioBid:
    """What ``portfolio_bid`` answers: the advice, the capacity it was capped by, and the
    correlation estimate it used."""

    advice: object  # models.bidding.BidAdvice
    capacity: object  # models.capacity.CapacityForecast
    correlation: object  # models.correlation.CorrelationEstimate (or the given rho)
    load_quantile: str


def portfolio_bid(portfolio, market: str, start, end, notice_time, confidence: float, *,
                  customers: list[str] | None = None, load_quantile: str = "p50",
                  correlation: float | None = None, tariff=None, rule=None, options=None,
                  load_forecast=None) -> PortfolioBid:
    """Bid advice for a portfolio: reliability per customer from events.csv (ended by the
    notice, Beta-shrunk), the common-factor rho estimated from the same events unless
    ``correlation`` is given, each customer's headroom = its capacity at ``load_quantile``
    (``p10`` pessimistic, ``p50``, ``p90``)."""
    from forecasting.settlement import SettlementRule
    from models.bidding import BidOptions, bid_advice, check_confidence, check_market
    from models.capacity import check_quantile
    from models.correlation import CorrelationEstimate, estimate_correlation
    from models.dispatch import historical_reliability

    check_confidence(confidence)
    check_market(market, tariff)
    check_quantile(load_quantile)
    rule = rule or SettlementRule()
    options = options or BidOptions()
    capacity = portfolio_capacity(portfolio, start, end, notice_time, customers,
                                  options.allow_approval, load_forecast)
    notice = pd.Timestamp(notice_time)
    reliability = historical_reliability(portfolio.events, rule, before=notice)
    if correlation is None:
        estimate = estimate_correlation(portfolio.events, rule, before=notice)
    else:
        estimate = CorrelationEstimate(float(correlation), 0, 0, 0, float("nan"),
                                       "given by the caller")
    chosen = set(capacity.by_customer["customer_id"])
    resources = portfolio.resources[portfolio.resources["customer_id"].astype(str).isin(chosen)]
    advice = bid_advice(resources, market, start, end, notice_time, confidence,
                        reliability=reliability, headroom_kw=capacity.headroom_kw(load_quantile),
                        correlation=estimate.rho, tariff=tariff, rule=rule, options=options)
    return PortfolioBid(advice, capacity, estimate, load_quantile)
