"""The nightly batch at portfolio scale, on a SYNTHETIC portfolio (the sample generator scaled up).

Data: ``forecasting.synthetic.generate_portfolio_frames`` with ``--sites`` sites (about 90 %
C&I load customers, 6 % PV, 4 % wind), ``--history-days`` of 15-minute readings before the
last night and NWP issued daily (speed does not depend on the values). Everything runs on
the product path, ``pipelines.nightly.run_nightly`` (what ``vpp nightly`` runs), into a
temporary MLflow sqlite store and Parquet forecast store:

1. **Retraining cost per site**: the first night of ``--retrain-sites`` sites without a
   champion (``train_core`` with the default ``TrainingConfig``: scoring fit, held-out
   forecasts, final fit, 2 horizon buckets x 3 levels, one LightGBM thread; then
   ``log_and_register``: run, plots, model, registry), in this process, one core.
2. The other sites get a champion by registering the trained model of their kind under
   their own name (a new registered version of the same artifacts, its run's held-out MAE
   and train end): every site then loads *its own* registered version at night, which is
   the cost measured; the forecasts of those sites are not meant to be accurate.
3. **Nightly forecast without retraining** (``--no-retrain``), D+1 + D+2 at P10/P50/P90 for
   every site: per site the input checks, the champion's lookup and load from the registry,
   the settled-day score (``--drift-days 1``: yesterday's forecast read from the store,
   written by the night before last) and ``forecast_core``; then one store write per kind.
   The night before last runs first (2 workers) to fill the store: its time is the
   first-night figure (yesterday recomputed, the store empty). Then the same night on a
   Dask LocalCluster of 1 worker and of 2 workers (one thread each, workers started and
   their imports done before the clock starts): sites/s, speed-up, peak resident memory
   of each worker process (``ru_maxrss``).
4. A paper estimate of the cluster for 100,000 sites before a 23:00 deadline from the
   measured per-site costs (the assumptions are printed with it).

``python -m benchmarks.nightly [--sites 1000] [--history-days 60] [--retrain-sites 3]``
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")  # the cluster's own INFO lines

import pandas as pd

from benchmarks import peak_rss_mb, print_table
from forecasting.synthetic import generate_portfolio_frames, write_portfolio
from inference.forecast_store import open_store
from pipelines.config import TrainingConfig
from pipelines.nightly import NightlyConfig, run_nightly

TZ = "Asia/Shanghai"
LAST_NIGHT = pd.Timestamp("2025-06-10T22:30:00+08:00")


def _peak_mb() -> float:
    """Peak resident memory of this process's address space, MB (VmHWM: unlike ru_maxrss it
    is not inherited from the process that spawned a Dask worker)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _cpu_s() -> float:
    """CPU seconds (user + system) this process has used."""
    t = os.times()
    return t.user + t.system


def _shares(n: int) -> tuple[int, int, int]:
    n_pv = max(1, round(0.06 * n))
    n_wind = max(1, round(0.04 * n))
    return n - n_pv - n_wind, n_pv, n_wind


def make_portfolio(directory: Path, n_sites: int, history_days: int) -> dict:
    t0 = time.perf_counter()
    n_load, n_pv, n_wind = _shares(n_sites)
    start = (LAST_NIGHT.normalize() - pd.Timedelta(days=history_days)).strftime("%Y-%m-%d")
    end = (LAST_NIGHT.normalize() + pd.Timedelta(days=4)).strftime("%Y-%m-%d")
    frames = generate_portfolio_frames(seed=3, start=start, end=end, n_customers=n_load,
                                       n_pv=n_pv, n_wind=n_wind)
    write_portfolio(frames, directory)
    return {"load": n_load, "pv": n_pv, "wind": n_wind, "rows": len(frames["measurements"]),
            "seconds": time.perf_counter() - t0, "sites": frames["sites"]}


def register_copies(uri: str, sites: pd.DataFrame, templates: dict[str, str]) -> float:
    """Every site without a champion gets the trained model of its kind as its own version."""
    from mlflow import MlflowClient

    from pipelines.tracking import CHAMPION, registered_name

    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    source = {}
    for kind, sid in templates.items():
        version = client.get_model_version_by_alias(registered_name(kind, sid), CHAMPION)
        source[kind] = (client.get_model_version_download_uri(version.name, version.version),
                        version.run_id)
    t0 = time.perf_counter()
    for row in sites.itertuples(index=False):
        if row.site_id in templates.values():
            continue
        name = registered_name(row.kind, row.site_id)
        artifacts, run_id = source[row.kind]
        client.create_registered_model(name)
        version = client.create_model_version(name, artifacts, run_id=run_id)
        client.set_registered_model_alias(name, CHAMPION, version.version)
    return time.perf_counter() - t0


