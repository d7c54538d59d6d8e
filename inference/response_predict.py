"""Answers of the response likelihood for events of the portfolio or planned ones, with
what was known at their notice: by the champion, else by the historical rate; and the
reliability per customer of a dispatch instruction."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.errors import DataError
from forecasting.settlement import SettlementRule
from inference.response_data import (
    REGISTERED_NAME,
    Champion,
    ResponseData,
    build_features,
    historical_as_of,
)
from models.response_features import EVENT_COLUMNS


def hypothetical_event(customers: list[str], start, end, notice_time, target_kw: list[float],
                       event_type: str, event_id: str = "hypothetical") -> pd.DataFrame:
    """events.csv rows of an event not (yet) in the portfolio, one per customer.

    ``target_kw``: one value for every customer, or one per customer (kW, reduction > 0).
    """
    from forecasting.contract import EVENT_TYPES
    from forecasting.portfolio import as_utc

    if event_type not in EVENT_TYPES:
        raise DataError(f"unknown event type {event_type!r}, expected one of "
                        f"{', '.join(EVENT_TYPES)}")
    if not customers:
        raise DataError("give at least one customer")
    if len(target_kw) == 1:
        target_kw = list(target_kw) * len(customers)
    if len(target_kw) != len(customers):
        raise DataError(f"{len(target_kw)} target_kw values for {len(customers)} customers; "
                        "give one value or one per customer")
    times = {name: as_utc(v, name) for name, v in
             (("start", start), ("end", end), ("notice_time", notice_time))}
    if not times["notice_time"] <= times["start"] < times["end"]:
        raise DataError("need notice_time <= start < end")
    return pd.DataFrame({"event_id": event_id, "customer_id": [str(c) for c in customers],
                         "event_type": event_type, **{k: [v] * len(customers)
                                                      for k, v in times.items()},
                         "target_kw": [float(t) for t in target_kw],
                         "actual_kw": np.nan})


def predict_rows(data: ResponseData, rows: pd.DataFrame, rule: SettlementRule,
                 champion: Champion | None, prior_strength: float = 5.0) -> pd.DataFrame:
    """``p_deliver`` and ``expected_achievement`` of event ``rows`` (events.csv columns),
    with what was known at their notice; by the champion, else by ``historical_rate``.

    Returns one row per (event_id, customer_id) with a ``source`` column (the model version
    ``response-likelihood/<v>`` or ``historical_rate``).
    """
    keys = set(zip(rows["event_id"].astype(str), rows["customer_id"].astype(str), strict=True))
    others = data.events[[(str(e), str(c)) not in keys for e, c in
                          zip(data.events["event_id"], data.events["customer_id"],
                              strict=True)]]
    combined = pd.concat([others, rows[[c for c in rows.columns if c in data.events.columns
                                        or c in EVENT_COLUMNS]]], ignore_index=True)
    features = build_features(data, rule, combined)
    wanted = pd.MultiIndex.from_frame(rows[["event_id", "customer_id"]].astype(str))
    features = features.loc[wanted]
    if champion is not None:
        out = champion.model.predict(features)
        out["source"] = f"{REGISTERED_NAME}/{champion.version}"
    else:
        out = historical_as_of(others, features, rule, prior_strength)
        out["source"] = "historical_rate"
    return out


def planned_reliability(data: ResponseData, instruction, resources: pd.DataFrame,
                        rule: SettlementRule, champion: Champion | None,
                        event_type: str = "day_ahead") -> pd.DataFrame:
    """Reliability per customer for a dispatch ``instruction`` (``models.dispatch``), from
    the response likelihood: ``p_deliver`` and ``expected_achievement`` indexed by
    ``customer_id`` (``attrs['source']`` says which model answered).

    The likelihood scores a commitment, so each customer with eligible resources is first
    given a share of the target proportional to its eligible capacity (a first guess: the
    plan's split may differ). Customers without eligible resources are left out.
    """
    from models.dispatch_eligibility import eligibility

    table = eligibility(resources, instruction)
    capacity = (table[table["eligible"]].groupby("customer_id")["capacity_kw"].sum()
                .loc[lambda s: s > 0].sort_index())
    if capacity.empty:
        out = pd.DataFrame(columns=["p_deliver", "expected_achievement"])
        out.attrs["source"] = "none"
        return out
    targets = instruction.target_kw * capacity / capacity.sum()
    rows = hypothetical_event([str(c) for c in capacity.index], instruction.start,
                              instruction.end, instruction.notice_time,
                              [float(t) for t in targets], instruction.event_type or event_type,
                              event_id="planned")
    predicted = predict_rows(data, rows, rule, champion).reset_index()
    out = predicted.set_index("customer_id")[["p_deliver", "expected_achievement"]]
    out.attrs["source"] = str(predicted["source"].iloc[0])
    return out
