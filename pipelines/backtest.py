"""Rolling-origin backtests of a site's forecaster, in two layers (OpenSTEF-style).

``backtest_core`` is pure: a site's data and an issue schedule in, forecasts and scores out.
It walks the issues in time order; at the first issue, and again whenever ``retrain_days``
have passed since the last fit, it fits a new model on **what was known at that issue**
(``SiteData.known_at``: measurements whose interval had ended, weather and prices issued by
then). Every forecast row is built only from what was known at its own issue time
(``forecasting.features``), so a backtest never sees the future.

``run_backtest`` adds files and MLflow: it writes every forecast (the forecast output
format of DATA_FORMAT.md) and the metrics tables (overall, per lead hour, per local hour of
day: MAE, RMSE, bias, pinball, CRPS, P10-P90 coverage, capacity-normalised MAE for PV and
wind) to ``out_dir`` and logs one run with params, metrics, tables and plots in the
experiment ``vpp-backtest``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from forecasting.errors import DataError
from forecasting.portfolio import Portfolio, SiteData, as_utc
from models.forecaster import SiteForecaster
from models.quantile import DEFAULT_QUANTILES, check_quantiles
from pipelines.config import TrainingConfig
from pipelines.evaluation import (
    Schedule,
    attach_actuals,
    day_ahead_schedule,
    forecast_schedule,
    intraday_schedule,
    score_forecasts,
)

log = logging.getLogger(__name__)

EXPERIMENT = "vpp-backtest"
OUTPUT_QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


class BacktestConfig(BaseModel):
    """How a backtest issues, retrains and scores; model parameters of each fit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: Literal["day_ahead", "intraday"] = Field(
        "day_ahead", description="day_ahead: one issue a day at issue_hour_local for the next "
        "local day; intraday: an issue every intraday_every_minutes for the next "
        "intraday_horizon_minutes")
    issue_hour_local: float = Field(12, ge=0, lt=24, description="day-ahead issue hour, local")
    intraday_every_minutes: int = Field(60, gt=0, description="intraday issue spacing")
    intraday_horizon_minutes: int = Field(240, gt=0, description="intraday window length")
    retrain_days: float = Field(7, gt=0, description="refit when this many days have passed "
                                "since the last fit (only data known at that issue)")
    quantiles: tuple[float, ...] = Field(OUTPUT_QUANTILES, description="levels forecast and "
                                         "scored (any, up to 99 percentiles)")
    train_quantiles: tuple[float, ...] | None = Field(
        None, description="levels the model trains (default: the forecaster's grid); "
        "others are interpolated")
    calibration_days: float = Field(14, ge=0, description="conformal calibration window, days")
    max_training_days: float | None = Field(730, gt=0, description="history per fit, days")
    n_estimators: int | None = Field(None, gt=0, description="boosting rounds per level "
                                     "(default: the forecaster's)")
    random_state: int = 0

    @field_validator("quantiles", "train_quantiles")
    @classmethod
    def _levels(cls, v):
        return None if v is None else check_quantiles(v)

    def training_config(self) -> TrainingConfig:
        """The training configuration of each fit: ``vpp train``'s, with these overrides."""
        kwargs = {"quantiles": self.train_quantiles or DEFAULT_QUANTILES,
                  "calibration_days": self.calibration_days,
                  "max_training_days": self.max_training_days,
                  "random_state": self.random_state}
        if self.n_estimators:
            kwargs["n_estimators"] = self.n_estimators
        return TrainingConfig(**kwargs)

    def forecaster(self, kind: str) -> SiteForecaster:
        return self.training_config().forecaster(kind)

    def issue_schedule(self, start, end, timezone: str) -> Schedule:
        if self.schedule == "day_ahead":
            return day_ahead_schedule(start, end, timezone, self.issue_hour_local)
        return intraday_schedule(start, end, self.intraday_every_minutes,
                                 self.intraday_horizon_minutes)


@dataclass
class BacktestResult:
    """Forecasts with ``actual_kw`` and their scores; one row per fit in ``fits``."""

    site_id: str
    kind: str
    forecasts: pd.DataFrame
    overall: dict
    per_lead_hour: pd.DataFrame
    per_hour_of_day: pd.DataFrame
    fits: pd.DataFrame
    forecast_seconds: float
    extra: dict = field(default_factory=dict)


