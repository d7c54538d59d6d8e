"""Training the response-likelihood model with MLflow tracking and champion/challenger.

Two layers, as ``pipelines.baselines``: ``pipelines.response_core`` (data, split, fits,
scores; no store), ``inference.response_predict`` (answers) and this module (MLflow); the
names of all three are importable from here.

``train_response_core`` (data, held-out split, the scoring and the final fit, the
references and the metrics) is described in ``pipelines.response_core``; this module logs
its run to MLflow and registers the final fit.

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
from collections.abc import Mapping

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from forecasting.portfolio import Portfolio
from forecasting.settlement import SettlementRule
from inference.registry import ModelRegistry
from inference.response_predict import (  # noqa: F401
    hypothetical_event,
    planned_reliability,
    predict_rows,
)
from inference.response_resources import predict_resources  # noqa: F401
from models.response import ResponseLikelihood
from models.response_features import FEATURE_DOCS
from models.response_metrics import (
    ECE_BINS,
    expected_calibration_error,
    probability_metrics,
    reliability_curve,
)
from pipelines.mlflow_model import pip_requirements
from pipelines.response_core import (  # noqa: F401  (the public names of the pipeline)
    KIND,
    METHODS,
    REGISTERED_NAME,
    TRUTH,
    Champion,
    ResponseData,
    ResponseTrainingConfig,
    ResponseTrainResult,
    build_features,
    count_events,
    customer_truth,
    historical_as_of,
    metrics_table,
    response_data,
    split_events,
    train_response_core,
)
from pipelines.tracking import (
    champion_version,
    ensure_experiment,
    experiment_name,
    promote,
    tracking_session,
)

log = logging.getLogger(__name__)


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
    model: ResponseLikelihood = ModelRegistry(mlflow.get_tracking_uri()).response().model
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


def load_champion(uri: str | None = None) -> Champion:
    """The champion ``ResponseLikelihood`` and its registry version (ModelNotFoundError if
    there is none), read through the one model source (``inference.registry``)."""
    return ModelRegistry(uri).response()
