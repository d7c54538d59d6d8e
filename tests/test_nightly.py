"""The nightly job: forecast store, retraining on drift, failure isolation, crash safety,
scheduling, Dask scale-out (a real sqlite MLflow store, a real `dask scheduler` + workers).

One small SYNTHETIC portfolio (3 load sites, 1 PV, 2025-02-08..2025-04-11) is trained once by
the first night (issued 2025-03-25 22:30 +08:00); each later test works on a copy of that
night's registry and store.
"""

from __future__ import annotations

import ast
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from forecasting.errors import NaiveTimestampError
from forecasting.portfolio import read_portfolio
from forecasting.synthetic import generate_portfolio_frames, write_portfolio
from inference.forecast import forecast_site
from inference.forecast_store import (
    ParquetForecastStore,
    SqlForecastStore,
    canonical,
    open_store,
    quantile_columns,
    stored_forecast,
)
from inference.registry import ModelRegistry
from pipelines.cli import app
from pipelines.config import TrainingConfig
from pipelines.nightly import NightlyConfig, read_isolated, run_nightly, site_datas

ROOT = Path(__file__).resolve().parents[1]
TZ = "Asia/Shanghai"
NIGHT1 = "2025-03-25T22:30:00+08:00"
NIGHT2 = "2025-04-01T22:30:00+08:00"
SITES = ["load_c01", "load_c02", "load_c03", "pv_01"]
TRAIN_ARGS = ["--n-estimators", "20", "--holdout-days", "5"]
CONFIG = NightlyConfig(training=TrainingConfig(n_estimators=20, holdout_days=5))
DRIFTED = "load_c02"


def _frames():
    return generate_portfolio_frames(seed=7, start="2025-02-08", end="2025-04-12",
                                     n_customers=3, n_pv=1, n_wind=0)


def _env(monkeypatch, base: Path) -> str:
    uri = f"sqlite:///{base / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DIR", str(base / "artifacts"))
    return uri


@pytest.fixture(scope="module")
def night1(tmp_path_factory):
    """The first night on a fresh registry: every site trained (no champion) and forecast."""
    base = tmp_path_factory.mktemp("night1")
    frames = _frames()
    write_portfolio(frames, base / "pf")
    with pytest.MonkeyPatch.context() as mp:
        uri = _env(mp, base)
        res = CliRunner().invoke(app, ["nightly", "--data", str(base / "pf"), "--issue-time",
                                       NIGHT1, "--store", str(base / "store"), "--workers", "1",
                                       *TRAIN_ARGS])
    return {"base": base, "uri": uri, "frames": frames, "result": res}


