"""Response likelihood against the generator's truth: the truth file is written and never
read by training, ECE on a constructed example, the truth law against draws, the
reliability diagram logged, and per-resource answers with their fallback reasons."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.synthetic.truth import TRUTH_FILE, AchievementLaw, read_response_truth
from models.response_metrics import expected_calibration_error, truth_metrics
from models.response_resources import resource_level


def test_ece_of_a_constructed_example():
    # bin [0, 0.1): p 0.05, 0.05, outcomes 0, 1 -> |0.5 - 0.05| = 0.45, weight 2/5
    # bin [0.9, 1]: p 0.95, 0.95, 1.0, outcomes 1, 1, 0 -> |2/3 - 2.9/3| = 0.3, weight 3/5
    p = [0.05, 0.05, 0.95, 0.95, 1.0]
    y = [0, 1, 1, 1, 0]
    assert expected_calibration_error(y, p) == pytest.approx(0.4 * 0.45 + 0.6 * 0.3)
    # against a true probability: bin 0 true 0.1, 0.2 (mean 0.15); bin 9 true 0.9 each
    scores = truth_metrics(p, [0.1, 0.2, 0.9, 0.9, 0.9])
    assert scores["ece_vs_truth"] == pytest.approx(0.4 * 0.10 + 0.6 * abs(0.9 - 2.9 / 3))
    assert scores["mae_vs_truth"] == pytest.approx((0.05 + 0.15 + 0.05 + 0.05 + 0.1) / 5)
    assert expected_calibration_error([1, 1], [0.3, 0.7], n_bins=1) == pytest.approx(0.5)


@pytest.mark.parametrize("law", [
    AchievementLaw(median=0.85, sigma=0.12, no_show_p=0.05, target_kw=120.0, max_kw=500.0),
    AchievementLaw(median=1.1, sigma=0.15, no_show_p=0.0, target_kw=-40.0, max_kw=35.0),
    AchievementLaw(median=1.0, sigma=0.12, no_show_p=0.1, target_kw=10.0, max_kw=7.0),
])
def test_true_probability_matches_draws(law):
    rng = np.random.default_rng(5)
    settled = np.array([law.settle_kw(law.draw(rng)) for _ in range(20000)])
    observed = np.mean(settled / law.target_kw >= 0.8)
    assert law.p_deliver(0.8) == pytest.approx(observed, abs=0.012)


def test_resource_level_says_why_the_customer_answers():
    counts = pd.Series({"r1": 5, "r2": 1, "r3": 9})
    out = resource_level(["r1", "r2", "r3"], ["a", "a", "b"], {"a"}, True, counts)
    assert list(out["level"]) == ["resource", "customer", "customer"]
    assert out["fallback_reason"][0] is None
    assert "r2 has 1 settled event(s) ended by the notice; at least 3" in out["fallback_reason"][1]
    assert "customer b is not settled per resource" in out["fallback_reason"][2]
    none = resource_level(["r1"], ["a"], {"a"}, False, counts)
    assert none["level"][0] == "customer" and "no resource-level model" in none[
        "fallback_reason"][0]


@pytest.fixture(scope="module")
def portfolio_dir(tmp_path_factory):
    """A SYNTHETIC portfolio of 6 customers and 6 months (about 55 events)."""
    from forecasting.synthetic import generate_portfolio

    return generate_portfolio(tmp_path_factory.mktemp("truth") / "portfolio", seed=7,
                              start="2024-06-01", end="2024-12-01", n_customers=6, n_pv=0,
                              n_wind=0)


def test_truth_file_is_written_and_consistent(portfolio_dir):
    truth = read_response_truth(portfolio_dir)
    events = pd.read_csv(portfolio_dir / "events.csv", dtype={"event_id": str})
    split = pd.read_csv(portfolio_dir / "resource_events.csv", dtype={"event_id": str})
    customer = truth[truth["level"] == "customer"]
    assert len(customer) == len(events) and customer["p_deliver_true"].between(0, 1).all()
    assert (truth["level"] == "resource").sum() == len(split) > 0
    # the resources' settled kW sum to their customer's row
    summed = split.groupby(["event_id", "customer_id"])["actual_kw"].sum()
    row = events.set_index(["event_id", "customer_id"])["actual_kw"].reindex(summed.index)
    np.testing.assert_allclose(summed.round(1), row, atol=1e-6)
    delivered = (events["actual_kw"] / events["target_kw"]).to_numpy() >= 0.8
    p_true = customer["p_deliver_true"].to_numpy()
    assert abs(delivered.mean() - p_true.mean()) < 0.06  # the truth is the outcomes' law
    assert "NOT part of the portfolio contract" in (portfolio_dir / "SYNTHETIC.txt").read_text()


@pytest.mark.integration
def test_training_never_reads_the_truth_and_logs_the_diagram(portfolio_dir, tmp_path,
                                                              mlflow_uri):
    import mlflow

    from forecasting.portfolio import read_portfolio
    from pipelines.response import (
        ResponseTrainingConfig,
        log_and_register,
        response_data,
        train_response_core,
    )
    from pipelines.tracking import tracking_session

    truth = read_response_truth(portfolio_dir)
    copy = shutil.copytree(portfolio_dir, tmp_path / "copy")
    config = ResponseTrainingConfig(n_estimators=60)  # small: the test is about the data flow
    with_file = train_response_core(response_data(read_portfolio(copy)), config=config)
    shutil.rmtree(copy / TRUTH_FILE.parent)
    data = response_data(read_portfolio(copy))
    scored = train_response_core(data, config=config, truth=truth)  # truth only scores
    rows = with_file.test_features
    for result in (scored,):
        pd.testing.assert_frame_equal(result.model.predict(rows), with_file.model.predict(rows))
        pd.testing.assert_frame_equal(result.scoring_model.predict(rows),
                                      with_file.scoring_model.predict(rows))
    assert "p_true" not in with_file.predictions and "truth" not in with_file.metrics
    model = scored.metrics["model"]
    assert {"ece_vs_truth", "mae_vs_truth", "brier_skill"} <= set(model)
    assert scored.metrics["truth"]["mae_vs_truth"] == 0.0
    assert scored.metrics["historical_rate"]["brier_skill"] == 0.0

    with tracking_session(mlflow_uri) as client:
        decision = log_and_register(client, data, scored, config)
    client = mlflow.MlflowClient(mlflow_uri)
    run = client.get_run(decision["run_id"])
    assert run.data.tags["scored_against_truth"] == "True"
    assert run.data.metrics["holdout_ece_vs_truth"] == pytest.approx(model["ece_vs_truth"])
    plots = {a.path for a in client.list_artifacts(decision["run_id"], "plots")}
    assert "plots/reliability_diagram.png" in plots
    png = client.download_artifacts(decision["run_id"], "plots/reliability_diagram.png",
                                    str(tmp_path))
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the registered model carries the resource level: the better of model and rate
    from pipelines.response import load_champion, predict_resources, predict_rows

    champion = load_champion(mlflow_uri)
    assert champion.resource_method == scored.resources.method
    assert (champion.resource_model is None) == (scored.resources.method
                                                 == "resource_historical_rate")
    split = data.resource_events
    rows = data.events[data.events["event_id"].astype(str).isin(split["event_id"].tail(1))]
    customer = predict_rows(data, rows, scored.rule, champion)
    answer = predict_resources(data, rows, customer, scored.rule, champion)
    mine = answer[answer["customer_id"].isin(split["customer_id"])]
    assert (mine["level"] == "resource").all() and mine["fallback_reason"].isna().all()
    assert mine["source"].str.startswith("response-likelihood/1").all()


def test_per_resource_answers_and_fallbacks(portfolio_dir):
    from forecasting.portfolio import read_portfolio
    from pipelines.response import response_data
    from serving.response_api import ResponseRequest, handle_response

    portfolio = read_portfolio(portfolio_dir)
    data = response_data(portfolio)
    split = data.resource_events
    sub_metered = sorted(split["customer_id"].unique())
    other = sorted(set(data.events["customer_id"]) - set(sub_metered))
    request = ResponseRequest(customers=[sub_metered[0], other[0]], target_kw=[100.0],
                              start="2025-01-20T14:00:00+08:00",
                              end="2025-01-20T16:00:00+08:00",
                              notice_time="2025-01-19T17:00:00+08:00")
    answer = handle_response(data, request, registry=None)  # no champion: historical rates
    assert answer.source == "historical_rate"
    by_customer = {c.customer_id: c for c in answer.customers}
    own = [r for r in answer.resources if r.customer_id == sub_metered[0]]
    theirs = [r for r in answer.resources if r.customer_id == other[0]]
    n_resources = (portfolio.resources["customer_id"] == sub_metered[0]).sum()
    assert len(own) == n_resources and sum(r.target_kw for r in own) == pytest.approx(100, 0.01)
    assert all(r.level == "resource" and r.fallback_reason is None for r in own)
    assert all(r.source == "historical_rate (resource)" for r in own)
    assert theirs and all(r.level == "customer" for r in theirs)
    assert all(f"customer {other[0]} is not settled per resource" in r.fallback_reason
               for r in theirs)
    assert all(r.p_deliver == by_customer[other[0]].p_deliver for r in theirs)
    # before the sub-metered customer's third settled event: too little resource history
    first = data.events[data.events["customer_id"] == sub_metered[0]].sort_values("end")
    early = request.model_copy(update={"notice_time": first["end"].iloc[1],
                                       "start": first["end"].iloc[1] + pd.Timedelta(hours=5),
                                       "end": first["end"].iloc[1] + pd.Timedelta(hours=7)})
    early_answer = handle_response(data, early, registry=None)
    reasons = {r.fallback_reason for r in early_answer.resources
               if r.customer_id == sub_metered[0]}
    assert all(r and "settled event(s) ended by the notice; at least 3" in r for r in reasons)
