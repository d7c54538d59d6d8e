"""Training a site's forecaster, in two layers (OpenSTEF-style).

``train_core`` is pure: frames in, fitted models and held-out scores out, in two fits of the
same configuration:

1. the **scoring fit**, on measurements before ``train_end - holdout_days``, forecasts the
   held-out days with the day-ahead schedule (issued ``issue_hour_local`` the day before):
   these scores are the run's ``holdout_*`` metrics and what promotion compares;
2. the **final fit**, on *all* measurements before ``train_end``, is the model registered
   (and served): a champion never ignores the latest ``holdout_days`` of history.

``train_site`` adds MLflow: one run in experiment ``vpp-<kind>`` with params, data window,
held-out metrics (overall and per lead hour), plots (with the TreeSHAP summary of the
registered model on the held-out rows, ``plots/feature_contributions.png``) and
importances, the model (pyfunc, signature, pinned requirements) registered as
``<kind>-<site_id>``. Promotion: the new version becomes ``champion`` when there is none or
when its mean pinball loss on the *same* held-out window is lower than the current
champion's (re-scored there now); otherwise it becomes ``challenger``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from forecasting.errors import InsufficientDataError
from forecasting.portfolio import Portfolio, SiteData, as_utc
from inference.registry import ModelRegistry
from pipelines import explain, plots
from pipelines.config import TrainingConfig
from pipelines.evaluation import (
    attach_actuals,
    day_ahead_schedule,
    forecast_schedule,
    score_forecasts,
)
from pipelines.mlflow_model import ForecasterModel, pip_requirements
from pipelines.tracking import (
    champion_version,
    ensure_experiment,
    experiment_name,
    promote,
    registered_name,
    tracking_session,
)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    site_id: str
    kind: str
    model: object  # the final fit (all history before train_end): registered and served
    train_end: pd.Timestamp
    holdout_start: pd.Timestamp
    holdout_forecasts: pd.DataFrame
    metrics: dict
    per_lead_hour: pd.DataFrame
    fit_seconds: float  # the final fit
    scoring_model: object = None  # fitted before holdout_start; produced holdout_forecasts
    scoring_fit_seconds: float = float("nan")
    extra: dict = field(default_factory=dict)


def default_train_end(data: SiteData) -> pd.Timestamp:
    """The end of the last measured interval (train on everything)."""
    res = pd.Timedelta(minutes=data.site.resolution_minutes)
    return data.values_kw.index.max() + res


def train_core(data: SiteData, config: TrainingConfig, train_end=None) -> TrainResult:
    """Score a fit made before the held-out window on it; refit on all history (module doc)."""
    site = data.site
    end = as_utc(train_end, "train_end") if train_end is not None else default_train_end(data)
    holdout_start = (end - pd.Timedelta(days=config.holdout_days)).tz_convert(
        site.timezone).normalize().tz_convert("UTC")
    history = data.before(end)
    fit_data = history.before(holdout_start)
    if fit_data.values_kw.empty:
        raise InsufficientDataError(
            f"site {site.site_id}: no measurements before {holdout_start} (train_end {end} "
            f"minus {config.holdout_days:g} held-out days); move --train-end later")
    t0 = time.perf_counter()
    scoring_model = config.forecaster(site.kind).fit(fit_data)
    scoring_seconds = time.perf_counter() - t0
    schedule = day_ahead_schedule(holdout_start, end, site.timezone, config.issue_hour_local)
    forecasts = attach_actuals(forecast_schedule(scoring_model, history, schedule), history)
    if forecasts.empty or forecasts["actual_kw"].isna().all():
        raise InsufficientDataError(
            f"site {site.site_id}: no readings in the held-out days {holdout_start} .. {end} "
            f"to score the model on (last reading {history.values_kw.index.max()}); move "
            "--train-end to at most the end of the readings, or shorten --holdout-days")
    scores = score_forecasts(forecasts, site.capacity_kw if site.kind != "load" else None,
                             site.timezone)
    t0 = time.perf_counter()
    model = config.forecaster(site.kind).fit(history)
    fit_seconds = time.perf_counter() - t0
    log.info("site %s: scored a fit ending %s on %s..%s; registered fit uses history to %s",
             site.site_id, scoring_model.training_window_[1], holdout_start, end,
             model.training_window_[1])
    return TrainResult(site.site_id, site.kind, model, end, holdout_start, forecasts,
                       scores["overall"], scores["per_lead_hour"], fit_seconds,
                       scoring_model=scoring_model, scoring_fit_seconds=scoring_seconds)


def first_unseen_day(trained_until: pd.Timestamp, resolution_minutes: int,
                     timezone: str) -> pd.Timestamp:
    """The first local midnight (UTC) at or after the end of the last interval a model was
    fitted on (``training_window_[1]`` is that interval's start)."""
    end = (trained_until + pd.Timedelta(minutes=resolution_minutes)).tz_convert(timezone)
    wall = end.tz_localize(None)
    day = wall.normalize()
    if day < wall:
        day += pd.Timedelta(days=1)
    return day.tz_localize(timezone, ambiguous=False,
                           nonexistent="shift_forward").tz_convert("UTC")


def score_champion(client, name: str, data: SiteData, result: TrainResult,
                   config: TrainingConfig) -> dict | None:
    """The current champion and the challenger scored on the same held-out days, those the
    champion was *not* trained on (day-ahead, the same issues).

    The champion's final fit saw all history before its own train_end, which may cover part
    or all of the challenger's held-out window: scored there, it would be scored in sample
    against a challenger scored out of sample, and a retrain on fresher data would rarely
    win. Both are therefore compared on the held-out days after the champion's training end
    (``comparison_days`` of them, in ``challenger``/the champion's own scores). With no
    such day (the retrain brings no readings the champion had not seen) ``comparison_days``
    is 0 and the champion stays.
    """
    version = champion_version(client, name)
    if version is None:
        return None
    champion = ModelRegistry(client.tracking_uri).champion(data.site.kind, data.site.site_id)
    site = data.site
    first = max(result.holdout_start, first_unseen_day(
        champion.forecaster.training_window_[1], site.resolution_minutes, site.timezone))
    if first >= result.train_end:
        return {"version": version.version, "comparison_days": 0}
    history = data.before(result.train_end)
    schedule = day_ahead_schedule(first, result.train_end, site.timezone,
                                  config.issue_hour_local)
    forecasts = attach_actuals(
        forecast_schedule(champion.forecaster, history, schedule, result.model.quantiles_),
        history)
    ours = result.holdout_forecasts[result.holdout_forecasts["timestamp"] >= first]
    scores = score_forecasts(forecasts, None, site.timezone)["overall"]
    return {"version": version.version, "comparison_days": len(schedule.issues),
            "comparison_start": first, **scores,
            "challenger": score_forecasts(ours, None, site.timezone)["overall"]}


def _log_figures(result: TrainResult, site) -> None:
    title = f"{result.kind} {site.site_id}: held-out day-ahead forecasts"
    for fig, name in (
        (plots.forecast_vs_actual(result.holdout_forecasts, site.timezone, title),
         "forecast_vs_actual.png"),
        (plots.feature_importance(result.model.feature_importances(),
                                  f"{site.site_id} feature importance"), "feature_importance.png"),
        (plots.metric_by(result.per_lead_hour, "mae", "held-out MAE by lead hour"),
         "mae_by_lead_hour.png"),
    ):
        mlflow.log_figure(fig, f"plots/{name}")
        plots.plt.close(fig)


def log_and_register(client, data: SiteData, result: TrainResult, config: TrainingConfig
                     ) -> dict:
    """Log one training run and register its model; returns the promotion decision."""
    site = data.site
    name = registered_name(site.kind, site.site_id)
    exp_id = ensure_experiment(client, experiment_name(site.kind))
    champion_scores = score_champion(client, name, data, result, config)
    with mlflow.start_run(experiment_id=exp_id, run_name=f"train {name}") as run:
        fit_window = result.model.training_window_
        scoring_window = result.scoring_model.training_window_
        mlflow.set_tags({"site_id": site.site_id, "kind": site.kind, "pipeline": "train",
                         "holdout_start": result.holdout_start.isoformat(),
                         "train_end": result.train_end.isoformat(),
                         "registered_model": "final fit on all history before train_end"})
        mlflow.log_params({**config.model_dump(), "site_id": site.site_id,
                           "resolution_minutes": site.resolution_minutes,
                           "fit_start": fit_window[0].isoformat(),
                           "fit_end": fit_window[1].isoformat(),
                           "scoring_fit_start": scoring_window[0].isoformat(),
                           "scoring_fit_end": scoring_window[1].isoformat(),
                           "holdout_start": result.holdout_start.isoformat(),
                           "holdout_end": result.train_end.isoformat(),
                           "n_features": len(result.model.feature_names_),
                           **_kind_params(site)})
        metrics = {f"holdout_{k}": float(v) for k, v in result.metrics.items()
                   if np.isfinite(v)}
        metrics["fit_seconds"] = result.fit_seconds
        metrics["scoring_fit_seconds"] = result.scoring_fit_seconds
        if champion_scores:
            metrics["comparison_days"] = champion_scores["comparison_days"]
            metrics.update({f"champion_holdout_{k}": float(v) for k, v in champion_scores.items()
                            if k not in ("version", "comparison_days")
                            and isinstance(v, float | int) and np.isfinite(v)})
            metrics.update({f"challenger_comparison_{k}": float(v) for k, v in
                            champion_scores.get("challenger", {}).items() if np.isfinite(v)})
        mlflow.log_metrics(metrics)
        for lead, row in result.per_lead_hour.iterrows():
            mlflow.log_metrics({f"holdout_by_lead_{k}": float(v) for k, v in row.items()
                                if k in ("mae", "mean_pinball", "coverage_p10_p90")
                                and np.isfinite(v)}, step=int(lead))
        mlflow.log_table(result.per_lead_hour.reset_index(), "metrics/per_lead_hour.json")
        mlflow.log_dict(result.model.feature_importances().to_dict(),
                        "metrics/feature_importance.json")
        if config.log_plots:
            _log_figures(result, site)
            explain.log_contribution_plot(result.model, result.holdout_forecasts, data)
        X = _feature_example(result, data)
        signature = infer_signature(X, result.model.predict_features(X))
        info = mlflow.pyfunc.log_model(
            name="model", python_model=ForecasterModel(result.model), signature=signature,
            input_example=X.head(3), pip_requirements=pip_requirements(),
            registered_model_name=name)
        version = str(info.registered_model_version)
        new, old, old_version, window, keep = _comparison(champion_scores, result,
                                                          site.timezone)
        tolerance = config.promotion_tolerance
        if old_version is not None and keep is None and same_configuration(
                client, name, str(old_version), config):
            tolerance = RETRAIN_GUARD
            window = f"{window}; a retrain of its configuration on newer data"
        alias, reason = promote(client, name, version, "mean_pinball", new, old, old_version,
                                window, keep, tolerance)
        log.info("%s v%s -> %s (%s)", name, version, alias, reason)
        return {"name": name, "version": version, "alias": alias, "reason": reason,
                "run_id": run.info.run_id, "metrics": result.metrics,
                "fit_end": fit_window[1].isoformat(),
                "scoring_fit_end": scoring_window[1].isoformat(),
                "fit_seconds": result.fit_seconds,
                "scoring_fit_seconds": result.scoring_fit_seconds}


# a retrain of the champion's own configuration on newer data replaces it unless it scores
# this share worse on the comparison days: the champion there had the fresher readings (its
# final fit reaches past the challenger's scoring fit), so a like-for-like retrain would
# otherwise stay challenger on that head start; the guard still stops a retrain broken by
# bad recent data
RETRAIN_GUARD = 0.25


def same_configuration(client, name: str, version: str, config: TrainingConfig) -> bool:
    """Whether champion ``version`` was trained with ``config`` (its run's parameters)."""
    run_id = client.get_model_version(name, version).run_id
    params = client.get_run(run_id).data.params if run_id else {}
    mine = {k: str(v) for k, v in config.model_dump().items() if k != "log_plots"}
    return all(params.get(k) == v for k, v in mine.items())


def _comparison(champion_scores: dict | None, result: TrainResult, timezone: str) -> tuple:
    """``promote``'s (new, old, old_version, window, keep_reason) from ``score_champion``."""
    if champion_scores is None:
        return result.metrics.get("mean_pinball", np.inf), None, None, "", None
    days = champion_scores["comparison_days"]
    if days == 0:
        return (result.metrics.get("mean_pinball", np.inf), np.nan,
                champion_scores["version"], "",
                (f"no held-out day after champion v{champion_scores['version']}'s training "
                 "end: the retrain brings no reading it had not seen"))
    start = champion_scores["comparison_start"].tz_convert(timezone)
    window = (f"the {days} held-out days from {start:%Y-%m-%d %H:%M} ({timezone}) the "
              "champion was not trained on")
    return (champion_scores["challenger"].get("mean_pinball", np.inf),
            champion_scores["mean_pinball"], champion_scores["version"], window, None)


def _kind_params(site) -> dict:
    """Parameters that say which physics the site's features use."""
    if site.kind == "wind":
        from forecasting.wind import power_curve_description

        return {"power_curve": power_curve_description(site.turbine_type)}
    return {}


def _feature_example(result: TrainResult, data: SiteData) -> pd.DataFrame:
    from forecasting.features import build_features

    rows = result.holdout_forecasts.head(96)
    X = build_features(data, pd.DatetimeIndex(rows["timestamp"]),
                       pd.DatetimeIndex(rows["issue_time"]), result.model.spec_)
    return X.reset_index(drop=True).astype("float64")


def train_site(portfolio: Portfolio, site_id: str, config: TrainingConfig | None = None,
               train_end=None, kind: str | None = None, uri: str | None = None) -> dict:
    """Train, log and register one site's model (``vpp train``)."""
    config = config or TrainingConfig()
    site = portfolio.site(site_id)
    if kind is not None and kind != site.kind:
        raise ValueError(f"site {site_id} is of kind {site.kind!r}, not {kind!r}; "
                         f"use --kind {site.kind}")
    data = portfolio.site_data(site_id)
    result = train_core(data, config, train_end)
    with tracking_session(uri) as client:
        return log_and_register(client, data, result, config)