def _copy_state(night1, target: Path) -> tuple[str, Path]:
    """A copy of night 1's registry (same artifacts) and store: (tracking URI, store folder)."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(night1["base"] / "mlflow.db", target / "mlflow.db")
    shutil.copytree(night1["base"] / "store", target / "store")
    return f"sqlite:///{target / 'mlflow.db'}", target / "store"


def _stored(store_dir: Path, issue: str) -> pd.DataFrame:
    rows = ParquetForecastStore(store_dir).issued_between(pd.Timestamp(issue),
                                                          pd.Timestamp(issue) + pd.Timedelta(1))
    return rows.sort_values(["site_id", "timestamp"], ignore_index=True)


@pytest.mark.integration
def test_first_night_trains_every_site_forecasts_and_records(night1):
    res = night1["result"]
    assert res.exit_code == 0, res.output
    stored = _stored(night1["base"] / "store", NIGHT1)
    assert sorted(stored["site_id"].unique()) == SITES
    assert (stored.groupby("site_id").size() == 192).all()  # D+1 and D+2, 15 min
    first = pd.Timestamp("2025-03-26T00:00:00+08:00")
    for _, rows in stored.groupby("site_id"):
        assert list(rows["timestamp"]) == list(pd.date_range(first, periods=192, freq="15min"))
    assert {"q0.1", "q0.5", "q0.9"} <= set(stored.columns)
    assert (stored["q0.1"] <= stored["q0.9"]).all()
    assert set(stored["quality"]) == {"ok"}
    assert set(stored["model_version"]) == {f"{s.split('_')[0]}-{s}/1" for s in SITES}
    client = MlflowClient(tracking_uri=night1["uri"], registry_uri=night1["uri"])
    exp = client.get_experiment_by_name("vpp-nightly")
    (run,) = client.search_runs([exp.experiment_id])
    m = run.data.metrics
    assert (m["sites_total"], m["sites_done"], m["sites_retrained"], m["sites_failed"]) == (
        4, 4, 4, 0)
    assert m["sites_per_second"] > 0 and m["total_seconds"] > 0
    artifacts = {a.path for d in ("plots", "report")
                 for a in client.list_artifacts(run.info.run_id, d)}
    assert {"plots/yesterday_accuracy.png", "report/reasons.json",
            "report/sites.csv"} <= artifacts
    assert run.data.tags["status"] == "ok"
    assert "retrained" in res.output and "nightly issued" in res.output
    # what the service would compute for that issue (the champion, forecast_site) is stored
    portfolio = read_portfolio(night1["base"] / "pf")
    computed = forecast_site(portfolio, "load", "load_c01", NIGHT1, first,
                             first + pd.Timedelta(days=2), (0.1, 0.5, 0.9),
                             ModelRegistry(night1["uri"]))
    fast = stored_forecast(ParquetForecastStore(night1["base"] / "store"), "load_c01", NIGHT1,
                           first, first + pd.Timedelta(days=2), (0.1, 0.5, 0.9))
    pd.testing.assert_frame_equal(fast, canonical(computed), check_dtype=False)


# --- the store ----------------------------------------------------------------------------

def _forecast(site: str, issue: str, scale: float = 1.0, levels=(0.1, 0.5, 0.9),
              days: int = 2) -> pd.DataFrame:
    issue_ts = pd.Timestamp(issue)
    start = issue_ts.tz_convert(TZ).normalize() + pd.Timedelta(days=1)
    ts = pd.date_range(start, periods=96 * days, freq="15min").tz_convert("UTC")
    frame = pd.DataFrame({"site_id": site, "issue_time": issue_ts.tz_convert("UTC"),
                          "timestamp": ts})
    for q in levels:
        frame[f"q{q:g}"] = scale * (100 + np.arange(len(ts))) * (0.5 + q)
    frame["model_version"] = f"load-{site}/1"
    frame["quality"] = "ok"
    return frame


@pytest.fixture(params=["parquet", "sql"])
def store(request, tmp_path):
    if request.param == "parquet":
        return open_store(tmp_path / "store")
    return open_store(f"sqlite:///{tmp_path / 'forecasts.db'}")


def test_store_round_trip_replace_latest_and_fast_path(store):
    a1, b1 = _forecast("a", "2025-04-01T22:30:00+08:00"), _forecast("b", "2025-04-01T22:30:00+08:00")
    store.write(pd.concat([a1, b1]), "load")
    got = store.read("a", "2025-04-01T14:30:00Z")
    pd.testing.assert_frame_equal(got, a1.assign(
        issue_time=a1["issue_time"].dt.as_unit("us"), timestamp=a1["timestamp"].dt.as_unit("us")),
        check_dtype=False)
    assert str(got["timestamp"].dt.tz) == "UTC"
    # a rerun for the same issue replaces that site's rows, never duplicates; b stays
    store.write(_forecast("a", "2025-04-01T22:30:00+08:00", scale=2.0), "load")
    again = store.read("a", "2025-04-01T22:30:00+08:00")
    assert len(again) == 192 and np.allclose(again["q0.5"], 2 * a1["q0.5"])
    assert len(store.read("b", "2025-04-01T22:30:00+08:00")) == 192
    # a later issue with other levels; latest picks by issue time, not by write order
    store.write(_forecast("a", "2025-04-02T22:30:00+08:00", levels=(0.5,)), "load")
    assert store.latest("a", "2025-04-02T14:29:00Z")["issue_time"].iloc[0] == pd.Timestamp(
        "2025-04-01T14:30:00Z")
    latest = store.latest("a", "2025-04-03T00:00:00Z")
    assert latest["issue_time"].iloc[0] == pd.Timestamp("2025-04-02T14:30:00Z")
    assert quantile_columns(latest) == ["q0.5"]
    assert store.latest("a", "2025-04-01T00:00:00Z") is None
    assert store.read("a", "2025-04-01T15:00:00Z") is None  # not exactly that issue
    assert len(store.issued_between("2025-04-01T00:00Z", "2025-04-03T00:00Z")) == 3 * 192
    window = store.read("a", "2025-04-01T14:30:00Z", "2025-04-02T00:00:00+08:00",
                        "2025-04-03T00:00:00+08:00")
    assert len(window) == 96
    # the service's fast path: exactly that issue, the whole window, the levels asked
    fast = stored_forecast(store, "a", "2025-04-01T22:30:00+08:00", "2025-04-02T06:00:00+08:00",
                           "2025-04-02T12:00:00+08:00", [0.9, 0.5])
    assert list(fast.columns) == ["site_id", "issue_time", "timestamp", "q0.9", "q0.5",
                                  "model_version", "quality"]
    assert len(fast) == 24 and fast["timestamp"].iloc[0] == pd.Timestamp("2025-04-01T22:00Z")
    assert len(stored_forecast(store, "a", "2025-04-01T22:30:00+08:00",
                               "2025-04-02T00:00:00+08:00", "2025-04-04T00:00:00+08:00")) == 192
    assert stored_forecast(store, "a", "2025-04-01T22:30:00+08:00", "2025-04-02T00:00:00+08:00",
                           "2025-04-04T00:15:00+08:00") is None  # one interval past D+2
    assert stored_forecast(store, "a", "2025-04-02T22:30:00+08:00", "2025-04-03T00:00:00+08:00",
                           "2025-04-04T00:00:00+08:00", [0.1]) is None  # level not stored
    assert stored_forecast(store, "zz", "2025-04-01T22:30:00+08:00", "2025-04-02T00:00:00+08:00",
                           "2025-04-03T00:00:00+08:00") is None
    with pytest.raises(NaiveTimestampError, match="issue_time"):
        stored_forecast(store, "a", "2025-04-01T22:30:00", "2025-04-02T00:00:00+08:00",
                        "2025-04-03T00:00:00+08:00")


def test_sql_write_is_one_transaction(tmp_path):
    from sqlalchemy import event

    store = SqlForecastStore(f"sqlite:///{tmp_path / 'f.db'}")
    first = _forecast("a", "2025-04-01T22:30:00+08:00")
    store.write(first, "load")

    def fail_inserts(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("INSERT"):
            raise RuntimeError("disk full")  # after the DELETE of the same rows ran

    event.listen(store.engine, "before_cursor_execute", fail_inserts)
    with pytest.raises(RuntimeError, match="disk full"):
        store.write(_forecast("a", "2025-04-01T22:30:00+08:00", 3.0), "load")
    event.remove(store.engine, "before_cursor_execute", fail_inserts)
    kept = store.read("a", "2025-04-01T22:30:00+08:00")
    assert len(kept) == 192 and np.allclose(kept["q0.5"], first["q0.5"])  # rolled back


WRITER = """
import sys, numpy as np, pandas as pd
from inference.forecast_store import ParquetForecastStore
store = ParquetForecastStore(sys.argv[1])
issue = pd.Timestamp("2025-04-01T14:30:00Z")
ts = pd.date_range("2025-04-01T16:00:00Z", periods=192, freq="15min")
frames = []
for v in (1.0, 2.0):
    sites = [f"s{i:04d}" for i in range(600)]
    f = pd.DataFrame({"site_id": np.repeat(sites, len(ts)), "issue_time": issue,
                      "timestamp": np.tile(ts, len(sites))})
    f["q0.5"] = v
    f["model_version"] = f"v{v:g}"
    f["quality"] = "ok"
    frames.append(f)
