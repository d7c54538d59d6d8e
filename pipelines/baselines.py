"""Training the ML baseline with MLflow tracking and champion/challenger registration.

Two layers, as ``pipelines.training``:

``train_baseline_core`` is pure: an ``EvalDataset`` in, fitted ``MLBaseline`` models and
held-out placebo scores out, in two fits of the same configuration:

1. the **scoring fit**, on readings before ``train_end - holdout_days`` (the held-out start,
   local midnight), is scored on placebo events drawn in the held-out days, next to the
   rule baselines ``REFERENCE_RULES`` on the same events: these scores are the run's
   ``holdout_*`` metrics and what promotion compares;
2. the **final fit**, on *all* readings before ``train_end``, is the model registered (and
   served): a champion never ignores the latest ``holdout_days`` of history.

``train_baselines`` adds MLflow: one run in experiment ``vpp-baseline`` with params, both
data windows (``scoring_fit_start``/``_end``/``_n_rows`` and ``final_fit_start``/``_end``/
``_n_rows``: first and last training reading, UTC interval starts; tag ``registered_model``
says the final fit is registered), the held-out metrics of the scoring fit and of the rules,
the final fit's feature importance, and the final model (pyfunc, pinned requirements)
registered as ``baseline-<customer_id>`` for one customer or ``baseline-pooled`` for a
pooled model. Promotion: the new version becomes ``champion`` when there is none or when
its scoring fit's CV(RMSE) on the held-out placebo events is lower than the current
champion's re-scored on the *same* events now; otherwise ``challenger``.

``load_champion(name)`` returns the champion ``MLBaseline`` (for the serving handlers).
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from pydantic import BaseModel, ConfigDict, Field

from forecasting.errors import InsufficientDataError
from forecasting.portfolio import Portfolio, as_utc
from inference.registry import ModelRegistry
from models.baselines.ml import MLBaseline
from pipelines.baseline_eval import (
    RULE_METHODS,
    EvalDataset,
    PlaceboConfig,
    dataset_from_portfolio,
    draw_events_between,
    score_on_events,
)
from pipelines.mlflow_model import pip_requirements
from pipelines.tracking import (
    champion_version,
    ensure_experiment,
    experiment_name,
    promote,
    tracking_session,
)

log = logging.getLogger(__name__)

KIND = "baseline"
POOLED = "pooled"
REFERENCE_RULES = ("similar_days", "x_of_y")


class BaselineTrainingConfig(BaseModel):
    """What the ML baseline pipeline trains and how it is held out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    holdout_days: int = Field(30, gt=0, description="held-out days before train_end, scored "
                              "with placebo events")
    n_events_per_customer: int = Field(10, gt=0, description="placebo events per customer "
                                       "in the held-out days")
    strategy: str = Field("pooled", description="pooled | per_customer | auto (MLBaseline)")
    n_estimators: int = Field(300, gt=0)
    learning_rate: float = Field(0.05, gt=0, le=1)
    num_leaves: int = Field(31, ge=2)
    min_child_samples: int = Field(50, ge=1)
    max_training_days: int = Field(365, gt=0, description="history used for training, days")
    seed: int = 0

    def model(self) -> MLBaseline:
        return MLBaseline(strategy=self.strategy, n_estimators=self.n_estimators,
                          learning_rate=self.learning_rate, num_leaves=self.num_leaves,
                          min_child_samples=self.min_child_samples,
                          max_training_days=self.max_training_days,
                          random_state=self.seed)


@dataclass
class BaselineTrainResult:
    name: str
    model: MLBaseline  # the final fit (all readings before train_end): registered and served
    train_end: pd.Timestamp
    holdout_start: pd.Timestamp
    events: pd.DataFrame  # held-out placebo events
    metrics: dict  # the scoring fit's, on the held-out events
    rule_metrics: dict
    fit_seconds: float  # the final fit
    intervals: pd.DataFrame | None = None  # scored held-out rows (ML and reference rules)
    scoring_model: MLBaseline | None = None  # fitted before holdout_start; gave `metrics`
    scoring_fit_seconds: float = float("nan")


def registered_baseline_name(customers: list[str]) -> str:
    """``baseline-<customer_id>`` for one customer, ``baseline-pooled`` for several."""
    return f"{KIND}-{customers[0]}" if len(customers) == 1 else f"{KIND}-{POOLED}"


