"""``auto`` in the placebo evaluation: chosen from earlier windows only, scored on its own."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.baseline_auto import AUTO, COMBINED, add_auto, choose, window_table
from pipelines.baseline_eval import PlaceboConfig, evaluate_core

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_baseline_eval import flat_dataset

T0 = pd.Timestamp("2025-03-03 06:00", tz="UTC")


def synthetic_rows(n_events: int = 8, bad_before: int = 4):
    """One customer, one 2-interval window a day, methods a and b (SYNTHETIC).

    ``a`` errs by 10 kW everywhere; ``b`` by 30 kW on the first ``bad_before`` windows and
    by 0 afterwards, so that a look-ahead would pick ``b`` early.
    """
    events, parts = [], []
    for i in range(n_events):
        start = T0 + pd.Timedelta(days=i)
        events.append({"customer_id": "c", "start": start, "end": start + pd.Timedelta(hours=1),
                       "notice_time": start - pd.Timedelta(hours=2)})
        ts = pd.date_range(start, periods=2, freq="30min")
        for m, err in (("a", 10.0), ("b", 30.0 if i < bad_before else 0.0)):
            parts.append(pd.DataFrame({"customer_id": "c", "event_no": i, "method": m,
                                       "timestamp": ts, "actual_kw": 100.0,
                                       "baseline_kw": 100.0 + err, "baseline_p10_kw": np.nan,
                                       "baseline_p90_kw": np.nan}))
    return pd.concat(parts, ignore_index=True), pd.DataFrame(events)


def test_auto_never_uses_a_window_after_the_notice():
    rows, events = synthetic_rows()
    choices = choose(window_table(rows, events), events, ("a", "b"), min_own_windows=1)
    # only windows that ended by each notice were compared
    ends = choices["last_window_end"].dropna()
    assert (ends <= events.loc[ends.index, "notice_time"]).all()
    assert choices.loc[0, "source"] == "default" and choices.loc[0, "n_windows"] == 0
    assert list(choices["n_windows"]) == list(range(8))
    # b is perfect from window 4 on, but auto keeps a until b's record before the notice
    # beats a's: b's CV(RMSE) over windows 0..k-1 is 0.3*sqrt(4/k) (below 0.1 from k = 37)
    assert set(choices.loc[1:, "method"]) == {"a"}

    # what happens in windows after the notice of event 5 cannot change its choice
    later = rows.copy()
    after = later["event_no"] >= 5
    later.loc[after & (later["method"] == "a"), "baseline_kw"] += 500.0
    again = choose(window_table(later, events), events, ("a", "b"), min_own_windows=1)
    pd.testing.assert_frame_equal(choices.loc[:5], again.loc[:5])
    # ... while it does change the later choices (the test can fail)
    assert (again.loc[6:, "method"] == "b").all()


def test_auto_rows_are_the_chosen_baseline_and_the_weights_mix_the_prior_best():
    rows, events = synthetic_rows(n_events=4, bad_before=0)  # b is perfect throughout
    out, choices = add_auto(rows, events, ("a", "b"), min_own_windows=1)
    assert list(choices["method"]) == ["a", "b", "b", "b"]  # default first, then learnt
    auto = out[out["method"] == AUTO].set_index(["event_no", "timestamp"])["baseline_kw"]
    assert (auto.loc[0] == 110.0).all() and (auto.loc[1:] == 100.0).all()
    mixed = out[out["method"] == COMBINED].set_index(["event_no", "timestamp"])["baseline_kw"]
    # weights 1/CV^2: b's CV is 0 -> weight ~1
    assert mixed.loc[3].to_numpy() == pytest.approx(100.0, abs=1e-6)


def test_evaluate_core_scores_auto_out_of_sample():
    methods = ("similar_days", "x_of_y", "pre_event")
    result = evaluate_core(flat_dataset(), PlaceboConfig(n_events_per_customer=6, eval_days=25),
                           methods=(*methods, AUTO, COMBINED))
    s = result.summary
    assert {AUTO, COMBINED} <= set(s.index)
    assert s.loc[AUTO, "n_events"] == s.loc["similar_days", "n_events"]
    ch = result.choices.join(result.events["notice_time"])
    seen = ch.dropna(subset=["last_window_end"])
    assert (seen["last_window_end"] <= seen["notice_time"]).all()
    # auto's rows are the chosen method's rows on every window
    iv = result.intervals
    for e, m in ch["method"].items():
        got = iv[(iv["event_no"] == e) & (iv["method"] == AUTO)]["baseline_kw"].to_numpy()
        want = iv[(iv["event_no"] == e) & (iv["method"] == m)]["baseline_kw"].to_numpy()
        np.testing.assert_array_equal(got, want)
    # the flat pre-event average is far worse on this load: once learnt, never chosen
    assert (ch.loc[ch["n_windows"] >= 3, "method"] != "pre_event").all()
    with pytest.raises(ValueError, match="at least two"):
        evaluate_core(flat_dataset(), methods=("similar_days", AUTO))
