"""Per-resource response likelihood in the pipeline: fit and score the resource-level model
beside the customer-level one, and answer per resource with the level that answered
(``models.response_resources``).

The resource model is the same ``ResponseLikelihood`` configuration fitted on the
``resource_events`` rows (each resource as a customer of its own), split at the same event
as the customer model: a scoring fit on the earlier events scored on the held-out ones
(beside each resource's Beta-shrunk historical rate), and a final fit on every settled
resource row, registered inside the same ``response-likelihood`` model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.errors import InsufficientDataError
from forecasting.settlement import SettlementRule
from models.response import ResponseLikelihood
from models.response_features import achievement
from models.response_metrics import brier_skill, probability_metrics, truth_metrics
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


@dataclass
class ResourceFit:
    scoring_model: ResponseLikelihood
    model: ResponseLikelihood  # final fit, registered with the customer model
    predictions: pd.DataFrame  # held-out resource rows
    metrics: dict[str, dict[str, float]]
    method: str = "resource_model"  # what answers at resource level: the better held-out Brier

    @property
    def served_model(self) -> ResponseLikelihood | None:
        """The model registered for the resource level (None when the resources' historical
        rate scored better)."""
        return self.model if self.method == "resource_model" else None


def resource_data(data):
    """The ``ResponseData`` of the resources settled on their own (None without any)."""
    from pipelines.response_core import ResponseData

    if data.resource_events is None or data.resource_events.empty or data.resources is None:
        return None
    return ResponseData(events=pseudo_events(data.events, data.resource_events),
                        timezone=data.timezone, holiday_country=data.holiday_country,
                        resources=pseudo_resources(data.resources),
                        loads_kw=pseudo_loads(data.loads_kw, data.resources),
                        name=f"{data.name} (resources)")


def fit_resource_models(data, rule: SettlementRule, config, test_start: pd.Timestamp,
                        truth: pd.DataFrame | None = None) -> ResourceFit | None:
    """Scoring and final fits of the resource model (None, logged, when the resource rows
    are too few or of one class)."""
    from pipelines.response_core import build_features, historical_as_of

    rdata = resource_data(data)
    if rdata is None:
        return None
    features = build_features(rdata, rule)
    y = achievement(rdata.events).reindex(features.index)
    labelled = np.isfinite(y.to_numpy())
    test = (features["start"] >= test_start).to_numpy()
    try:
        scoring = config.model(rule).fit(features[~test], y[~test].to_numpy())
        final = config.model(rule).fit(features[labelled], y[labelled].to_numpy())
    except InsufficientDataError as err:
        log.warning("no resource-level model: %s", err)
        return None
    held = test & labelled
    x_test, y_test = features[held], y[held]
    delivered = y_test.to_numpy() >= rule.min_achievement_ratio
    pred = scoring.predict(x_test)
    base_p = float(np.mean(y[~test & labelled].to_numpy() >= rule.min_achievement_ratio))
    hist = historical_as_of(rdata.events, x_test, rule, config.prior_strength).fillna(
        {"p_deliver": base_p, "expected_achievement": float(np.nanmean(y[~test]))})
    table = pd.DataFrame({
        "achievement": y_test.to_numpy(), "delivered": delivered,
        "resource_model_p_deliver": pred["p_deliver"],
        "resource_model_expected_achievement": pred["expected_achievement"],
        "resource_historical_rate_p_deliver": hist["p_deliver"],
        "resource_historical_rate_expected_achievement": hist["expected_achievement"],
    }, index=x_test.index.set_names(["event_id", "resource_id"]))
    metrics = {m: probability_metrics(delivered, table[f"{m}_p_deliver"], table["achievement"],
                                      table[f"{m}_expected_achievement"])
               for m in RESOURCE_METHODS} if len(table) else {}
    if metrics:
        reference = metrics["resource_historical_rate"]["brier"]
        for m in RESOURCE_METHODS:
            metrics[m]["brier_skill"] = brier_skill(metrics[m]["brier"], reference)
    if truth is not None and metrics and "level" in truth:
        rows = truth[truth["level"] == "resource"]
        p_true = pd.Series(rows["p_deliver_true"].to_numpy(float), index=pd.MultiIndex.from_frame(
            rows[["event_id", "resource_id"]].astype(str)))
        table["p_true"] = p_true.reindex(table.index).to_numpy()
        for m in RESOURCE_METHODS:
            metrics[m].update(truth_metrics(table[f"{m}_p_deliver"], table["p_true"]))
    method = "resource_model"
    if metrics and (metrics["resource_historical_rate"]["brier"]
                    < metrics["resource_model"]["brier"]):
        method = "resource_historical_rate"
        log.info("resource level: the resources' historical rate scored better than the "
                 "resource model (Brier %.4f < %.4f); it answers",
                 metrics["resource_historical_rate"]["brier"],
                 metrics["resource_model"]["brier"])
    return ResourceFit(scoring, final, table, metrics, method)


def predict_resources(data, rows: pd.DataFrame, customer: pd.DataFrame, rule: SettlementRule,
                      champion, prior_strength: float = 5.0) -> pd.DataFrame:
    """Likelihood per resource of each customer of ``rows`` (events.csv rows): the level
    that answered and why (``models.response_resources``). ``customer``: the customer-level
    answer (``predict_rows``), used where a resource falls back.

    Columns: event_id, customer_id, resource_id, target_kw, p_deliver, expected_achievement,
    level, fallback_reason, source.
    """
    from pipelines.response_core import REGISTERED_NAME, build_features, historical_as_of

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
