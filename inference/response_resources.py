"""Per-resource response likelihood at request time: answer per resource with the level
that answered (``models.response_resources``); the fits are ``pipelines.response_resources``.

The resource model is the same ``ResponseLikelihood`` configuration fitted on the
``resource_events`` rows (each resource as a customer of its own), split at the same event
as the customer model: a scoring fit on the earlier events scored on the held-out ones
(beside each resource's Beta-shrunk historical rate), and a final fit on every settled
resource row, registered inside the same ``response-likelihood`` model.
"""

from __future__ import annotations

import logging

import pandas as pd

from forecasting.settlement import SettlementRule
from inference.response_data import REGISTERED_NAME, ResponseData, build_features, historical_as_of
from models.response_resources import (
    pseudo_events,
    pseudo_loads,
    pseudo_resources,
    resource_level,
    settled_counts,
    split_rows,
)

log = logging.getLogger(__name__)

RESOURCE_METHODS = ("resource_model", "resource_historical_rate")


def resource_data(data):
    """The ``ResponseData`` of the resources settled on their own (None without any)."""
    if data.resource_events is None or data.resource_events.empty or data.resources is None:
        return None
    return ResponseData(events=pseudo_events(data.events, data.resource_events),
                        timezone=data.timezone, holiday_country=data.holiday_country,
                        resources=pseudo_resources(data.resources),
                        loads_kw=pseudo_loads(data.loads_kw, data.resources),
                        name=f"{data.name} (resources)")


def predict_resources(data, rows: pd.DataFrame, customer: pd.DataFrame, rule: SettlementRule,
                      champion, prior_strength: float = 5.0) -> pd.DataFrame:
    """Likelihood per resource of each customer of ``rows`` (events.csv rows): the level
    that answered and why (``models.response_resources``). ``customer``: the customer-level
    answer (``predict_rows``), used where a resource falls back.

    Columns: event_id, customer_id, resource_id, target_kw, p_deliver, expected_achievement,
    level, fallback_reason, source.
    """
    columns = ["event_id", "customer_id", "resource_id", "target_kw", "p_deliver",
               "expected_achievement", "level", "fallback_reason", "source"]
    if data.resources is None or data.resources.empty:
        return pd.DataFrame(columns=columns)
    split = split_rows(rows, data.resources)
    if split.empty:
        return pd.DataFrame(columns=columns)
    settled_customers = (set(data.resource_events["customer_id"].astype(str))
                         if data.resource_events is not None else set())
    resource_model = getattr(champion, "resource_model", None) if champion else None
    method = (getattr(champion, "resource_method", None) if champion else None)
    rdata = resource_data(data)
    has_model = rdata is not None and (champion is None or resource_model is not None
                                       or method == "resource_historical_rate")
    notice = pd.to_datetime(split["notice_time"], utc=True)
    counts = (settled_counts(rdata.events, pd.Series(notice.to_numpy(),
                                                     index=split["customer_id"]))
              if rdata is not None else pd.Series(dtype=int))
    levels = resource_level(split["customer_id"], split["owner_id"], settled_customers,
                            has_model, counts)
    cust = customer.reset_index()
    cust = cust.assign(event_id=cust["event_id"].astype(str),
                       customer_id=cust["customer_id"].astype(str))
    keyed = pd.DataFrame({"event_id": split["event_id"].astype(str),
                          "customer_id": split["owner_id"].astype(str)}).merge(
        cust[["event_id", "customer_id", "p_deliver", "expected_achievement", "source"]],
        on=["event_id", "customer_id"], how="left")
    out = pd.DataFrame({
        "event_id": keyed["event_id"], "customer_id": keyed["customer_id"],
        "resource_id": split["customer_id"], "target_kw": split["target_kw"].round(1),
        "p_deliver": keyed["p_deliver"].to_numpy(),
        "expected_achievement": keyed["expected_achievement"].to_numpy(),
        "level": levels["level"], "fallback_reason": levels["fallback_reason"],
        "source": keyed["source"].to_numpy()})
    answer = (out["level"] == "resource").to_numpy()
    if answer.any():
        wanted = split[answer]
        keys = set(zip(wanted["event_id"].astype(str), wanted["customer_id"], strict=True))
        known = rdata.events[[(str(e), str(c)) not in keys for e, c in
                              zip(rdata.events["event_id"], rdata.events["customer_id"],
                                  strict=True)]]
        combined = pd.concat([known, wanted[[c for c in wanted.columns
                                             if c in known.columns]]], ignore_index=True)
        features = build_features(rdata, rule, combined)
        features = features.loc[pd.MultiIndex.from_frame(
            wanted[["event_id", "customer_id"]].astype(str))]
        if resource_model is not None:
            pred = resource_model.predict(features)
            source = f"{REGISTERED_NAME}/{champion.version} (resource model)"
        else:
            pred = historical_as_of(known, features, rule, prior_strength)
            source = ("historical_rate (resource)" if champion is None else
                      f"{REGISTERED_NAME}/{champion.version}: historical_rate (resource; "
                      "scored better than the resource model)")
        out.loc[answer, "p_deliver"] = pred["p_deliver"].to_numpy()
        out.loc[answer, "expected_achievement"] = pred["expected_achievement"].to_numpy()
        out.loc[answer, "source"] = source
    return out[columns]
