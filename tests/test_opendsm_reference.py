"""The OpenDSM comparison's plumbing: refit blocks, hourly inputs, predictions to intervals.

OpenDSM itself runs in its own venv (``python -m benchmarks.opendsm_reference``), not in the
test suite: these tests cover what this project hands to it and makes of its answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.opendsm_reference import (
    BASELINE_DAYS,
    METHOD,
    hourly_inputs,
    jobs_for,
    rows_from_predictions,
)
from inference.baseline_data import EvalDataset

TZ = "Asia/Shanghai"


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ).tz_convert("UTC")


def dataset() -> EvalDataset:
    idx = pd.date_range("2025-01-01", "2025-03-01", freq="15min", tz=TZ,
                        inclusive="left").tz_convert("UTC")
    load = pd.Series(np.arange(len(idx), dtype=float), index=idx)
    weather = pd.DataFrame({"timestamp": idx, "temp_air_c": 20.0})
    return EvalDataset("t", {"a": load, "b": load * 2}, TZ, "CN", {"a": weather, "b": weather})


def events() -> pd.DataFrame:
    rows = [("a", "2025-02-03 14:15", "2025-02-03 15:15"),
            ("b", "2025-02-04 16:00", "2025-02-04 18:00"),
            ("a", "2025-02-20 13:00", "2025-02-20 15:00")]
    return pd.DataFrame([{"customer_id": c, "start": at(s), "end": at(e),
                          "notice_time": at(s) - pd.Timedelta(hours=2)} for c, s, e in rows])


def test_jobs_refit_per_block_and_customer_on_the_year_before_the_block():
    jobs = jobs_for(events(), dataset(), refit_days=10)
    assert [(j["customer_id"], j["event_nos"]) for j in jobs] == [("a", [0]), ("b", [1]),
                                                                  ("a", [2])]
    first = jobs[0]
    train_end = pd.Timestamp(first["train_end"])
    assert train_end == pd.Timestamp("2025-02-03", tz=TZ)  # local midnight of the block start
    assert train_end - pd.Timestamp(first["train_start"]) == pd.Timedelta(days=BASELINE_DAYS)
    # the block of events 0 and 1 shares one training end; event 2 is in a later block
    assert jobs[1]["train_end"] == first["train_end"]
    assert pd.Timestamp(jobs[2]["train_end"]) == pd.Timestamp("2025-02-13", tz=TZ)
    # predictions cover whole UTC days around the events
    assert pd.Timestamp(first["predict_start"]) <= events()["start"][0]
    assert pd.Timestamp(first["predict_end"]) >= events()["end"][0]
    assert pd.Timestamp(first["predict_start"]).hour == 0


def test_hourly_inputs_average_complete_hours_and_convert_to_fahrenheit():
    data = dataset()
    load = data.loads["a"].drop(data.loads["a"].index[5])  # one reading missing in hour 1
    data.loads["a"] = load
    hourly, temp_f = hourly_inputs(data, "a")
    assert hourly.iloc[0] == pytest.approx(np.mean([0, 1, 2, 3]))
    assert data.loads["a"].index[4].floor("h") not in hourly.index  # incomplete hour dropped
    assert temp_f.iloc[0] == pytest.approx(68.0)
    assert hourly_inputs(EvalDataset("t", data.loads, TZ, "CN"), "a") is None  # no weather


def test_predictions_map_to_the_hour_of_each_interval_and_gaps_drop_the_event():
    data, evs = dataset(), events()
    jobs = jobs_for(evs, data, refit_days=10)
    hours = pd.date_range(at("2025-02-03 00:00"), at("2025-02-05 00:00"), freq="h")
    preds = pd.DataFrame({"job": 0, "customer_id": "a", "timestamp": hours,
                          "predicted_kw": np.arange(len(hours), dtype=float)})
    # job 1 (customer b) misses the hour 17:00-18:00 of its event
    b_hours = hours[(hours != at("2025-02-04 17:00"))]
    preds = pd.concat([preds, pd.DataFrame({"job": 1, "customer_id": "b",
                                            "timestamp": b_hours, "predicted_kw": 1.0})])
    rows = rows_from_predictions(jobs, preds, evs, data)
    assert set(rows["event_no"]) == {0}
    assert set(rows["method"]) == {METHOD}
    # 14:15-15:15 local: three intervals in the 14:00 hour, one in the 15:00 hour
    by_hour = preds[preds["job"] == 0].set_index("timestamp")["predicted_kw"]
    expected = [by_hour[at("2025-02-03 14:00")]] * 3 + [by_hour[at("2025-02-03 15:00")]]
    assert list(rows["baseline_kw"]) == expected
    assert list(rows["actual_kw"]) == list(data.loads["a"].reindex(rows["timestamp"]))
