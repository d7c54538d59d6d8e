"""OpenSTEF 3.4.93 beside ours (``benchmarks.load_openstef_rolling``): what each side is given
and scored on, and OpenSTEF's glue run for real in its own venv on a small slice.

The glue test builds ``var/openstef-venv`` from ``benchmarks/openstef_reference/
requirements.lock`` when it is missing (uv: from its cache in a few seconds, else from the
package index) and skips, saying so, only when that cannot be done. With the venv it costs
about 15 s (OpenSTEF's import and one fit on a month).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks import load_openstef_rolling as rolling
from benchmarks import openstef_reference as ref
from benchmarks.adapters import openstef as ost
from pipelines.evaluation import day_ahead_schedule

TZ = ost.TIMEZONE


def local(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ).tz_convert("UTC")


def test_jobs_serve_each_issue_by_the_latest_training_and_hide_the_target_days_prices():
    # across the end of summer time (25 October 2020): issues at 12:00 local either side
    schedule = day_ahead_schedule(local("2020-10-24"), local("2020-10-29"), TZ, 12)
    train_ends = [schedule.issues[0], schedule.issues[3]]
    jobs = ref.jobs_for(schedule, train_ends, seeds=[0, 7], timezone=TZ)
    assert [(j["seed"], len(j["forecasts"])) for j in jobs] == [(0, 3), (0, 2), (7, 3), (7, 2)]
    assert [pd.Timestamp(j["train_end"]) for j in jobs[:2]] == train_ends
    for job in jobs:
        for spec in job["forecasts"]:
            issue = pd.Timestamp(spec["issue_time"])
            assert issue >= pd.Timestamp(job["train_end"])  # never trained past its issue
            # prices are unknown from the target day's local midnight (published 13:00 D-1)
            hidden = pd.Timestamp(spec["unknown_from"][ref.PRICE_COLUMN])
            assert hidden == pd.Timestamp(spec["start"])
            assert hidden.tz_convert(TZ).hour == 0 and hidden > issue
    assert pd.Timestamp(jobs[0]["forecasts"][2]["unknown_from"][ref.PRICE_COLUMN]) == local(
        "2020-10-26")  # the 25-hour day: midnight CET, not 24 h after midnight CEST


def test_common_rows_drop_what_either_side_lacks_and_what_was_not_measured():
    issue = local("2020-11-01 12:00")
    ts = pd.date_range(local("2020-11-02"), periods=8, freq="15min")
    frame = pd.DataFrame({"issue_time": issue, "timestamp": ts})
    runs = {("ours", 0): frame, ("ours", 1): frame.drop(index=[2]),
            ("openstef", 0): frame.drop(index=[5, 6])}
    actual = pd.Series(1.0, index=ts).drop(ts[7])
    rows, dropped = rolling.common_rows(runs, actual)
    assert list(rows.get_level_values("timestamp")) == list(ts[[0, 1, 3, 4]])
    assert dropped["union"] == 8 and dropped["dropped_unmeasured"] == 1
    assert dropped["dropped_either_side"] == 3  # ts[2], ts[5], ts[6]; ts[7] was not measured
    assert dropped["lacking_per_run"] == {("ours", 0): 0, ("ours", 1): 1, ("openstef", 0): 2}
    # a row that only the unmeasured timestamp lacks is not charged to a side
    runs[("openstef", 0)] = frame.drop(index=[7])
    rows, dropped = rolling.common_rows(runs, actual)
    assert dropped["lacking_per_run"][("openstef", 0)] == 0 and len(rows) == 6


@pytest.mark.shared_data
def test_rolling_plan_is_the_last_eight_whole_weeks_retrained_at_each_weeks_first_issue(
        shared_data):
    raw = ost.read_raw(shared_data)
    schedule, train_ends = rolling.plan(raw)
    first, end = rolling.window(raw)
    # the data end 2020-11-30 00:00 UTC (01:00 local, a Monday): 5 Oct .. 29 Nov local
    assert (first, end) == (pd.Timestamp("2020-10-05", tz=TZ), pd.Timestamp("2020-11-30", tz=TZ))
    assert first.weekday() == 0 and len(schedule.issues) == 56 and len(train_ends) == 8
    assert train_ends == schedule.issues[::7]
    assert all(t.tz_convert(TZ).strftime("%a %H:%M") == "Sun 12:00" for t in train_ends)
    weeks = rolling.week_of(pd.Series(schedule.starts), first)
    assert list(weeks) == [w for w in range(8) for _ in range(7)]
    # by the wall clock: the 25-hour Sunday 25 October keeps its 12:00 issue and 100 quarters
    assert all(t.tz_convert(TZ).hour == 12 for t in schedule.issues)
    assert [e - s for s, e in zip(schedule.starts, schedule.ends)
            if e - s != pd.Timedelta(hours=24)] == [pd.Timedelta(hours=25)]
    assert schedule.starts[1:] == schedule.ends[:-1]  # every quarter hour of the 8 weeks


@pytest.mark.shared_data
def test_openstef_glue_forecasts_a_day_it_did_not_see(shared_data, tmp_path):
    python = ref.openstef_python(offline=True) or ref.openstef_python()
    if python is None:
        pytest.skip(f"the OpenSTEF venv could not be built from {ref.LOCK} (no package index "
                    "and nothing in uv's cache): run `python -m benchmarks.openstef_reference`")
    raw = ost.read_raw(shared_data)
    issue, start, end = local("2020-10-06 12:00"), local("2020-10-07"), local("2020-10-08")
    data = raw[(raw.index >= local("2020-09-06")) & (raw.index < end)].copy()
    truth = data.loc[data.index >= start, "load"].copy()
    # what the forecast must not see is corrupted: the glue has to blank it itself
    data.loc[data.index >= issue, "load"] = 500.0 - 10.0 * data.loc[data.index >= issue, "load"]
    data.loc[data.index >= start, ref.PRICE_COLUMN] = 1e6
    schedule = day_ahead_schedule(start, end, TZ, 12)
    jobs = ref.jobs_for(schedule, [issue], seeds=[3], timezone=TZ)
    quantiles = (0.1, 0.5, 0.9)
    forecasts, fits = ref.collect(ref.start(data, jobs, quantiles, python, tmp_path), tmp_path)
    assert fits["error"].tolist() == [""]
    assert fits["n_rows"].tolist() == [int((data.index < issue).sum())]
    assert list(forecasts["timestamp"]) == list(truth.index)  # 96 quarter hours of the day
    q = forecasts[["q0.1", "q0.5", "q0.9"]].to_numpy()
    assert np.all(np.diff(q, axis=1) >= 0) and np.allclose(q[:, 1], forecasts["forecast"])
    mae = np.abs(q[:, 1] - truth.to_numpy()).mean()
    naive = np.abs(raw["load"].reindex(truth.index - pd.Timedelta(days=7)).to_numpy()
                   - truth.to_numpy()).mean()
    # leaked corrupted lags (hundreds of MW) would wreck it; a sound day-ahead is near naive
    assert mae < 1.5 * naive, (mae, naive)
