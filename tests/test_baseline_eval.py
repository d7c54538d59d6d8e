"""Placebo evaluation: event drawing, scores, a small run on CityLearn, the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecasting.calendar import is_working_day
from forecasting.errors import InsufficientDataError
from pipelines.baseline_eval import (
    ORACLE,
    EvalDataset,
    PlaceboConfig,
    draw_placebo_events,
    evaluate_core,
    ml_target_check,
    oracle_window_mean,
    summarise,
)

ROOT = Path(__file__).resolve().parents[1]
TZ = "Asia/Shanghai"


def flat_dataset(days: int = 70) -> EvalDataset:
    idx = pd.date_range("2025-03-01", periods=days * 96, freq="15min", tz=TZ).tz_convert("UTC")
    rng = np.random.default_rng(0)
    local = idx.tz_convert(TZ)
    workday = pd.Series(local.date).map(lambda d: is_working_day(d, "CN")).to_numpy()
    working = workday & (local.hour >= 8) & (local.hour < 20)
    loads = {c: pd.Series(k * (500 + 300 * working) + rng.normal(0, 5, len(idx)), index=idx)
             for k, c in enumerate(("a", "b"), start=1)}
    return EvalDataset("flat", loads, TZ, "CN",
                       event_days={"a": frozenset({pd.Timestamp("2025-05-06").date()})})


def test_placebo_events_fall_on_working_non_event_days_in_the_afternoon():
    data = flat_dataset()
    config = PlaceboConfig(n_events_per_customer=15, eval_days=30, seed=3)
    events = draw_placebo_events(data, config)
    assert set(events["customer_id"]) == {"a", "b"}
    assert (events.groupby("customer_id").size() == 15).all()
    local = events["start"].dt.tz_convert(TZ)
    assert ((local.dt.hour >= 13) & (local.dt.hour <= 19)).all()
    assert local.dt.date.map(lambda d: is_working_day(d, "CN")).all()
    hours = (events["end"] - events["start"]) / pd.Timedelta(hours=1)
    assert hours.between(2, 4).all()
    lead = (events["start"] - events["notice_time"]) / pd.Timedelta(minutes=1)
    assert lead.between(60, 240).all()
    a_days = set(local[events["customer_id"] == "a"].dt.date)
    assert pd.Timestamp("2025-05-06").date() not in a_days
    last_day = data.loads["a"].index[-1].tz_convert(TZ).date()
    assert all((last_day - d).days <= 30 for d in local.dt.date)


def test_summary_scores_by_hand():
    # one customer, two events of two intervals; baseline over-estimates by 10 kW throughout
    rows = pd.DataFrame({
        "customer_id": "a", "event_no": [0, 0, 1, 1], "method": "m",
        "timestamp": pd.date_range("2025-01-01", periods=4, freq="15min", tz="UTC"),
        "actual_kw": [100.0, 100.0, 200.0, 200.0], "baseline_kw": [110.0, 110.0, 210.0, 210.0],
        "baseline_p10_kw": np.nan, "baseline_p90_kw": np.nan})
    s = summarise(rows, injected_reduction_ratio=0.1).loc["m"]
    assert s["cvrmse"] == pytest.approx(10 / 150)
    assert s["nmbe"] == pytest.approx(40 / 600)
    # injected reductions 20 and 40 kW-intervals; errors +20 and +20 -> 40 / 60
    assert s["reduction_wape"] == pytest.approx(40 / 60)
    assert s["reduction_bias"] == pytest.approx(40 / 60)


def test_oracle_window_mean_by_hand():
    # two methods over the same event: the oracle appears once, as the window's mean load
    ts = pd.date_range("2025-01-01", periods=2, freq="15min", tz="UTC")
    rows = pd.concat([pd.DataFrame({
        "customer_id": "a", "event_no": 0, "method": m, "timestamp": ts,
        "actual_kw": [90.0, 110.0], "baseline_kw": [0.0, 0.0], "baseline_p10_kw": np.nan,
        "baseline_p90_kw": np.nan}) for m in ("m1", "m2")], ignore_index=True)
    oracle = oracle_window_mean(rows)
    assert list(oracle["baseline_kw"]) == [100.0, 100.0]
    assert set(oracle["method"]) == {ORACLE}
    assert summarise(oracle).loc[ORACLE, "cvrmse"] == pytest.approx(10 / 100)


def test_evaluate_core_rules_on_flat_load_are_nearly_exact():
    result = evaluate_core(flat_dataset(), PlaceboConfig(n_events_per_customer=5, eval_days=20),
                           methods=("similar_days", "x_of_y", "pre_event"))
    assert set(result.summary.index) == {"similar_days", "x_of_y", "pre_event"}
    cv = result.summary["cvrmse"]
    assert cv["similar_days"] < 0.02 and cv["x_of_y"] < 0.02
    # a flat pre-event average misses the 20:00 drop of windows that run past it
    assert cv["pre_event"] > 5 * cv["similar_days"]
    assert result.summary.loc["similar_days", "n_events"] == 10
    with pytest.raises(ValueError, match="unknown methods"):
        evaluate_core(flat_dataset(), methods=("magic",))


def test_no_placebo_window_is_a_clear_error():
    data = flat_dataset(days=3)
    data.loads = {c: s.iloc[:40] for c, s in data.loads.items()}  # ends before 13:00
    with pytest.raises(InsufficientDataError, match="no placebo window"):
        evaluate_core(data, PlaceboConfig(eval_days=1), methods=("similar_days",))


def _citylearn(shared_data):
    sys.path.insert(0, str(ROOT))
    from pipelines.datasets import citylearn

    return citylearn.load_dataset(root=shared_data, buildings=[1, 2, 3], first_days=150)


@pytest.mark.shared_data
def test_placebo_evaluation_on_a_citylearn_slice(shared_data):
    data = _citylearn(shared_data)
    config = PlaceboConfig(n_events_per_customer=6, eval_days=40, refit_days=60,
                           ml_params={"n_estimators": 80, "min_child_samples": 40})
    result = evaluate_core(data, config, methods=("similar_days", "x_of_y", "pre_event", "ml"))
    s = result.summary
    assert set(s.index) == {"similar_days", "x_of_y", "pre_event", "ml"}
    assert (s["n_events"] == 18).all()
    # household hourly load is noisy, but a baseline is far better than nothing
    assert (s["cvrmse"] < 1.2).all() and (s["cvrmse"] > 0.2).all()
    assert 0.5 < s.loc["ml", "coverage_p10_p90"] <= 1.0
    check = ml_target_check(s)
    assert check["best_rule"] in ("similar_days", "x_of_y", "pre_event")
    # placebo windows only where nobody responded: no real events in CityLearn
    assert result.failures.empty


@pytest.mark.shared_data
def test_cli_baseline_eval_on_citylearn(shared_data, tmp_path, monkeypatch):
    from pipelines.cli_baselines import app

    monkeypatch.setenv("VPP_SHARED_DATA", str(shared_data))
    out = tmp_path / "summary.csv"
    result = CliRunner().invoke(app, ["baseline-eval", "--dataset", "citylearn_2022",
                                      "--customers", "2", "--events", "3", "--eval-days", "30",
                                      "--methods", "similar_days,x_of_y", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out)
    assert set(summary["method"]) == {"similar_days", "x_of_y"}
    bad = CliRunner().invoke(app, ["baseline-eval"])
    assert bad.exit_code == 2 and "exactly one of --data" in bad.output