store.write(frames[0], "load")
print("ready", flush=True)
while True:
    for f in frames[::-1] + frames:
        store.write(f, "load")
"""


def test_parquet_partition_survives_sigkill_mid_write(tmp_path):
    """A writer killed at a random point leaves one complete partition (old or new)."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.5)  # several rewrites of a 115,200-row partition
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    store = ParquetForecastStore(tmp_path)
    rows = store.issued_between("2025-04-01T00:00Z", "2025-04-02T00:00Z")
    assert len(rows) == 600 * 192 and not rows.duplicated(["site_id", "timestamp"]).any()
    assert rows["model_version"].nunique() == 1  # one write, never a mix
    partition = store.partition("2025-04-01", "load")
    store.write(_forecast("s0000", "2025-04-01T22:30:00+08:00"), "load")
    assert not list(partition.parent.glob(".forecasts-*"))  # the next write cleans up
    assert len(store.issued_between("2025-04-01T00:00Z", "2025-04-02T00:00Z")) == 600 * 192


# --- reading, drift, failures -------------------------------------------------------------

def test_site_datas_equal_portfolio_site_data(night1):
    portfolio = read_portfolio(night1["base"] / "pf")
    fast = site_datas(portfolio, SITES)
    for sid in SITES:
        slow = portfolio.site_data(sid)
        pd.testing.assert_series_equal(fast[sid].values_kw, slow.values_kw)
        pd.testing.assert_frame_equal(fast[sid].weather, slow.weather)
        assert fast[sid].prices is portfolio.prices


