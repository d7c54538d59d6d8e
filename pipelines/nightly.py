"""The nightly job: fresh D+1 and D+2 forecasts of every site, models retrained where stale.

``run_nightly`` works at one issue time T and uses, for every site, only what was known at T:

1. **Inputs.** The portfolio is read and validated; when it does not validate as a whole,
   each site is validated alone and the bad ones are reported (``read_isolated``). The
   inputs known at T are checked (``forecasting.quality.assess``: stale or flatlined
   readings, missing or stale weather): the flags go into the report.
2. **Decision.** A site is retrained when it has no champion; when its champion is older
   than ``max_model_age_days`` (age = T minus the champion's train end, the newest data it
   saw, so a replay of a past night decides as that night would have); or when it has
   drifted: its MAE (P50 against the readings) over the last ``drift_days`` settled local
   days, divided by its own held-out MAE (the ``holdout_mae`` metric of its training run),
   exceeds ``drift_ratio``. The settled days' forecasts are the champion's own, taken from
   the forecast store (the latest issue before each day, that model version only) or, where
   the store has none, recomputed day-ahead, issued the day before at T's local time of day
   (``day_ahead_schedule`` + ``forecast_core``). Climatology-fallback rows are not the
   model's and are left out. A site whose readings are stale is not retrained (the fit
   would ignore the latest days); it is reported.
3. **Retraining** is the product's path: ``train_core(data, training, train_end=T)`` (fits on
   the Dask workers, one LightGBM thread each) and ``log_and_register`` on the driver (the
   only MLflow writer). The new version becomes champion by the existing ``promote`` rule
   (mean pinball on the same held-out window); otherwise it is the challenger and the old
   champion forecasts.
4. **Forecasts** of D+1 and D+2 (the next two local days after T, at the site's
   resolution, at ``quantiles``) come from ``forecast_core`` (the one forecast function:
   input checks, flagged climatology fallback, ``quality`` column) and are written to the
   forecast store, one write per kind: a rerun for the same T replaces, never duplicates.
5. **Summary.** One MLflow run (experiment ``vpp-nightly``) records the night: counts (done,
   retrained, fallen back, failed), the reasons table, the per-site report, timings and a
   plot of yesterday's settled accuracy per site (MAE / mean measured value).

One bad site never stops the others: its failure is caught where it happens, reported with
its reason, and the rest go on. ``NightlyReport.exit_status``: 0 every site forecast
(fallbacks included, flagged), 1 some sites failed, 3 nothing produced.

Scale-out: ``cluster="local"`` with ``workers > 1`` starts a Dask LocalCluster on 127.0.0.1;
``cluster="tcp://host:8786"`` uses a running scheduler. The per-site work (checks, champion
load, settled-day scores, forecast; and the fits) runs on the workers; the portfolio is read
once on the driver and each site's data scattered to a worker (the shared price table once,
broadcast); the workers *read* the registry (MLFLOW_TRACKING_URI must be reachable from them:
a tracking server for a remote cluster), the driver alone writes MLflow and the store.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from forecasting.errors import DataError, UnknownSiteError
from forecasting.io import read_tables
from forecasting.portfolio import Portfolio, Site, SiteData, as_utc, read_portfolio
from forecasting.quality import assess
from forecasting.validation import (
    Notes,
    validate_measurements,
    validate_prices,
    validate_sites,
    validate_weather,
)
from inference.forecast_store import ForecastStore, ForecastStoreError, quantile_columns
from models.quantile import DEFAULT_QUANTILES, check_quantiles
from pipelines.config import TrainingConfig

log = logging.getLogger(__name__)

EXPERIMENT = "vpp-nightly"
FALLBACK_FLAG = "fallback_climatology"
STATUSES = ("ok", "fallback", "failed")
EXIT_OK, EXIT_SOME_FAILED, EXIT_NOTHING = 0, 1, 3


class NightlyConfig(BaseModel):
    """What the night decides and produces; units in the names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    quantiles: tuple[float, ...] = Field(DEFAULT_QUANTILES, description="levels forecast "
                                         "and stored (others than the trained ones are "
                                         "interpolated)")
    max_model_age_days: float = Field(30, gt=0, description="retrain when T minus the "
                                      "champion's train end exceeds this")
    drift_ratio: float = Field(1.5, gt=0, description="retrain when the settled-day MAE "
                               "over the champion's held-out MAE exceeds this")
    drift_days: int = Field(7, ge=1, le=60, description="settled local days before T's day "
                            "that the drift check scores")
    retrain: bool = Field(True, description="False: decide and report, never train")
    training: TrainingConfig = Field(default_factory=TrainingConfig,
                                     description="configuration of the retraining fits")

    @field_validator("quantiles")
    @classmethod
    def _levels(cls, v):
        return check_quantiles(v)


