"""OpenDSM's CalTRACK hourly model beside our baselines, on the same placebo windows.

Run from the repository root::

    .venv/bin/python -m benchmarks.opendsm_reference             # every data set
    .venv/bin/python -m benchmarks.opendsm_reference --only citylearn --quick

OpenDSM (LF Energy, the successor of OpenEEmeter) pins old dependencies, so it runs in its
own venv, ``var/opendsm-venv``, created on first use with the pinned set in
``benchmarks/opendsm/requirements.lock`` (uv, from the package index). The service never
imports it; ``benchmarks/opendsm/caltrack_hourly.py`` runs inside that venv and exchanges
CSV files with this module.

How the comparison is fair:

- the placebo events are ``pipelines.baseline_eval.draw_placebo_events``'s, the very windows
  the rule and ML baselines are scored on in ``evaluate_core`` (same config, same seed);
- CalTRACK is refitted per block of ``refit_days`` exactly like the ML baseline, on the 365
  days before the block's first local midnight (CalTRACK's 12-month baseline period), so it
  never sees the event day: its inputs are the hourly load and the hourly temperature (°F);
- CalTRACK predicts hourly energy; on 15-minute data each interval gets its hour's mean kW,
  which is how an hourly model would settle a 15-minute event (the ML and rule baselines
  predict 15-minute intervals natively);
- scores (``pipelines.baseline_eval.summarise``) are computed over the events where every
  method produced a baseline.

Scores are printed per data set and written as CSV to ``var/benchmarks/baselines/``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from models.baselines.common import check_load
from models.baselines.ml import temperature_series
from pipelines.baseline_eval import (
    EvalDataset,
    EvalResult,
    PlaceboConfig,
    evaluate_core,
    interval_rows,
    summarise,
)

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "var" / "opendsm-venv"  # git-ignored (var/)
LOCK = ROOT / "benchmarks" / "opendsm" / "requirements.lock"
SCRIPT = ROOT / "benchmarks" / "opendsm" / "caltrack_hourly.py"
SAVINGS_SCRIPT = ROOT / "benchmarks" / "opendsm" / "caltrack_savings.py"
METHOD = "caltrack_hourly_opendsm"
BASELINE_DAYS = 365


def opendsm_python(venv: Path = VENV) -> Path | None:
    """The reference venv's python; created from ``requirements.lock`` with uv when absent.

    Returns None (and says why) when it cannot be created, e.g. without the package index.
    """
    python = venv / "bin" / "python"
    stamp = venv / ".lock-installed"
    if python.exists() and stamp.is_file() and stamp.read_text() == LOCK.read_text():
        return python
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    try:
        if not python.exists():
            subprocess.run([uv, "venv", "-q", str(venv), "--python", "3.11"], check=True)
        subprocess.run([uv, "pip", "sync", "-q", "--python", str(python), str(LOCK)],
                       check=True)
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"OpenDSM reference skipped: could not create {venv} from {LOCK} ({err}); "
              "it needs the package index (offline?)")
        return None
    stamp.write_text(LOCK.read_text())
    return python


def hourly_inputs(data: EvalDataset, customer_id: str) -> tuple[pd.Series, pd.Series] | None:
    """(hourly mean kW over complete hours, hourly temperature °F), UTC; None without weather."""
    if customer_id not in data.weather:
        return None
    load, res = check_load(data.loads[customer_id], f"load of {customer_id}")
    per_hour = int(pd.Timedelta(hours=1) / res) or 1
    grouped = load.resample("h")
    hourly = grouped.mean()[grouped.count() >= per_hour].dropna()
    temp_c = temperature_series(data.weather[customer_id], f"weather of {customer_id}")
    temp_f = (temp_c.resample("h").mean() * 9.0 / 5.0 + 32.0).dropna()
    return hourly, temp_f


def jobs_for(events: pd.DataFrame, data: EvalDataset, refit_days: int) -> list[dict]:
    """One CalTRACK fit per (refit block, customer), blocks as ``evaluate_core``'s ML."""
    first = events["start"].min()
    block = pd.Timedelta(days=refit_days)
    jobs = []
    block_no = ((events["start"] - first) // block).astype(int)
    for (b, cid), sel in events.groupby([block_no, "customer_id"], sort=True):
        lo = first + b * block
        train_end = lo.tz_convert(data.timezone).normalize().tz_convert("UTC")
        jobs.append({"job": len(jobs), "customer_id": cid, "timezone": data.timezone,
                     "train_start": (train_end - pd.Timedelta(days=BASELINE_DAYS)).isoformat(),
                     "train_end": train_end.isoformat(),
                     # whole UTC days: OpenDSM cannot infer the frequency of 2 hours
                     "predict_start": sel["start"].min().floor("D").isoformat(),
                     "predict_end": (sel["end"].max().floor("D")
                                     + pd.Timedelta(days=1)).isoformat(),
                     "event_nos": [int(i) for i in sel.index]})
    return jobs


def run_caltrack(data: EvalDataset, events: pd.DataFrame, config: PlaceboConfig,
                 python: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """CalTRACK's interval rows on ``events`` (as ``EvalResult.intervals``) and fit log."""
    customers = [c for c in events["customer_id"].unique() if c in data.weather]
    events = events[events["customer_id"].isin(customers)]
    jobs = jobs_for(events, data, config.refit_days)
    with tempfile.TemporaryDirectory(prefix="caltrack-") as tmp:
        work = Path(tmp)
        for cid in customers:
            hourly, temp_f = hourly_inputs(data, cid)
            hourly.rename_axis("timestamp").rename("load_kw").to_csv(work / f"load_{cid}.csv")
            temp_f.rename_axis("timestamp").rename("temp_f").to_csv(work / f"temp_{cid}.csv")
        (work / "jobs.json").write_text(json.dumps(jobs))
        run = subprocess.run([str(python), str(SCRIPT), str(work)], check=False,
                             capture_output=True, text=True)
        if run.returncode:
            raise RuntimeError(f"the OpenDSM script failed:\n{run.stderr[-3000:]}")
        preds = pd.read_csv(work / "predictions.csv")
        fits = pd.read_csv(work / "fits.csv").fillna("")
    preds["timestamp"] = pd.to_datetime(preds["timestamp"], utc=True)
    return rows_from_predictions(jobs, preds, events, data), fits


def rows_from_predictions(jobs: list[dict], preds: pd.DataFrame, events: pd.DataFrame,
                          data: EvalDataset) -> pd.DataFrame | None:
    """Interval rows of CalTRACK's hourly predictions on the events' metered intervals.

    Each interval gets the prediction of the UTC hour it falls in (hourly mean kW); an event
    with any hour missing is left out (scored without CalTRACK).
    """
    parts = []
    for job in jobs:
        p = preds[preds["job"] == job["job"]].set_index("timestamp")["predicted_kw"]
        if p.empty:
            continue
        actual = check_load(data.loads[job["customer_id"]])[0]
        for no in job["event_nos"]:
            ev = events.loc[no]
            window = actual[(actual.index >= ev["start"]) & (actual.index < ev["end"])].index
            base = p.reindex(window.floor("h")).to_numpy(dtype=float)
            if np.isnan(base).any():
                continue
            frame = pd.DataFrame({"baseline_kw": base}, index=window)
            parts.append(interval_rows(job["customer_id"], no, METHOD, frame, actual))
    return pd.concat([pd.DataFrame(p) for p in parts], ignore_index=True) if parts else None


def compare(result: EvalResult, data: EvalDataset, config: PlaceboConfig,
            python: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores of every method and CalTRACK on the events all of them covered; fit log."""
    caltrack, fits = run_caltrack(data, result.events, config, python)
    if caltrack is None:
        raise RuntimeError(f"{data.name}: CalTRACK produced no baseline; fit log:\n"
                           f"{fits.to_string()}")
    intervals = pd.concat([result.intervals, caltrack], ignore_index=True)
    methods = intervals["method"].unique()
    covered = intervals.groupby("event_no")["method"].nunique()
    common = covered.index[covered == len(methods)]
    summary = summarise(intervals[intervals["event_no"].isin(common)],
                        config.injected_reduction_ratio)
    return summary, fits


def verdict(summary: pd.DataFrame, rules: tuple[str, ...]) -> str:
    ml, ct = summary.loc["ml", "cvrmse"], summary.loc[METHOD, "cvrmse"]
    best = summary.loc[[m for m in summary.index if m in rules], "cvrmse"]
    better = "better" if ml <= ct else "WORSE"
    return (f"CV(RMSE): ML {ml:.4f}, CalTRACK hourly {ct:.4f} (ML {better} by "
            f"{abs(1 - ml / ct):.1%}); best rule {best.idxmin()} {best.min():.4f} "
            f"({'better' if best.min() <= ct else 'worse'} than CalTRACK by "
            f"{abs(1 - best.min() / ct):.1%})")


def datasets(only: list[str] | None) -> list[EvalDataset]:
    from benchmarks.baselines import sample_portfolio
    from inference.baseline_data import dataset_from_portfolio
    from pipelines.datasets import citylearn, eemeter

    names = only or ["citylearn", "eemeter", "portfolio"]
    out = []
    if "citylearn" in names:
        out.append(citylearn.load_dataset())
    if "eemeter" in names:
        out += eemeter.placebo_datasets()
    if "portfolio" in names:
        out.append(dataset_from_portfolio(sample_portfolio(), name="sample_portfolio"))
    return out


def savings_reference(python: Path) -> pd.DataFrame | None:
    """Saving on the eemeter Illinois meters: CalTRACK hourly vs our ML baseline."""
    from pipelines.baseline_eval import savings_recovery
    from pipelines.datasets import eemeter

    cases = eemeter.savings_cases()
    run = subprocess.run([str(python), str(SAVINGS_SCRIPT), str(eemeter.data_dir()),
                          ",".join(c["name"] for c in cases)],
                         check=False, capture_output=True, text=True)
    line = [x for x in run.stdout.splitlines() if x.startswith("OPENDSM_JSON ")]
    if run.returncode or not line:
        print("OpenDSM savings reference failed:", run.stderr[-2000:])
        return None
    ref = json.loads(line[0].removeprefix("OPENDSM_JSON "))
    rows = []
    for case in cases:
        ours = savings_recovery(case["load"], case["weather"], case["timezone"],
                                case["holiday_country"], case["baseline_end"],
                                case["reporting_start"])["saving_ratio"]
        rows.append({"meter": case["name"], "known_saving": case["known_saving"],
                     "caltrack_hourly_opendsm": ref[case["name"]]["saving"],
                     "ml_baseline": ours})
    return pd.DataFrame(rows).set_index("meter")


def main(argv: list[str] | None = None, results: list[tuple] | None = None) -> None:
    """Compare on every data set (``results``: (data, config, EvalResult) already run)."""
    from benchmarks.baselines import show
    from pipelines.baseline_eval import RULE_METHODS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=["citylearn", "eemeter", "portfolio"],
                        action="append", help="data set(s); default all")
    parser.add_argument("--quick", action="store_true", help="5 events per customer")
    args = parser.parse_args(argv)
    python = opendsm_python()
    if python is None:
        return
    if results is None:
        config = PlaceboConfig(n_events_per_customer=5 if args.quick else 20)
        results = [(data, config, None) for data in datasets(args.only)]
    rows = []
    for data, config, result in results:
        if not data.weather:
            print(f"{data.name}: no temperature, CalTRACK hourly cannot run; skipped")
            continue
        t0 = time.perf_counter()
        if result is None:
            result = evaluate_core(data, config, methods=(*RULE_METHODS, "ml"))
        t1 = time.perf_counter()
        summary, fits = compare(result, data, config, python)
        failed = fits[fits["error"] != ""]
        if not failed.empty:
            print("CalTRACK fits that failed:", failed["error"].value_counts().to_dict())
        warned = fits["warnings"].str.split(";").explode()
        warned = warned[warned != ""].value_counts()
        if not warned.empty:
            print("OpenDSM data-sufficiency warnings (fits):", warned.to_dict())
        show(f"{data.name}: placebo events, OpenDSM CalTRACK hourly beside ours "
             f"({summary['n_events'].max()} common events; ours {t1 - t0:.0f} s, CalTRACK "
             f"{fits['seconds'].sum():.0f} s for {len(fits)} fits, {len(failed)} failed)",
             summary, f"opendsm_placebo_{data.name}")
        print(verdict(summary, RULE_METHODS))
        rows.append({"dataset": data.name,
                     "ml_cvrmse": summary.loc["ml", "cvrmse"],
                     "caltrack_cvrmse": summary.loc[METHOD, "cvrmse"],
                     "ml_over_caltrack": summary.loc["ml", "cvrmse"]
                     / summary.loc[METHOD, "cvrmse"],
                     "ml_nmbe": summary.loc["ml", "nmbe"],
                     "caltrack_nmbe": summary.loc[METHOD, "nmbe"]})
    if rows:
        show("ML baseline vs OpenDSM CalTRACK hourly on the same placebo windows (CV(RMSE) "
             "ratio < 1: ML better)", pd.DataFrame(rows).set_index("dataset"),
             "opendsm_placebo_summary")
    if args.only is None or "eemeter" in args.only:
        savings = savings_reference(python)
        if savings is not None:
            show("eemeter Illinois: saving over the reporting period, OpenDSM CalTRACK hourly "
                 "vs our ML baseline", savings, "opendsm_savings")


if __name__ == "__main__":
    main()
