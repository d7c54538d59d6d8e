"""ML counterfactual baseline: band, pooling, no leakage, weather, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import InsufficientDataError, MissingColumnsError, UnknownSiteError
from forecasting.metrics import cvrmse
from models.baselines import SimilarDaysBaseline
from models.baselines.ml import MLBaseline, temperature_series

TZ = "Asia/Shanghai"
FAST = {"n_estimators": 60, "learning_rate": 0.1, "min_child_samples": 20}


def temperature(idx: pd.DatetimeIndex, seed: int = 0) -> pd.Series:
    """Hourly-varying air temperature with day-to-day swings of several degrees (°C)."""
    rng = np.random.default_rng(seed)
    local = idx.tz_convert(TZ)
    hour = (local.hour + local.minute / 60).to_numpy()
    day = local.normalize()
    swing = pd.Series(rng.normal(0, 4, day.nunique()), index=day.unique()).reindex(day)
    return pd.Series(28 + 4 * np.sin(2 * np.pi * (hour - 9) / 24) + swing.to_numpy(),
                     index=idx, name="temp_air_c")


def customer_load(idx: pd.DatetimeIndex, temp: pd.Series, size_kw: float, seed: int
                  ) -> pd.Series:
    """Working-hours block plus cooling load above 26 °C plus noise (kW)."""
    rng = np.random.default_rng(seed)
    local = idx.tz_convert(TZ)
    hour = (local.hour + local.minute / 60).to_numpy()
    working = (local.day_of_week < 5) & (hour >= 8) & (hour < 20)
    cooling = 0.05 * np.clip(temp.to_numpy() - 26, 0, None)
    values = size_kw * (0.5 + 0.4 * working + cooling + rng.normal(0, 0.02, len(idx)))
    return pd.Series(values, index=idx, name="load_kw")


@pytest.fixture(scope="module")
def portfolio():
    idx = pd.date_range("2024-06-01", "2024-08-20", freq="15min", tz=TZ,
                        inclusive="left").tz_convert("UTC")
    temp = temperature(idx)
    loads = {f"c{i}": customer_load(idx, temp, size, seed=i)
             for i, size in enumerate((300.0, 1200.0, 5000.0))}
    weather = pd.DataFrame({"timestamp": idx, "temp_air_c": temp.to_numpy()})
    return loads, weather


def at(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


def test_band_and_columns(portfolio):
    loads, weather = portfolio
    model = MLBaseline(**FAST).fit(loads, timezone=TZ, holiday_country="CN",
                                   weather={c: weather for c in loads},
                                   train_end=at("2024-08-01"))
    frame = model.predict(at("2024-08-06 14:00"), at("2024-08-06 17:00"), customer_id="c1")
    assert list(frame.columns) == ["baseline_kw", "baseline_p10_kw", "baseline_p90_kw"]
    assert len(frame) == 12
    assert (frame["baseline_p10_kw"] <= frame["baseline_kw"]).all()
    assert (frame["baseline_kw"] <= frame["baseline_p90_kw"]).all()
    actual = loads["c1"][frame.index]
    assert cvrmse(actual, frame["baseline_kw"]) < 0.08
    assert model.model_of_ == {"c0": "pooled", "c1": "pooled", "c2": "pooled"}


def test_ml_uses_temperature_and_beats_similar_days_after_a_heat_swing(portfolio):
    # Cooling load follows the temperature; the similar days were cooler or hotter, the ML
    # baseline sees the event day's temperature. Over 10 working days it must do better.
    loads, weather = portfolio
    model = MLBaseline(**FAST).fit(loads, timezone=TZ, holiday_country="CN",
                                   weather={c: weather for c in loads},
                                   train_end=at("2024-08-05"))
    rule = SimilarDaysBaseline().fit(loads["c2"], timezone=TZ, holiday_country="CN")
    ml_err, rule_err = [], []
    for day in pd.date_range("2024-08-05", "2024-08-19", freq="B", tz=TZ):
        start, end = day + pd.Timedelta(hours=13), day + pd.Timedelta(hours=17)
        actual = loads["c2"][(loads["c2"].index >= start) & (loads["c2"].index < end)]
        ml_err.append(model.predict(start, end, customer_id="c2")["baseline_kw"] - actual)
        rule_err.append(rule.predict(start, end)["baseline_kw"] - actual)
    rmse = lambda e: float(np.sqrt(np.mean(np.concatenate(e) ** 2)))
    assert rmse(ml_err) < 0.8 * rmse(rule_err)
    assert model.feature_importances()["wx_temp_air_c"] > 0


def test_no_leakage_load_after_the_start_does_not_move_the_ml_baseline(portfolio):
    loads, weather = portfolio
    start, end = at("2024-08-07 14:00"), at("2024-08-07 17:00")
    changed = {c: s.where(s.index < start, s * 3.0) for c, s in loads.items()}
    kw = {"timezone": TZ, "holiday_country": "CN", "weather": {c: weather for c in loads},
          "train_end": start}
    a = MLBaseline(**FAST).fit(loads, **kw).predict(start, end, customer_id="c0")
    b = MLBaseline(**FAST).fit(changed, **kw).predict(start, end, customer_id="c0")
    pd.testing.assert_frame_equal(a, b)
    # load on the days before the event reaches the level features (the test can fail)
    earlier = {c: s.where(s.index < start - pd.Timedelta(days=7), s * 1.5)
               for c, s in loads.items()}
    model = MLBaseline(**FAST).fit(loads, **kw)
    before = model.predict(start, end, customer_id="c0")["baseline_kw"]
    after = model.with_history(earlier).predict(start, end, customer_id="c0")["baseline_kw"]
    assert not np.allclose(before, after)
    # the copy knows the new history; the fitted model is left as it was
    np.testing.assert_array_equal(model.predict(start, end, customer_id="c0")["baseline_kw"],
                                  before)
    assert not hasattr(model, "set_history")  # no public path mutates a fitted model


def test_concurrent_requests_with_their_own_histories_do_not_mix(portfolio):
    """16 threads, each its own customer and history cut-off, answer what 16 sequential
    calls answer, and the shared model is left unchanged (the service's threads)."""
    from concurrent.futures import ThreadPoolExecutor

    loads, weather = portfolio
    kw = {"timezone": TZ, "holiday_country": "CN", "weather": {c: weather for c in loads}}
    model = MLBaseline(**FAST).fit(loads, **kw)
    untouched = model.predict(at("2024-08-12 14:00"), at("2024-08-12 16:00"),
                              customer_id="c1")
    cases = [(f"c{i % 3}", at("2024-08-05 14:00") + pd.Timedelta(days=i % 8)) for i in range(16)]

    def ask(case):
        cid, start = case
        scale = 1.0 + 0.1 * start.day  # a different history per request
        hist = {cid: loads[cid].where(loads[cid].index < start, np.nan).dropna() * scale}
        view = model.with_history(hist)
        return view.predict(start, start + pd.Timedelta(hours=2), customer_id=cid)

    sequential = [ask(c) for c in cases]
    with ThreadPoolExecutor(16) as pool:
        parallel = list(pool.map(ask, cases))
    for a, b in zip(sequential, parallel, strict=True):
        pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(untouched, model.predict(
        at("2024-08-12 14:00"), at("2024-08-12 16:00"), customer_id="c1"))


def test_auto_strategy_gives_rich_customers_their_own_model(portfolio):
    loads, weather = portfolio
    small = {"tiny": loads["c0"][loads["c0"].index >= at("2024-07-20")]}
    model = MLBaseline(strategy="auto", min_days_own_model=60, **FAST).fit(
        {**loads, **small}, timezone=TZ, holiday_country="CN",
        weather={c: weather for c in [*loads, "tiny"]}, train_end=at("2024-08-10"))
    assert model.model_of_["c1"] == "c1"
    assert model.model_of_["tiny"] == "pooled"
    frame = model.predict(at("2024-08-12 14:00"), at("2024-08-12 15:00"), customer_id="tiny")
    assert frame["baseline_kw"].notna().all()


def test_day_of_adjustment_is_capped(portfolio):
    loads, weather = portfolio
    boosted = loads["c1"].copy()
    morning = ((boosted.index >= at("2024-08-08 06:00"))
               & (boosted.index < at("2024-08-08 09:00")))
    boosted[morning] *= 2.0  # the event morning at double the usual load
    kw = {"timezone": TZ, "holiday_country": "CN", "weather": weather,
          "train_end": at("2024-08-05")}
    plain = MLBaseline(**FAST).fit(boosted, **kw)
    adjusted = MLBaseline(adjustment="multiplicative", adjustment_cap=0.2, **FAST).fit(
        boosted, **kw)
    window = (at("2024-08-08 14:00"), at("2024-08-08 16:00"), at("2024-08-08 10:00"))
    details = adjusted.predict_details(*window)
    assert details.adjustment == pytest.approx(1.2)
    np.testing.assert_allclose(details.frame["baseline_kw"],
                               1.2 * plain.predict(*window)["baseline_kw"])


def test_errors_unknown_customer_missing_weather_and_no_history(portfolio):
    loads, weather = portfolio
    model = MLBaseline(**FAST).fit(loads, timezone=TZ, holiday_country="CN",
                                   weather={c: weather for c in loads})
    with pytest.raises(UnknownSiteError, match="customer 'nobody' is not known"):
        model.predict(at("2024-08-12 14:00"), at("2024-08-12 15:00"), customer_id="nobody")
    with pytest.raises(MissingColumnsError, match="temp_air_c"):
        temperature_series(weather.rename(columns={"temp_air_c": "t"}))
    with pytest.raises(InsufficientDataError, match="no non-event readings"):
        MLBaseline(**FAST).fit(loads["c0"], timezone=TZ, train_end=at("2024-01-01"))
    with pytest.raises(ValueError, match="unknown strategy 'both'"):
        MLBaseline(strategy="both").fit(loads["c0"], timezone=TZ)


def test_temperature_prefers_observations_over_forecasts():
    ts = pd.date_range("2024-08-01", periods=2, freq="1h", tz="UTC")
    frame = pd.DataFrame({"timestamp": [ts[0], ts[0], ts[1]],
                          "issue_time": [pd.NaT, ts[0] - pd.Timedelta(hours=12),
                                         ts[0] - pd.Timedelta(hours=12)],
                          "temp_air_c": [30.0, 25.0, 26.0]})
    temp = temperature_series(frame)
    assert temp.tolist() == [30.0, 26.0]


TRAIN_END = at("2024-08-18")  # two days before the portfolio's last reading


@pytest.fixture(scope="module")
def trained(portfolio):
    """``train_baseline_core`` on the portfolio: (data, config, result)."""
    from inference.baseline_data import EvalDataset
    from pipelines.baselines import BaselineTrainingConfig, train_baseline_core

    loads, weather = portfolio
    data = EvalDataset("test", loads, TZ, "CN", {c: weather for c in loads})
    config = BaselineTrainingConfig(holdout_days=14, n_events_per_customer=3, n_estimators=40,
                                    min_child_samples=20)
    return data, config, train_baseline_core(data, config, TRAIN_END)


@pytest.mark.integration
def test_mlflow_registration_champion_then_challenger(trained, mlflow_uri):
    from pipelines.baselines import load_champion, log_and_register
    from pipelines.tracking import tracking_session

    data, config, result = trained
    assert result.name == "baseline-pooled"
    assert result.metrics["cvrmse"] < 0.1
    with tracking_session(mlflow_uri) as client:
        first = log_and_register(client, data, result, config)
        second = log_and_register(client, data, result, config)  # same model, same score
    assert first["alias"] == "champion" and first["reason"] == "first model"
    assert second["alias"] == "challenger" and "same held-out placebo events" in second["reason"]
    model = load_champion("baseline-pooled", mlflow_uri)
    frame = model.predict(at("2024-08-12 14:00"), at("2024-08-12 15:00"), customer_id="c1")
    assert frame["baseline_kw"].notna().all()


@pytest.mark.integration
def test_registered_baseline_is_refitted_on_every_reading_before_train_end(trained,
                                                                            mlflow_uri):
    # scored: a fit on readings before the held-out start; registered: the same
    # configuration refitted on every reading before train_end (the held-out days too)
    import mlflow

    from pipelines.baselines import load_champion, log_and_register
    from pipelines.tracking import tracking_session

    data, config, result = trained
    step = pd.Timedelta(minutes=15)
    assert result.holdout_start == at("2024-08-04")  # TRAIN_END - 14 days, local midnight
    assert result.scoring_model.training_window_[1] == result.holdout_start - step
    assert result.model.training_window_[1] == TRAIN_END - step  # the last reading before it
    assert result.model.training_window_[0] == result.scoring_model.training_window_[0]
    assert result.model.train_end_ == TRAIN_END
    assert result.model.n_training_rows_ > result.scoring_model.n_training_rows_
    assert result.model is not result.scoring_model
    with tracking_session(mlflow_uri) as client:
        decision = log_and_register(client, data, result, config)
    run = mlflow.MlflowClient(mlflow_uri).get_run(decision["run_id"])
    params, tags = run.data.params, run.data.tags
    assert params["final_fit_start"] == at("2024-06-01").tz_convert("UTC").isoformat()
    assert params["final_fit_end"] == (TRAIN_END - step).tz_convert("UTC").isoformat()
    assert params["scoring_fit_end"] == (result.holdout_start - step).tz_convert(
        "UTC").isoformat()
    assert int(params["final_fit_n_rows"]) == result.model.n_training_rows_
    assert int(params["scoring_fit_n_rows"]) == result.scoring_model.n_training_rows_
    assert tags["registered_model"] == "final fit on all history before train_end"
    assert run.data.metrics["holdout_cvrmse"] == pytest.approx(result.metrics["cvrmse"])
    champion = load_champion("baseline-pooled", mlflow_uri)
    assert champion.training_window_ == result.model.training_window_
    window = (at("2024-08-19 14:00"), at("2024-08-19 15:00"))
    pd.testing.assert_frame_equal(champion.predict(*window, customer_id="c1"),
                                  result.model.predict(*window, customer_id="c1"))


@pytest.mark.integration
def test_parallel_baseline_requests_answer_what_sequential_ones_do(portfolio, trained,
                                                                    mlflow_uri, tmp_path):
    """16 parallel ``POST /baseline`` handler calls (method ml, the registered pooled model
    of the one model source, different customers and windows) answer exactly what the same
    16 calls answer one after another, and the shared model is unchanged."""
    from concurrent.futures import ThreadPoolExecutor

    from forecasting.portfolio import read_portfolio
    from inference.registry import ModelRegistry
    from pipelines.baselines import log_and_register
    from pipelines.tracking import tracking_session
    from serving.baseline_api import BaselineRequest, handle_baseline
    from serving.service import RegistryBaselines

    loads, weather = portfolio
    data, config, result = trained
    with tracking_session(mlflow_uri) as client:
        log_and_register(client, data, result, config)
    pd.DataFrame([{"site_id": f"site_{c}", "kind": "load", "timezone": TZ, "customer_id": c,
                   "holiday_country": "CN"} for c in loads]).to_csv(tmp_path / "sites.csv",
                                                                    index=False)
    pd.concat([pd.DataFrame({"site_id": f"site_{c}", "timestamp": s.index, "load_kw": s.values})
               for c, s in loads.items()]).to_parquet(tmp_path / "measurements.parquet")
    pd.concat([weather.assign(site_id=f"site_{c}") for c in loads]).to_parquet(
        tmp_path / "weather.parquet")
    served = read_portfolio(tmp_path)
    models = RegistryBaselines(ModelRegistry(mlflow_uri, ttl_s=60))
    shared = models.get("pooled")
    window = (at("2024-08-19 14:00"), at("2024-08-19 16:00"))
    before = shared.predict(*window, customer_id="c1")

    def ask(i: int):
        day = pd.Timedelta(days=i % 8)
        request = BaselineRequest(customer_id=f"c{i % 3}", start=at("2024-08-12 14:00") + day,
                                  end=at("2024-08-12 16:00") + day,
                                  notice_time=at("2024-08-12 10:00") + day, method="ml")
        return handle_baseline(served, request, models).model_dump_json()

    sequential = [ask(i) for i in range(16)]
    with ThreadPoolExecutor(16) as pool:
        parallel = list(pool.map(ask, range(16)))
    assert parallel == sequential
    assert len(set(sequential)) == 16  # different customers and days: different answers
    pd.testing.assert_frame_equal(models.get("pooled").predict(*window, customer_id="c1"),
                                  before)
