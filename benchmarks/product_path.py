"""The one path every accuracy benchmark drives: the product's own functions, in a loop.

portfolio directory -> ``read_portfolio`` -> ``pipelines.training.train_site`` (what
``vpp train`` runs: the scoring fit, the final fit on all history before ``train_end``,
MLflow run, registry, champion/challenger) -> ``inference.forecast.forecast_site``
(what ``vpp forecast``, the nightly batch and ``POST /forecast`` run: the registered
champion, the input quality checks and the flagged fallback) for every issue.

No benchmark fits or predicts a model any other way. The loop stays in one process for
speed; ``benchmarks.openstef_cli`` runs the same protocol through the ``vpp`` command line
and must print the same figures. Models go to a temporary MLflow sqlite store (or ``uri``),
so a benchmark never touches the user's registry.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmarks.adapters import write_portfolio
from forecasting.portfolio import Portfolio, as_utc, read_portfolio
from inference.forecast import forecast_site
from inference.registry import ModelRegistry
from pipelines.config import TrainingConfig
from pipelines.evaluation import Schedule
from pipelines.training import train_site

log = logging.getLogger(__name__)


@contextmanager
def portfolio_dir(frames: dict[str, pd.DataFrame]):
    """An adapter's tables written as a portfolio directory (temporary), as a user has it."""
    with tempfile.TemporaryDirectory(prefix="vpp-bench-") as tmp:
        yield write_portfolio(frames, Path(tmp) / "portfolio")


@contextmanager
def model_store(uri: str | None = None):
    """A tracking/registry URI: ``uri``, or a fresh sqlite store removed afterwards."""
    if uri is not None:
        yield uri
        return
    with tempfile.TemporaryDirectory(prefix="vpp-bench-mlflow-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'mlflow.db'}"


@dataclass
class ProductRun:
    """Forecasts of the served champions (output format, UTC) and one row per training."""

    forecasts: pd.DataFrame
    trainings: pd.DataFrame
    train_seconds: float
    forecast_seconds: float


def train_ends_for(schedule: Schedule, first_train_end, retrain_days: float | None
                   ) -> list[pd.Timestamp]:
    """Training ends: ``first_train_end``, then one every ``retrain_days`` that an issue
    of the schedule still needs (None: train once)."""
    ends = [as_utc(first_train_end, "train_end")]
    if retrain_days:
        step = pd.Timedelta(days=retrain_days)
        for issue in sorted(schedule.issues):
            if issue >= ends[-1] + step:
                ends.append(ends[-1] + step * ((issue - ends[-1]) // step))
    return ends


def run_product(portfolio: Portfolio | Path | str, site_id: str, schedule: Schedule,
                train_ends: Sequence, config: TrainingConfig | None = None,
                quantiles: Sequence[float] | None = None, uri: str | None = None,
                on_progress: Callable[[str], None] | None = None) -> ProductRun:
    """Train at each of ``train_ends`` (``vpp train --train-end``) and forecast every issue
    of ``schedule`` (``vpp forecast``) with the champion registered at that issue.

    An issue is served by the champion after the latest training whose ``train_end`` is at
    or before it; issues before the first ``train_end`` (OpenSTEF's protocol: trained to
    midnight, first issue 12:00 the day before) use the first training's champion.
    """
    if not isinstance(portfolio, Portfolio):
        portfolio = read_portfolio(portfolio)
    site = portfolio.site(site_id)
    config = config or TrainingConfig()
    ends = sorted(as_utc(t, "train_end") for t in train_ends)
    rows, trainings = [], []
    train_s = forecast_s = 0.0
    with model_store(uri) as store:
        registry = ModelRegistry(store)
        order = sorted(range(len(schedule.issues)), key=lambda i: schedule.issues[i])
        k = -1
        for i in order:
            issue = schedule.issues[i]
            due = max(0, sum(1 for t in ends if t <= issue) - 1)
            while k < due:
                k += 1
                t0 = time.perf_counter()
                out = train_site(portfolio, site_id, config, train_end=ends[k], uri=store)
                train_s += time.perf_counter() - t0
                trainings.append({"train_end": ends[k], "name": out["name"],
                                  "version": out["version"], "alias": out["alias"],
                                  "reason": out["reason"], "fit_end": out["fit_end"],
                                  **{f"holdout_{m}": v for m, v in out["metrics"].items()}})
                if on_progress:
                    on_progress(f"trained {out['name']} v{out['version']} to {ends[k]} "
                                f"-> {out['alias']}")
            t0 = time.perf_counter()
            rows.append(forecast_site(portfolio, site.kind, site_id, issue, schedule.starts[i],
                                      schedule.ends[i], quantiles, registry=registry))
            forecast_s += time.perf_counter() - t0
    forecasts = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()
    return ProductRun(forecasts, pd.DataFrame(trainings), train_s, forecast_s)


def served_by_older_champion(run: ProductRun) -> pd.Series:
    """Per forecast row: True where the model that answered is an older champion than the
    latest training due at its issue (promotion kept the old champion: the product's
    behaviour). Rows the flagged fallback answered are False (see ``quality_counts``)."""
    fc, tr = run.forecasts, run.trainings
    if fc.empty or tr.empty:
        return pd.Series(False, index=fc.index)
    ends = pd.DatetimeIndex(tr["train_end"])
    labels = (tr["name"] + "/" + tr["version"].astype(str)).to_numpy()
    due = (ends.searchsorted(pd.DatetimeIndex(fc["issue_time"]), side="right") - 1).clip(0)
    fallback = fc["model_version"].str.startswith("fallback")
    return (fc["model_version"].to_numpy() != labels[due]) & ~fallback


def quality_counts(forecasts: pd.DataFrame) -> dict[str, int]:
    """Forecast rows per input-quality flag (the ``quality`` column), ``ok`` included."""
    if forecasts.empty:
        return {}
    flags = forecasts["quality"].str.split(";").explode()
    return {str(k): int(v) for k, v in flags.value_counts().items()}
