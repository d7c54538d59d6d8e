"""Capability metrics of measured events, per customer and for the VPP (``vpp capability``,
``POST /capability``).

``capability_core(portfolio, ...)`` picks events (one, those of a customer, those since a
time; by default the latest), builds each invited customer's baseline with the project's
rule baselines (``inference.measurement.baseline_for_customer``, as ``vpp measure`` does
for settlement), and scores the response with ``models.capability``:

- with fine readings (the optional ``event_readings`` table, e.g. 1-minute) each reading
  takes the baseline of the settlement interval it falls in (a 15-minute baseline applies
  to its minutes);
- without them the customer's own measurements (15-minute) serve, and the response time
  has their granularity (the row's ``source`` and the notes say so).

The VPP row adds the customers' baselines and loads per reading at the coarsest width of
its customers (finer readings averaged to it) and scores the sum against the summed target.
The reference of response time and ramp is the event start (the instructed start of the
response).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.errors import DataError, InsufficientDataError, UnknownSiteError
from forecasting.portfolio import Portfolio, as_utc
from inference.measurement import baseline_for_customer, event_rows
from models.capability import CapabilityThresholds, assess, capability_metrics

log = logging.getLogger(__name__)

METHODS = ("similar_days", "x_of_y", "pre_event", "auto")  # auto: the best rule baseline
VPP = "VPP"


@dataclass
class CapabilityReport:
    """One row per event and customer, plus a ``VPP`` row per event with several customers:
    ``models.capability.CapabilityMetrics`` fields, the baseline method, ``source``
    (``event_readings`` or ``measurements``), and per check ``<name>_pass`` and
    ``<name>_margin`` (in the check's unit), ``passed`` (every check)."""

    rows: pd.DataFrame
    thresholds: CapabilityThresholds
    method: str
    notes: list[str] = field(default_factory=list)


def select_events(portfolio: Portfolio, event_ids: list[str] | None = None,
                  customers: list[str] | None = None, since=None, until=None) -> list[str]:
    """Event ids to score, in start order: ``event_ids`` as given (each must exist), else
    the events of ``customers`` starting within [``since``, ``until``); without any of
    them the latest event (of the customers)."""
    events = portfolio.events
    if events.empty:
        raise DataError(f"{portfolio.source} has no events table (events.csv); nothing to "
                        "test")
    if customers:
        known = set(events["customer_id"])
        for c in customers:
            if c not in known:
                portfolio.customer_load(c)  # UnknownSiteError when no site declares it
                raise UnknownSiteError(f"customer {c!r} took part in no event of "
                                       f"{portfolio.source}; nothing to test")
        events = events[events["customer_id"].isin(customers)]
    if event_ids:
        for e in event_ids:
            event_rows(portfolio, e)  # UnknownValueError naming the known events
        chosen = events[events["event_id"].isin(event_ids)]
        if chosen.empty:
            raise UnknownSiteError(f"customers {customers} took part in none of the events "
                                   f"{event_ids}")
        events = chosen
    else:
        if since is not None:
            events = events[events["start"] >= as_utc(since, "since")]
        if until is not None:
            events = events[events["start"] < as_utc(until, "until")]
        if events.empty:
            raise DataError(f"no event of {portfolio.source} starts in the window "
                            f"{since} .. {until}" + (f" for {customers}" if customers else ""))
        if since is None and until is None:
            events = events[events["event_id"] == events.loc[events["start"].idxmax(),
                                                              "event_id"]]
    first = events.groupby("event_id")["start"].min().sort_values(kind="stable")
    return list(first.index)


def _readings(portfolio: Portfolio, event_id: str, customer_id: str) -> pd.Series | None:
    fine = portfolio.event_readings
    if fine.empty:
        return None
    rows = fine[(fine["event_id"] == event_id) & (fine["customer_id"] == customer_id)]
    if rows.empty:
        return None
    return pd.Series(rows["load_kw"].to_numpy(), index=pd.DatetimeIndex(rows["timestamp"]))


def _width_minutes(index: pd.DatetimeIndex, default: float) -> float:
    if len(index) < 2:
        return default
    return float(np.min(np.diff(index.as_unit("ns").asi8)) / 60e9)


def customer_series(portfolio: Portfolio, ev, method: str) -> tuple[pd.DataFrame, float, str,
                                                                    str]:
    """Baseline and actual kW per reading of one events.csv row within its window: the frame
    (``baseline_kw``, ``actual_kw``, UTC index), the width (minutes), the source and the
    baseline method used."""
    cid = str(ev.customer_id)
    load, sites = portfolio.customer_load(cid)
    tz, country = sites[0].timezone, sites[0].holiday_country
    details, _ = baseline_for_customer(
        load, timezone=tz, holiday_country=country,
        event_days=portfolio.customer_event_days(cid, tz), start=ev.start, end=ev.end,
        notice_time=ev.notice_time, method=method, customer_id=cid)
    baseline = details.frame["baseline_kw"].sort_index()
    interval = _width_minutes(baseline.index, sites[0].resolution_minutes)
    fine = _readings(portfolio, str(ev.event_id), cid)
    if fine is not None:
        fine = fine[(fine.index >= ev.start) & (fine.index < ev.end)]
    if fine is not None and len(fine):
        source = "event_readings"
        width = _width_minutes(fine.index, interval)
        frame = pd.DataFrame({"baseline_kw": baseline.reindex(fine.index, method="ffill"),
                              "actual_kw": fine})
    else:
        source, width = "measurements", interval
        frame = pd.DataFrame({"baseline_kw": baseline, "actual_kw": load.reindex(baseline.index)})
    return frame, width, source, details.method


def _row(frame: pd.DataFrame, width: float, ev, target_kw: float,
         thresholds: CapabilityThresholds) -> dict:
    start, end = as_utc(ev.start, "start"), as_utc(ev.end, "end")
    offset = (frame.index - start) / pd.Timedelta(minutes=1)
    response = (frame["baseline_kw"] - frame["actual_kw"]).to_numpy() * np.sign(target_kw)
    metrics = capability_metrics(offset, response, target_kw, width,
                                 (end - start) / pd.Timedelta(minutes=1), thresholds)
    row = metrics.to_dict()
    checks = assess(metrics, thresholds)
    for check in checks:
        row[f"{check.name}_pass"] = check.passed
        row[f"{check.name}_margin"] = check.margin
    row["passed"] = all(c.passed for c in checks)
    return row


def _vpp_frame(parts: list[tuple[pd.DataFrame, float]], start: pd.Timestamp
               ) -> tuple[pd.DataFrame, float]:
    """Customers' baselines and loads summed per reading at the coarsest width."""
    width = max(w for _, w in parts)
    step = pd.Timedelta(minutes=width)
    summed = None
    for frame, _ in parts:
        bins = start + ((frame.index - start) // step) * step
        coarse = frame.groupby(bins).mean()
        summed = coarse if summed is None else summed.add(coarse)  # NaN where one is missing
    return summed.dropna(), width


def event_capability(portfolio: Portfolio, event_id: str, method: str,
                     thresholds: CapabilityThresholds, customers: list[str] | None = None
                     ) -> tuple[list[dict], list[str]]:
    """Rows (customers, then the VPP when more than one) and notes of one event."""
    rows = event_rows(portfolio, event_id)
    if customers:
        rows = rows[rows["customer_id"].isin(customers)]
    out, notes, parts = [], [], []
    for ev in rows.itertuples():
        try:
            frame, width, source, used = customer_series(portfolio, ev, method)
        except InsufficientDataError as err:
            notes.append(f"event {event_id} customer {ev.customer_id}: not scored: {err}")
            log.warning("%s", notes[-1])
            continue
        row = _row(frame, width, ev, float(ev.target_kw), thresholds)
        out.append({"event_id": event_id, "event_type": ev.event_type,
                    "customer_id": str(ev.customer_id), "start": ev.start, "method": used,
                    "source": source, **row})
        parts.append((frame, width))
    if len(parts) > 1:
        first = rows.iloc[0]
        target = float(sum(r["target_kw"] for r in out))
        frame, width = _vpp_frame(parts, as_utc(first["start"], "start"))
        sources = {r["source"] for r in out}
        source = sources.pop() if len(sources) == 1 else "mixed"
        if frame.empty:
            notes.append(f"event {event_id}: no reading common to every customer; no VPP row")
        else:
            out.append({"event_id": event_id, "event_type": first["event_type"],
                        "customer_id": VPP, "start": first["start"], "method": method,
                        "source": source, **_row(frame, width, first, target, thresholds)})
    coarse = sorted({r["customer_id"] for r in out if r["width_minutes"] >= 15})
    if coarse:
        notes.append(f"event {event_id}: {', '.join(coarse)} scored on "
                     f"{max(r['width_minutes'] for r in out):g}-minute readings: response "
                     "time and ramp have that granularity (no event_readings)")
    return out, notes


def capability_core(portfolio: Portfolio, *, event_ids: list[str] | None = None,
                    customers: list[str] | None = None, since=None, until=None,
                    method: str = "similar_days",
                    thresholds: CapabilityThresholds | None = None) -> CapabilityReport:
    """Capability rows of the selected events (``select_events``; see the module doc)."""
    if method not in METHODS:
        raise DataError(f"unknown baseline method {method!r} for capability metrics, "
                        f"expected one of {list(METHODS)} (auto chooses among the rules)")
    thresholds = thresholds or CapabilityThresholds()
    chosen = select_events(portfolio, event_ids, customers, since, until)
    rows, notes = [], []
    if since is None and until is None and not event_ids:
        notes.append(f"no event, window or --since given: the latest event ({chosen[0]})")
    for event_id in chosen:
        r, n = event_capability(portfolio, event_id, method, thresholds, customers)
        rows += r
        notes += n
    if not rows:
        raise InsufficientDataError("no customer of the selected events could be scored: "
                                    + "; ".join(notes))
    frame = pd.DataFrame(rows)
    return CapabilityReport(frame, thresholds, method, notes)

