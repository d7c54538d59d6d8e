"""OpenSTEF substation 307: the side-by-side with OpenSTEF 3.4.93's reference run.

Protocol (as the reference, ../shared/data/README.md): train on what was known before
2020-11-23 (the model is fitted once, at the first issue, 2020-11-22 12:00 Europe/Amsterdam),
one forecast a day issued 12:00 local the day before (12-36 h ahead), scored on
2020-11-23..29 in MW with OpenSTEF's quantiles P05, P10, P30, P50, P70, P90, P95.
Weather: the operational NWP columns, declared issued 00:00 UTC the day before; prices:
issued 13:00 local the day before (so not known for the next day at 12:00); see
``benchmarks.adapters.openstef``.

``python -m benchmarks.load_openstef``
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from benchmarks import peak_rss_mb, portfolio_from, print_table
from benchmarks.adapters import openstef as ost
from pipelines.backtest import BacktestConfig, backtest_core, day_ahead_schedule

START, END = "2020-11-23T00:00:00+01:00", "2020-11-30T00:00:00+01:00"
QUANTILES = (0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95)
REFERENCE = pd.DataFrame(
    {"mae": [2.39, 2.48, 2.49, 3.78], "rmse": [3.06, 3.20, 3.13, np.nan],
     "mean_pinball": [0.79, 0.86, 0.88, np.nan], "coverage_p10_p90": [0.54, 0.48, 0.38, np.nan]},
    index=["OpenSTEF 3.4.93 xgb", "OpenSTEF lgb", "OpenSTEF xgb_quantile",
           "same load 7 days earlier"])


def run(root=None, make_model=None, config: BacktestConfig | None = None) -> dict:
    portfolio = portfolio_from(ost.frames(root))
    data = portfolio.site_data(ost.SITE_ID)
    config = config or BacktestConfig(quantiles=QUANTILES, retrain_days=30)
    schedule = day_ahead_schedule(START, END, ost.TIMEZONE, 12)
    t0 = time.perf_counter()
    res = backtest_core(data, schedule, config, make_model)
    total = time.perf_counter() - t0
    mw = {k: (v / 1000.0 if k in ("mae", "rmse", "bias", "mean_pinball", "crps") else v)
          for k, v in res.overall.items()}
    return {"result": res, "scores_mw": mw, "fit_seconds": float(res.fits["fit_seconds"].sum()),
            "forecast_seconds": res.forecast_seconds, "seconds": total,
            "peak_rss_mb": peak_rss_mb()}


def report(out: dict) -> None:
    s = out["scores_mw"]
    table = pd.concat([pd.DataFrame([{k: s[k] for k in REFERENCE.columns}], index=["ours"]),
                       REFERENCE])
    print_table(table, "OpenSTEF 307, day-ahead issued 12:00 Europe/Amsterdam, scored "
                "2020-11-23..29 (MW; lower is better, coverage target 0.80)", "{:.3f}")
    print(f"bias {s['bias']:+.3f} MW, n = {s['n']}")
    ok_mae = s["mae"] <= 2.39
    ok_cov = 0.75 <= s["coverage_p10_p90"] <= 0.85
    print(f"target: MAE <= 2.39: {'MET' if ok_mae else 'MISSED'} (aim 2.03: "
          f"{'MET' if s['mae'] <= 2.03 else 'not reached'}); P10-P90 coverage in [0.75, 0.85]: "
          f"{'MET' if ok_cov else 'MISSED'}")
    print(f"fit {out['fit_seconds']:.1f} s, forecasts {out['forecast_seconds']:.2f} s; peak "
          f"memory {out['peak_rss_mb']:.0f} MB")


def main() -> None:
    report(run())


if __name__ == "__main__":
    main()