def retrain_blocks(issues: list[pd.Timestamp], retrain_days: float
                   ) -> list[tuple[pd.Timestamp, list[int]]]:
    """Positions of ``issues`` grouped by the fit that serves them: [(fit time, positions)].

    A new fit happens at the first issue and at the first issue at least ``retrain_days``
    after the previous fit.
    """
    step = pd.Timedelta(days=retrain_days)
    blocks: list[tuple[pd.Timestamp, list[int]]] = []
    for i in sorted(range(len(issues)), key=lambda k: issues[k]):
        if not blocks or issues[i] >= blocks[-1][0] + step:
            blocks.append((issues[i], []))
        blocks[-1][1].append(i)
    return blocks


def backtest_core(data: SiteData, schedule: Schedule, config: BacktestConfig,
                  make_model: Callable[[str], SiteForecaster] | None = None,
                  on_progress: Callable[[int], None] | None = None) -> BacktestResult:
    """Rolling-origin forecasts over ``schedule`` and their scores (see module doc).

    ``make_model(kind)`` returns an unfitted forecaster (default ``config.forecaster``);
    ``on_progress(n)`` is called after each block with the number of issues it forecast.
    """
    site = data.site
    if not schedule.issues:
        raise DataError(f"site {site.site_id}: the backtest window holds no issue time; "
                        "check --start/--end")
    make = make_model or config.forecaster
    parts, fits = [], []
    forecast_s = 0.0
    for fit_time, positions in retrain_blocks(schedule.issues, config.retrain_days):
        known = data.known_at(fit_time)
        t0 = time.perf_counter()
        model = make(site.kind).fit(known)
        fit_s = time.perf_counter() - t0
        sub = Schedule([schedule.issues[i] for i in positions],
                       [schedule.starts[i] for i in positions],
                       [schedule.ends[i] for i in positions])
        t0 = time.perf_counter()
        # Rows only see what was known at their own issue; cut the rest off anyway.
        fc = forecast_schedule(model, data.known_at(max(sub.issues)), sub, config.quantiles)
        forecast_s += time.perf_counter() - t0
        fc["model_version"] = f"backtest-fit-{fit_time:%Y%m%dT%H%M}Z"
        parts.append(fc)
        window = model.training_window_
        fits.append({"fit_time": fit_time, "train_start": window[0], "train_end": window[1],
                     "n_issues": len(positions), "fit_seconds": fit_s})
        if on_progress:
            on_progress(len(positions))
    forecasts = pd.concat(parts, ignore_index=True).sort_values(
        ["issue_time", "timestamp"], ignore_index=True)
    scored = attach_actuals(forecasts, data)
    capacity = site.capacity_kw if site.kind in ("pv", "wind") else None
    scores = score_forecasts(scored, capacity, site.timezone)
    return BacktestResult(site.site_id, site.kind, scored, scores["overall"],
                          scores["per_lead_hour"], scores["per_hour_of_day"],
                          pd.DataFrame(fits), forecast_s)


# ------------------------------------------------------------------------------ files, MLflow
def write_outputs(result: BacktestResult, out_dir: Path | str, timezone: str) -> dict[str, Path]:
    """Forecasts (output format, local time) and metrics tables as CSV in ``out_dir``."""
    from inference.forecast import write_forecast_csv

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    qcols = [c for c in result.forecasts.columns if c.startswith("q")]
    paths = {"forecasts": out / "forecasts.csv", "actuals": out / "actuals.csv",
             "metrics": out / "metrics.csv", "per_lead_hour": out / "metrics_per_lead_hour.csv",
             "per_hour_of_day": out / "metrics_per_hour_of_day.csv", "fits": out / "fits.csv"}
    write_forecast_csv(result.forecasts[["site_id", "issue_time", "timestamp", *qcols,
                                         "model_version"]], paths["forecasts"], timezone)
    actual = result.forecasts[["timestamp", "actual_kw"]].drop_duplicates("timestamp")
    actual = actual.assign(timestamp=pd.DatetimeIndex(actual["timestamp"]).tz_convert(timezone)
                           .map(lambda t: t.isoformat()))
    actual.insert(0, "site_id", result.site_id)
    actual.to_csv(paths["actuals"], index=False, float_format="%.4f")
    pd.DataFrame([result.overall]).to_csv(paths["metrics"], index=False)
    result.per_lead_hour.to_csv(paths["per_lead_hour"])
    result.per_hour_of_day.to_csv(paths["per_hour_of_day"])
    result.fits.to_csv(paths["fits"], index=False)
    return paths


