"""GEFCom2014 solar, tasks 4-15, with the competition's protocol, through the product path.

For each task month and zone, the product's own path (``benchmarks.product_path``): the
portfolio directory the adapter writes, ``read_portfolio``, then ``train_site`` with
``train_end`` = the month's first hour (what ``vpp train --train-end <month start>
--quantiles 0.02,0.1,0.25,0.5,0.75,0.9,0.98 --features weather_only
--extra-weather-columns cloud_liquid_water_kgm2,... --max-training-days 0`` runs: scoring
fit before the 14 held-out days, final fit on all history before the month, MLflow run,
registry, champion/challenger), then ``forecast_site`` (``vpp forecast``, ``POST
/forecast``) for each day of the month, issued 00 UTC for the next 24 h, at the 99
percentiles (interpolated from the 7 trained levels).

No power measured inside the month is used, as in the competition: the portfolio given to
``forecast_site`` holds every measurement, but a ``weather_only`` model reads no measured
history (no lags, no last-known level), so its forecasts cannot depend on them; that is why
the daily issues equal forecasting the month at once from its NWP. Scored: pinball loss on
normalised power averaged over all hours (night included), the 99 quantiles and the zones.
The published per-task scores (benchmark, median team, winner Gang-gang, best team) come
from the official leaderboard (SOURCE.txt).

One temporary model store serves the run, one registered model per zone (``pv-zone1``...),
retrained monthly: promotion applies as in production, so a month whose new model does not
beat the champion on the held-out days is served by the older champion (counted and
reported per task).

Task 15 (June 2014) has NWP for zone 3 only, so the complete comparison is tasks 4-14;
task 15 is scored on zone 3 alone and marked.

``python -m benchmarks.pv_gefcom2014 [--tasks 4,5]``
"""

from __future__ import annotations

import argparse
import logging
import time
from collections import Counter

import numpy as np
import pandas as pd

from benchmarks import PERCENTILES, peak_rss_mb, print_table
from benchmarks.adapters import gefcom2014_solar as gs
from benchmarks.product_path import (
    model_store,
    portfolio_dir,
    quality_counts,
    run_product,
    served_by_older_champion,
)
from forecasting.metrics import mean_pinball
from forecasting.portfolio import read_portfolio
from pipelines.config import TrainingConfig
from pipelines.evaluation import Schedule, attach_actuals

TASKS = tuple(range(4, 16))
# 99 percentiles are asked for: train a 7-level grid, interpolate the rest.
TRAIN_QUANTILES = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)
# No measured power from inside the forecast month: weather (all the NWP fields the data set
# gives, including those outside the contract), solar geometry, calendar only; all history.
CONFIG = TrainingConfig(quantiles=TRAIN_QUANTILES, features="weather_only",
                        extra_weather_columns=gs.EXTRA_WEATHER_COLUMNS, max_training_days=None)


def daily_schedule(first: pd.Timestamp, end: pd.Timestamp) -> Schedule:
    """One issue a day at 00 UTC for the next 24 h, from ``first`` to ``end`` (UTC)."""
    days = pd.date_range(first, end, freq="1D", inclusive="left")
    return Schedule(list(days), list(days), [d + pd.Timedelta(days=1) for d in days])


