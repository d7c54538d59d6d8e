"""``vpp nightly`` and ``vpp schedule`` (mounted into ``pipelines.cli``)."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time
from datetime import datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from forecasting.errors import DataError
from pipelines.cli_common import fail, help_text, parse_time

app = typer.Typer()
console = Console(stderr=True)
log = logging.getLogger("vpp.schedule")
DATA_OPT = typer.Option(..., "--data", help="portfolio directory (DATA_FORMAT.md)", exists=True,
                        file_okay=False)
HISTORY_OPT = typer.Option(None, help="append one JSON line per run to this file")

EXIT_MEANING = {0: "all sites forecast", 1: "some sites failed", 2: "bad options",
                3: "nothing produced"}

NIGHTLY_DOC = """
Nightly batch: D+1 and D+2 forecasts of every site into the forecast store, retraining
models that went stale (no champion, older than --max-model-age-days, or drifted:
MAE over the last --drift-days settled days above --drift-ratio x its own held-out MAE).
One bad site never stops the others; each is reported with its reason. One MLflow run
(experiment vpp-nightly) records the night.

Exit status: 0 every site forecast (climatology fallbacks included, flagged in the quality
column); 1 some sites failed (listed with their reasons; also when the MLflow summary
could not be logged); 2 bad options; 3 nothing produced (portfolio unreadable, registry
unreachable, or every site failed).
"""


class _Rate(ProgressColumn):
    """Sites per second of a task (rich's moving estimate)."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.1f} sites/s" if speed else "- sites/s", style="progress.data.speed")


class _RichProgress:
    """``pipelines.nightly.Progress`` on a rich progress bar: sites/s and ETA per phase."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def start(self, phase: str, total: int) -> None:
        self.tasks[phase] = self.progress.add_task(phase, total=total)

    def advance(self, phase: str, n: int = 1) -> None:
        self.progress.advance(self.tasks[phase], n)


def _issue(text: str) -> pd.Timestamp:
    if text == "now":
        return pd.Timestamp.now(tz="UTC").floor("15min")
    return parse_time(text, "--issue-time").tz_convert("UTC")


@app.command("nightly", help=help_text(NIGHTLY_DOC))
def nightly(
    data: Path = DATA_OPT,
    issue_time: str = typer.Option("now", "--issue-time", help="ISO time with offset, or "
                                   "'now' (floored to the quarter-hour); only data known "
                                   "then is used"),
    sites: str = typer.Option(None, help="comma-separated site ids (default: every site)"),
    cluster: str = typer.Option("local", help="'local' (a Dask LocalCluster on 127.0.0.1 "
                                "when --workers > 1, else this process) or a running "
                                "scheduler, tcp://HOST:8786"),
    workers: int = typer.Option(2, min=1, help="local Dask worker processes, one thread "
                                "each (1 = no cluster)"),
    store: str = typer.Option(None, help="forecast store: a folder (Parquet) or a SQLAlchemy "
                              "URL (default: $VPP_FORECAST_STORE_URL, else "
                              "var/forecast_store)"),
    max_model_age_days: float = typer.Option(30, help="retrain when the champion's newest "
                                             "training data is older than this at the issue"),
    drift_ratio: float = typer.Option(1.5, help="retrain when settled MAE / held-out MAE "
                                      "exceeds this"),
    drift_days: int = typer.Option(7, help="settled local days before the issue day scored"),
    quantiles: str = typer.Option("0.1,0.5,0.9", help="levels forecast and stored"),
    retrain: bool = typer.Option(True, "--retrain/--no-retrain", help="--no-retrain: decide "
                                 "and report only (e.g. close to the deadline)"),
    n_estimators: int = typer.Option(None, help="boosting rounds per level of a retraining "
                                     "fit (default 150)"),
    holdout_days: float = typer.Option(14, help="held-out days of a retraining fit"),
):
    from pydantic import ValidationError

    from inference.forecast_store import ForecastStoreError, open_store
    from pipelines.config import TrainingConfig
    from pipelines.nightly import NightlyConfig, run_nightly
    from pipelines.tracking import tracking_uri

    try:
        issue = _issue(issue_time)
        levels = tuple(float(q) for q in quantiles.split(","))
        training = {"holdout_days": holdout_days}
        if n_estimators:
            training["n_estimators"] = n_estimators
        config = NightlyConfig(quantiles=levels, max_model_age_days=max_model_age_days,
                               drift_ratio=drift_ratio, drift_days=drift_days, retrain=retrain,
                               training=TrainingConfig(**training))
        target = open_store(store)
    except ValidationError as err:
        fail(DataError("; ".join(f"--{str(e['loc'][-1]).replace('_', '-')}: {e['msg']}"
                                 for e in err.errors())))
    except ValueError as err:  # DataError included: bad time or levels
        fail(err)
    except ForecastStoreError as err:
        fail(err)
    site_ids = [s.strip() for s in sites.split(",") if s.strip()] if sites else None
    import mlflow  # noqa: F401 - importing sets its loggers up (INFO): quiet them again

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    if cluster != "local" or workers > 1:
        import distributed  # noqa: F401 - the same for Dask's

        logging.getLogger("distributed").setLevel(logging.WARNING)
    bar = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                   _Rate(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                   console=console)
    try:
        with bar:
            report = run_nightly(data, issue, target, config, site_ids=site_ids,
                                 cluster=cluster, workers=workers, uri=tracking_uri(),
                                 progress=_RichProgress(bar))
    except DataError as err:  # unknown --sites
        fail(err)
    _print_summary(report)
    raise typer.Exit(report.exit_status)


def _print_summary(report, max_rows: int = 40) -> None:
    out = Console()
    counts = report.counts()
    t = report.timings
    summary = Table("sites", "done", "retrained", "promoted", "fallen back", "failed",
                    "seconds", "sites/s",
                    title=f"nightly issued {report.issue_time.isoformat()}")
    work = t.get("assess_forecast_seconds", 0) + t.get("retrain_seconds", 0)
    summary.add_row(*(str(counts[k]) for k in ("sites", "done", "retrained", "promoted",
                                               "fallen_back", "failed")),
                    f"{t.get('total_seconds', 0):.1f}",
                    f"{counts['sites'] / work:.1f}" if work > 0 else "")
    out.print(summary)
    reasons = report.reasons()
    if len(reasons):
        table = Table("what happened", "sites", "examples", title="reasons")
        for row in reasons.itertuples(index=False):
            table.add_row(row.category, str(row.sites), row.examples)
        out.print(table)
    sites = report.table()
    attention = sites[(sites["status"] != "ok") | sites["retrained"] | (sites["reason"] != "")]
    if len(attention):
        table = Table("site", "kind", "status", "forecast by", "settled/held-out MAE",
                      "quality", "reason", title="sites needing attention"
                      + (f" (first {max_rows} of {len(attention)})"
                         if len(attention) > max_rows else ""))
        for row in attention.head(max_rows).itertuples(index=False):
            style = {"failed": "red", "fallback": "yellow"}.get(row.status, "")
            ratio = f"{row.mae_ratio:.2f}" if pd.notna(row.mae_ratio) else ""
            table.add_row(row.site_id, row.kind, f"[{style}]{row.status}[/{style}]" if style
                          else row.status, row.model_version, ratio, row.quality,
                          row.reason, )
        out.print(table)
    if report.error:
        console.print(f"[red]error:[/red] {report.error}", soft_wrap=True)
    if report.summary_error:
        console.print(f"[red]MLflow summary not logged:[/red] {report.summary_error}")
    console.print(f"store {report.store}; MLflow run {report.run_id or '-'} (experiment "
                  f"vpp-nightly); exit {report.exit_status} "
                  f"({EXIT_MEANING[report.exit_status]})")


# --- vpp schedule -------------------------------------------------------------------------

SCHEDULE_DOC = """
Run `vpp nightly` on a cron schedule: a long-running process that starts each run as a
child process at every fire time and logs its start, exit status and duration (and, with
--history, appends one JSON line per run). Example:

vpp schedule --cron "30 22 * * *" --timezone Asia/Shanghai -- --data var/sample_portfolio
--workers 2

Everything after -- is passed to `vpp nightly`. A run that overruns the next fire time
delays it (runs never overlap). A run exiting 2 (bad options) stops the schedule: fix the
command. Stop with SIGTERM or Ctrl-C (a running child is killed). See deploy/ for systemd,
cron and Airflow alternatives.
"""


def _zone(name: str) -> tzinfo:
    if name == "local":
        return datetime.now().astimezone().tzinfo
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DataError(f"--timezone {name!r} is not an IANA zone; give e.g. Asia/Shanghai "
                        "or 'local'") from None


def next_fire(cron: str, after: datetime) -> datetime:
    """The first fire time of ``cron`` strictly after ``after`` (tz-aware, in its zone)."""
    from croniter import croniter

    return croniter(cron, after).get_next(datetime)


def schedule_loop(cron: str, command: list[str], zone: tzinfo, max_runs: int = 0,
                  run_now: bool = False, history: Path | None = None, run=subprocess.call,
                  clock=None, sleep=time.sleep) -> int:
    """Run ``command`` at each fire time of ``cron`` in ``zone``; returns the last exit status.

    ``max_runs`` 0 runs forever. ``run``, ``clock`` (a function returning the tz-aware now)
    and ``sleep`` are injectable for tests. Sleeps in steps of at most a minute, re-reading
    the clock, so a suspended machine or a clock change is caught up.
    """
    clock = clock or (lambda: datetime.now(zone))
    runs, status = 0, 0
    due = clock() if run_now else next_fire(cron, clock())
    while not max_runs or runs < max_runs:
        log.info("next nightly run at %s", due.isoformat())
        while (left := (due - clock()).total_seconds()) > 0:
            sleep(min(left, 60.0))
        started = clock()
        log.info("nightly run %d started at %s: %s", runs + 1, started.isoformat(),
                 " ".join(command))
        t0 = time.perf_counter()
        status = run(command)
        seconds = time.perf_counter() - t0
        meaning = EXIT_MEANING.get(status, f"killed by signal {-status}" if status < 0
                                   else "unexpected")
        (log.info if status == 0 else log.error)(
            "nightly run %d finished: exit %d (%s) after %.1f s", runs + 1, status, meaning,
            seconds)
        if history is not None:
            history.parent.mkdir(parents=True, exist_ok=True)
            with open(history, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"started": started.isoformat(), "seconds":
                                         round(seconds, 1), "exit_status": status,
                                         "meaning": meaning, "command": command}) + "\n")
        runs += 1
        if status == 2:
            log.error("the nightly command's options are wrong; stopping the schedule")
            return status
        due = next_fire(cron, clock())
    return status


def _interrupt(signum, frame):
    raise KeyboardInterrupt


@app.command("schedule", help=help_text(SCHEDULE_DOC),
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def schedule(
    ctx: typer.Context,
    cron: str = typer.Option(..., help="five-field cron expression, e.g. '30 22 * * *'"),
    timezone: str = typer.Option("local", help="zone the cron expression is read in "
                                 "(IANA name, or 'local': this machine's)"),
    run_now: bool = typer.Option(False, "--run-now", help="run once at start, then follow "
                                 "the schedule"),
    max_runs: int = typer.Option(0, min=0, help="stop after this many runs (0 = never)"),
    history: Path = HISTORY_OPT,
):
    from croniter import croniter

    if not croniter.is_valid(cron):
        fail(DataError(f"--cron {cron!r} is not a cron expression; give five fields such as "
                       "'30 22 * * *' (minute hour day month weekday)"))
    try:
        zone = _zone(timezone)
    except DataError as err:
        fail(err)
    nightly_args = list(ctx.args)
    if not nightly_args:
        fail(DataError("give the nightly options after --, e.g. -- --data var/sample_portfolio"))
    command = [sys.executable, "-m", "pipelines.cli", "nightly", *nightly_args]
    signal.signal(signal.SIGTERM, _interrupt)  # systemd's stop: kill the child, then exit
    try:
        status = schedule_loop(cron, command, zone, max_runs, run_now, history)
    except KeyboardInterrupt:
        log.info("schedule stopped")
        raise typer.Exit(0) from None
    raise typer.Exit(status if status == 2 else 0)
