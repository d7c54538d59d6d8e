"""The ``vpp`` command line. Every command has ``--help``.

Data errors end the command with exit code 2 and a message that says what to fix; in
multi-site commands (``train-all``) a failing site is reported and the others go on.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forecasting.errors import DataError, ModelNotFoundError
from forecasting.portfolio import as_utc, read_portfolio
from pipelines import (  # the sub-apps: their commands join this app (_mount, below)
    cli_backtest,
    cli_baselines,
    cli_bid,
    cli_capability,
    cli_dispatch,
    cli_keys,
    cli_nightly,
    cli_response,
)
from pipelines.cli_common import fail
from pipelines.tracking import TrackingUnavailableError, tracking_uri

app = typer.Typer(help="VPP forecasting and baseline service: data, training, forecasts, "
                       "serving. Tracking store: MLFLOW_TRACKING_URI (default: the sqlite "
                       "file var/mlflow/mlflow.db).", no_args_is_help=True,
                  pretty_exceptions_enable=False)
console = Console(stderr=True)
log = logging.getLogger("vpp")

DataOpt = Annotated[Path, typer.Option("--data", help="portfolio directory (DATA_FORMAT.md)",
                                       exists=True, file_okay=False)]
ALL_KINDS = ["load", "pv", "wind"]  # default of --kind (click hands the command a new list)


@app.callback()
def _main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="debug logs")] = False):
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=console, show_path=False)])
    for noisy in ("alembic", "urllib3", "distributed", "bentoml", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # mlflow warns on every pickled pyfunc model; its errors still show
    logging.getLogger("mlflow").setLevel(logging.ERROR)


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=console)


def _quantiles(text: str | None) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        return tuple(float(q) for q in text.split(","))
    except ValueError:
        fail(DataError(f"--quantiles {text!r}: give levels like 0.1,0.5,0.9"))


@app.command("sample-data")
def sample_data(
    out: Annotated[Path, typer.Option("--out", help="directory to write")],
    seed: Annotated[int, typer.Option(help="random seed (same seed, same data)")] = 7,
    start: Annotated[str, typer.Option(help="first local day (Asia/Shanghai)")] = "2024-01-01",
    end: Annotated[str, typer.Option(help="day after the last, local")] = "2025-07-01",
):
    """Write the SYNTHETIC sample portfolio (20 C&I customers, 3 PV, 2 wind; demo data)."""
    from forecasting.synthetic import generate_portfolio

    t0 = time.perf_counter()
    with console.status(f"generating synthetic portfolio {start}..{end} seed {seed}"):
        generate_portfolio(out, seed=seed, start=start, end=end)
    console.print(f"wrote synthetic portfolio to {out} in {time.perf_counter() - t0:.1f} s")


@app.command()
def validate(data: DataOpt):
    """Read and validate a portfolio; print its sites and any notes (gaps, dropped rows)."""
    try:
        portfolio = read_portfolio(data)
    except DataError as err:
        fail(err)
    table = Table("site_id", "kind", "resolution", "readings", "from", "to")
    counts = portfolio.measurements.groupby("site_id")["timestamp"].agg(["count", "min", "max"])
    for sid, site in portfolio.sites.items():
        row = counts.loc[sid] if sid in counts.index else None
        table.add_row(sid, site.kind, f"{site.resolution_minutes} min",
                      str(row["count"]) if row is not None else "0",
                      str(row["min"]) if row is not None else "", str(row["max"]) if row is not None
                      else "")
    Console().print(table)
    for note in portfolio.notes:
        console.print(f"note: {note}")
    console.print(f"[green]ok[/green]: {len(portfolio.sites)} sites, "
                  f"{len(portfolio.measurements)} readings, {len(portfolio.weather)} weather rows")


def _config(quantiles: str | None, holdout_days: float, n_estimators: int | None,
            features: str = "default", extra_weather_columns: str | None = None,
            max_training_days: float | None = None, random_state: int | None = None):
    from pipelines.config import TrainingConfig

    kwargs = {"holdout_days": holdout_days, "features": features}
    if quantiles:
        kwargs["quantiles"] = _quantiles(quantiles)
    if n_estimators:
        kwargs["n_estimators"] = n_estimators
    if extra_weather_columns:
        kwargs["extra_weather_columns"] = tuple(
            c.strip() for c in extra_weather_columns.split(",") if c.strip())
    if max_training_days is not None:
        kwargs["max_training_days"] = max_training_days if max_training_days > 0 else None
    if random_state is not None:
        kwargs["random_state"] = random_state
    try:
        return TrainingConfig(**kwargs)
    except ValueError as err:  # pydantic's ValidationError names the field and the rule
        fail(DataError(f"training options: {err}"))


@app.command()
def train(
    data: DataOpt,
    kind: Annotated[str, typer.Option(help="load, pv or wind")],
    site: Annotated[str, typer.Option(help="site_id from sites.csv")],
    train_end: Annotated[str | None, typer.Option(
        "--train-end", help="ISO time with offset; train on measurements "
                            "strictly before it (default: all)")] = None,
    holdout_days: Annotated[float, typer.Option(
        help="days before train end scored by a fit made before them (promotion compares "
             "these scores); the registered model is then refitted on all history")] = 14,
    quantiles: Annotated[str | None, typer.Option(
        help="levels to train, e.g. 0.1,0.5,0.9 (others are interpolated at forecast time)")
    ] = None,
    n_estimators: Annotated[int | None, typer.Option(help="boosting rounds per level")] = None,
    features: Annotated[str, typer.Option(
        help="default (history, weather, prices, calendar) or weather_only (no measured "
             "history, no prices: forecasts any horizon from the NWP)")] = "default",
    extra_weather_columns: Annotated[str | None, typer.Option(
        help="comma-separated weather columns outside the contract to use as features")] = None,
    max_training_days: Annotated[float | None, typer.Option(
        help="days of history used (default 730; 0 = all)")] = None,
    seed: Annotated[int | None, typer.Option(help="random seed of the fit (default 0)")] = None,
    no_plots: Annotated[bool, typer.Option(
        "--no-plots", help="log no figures in the run (faster retrains of many sites); "
        "metrics, tables and the model are logged as always")] = False,
):
    """Train one site's model, log it to MLflow and register it (champion or challenger).

    Two fits of the same configuration: one before the held-out days, scored on them
    day-ahead (the run's holdout_* metrics), then one on all history before --train-end,
    which is the model registered and served. It becomes champion unless it scores worse
    than the champion on the held-out days the champion was not trained on.
    """
    from pipelines.training import train_site

    config = _config(quantiles, holdout_days, n_estimators, features, extra_weather_columns,
                     max_training_days, seed)
    if no_plots:
        config = config.model_copy(update={"log_plots": False})
    try:
        portfolio = read_portfolio(data)
        with console.status(f"training {kind} model for {site}"):
            out = train_site(portfolio, site, config, train_end=train_end, kind=kind)
    except (DataError, ValueError, TrackingUnavailableError) as err:
        fail(err)
    m = out["metrics"]
    console.print(f"{out['name']} v{out['version']} -> [bold]{out['alias']}[/bold] "
                  f"({out['reason']}); held-out MAE {m['mae']:.3f} kW, RMSE {m['rmse']:.3f}, "
                  f"mean pinball {m['mean_pinball']:.3f}, P10-P90 coverage "
                  f"{m.get('coverage_p10_p90', float('nan')):.2f}; registered fit on history "
                  f"to {out['fit_end']}; run {out['run_id']} in {tracking_uri()}")


@app.command("train-all")
def train_all(
    data: DataOpt,
    kind: Annotated[list[str], typer.Option(help="kinds to train")] = ALL_KINDS,
    workers: Annotated[int, typer.Option(help="parallel Dask worker processes (1 = none)")] = 2,
    scheduler_address: Annotated[str | None, typer.Option(
        help="a running Dask scheduler (tcp://host:8786) instead of local workers")] = None,
    holdout_days: Annotated[float, typer.Option(help="held-out days per site")] = 14,
    n_estimators: Annotated[int | None, typer.Option(help="boosting rounds per level")] = None,
    skip_trained: Annotated[bool, typer.Option(
        help="skip sites that already have a champion (fast restarts)")] = False,
):
    """Train every site of the given kinds; a failing site is reported, the rest go on."""
    from pipelines.batch import train_many, untrained_sites

    try:
        portfolio = read_portfolio(data)
    except DataError as err:
        fail(err)
    sites = [s.site_id for s in portfolio.sites.values() if s.kind in kind]
    if skip_trained:
        todo = untrained_sites(portfolio, sites)
        console.print(f"{len(sites) - len(todo)} of {len(sites)} sites already have a champion; "
                      f"training {len(todo)}")
        sites = todo
    if not sites:
        return
    config = _config(None, holdout_days, n_estimators)
    with _progress() as progress:
        task = progress.add_task("training sites", total=len(sites))
        results = train_many(portfolio, sites, config, workers=workers,
                             scheduler_address=scheduler_address,
                             on_done=lambda sid: progress.advance(task))
    table = Table("site", "version", "alias", "MAE kW", "P10-P90 cov.", "fit s", "status")
    for r in results:
        if r.get("error"):
            table.add_row(r["site_id"], "", "", "", "", "", f"[red]{r['error']}[/red]")
        else:
            m = r["metrics"]
            table.add_row(r["site_id"], r["version"], r["alias"], f"{m['mae']:.1f}",
                          f"{m.get('coverage_p10_p90', float('nan')):.2f}",
                          f"{r['fit_seconds']:.1f}", "ok")
    Console().print(table)
    failed = [r for r in results if r.get("error")]
    if failed:
        console.print(f"[yellow]{len(failed)} of {len(results)} sites failed[/yellow]")
    if len(failed) == len(results) and results:
        raise typer.Exit(1)


@app.command()
def forecast(
    *,  # keyword-only, so --out keeps its place after --quantiles in --help
    data: DataOpt,
    kind: Annotated[str, typer.Option(help="load, pv or wind")],
    site: Annotated[str, typer.Option(help="site_id")],
    issue_time: Annotated[str, typer.Option(
        "--issue-time", help="ISO time with offset, or 'now' (floored to the site's "
        "resolution); only data known then is used")],
    start: Annotated[str | None, typer.Option(
        help="first interval start, ISO with offset (with --end)")] = None,
    end: Annotated[str | None, typer.Option(
        help="end of the window (exclusive), ISO (with --start)")] = None,
    horizon: Annotated[str | None, typer.Option(
        help="instead of --start/--end: intraday (next 4 h), day_ahead (the next local day, "
        "the default) or d_plus_2 (the day after)")] = None,
    quantiles: Annotated[str, typer.Option(help="levels, e.g. 0.1,0.5,0.9")] = "0.1,0.5,0.9",
    out: Annotated[Path, typer.Option("--out", help="CSV file to write")],
    explain: Annotated[bool, typer.Option(
        "--explain", help="also write the median's top feature contributions per timestamp "
        "(TreeSHAP, kW) to --explain-out")] = False,
    explain_out: Annotated[Path | None, typer.Option(
        "--explain-out", help="CSV of the contributions (default: <out>_explain.csv beside "
        "--out); implies --explain")] = None,
    explain_top: Annotated[int, typer.Option(
        "--explain-top", min=1, help="contributions kept per timestamp")] = 5,
):
    """Forecast with the site's champion model and write the forecast output format.

    The same path as POST /forecast and the batch (inference.forecast): the window is
    --start/--end, or --horizon (default day_ahead)."""
    from inference.forecast import forecast_site, write_forecast_csv

    try:
        portfolio = read_portfolio(data)
        frame = forecast_site(portfolio, kind, site, issue_time, start, end,
                              _quantiles(quantiles), horizon=horizon)
    except (DataError, ModelNotFoundError, TrackingUnavailableError, ValueError) as err:
        fail(err)
    timezone = portfolio.site(site).timezone
    write_forecast_csv(frame, out, timezone)
    console.print(f"wrote {len(frame)} rows to {out} (model {frame['model_version'].iloc[0]})")
    if explain or explain_out is not None:
        from pipelines.explain import (
            ExplanationUnavailableError,
            default_explain_path,
            explain_site,
            write_explanation_csv,
        )

        path = explain_out or default_explain_path(out)
        try:
            contributions = explain_site(portfolio, kind, site, issue_time, start, end,
                                         explain_top, horizon=horizon)
        except ExplanationUnavailableError as err:
            console.print(f"[yellow]no explanation written: {err}[/yellow]")
            return
        except (DataError, ModelNotFoundError, TrackingUnavailableError, ValueError) as err:
            fail(err)
        write_explanation_csv(contributions, path, timezone)
        console.print(f"wrote the top {explain_top} contributions per timestamp "
                      f"({len(contributions)} rows) to {path}")


@app.command("batch-forecast")
def batch_forecast(
    *,  # keyword-only, so --out keeps its place last in --help
    data: DataOpt,
    issue_time: Annotated[str, typer.Option(
        "--issue-time", help="ISO time with offset, or 'now'")] = "now",
    horizon: Annotated[str, typer.Option(help="intraday, day_ahead or d_plus_2")] = "day_ahead",
    kind: Annotated[list[str], typer.Option(help="kinds")] = ALL_KINDS,
    quantiles: Annotated[str, typer.Option(help="levels")] = "0.1,0.5,0.9",
    out: Annotated[Path, typer.Option(
        "--out", help="directory for the CSV and the failure report")],
):
    """Nightly batch: forecast every site with its champion; failing sites are reported.

    Writes ``forecasts_<issue>.csv`` (output format, UTC offsets) and, when a site fails,
    ``failures_<issue>.csv``; exits 1 only if every site failed. Schedule it with cron or
    a systemd timer, e.g. ``30 11 * * * cd /srv/vpp && make batch`` for the 12:00 bid.
    """
    from inference.forecast import issue_time_of, write_forecast_csv
    from pipelines.batch import forecast_many

    try:
        portfolio = read_portfolio(data)
        sites = [s.site_id for s in portfolio.sites.values() if s.kind in kind]
        # one issue for the batch: "now" floored to the coarsest resolution, on every grid
        coarsest = max((portfolio.site(s) for s in sites), default=None,
                       key=lambda s: s.resolution_minutes)
        issue = (issue_time_of(issue_time, coarsest) if coarsest is not None
                 else as_utc(issue_time, "--issue-time"))
    except DataError as err:
        fail(err)
    with _progress() as progress:
        task = progress.add_task(f"forecasting {horizon} issued {issue}", total=len(sites))
        frame, failures = forecast_many(portfolio, sites, issue, horizon, _quantiles(quantiles),
                                        on_done=lambda sid: progress.advance(task))
    out.mkdir(parents=True, exist_ok=True)
    stamp = issue.strftime("%Y%m%dT%H%MZ")
    if not frame.empty:
        path = out / f"forecasts_{stamp}.csv"
        write_forecast_csv(frame, path)  # several sites: UTC offsets
        console.print(f"wrote {len(frame)} rows for {frame['site_id'].nunique()} sites to {path}")
    report = out / f"failures_{stamp}.csv"
    if not failures and report.exists():  # a rerun that succeeded: the old report is stale
        report.unlink()
        console.print(f"removed {report}: every site succeeded this time")
    if failures:
        pd.DataFrame(failures).to_csv(report, index=False)
        console.print(f"[yellow]{len(failures)} of {len(sites)} sites failed[/yellow] "
                      f"(see {out / f'failures_{stamp}.csv'})")
        if len(failures) == len(sites):
            raise typer.Exit(1)


@app.command()
def serve(
    data: DataOpt,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port")] = 3000,
    local_key_file: Annotated[Path | None, typer.Option(
        help="use the API key saved in this file (client 'local'), creating it (mode 0600) "
             "when it holds no valid key, and print it with the example request")] = None,
    no_auth: Annotated[bool, typer.Option(
        "--no-auth", help="serve WITHOUT authentication (local experiments only)")] = False,
):
    """Serve the BentoML API (POST /forecast ...) over the portfolio and the registry.

    Every endpoint but /livez, /readyz, /metrics and the docs needs an API key
    (`vpp keys create`); calls are written to the audit log (`vpp audit tail`).
    """
    from inference.audit import audit_path
    from inference.keys import keys_url

    keys = keys_url()
    if keys.startswith("sqlite:///") and not Path(keys.removeprefix("sqlite:///")).is_absolute():
        keys = f"sqlite:///{Path(keys.removeprefix('sqlite:///')).resolve()}"
    env = {**os.environ, "VPP_DATA_DIR": str(data.resolve()),
           "MLFLOW_TRACKING_URI": tracking_uri(), "OMP_NUM_THREADS": "1",
           "VPP_KEYS_URL": keys, "VPP_AUDIT_LOG": str(audit_path().resolve())}
    base = f"http://{host}:{port}"
    example = _example_request(data)
    lines = [f"API docs (Swagger UI): {base}/    OpenAPI: {base}/docs.json",
             f"MLflow store: {tracking_uri()}",
             f"  browse it: .venv/bin/mlflow ui --backend-store-uri {tracking_uri()}",
             (f"API keys: {keys} (vpp keys list); audit log: {env['VPP_AUDIT_LOG']} "
              "(vpp audit tail)")]
    if no_auth:
        env["VPP_AUTH_DISABLED"] = "1"
        log.error("--no-auth: AUTHENTICATION IS DISABLED; anyone who reaches %s can call "
                  "every endpoint", base)
    elif local_key_file is not None:
        from pipelines.cli_keys import local_key

        key, created = local_key(local_key_file)
        lines += [(f"API key of client 'local' ({'created, ' if created else ''}saved in "
                   f"{local_key_file}, mode 0600):"), f"  export VPP_API_KEY={key}"]
    else:
        lines.append("API key: create one with `vpp keys create --client NAME --scopes "
                     "forecast:read` and export it as VPP_API_KEY")
    print("\n".join(lines), file=sys.stderr, flush=True)  # plain: no wrapping, copy-pastable
    cmd = [sys.executable, "-m", "bentoml", "serve", "serving.service:VPPService", "--host", host,
           "--port", str(port)]
    server = subprocess.Popen(cmd, env=env)
    # a SIGTERM (systemd, a supervisor, a test) stops the server too, not only vpp serve
    signal.signal(signal.SIGTERM, lambda *_: server.terminate())
    curl = None
    if example:
        auth = "" if no_auth else ' -H "Authorization: Bearer $VPP_API_KEY"'
        curl = (f"  curl -s -X POST {base}/forecast{auth} -H 'Content-Type: application/json' "
                f"-d '{example}'")
    watcher = threading.Thread(target=_announce_ready, args=(server, base, curl), daemon=True)
    watcher.start()
    try:
        raise typer.Exit(server.wait())
    except KeyboardInterrupt:
        server.terminate()
        raise typer.Exit(server.wait()) from None


def _announce_ready(server: subprocess.Popen, base: str, curl: str | None,
                    timeout_s: float = 600) -> None:
    """Print READY (with the example request) once ``/readyz`` answers, or say it did not."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.poll() is None:
        try:
            r = httpx.get(f"{base}/readyz", timeout=2)
        except httpx.HTTPError:
            time.sleep(0.5)
            continue
        try:
            details = r.json()
        except ValueError:
            details = {}
        registry = details.get("registry", {}).get("status", "?")
        state = details.get("status", "ok" if r.status_code == 200 else "not ready")
        lines = [f"READY: {base} answers ({state}; {details.get('portfolio_sites', '?')} "
                 f"sites; model registry {registry})" if r.status_code == 200 else
                 f"NOT READY: {base} answers /readyz {r.status_code} ({state}; model registry "
                 f"{registry}: {details.get('registry', {}).get('error', '')})"]
        if curl and r.status_code == 200:
            lines += ["example request:", curl]
        print("\n".join(lines), file=sys.stderr, flush=True)
        return
    if server.poll() is None:
        print(f"the server did not answer {base}/readyz within {timeout_s:.0f} s",
              file=sys.stderr, flush=True)


def _example_request(data: Path) -> str | None:
    try:
        portfolio = read_portfolio(data)
    except DataError:
        return None
    loads = portfolio.sites_of_kind("load")
    if not loads:
        return None
    site = loads[0]
    last = portfolio.measurements.loc[portfolio.measurements["site_id"] == site.site_id,
                                      "timestamp"].max().tz_convert(site.timezone)
    issue = last.normalize() - pd.Timedelta(hours=12)
    return (f'{{"site_id": "{site.site_id}", "issue_time": "{issue.isoformat()}", '
            f'"horizon": "day_ahead"}}')


def _mount(*modules) -> None:
    """The commands and groups of the other ``cli_*`` modules, imported plainly above (so
    the import-contract test sees them), on this one ``vpp`` app."""
    for sub in modules:
        for command in sub.app.registered_commands:
            app.registered_commands.append(command)
        app.registered_groups.extend(sub.app.registered_groups)  # vpp keys ..., vpp audit ...


_mount(cli_backtest, cli_baselines, cli_dispatch, cli_response, cli_keys, cli_nightly, cli_bid,
       cli_capability)

if __name__ == "__main__":
    app()
