"""Response likelihood: leak-free features, history and eligibility by hand, calibration on
a set with a known probability, the Beta-shrunk reference, errors, and MLflow end to end."""

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import InsufficientDataError, ModelNotFoundError
from forecasting.settlement import SettlementRule
from models.response import (
    NoLabelsError,
    ResponseLikelihood,
    SingleClassError,
    historical_rate,
)
from models.response_features import FEATURE_COLUMNS, event_features
from pipelines.response import (
    ResponseTrainingConfig,
    expected_calibration_error,
    probability_metrics,
)

TZ = "Asia/Shanghai"


def _t(text: str) -> pd.Timestamp:
    return pd.Timestamp(text + "+08:00")


def _event(event_id, customer_id, notice, start, end, target_kw, actual_kw,
           event_type="day_ahead") -> dict:
    return {"event_id": event_id, "customer_id": customer_id, "event_type": event_type,
            "notice_time": _t(notice), "start": _t(start), "end": _t(end),
            "target_kw": target_kw, "actual_kw": actual_kw}


@pytest.fixture
def events() -> pd.DataFrame:
    """Customer c1: four events (e3's notice falls inside e2); c2: one event."""
    return pd.DataFrame([
        _event("e1", "c1", "2025-07-01 08:00", "2025-07-01 14:00", "2025-07-01 16:00", 100, 90),
        _event("e2", "c1", "2025-07-05 08:00", "2025-07-05 14:00", "2025-07-05 16:00", 100, 50),
        _event("e3", "c1", "2025-07-05 15:00", "2025-07-05 17:00", "2025-07-05 18:00", 200, 200,
               "real_time"),
        _event("e2", "c2", "2025-07-05 08:00", "2025-07-05 14:00", "2025-07-05 16:00", 50, 10),
        _event("e4", "c1", "2025-07-10 08:00", "2025-07-10 14:00", "2025-07-10 16:00", 100, 120),
    ])


@pytest.fixture
def resources() -> pd.DataFrame:
    return pd.DataFrame([
        # resource_id, customer, level, kW, response, min notice, max duration (minutes)
        ("r1", "c1", "I", 100.0, 1, 0, 240),
        ("r2", "c1", "II", 200.0, 15, 30, 120),
        ("r3", "c1", "III", 300.0, 60, 240, 480),
        ("r4", "c1", "III", 50.0, 60, 120, 480),  # level III: 240 min notice regardless
        ("r5", "c2", "I", 40.0, 1, 0, 240),
    ], columns=["resource_id", "customer_id", "level", "capacity_kw", "response_minutes",
                "min_notice_minutes", "max_duration_minutes"])


@pytest.fixture
def loads() -> dict[str, pd.Series]:
    """1000 kW from 14:00 to 16:00 local, 500 kW otherwise, every 15 minutes."""
    index = pd.date_range("2025-06-20", "2025-07-12", freq="15min", tz=TZ, inclusive="left")
    hours = index.hour
    values = np.where((hours >= 14) & (hours < 16), 1000.0, 500.0)
    return {c: pd.Series(values, index=index.tz_convert("UTC")) for c in ("c1", "c2")}


def _features(events, loads=None, resources=None):
    return event_features(events, loads, resources, timezone=TZ, holiday_country="CN")


def test_history_features_by_hand(events):
    f = _features(events)
    e3 = f.loc[("e3", "c1")]  # e2 has not ended at e3's notice (15:00 < 16:00): only e1
    assert e3["hist_event_count"] == 1
    assert e3["hist_mean_achievement"] == pytest.approx(0.9)
    assert e3["hist_delivered_rate"] == pytest.approx(1.0)
    assert e3["hist_last_achievement"] == pytest.approx(0.9)
    assert e3["hist_days_since_last_event_d"] == pytest.approx(3 + 23 / 24)
    assert e3["hist_events_30d_count"] == 1
    e4 = f.loc[("e4", "c1")]  # e1 (0.9), e2 (0.5), e3 (1.0) ended before 07-10 08:00
    assert e4["hist_event_count"] == 3
    assert e4["hist_mean_achievement"] == pytest.approx(0.8)
    assert e4["hist_delivered_rate"] == pytest.approx(2 / 3)
    assert e4["hist_last_achievement"] == pytest.approx(1.0)  # e3 ended last (18:00)
    assert e4["hist_days_since_last_event_d"] == pytest.approx(4 + 14 / 24)
    first = f.loc[("e1", "c1")]
    assert first["hist_event_count"] == 0 and np.isnan(first["hist_mean_achievement"])
    assert f.loc[("e2", "c2"), "hist_event_count"] == 0  # c1's record is not c2's
    assert list(f.columns[2:]) == list(FEATURE_COLUMNS)
    assert f.loc[("e3", "c1"), "notice_lead_minutes"] == 120
    assert f.loc[("e3", "c1"), "duration_minutes"] == 60
    assert f.loc[("e3", "c1"), "start_local_hour_h"] == 17


