"""CalTRACK hourly baselines with OpenDSM, run INSIDE the OpenDSM reference venv.

Called by ``benchmarks/opendsm_reference.py`` (never imported by the project: it needs
``opendsm`` and its old pins, see ``requirements.lock`` here)::

    var/opendsm-venv/bin/python benchmarks/opendsm/caltrack_hourly.py WORKDIR

``WORKDIR/jobs.json`` lists fits: ``{"job", "customer_id", "timezone", "train_start",
"train_end", "predict_start", "predict_end"}`` (ISO timestamps, UTC). Per customer,
``load_<customer_id>.csv`` (``timestamp`` UTC, ``load_kw`` hourly mean) and
``temp_<customer_id>.csv`` (``timestamp`` UTC, ``temp_f`` hourly, °F as CalTRACK's
temperature bins expect). Each job fits ``HourlyModel`` on ``[train_start, train_end)`` in
the customer's local time (CalTRACK's hour-of-week) and predicts every hour of
``[predict_start, predict_end)``; ``predict`` mutates the model, so it predicts on a copy.
Writes ``WORKDIR/predictions.csv`` (``job, customer_id, timestamp, predicted_kw``) and
``WORKDIR/fits.csv`` (``job, seconds, n_train_hours, warnings, error``).
"""

import copy
import json
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
from opendsm.eemeter.models.hourly_caltrack.data import HourlyBaselineData, HourlyReportingData
from opendsm.eemeter.models.hourly_caltrack.wrapper import HourlyModel


def read(path: Path, column: str, tz: str) -> pd.Series:
    raw = pd.read_csv(path)
    idx = pd.to_datetime(raw["timestamp"], utc=True)
    return pd.Series(raw[column].to_numpy(dtype=float), index=idx).tz_convert(tz)


def main(workdir: str) -> None:
    root = Path(workdir)
    jobs = json.loads((root / "jobs.json").read_text())
    preds, fits, cache = [], [], {}
    for job in jobs:
        cid, tz = job["customer_id"], job["timezone"]
        if cid not in cache:
            cache[cid] = (read(root / f"load_{cid}.csv", "load_kw", tz),
                          read(root / f"temp_{cid}.csv", "temp_f", tz))
        load, temp = cache[cid]
        lo, hi = (pd.Timestamp(job[k]).tz_convert(tz) for k in ("train_start", "train_end"))
        p_lo, p_hi = (pd.Timestamp(job[k]).tz_convert(tz)
                      for k in ("predict_start", "predict_end"))
        t0 = time.perf_counter()
        row = {"job": job["job"], "n_train_hours": 0, "warnings": "", "error": ""}
        try:
            bm = load[(load.index >= lo) & (load.index < hi)].rename("observed")
            bt = temp[(temp.index >= lo) & (temp.index < hi)].rename("temperature")
            row["n_train_hours"] = int(bm.notna().sum())
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                baseline = HourlyBaselineData.from_series(bm, bt, is_electricity_data=True)
                row["warnings"] = ";".join(sorted({w.qualified_name for w in baseline.warnings}))
                model = HourlyModel().fit(baseline)
                hours = pd.date_range(p_lo, p_hi, freq="h", inclusive="left")
                rt = temp.reindex(hours).interpolate(limit=3).rename("temperature")
                reporting = HourlyReportingData.from_series(None, rt, is_electricity_data=True)
                pred = copy.deepcopy(model).predict(reporting)["predicted"]
            for ts, value in pred.items():
                preds.append({"job": job["job"], "customer_id": cid,
                              "timestamp": ts.tz_convert("UTC").isoformat(),
                              "predicted_kw": float(value)})
        except Exception as err:  # noqa: BLE001 - reported per job; the caller counts them
            row["error"] = f"{type(err).__name__}: {err}"[:300]
        row["seconds"] = time.perf_counter() - t0
        fits.append(row)
        print(f"caltrack job {job['job']} {cid}: {row['seconds']:.1f} s {row['error']}",
              flush=True)
    pd.DataFrame(preds, columns=["job", "customer_id", "timestamp", "predicted_kw"]).to_csv(
        root / "predictions.csv", index=False)
    pd.DataFrame(fits).to_csv(root / "fits.csv", index=False)


if __name__ == "__main__":
    main(sys.argv[1])
