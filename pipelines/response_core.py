"""The pure core of the response-likelihood pipeline: data, features, held-out split,
references and the two fits, no store (``pipelines.response`` adds MLflow).

``train_response_core``: a portfolio (or its frames) in, fitted ``ResponseLikelihood``
models and held-out scores out. Events are ordered by ``start``; the last
``test_fraction`` (25 %) of the *events* (all their customers together) are held out. Two
fits of the same configuration:

1. the **scoring fit**, on the labelled rows of the earlier events (calibrated on the
   latest ``calibration_fraction`` of those rows), is scored on the held-out ones: these
   scores are the run's ``holdout_*`` metrics and what promotion compares;
2. the **final fit**, on *every* labelled row (all settled events of the data, held-out
   ones included; calibrated the same way, on the latest ``calibration_fraction`` of
   them), is the model registered (and served): a champion never ignores the latest
   settled events.

The scoring fit is scored beside two references on the same rows:

- ``base_rate``: the delivered share of the training rows, for everyone (and their mean
  achievement as the expected achievement);
- ``historical_rate``: ``models.response.historical_rate`` (each customer's Beta-shrunk
  delivered rate) computed, for each held-out row, from the events that had ended by its
  notice time: the same information the model's history features have.

Metrics on the held-out rows (``models.response_metrics``): Brier score, Brier skill over
the historical rate, log loss, ROC AUC, expected calibration error (ECE, 10 equal-width
bins of p) of ``p_deliver`` against delivered = achievement >= threshold, the MAE of
``expected_achievement``; with a ``truth`` frame (synthetic data) also against the true
probability. Where resources are settled separately (``resource_events``) the same is done
per resource (``pipelines.response_resources``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from forecasting.errors import DataError, InsufficientDataError
from forecasting.portfolio import Portfolio
from forecasting.settlement import SettlementRule
from inference.response_data import (  # noqa: F401  (names of the pipeline's data)
    REGISTERED_NAME,
    Champion,
    ResponseData,
    build_features,
    historical_as_of,
    response_data,
)
from models.response import NoLabelsError, ResponseLikelihood
from models.response_features import EVENT_COLUMNS, achievement
from models.response_metrics import brier_skill, probability_metrics, truth_metrics
from pipelines.response_resources import ResourceFit, fit_resource_models

log = logging.getLogger(__name__)

KIND = "response"
METHODS = ("model", "base_rate", "historical_rate")
TRUTH = "truth"  # the generator's true probability, scored like a method (the floor)


class ResponseTrainingConfig(BaseModel):
    """What the response-likelihood pipeline holds out and how the model is fitted."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    test_fraction: float = Field(0.25, gt=0, lt=1, description="latest share of the events "
                                 "(by start) held out for scoring")
    calibration_fraction: float = Field(0.25, gt=0, lt=1, description="latest share of the "
                                        "training rows used to calibrate the classifier")
    isotonic_min_rows: int = Field(1000, ge=2, description="isotonic calibration from this "
                                   "many calibration rows, else Platt (sigmoid); on the "
                                   "sample portfolio's ~300 calibration rows Platt scored "
                                   "better (Brier, ECE vs truth) than isotonic")
    min_labelled_events: int = Field(40, ge=2, description="fewer labelled training rows "
                                     "are refused")
    prior_strength: float = Field(5.0, ge=0, description="Beta prior of historical_rate, "
                                  "pseudo-events")
    n_estimators: int = Field(200, gt=0)
    learning_rate: float = Field(0.03, gt=0, le=1)
    num_leaves: int = Field(7, ge=2)
    max_depth: int = Field(3, ge=1)
    min_child_samples: int = Field(30, ge=1)
    reg_lambda: float = Field(5.0, ge=0)
    seed: int = 0

    def model(self, rule: SettlementRule) -> ResponseLikelihood:
        return ResponseLikelihood(
            threshold=rule.min_achievement_ratio,
            max_paid_achievement_ratio=rule.max_paid_achievement_ratio,
            calibration_fraction=self.calibration_fraction,
            isotonic_min_rows=self.isotonic_min_rows,
            min_labelled_events=self.min_labelled_events, n_estimators=self.n_estimators,
            learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            max_depth=self.max_depth, min_child_samples=self.min_child_samples,
            reg_lambda=self.reg_lambda, random_state=self.seed)


