"""Per-resource response likelihood in the training pipeline: fit and score the
resource-level model beside the customer-level one (``models.response_resources``).

The resource model is the same ``ResponseLikelihood`` configuration fitted on the
``resource_events`` rows (each resource as a customer of its own), split at the same event
as the customer model: a scoring fit on the earlier events scored on the held-out ones
(beside each resource's Beta-shrunk historical rate), and a final fit on every settled
resource row, registered inside the same ``response-likelihood`` model. What answers per
resource at request time is ``inference.response_resources``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.errors import InsufficientDataError
from forecasting.settlement import SettlementRule
from inference.response_data import build_features, historical_as_of
from inference.response_resources import RESOURCE_METHODS, resource_data
from models.response import ResponseLikelihood
from models.response_features import achievement
from models.response_metrics import brier_skill, probability_metrics, truth_metrics

log = logging.getLogger(__name__)


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


def fit_resource_models(data, rule: SettlementRule, config, test_start: pd.Timestamp,
                        truth: pd.DataFrame | None = None) -> ResourceFit | None:
    """Scoring and final fits of the resource model (None, logged, when the resource rows
    are too few or of one class)."""
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