def train_baseline_core(data: EvalDataset, config: BaselineTrainingConfig | None = None,
                        train_end=None) -> BaselineTrainResult:
    """Score a fit made before the held-out days on placebo events in them, then refit on
    all readings before ``train_end`` (see module doc)."""
    config = config or BaselineTrainingConfig()
    last = max(s.index.max() for s in data.loads.values())
    end = as_utc(train_end, "train_end") if train_end is not None else last
    holdout_start = (end - pd.Timedelta(days=config.holdout_days)).tz_convert(
        data.timezone).normalize().tz_convert("UTC")
    # both fits keep the history up to `end` for their level features (masked at each
    # event start); they differ only in where training stops
    loads = {c: s[s.index < end] for c, s in data.loads.items()}

    def fit(cutoff: pd.Timestamp) -> tuple[MLBaseline, float]:
        t0 = time.perf_counter()
        model = config.model().fit(loads, timezone=data.timezone,
                                   holiday_country=data.holiday_country,
                                   event_days=data.event_days, weather=data.weather or None,
                                   train_end=cutoff)
        return model, time.perf_counter() - t0

    scoring_model, scoring_seconds = fit(holdout_start)
    placebo = PlaceboConfig(n_events_per_customer=config.n_events_per_customer,
                            seed=config.seed)
    events = draw_events_between(data, placebo, holdout_start, end)
    if events.empty:
        raise InsufficientDataError(
            f"{data.name}: no placebo event fits in the held-out days {holdout_start} .. {end};"
            " lengthen holdout_days or give more data")
    rules = {m: _rule_factory(m, data, loads) for m in REFERENCE_RULES}
    summary, intervals = score_on_events({"ml": scoring_model, **rules}, loads, events)
    metrics = summary.loc["ml"].to_dict()
    rule_metrics = {m: summary.loc[m].to_dict() for m in REFERENCE_RULES if m in summary.index}
    model, fit_seconds = fit(end)
    name = registered_baseline_name(sorted(data.loads))
    log.info("%s: scored a fit on readings to %s on %s .. %s; the registered fit uses "
             "readings to %s", name, scoring_model.training_window_[1], holdout_start, end,
             model.training_window_[1])
    return BaselineTrainResult(name, model, end, holdout_start, events, metrics, rule_metrics,
                               fit_seconds, intervals, scoring_model=scoring_model,
                               scoring_fit_seconds=scoring_seconds)


def _rule_factory(method: str, data: EvalDataset, loads: dict):
    cache: dict[str, object] = {}

    def fitted(cid: str):
        if cid not in cache:
            cache[cid] = RULE_METHODS[method]().fit(
                loads[cid], timezone=data.timezone, holiday_country=data.holiday_country,
                event_days=data.event_days.get(cid, ()), customer_id=cid)
        return cache[cid]

    return fitted


class BaselinePyfunc(mlflow.pyfunc.PythonModel):
    """pyfunc flavour: rows (customer_id, start, end[, notice_time]) -> baseline intervals.

    Serving unwraps the estimator: ``load_model(...).unwrap_python_model().baseline`` and
    gives it the current readings with ``with_history`` (a copy).
    """

    def __init__(self, baseline: MLBaseline):
        self.baseline = baseline

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        del context, params
        frames = []
        for row in model_input.itertuples():
            notice = getattr(row, "notice_time", None)
            notice = None if notice is None or pd.isna(notice) or notice == "" else notice
            frame = self.baseline.predict(row.start, row.end, notice,
                                          customer_id=str(row.customer_id))
            frames.append(frame.reset_index().assign(customer_id=str(row.customer_id)))
        out = pd.concat(frames, ignore_index=True)
        out["timestamp"] = out["timestamp"].astype(str)
        return out[["customer_id", "timestamp", "baseline_kw", "baseline_p10_kw",
                    "baseline_p90_kw"]]


def _light_copy(model: MLBaseline) -> MLBaseline:
    """The model without cached day-of arrays (rebuilt on demand) to keep the artifact small."""
    out = copy.copy(model)
    out.customers_ = {c: copy.copy(v) for c, v in model.customers_.items()}
    for v in out.customers_.values():
        v.flat = None
    return out


def score_champion(name: str, data: EvalDataset, result: BaselineTrainResult) -> dict | None:
    """The current champion re-scored on the challenger's held-out placebo events.

    The champion is a final fit (all readings before *its* train_end), so it may have been
    trained on part of this held-out window: accepted. The comparison is still on the same
    events, but it favours the champion when the train ends are close.
    """
    model: MLBaseline = ModelRegistry(mlflow.get_tracking_uri()).baseline(name)
    loads = {c: s[s.index < result.train_end] for c, s in data.loads.items()}
    known = {c: s for c, s in loads.items() if c in model.customers_}
    if not known:
        return None
    model = model.with_history(known, {c: data.event_days.get(c, ()) for c in known},
                               {c: data.weather[c] for c in known if c in data.weather} or None)
    events = result.events[result.events["customer_id"].isin(list(known))]
    summary, _ = score_on_events({"ml": model}, loads, events)
    return summary.loc["ml"].to_dict()