def run(tasks=TASKS, root=None, verbose: bool = True, config: TrainingConfig = CONFIG,
        uri: str | None = None) -> dict:
    board = gs.leaderboard(root)
    rows, trainings = [], []
    quality: Counter = Counter()
    train_s = forecast_s = 0.0
    t_start = time.perf_counter()
    with portfolio_dir(gs.frames(root)) as directory, model_store(uri) as store:
        portfolio = read_portfolio(directory)
        for task in tasks:
            first, end = gs.task_month(task)
            losses, zones, promoted, older = [], [], 0, 0
            for site in portfolio.sites.values():
                data = portfolio.site_data(site.site_id)
                month = data.values_kw[(data.values_kw.index >= first)
                                       & (data.values_kw.index < end)]
                if month.empty:
                    continue
                out = run_product(portfolio, site.site_id, daily_schedule(first, end), [first],
                                  config, PERCENTILES, uri=store)
                train_s += out.train_seconds
                forecast_s += out.forecast_seconds
                quality.update(quality_counts(out.forecasts))
                trained = out.trainings.iloc[0]
                promoted += trained["alias"] == "champion"
                served_old = served_by_older_champion(out).any()
                older += served_old
                trainings.append({"task": task, "site_id": site.site_id,
                                  "version": trained["version"], "alias": trained["alias"],
                                  "reason": trained["reason"],
                                  "served_by": out.forecasts["model_version"].iloc[0],
                                  "holdout_mean_pinball": trained["holdout_mean_pinball"]})
                fc = attach_actuals(out.forecasts, data).dropna(subset=["actual_kw"])
                qs = {q: fc[f"q{q:g}"].to_numpy() for q in PERCENTILES}
                losses.append(mean_pinball(fc["actual_kw"].to_numpy(), qs) * len(fc))
                zones.append((site.site_id, len(fc)))
            n = sum(z[1] for z in zones)
            ours = sum(losses) / n
            ref = board.loc[task]
            rows.append({"task": task, "month": f"{first:%Y-%m}", "zones": len(zones),
                         "ours": ours, "benchmark": ref["benchmark"],
                         "median_team": ref["median_team"],
                         "winner_GangGang": ref["winner_GangGang"], "best": ref["best"],
                         "new_champion": promoted, "older_champion": older})
            if verbose:
                print(f"task {task} ({first:%Y-%m}, {len(zones)} zones): pinball {ours:.5f}  "
                      f"median team {ref['median_team']:.5f}  winner "
                      f"{ref['winner_GangGang']:.5f}; new model champion in {promoted}/"
                      f"{len(zones)} zones", flush=True)
    table = pd.DataFrame(rows).set_index("task")
    complete = table[table["zones"] == 3]
    summary = complete[["ours", "benchmark", "median_team", "winner_GangGang", "best"]].mean()
    return {"table": table, "summary": summary, "complete_tasks": list(complete.index),
            "trainings": pd.DataFrame(trainings), "quality": dict(quality),
            "n_trainings": len(trainings), "train_seconds": train_s,
            "forecast_seconds": forecast_s, "seconds": time.perf_counter() - t_start,
            "peak_rss_mb": peak_rss_mb()}


def report(out: dict) -> None:
    table = out["table"].copy()
    table["month"] = table["month"] + np.where(table["zones"] < 3, " (zone 3 only)", "")
    print_table(table, "GEFCom2014 solar: mean pinball on normalised power, 99 percentiles, "
                "all hours (lower is better); new_champion: zones whose new model was promoted, "
                "older_champion: zones served by an older champion", "{:.5f}")
    tasks = out["complete_tasks"]
    print(f"\nmean over the complete tasks {tasks[0]}-{tasks[-1]} (all 3 zones):")
    print(out["summary"].to_string(float_format=lambda v: f"{v:.5f}"))
    s = out["summary"]
    print(f"target: ours <= median team: {'MET' if s['ours'] <= s['median_team'] else 'MISSED'}"
          f"; winner's level: {'MET' if s['ours'] <= s['winner_GangGang'] else 'not reached'}")
    kept = out["trainings"][out["trainings"]["alias"] != "champion"]
    print(f"promotion: {len(kept)} of {out['n_trainings']} monthly models stayed challenger "
          f"(their month served by the older champion)")
    for _, r in kept.iterrows():
        print(f"  task {r['task']} {r['site_id']} v{r['version']}: {r['reason']}; served by "
              f"{r['served_by']}")
    print(f"forecast quality flags (rows): {out['quality']}")
    print(f"trainings: {out['n_trainings']} (scoring fit + final fit + registry) "
          f"{out['train_seconds']:.0f} s, forecasts {out['forecast_seconds']:.0f} s; total "
          f"{out['seconds']:.0f} s; peak memory {out['peak_rss_mb']:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(map(str, TASKS)))
    args = parser.parse_args()
    logging.getLogger("mlflow").setLevel(logging.ERROR)  # as vpp does: no per-model warnings
    report(run(tuple(int(t) for t in args.tasks.split(","))))


if __name__ == "__main__":
    main()