@dataclass
class ResponseTrainResult:
    model: ResponseLikelihood  # the final fit (every labelled row): registered and served
    rule: SettlementRule
    test_start: pd.Timestamp  # start of the first held-out event (UTC)
    n_train_rows: int  # labelled rows of the scoring fit
    n_test_rows: int
    n_test_events: int
    predictions: pd.DataFrame  # held-out rows: labels and every method's predictions
    test_features: pd.DataFrame
    metrics: dict[str, dict[str, float]]  # method -> metric -> value (the scoring fit's)
    fit_seconds: float  # the final fit
    scoring_model: ResponseLikelihood | None = None  # fitted on the earlier events; scored
    scoring_fit_seconds: float = float("nan")
    n_train_events: int = 0  # events with a labelled row in the scoring fit
    n_final_rows: int = 0  # labelled rows of the final fit
    n_final_events: int = 0
    resources: ResourceFit | None = None  # the resource-level model, where settled so


def split_events(features: pd.DataFrame, test_fraction: float) -> tuple[np.ndarray, pd.Timestamp]:
    """Boolean mask of held-out rows: those of the latest ``test_fraction`` of events by
    start (ties: event_id), and the start of the first held-out event."""
    starts = (features.reset_index().groupby("event_id")["start"].min()
              .sort_values(kind="stable"))
    n_test = max(1, math.ceil(test_fraction * len(starts)))
    if n_test >= len(starts):
        raise InsufficientDataError(f"only {len(starts)} events; a held-out test needs more")
    test_ids = set(starts.index[-n_test:])
    mask = features.index.get_level_values("event_id").isin(test_ids)
    return np.asarray(mask), starts.iloc[-n_test]


