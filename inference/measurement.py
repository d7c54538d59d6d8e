"""Measuring a demand-response event of a portfolio: baselines, reductions, settlement.

``measure_event(portfolio, event_id, method)`` reads the event's rows (one per customer) from
events.csv, computes each customer's baseline from the readings before the event (rules) or
from a pooled ML model trained on the days before it, compares it with the metered load
and settles it with a ``forecasting.settlement.SettlementRule``.

``baseline_for_customer`` and ``choose_method`` are the pieces the serving layer reuses.

``method='auto'`` picks, per customer, the candidate with the lowest CV(RMSE) on *placebo
windows*: the same local clock window on the customer's latest ``AUTO_PLACEBO_DAYS``
non-event days of the event day's pool before the event. The ML model used for that and
for the event itself is trained on readings up to 21 days before the event, and when it is
a candidate only placebo days after its training end are scored (at least
``MIN_AUTO_WINDOWS``, else ML is left out), so its score is out of sample. The scores are
reported with the result.

Emissions (``forecasting.carbon``): every interval's reduction in kWh times the grid
emission factor of the customer's sites (``emission_factors``: default the portfolio's
optional ``emission_factors.csv`` over the national average); each customer's and the
portfolio's ``reduced_kwh``, ``increased_kwh``, ``avoided_co2_kg``, ``added_co2_kg``,
``net_avoided_co2_kg``, the mean factor used and its source.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.carbon import (
    EmissionFactors,
    emission_totals,
    interval_emissions,
    mean_factor,
    read_emission_factors,
)
from forecasting.errors import DataError, InsufficientDataError, UnknownValueError
from forecasting.portfolio import Portfolio, as_utc
from forecasting.settlement import (
    SettlementRule,
    interval_means,
    interval_results,
    portfolio_result,
    settle,
)
from models.baselines import SERVED_RULES, BaselineDetails, make_baseline
from models.baselines.common import check_load, check_window, pool_of_day
from models.baselines.ml import MLBaseline

log = logging.getLogger(__name__)

METHOD_CHOICES = ("auto", *SERVED_RULES, "ml")
AUTO_CANDIDATES = ("similar_days", "x_of_y", "ml")
AUTO_PLACEBO_DAYS = 10
AUTO_LOOKBACK_DAYS = 60
MIN_AUTO_WINDOWS = 3


@dataclass
class Measurement:
    """An event measured for each of its customers.

    ``intervals``: one row per customer and interval (UTC ``timestamp``) with ``method``,
    ``baseline_kw`` (and the ML band where the method gives one), ``actual_kw``,
    ``reduction_kw``, ``response_kw``, ``target_kw``, ``achievement`` and the emission columns
    of ``forecasting.carbon.interval_emissions``.
    ``customers``: one row per customer: ``forecasting.settlement.EventResult`` fields, the
    method used, the operator's settled ``actual_kw`` when events.csv has it
    (``operator_actual_kw``), the ``auto`` scores and the emission totals with
    ``emission_factor_kg_per_kwh`` (mean over the measured intervals) and
    ``emission_factor_source``. ``portfolio``: the sum over customers.
    """

    event_id: str
    method: str
    rule: SettlementRule
    intervals: pd.DataFrame
    customers: pd.DataFrame
    portfolio: dict
    failures: dict[str, str] = field(default_factory=dict)


def event_rows(portfolio: Portfolio, event_id: str) -> pd.DataFrame:
    """The rows of ``event_id`` in events.csv (one per customer)."""
    events = portfolio.events
    if events.empty:
        raise DataError(f"{portfolio.source} has no events table (events.csv); nothing to "
                        "measure")
    rows = events[events["event_id"] == event_id]
    if rows.empty:
        known = sorted(events["event_id"].unique())
        shown = ", ".join(known[:8]) + (" ..." if len(known) > 8 else "")
        raise UnknownValueError(f"unknown event {event_id!r} in {portfolio.source}; events "
                                f"there: {shown}")
    return rows.reset_index(drop=True)


def _fit_rule(method: str, load: pd.Series, timezone: str, country, event_days, cid):
    return make_baseline(method).fit(load, timezone=timezone, holiday_country=country,
                                     event_days=event_days, customer_id=cid)


def placebo_windows(load: pd.Series, timezone: str, holiday_country, event_days,
                    start: pd.Timestamp, end: pd.Timestamp, notice: pd.Timestamp,
                    n_days: int = AUTO_PLACEBO_DAYS,
                    lookback_days: int = AUTO_LOOKBACK_DAYS) -> list[tuple]:
    """The event's clock window on the latest ``n_days`` complete non-event days of its pool.

    Returns ``(start, end, notice)`` tuples (UTC), most recent first; notice keeps its lead.
    """
    day = start.tz_convert(timezone).date()
    pool = pool_of_day(day, holiday_country)
    local_start = start.tz_convert(timezone).tz_localize(None)
    length, lead = end - start, start - notice
    out = []
    for k in range(1, lookback_days + 1):
        d = day - dt.timedelta(days=k)
        if d in event_days or pool_of_day(d, holiday_country) != pool:
            continue
        s = (local_start - pd.Timedelta(days=k)).tz_localize(timezone,
                                                             nonexistent="shift_forward",
                                                             ambiguous=False).tz_convert("UTC")
        window = load[(load.index >= s) & (load.index < s + length)]
        if window.empty or window.isna().any():
            continue
        out.append((s, s + length, s - lead))
        if len(out) == n_days:
            break
    return out


def choose_method(load: pd.Series, models: Mapping[str, object], windows: list[tuple],
                  customer_id: str | None = None) -> tuple[str, dict[str, float]]:
    """The candidate with the lowest CV(RMSE) over ``windows`` (see module doc).

    ``models``: method name -> fitted baseline (an ``MLBaseline`` is called with
    ``customer_id``). Candidates that fail on every window are left out; ties go to the
    first in ``models``' order.
    """
    if not windows:
        raise InsufficientDataError(
            f"customer {customer_id}: no placebo day to choose a method on; pass a method "
            "(e.g. similar_days) instead of auto")
    scores: dict[str, float] = {}
    for name, model in models.items():
        errs, acts = [], []
        for s, e, n in windows:
            kwargs = {"customer_id": customer_id} if isinstance(model, MLBaseline) else {}
            try:
                frame = model.predict(s, e, n, **kwargs)
            except DataError:
                continue
            actual = load.reindex(frame.index)
            errs.append(frame["baseline_kw"].to_numpy() - actual.to_numpy())
            acts.append(actual.to_numpy())
        if errs:
            err, act = np.concatenate(errs), np.concatenate(acts)
            ok = ~np.isnan(err)
            scores[name] = float(np.sqrt(np.mean(err[ok] ** 2)) / abs(np.mean(act[ok])))
    if not scores:
        raise InsufficientDataError(f"customer {customer_id}: no candidate method could "
                                    "compute a baseline on the placebo days")
    best = min(scores, key=lambda m: (scores[m], list(models).index(m)))
    return best, scores


def baseline_for_customer(load: pd.Series, *, timezone: str, holiday_country,
                          event_days, start, end, notice_time=None, method: str = "auto",
                          customer_id: str | None = None, ml_model: MLBaseline | None = None,
                          candidates: tuple[str, ...] = AUTO_CANDIDATES
                          ) -> tuple[BaselineDetails, dict[str, float]]:
    """Baseline of one customer for one window, by ``method`` or chosen by ``auto``.

    ``ml_model``: a fitted ``MLBaseline`` that knows ``customer_id`` (needed for ``ml``;
    for ``auto`` it joins the candidates when given). Returns the details and the ``auto``
    scores (empty for a fixed method).
    """
    if method not in METHOD_CHOICES:
        raise UnknownValueError(f"unknown method {method!r}, expected one of "
                                f"{list(METHOD_CHOICES)}")
    s, e, n = check_window(start, end, notice_time)
    load, _ = check_load(load, f"load of customer {customer_id}")
    if method == "ml":
        if ml_model is None:
            from forecasting.errors import ModelNotFoundError

            raise ModelNotFoundError(f"no ML baseline model for customer {customer_id}; train "
                                     "one (vpp baseline-train) or choose a rule method")
        return ml_model.predict_details(s, e, n, customer_id=customer_id), {}
    if method != "auto":
        model = _fit_rule(method, load, timezone, holiday_country, event_days, customer_id)
        return model.predict_details(s, e, n), {}
    models: dict[str, object] = {}
    for m in candidates:
        if m == "ml":
            if ml_model is not None and customer_id in getattr(ml_model, "customers_", {}):
                models[m] = ml_model
        else:
            models[m] = _fit_rule(m, load, timezone, holiday_country, event_days, customer_id)
    windows = placebo_windows(load, timezone, holiday_country, frozenset(event_days), s, e, n)
    if "ml" in models and ml_model.train_end_ is not None:
        # score the ML model out of sample only: on placebo days after its training end
        later = [w for w in windows if w[0] >= ml_model.train_end_]
        if len(later) >= MIN_AUTO_WINDOWS:
            windows = later
        else:
            models.pop("ml")
    best, scores = choose_method(load, models, windows, customer_id)
    model = models[best]
    kwargs = {"customer_id": customer_id} if isinstance(model, MLBaseline) else {}
    return model.predict_details(s, e, n, **kwargs), scores


def fit_ml_for_event(portfolio: Portfolio, start: pd.Timestamp, train_end: pd.Timestamp,
                     customers: list[str] | None = None, ml_params: dict | None = None
                     ) -> MLBaseline:
    """A pooled ML baseline over the portfolio's customers, trained before ``train_end``.

    All customers train it (pooling helps the small ones); its history reaches the event
    start for the recent-level and day-of features, which mask readings after it.
    """
    from inference.baseline_data import dataset_from_portfolio

    data = dataset_from_portfolio(portfolio, customers)
    loads = {c: s[s.index < start] for c, s in data.loads.items()}
    return MLBaseline(**(ml_params or {})).fit(
        loads, timezone=data.timezone, holiday_country=data.holiday_country,
        event_days=data.event_days, weather=data.weather or None, train_end=train_end)


def portfolio_emission_factors(portfolio: Portfolio, grid_region: str | None = None,
                               override_kg_per_kwh: float | None = None) -> EmissionFactors:
    """The emission factors of a portfolio: its optional ``emission_factors`` table (in its
    directory), then ``grid_region``'s built-in factor, else the national average;
    ``override_kg_per_kwh`` beats them all (``forecasting.carbon``)."""
    table = read_emission_factors(portfolio.source) if Path(portfolio.source).is_dir() else None
    return EmissionFactors(table=table, grid_region=grid_region,
                           override_kg_per_kwh=override_kg_per_kwh)


def customer_emissions(table: pd.DataFrame, factors: EmissionFactors, site_ids: list[str],
                       timezone: str, interval_minutes: float) -> tuple[pd.DataFrame, dict]:
    """``table`` (``interval_results`` rows, UTC index) with the emission columns, and the
    customer's totals with the mean factor of its measured intervals and its source."""
    factor, source = factors.customer_factors(pd.DatetimeIndex(table.index), site_ids,
                                              timezone)
    rows = interval_emissions(table["reduction_kw"], factor.to_numpy(), interval_minutes)
    totals = emission_totals(rows)
    totals["emission_factor_kg_per_kwh"] = mean_factor(rows, table["actual_kw"].notna())
    totals["emission_factor_source"] = source
    return pd.concat([table, rows], axis=1), totals