@dataclass
class SiteOutcome:
    """What the night did for one site (one row of the report)."""

    site_id: str
    kind: str
    status: str = "failed"  # ok | fallback | failed
    reason: str = ""  # what happened, "; "-joined; for a failed site why it failed
    input_flags: str = ""  # forecasting.quality flags of the inputs known at T
    champion: str = ""  # <kind>-<site>/<version> serving at T ("" if none)
    champion_train_end: str = ""
    holdout_mae: float = math.nan  # kW, the champion's training run
    settled_mae: float = math.nan  # kW, its P50 on the settled days
    settled_days: int = 0
    settled_source: str = ""  # store, recomputed or store+recomputed
    mae_ratio: float = math.nan  # settled_mae / holdout_mae
    yesterday_mae: float = math.nan  # kW
    yesterday_mean_kw: float = math.nan  # mean measured value yesterday, kW
    failure: str = ""  # class of the failure (error type), for the reasons table
    retrain_reason: str = ""  # no champion | age | drift ("" if not due)
    retrain_due: bool = False  # due and possible (inputs fresh, retraining enabled)
    retrained: bool = False  # a new version was registered tonight
    promotion: str = ""  # "<alias>: <reason>" of tonight's version
    model_version: str = ""  # of the forecast written
    quality: str = ""  # of the forecast written
    seconds: float = 0.0
    forecast: pd.DataFrame | None = field(default=None, repr=False)

    def note(self, text: str) -> None:
        self.reason = f"{self.reason}; {text}" if self.reason else text

    def set_forecast(self, frame: pd.DataFrame) -> None:
        self.forecast = frame
        self.model_version = str(frame["model_version"].iloc[0])
        self.quality = str(frame["quality"].iloc[0])
        self.status = "fallback" if FALLBACK_FLAG in self.quality.split(";") else "ok"

    def fail(self, failure: str, text: str) -> None:
        self.forecast, self.status, self.model_version, self.quality = None, "failed", "", ""
        self.failure = failure
        self.note(text)

    @property
    def category(self) -> str:
        """A short class of what happened, for the reasons table."""
        if self.status == "failed":
            return f"failed: {self.failure}"
        parts = []
        if self.retrained:
            parts.append(f"retrained ({self.retrain_reason}) -> {self.promotion.split(':')[0]}")
        elif self.retrain_reason:
            parts.append(f"retrain due ({self.retrain_reason}), not retrained")
        if self.status == "fallback":
            flags = [f for f in self.quality.split(";") if f != FALLBACK_FLAG]
            parts.append(f"fallback ({', '.join(flags) or 'poor inputs'})")
        return "; ".join(parts) or "ok"

    def row(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "forecast"}


@dataclass
class NightlyReport:
    issue_time: pd.Timestamp
    outcomes: list[SiteOutcome]
    timings: dict[str, float]
    store: str
    run_id: str | None = None  # of the MLflow summary run
    error: str = ""  # a failure of the night as a whole (nothing could run)
    summary_error: str = ""  # the MLflow summary could not be logged

    def counts(self) -> dict[str, int]:
        status = [o.status for o in self.outcomes]
        return {"sites": len(self.outcomes),
                "done": sum(s != "failed" for s in status),
                "retrained": sum(o.retrained for o in self.outcomes),
                "promoted": sum(o.promotion.startswith("champion") for o in self.outcomes),
                "fallen_back": status.count("fallback"),
                "failed": status.count("failed")}

    @property
    def exit_status(self) -> int:
        counts = self.counts()
        if self.error or counts["done"] == 0:
            return EXIT_NOTHING
        return EXIT_SOME_FAILED if counts["failed"] or self.summary_error else EXIT_OK

    def table(self) -> pd.DataFrame:
        """One row per site (no forecasts), sorted by site."""
        rows = [o.row() | {"category": o.category} for o in self.outcomes]
        frame = pd.DataFrame(rows, columns=[*(f.name for f in fields(SiteOutcome)
                                              if f.name != "forecast"), "category"])
        return frame.sort_values("site_id", ignore_index=True)

    def reasons(self) -> pd.DataFrame:
        """Sites per category of outcome, with up to five example sites each."""
        table = self.table()
        if table.empty:
            return pd.DataFrame(columns=["category", "sites", "examples"])
        grouped = table.groupby("category")["site_id"]
        return pd.DataFrame({"sites": grouped.size(),
                             "examples": grouped.agg(lambda s: ", ".join(list(s)[:5]))}
                            ).reset_index().sort_values("sites", ascending=False,
                                                        ignore_index=True)

    def forecasts(self) -> pd.DataFrame:
        frames = [o.forecast for o in self.outcomes if o.forecast is not None]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


class Progress(Protocol):
    def start(self, phase: str, total: int) -> None: ...

    def advance(self, phase: str, n: int = 1) -> None: ...


class _NoProgress:
    def start(self, phase: str, total: int) -> None:
        pass

    def advance(self, phase: str, n: int = 1) -> None:
        pass