def train_response_core(source: Portfolio | Mapping | ResponseData,
                        rule: SettlementRule | None = None,
                        config: ResponseTrainingConfig | None = None,
                        truth: pd.DataFrame | None = None) -> ResponseTrainResult:
    """Score a fit on the earlier events on the latest ``test_fraction``, then refit on
    every labelled row (see module doc).

    ``truth``: optional, for evaluation only (synthetic data): rows ``event_id``,
    ``customer_id``, ``p_deliver_true`` (customer level; ``level``/``resource_id`` columns
    are honoured), the generator's true probability of delivering. It never reaches a fit:
    it adds ``p_true`` to the held-out predictions, ``mae_vs_truth``/``ece_vs_truth`` to
    every method's metrics, and a ``truth`` row (the true probability scored as a method:
    the floor of the Brier score).
    """
    rule = rule or SettlementRule()
    config = config or ResponseTrainingConfig()
    data = response_data(source)
    missing = [c for c in EVENT_COLUMNS if c not in data.events.columns]
    if missing:
        raise DataError(f"events lack {', '.join(missing)} (../shared/DATA_FORMAT.md)")
    if "actual_kw" not in data.events or not data.events["actual_kw"].notna().any():
        raise NoLabelsError(f"{data.name}: no event row has a settled actual_kw; the response "
                            "likelihood learns from settled events (events.csv actual_kw)")
    features = build_features(data, rule)
    y = achievement(data.events).reindex(features.index)
    test, test_start = split_events(features, config.test_fraction)
    train = ~test
    labelled = np.isfinite(y.to_numpy())
    t0 = time.perf_counter()
    scoring_model = config.model(rule).fit(features[train], y[train].to_numpy())
    scoring_seconds = time.perf_counter() - t0
    held = test & labelled
    if not held.any():
        raise InsufficientDataError(f"{data.name}: no held-out event row has a settled "
                                    "actual_kw; nothing to score")
    x_test, y_test = features[held], y[held]
    delivered = y_test.to_numpy() >= rule.min_achievement_ratio
    pred = scoring_model.predict(x_test)
    y_train = y[train & labelled].to_numpy()
    base_p = float(np.mean(y_train >= rule.min_achievement_ratio))
    base_a = float(np.clip(np.mean(y_train), 0, rule.max_paid_achievement_ratio))
    hist = historical_as_of(data.events, x_test, rule, config.prior_strength)
    hist = hist.fillna({"p_deliver": base_p, "expected_achievement": base_a})
    table = pd.DataFrame({
        "notice_time": x_test["notice_time"], "start": x_test["start"],
        "achievement": y_test.to_numpy(), "delivered": delivered,
        "model_p_deliver": pred["p_deliver"],
        "model_expected_achievement": pred["expected_achievement"],
        "base_rate_p_deliver": base_p, "base_rate_expected_achievement": base_a,
        "historical_rate_p_deliver": hist["p_deliver"],
        "historical_rate_expected_achievement": hist["expected_achievement"],
    }, index=x_test.index)
    metrics = {m: probability_metrics(delivered, table[f"{m}_p_deliver"], table["achievement"],
                                      table[f"{m}_expected_achievement"]) for m in METHODS}
    reference = metrics["historical_rate"]["brier"]
    for m in METHODS:
        metrics[m]["brier_skill"] = brier_skill(metrics[m]["brier"], reference)
    if truth is not None:
        table["p_true"] = customer_truth(truth).reindex(table.index).to_numpy()
        for m in METHODS:
            metrics[m].update(truth_metrics(table[f"{m}_p_deliver"], table["p_true"]))
        known = table[table["p_true"].notna()]
        metrics[TRUTH] = {
            **probability_metrics(known["delivered"], known["p_true"], known["achievement"],
                                  known["model_expected_achievement"]),
            "mae_achievement": float("nan"), "mae_vs_truth": 0.0, "ece_vs_truth": 0.0,
            "n_truth": float(len(known))}
        metrics[TRUTH]["brier_skill"] = brier_skill(metrics[TRUTH]["brier"], reference)
    # the final fit: every labelled row (unsettled ones carry no label); the estimator
    # orders them by start and calibrates on its own latest slice, as the scoring fit did
    t0 = time.perf_counter()
    model = config.model(rule).fit(features[labelled], y[labelled].to_numpy())
    fit_seconds = time.perf_counter() - t0
    log.info("%s: scored a fit on events starting up to %s on the %d held-out events from "
             "%s; the registered fit uses events starting up to %s", data.name,
             scoring_model.training_window_[1], count_events(table), test_start,
             model.training_window_[1])

    resources = fit_resource_models(data, rule, config, test_start, truth)

    def n_events(mask: np.ndarray) -> int:
        return count_events(features[mask])

    return ResponseTrainResult(
        model=model, rule=rule, test_start=test_start,
        n_train_rows=int((train & labelled).sum()), n_test_rows=int(held.sum()),
        n_test_events=count_events(x_test), predictions=table, test_features=x_test,
        metrics=metrics, fit_seconds=fit_seconds,
        scoring_model=scoring_model, scoring_fit_seconds=scoring_seconds,
        n_train_events=n_events(train & labelled), n_final_rows=int(labelled.sum()),
        n_final_events=n_events(labelled), resources=resources)


def customer_truth(truth: pd.DataFrame) -> pd.Series:
    """``p_deliver_true`` of the customer-level rows of a truth table, indexed by
    (event_id, customer_id)."""
    rows = truth
    if "level" in rows:
        rows = rows[rows["level"] == "customer"]
    index = pd.MultiIndex.from_frame(rows[["event_id", "customer_id"]].astype(str))
    return pd.Series(rows["p_deliver_true"].to_numpy(dtype=float), index=index)


def count_events(rows: pd.DataFrame) -> int:
    """Number of distinct events among (event_id, customer_id) rows."""
    return int(rows.index.get_level_values("event_id").nunique())


def metrics_table(metrics: dict[str, dict[str, float]]) -> pd.DataFrame:
    """One row per method (model, base_rate, historical_rate), one column per metric."""
    frame = pd.DataFrame(metrics).T
    frame.index.name = "method"
    return frame