def measure_event(portfolio: Portfolio, event_id: str, method: str = "auto",
                  rule: SettlementRule | None = None, ml_params: dict | None = None,
                  progress: Callable[[str, int, int], None] | None = None,
                  emission_factors: EmissionFactors | None = None) -> Measurement:
    """Baselines, reductions, settlement and avoided emissions of every customer of
    ``event_id`` (``emission_factors``: default ``portfolio_emission_factors``)."""
    rule = rule or SettlementRule()
    factors = emission_factors or portfolio_emission_factors(portfolio)
    if method not in METHOD_CHOICES:
        raise UnknownValueError(f"unknown method {method!r}, expected one of "
                                f"{list(METHOD_CHOICES)}")
    rows = event_rows(portfolio, event_id)
    first_start = rows["start"].min()
    ml_model = None
    if method in ("ml", "auto"):
        site = next(s for s in portfolio.sites.values() if s.kind == "load" and s.customer_id)
        day = first_start.tz_convert(site.timezone).normalize()
        # auto: train before the placebo days so that their scores are out of sample
        back = 21 if method == "auto" else 0
        train_end = (day - pd.Timedelta(days=back)).tz_convert("UTC")
        if progress:
            progress("training the pooled ML baseline", 0, 1)
        ml_model = fit_ml_for_event(portfolio, first_start, train_end, ml_params=ml_params)
    parts, results, failures = [], [], {}
    for i, ev in enumerate(rows.itertuples()):
        cid = str(ev.customer_id)
        load, sites = portfolio.customer_load(cid)
        tz, country = sites[0].timezone, sites[0].holiday_country
        days = portfolio.customer_event_days(cid, tz)
        try:
            details, scores = baseline_for_customer(
                load, timezone=tz, holiday_country=country, event_days=days, start=ev.start,
                end=ev.end, notice_time=ev.notice_time, method=method, customer_id=cid,
                ml_model=ml_model)
        except InsufficientDataError as err:
            failures[cid] = str(err)
            log.warning("event %s customer %s: %s", event_id, cid, err)
            continue
        frame = details.frame.copy()
        frame["actual_kw"] = load.reindex(frame.index)
        frame = interval_means(frame, rule.interval_minutes)
        width = (frame.index[1] - frame.index[0]) if len(frame) > 1 else pd.Timedelta(
            minutes=rule.interval_minutes)
        table = interval_results(frame["baseline_kw"], frame["actual_kw"], ev.target_kw)
        for col in ("baseline_p10_kw", "baseline_p90_kw"):
            if col in frame:
                table[col] = frame[col]
        table, carbon = customer_emissions(table, factors, [s.site_id for s in sites], tz,
                                           width / pd.Timedelta(minutes=1))
        table.insert(0, "method", details.method)
        table.insert(0, "customer_id", cid)
        parts.append(table.reset_index())
        compensation = getattr(ev, "compensation_cny_per_mw", None)
        result = settle(table, rule, compensation,
                        interval_minutes=width / pd.Timedelta(minutes=1)).to_dict()
        result.update({"customer_id": cid, "method": details.method,
                       "pool_days": ",".join(str(d) for d in details.pool_days),
                       "adjustment": details.adjustment,
                       "auto_scores": ";".join(f"{k}={v:.3f}" for k, v in scores.items()),
                       **carbon})
        operator = getattr(ev, "actual_kw", None)
        if operator is not None and pd.notna(operator):
            result["operator_actual_kw"] = float(operator)
        results.append(result)
        if progress:
            progress("measuring customers", i + 1, len(rows))
    if not results:
        raise InsufficientDataError(
            f"event {event_id}: no customer could be measured ("
            + "; ".join(f"{c}: {m}" for c, m in failures.items()) + ")")
    customers = pd.DataFrame(results)
    lead = ["customer_id", "method", "target_kw", "baseline_kw", "actual_kw", "reduction_kw",
            "achievement", "counts", "paid_achievement", "paid_response_kw", "payment_cny"]
    customers = customers[lead + [c for c in customers.columns if c not in lead]]
    intervals = pd.concat(parts, ignore_index=True)
    total = portfolio_result(customers)
    total.update(emission_totals(customers))
    total["emission_factor_source"] = "; ".join(customers["emission_factor_source"].unique())
    return Measurement(event_id, method, rule, intervals, customers, total, failures)


def event_window(rows: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Earliest start and latest end of an event's rows (UTC)."""
    return as_utc(rows["start"].min(), "start"), as_utc(rows["end"].max(), "end")