# --- reading the portfolio, one bad site at a time ----------------------------------------

def read_isolated(directory: Path | str
                  ) -> tuple[Portfolio, dict[str, tuple[str, DataError]]]:
    """The portfolio's valid sites, and for each invalid site its kind and the error that
    left it out.

    First the whole portfolio is validated (``read_portfolio``); when that fails, each site's
    measurements and weather are validated alone with the same rules, so one site's bad rows
    cost only that site. What all sites share (the files themselves, ``sites``, ``prices``)
    still stops the night when broken: that is raised. Events and resources are not needed
    at night and are left out of an isolated read.
    """
    try:
        return read_portfolio(directory), {}
    except DataError as err:
        log.warning("portfolio %s does not validate as a whole (%s); validating each site "
                    "alone", directory, err)
    directory = Path(directory)
    tables = read_tables(directory)
    path, raw = tables["sites"]
    sites_frame = validate_sites(raw, str(path))
    prices = (validate_prices(tables["prices"][1], str(tables["prices"][0]))
              if "prices" in tables else _empty_times(["timestamp", "issue_time", "market"]))
    meas_path, raw_meas = tables["measurements"]
    wx_path, raw_wx = tables.get("weather", (None, None))
    meas_rows = raw_meas.groupby(raw_meas["site_id"].astype("string"), sort=False).indices
    wx_rows = ({} if raw_wx is None else
               raw_wx.groupby(raw_wx["site_id"].astype("string"), sort=False).indices)
    unknown = sorted(set(meas_rows) - set(sites_frame.index))
    if unknown:
        log.warning("%s: rows of sites that sites.csv does not declare are ignored: %s",
                    meas_path, ", ".join(unknown[:10]))
    invalid: dict[str, tuple[str, DataError]] = {}
    sites, meas_parts, wx_parts, notes = {}, [], [], Notes()
    for sid, row in sites_frame.iterrows():
        one = sites_frame.loc[[sid]]
        try:
            meas, res = validate_measurements(raw_meas.iloc[meas_rows.get(sid, [])], one,
                                              str(meas_path), notes)
            wx = (validate_weather(raw_wx.iloc[wx_rows[sid]], one, str(wx_path))
                  if sid in wx_rows else None)
        except DataError as err:
            invalid[str(sid)] = (str(row["kind"]), err)
            log.error("site %s left out: %s", sid, err)
            continue
        sites[str(sid)] = Site.from_row(row, res.get(sid, 15))
        meas_parts.append(meas)
        if wx is not None:
            wx_parts.append(wx)
    measurements = (pd.concat(meas_parts, ignore_index=True).sort_values(
        ["site_id", "timestamp"], ignore_index=True) if meas_parts
        else pd.DataFrame(columns=["site_id", "timestamp", "value_kw"]))
    weather = (pd.concat(wx_parts, ignore_index=True) if wx_parts
               else _empty_times(["site_id", "timestamp", "issue_time"]))
    for note in notes.items:
        log.info(note)
    portfolio = Portfolio(sites=sites, measurements=measurements, weather=weather,
                          prices=prices, events=pd.DataFrame(), resources=pd.DataFrame(),
                          source=directory, notes=notes.items)
    return portfolio, invalid