def log_and_register(client, data: EvalDataset, result: BaselineTrainResult,
                     config: BaselineTrainingConfig) -> dict:
    """Log one baseline training run and register its model; returns the decision."""
    name = result.name
    exp_id = ensure_experiment(client, experiment_name(KIND))
    previous = champion_version(client, name)
    champion_scores = score_champion(name, data, result) if previous is not None else None
    with mlflow.start_run(experiment_id=exp_id, run_name=f"train {name}") as run:
        mlflow.set_tags({"pipeline": "baseline", "dataset": data.name,
                         "customers": ",".join(sorted(data.loads))[:5000],
                         "holdout_start": result.holdout_start.isoformat(),
                         "train_end": result.train_end.isoformat(),
                         "registered_model": "final fit on all history before train_end"})
        mlflow.log_params({**config.model_dump(), "n_customers": len(data.loads),
                           "timezone": data.timezone,
                           "holiday_country": str(data.holiday_country),
                           "resolution_minutes": int(result.model.resolution_ /
                                                     pd.Timedelta(minutes=1)),
                           "n_features": len(result.model.feature_names),
                           "n_holdout_events": len(result.events),
                           **fit_window_params("final_fit", result.model),
                           **fit_window_params("scoring_fit", result.scoring_model)})
        metrics = {f"holdout_{k}": float(v) for k, v in result.metrics.items()
                   if isinstance(v, (int, float)) and np.isfinite(v)}
        for rule, scores in result.rule_metrics.items():
            metrics.update({f"holdout_{rule}_{k}": float(v) for k, v in scores.items()
                            if isinstance(v, (int, float)) and np.isfinite(v)})
        metrics["fit_seconds"] = result.fit_seconds
        metrics["scoring_fit_seconds"] = result.scoring_fit_seconds
        if champion_scores:
            metrics.update({f"champion_holdout_{k}": float(v)
                            for k, v in champion_scores.items()
                            if isinstance(v, (int, float)) and np.isfinite(v)})
        mlflow.log_metrics(metrics)
        mlflow.log_dict(result.model.feature_importances().to_dict(),
                        "metrics/feature_importance.json")
        mlflow.log_table(result.events.astype(str), "metrics/holdout_events.json")
        _log_figures(data, result)
        example = result.events.head(2)[["customer_id", "start", "end", "notice_time"]]
        example = example.astype(str)
        wrapped = BaselinePyfunc(_light_copy(result.model))
        signature = infer_signature(example, wrapped.predict(None, example))
        info = mlflow.pyfunc.log_model(name="model", python_model=wrapped, signature=signature,
                                       input_example=example, pip_requirements=pip_requirements(),
                                       registered_model_name=name)
        version = str(info.registered_model_version)
        old = champion_scores["cvrmse"] if champion_scores else None
        alias, reason = promote(client, name, version, "cvrmse",
                                result.metrics.get("cvrmse", np.inf), old,
                                previous.version if old is not None else None,
                                "the same held-out placebo events")
        log.info("%s v%s -> %s (%s)", name, version, alias, reason)
        return {"name": name, "version": version, "alias": alias, "reason": reason,
                "run_id": run.info.run_id, "metrics": result.metrics,
                "rule_metrics": result.rule_metrics,
                "final_fit_window": result.model.training_window_,
                "scoring_fit_window": result.scoring_model.training_window_}


def fit_window_params(prefix: str, model: MLBaseline) -> dict:
    """``<prefix>_start``, ``_end`` (first and last training reading, UTC ISO) and
    ``_n_rows`` of a fitted ``MLBaseline``."""
    first, last = model.training_window_
    return {f"{prefix}_start": first.isoformat(), f"{prefix}_end": last.isoformat(),
            f"{prefix}_n_rows": model.n_training_rows_}


def _log_figures(data: EvalDataset, result: BaselineTrainResult) -> None:
    from pipelines import plots

    gain = result.model.feature_importances()  # of the registered (final) fit
    figures = [(plots.feature_importance(gain / gain.sum(),
                                         f"{result.name}: feature importance"),
                "plots/feature_importance.png")]
    if result.intervals is not None and not result.intervals.empty:  # the scoring fit's
        figures.append((plots.baseline_events(
            result.intervals, data.timezone,
            f"{result.name}: held-out placebo events (nobody responded)"),
            "plots/holdout_placebo_events.png"))
    for fig, path in figures:
        mlflow.log_figure(fig, path)
        plots.plt.close(fig)


def train_baselines(portfolio: Portfolio, customers: list[str] | None = None,
                    config: BaselineTrainingConfig | None = None, train_end=None,
                    uri: str | None = None) -> dict:
    """Train, log and register the ML baseline of ``customers`` (all by default, pooled)."""
    config = config or BaselineTrainingConfig()
    data = dataset_from_portfolio(portfolio, customers)
    result = train_baseline_core(data, config, train_end)
    with tracking_session(uri) as client:
        return log_and_register(client, data, result, config)


def load_champion(name: str, uri: str | None = None) -> MLBaseline:
    """The champion ``MLBaseline`` registered as ``name`` (ModelNotFoundError if none), read
    through the one model source (``inference.registry``)."""
    return ModelRegistry(uri).baseline(name)
