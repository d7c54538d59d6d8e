"""Training time per site and forecast latency, on a year of 15-minute data.

Data: the project's SYNTHETIC sample generator (``forecasting.synthetic``; speed does not
depend on the values), one load, one PV and one wind site, one year of 15-minute readings
with hourly NWP issued daily. For each site: the wall time of ``SiteForecaster.fit`` with
the default settings (2 horizon buckets x 3 levels, conformal calibration fit + final
fit, one LightGBM thread), then the model goes through a pickle round trip (as a
registered model is stored) and forecasts the 96 quarter-hours of a day issued 12:00 the
day before, for 30 different days: median and 90th percentile latency, split into
features and prediction. Peak memory is the process's maximum resident set.

``python -m benchmarks.speed``
"""

from __future__ import annotations

import pickle
import time

import numpy as np
import pandas as pd

from benchmarks import peak_rss_mb, portfolio_from, print_table
from forecasting.features import build_features, window_known_at
from forecasting.synthetic import generate_portfolio_frames
from models.forecaster import SiteForecaster


def run(days_forecast: int = 30) -> dict:
    t0 = time.perf_counter()
    frames = generate_portfolio_frames(seed=11, start="2024-01-01", end="2025-02-15",
                                       n_customers=1, n_pv=1, n_wind=1)
    portfolio = portfolio_from(frames)
    gen_s = time.perf_counter() - t0
    rows = []
    for site in portfolio.sites.values():
        data = portfolio.site_data(site.site_id)
        train_end = data.values_kw.index.min() + pd.Timedelta(days=365)
        train = data.before(train_end)
        t0 = time.perf_counter()
        model = SiteForecaster(kind=site.kind).fit(train)
        fit_s = time.perf_counter() - t0
        model = pickle.loads(pickle.dumps(model))  # as loaded from the registry
        tz = site.timezone
        days = [(train_end + pd.Timedelta(days=k)).tz_convert(tz).normalize()
                for k in range(2, 2 + days_forecast)]
        total, feats, pred = [], [], []
        model.forecast(data, days[0] - pd.Timedelta(hours=12),
                       pd.date_range(days[0], periods=96, freq="15min"))  # warm-up
        for day in days:
            issue = day - pd.Timedelta(hours=12)
            targets = pd.date_range(day, periods=96, freq="15min")
            a = time.perf_counter()
            model.forecast(data, issue, targets, (0.1, 0.5, 0.9))
            b = time.perf_counter()
            utc = targets.tz_convert("UTC")
            known = window_known_at(data, utc, issue.tz_convert("UTC"), model.spec_)
            X = build_features(known, utc, pd.DatetimeIndex([issue] * 96), model.spec_)
            c = time.perf_counter()
            model.predict_features(X, (0.1, 0.5, 0.9))
            d = time.perf_counter()
            total.append(b - a)
            feats.append(c - b)
            pred.append(d - c)
        rows.append({"site": site.site_id, "kind": site.kind, "train_rows": len(train.values_kw),
                     "features": len(model.feature_names_), "fit_s": fit_s,
                     "forecast_ms_p50": 1e3 * np.median(total),
                     "forecast_ms_p90": 1e3 * np.quantile(total, 0.9),
                     "features_ms_p50": 1e3 * np.median(feats),
                     "predict_ms_p50": 1e3 * np.median(pred)})
    return {"table": pd.DataFrame(rows).set_index("site"), "generate_s": gen_s,
            "peak_rss_mb": peak_rss_mb()}


def report(out: dict) -> None:
    print_table(out["table"], "Speed: fit on a year of 15-minute data (2 buckets x 3 levels, "
                "calibration + final fit, 1 thread); 96-point day-ahead forecast from a "
                "loaded model (30 days)", "{:.2f}")
    print(f"(synthetic data generated in {out['generate_s']:.1f} s; peak memory "
          f"{out['peak_rss_mb']:.0f} MB)")


def main() -> None:
    report(run())


if __name__ == "__main__":
    main()