def _empty_times(columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    for c in ("timestamp", "issue_time"):
        if c in frame:
            frame[c] = pd.Series(dtype="datetime64[us, UTC]")
    return frame


def site_datas(portfolio: Portfolio, site_ids: list[str]) -> dict[str, SiteData]:
    """``portfolio.site_data`` for many sites, splitting the tables once (not once per site)."""
    meas, wx = portfolio.measurements, portfolio.weather
    meas_rows = meas.groupby("site_id", sort=False).indices if len(meas) else {}
    wx_rows = wx.groupby("site_id", sort=False).indices if len(wx) else {}
    out = {}
    for sid in site_ids:
        site = portfolio.site(sid)
        rows = meas.iloc[meas_rows.get(sid, [])]
        values = pd.Series(rows["value_kw"].to_numpy(), index=pd.DatetimeIndex(rows["timestamp"]),
                           name=site.value_column)
        weather = wx.iloc[wx_rows.get(sid, [])].drop(columns="site_id").reset_index(drop=True)
        out[sid] = SiteData(site=site, values_kw=values, weather=weather,
                            prices=portfolio.prices)
    return out


# --- per-site work (runs on a worker) -----------------------------------------------------

@dataclass(frozen=True)
class _Job:
    issue: pd.Timestamp
    uri: str
    config: NightlyConfig


@dataclass(frozen=True)
class ChampionInfo:
    model: object  # inference.registry.LoadedModel
    train_end: pd.Timestamp | None
    holdout_mae: float


def _registry(uri: str):
    """A ModelRegistry for one site's task. Not shared across sites on purpose: each champion
    is used once a night, and a registry caches every model it loads, so a worker kept one
    would hold the whole portfolio's models in memory."""
    from inference.registry import ModelRegistry

    return ModelRegistry(uri)


def champion_info(registry, kind: str, site_id: str) -> ChampionInfo | None:
    """The site's champion with its train end and held-out MAE (from its run), or None."""
    from pipelines.tracking import champion_version, registered_name

    version = champion_version(registry.client, registered_name(kind, site_id))
    if version is None:
        return None
    run = registry.client.get_run(version.run_id)
    end = run.data.tags.get("train_end") or run.data.params.get("holdout_end")
    return ChampionInfo(model=registry.champion(kind, site_id),
                        train_end=pd.Timestamp(end).tz_convert("UTC") if end else None,
                        holdout_mae=float(run.data.metrics.get("holdout_mae", math.nan)))


def forecast_window(site: Site, issue: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start of D+1, end of D+2): the next two local days after the issue, in UTC."""
    from inference.forecast import horizon_window

    start, _ = horizon_window(site, issue, "day_ahead")
    _, end = horizon_window(site, issue, "d_plus_2")
    return start, end


def settled_days(site: Site, issue: pd.Timestamp, n: int) -> list[tuple[pd.Timestamp,
                                                                         pd.Timestamp]]:
    """The ``n`` local days before the issue's local day, oldest first, as UTC [start, end)."""
    today = issue.tz_convert(site.timezone).normalize()
    return [((today - pd.DateOffset(days=k)).tz_convert("UTC"),
             (today - pd.DateOffset(days=k - 1)).tz_convert("UTC")) for k in range(n, 0, -1)]


def _median_column(frame: pd.DataFrame) -> str:
    return min(quantile_columns(frame), key=lambda c: abs(float(c[1:]) - 0.5))


def _stored_day(stored: pd.DataFrame | None, label: str, start, end, res: pd.Timedelta
                ) -> pd.DataFrame | None:
    """The model's latest stored forecast issued before ``start`` covering the whole day."""
    if stored is None or stored.empty:
        return None
    rows = stored[(stored["model_version"] == label) & (stored["issue_time"] < start)
                  & (stored["timestamp"] >= start) & (stored["timestamp"] < end)]
    if rows.empty:
        return None
    rows = rows[rows["issue_time"] == rows["issue_time"].max()]
    return rows if len(rows) == int((end - start) / res) else None


def settled_accuracy(model, data: SiteData, stored: pd.DataFrame | None, issue: pd.Timestamp,
                     days: int, quantiles) -> dict:
    """The champion's day-ahead P50 error on the settled days before the issue (module doc).

    Returns ``mae`` (kW, over every scored interval), ``days`` scored, ``source``,
    ``yesterday_mae`` and ``yesterday_mean_kw``. A day without readings known at the issue
    is not settled and is skipped.
    """
    from inference.forecast import forecast_core
    from pipelines.evaluation import day_ahead_schedule

    site = data.site
    res = pd.Timedelta(minutes=site.resolution_minutes)
    known = data.values_kw[data.values_kw.index + res <= issue]  # readings known at the issue
    local = issue.tz_convert(site.timezone)
    hour = local.hour + local.minute / 60
    errors, sources, scored = [], set(), 0
    out = {"mae": math.nan, "days": 0, "source": "", "yesterday_mae": math.nan,
           "yesterday_mean_kw": math.nan}
    window = settled_days(site, issue, days)
    for start, end in window:
        actual = known[(known.index >= start) & (known.index < end)]
        if actual.empty:
            continue
        frame = _stored_day(stored, model.label, start, end, res)
        if frame is not None:
            sources.add("store")
        else:
            schedule = day_ahead_schedule(start, end, site.timezone, hour)
            frame = forecast_core(model, data, schedule.issues[0], schedule.starts[0],
                                  schedule.ends[0], quantiles)
            sources.add("recomputed")
            if FALLBACK_FLAG in str(frame["quality"].iloc[0]).split(";"):
                continue  # the climatology answered: not the model's error
        p50 = pd.Series(frame[_median_column(frame)].to_numpy(),
                        index=pd.DatetimeIndex(frame["timestamp"]))
        err = (p50.reindex(actual.index) - actual).abs().dropna()
        if err.empty:
            continue
        errors.append(err.to_numpy())
        scored += 1
        if start == window[-1][0]:
            out["yesterday_mae"] = float(err.mean())
            out["yesterday_mean_kw"] = float(actual.abs().mean())
    if errors:
        out["mae"] = float(np.concatenate(errors).mean())
    out["days"] = scored
    out["source"] = "+".join(sorted(sources))
    return out


def retrain_reason(info: ChampionInfo | None, issue: pd.Timestamp, ratio: float,
                   config: NightlyConfig) -> tuple[str, str]:
    """(kind, text) of why the site should be retrained, or ("", "")."""
    if info is None:
        return "no champion", "no champion"
    if info.train_end is not None:
        age = (issue - info.train_end) / pd.Timedelta(days=1)
        if age > config.max_model_age_days:
            return "age", (f"champion {info.model.label} trained on data to "
                           f"{info.train_end:%Y-%m-%d} is {age:.1f} days old "
                           f"(> {config.max_model_age_days:g})")
    if np.isfinite(ratio) and ratio > config.drift_ratio:
        return "drift", (f"drift: settled MAE {ratio:.2f} x the held-out MAE "
                         f"(> {config.drift_ratio:g})")
    return "", ""


def assess_site(data: SiteData, prices: pd.DataFrame | None, stored: pd.DataFrame | None,
                job: _Job) -> SiteOutcome:
    """Worker task: checks, decision and the champion's D+1/D+2 forecast of one site.

    ``prices``: the shared price table when ``data`` travelled without it (Dask). Errors
    come back in the outcome (status ``failed`` with the reason), never as exceptions.
    """
    t0 = time.perf_counter()
    if prices is not None:
        data = replace(data, prices=prices)
    out = SiteOutcome(data.site.site_id, data.site.kind)
    try:
        _assess(data, stored, job, out)
    except Exception as err:  # noqa: BLE001 - one bad site never stops the others; reported
        out.fail(type(err).__name__, f"{type(err).__name__}: {err}")
        log.debug("site %s: %s", out.site_id, traceback.format_exc())
    out.seconds = time.perf_counter() - t0
    return out


def _assess(data: SiteData, stored: pd.DataFrame | None, job: _Job, out: SiteOutcome) -> None:
    from inference.forecast import forecast_core, target_index, weather_columns_of

    site, issue, config = data.site, job.issue, job.config
    start, end = forecast_window(site, issue)
    info = champion_info(_registry(job.uri), site.kind, site.site_id)
    if info is None:  # with a champion, forecast_core checks the inputs (its quality flags)
        report = assess(data, issue, target_index(site, start, end), weather_columns_of(data))
        flags = list(dict.fromkeys(report.flags))
    else:
        out.set_forecast(forecast_core(info.model, data, issue, start, end, config.quantiles))
        flags = [f for f in out.quality.split(";") if f not in ("ok", FALLBACK_FLAG)]
    out.input_flags = ";".join(flags)
    ratio = math.nan
    if info is not None:
        out.champion = info.model.label
        out.champion_train_end = info.train_end.isoformat() if info.train_end is not None else ""
        out.holdout_mae = info.holdout_mae
        if info.train_end is not None and info.train_end > issue:
            out.note(f"champion saw data to {info.train_end:%Y-%m-%d %H:%M} UTC, after the "
                     "issue time (a replay): its settled-day scores are in-sample")
        try:
            acc = settled_accuracy(info.model, data, stored, issue, config.drift_days,
                                   config.quantiles)
        except DataError as err:  # e.g. no readings before a settled day's issue
            acc = None
            out.note(f"settled accuracy not computed ({type(err).__name__}: {err})")
        if acc is not None:
            out.settled_mae, out.settled_days = acc["mae"], acc["days"]
            out.settled_source = acc["source"]
            out.yesterday_mae = acc["yesterday_mae"]
            out.yesterday_mean_kw = acc["yesterday_mean_kw"]
            if info.holdout_mae > 0:
                ratio = acc["mae"] / info.holdout_mae
        out.mae_ratio = ratio
    kind, text = retrain_reason(info, issue, ratio, config)
    out.retrain_reason = kind
    if kind:
        out.note(text)
        if "stale_measurements" in flags:
            out.note("retraining postponed: the readings are stale")
        elif not config.retrain:
            out.note("retraining disabled")
        else:
            out.retrain_due = True
    if info is None and not out.retrain_due:
        out.fail("no champion", "no champion to forecast with")


def _fit_task(data: SiteData, prices: pd.DataFrame | None, training: TrainingConfig,
              train_end: pd.Timestamp):
    """Worker task: ``train_core`` up to the issue time (errors come back as values)."""
    from pipelines.batch import _fit

    if prices is not None:
        data = replace(data, prices=prices)
    return _fit(data, training, train_end)


# --- running tasks here or on Dask --------------------------------------------------------

class _Runner:
    """Runs per-site tasks in this process (``client`` None) or on a Dask cluster, yielding
    ``(site_id, result, error)`` as they finish (``error``: an exception that escaped the
    task, e.g. a worker lost; None otherwise).

    On Dask the price table (shared by all sites) is broadcast once; each site's data is
    scattered to the least busy worker just before its task runs there, at most two tasks
    per worker thread in flight, so the driver never ships the whole portfolio at once and
    the workers stay evenly loaded.
    """

    def __init__(self, client=None):
        self.client = client

    def map(self, fn, datas: list[SiteData], extras: list[tuple]) -> Iterator:
        if self.client is None:
            for data, extra in zip(datas, extras, strict=True):
                yield data.site.site_id, fn(data, None, *extra), None
            return
        if not datas:
            return
        from dask.distributed import as_completed

        client = self.client
        threads = client.nthreads()  # worker address -> threads
        busy = dict.fromkeys(threads, 0)
        prices = client.scatter(datas[0].prices, broadcast=True, hash=False)
        items = iter(zip(datas, extras, strict=True))
        placed: dict[str, tuple[str, str]] = {}  # task key -> (site, worker)
        pending = as_completed()

        def submit() -> None:
            item = next(items, None)
            if item is None:
                return
            data, extra = item
            worker = min(busy, key=lambda w: busy[w] / max(threads[w], 1))
            light = replace(data, prices=data.prices.iloc[0:0])
            ref = client.scatter(light, workers=[worker], hash=False)
            task = client.submit(fn, ref, prices, *extra, pure=False, workers=[worker],
                                 allow_other_workers=True)
            busy[worker] += 1
            placed[task.key] = (data.site.site_id, worker)
            pending.add(task)

        for _ in range(2 * sum(threads.values())):
            submit()
        for future in pending:
            site_id, worker = placed.pop(future.key)
            busy[worker] -= 1
            if future.status == "finished":
                result, error = future.result(), None
            elif future.status == "error":
                result, error = None, future.exception()
            else:  # cancelled: the cluster went away
                result, error = None, RuntimeError(f"task {future.status}")
            future.release()
            submit()
            yield site_id, result, error


# --- the night ----------------------------------------------------------------------------

def run_nightly(data_dir: Path | str, issue_time, store: ForecastStore,
                config: NightlyConfig | None = None, site_ids: list[str] | None = None,
                cluster: str = "local", workers: int = 2, uri: str | None = None,
                progress: Progress | None = None, log_mlflow: bool = True) -> NightlyReport:
    """One night at ``issue_time`` (module doc); returns the report (see ``exit_status``).

    ``cluster``: "local" (a LocalCluster of ``workers`` processes when ``workers`` > 1,
    else this process) or a scheduler address. ``uri``: the tracking/registry URI (default
    ``MLFLOW_TRACKING_URI``). ``log_mlflow``: log the summary run (experiment vpp-nightly).
    Unknown ``site_ids`` raise ``UnknownSiteError`` before any work.
    """
    from pipelines.tracking import tracking_uri

    config = config or NightlyConfig()
    uri = uri or tracking_uri()
    issue = as_utc(issue_time, "issue_time")
    t_start = time.perf_counter()
    log.info("nightly: issue %s, store %s, %s", issue.isoformat(), store,
             "in this process" if cluster == "local" and workers <= 1 else
             f"Dask {cluster}" + (f" with {workers} workers" if cluster == "local" else ""))
    report = _night(data_dir, issue, store, config, site_ids, cluster, workers, uri,
                    progress or _NoProgress())
    report.timings["total_seconds"] = time.perf_counter() - t_start
    if report.error:
        log.error("nightly: nothing produced: %s", report.error)
    if log_mlflow:
        _summarise(report, config, uri, cluster, workers)
    return report


def _night(data_dir, issue: pd.Timestamp, store: ForecastStore, config: NightlyConfig,
           site_ids, cluster: str, workers: int, uri: str, progress: Progress
           ) -> NightlyReport:
    from pipelines.batch import dask_client
    from pipelines.tracking import TrackingUnavailableError

    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    try:
        portfolio, invalid = read_isolated(data_dir)
    except DataError as err:
        return NightlyReport(issue, [], timings, str(store),
                             error=f"portfolio unreadable: {type(err).__name__}: {err}")
    timings["read_seconds"] = time.perf_counter() - t0
    wanted = list(dict.fromkeys(site_ids)) if site_ids else sorted([*portfolio.sites,
                                                                      *invalid])
    unknown = [s for s in wanted if s not in portfolio.sites and s not in invalid]
    if unknown:
        known = sorted([*portfolio.sites, *invalid])
        raise UnknownSiteError(f"--sites names {unknown}, not in {portfolio.source}/sites; "
                               f"known sites: {', '.join(known[:10])}"
                               + (" ..." if len(known) > 10 else ""))
    outcomes: dict[str, SiteOutcome] = {}
    for sid in wanted:
        if sid in invalid:
            kind, err = invalid[sid]
            outcomes[sid] = SiteOutcome(sid, kind)
            outcomes[sid].fail(type(err).__name__, f"{type(err).__name__}: {err}")
    todo = [s for s in wanted if s in portfolio.sites]

    def report(error: str = "") -> NightlyReport:
        return NightlyReport(issue, [outcomes[s] for s in wanted if s in outcomes], timings,
                             str(store), error=error)

    try:
        _registry(uri).client  # noqa: B018 - reachability check before any work
    except TrackingUnavailableError as err:
        return report(str(err))
    datas = site_datas(portfolio, todo)
    del portfolio  # the per-site copies are what the night needs: free the whole tables
    stored = _stored_for(store, todo, issue, config.drift_days)
    job = _Job(issue, uri, config)
    parallel = cluster != "local" or (workers > 1 and len(todo) > 1)
    with contextlib.ExitStack() as stack:
        t0 = time.perf_counter()
        try:
            client = (stack.enter_context(dask_client(
                workers, None if cluster == "local" else cluster)) if parallel else None)
        except (OSError, TimeoutError) as err:
            return report(f"Dask cluster {cluster} unreachable: {type(err).__name__}: {err}")
        timings["cluster_start_seconds"] = time.perf_counter() - t0
        runner = _Runner(client)
        t0 = time.perf_counter()
        progress.start("sites", len(todo))
        for sid, out, error in runner.map(assess_site, [datas[s] for s in todo],
                                          [(stored.get(s), job) for s in todo]):
            if error is not None:  # e.g. its worker died
                out = SiteOutcome(sid, datas[sid].site.kind)
                out.fail(type(error).__name__, f"task lost: {type(error).__name__}: {error}")
            outcomes[sid] = out
            if out.status == "failed" and not out.retrain_due:
                log.error("site %s failed: %s", out.site_id, out.reason)
            progress.advance("sites")
        timings["assess_forecast_seconds"] = time.perf_counter() - t0
        due = [s for s in todo if outcomes[s].retrain_due]
        t0 = time.perf_counter()
        if due:
            _retrain(runner, [datas[s] for s in due], outcomes, job, progress)
        timings["retrain_seconds"] = time.perf_counter() - t0
    for out in outcomes.values():
        if out.status == "failed" and not out.failure:  # due for retraining, never reached
            out.fail("no forecast", "no forecast produced")
    t0 = time.perf_counter()
    _write(store, [outcomes[s] for s in wanted if s in outcomes])
    timings["write_seconds"] = time.perf_counter() - t0
    return report()


def _stored_for(store: ForecastStore, site_ids: list[str], issue: pd.Timestamp, days: int
                ) -> dict[str, pd.DataFrame]:
    """Stored forecasts that may cover the settled days, per site (one read for all)."""
    if not site_ids:
        return {}
    first = issue - pd.Timedelta(days=days + 3)
    try:
        rows = store.issued_between(first, issue, site_ids)
    except ForecastStoreError as err:
        log.warning("settled-day forecasts not read from the store (%s); recomputing", err)
        return {}
    return {sid: part.reset_index(drop=True) for sid, part in rows.groupby("site_id")} \
        if len(rows) else {}


def _retrain(runner: _Runner, datas: list[SiteData], outcomes: dict[str, SiteOutcome],
             job: _Job, progress: Progress) -> None:
    """Fit on the workers; log, register and forecast with a new champion on the driver."""
    from inference.forecast import forecast_core
    from inference.registry import LoadedModel
    from pipelines.tracking import CHAMPION, tracking_session
    from pipelines.training import log_and_register

    by_id = {d.site.site_id: d for d in datas}
    progress.start("retraining", len(datas))
    with tracking_session(job.uri) as client:
        for sid, res, error in runner.map(_fit_task, datas,
                                          [(job.config.training, job.issue)] * len(datas)):
            if error is not None:  # e.g. its worker died
                res = {"site_id": sid, "error": f"task lost: {type(error).__name__}: {error}",
                       "traceback": ""}
            if isinstance(res, dict):  # the fit failed
                out = outcomes[res["site_id"]]
                log.error("site %s: retraining failed: %s", out.site_id, res["error"])
                log.debug(res["traceback"])
                if out.forecast is None:
                    out.fail("retraining failed", f"retraining failed: {res['error']}")
                else:
                    out.note(f"retraining failed ({res['error']}); the champion forecast")
                progress.advance("retraining")
                continue
            out, data = outcomes[res.site_id], by_id[res.site_id]
            try:
                reg = log_and_register(client, data, res, job.config.training)
                out.retrained = True
                out.promotion = f"{reg['alias']}: {reg['reason']}"
                out.note(f"retrained v{reg['version']} -> {out.promotion}")
                if reg["alias"] == CHAMPION:
                    model = LoadedModel(reg["name"], reg["version"], res.model)
                    start, end = forecast_window(data.site, job.issue)
                    out.champion = model.label
                    out.set_forecast(forecast_core(model, data, job.issue, start, end,
                                                   job.config.quantiles))
            except Exception as err:  # report the site, go on with the rest
                log.exception("site %s: registering or forecasting after retraining failed",
                              out.site_id)
                if out.forecast is None:
                    out.fail(type(err).__name__, f"after retraining: {type(err).__name__}: "
                                                 f"{err}")
                else:
                    out.note(f"after retraining: {type(err).__name__}: {err}; the old "
                             "champion's forecast stands")
            progress.advance("retraining")


def _write(store: ForecastStore, outcomes: list[SiteOutcome]) -> None:
    """One write per kind; a failed write fails that kind's sites (nothing half-written)."""
    by_kind: dict[str, list[SiteOutcome]] = {}
    for out in outcomes:
        if out.forecast is not None:
            by_kind.setdefault(out.kind, []).append(out)
    for kind, group in sorted(by_kind.items()):
        frame = pd.concat([o.forecast for o in group], ignore_index=True)
        try:
            store.write(frame, kind)
            log.info("wrote %d rows of %d %s sites to %s", len(frame), len(group), kind, store)
        except (ForecastStoreError, DataError) as err:
            log.error("forecast store write of %d %s sites failed: %s", len(group), kind, err)
            for out in group:
                out.fail("store write failed", f"store write failed: {type(err).__name__}: "
                                               f"{err}")


# --- the MLflow summary -------------------------------------------------------------------

def _summarise(report: NightlyReport, config: NightlyConfig, uri: str, cluster: str,
               workers: int) -> None:
    import mlflow

    from pipelines import plots
    from pipelines.tracking import ensure_experiment, tracking_session

    counts = report.counts()
    status = {EXIT_OK: "ok", EXIT_SOME_FAILED: "some sites failed",
              EXIT_NOTHING: "nothing produced"}
    try:
        with tracking_session(uri) as client:
            exp_id = ensure_experiment(client, EXPERIMENT)
            with mlflow.start_run(experiment_id=exp_id,
                                  run_name=f"nightly {report.issue_time.isoformat()}") as run:
                report.run_id = run.info.run_id
                t = report.timings
                work = t.get("assess_forecast_seconds", 0) + t.get("retrain_seconds", 0)
                mlflow.set_tags({"pipeline": "nightly", "issue_time": report.issue_time.isoformat(),
                                 "store": report.store,
                                 "status": status[report.exit_status]})
                mlflow.log_params({
                    "issue_time": report.issue_time.isoformat(), "cluster": cluster,
                    "workers": workers, "quantiles": ",".join(f"{q:g}" for q in config.quantiles),
                    "max_model_age_days": config.max_model_age_days,
                    "drift_ratio": config.drift_ratio, "drift_days": config.drift_days,
                    "retrain": config.retrain,
                    **{f"training_{k}": v for k, v in config.training.model_dump().items()}})
                mlflow.log_metrics({f"sites_{k}" if k != "sites" else "sites_total": float(v)
                                    for k, v in counts.items()})
                mlflow.log_metrics({k: float(v) for k, v in t.items()})
                if work > 0:
                    mlflow.log_metric("sites_per_second", counts["sites"] / work)
                table = report.table()
                nmae = table["yesterday_mae"] / table["yesterday_mean_kw"]
                if nmae.notna().any():
                    mlflow.log_metric("yesterday_nmae_median", float(nmae.median()))
                mlflow.log_text(table.to_csv(index=False), "report/sites.csv")
                mlflow.log_table(report.reasons(), "report/reasons.json")
                fig = accuracy_plot(table, report.issue_time)
                mlflow.log_figure(fig, "plots/yesterday_accuracy.png")
                plots.plt.close(fig)
                mlflow.set_tag("exit_status", str(report.exit_status))
    except Exception as err:  # the forecasts are written; the exit status says it
        report.run_id = None
        report.summary_error = f"{type(err).__name__}: {err}"
        log.exception("nightly summary run not logged to %s", uri)


def accuracy_plot(table: pd.DataFrame, issue: pd.Timestamp):
    """Yesterday's settled accuracy per site: MAE of the champion's P50 / mean measured value."""
    from pipelines import plots

    frame = table.assign(nmae=table["yesterday_mae"] / table["yesterday_mean_kw"])
    frame = frame.dropna(subset=["nmae"]).sort_values("nmae", ascending=False)
    plt = plots.plt
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, 0.35 * len(frame) + 3)), 4))
    colours = {"load": "tab:blue", "pv": "tab:orange", "wind": "tab:green"}
    if frame.empty:
        ax.text(0.5, 0.5, "no settled day scored", ha="center", va="center",
                transform=ax.transAxes)
    else:
        x = np.arange(len(frame))
        ax.bar(x, frame["nmae"], color=[colours.get(k, "grey") for k in frame["kind"]],
               edgecolor=["black" if r else "none" for r in frame["retrained"]])
        if len(frame) <= 60:
            ax.set_xticks(x, frame["site_id"], rotation=90, fontsize=7)
        else:
            ax.set_xticks([])
            ax.set_xlabel(f"{len(frame)} sites, worst first")
        handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()]
        ax.legend(handles, list(colours), loc="upper right", fontsize=8,
                  title="black edge: retrained", title_fontsize=7)
    ax.set_ylabel("MAE / mean measured")
    ax.set_title(f"yesterday's accuracy per site (champion P50, day-ahead)\nthe local day "
                 f"before the issue {issue:%Y-%m-%d %H:%M} UTC", fontsize=9)
    fig.tight_layout()
    return fig
