"""OpenSTEF substation 307: the side-by-side with OpenSTEF 3.4.93's reference run.

Protocol (as the reference, ../shared/data/README.md): trained on what was measured before
2020-11-23 00:00 Europe/Amsterdam (``vpp train --train-end 2020-11-23T00:00:00+01:00``,
the product's defaults), one forecast a day issued 12:00 local the day before (12-36 h
ahead, ``vpp forecast``), scored on 2020-11-23..29 in MW with OpenSTEF's quantiles P05,
P10, P30, P50, P70, P90, P95. Weather: the operational NWP columns, declared issued 00:00
UTC the day before; prices: issued 13:00 local the day before (so not known for the next
day at 12:00); see ``benchmarks.adapters.openstef``.

Everything goes through the product's path (``benchmarks.product_path``): the portfolio
directory the adapter writes, ``read_portfolio``, ``train_site``, the registry, and
``forecast_site``. ``python -m benchmarks.openstef_cli`` runs the same protocol through
the ``vpp`` command line and prints the same figures.

``python -m benchmarks.load_openstef [--seeds 0,1,2,3,4]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from benchmarks import peak_rss_mb, print_table
from benchmarks.adapters import openstef as ost
from benchmarks.product_path import portfolio_dir, run_product
from pipelines.config import TrainingConfig
from pipelines.evaluation import attach_actuals, day_ahead_schedule, score_forecasts

TRAIN_END = "2020-11-23T00:00:00+01:00"
START, END = "2020-11-23T00:00:00+01:00", "2020-11-30T00:00:00+01:00"
ISSUE_HOUR_LOCAL = 12
QUANTILES = (0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95)
SEEDS = (0,)
MW_COLUMNS = ("mae", "rmse", "bias", "mean_pinball", "crps")
REFERENCE = pd.DataFrame(
    {"mae": [2.39, 2.48, 2.49, 3.78], "rmse": [3.06, 3.20, 3.13, np.nan],
     "mean_pinball": [0.79, 0.86, 0.88, np.nan], "coverage_p10_p90": [0.54, 0.48, 0.38, np.nan]},
    index=["OpenSTEF 3.4.93 xgb", "OpenSTEF lgb", "OpenSTEF xgb_quantile",
           "same load 7 days earlier"])


def schedule():
    return day_ahead_schedule(START, END, ost.TIMEZONE, ISSUE_HOUR_LOCAL)


def score_mw(forecasts: pd.DataFrame, portfolio) -> dict:
    """Scores in MW of forecasts (output format) against the portfolio's readings."""
    data = portfolio.site_data(ost.SITE_ID)
    scored = attach_actuals(forecasts, data)
    overall = score_forecasts(scored, None, ost.TIMEZONE)["overall"]
    return {k: (v / 1000.0 if k in MW_COLUMNS else v) for k, v in overall.items()}


def run(root=None, seeds=SEEDS, uri: str | None = None) -> dict:
    from forecasting.portfolio import read_portfolio

    t0 = time.perf_counter()
    per_seed, runs = [], {}
    with portfolio_dir(ost.frames(root)) as directory:
        portfolio = read_portfolio(directory)
        for seed in seeds:
            run_ = run_product(portfolio, ost.SITE_ID, schedule(), [TRAIN_END],
                               TrainingConfig(random_state=seed), QUANTILES, uri=uri)
            runs[seed] = run_
            per_seed.append({"seed": seed, **score_mw(run_.forecasts, portfolio),
                             "train_s": run_.train_seconds,
                             "forecast_s": run_.forecast_seconds})
    table = pd.DataFrame(per_seed).set_index("seed")
    return {"per_seed": table, "scores_mw": table.mean().to_dict(), "runs": runs,
            "seconds": time.perf_counter() - t0, "peak_rss_mb": peak_rss_mb()}


def report(out: dict) -> None:
    per_seed = out["per_seed"]
    s = out["scores_mw"]
    label = ("ours" if len(per_seed) == 1 else
             f"ours (mean of seeds {','.join(map(str, per_seed.index))})")
    table = pd.concat([pd.DataFrame([{k: s[k] for k in REFERENCE.columns}], index=[label]),
                       REFERENCE])
    print_table(table, "OpenSTEF 307, day-ahead issued 12:00 Europe/Amsterdam, scored "
                "2020-11-23..29 (MW; lower is better, coverage target 0.80)", "{:.3f}")
    if len(per_seed) > 1:
        print_table(per_seed[["mae", "rmse", "mean_pinball", "coverage_p10_p90", "train_s"]],
                    "per seed (vpp train --seed N)", "{:.3f}")
        print(f"MAE over seeds: mean {per_seed['mae'].mean():.3f}, sd "
              f"{per_seed['mae'].std(ddof=1):.3f}, range {per_seed['mae'].min():.3f}-"
              f"{per_seed['mae'].max():.3f} MW")
    print(f"bias {s['bias']:+.3f} MW, n = {s['n']:.0f}")
    ok_mae = s["mae"] <= 2.39
    ok_cov = 0.75 <= s["coverage_p10_p90"] <= 0.85
    print(f"target: MAE <= 2.39: {'MET' if ok_mae else 'MISSED'} (aim 2.03: "
          f"{'MET' if s['mae'] <= 2.03 else 'not reached'}); P10-P90 coverage in [0.75, 0.85]: "
          f"{'MET' if ok_cov else 'MISSED'}")
    print(f"train (scoring fit + final fit + registry) {per_seed['train_s'].mean():.1f} s per "
          f"seed, forecasts {per_seed['forecast_s'].mean():.2f} s; total {out['seconds']:.0f} "
          f"s; peak memory {out['peak_rss_mb']:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default=",".join(map(str, SEEDS)),
                        help="comma-separated training seeds; the table shows their mean")
    args = parser.parse_args()
    report(run(seeds=tuple(int(s) for s in args.seeds.split(","))))


if __name__ == "__main__":
    main()
