"""OpenSTEF 3.4.93's xgb pipeline, run INSIDE the OpenSTEF reference venv.

Called by ``benchmarks/openstef_reference.py`` (never imported by the project: it needs
``openstef`` and its pins, see ``requirements.lock`` here)::

    var/openstef-venv/bin/python benchmarks/openstef_reference/train_and_forecast.py WORKDIR

``WORKDIR/data.csv``: OpenSTEF's own input format (``timestamp`` UTC index at 15 minutes,
``load`` in MW first, then the predictors as in its 307 test data). ``WORKDIR/jobs.json``::

    {"quantiles": [0.05, ...], "jobs": [{"job": 0, "seed": 0, "train_end": ISO,
      "forecasts": [{"issue_time": ISO, "start": ISO, "end": ISO,
                     "unknown_from": {"day_ahead_electricity_price": ISO}}]}]}

Each job trains OpenSTEF's operational pipeline the way its documentation does for a
day-ahead demand forecast (``train_model_pipeline_core`` with a ``PredictionJobDataClass``:
model ``xgb``, 15-minute resolution, 48 h horizon, default model specifications and training
horizons 0.25 h and 47 h) on every row before ``train_end``; then, for every forecast,
``create_forecast_pipeline_core`` on the 15 days before ``issue_time`` plus the window, with
``load`` blanked from ``issue_time`` on (OpenSTEF forecasts the trailing run of missing
load: its operational convention) and each column of ``unknown_from`` blanked from its time
on (a value published after the issue). The rows in ``[start, end)`` are kept.

OpenSTEF 3.x draws its validation days with ``np.random.default_rng()`` unseeded, so two runs
differ (the published 2.39-2.64 MW spread); here that generator is seeded with the job's
``seed`` so a run can be repeated. Nothing else is changed.

Writes ``WORKDIR/forecasts.csv`` (``job, seed, issue_time, timestamp, forecast, algtype`` and
one ``qX`` column per quantile, MW) and ``WORKDIR/fits.csv`` (``job, seed, train_end,
seconds, n_rows, error``).
"""

import json
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

from openstef.data_classes.model_specifications import ModelSpecificationDataClass
from openstef.data_classes.prediction_job import PredictionJobDataClass
from openstef.pipeline.create_forecast import create_forecast_pipeline_core
from openstef.pipeline.train_model import train_model_pipeline_core

HISTORY_DAYS = 15  # the longest lag feature is T-14d
_default_rng = np.random.default_rng


def seed_openstef(seed: int) -> None:
    """Make OpenSTEF's unseeded ``np.random.default_rng()`` calls draw from ``seed``."""
    parent = _default_rng(seed)

    def seeded(arg=None, *args, **kwargs):
        if arg is None:
            arg = int(parent.integers(2**63))
        return _default_rng(arg, *args, **kwargs)

    np.random.default_rng = seeded


def prediction_job(quantiles: list[float]) -> PredictionJobDataClass:
    # pid 307 as in OpenSTEF's own test prediction jobs (Neerijnen), default model specs
    return PredictionJobDataClass(
        id=307, model="xgb", forecast_type="demand", name="Neerijnen",
        horizon_minutes=2880, resolution_minutes=15, lat=51.8336647, lon=5.2137814,
        quantiles=list(quantiles))


def forecast_one(pj, model, specs, data: pd.DataFrame, spec: dict) -> pd.DataFrame:
    issue, start, end = (pd.Timestamp(spec[k]) for k in ("issue_time", "start", "end"))
    frame = data[(data.index >= issue - pd.Timedelta(days=HISTORY_DAYS))
                 & (data.index < end)].copy()
    frame.loc[frame.index >= issue, "load"] = np.nan
    for column, when in (spec.get("unknown_from") or {}).items():
        frame.loc[frame.index >= pd.Timestamp(when), column] = np.nan
    out = create_forecast_pipeline_core(pj, frame, model, specs)
    return out[(out.index >= start) & (out.index < end)]


def run_job(job: dict, data: pd.DataFrame, quantiles: list[float]):
    seed_openstef(int(job["seed"]))
    pj = prediction_job(quantiles)
    train = data[data.index < pd.Timestamp(job["train_end"])]
    t0 = time.perf_counter()
    model, _report, specs, _sets = train_model_pipeline_core(
        pj, ModelSpecificationDataClass(id=pj.id), train)
    seconds = time.perf_counter() - t0
    model.path = f"in-memory/train_end={job['train_end']}"  # set by OpenSTEF's MLflow load
    rows = []
    for spec in job["forecasts"]:
        out = forecast_one(pj, model, specs, data, spec)
        frame = pd.DataFrame({"job": job["job"], "seed": job["seed"],
                              "issue_time": spec["issue_time"], "timestamp": out.index,
                              "forecast": out["forecast"].to_numpy(float),
                              "algtype": out.get("algtype", pd.Series("", index=out.index))
                              .astype(str).to_numpy()})
        for q in quantiles:
            frame[f"q{q:g}"] = out[f"quantile_P{q * 100:02.0f}"].to_numpy(float)
        rows.append(frame)
    return rows, {"job": job["job"], "seed": job["seed"], "train_end": job["train_end"],
                  "seconds": seconds, "n_rows": len(train), "error": ""}


def main(workdir: str) -> None:
    root = Path(workdir)
    spec = json.loads((root / "jobs.json").read_text())
    quantiles = [float(q) for q in spec["quantiles"]]
    data = pd.read_csv(root / "data.csv", index_col=0)
    data.index = pd.to_datetime(data.index, utc=True)
    forecasts, fits = [], []
    for job in spec["jobs"]:
        try:
            rows, fit = run_job(job, data, quantiles)
            forecasts += rows
        except Exception as err:  # noqa: BLE001 (a failed fit is reported, others run)
            fit = {"job": job["job"], "seed": job["seed"], "train_end": job["train_end"],
                   "seconds": float("nan"), "n_rows": 0,
                   "error": f"{type(err).__name__}: {err}"}
            traceback.print_exc()
        fits.append(fit)
        print(f"openstef job {job['job']} seed {job['seed']} train_end {job['train_end']}: "
              f"{fit['seconds']:.1f} s {fit['error']}", flush=True)
    cols = ["job", "seed", "issue_time", "timestamp", "forecast", "algtype",
            *(f"q{q:g}" for q in quantiles)]
    (pd.concat(forecasts, ignore_index=True) if forecasts else pd.DataFrame(columns=cols)
     ).to_csv(root / "forecasts.csv", index=False)
    pd.DataFrame(fits).to_csv(root / "fits.csv", index=False)


if __name__ == "__main__":
    main(sys.argv[1])
