"""Training time per site and forecast latency on a year of 15-minute data, on the product path.

Data: the project's SYNTHETIC sample generator (``forecasting.synthetic``; speed does not
depend on the values), one load, one PV and one wind site, one year of 15-minute readings
with hourly NWP issued daily. For each site:

- ``train_site`` with the default ``TrainingConfig`` (what ``vpp train`` runs) into a
  temporary MLflow store: the scoring fit before the 14 held-out days, the held-out
  forecasts, the final fit on the whole year (2 horizon buckets x 3 levels, conformal
  calibration fit + fit, one LightGBM thread each), the run, plots and registration;
- ``forecast_site`` (what ``vpp forecast``, the batch and ``POST /forecast`` run) with the
  registered champion, loaded once from the registry, for the 96 quarter-hours of a day
  issued 12:00 the day before, for 30 different days: median and 90th percentile latency
  of the whole call, and of its model part alone (``SiteForecaster.forecast``);
- the reference in the same process: the climatology fallback the service answers with
  when inputs are poor (``models.fallback.ClimatologyFallback``) on the same days; the
  ratio says what the model costs over the simplest forecast the service makes.

Peak memory is the process's maximum resident set.

``python -m benchmarks.speed``
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from benchmarks import peak_rss_mb, print_table
from benchmarks.product_path import model_store, portfolio_dir
from forecasting.portfolio import read_portfolio
from forecasting.synthetic import generate_portfolio_frames
from inference.forecast import forecast_site
from inference.registry import ModelRegistry
from models.fallback import ClimatologyFallback
from pipelines.config import TrainingConfig
from pipelines.training import train_site

LEVELS = (0.1, 0.5, 0.9)


def _ms(values: list[float], q: float = 0.5) -> float:
    return 1e3 * float(np.quantile(values, q))


def run(days_forecast: int = 30) -> dict:
    t0 = time.perf_counter()
    frames = generate_portfolio_frames(seed=11, start="2024-01-01", end="2025-02-15",
                                       n_customers=1, n_pv=1, n_wind=1)
    gen_s = time.perf_counter() - t0
    rows = []
    with portfolio_dir(frames) as directory, model_store() as uri:
        portfolio = read_portfolio(directory)
        registry = ModelRegistry(uri)
        for site in portfolio.sites.values():
            data = portfolio.site_data(site.site_id)
            train_end = data.values_kw.index.min() + pd.Timedelta(days=365)
            t0 = time.perf_counter()
            out = train_site(portfolio, site.site_id, TrainingConfig(), train_end=train_end,
                             uri=uri)
            train_s = time.perf_counter() - t0
            model = registry.champion(site.kind, site.site_id)
            tz = site.timezone
            days = [(train_end + pd.Timedelta(days=k)).tz_convert(tz).normalize()
                    for k in range(2, 2 + days_forecast)]
            call, core, ref = [], [], []
            for day in [days[0], *days]:  # the first is a warm-up
                issue = day - pd.Timedelta(hours=12)
                end = day + pd.Timedelta(days=1)
                targets = pd.date_range(day, end, freq="15min", inclusive="left")
                a = time.perf_counter()
                forecast_site(portfolio, site.kind, site.site_id, issue, day, end, LEVELS,
                              registry=registry)
                b = time.perf_counter()
                model.forecaster.forecast(data, issue, targets, LEVELS)
                c = time.perf_counter()
                ClimatologyFallback().forecast(data, issue, targets.tz_convert("UTC"), LEVELS)
                d = time.perf_counter()
                call.append(b - a)
                core.append(c - b)
                ref.append(d - c)
            call, core, ref = call[1:], core[1:], ref[1:]
            rows.append({"site": site.site_id, "kind": site.kind,
                         "train_rows": len(data.before(train_end).values_kw),
                         "features": len(model.forecaster.feature_names_),
                         "train_site_s": train_s,
                         "scoring_fit_s": out["scoring_fit_seconds"],
                         "final_fit_s": out["fit_seconds"],
                         "forecast_site_ms_p50": _ms(call), "forecast_site_ms_p90": _ms(call, .9),
                         "model_ms_p50": _ms(core), "fallback_ms_p50": _ms(ref),
                         "model_vs_fallback": float(np.median(core) / np.median(ref))})
    return {"table": pd.DataFrame(rows).set_index("site"), "generate_s": gen_s,
            "peak_rss_mb": peak_rss_mb()}


def report(out: dict) -> None:
    print_table(out["table"], "Speed on the product path: train_site on a year of 15-minute "
                "data (scoring fit + final fit + MLflow run + registry, 1 thread); "
                "forecast_site of a 96-point day-ahead with the registered champion "
                "(30 days), beside the climatology fallback in the same process", "{:.2f}")
    print(f"(synthetic data generated in {out['generate_s']:.1f} s; peak memory "
          f"{out['peak_rss_mb']:.0f} MB)")


def main() -> None:
    report(run())


if __name__ == "__main__":
    main()