def test_eligible_capacity_by_hand(events, resources):
    f = _features(events, resources=resources)
    # e1: lead 360 min, 120 min long: every resource of c1 (r3, r4: level III, 360 >= 240)
    e1 = f.loc[("e1", "c1")]
    assert e1["eligible_capacity_kw"] == 650
    assert e1["target_to_eligible_capacity_ratio"] == pytest.approx(100 / 650)
    # e3: lead 120 min, 60 min long: r1 and r2; r3 needs 240 min notice, r4 is level III
    e3 = f.loc[("e3", "c1")]
    assert e3["eligible_capacity_kw"] == 300
    assert e3["eligible_capacity_share"] == pytest.approx(300 / 650)
    assert e3["target_to_eligible_capacity_ratio"] == pytest.approx(200 / 300)
    assert e3["eligible_capacity_to_target_ratio"] == pytest.approx(1.5)
    # a 150-minute event on 180 minutes' notice: r1 only (r2 lasts 120 min at most)
    longer = events.iloc[[2]].assign(start=_t("2025-07-05 18:00"), end=_t("2025-07-05 20:30"))
    row = _features(longer, resources=resources).iloc[0]
    assert row["eligible_capacity_kw"] == 100
    assert row["target_to_eligible_capacity_ratio"] == pytest.approx(2.0)


def test_typical_load_ratio_uses_the_clock_window_before_notice(events, loads):
    f = _features(events, loads=loads)
    # e1 is 14:00-16:00: the window's load was 1000 kW on the 7 days before the notice
    assert f.loc[("e1", "c1"), "target_to_typical_load_ratio"] == pytest.approx(100 / 1000)
    # e3 is 17:00-18:00: 500 kW then
    assert f.loc[("e3", "c1"), "target_to_typical_load_ratio"] == pytest.approx(200 / 500)


def test_features_are_leak_free(events, loads, resources):
    before = _features(events, loads, resources)
    changed = events.copy()
    own = (changed["event_id"] == "e3") & (changed["customer_id"] == "c1")
    changed.loc[own, "actual_kw"] = 0.0  # its own outcome
    later = changed["end"] > _t("2025-07-05 15:00")  # everything that ends after e3's notice
    changed.loc[later & ~own, "actual_kw"] *= 3
    changed.loc[later & ~own, "target_kw"] += 7
    moved = {c: s.where(s.index < _t("2025-07-05 15:00"), 9e6) for c, s in loads.items()}
    after = _features(changed, moved, resources)
    pd.testing.assert_series_equal(before.loc[("e3", "c1")], after.loc[("e3", "c1")])
    pd.testing.assert_series_equal(before.loc[("e1", "c1")], after.loc[("e1", "c1")])
    # the change is visible to a later event
    assert before.loc[("e4", "c1"), "hist_mean_achievement"] != after.loc[
        ("e4", "c1"), "hist_mean_achievement"]


def test_historical_rate_shrinkage_by_hand():
    rows = [("a", "c1", 100, 90), ("b", "c1", 100, 100), ("c", "c1", 100, 50),
            ("a", "c2", 100, 20), ("d", "c2", 100, np.nan)]
    frame = pd.DataFrame(rows, columns=["event_id", "customer_id", "target_kw", "actual_kw"])
    out = historical_rate(frame, SettlementRule(), prior_strength=5.0, customers=["c3"])
    # portfolio: 2 of 4 settled delivered (p0 = 0.5); mean achievement 2.6 / 4 = 0.65
    assert out.attrs["portfolio_rate"] == pytest.approx(0.5)
    assert out.loc["c1", "p_deliver"] == pytest.approx((2 + 5 * 0.5) / (3 + 5))
    assert out.loc["c2", "p_deliver"] == pytest.approx((0 + 5 * 0.5) / (1 + 5))
    assert out.loc["c3", "p_deliver"] == pytest.approx(0.5)  # unknown: the portfolio rate
    assert out.loc["c1", "delivered_rate"] == pytest.approx(2 / 3)
    assert out.loc["c1", "expected_achievement"] == pytest.approx((2.4 + 5 * 0.65) / 8)
    assert historical_rate(frame, prior_strength=0).loc["c1", "p_deliver"] == pytest.approx(
        2 / 3)


