"""Many sites at once: training and nightly forecasts, scaled out on Dask.

Fitting runs on Dask workers (one thread each: LightGBM is fastest single-threaded on small
models, see ../shared/STACK_NOTES.md); MLflow writes stay on the driver, one at a time, so
a sqlite store is safe. A site that fails is reported with its reason and the others go on.
For a cluster, pass ``scheduler_address`` (e.g. tcp://host:8786) instead of a worker count.
"""

from __future__ import annotations

import contextlib
import logging
import time
import traceback
from collections.abc import Callable

import pandas as pd

from forecasting.portfolio import Portfolio
from pipelines.config import TrainingConfig
from pipelines.tracking import champion_version, registered_name, tracking_session
from pipelines.training import log_and_register, train_core

log = logging.getLogger(__name__)


def _fit(data, config: TrainingConfig, train_end=None):
    """Worker task: fit and score one site; errors come back as values, not exceptions."""
    t0 = time.perf_counter()
    try:
        return train_core(data, config, train_end)
    except Exception as err:  # noqa: BLE001 - reported per site by the driver; the batch goes on
        return {"site_id": data.site.site_id, "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc(), "seconds": time.perf_counter() - t0}


def _local_results(datas, config):
    for data in datas:
        yield _fit(data, config)


@contextlib.contextmanager
def dask_client(workers: int = 2, scheduler_address: str | None = None):
    """A Dask client on a running scheduler (``tcp://host:8786``), or on a LocalCluster of
    ``workers`` single-threaded processes on 127.0.0.1 (no dashboard); closed on exit.

    The local workers run without Dask's statistical profiler: it samples every task's stack
    every 10 ms and keeps the profiles, which grew a worker by about 3 MB per nightly site.
    Start the workers of a cluster with ``DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False``
    for the same reason.
    """
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler_address:
        client, cluster = Client(scheduler_address), None
    else:
        with dask.config.set({"distributed.worker.profile.enabled": False}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None,
                                   silence_logs=logging.ERROR, env={"OMP_NUM_THREADS": "1"})
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _dask_results(datas, config, workers: int, scheduler_address: str | None):
    from dask.distributed import as_completed

    with dask_client(workers, scheduler_address) as client:
        futures = [client.submit(_fit, d, config, pure=False) for d in datas]
        for future in as_completed(futures):
            yield future.result()


def untrained_sites(portfolio: Portfolio, site_ids: list[str], uri: str | None = None
                    ) -> list[str]:
    """The sites without a registered champion."""
    with tracking_session(uri) as client:
        return [s for s in site_ids if champion_version(
            client, registered_name(portfolio.site(s).kind, s)) is None]


def train_many(portfolio: Portfolio, site_ids: list[str], config: TrainingConfig,
               workers: int = 2, scheduler_address: str | None = None,
               on_done: Callable[[str], None] | None = None, uri: str | None = None
               ) -> list[dict]:
    """Train, log and register each site; returns one summary dict per site."""
    datas = [portfolio.site_data(s) for s in site_ids]
    by_id = {d.site.site_id: d for d in datas}
    parallel = scheduler_address or (workers > 1 and len(datas) > 1)
    results = (_dask_results(datas, config, workers, scheduler_address) if parallel
               else _local_results(datas, config))
    summaries = []
    with tracking_session(uri) as client:
        for res in results:
            if isinstance(res, dict):  # a failed site
                log.error("site %s failed: %s", res["site_id"], res["error"])
                log.debug(res["traceback"])
                summaries.append(res)
                sid = res["site_id"]
            else:
                sid = res.site_id
                try:
                    out = log_and_register(client, by_id[sid], res, config)
                    summaries.append({**out, "site_id": sid, "fit_seconds": res.fit_seconds})
                except Exception as err:  # report the site, go on with the rest
                    log.exception("site %s: logging to MLflow failed", sid)
                    summaries.append({"site_id": sid, "error": f"{type(err).__name__}: {err}"})
            if on_done:
                on_done(sid)
    return sorted(summaries, key=lambda r: r["site_id"])


def forecast_many(portfolio: Portfolio, site_ids: list[str], issue_time, horizon: str,
                  quantiles=None, registry=None, on_done: Callable[[str], None] | None = None
                  ) -> tuple[pd.DataFrame, list[dict]]:
    """Forecasts of many sites for one issue time (the nightly batch), each through the one
    forecast path (``inference.forecast.forecast_site``); ``"now"`` is floored to each
    site's resolution.

    Returns the forecasts of every site that worked (output format, UTC) and a list of
    ``{"site_id", "error"}`` for those that did not; one failing site never stops the rest.
    Forecasting takes milliseconds per site, so this runs in the driver process.
    """
    from inference.forecast import forecast_site
    from inference.registry import ModelRegistry

    registry = registry or ModelRegistry()
    frames, failures = [], []
    for sid in site_ids:
        try:
            frames.append(forecast_site(portfolio, None, sid, issue_time, quantiles=quantiles,
                                        registry=registry, horizon=horizon))
        except Exception as err:  # noqa: BLE001 - report the site, go on with the rest
            log.error("site %s: %s: %s", sid, type(err).__name__, err)
            failures.append({"site_id": sid, "error": f"{type(err).__name__}: {err}"})
        if on_done:
            on_done(sid)
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()), failures
