"""``vpp backtest``: a rolling-origin backtest of one site (mounted into ``pipelines.cli``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forecasting.errors import DataError
from pipelines.cli_common import fail
from pipelines.tracking import TrackingUnavailableError, tracking_uri

app = typer.Typer()
console = Console(stderr=True)
DATA_OPT = typer.Option(..., "--data", help="portfolio directory (DATA_FORMAT.md)",
                        exists=True, file_okay=False)
OUT_OPT = typer.Option(None, "--out", help="directory for forecasts.csv and metrics CSVs")


@app.command()
def backtest(
    data: Path = DATA_OPT,
    kind: str = typer.Option(..., help="load, pv or wind"),
    site: str = typer.Option(..., help="site_id from sites.csv"),
    start: str = typer.Option(..., help="first day / issue, ISO with offset"),
    end: str = typer.Option(..., help="end (exclusive), ISO with offset"),
    schedule: str = typer.Option("day_ahead", help="day_ahead (12:00 local for the next day) "
                                 "or intraday (every hour for the next 4 h)"),
    retrain_days: float = typer.Option(7, "--retrain-days", help="refit every N days, on "
                                       "data known at that issue only"),
    out: Path = OUT_OPT,
    quantiles: str = typer.Option(None, help="levels forecast and scored, e.g. 0.1,0.5,0.9 "
                                  "(default P05..P95)"),
    issue_hour_local: float = typer.Option(12, "--issue-hour-local",
                                           help="day-ahead issue hour, local time"),
    n_estimators: int = typer.Option(None, help="boosting rounds per level"),
    log_mlflow: bool = typer.Option(True, "--mlflow/--no-mlflow",
                                    help="log the run to MLflow (experiment vpp-backtest)"),
):
    """Rolling-origin backtest of one site: forecasts, metrics per horizon and hour, MLflow."""
    from pydantic import ValidationError

    from forecasting.portfolio import read_portfolio
    from pipelines.backtest import BacktestConfig, run_backtest

    try:
        kwargs = {"schedule": schedule, "retrain_days": retrain_days,
                  "issue_hour_local": issue_hour_local}
        if quantiles:
            kwargs["quantiles"] = tuple(float(q) for q in quantiles.split(","))
        if n_estimators:
            kwargs["n_estimators"] = n_estimators
        config = BacktestConfig(**kwargs)
    except ValidationError as err:
        fail(DataError("; ".join(f"--{'-'.join(map(str, e['loc'])).replace('_', '-')}: "
                                  f"{e['msg']}" for e in err.errors())))
    except ValueError as err:
        fail(DataError(f"--quantiles {quantiles!r}: {err}; give levels like 0.1,0.5,0.9"))
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console)
    try:
        portfolio = read_portfolio(data)
        with progress:
            task = progress.add_task(f"backtest {kind} {site}", total=None)
            res = run_backtest(
                portfolio, site, start, end, config, kind=kind, out_dir=out,
                log_mlflow=log_mlflow,
                on_schedule=lambda n: progress.update(task, total=n),
                on_progress=lambda n: progress.advance(task, n))
    except (DataError, ValueError, TrackingUnavailableError) as err:
        fail(err)
    result = res["result"]
    table = Table("metric", "value", title=f"backtest {kind} {site} ({schedule}, "
                  f"{len(result.fits)} fits)")
    for key, value in result.overall.items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    table.add_row("fit seconds (mean)", f"{np.mean(result.fits['fit_seconds']):.2f}")
    Console().print(table)
    if res["paths"]:
        console.print(f"wrote forecasts and metrics to {out}")
    if res["run_id"]:
        console.print(f"MLflow run {res['run_id']} (experiment vpp-backtest) in {tracking_uri()}")