def _known_probability_set(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """x ~ U(-3, 3); P(delivered) = 1 / (1 + exp(-(1.5 x - 0.3))); rows in time order."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, n)
    p = 1 / (1 + np.exp(-(1.5 * x - 0.3)))
    delivered = rng.uniform(size=n) < p
    y = np.where(delivered, rng.uniform(0.8, 1.2, n), rng.uniform(0.0, 0.79, n))
    start = pd.date_range("2024-01-01", periods=n, freq="6h", tz="UTC")
    return pd.DataFrame({"start": start, "x": x}), y, p


def test_calibrated_probability_matches_a_known_one():
    X, y, _ = _known_probability_set(2000, seed=11)
    model = ResponseLikelihood(random_state=0).fit(X, y)
    assert model.calibration_ == "isotonic" and model.n_calibration_rows_ == 500
    X_new, y_new, p_true = _known_probability_set(5000, seed=12)
    pred = model.predict(X_new)
    delivered = y_new >= 0.8
    assert expected_calibration_error(delivered, pred["p_deliver"]) < 0.05
    scores = probability_metrics(delivered, pred["p_deliver"], y_new,
                                 pred["expected_achievement"])
    base = probability_metrics(delivered, np.full(len(y_new), (y >= 0.8).mean()), y_new,
                               np.full(len(y_new), y.mean()))
    assert scores["brier"] < base["brier"] - 0.05
    assert np.mean(np.abs(pred["p_deliver"] - p_true)) < 0.06
    assert pred["expected_achievement"].between(0, 1.2).all()
    small = ResponseLikelihood().fit(X.iloc[:400], y[:400])
    assert small.calibration_ == "sigmoid"  # 100 calibration rows: Platt


def test_errors_name_the_problem_and_the_fix():
    X, y, _ = _known_probability_set(200, seed=3)
    with pytest.raises(NoLabelsError, match="none of the 200 event rows has a settled"):
        ResponseLikelihood().fit(X, np.full(200, np.nan))
    with pytest.raises(InsufficientDataError, match="only 30 labelled .* at least 40"):
        ResponseLikelihood().fit(X.iloc[:30], y[:30])
    with pytest.raises(SingleClassError, match="single class.*historical_rate"):
        ResponseLikelihood().fit(X, np.full(200, 0.95))
    with pytest.raises(NoLabelsError, match="settled actual_kw"):
        historical_rate(pd.DataFrame({"event_id": ["a"], "customer_id": ["c1"],
                                      "target_kw": [100.0], "actual_kw": [np.nan]}))
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        ResponseLikelihood().predict(X)


@pytest.fixture(scope="module")
def sample_portfolio(tmp_path_factory):
    """A synthetic portfolio of 8 customers with seven months of settled events (about 65 events) (directory)."""
    from forecasting.synthetic import generate_portfolio

    return generate_portfolio(tmp_path_factory.mktemp("response") / "portfolio", seed=7,
                              start="2024-06-01", end="2025-01-01", n_customers=8, n_pv=0,
                              n_wind=0)


@pytest.mark.integration
def test_train_register_reload_and_cli(sample_portfolio, mlflow_uri):
    from typer.testing import CliRunner

    from forecasting.portfolio import read_portfolio
    from pipelines.cli_response import app
    from pipelines.response import REGISTERED_NAME, load_champion, train_response

    data = sample_portfolio
    result, decision = train_response(read_portfolio(data), uri=mlflow_uri)
    assert (decision["name"], decision["version"], decision["alias"]) == (
        REGISTERED_NAME, "1", "champion")
    assert set(result.metrics) == {"model", "base_rate", "historical_rate"}
    assert result.n_test_events >= 5 and result.predictions["start"].min() >= result.test_start
    champion = load_champion(mlflow_uri)
    assert champion.version == "1"
    pd.testing.assert_frame_equal(champion.model.predict(result.test_features),
                                  result.model.predict(result.test_features))

    runner = CliRunner()
    trained = runner.invoke(app, ["response-train", "--data", str(data)])
    assert trained.exit_code == 0, trained.output
    # v2 is compared with v1 on the same held-out rows; either may win (v1 saw them)
    current = load_champion(mlflow_uri).version
    alias = "champion" if current == "2" else "challenger"
    assert "historical_rate" in trained.output and f"v2 -> {alias}" in trained.output
    assert "vs champion v1" in trained.output
    assert (f"registered: refitted on {result.n_final_rows} rows of {result.n_final_events} "
            "settled events") in " ".join(trained.output.split())
    skipped = runner.invoke(app, ["response-train", "--data", str(data), "--skip-trained"])
    assert skipped.exit_code == 0, skipped.output
    assert (f"{REGISTERED_NAME} has a champion (v{current}); skipped"
            in " ".join(skipped.output.split()))
    event = result.predictions.index.get_level_values("event_id")[0]
    answered = runner.invoke(app, ["response-predict", "--data", str(data), "--event", event])
    assert answered.exit_code == 0, answered.output
    assert f"{REGISTERED_NAME}/{current}" in answered.output
    bad = runner.invoke(app, ["response-predict", "--data", str(data), "--event", "nope"])
    assert bad.exit_code == 2 and "unknown event 'nope'" in bad.output

    # POST /dispatch's handler plans with the champion's reliability (auto), or the history
    from forecasting.settlement import SettlementRule
    from inference.registry import ModelRegistry
    from pipelines.response import planned_reliability, response_data
    from serving.dispatch_api import DispatchRequest, handle_dispatch
    from serving.response_api import registry_champion

    portfolio = read_portfolio(data)
    champion = registry_champion(ModelRegistry(mlflow_uri))
    assert champion is not None and champion.version == current
    inputs = response_data(portfolio)

    def likelihood(instruction, resources):
        return planned_reliability(inputs, instruction, resources, SettlementRule(), champion)

    request = DispatchRequest(target_kw=300.0, start="2024-12-23T14:00:00+08:00",
                              end="2024-12-23T16:00:00+08:00",
                              notice_time="2024-12-23T10:00:00+08:00")
    planned = handle_dispatch(portfolio, request, likelihood=likelihood)
    assert planned.reliability_source.startswith(f"{REGISTERED_NAME}/{current}")
    assert planned.assumed_reliability == []
    assert all(0 < a["p_deliver"] < 1 for a in planned.allocations)
    history = handle_dispatch(portfolio, request.model_copy(update={"reliability": "history"}),
                              likelihood=likelihood)
    assert history.reliability_source.startswith("events.csv history")
    with pytest.raises(ModelNotFoundError, match="no response-likelihood champion"):
        handle_dispatch(portfolio, request.model_copy(update={"reliability": "model"}),
                        likelihood=lambda instruction, resources: None)


@pytest.mark.integration
def test_registered_model_is_refitted_on_every_settled_event(sample_portfolio, mlflow_uri):
    # scored: a fit on the earlier 75 % of the events; registered: the same configuration
    # refitted on every settled event (held-out ones too), calibrated on its own latest slice
    import math

    import mlflow

    from forecasting.portfolio import read_portfolio
    from models.response_features import achievement
    from pipelines.response import (
        load_champion,
        log_and_register,
        response_data,
        train_response_core,
    )
    from pipelines.tracking import tracking_session

    data = response_data(read_portfolio(sample_portfolio))
    result = train_response_core(data)
    ach = achievement(data.events)
    settled = data.events[np.isfinite(ach.to_numpy())]
    starts = pd.to_datetime(settled["start"], utc=True)
    earlier = starts[starts < result.test_start]
    assert result.model.training_window_ == (starts.min(), starts.max())
    assert result.model.training_window_[1] > result.test_start
    assert result.scoring_model.training_window_ == (starts.min(), earlier.max())
    assert result.n_final_rows == len(settled) > result.n_train_rows == len(earlier)
    assert result.n_final_events == settled["event_id"].nunique() > result.n_train_events
    assert result.model.n_calibration_rows_ == math.ceil(0.25 * len(settled))
    assert result.scoring_model.n_calibration_rows_ == math.ceil(0.25 * len(earlier))
    # the held-out scores are the scoring fit's
    pd.testing.assert_series_equal(
        result.scoring_model.predict(result.test_features)["p_deliver"],
        result.predictions["model_p_deliver"], check_names=False)

    with tracking_session(mlflow_uri) as client:
        decision = log_and_register(client, data, result, ResponseTrainingConfig())
    run = mlflow.MlflowClient(mlflow_uri).get_run(decision["run_id"])
    params, tags = run.data.params, run.data.tags
    assert params["final_fit_start"] == starts.min().isoformat()
    assert params["final_fit_end"] == starts.max().isoformat()
    assert params["scoring_fit_end"] == earlier.max().isoformat()
    assert int(params["final_fit_n_rows"]) == len(settled)
    assert int(params["final_fit_n_events"]) == settled["event_id"].nunique()
    assert int(params["scoring_fit_n_rows"]) == len(earlier)
    assert tags["registered_model"] == "final fit on all settled events"
    assert run.data.metrics["holdout_brier"] == pytest.approx(result.metrics["model"]["brier"])
    champion = load_champion(mlflow_uri)
    assert champion.model.training_window_ == result.model.training_window_
