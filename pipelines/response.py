"""Training the response-likelihood model with MLflow tracking and champion/challenger.

Two layers, as ``pipelines.baselines``:

``train_response_core`` is pure: a portfolio (or its frames) in, fitted
``ResponseLikelihood`` models and held-out scores out. Events are ordered by ``start``; the
last ``test_fraction`` (25 %) of the *events* (all their customers together) are held out.
Two fits of the same configuration:

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

Metrics on the held-out rows: Brier score, log loss, ROC AUC, expected calibration error
(ECE, 10 equal-width bins) of ``p_deliver`` against delivered = achievement >= threshold,
and the MAE of ``expected_achievement`` against the achievement.

``log_and_register`` adds MLflow: one run in experiment ``vpp-response`` with params, both
data windows (``scoring_fit_start``/``_end``/``_n_rows``/``_n_events`` and the same for
``final_fit``: first and last ``start`` of the labelled events fitted, UTC; tag
``registered_model`` says the final fit is registered), the held-out metrics of the scoring
fit and of both references, its reliability diagram and held-out predictions, the final
fit's feature importance, and the final model (pyfunc, pinned requirements) registered as
``response-likelihood``. Promotion (``pipelines.tracking.promote``): champion when there is
none or when the scoring fit's held-out Brier score beats the champion's re-scored on the
*same* rows; otherwise challenger.

``load_champion`` returns the champion estimator and its version.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from pydantic import BaseModel, ConfigDict, Field

from forecasting.errors import DataError, InsufficientDataError, ModelNotFoundError
from forecasting.portfolio import Portfolio
from forecasting.resource_events import read_resource_events
from forecasting.settlement import SettlementRule
from models.response import (
    NoLabelsError,
    ResponseLikelihood,
    historical_rate,
)
from models.response_features import EVENT_COLUMNS, FEATURE_DOCS, achievement, event_features
from models.response_metrics import (
    ECE_BINS,
    brier_skill,
    expected_calibration_error,
    probability_metrics,
    reliability_curve,
    truth_metrics,
)
from pipelines.mlflow_model import pip_requirements
from pipelines.response_resources import (  # noqa: F401  (predict_resources re-exported)
    ResourceFit,
    fit_resource_models,
    predict_resources,
)
from pipelines.tracking import (
    CHAMPION,
    champion_version,
    ensure_experiment,
    experiment_name,
    promote,
    tracking_session,
)

log = logging.getLogger(__name__)

KIND = "response"
REGISTERED_NAME = "response-likelihood"
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
class ResponseData:
    """What the response model needs of a portfolio (timestamps tz-aware)."""

    events: pd.DataFrame
    timezone: str
    holiday_country: str | None = "CN"
    resources: pd.DataFrame | None = None
    loads_kw: dict[str, pd.Series] = field(default_factory=dict)
    name: str = "portfolio"
    resource_events: pd.DataFrame | None = None  # optional resource_events.csv


def customer_loads(portfolio: Portfolio) -> dict[str, pd.Series]:
    """Metered load (kW) per customer: the sum of its load sites, indexed by UTC start."""
    out: dict[str, pd.Series] = {}
    m = portfolio.measurements
    for site in portfolio.sites_of_kind("load"):
        if not site.customer_id:
            continue
        rows = m[m["site_id"] == site.site_id]
        series = pd.Series(rows["value_kw"].to_numpy(dtype="float64"),
                           index=pd.DatetimeIndex(rows["timestamp"]))
        previous = out.get(site.customer_id)
        out[site.customer_id] = series if previous is None else previous.add(series,
                                                                             fill_value=0.0)
    return out


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
                            loads_kw=customer_loads(source), name=source.source.name,
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


class ResponsePyfunc(mlflow.pyfunc.PythonModel):
    """pyfunc flavour: feature rows (``event_features`` columns) -> p_deliver,
    expected_achievement. Callers that build features themselves unwrap the estimator:
    ``load_model(...).unwrap_python_model().model``."""

    def __init__(self, model: ResponseLikelihood,
                 resource_model: ResponseLikelihood | None = None,
                 resource_method: str | None = None):
        self.model = model
        self.resource_model = resource_model  # per-resource likelihood, where settled so
        self.resource_method = resource_method  # resource_model, resource_historical_rate

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        del context, params
        return self.model.predict(model_input).reset_index(drop=True)


def reliability_diagram(predictions: pd.DataFrame, title: str, n_bins: int = ECE_BINS):
    """Reliability diagram of the held-out rows, ``n_bins`` equal-width bins of the predicted
    probability: observed delivered rate against mean predicted probability per bin, per
    method; with ``p_true`` in ``predictions`` (the generator's truth) a second panel of the
    mean true probability against the mean predicted one. The histogram of the model's
    probabilities below."""
    from pipelines import plots

    panels = [("delivered", "observed delivered rate")]
    if "p_true" in predictions and predictions["p_true"].notna().any():
        panels.append(("p_true", "mean true probability (generator)"))
    fig, axes = plots.plt.subplots(
        2, len(panels), figsize=(6 * len(panels), 6.5), squeeze=False,
        gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    for col, (reference, label) in enumerate(panels):
        ax, hist_ax = axes[0, col], axes[1, col]
        rows = predictions[predictions[reference].notna()]
        ax.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfectly calibrated")
        for method, marker in zip(METHODS, ("o", "s", "^"), strict=True):
            p = rows[f"{method}_p_deliver"].to_numpy(dtype=float)
            curve = reliability_curve(rows[reference].to_numpy(dtype=float), p, n_bins)
            ece = expected_calibration_error(rows[reference].to_numpy(dtype=float), p, n_bins)
            ax.plot(curve["mean_p"], curve["mean_reference"], marker=marker,
                    label=f"{method} (ECE {ece:.3f})")
        ax.set_ylabel(label)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{title}: vs {'outcomes' if reference == 'delivered' else 'truth'}",
                     fontsize=9)
        ax.legend(loc="upper left", fontsize=8)
        hist_ax.hist(rows["model_p_deliver"], bins=n_bins, range=(0, 1), color="C0")
        hist_ax.set_xlabel(f"predicted p_deliver ({n_bins} equal-width bins)")
        hist_ax.set_ylabel("rows")
    fig.tight_layout()
    return fig


def score_champion(result: ResponseTrainResult) -> dict[str, float] | None:
    """The current champion's metrics re-scored on the challenger's held-out rows.

    The champion is a final fit (every settled event of *its* data), so it may have been
    trained on some of these rows: accepted. The comparison is still on the same rows, but
    it favours the champion when the two were trained on nearly the same events.
    """
    champion = mlflow.pyfunc.load_model(f"models:/{REGISTERED_NAME}@{CHAMPION}")
    model: ResponseLikelihood = champion.unwrap_python_model().model
    pred = model.predict(result.test_features)
    table = result.predictions
    return probability_metrics(table["delivered"], pred["p_deliver"], table["achievement"],
                               pred["expected_achievement"])


def log_and_register(client, data: ResponseData, result: ResponseTrainResult,
                     config: ResponseTrainingConfig) -> dict:
    """Log one training run in ``vpp-response`` and register the model; returns the
    decision (name, version, alias, reason, run_id, metrics)."""
    from pipelines import plots

    exp_id = ensure_experiment(client, experiment_name(KIND))
    previous = champion_version(client, REGISTERED_NAME)
    champion_scores = score_champion(result) if previous is not None else None
    with mlflow.start_run(experiment_id=exp_id, run_name=f"train {REGISTERED_NAME}") as run:
        final, scoring = result.model, result.scoring_model
        mlflow.set_tags({"pipeline": KIND, "dataset": data.name,
                         "scored_against_truth": str("p_true" in result.predictions),
                         "test_start": result.test_start.isoformat(),
                         "calibration": final.calibration_,
                         "registered_model": "final fit on all settled events"})
        mlflow.log_params({**config.model_dump(),
                           **{f"rule_{k}": v for k, v in result.rule.model_dump().items()},
                           "timezone": data.timezone,
                           "holiday_country": str(data.holiday_country),
                           "n_train_rows": result.n_train_rows,
                           "n_test_rows": result.n_test_rows,
                           "n_test_events": result.n_test_events,
                           "n_calibration_rows": final.n_calibration_rows_,
                           "calibration": final.calibration_,
                           "n_features": final.n_features_in_,
                           **_window_params("final_fit", final, result.n_final_rows,
                                            result.n_final_events),
                           **_window_params("scoring_fit", scoring, result.n_train_rows,
                                            result.n_train_events),
                           "scoring_fit_calibration": scoring.calibration_,
                           "scoring_fit_n_calibration_rows": scoring.n_calibration_rows_})
        metrics = {"fit_seconds": result.fit_seconds,
                   "scoring_fit_seconds": result.scoring_fit_seconds}
        for method, scores in result.metrics.items():
            prefix = "holdout_" if method == "model" else f"holdout_{method}_"
            metrics.update({f"{prefix}{k}": float(v) for k, v in scores.items()
                            if np.isfinite(v)})
        if result.resources is not None:
            for method, scores in result.resources.metrics.items():
                metrics.update({f"holdout_{method}_{k}": float(v) for k, v in scores.items()
                                if np.isfinite(v)})
        if champion_scores:
            metrics.update({f"champion_holdout_{k}": float(v)
                            for k, v in champion_scores.items() if np.isfinite(v)})
        mlflow.log_metrics(metrics)
        importance = final.feature_importances()  # of the registered model
        mlflow.log_dict(importance.to_dict(), "metrics/feature_importance.json")
        mlflow.log_dict(FEATURE_DOCS, "metrics/feature_docs.json")
        mlflow.log_table(result.predictions.reset_index().astype(str),
                         "metrics/holdout_predictions.json")
        for fig, path in (
                (reliability_diagram(result.predictions,
                                     f"{REGISTERED_NAME}: held-out reliability"),
                 "plots/reliability_diagram.png"),
                (plots.feature_importance(importance, f"{REGISTERED_NAME}: feature importance"),
                 "plots/feature_importance.png")):
            mlflow.log_figure(fig, path)
            plots.plt.close(fig)
        example = result.test_features[list(final.feature_names_in_)].head(3)
        example = example.reset_index(drop=True)
        resources = result.resources
        wrapped = ResponsePyfunc(final, resources.served_model if resources else None,
                                 resources.method if resources else None)
        if resources is not None:
            mlflow.set_tag("resource_level", resources.method)
        signature = infer_signature(example, wrapped.predict(None, example))
        info = mlflow.pyfunc.log_model(name="model", python_model=wrapped, signature=signature,
                                       input_example=example,
                                       pip_requirements=pip_requirements(),
                                       registered_model_name=REGISTERED_NAME)
        version = str(info.registered_model_version)
        new = result.metrics["model"]["brier"]
        old = champion_scores["brier"] if champion_scores else None
        alias, reason = promote(client, REGISTERED_NAME, version, "brier", new, old,
                                previous.version if old is not None else None,
                                "the same held-out event rows")
        log.info("%s v%s -> %s (%s)", REGISTERED_NAME, version, alias, reason)
        return {"name": REGISTERED_NAME, "version": version, "alias": alias, "reason": reason,
                "run_id": run.info.run_id, "metrics": result.metrics,
                "champion_metrics": champion_scores}


def _window_params(prefix: str, model: ResponseLikelihood, n_rows: int, n_events: int
                   ) -> dict:
    """``<prefix>_start``, ``_end`` (first and last event start fitted, UTC ISO),
    ``_n_rows`` and ``_n_events``."""
    first, last = model.training_window_
    return {f"{prefix}_start": first.isoformat(), f"{prefix}_end": last.isoformat(),
            f"{prefix}_n_rows": n_rows, f"{prefix}_n_events": n_events}


def train_response(source: Portfolio | Mapping | ResponseData,
                   rule: SettlementRule | None = None,
                   config: ResponseTrainingConfig | None = None,
                   uri: str | None = None,
                   truth: pd.DataFrame | None = None) -> tuple[ResponseTrainResult, dict]:
    """``train_response_core`` then ``log_and_register``; returns (result, decision).
    ``truth``: optional true probabilities for evaluation only (see train_response_core)."""
    rule = rule or SettlementRule()
    config = config or ResponseTrainingConfig()
    data = response_data(source)
    result = train_response_core(data, rule, config, truth)
    with tracking_session(uri) as client:
        return result, log_and_register(client, data, result, config)


class Champion(NamedTuple):
    model: ResponseLikelihood
    version: str
    resource_model: ResponseLikelihood | None = None  # per-resource likelihood
    resource_method: str | None = None  # resource_model or resource_historical_rate


def load_champion(uri: str | None = None) -> Champion:
    """The champion ``ResponseLikelihood`` and its registry version (ModelNotFoundError if
    there is none)."""
    with tracking_session(uri) as client:
        current = champion_version(client, REGISTERED_NAME)
        if current is None:
            raise ModelNotFoundError(f"no champion of {REGISTERED_NAME!r} in the registry; "
                                     "train one with `vpp response-train --data DIR`")
        loaded = mlflow.pyfunc.load_model(f"models:/{REGISTERED_NAME}/{current.version}")
        wrapped = loaded.unwrap_python_model()
        return Champion(wrapped.model, str(current.version),
                        getattr(wrapped, "resource_model", None),
                        getattr(wrapped, "resource_method", None))


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