def log_backtest(client, result: BacktestResult, config: BacktestConfig, site, start, end,
                 paths: dict[str, Path]) -> str:
    """One MLflow run in ``vpp-backtest``: params, metrics, tables, plots, files."""
    import mlflow

    from pipelines import plots
    from pipelines.tracking import ensure_experiment

    exp_id = ensure_experiment(client, EXPERIMENT)
    name = f"backtest {site.kind}-{site.site_id} {config.schedule}"
    with mlflow.start_run(experiment_id=exp_id, run_name=name) as run:
        mlflow.set_tags({"site_id": site.site_id, "kind": site.kind, "pipeline": "backtest",
                         "schedule": config.schedule})
        mlflow.log_params({**{k: json.dumps(v) if isinstance(v, tuple) else v
                              for k, v in config.model_dump().items()},
                           "site_id": site.site_id, "start": str(start), "end": str(end),
                           "resolution_minutes": site.resolution_minutes,
                           "n_issues": int(result.forecasts["issue_time"].nunique()),
                           "n_fits": len(result.fits)})
        metrics = {k: float(v) for k, v in result.overall.items() if np.isfinite(v)}
        metrics["fit_seconds_mean"] = float(result.fits["fit_seconds"].mean())
        metrics["forecast_seconds"] = result.forecast_seconds
        mlflow.log_metrics(metrics)
        for lead, row in result.per_lead_hour.iterrows():
            mlflow.log_metrics({f"by_lead_{k}": float(v) for k, v in row.items()
                                if k in ("mae", "rmse", "mean_pinball", "coverage_p10_p90")
                                and np.isfinite(v)}, step=int(lead))
        mlflow.log_table(result.per_lead_hour.reset_index(), "metrics/per_lead_hour.json")
        mlflow.log_table(result.per_hour_of_day.reset_index(), "metrics/per_hour_of_day.json")
        figures = [
            (plots.forecast_vs_actual(result.forecasts, site.timezone,
                                      f"{site.kind} {site.site_id}: backtest (last 7 days)"),
             "forecast_vs_actual.png"),
            (plots.metric_by(result.per_lead_hour, "mae", "backtest MAE by lead hour"),
             "mae_by_lead_hour.png"),
            (plots.metric_by(result.per_hour_of_day, "mae", "backtest MAE by local hour"),
             "mae_by_hour_of_day.png"),
        ]
        if "coverage_p10_p90" in result.per_lead_hour:
            figures.append((plots.metric_by(result.per_lead_hour, "coverage_p10_p90",
                                            "P10-P90 coverage by lead hour (target 0.80)"),
                            "coverage_by_lead_hour.png"))
        for fig, fname in figures:
            mlflow.log_figure(fig, f"plots/{fname}")
            plots.plt.close(fig)
        for path in paths.values():
            mlflow.log_artifact(str(path), "results")
        return run.info.run_id


def run_backtest(portfolio: Portfolio, site_id: str, start, end,
                 config: BacktestConfig | None = None, kind: str | None = None,
                 out_dir: Path | str | None = None, log_mlflow: bool = True,
                 uri: str | None = None, on_progress: Callable[[int], None] | None = None,
                 on_schedule: Callable[[int], None] | None = None) -> dict:
    """Backtest one site (``vpp backtest``): files in ``out_dir``, a run in MLflow.

    ``on_schedule(n)`` is told the number of issues before the work starts (progress bars).
    """
    config = config or BacktestConfig()
    site = portfolio.site(site_id)
    if kind is not None and kind != site.kind:
        raise DataError(f"site {site_id} is of kind {site.kind!r}, not {kind!r}; "
                        f"use --kind {site.kind}")
    s, e = as_utc(start, "start"), as_utc(end, "end")
    if e <= s:
        raise DataError(f"end {e} must be after start {s}")
    schedule = config.issue_schedule(s, e, site.timezone)
    if on_schedule:
        on_schedule(len(schedule.issues))
    data = portfolio.site_data(site_id)
    result = backtest_core(data, schedule, config, on_progress=on_progress)
    out = {"result": result, "paths": {}, "run_id": None}
    if out_dir is not None:
        out["paths"] = write_outputs(result, out_dir, site.timezone)
    if log_mlflow:
        import tempfile

        from pipelines.tracking import tracking_session

        with tempfile.TemporaryDirectory() as tmp:
            paths = out["paths"] or write_outputs(result, tmp, site.timezone)
            with tracking_session(uri) as client:
                out["run_id"] = log_backtest(client, result, config, site, s, e, paths)
    return out