def _drifted_portfolio(night1, target: Path) -> Path:
    frames = {k: v.copy() for k, v in night1["frames"].items()}
    m = frames["measurements"]
    later = (m["site_id"] == DRIFTED) & (m["timestamp"] >= pd.Timestamp(
        "2025-03-26T00:00:00+08:00"))
    m.loc[later, "load_kw"] *= 1.3
    return write_portfolio(frames, target)


@pytest.fixture(scope="module")
def drift_night(night1, tmp_path_factory):
    """Night 2, a week later, in this process, with load_c02's load +30 % since night 1."""
    base = tmp_path_factory.mktemp("drift")
    uri, store_dir = _copy_state(night1, base)
    data = _drifted_portfolio(night1, base / "pf")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_ARTIFACTS_DIR", str(night1["base"] / "artifacts"))
        report = run_nightly(data, NIGHT2, open_store(store_dir), CONFIG, workers=1, uri=uri)
    return {"report": report, "data": data, "store": store_dir, "uri": uri,
            "artifacts": str(night1["base"] / "artifacts")}


@pytest.mark.integration
def test_drifted_site_is_retrained_and_stable_ones_are_not(drift_night):
    report = drift_night["report"]
    assert report.exit_status == 0, report.table()
    table = report.table().set_index("site_id")
    drifted = table.loc[DRIFTED]
    assert drifted["retrain_reason"] == "drift" and drifted["retrained"]
    assert drifted["mae_ratio"] > CONFIG.drift_ratio
    assert drifted["promotion"].split(":")[0] in ("champion", "challenger")
    stable = table.drop(index=DRIFTED)
    assert not stable["retrained"].any() and (stable["retrain_reason"] == "").all()
    assert (stable["mae_ratio"] < CONFIG.drift_ratio).all(), stable["mae_ratio"]
    # night 1's stored D+1/D+2 forecasts were used for the days they cover
    assert (table["settled_source"] == "recomputed+store").all()
    assert (table["settled_days"] == 7).all()
    stored = _stored(drift_night["store"], NIGHT2)
    assert (stored.groupby("site_id").size() == 192).all()
    client = MlflowClient(tracking_uri=drift_night["uri"])
    alias = drifted["promotion"].split(":")[0]
    assert str(client.get_model_version_by_alias(f"load-{DRIFTED}", alias).version) == "2"


