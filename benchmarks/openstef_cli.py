"""OpenSTEF substation 307 through the ``vpp`` command line, as a user would run it.

The same protocol as ``python -m benchmarks.load_openstef``, with nothing but commands:

1. ``python -m benchmarks.adapters.openstef --out DIR`` writes the portfolio;
2. ``vpp train --data DIR --kind load --site openstef_307 --train-end 2020-11-23T00:00:00+01:00``
   into a fresh MLflow sqlite store (``MLFLOW_TRACKING_URI``);
3. one ``vpp forecast`` per day, issued 12:00 Europe/Amsterdam the day before, each on the
   data known then, writing a CSV in the forecast output format;
4. the CSVs are read back and scored against the readings in MW.

It must print the same figures as the in-process benchmark (same functions, same defaults).

``python -m benchmarks.openstef_cli [--seed N] [--keep DIR]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks import print_table
from benchmarks.adapters import openstef as ost
from benchmarks.load_openstef import QUANTILES, REFERENCE, TRAIN_END, schedule, score_mw
from forecasting.portfolio import read_portfolio

VPP = Path(sys.executable).with_name("vpp")


def _call(cmd: list[str], env: dict) -> str:
    """Run a command; its stderr without MLflow's own log lines (what vpp said)."""
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr[-2000:]}")
    return " ".join(line.strip() for line in done.stderr.splitlines()
                    if line.strip() and "mlflow" not in line.lower()[:60])


def read_forecast_csv(path: Path) -> pd.DataFrame:
    """A forecast CSV (output format, local offsets) back to UTC timestamps."""
    frame = pd.read_csv(path)
    for col in ("issue_time", "timestamp"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def run(workdir: Path, seed: int | None = None, verbose: bool = True) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "openstef_portfolio"
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
           "MLFLOW_ARTIFACTS_DIR": str(workdir / "artifacts"), "OMP_NUM_THREADS": "1"}
    t0 = time.perf_counter()
    _call([sys.executable, "-m", "benchmarks.adapters.openstef", "--out", str(data)], env)
    train = [str(VPP), "train", "--data", str(data), "--kind", "load", "--site", ost.SITE_ID,
             "--train-end", TRAIN_END]
    if seed is not None:
        train += ["--seed", str(seed)]
    line = _call(train, env)
    if verbose:
        print(f"$ vpp train ... --train-end {TRAIN_END}\n  {line}", flush=True)
    t_train = time.perf_counter() - t0
    parts = []
    sched = schedule()
    for issue, start, end in zip(sched.issues, sched.starts, sched.ends, strict=True):
        local = {k: v.tz_convert(ost.TIMEZONE).isoformat()
                 for k, v in (("issue", issue), ("start", start), ("end", end))}
        out = workdir / f"forecast_{start.tz_convert(ost.TIMEZONE):%Y%m%d}.csv"
        _call([str(VPP), "forecast", "--data", str(data), "--kind", "load", "--site",
               ost.SITE_ID, "--issue-time", local["issue"], "--start", local["start"],
               "--end", local["end"], "--quantiles", ",".join(f"{q:g}" for q in QUANTILES),
               "--out", str(out)], env)
        if verbose:
            print(f"$ vpp forecast --issue-time {local['issue']} --start {local['start']} "
                  f"... -> {out.name}", flush=True)
        parts.append(read_forecast_csv(out))
    forecasts = pd.concat(parts, ignore_index=True)
    scores = score_mw(forecasts, read_portfolio(data))
    return {"forecasts": forecasts, "scores_mw": scores, "train_seconds": t_train,
            "seconds": time.perf_counter() - t0}


def report(out: dict) -> None:
    s = out["scores_mw"]
    table = pd.concat([pd.DataFrame([{k: s[k] for k in REFERENCE.columns}],
                                    index=["ours (vpp CLI)"]), REFERENCE])
    print_table(table, "OpenSTEF 307 through vpp train + vpp forecast (MW)", "{:.3f}")
    print(f"n = {s['n']:.0f}; data + train {out['train_seconds']:.0f} s, total "
          f"{out['seconds']:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="vpp train --seed (default 0)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the portfolio, store and CSVs in this directory")
    args = parser.parse_args()
    if args.keep is not None:
        report(run(args.keep, args.seed))
        return
    with tempfile.TemporaryDirectory(prefix="vpp-openstef-cli-") as tmp:
        report(run(Path(tmp), args.seed))


if __name__ == "__main__":
    main()
