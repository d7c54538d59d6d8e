"""GEFCom2014 solar, tasks 4-15, with the competition's protocol.

For each task month and zone: train on everything before the month, forecast the whole
month from its NWP (no power measured in the month is used: the model has no lags or
recent-level features, so a daily 00 UTC issue for the next 24 h equals forecasting the
month at once), 99 percentiles, pinball loss on normalised power averaged over all hours
(night included), quantiles and zones. The published per-task scores (benchmark, median
team, winner Gang-gang, best team) come from the official leaderboard (SOURCE.txt).

Task 15 (June 2014) has NWP for zone 3 only, so the complete comparison is tasks 4-14;
task 15 is scored on zone 3 alone and marked.

``python -m benchmarks.pv_gefcom2014 [--tasks 4,5]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from benchmarks import PERCENTILES, peak_rss_mb, portfolio_from, print_table
from benchmarks.adapters import gefcom2014_solar as gs
from forecasting.features import FeatureSpec
from forecasting.metrics import mean_pinball
from models.forecaster import SiteForecaster
from pipelines.backtest import BacktestConfig, backtest_core
from pipelines.evaluation import Schedule

TASKS = tuple(range(4, 16))
# No measured power from inside the forecast month: weather (all the NWP fields the data set
# gives, including those outside the contract), solar geometry, calendar only.
NWP_ONLY = FeatureSpec(lags_minutes=(), use_last_known=False, use_price=False,
                       extra_weather_columns=gs.EXTRA_WEATHER_COLUMNS)
# 99 percentiles are asked for: train a 7-level grid, interpolate the rest.
TRAIN_QUANTILES = (0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 0.98)


def daily_schedule(first: pd.Timestamp, end: pd.Timestamp) -> Schedule:
    days = pd.date_range(first, end, freq="1D", inclusive="left")
    return Schedule(list(days), list(days), [d + pd.Timedelta(days=1) for d in days])


def make_model(kind: str) -> SiteForecaster:
    return SiteForecaster(kind=kind, feature_spec=NWP_ONLY, quantiles=TRAIN_QUANTILES,
                          max_training_days=None)


def run(tasks=TASKS, root=None, verbose: bool = True) -> dict:
    portfolio = portfolio_from(gs.frames(root))
    board = gs.leaderboard(root)
    config = BacktestConfig(quantiles=PERCENTILES, retrain_days=62)
    rows, fit_s, n_fits = [], 0.0, 0
    t_start = time.perf_counter()
    for task in tasks:
        first, end = gs.task_month(task)
        losses, zones = [], []
        for site in portfolio.sites.values():
            data = portfolio.site_data(site.site_id)
            month = data.values_kw[(data.values_kw.index >= first) & (data.values_kw.index < end)]
            if month.empty:
                continue
            res = backtest_core(data, daily_schedule(first, end), config, make_model)
            fit_s += res.fits["fit_seconds"].sum()
            n_fits += len(res.fits)
            fc = res.forecasts.dropna(subset=["actual_kw"])
            qs = {q: fc[f"q{q:g}"].to_numpy() for q in PERCENTILES}
            losses.append(mean_pinball(fc["actual_kw"].to_numpy(), qs) * len(fc))
            zones.append((site.site_id, len(fc)))
        n = sum(z[1] for z in zones)
        ours = sum(losses) / n
        ref = board.loc[task]
        rows.append({"task": task, "month": f"{first:%Y-%m}", "zones": len(zones), "ours": ours,
                     "benchmark": ref["benchmark"], "median_team": ref["median_team"],
                     "winner_GangGang": ref["winner_GangGang"], "best": ref["best"]})
        if verbose:
            print(f"task {task} ({first:%Y-%m}, {len(zones)} zones): pinball {ours:.5f}  "
                  f"median team {ref['median_team']:.5f}  winner {ref['winner_GangGang']:.5f}",
                  flush=True)
    table = pd.DataFrame(rows).set_index("task")
    complete = table[table["zones"] == 3]
    summary = complete[["ours", "benchmark", "median_team", "winner_GangGang", "best"]].mean()
    return {"table": table, "summary": summary, "complete_tasks": list(complete.index),
            "fit_seconds_mean": fit_s / max(n_fits, 1), "n_fits": n_fits,
            "seconds": time.perf_counter() - t_start, "peak_rss_mb": peak_rss_mb()}


def report(out: dict) -> None:
    table = out["table"].copy()
    table["month"] = table["month"] + np.where(table["zones"] < 3, " (zone 3 only)", "")
    print_table(table, "GEFCom2014 solar: mean pinball on normalised power, 99 percentiles, "
                "all hours (lower is better)", "{:.5f}")
    tasks = out["complete_tasks"]
    print(f"\nmean over the complete tasks {tasks[0]}-{tasks[-1]} (all 3 zones):")
    print(out["summary"].to_string(float_format=lambda v: f"{v:.5f}"))
    s = out["summary"]
    print(f"target: ours <= median team: {'MET' if s['ours'] <= s['median_team'] else 'MISSED'}"
          f"; winner's level: {'MET' if s['ours'] <= s['winner_GangGang'] else 'not reached'}")
    print(f"fits: {out['n_fits']}, mean fit {out['fit_seconds_mean']:.1f} s; total "
          f"{out['seconds']:.0f} s; peak memory {out['peak_rss_mb']:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(map(str, TASKS)))
    args = parser.parse_args()
    report(run(tuple(int(t) for t in args.tasks.split(","))))


if __name__ == "__main__":
    main()
