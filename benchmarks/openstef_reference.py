"""OpenSTEF 3.4.93 (LF Energy, Alliander) beside our load forecaster, in its own venv.

OpenSTEF 3.x pins its own stack (xgboost, an old ``holidays``, pvlib, optuna, mlflow-skinny),
so it runs in ``var/openstef-venv``, created on first use with the pinned set in
``benchmarks/openstef_reference/requirements.lock`` (uv, from the package index or uv's
cache). The service never imports it: ``benchmarks/openstef_reference/train_and_forecast.py``
runs inside that venv and exchanges CSV files with this module.

What OpenSTEF is given (``jobs_for``): its own input format (the 307 files as published,
``load`` in MW first), trained on every row before each ``train_end``; for each forecast
the load is blanked from the issue time on and the day-ahead price of the target day is
blanked (published 13:00 the day before, after a 12:00 issue), which is what our side sees
through the portfolio's issue times (``benchmarks.adapters.openstef``). The weather columns
are visible as for us (NWP issued 00:00 UTC the day before each UTC day).

``python -m benchmarks.load_openstef_rolling`` runs it; ``openstef_python()`` alone builds the
venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipelines.evaluation import Schedule

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "var" / "openstef-venv"  # git-ignored (var/)
LOCK = ROOT / "benchmarks" / "openstef_reference" / "requirements.lock"
SCRIPT = ROOT / "benchmarks" / "openstef_reference" / "train_and_forecast.py"
VERSION = "3.4.93"
PRICE_COLUMN = "day_ahead_electricity_price"


def openstef_python(venv: Path = VENV, offline: bool = False) -> Path | None:
    """The reference venv's python; created from ``requirements.lock`` with uv when absent.

    ``offline``: only from uv's cache (no index). Returns None (and says why) when it cannot
    be created, e.g. without the package index and nothing cached.
    """
    python = venv / "bin" / "python"
    stamp = venv / ".lock-installed"
    if python.exists() and stamp.is_file() and stamp.read_text() == LOCK.read_text():
        return python
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    extra = ["--offline"] if offline else []
    try:
        if not python.exists():
            subprocess.run([uv, "venv", "-q", str(venv), "--python", version, *extra],
                           check=True)
        subprocess.run([uv, "pip", "sync", "-q", *extra, "--python", str(python), str(LOCK)],
                       check=True)
    except (OSError, subprocess.CalledProcessError) as err:
        print(f"OpenSTEF reference skipped: could not create {venv} from {LOCK} ({err}); "
              "it needs the package index or uv's cache")
        return None
    stamp.write_text(LOCK.read_text())
    return python


def jobs_for(schedule: Schedule, train_ends: Sequence[pd.Timestamp], seeds: Sequence[int],
             timezone: str) -> list[dict]:
    """One job per (training, seed): train on rows before its ``train_end`` and forecast the
    issues it serves (the latest ``train_end`` at or before the issue; issues before the first
    use the first, as ``benchmarks.product_path.run_product``)."""
    ends = sorted(pd.Timestamp(t).tz_convert("UTC") for t in train_ends)
    served: dict[int, list[dict]] = {k: [] for k in range(len(ends))}
    for issue, start, end in zip(schedule.issues, schedule.starts, schedule.ends):
        k = max(0, sum(1 for t in ends if t <= issue) - 1)
        served[k].append({"issue_time": issue.isoformat(), "start": start.isoformat(),
                          "end": end.isoformat(),
                          "unknown_from": {PRICE_COLUMN: price_unknown_from(issue, timezone)}})
    jobs = []
    for seed in seeds:
        for k, end in enumerate(ends):
            if served[k]:
                jobs.append({"job": len(jobs), "seed": int(seed), "train_end": end.isoformat(),
                             "forecasts": served[k]})
    return jobs


def price_unknown_from(issue: pd.Timestamp, timezone: str) -> str:
    """Day-ahead prices of local days after the issue's are published after a 12:00 issue."""
    local = issue.tz_convert(timezone)
    next_day = (local.normalize() + pd.DateOffset(days=1)).tz_localize(None).tz_localize(
        timezone)
    return next_day.tz_convert("UTC").isoformat()


def start(raw: pd.DataFrame, jobs: list[dict], quantiles: Sequence[float], python: Path,
          workdir: Path) -> subprocess.Popen:
    """Write the inputs to ``workdir`` and start the script (returns at once: our side can
    run meanwhile); ``collect`` waits and reads the answer."""
    raw.rename_axis("timestamp").to_csv(workdir / "data.csv")
    (workdir / "jobs.json").write_text(json.dumps({"quantiles": list(quantiles),
                                                    "jobs": jobs}))
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    log = open(workdir / "log.txt", "w")  # noqa: SIM115 (closed in collect)
    return subprocess.Popen(["nice", "-n", "10", str(python), str(SCRIPT), str(workdir)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def collect(proc: subprocess.Popen, workdir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(forecasts: ``job, seed, issue_time, timestamp`` UTC, ``qX`` in MW; fit log)."""
    code = proc.wait()
    log = (workdir / "log.txt").read_text()
    if code or not (workdir / "forecasts.csv").exists():
        raise RuntimeError(f"the OpenSTEF script failed ({code}):\n{log[-3000:]}")
    forecasts = pd.read_csv(workdir / "forecasts.csv")
    for col in ("issue_time", "timestamp"):
        forecasts[col] = pd.to_datetime(forecasts[col], utc=True)
    return forecasts, pd.read_csv(workdir / "fits.csv").fillna({"error": ""})


def run(raw: pd.DataFrame, jobs: list[dict], quantiles: Sequence[float], python: Path
        ) -> tuple[pd.DataFrame, pd.DataFrame]:
    with tempfile.TemporaryDirectory(prefix="openstef-") as tmp:
        return collect(start(raw, jobs, quantiles, python, Path(tmp)), Path(tmp))


if __name__ == "__main__":
    print(openstef_python() or "venv not built")