@pytest.mark.integration
def test_corrupted_sites_reported_while_the_others_succeed(night1, tmp_path, monkeypatch):
    uri, store_dir = _copy_state(night1, tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DIR", str(night1["base"] / "artifacts"))
    frames = {k: v.copy() for k, v in night1["frames"].items()}
    m = frames["measurements"]
    pv = m["site_id"] == "pv_01"
    m.loc[pv, "pv_power_kw"] = -m.loc[pv, "pv_power_kw"] - 1000  # sign error: unreadable site
    c01 = m.index[(m["site_id"] == "load_c01")]
    m.loc[c01[-3000:-2500], "load_kw"] = np.nan  # NaNs: dropped, noted, forecast goes on
    stale = (m["site_id"] == "load_c03") & (m["timestamp"] >= pd.Timestamp(
        "2025-03-30T00:00:00+08:00"))
    frames["measurements"] = m[~stale]  # readings stop 2.9 days before the issue
    data = write_portfolio(frames, tmp_path / "pf")
    monkeypatch.setenv("COLUMNS", "250")  # rich tables: reasons on one line
    portfolio, invalid = read_isolated(data)
    assert set(invalid) == {"pv_01"} and sorted(portfolio.sites) == SITES[:3]
    res = CliRunner().invoke(app, ["nightly", "--data", str(data), "--issue-time", NIGHT2,
                                   "--store", str(store_dir), "--workers", "1", *TRAIN_ARGS])
    assert res.exit_code == 1, res.output  # some sites failed
    assert "pv_01" in res.output and "ImpossibleValueError" in res.output
    stored = _stored(store_dir, NIGHT2)
    assert sorted(stored["site_id"].unique()) == ["load_c01", "load_c02", "load_c03"]
    quality = stored.groupby("site_id")["quality"].first()
    assert "fallback_climatology" in quality["load_c03"]
    assert "stale_measurements" in quality["load_c03"]
    assert quality["load_c02"] == "ok"
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("vpp-nightly")
    run = client.search_runs([exp.experiment_id], order_by=["start_time DESC"])[0]
    assert run.data.metrics["sites_failed"] == 1 and run.data.metrics["sites_fallen_back"] == 1
    assert run.data.tags["status"] == "some sites failed"


@pytest.mark.integration
def test_nothing_produced_exits_3(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    (tmp_path / "pf").mkdir()
    res = CliRunner().invoke(app, ["nightly", "--data", str(tmp_path / "pf"), "--issue-time",
                                   NIGHT2, "--store", str(tmp_path / "store"), "--workers", "1"])
    assert res.exit_code == 3, res.output
    assert "nothing produced" in res.output


# --- a killed run, then a rerun -----------------------------------------------------------

@pytest.mark.integration
def test_killed_run_then_rerun_leaves_one_complete_forecast_per_site(drift_night, tmp_path,
                                                                     monkeypatch):
    shutil.copy(Path(drift_night["uri"].removeprefix("sqlite:///")), tmp_path / "mlflow.db")
    shutil.copytree(drift_night["store"], tmp_path / "store")
    uri, store_dir = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "store"
    before = _stored(store_dir, NIGHT2)  # the complete partition of a finished night
    artifacts = drift_night["artifacts"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "COLUMNS": "250",
           "MLFLOW_ARTIFACTS_DIR": artifacts, "OMP_NUM_THREADS": "1"}
    # the same night again with every week-old champion too old: it retrains (seconds each)
    args = ["nightly", "--data", str(drift_night["data"]), "--issue-time", NIGHT2, "--store",
            str(store_dir), "--workers", "1"]
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args,
                             "--max-model-age-days", "1", *TRAIN_ARGS], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seen: list[str] = []
    fitting = threading.Event()

    def watch():
        for line in proc.stderr:
            seen.append(line)
            if "scored a fit" in line:
                fitting.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        assert fitting.wait(timeout=120), "".join(seen)
    finally:
        proc.send_signal(signal.SIGKILL)  # mid-way: retraining, before the store write
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    pd.testing.assert_frame_equal(_stored(store_dir, NIGHT2), before)  # still complete
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DIR", artifacts)
    res = CliRunner().invoke(app, [*args, "--no-retrain"])
    assert res.exit_code == 0, res.output
    after = _stored(store_dir, NIGHT2)
    assert sorted(after["site_id"].unique()) == SITES
    assert (after.groupby("site_id").size() == 192).all()  # one complete forecast per site
    assert not after.duplicated(["site_id", "issue_time", "timestamp"]).any()
    assert after[["q0.1", "q0.5", "q0.9"]].notna().all().all()
    assert not list(store_dir.rglob(".forecasts-*"))


# --- Dask: a real scheduler and two workers -----------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path):
    dask = str(Path(sys.executable).parent / "dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}  # see deploy/dask-worker.service
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    for i in range(2):
        procs.append(subprocess.Popen(
            [dask, "worker", address, "--nthreads", "1", "--nworkers", "1", "--host",
             "127.0.0.1", "--no-dashboard", "--name", f"w{i}"], env=env, cwd=tmp_path,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        from dask.distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
            assert len(client.nthreads()) == 2
        yield address
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.integration
def test_two_dask_workers_equal_the_in_process_run(night1, drift_night, dask_cluster,
                                                   tmp_path, monkeypatch):
    uri, store_dir = _copy_state(night1, tmp_path)
    monkeypatch.setenv("MLFLOW_ARTIFACTS_DIR", str(night1["base"] / "artifacts"))
    report = run_nightly(drift_night["data"], NIGHT2, open_store(store_dir), CONFIG,
                         cluster=dask_cluster, uri=uri)
    drop = ["seconds"]
    pd.testing.assert_frame_equal(report.table().drop(columns=drop),
                                  drift_night["report"].table().drop(columns=drop))
    pd.testing.assert_frame_equal(_stored(store_dir, NIGHT2),
                                  _stored(drift_night["store"], NIGHT2))
    assert report.table().set_index("site_id").loc[DRIFTED, "retrained"]


# --- scheduling ---------------------------------------------------------------------------

def test_schedule_runs_at_each_cron_time_and_logs_each_run(tmp_path):
    from pipelines.cli_nightly import schedule_loop

    zone = ZoneInfo(TZ)
    now = [datetime(2025, 4, 1, 21, 0, tzinfo=zone)]
    started = []

    def run(command):
        started.append(now[0])
        now[0] += timedelta(minutes=7)  # a run takes 7 minutes
        return [0, 1, 3][len(started) - 1]

    def sleep(seconds):
        now[0] += timedelta(seconds=seconds)

    history = tmp_path / "history.jsonl"
    status = schedule_loop("30 22 * * *", ["vpp", "nightly"], zone, max_runs=3,
                           history=history, run=run, clock=lambda: now[0], sleep=sleep)
    assert status == 3
    assert [t.strftime("%m-%d %H:%M") for t in started] == ["04-01 22:30", "04-02 22:30",
                                                            "04-03 22:30"]
    lines = pd.read_json(history, lines=True)
    assert list(lines["exit_status"]) == [0, 1, 3]
    assert list(lines["meaning"]) == ["all sites forecast", "some sites failed",
                                      "nothing produced"]
    # bad options stop the schedule at once
    assert schedule_loop("30 22 * * *", ["x"], zone, max_runs=5, run=lambda c: 2,
                         clock=lambda: now[0], sleep=sleep) == 2


def test_deploy_examples_call_vpp_nightly():
    """The Airflow DAG parses without Airflow, imports only its public API, calls the CLI."""
    source = (ROOT / "deploy" / "airflow_vpp_nightly.py").read_text()
    tree = ast.parse(source)
    modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    modules |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    airflow = {m for m in modules if m.startswith("airflow")}
    assert airflow == {"airflow.sdk", "airflow.providers.standard.operators.bash"}
    assert modules - airflow <= {"__future__", "datetime", "pendulum"}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and getattr(n.func, "id", None) == "BashOperator"]
    assert len(calls) == 1
    command = next(k.value for k in calls[0].keywords if k.arg == "bash_command")
    text = "".join(c.value for c in ast.walk(command) if isinstance(c, ast.Constant)
                   and isinstance(c.value, str))
    assert "vpp nightly" in text and "--issue-time" in text
    dag = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
               and getattr(n.func, "id", None) == "DAG")
    assert ast.literal_eval(next(k.value for k in dag.keywords if k.arg == "schedule")) == \
        "30 22 * * *"
    for name in ("vpp-nightly.service", "vpp-schedule.service", "crontab"):
        assert "vpp nightly" in (ROOT / "deploy" / name).read_text() or \
            "vpp schedule" in (ROOT / "deploy" / name).read_text()
    assert "OnCalendar=*-*-* 22:30:00 Asia/Shanghai" in (
        ROOT / "deploy" / "vpp-nightly.timer").read_text()