def night(data: Path, store_dir: Path, uri: str, issue: pd.Timestamp, workers: int,
          config: NightlyConfig) -> dict:
    """One night on a fresh LocalCluster of ``workers`` processes (``pipelines.batch.
    dask_client``, as ``vpp nightly --workers N`` starts it; imports done before the clock)."""
    from pipelines.batch import dask_client

    with dask_client(workers) as client:
        client.run(__import__, "pipelines.nightly")
        client.run(__import__, "pipelines.training")
        cpu0, driver0 = client.run(_cpu_s), _cpu_s()
        t0 = time.perf_counter()
        report = run_nightly(data, issue, open_store(store_dir), config,
                             cluster=client.scheduler.address, uri=uri)
        seconds = time.perf_counter() - t0
        worker_cpu = sum(v - cpu0[w] for w, v in client.run(_cpu_s).items())
        driver_cpu = _cpu_s() - driver0
        peaks = client.run(_peak_mb)
    counts = report.counts()
    return {"workers": workers, "sites": counts["sites"], "done": counts["done"],
            "failed": counts["failed"], "fallen_back": counts["fallen_back"],
            "seconds": seconds, "sites_per_s": counts["sites"] / seconds,
            "assess_forecast_s": report.timings.get("assess_forecast_seconds", math.nan),
            "write_s": report.timings.get("write_seconds", math.nan),
            "read_s": report.timings.get("read_seconds", math.nan),
            "worker_cpu_s": worker_cpu, "driver_cpu_s": driver_cpu,
            "worker_peak_mb": max(peaks.values()), "report": report}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=300,
                        help="sites in the portfolio (1000: about 15 minutes here)")
    parser.add_argument("--history-days", type=int, default=60,
                        help="days of readings before the last night")
    parser.add_argument("--retrain-sites", type=int, default=3,
                        help="sites trained through the nightly (one per kind at least)")
    parser.add_argument("--deadline-hours", type=float, default=2.0,
                        help="window for 100,000 sites in the estimate (e.g. 21:00-23:00)")
    parser.add_argument("--retrain-share", type=float, default=0.05,
                        help="share of sites retrained per night in the estimate")
    parser.add_argument("--retrain-seconds", type=float, default=None,
                        help="retraining seconds per site for the estimate (default: measured)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    for noisy in ("mlflow", "distributed", "pipelines", "models", "forecasting"):
        logging.getLogger(noisy).setLevel(logging.ERROR)

    print(f"SYNTHETIC portfolio: {args.sites} sites, the sample generator scaled up "
          "(invented data; speed does not depend on the values); load average before the "
          f"run {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="vpp-bench-nightly-") as tmp:
        tmp = Path(tmp)
        os.environ["MLFLOW_ARTIFACTS_DIR"] = str(tmp / "artifacts")
        uri = f"sqlite:///{tmp / 'mlflow.db'}"
        pf = make_portfolio(tmp / "pf", args.sites, args.history_days)
        print(f"generated {pf['load']} load, {pf['pv']} PV, {pf['wind']} wind sites, "
              f"{args.history_days} days, {pf['rows']:,} readings in {pf['seconds']:.0f} s")
        sites = pf["sites"]
        kinds = ["load", "pv", "wind"]
        train_ids = [sites.loc[sites["kind"] == k, "site_id"].iloc[0] for k in kinds]
        extra = sites.loc[sites["kind"] == "load", "site_id"].iloc[1:max(1, args.retrain_sites
                                                                       - 2)].tolist()
        train_ids += extra
        config = NightlyConfig()  # default TrainingConfig: what a real night retrains with
        first = LAST_NIGHT - pd.Timedelta(days=2)
        t0 = time.perf_counter()
        trained = run_nightly(tmp / "pf", first, open_store(tmp / "store-train"), config,
                              site_ids=train_ids, workers=1, uri=uri, log_mlflow=False)
        retrain_s = trained.timings["retrain_seconds"] / max(1, trained.counts()["retrained"])
        print(f"retrained {trained.counts()['retrained']} sites (no champion) in "
              f"{time.perf_counter() - t0:.0f} s: {retrain_s:.1f} s per site on one core "
              f"(train_core + log_and_register, {args.history_days} days, "
              f"{TrainingConfig().n_estimators} rounds)")
        t0 = time.perf_counter()
        copy_s = register_copies(uri, sites, dict(zip(kinds, train_ids[:3], strict=True)))
        print(f"registered a champion for the other {args.sites - 3} sites in {copy_s:.0f} s")

        fast = NightlyConfig(retrain=False, drift_days=1)
        rows = []
        warm_up = night(tmp / "pf", tmp / "store", uri, first, 2, fast)
        warm_up["night"] = "night before last (store empty)"
        rows.append(warm_up)
        for workers in (1, 2):
            res = night(tmp / "pf", tmp / "store", uri, LAST_NIGHT, workers, fast)
            res["night"] = "last night (yesterday from the store)"
            rows.append(res)
        table = pd.DataFrame([{k: v for k, v in r.items() if k != "report"} for r in rows])
        table = table.set_index(["night", "workers"])
        print_table(table, f"SYNTHETIC nightly D+1+D+2 forecasts of {args.sites} sites, no "
                    "retraining (Dask LocalCluster on this 2-core machine)", "{:.2f}")
        one, two = rows[1], rows[2]
        speedup = one["seconds"] / two["seconds"]
        per_site_core = one["worker_cpu_s"] / one["sites"]
        print(f"\nspeed-up 1 -> 2 workers: {speedup:.2f}x (the driver used "
              f"{two['driver_cpu_s']:.0f} CPU-s of the same 2 cores: reading and validating the "
              f"portfolio {two['read_s']:.1f} s, scattering, the store write; load average "
              f"{os.getloadavg()[0]:.1f} from other jobs); worker CPU per site "
              f"{1e3 * per_site_core:.0f} ms (checks, registry load, settled day, forecast)")
        print(f"peak memory per worker: {one['worker_peak_mb']:.0f} MB (1 worker), "
              f"{two['worker_peak_mb']:.0f} MB (2 workers); driver {peak_rss_mb():.0f} MB")
        if args.sites < 1000:
            print(f"measured with {args.sites} sites; 1,000 sites extrapolated linearly: "
                  f"{1000 / two['sites_per_s']:.0f} s on 2 workers")

        n = 100_000
        window_s = args.deadline_hours * 3600
        retrain_each = args.retrain_seconds or retrain_s
        forecast_core_s = n * per_site_core
        retrain_core_s = n * args.retrain_share * retrain_each
        driver_cpu_site = two["driver_cpu_s"] / two["sites"]
        driver_mb_site = peak_rss_mb() / args.sites
        cores = math.ceil((forecast_core_s + retrain_core_s) / (0.7 * window_s))
        shard = int(16_000 / driver_mb_site // 500 * 500) or 500
        print(f"\npaper estimate, {n:,} sites before 23:00 (a {args.deadline_hours:g} h window, "
              f"70 % efficiency): forecasts {forecast_core_s / 3600:.1f} core-hours "
              f"({1e3 * per_site_core:.0f} ms/site) + retraining {args.retrain_share:.0%} of the "
              f"sites {retrain_core_s / 3600:.1f} core-hours ({retrain_each:.1f} s/site"
              + ("" if args.retrain_seconds else f", measured at {args.history_days} days of "
                 "history; --retrain-seconds for a longer one") + f") -> {cores} worker cores "
              f"(e.g. {math.ceil(cores / 16)} machines of 16 cores). Drivers: "
              f"{1e3 * driver_cpu_site:.0f} ms CPU and at most {driver_mb_site:.1f} MB per site "
              "here (peak of this process, which also generated the portfolio and includes the "
              f"imports), so one driver does not hold {n:,} sites: shard the portfolio into "
              "jobs of about "
              f"{shard:,} sites (16 GB each, `vpp nightly --sites ...`), "
              f"{math.ceil(n / shard)} jobs, {n * driver_cpu_site / 3600:.1f} core-hours of "
              "driver work in all. Registry and store: a tracking server (PostgreSQL) and the "
              "SQL forecast store")


if __name__ == "__main__":
    main()
