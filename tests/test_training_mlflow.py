"""Integration: a real MLflow sqlite store in a temp dir — train, register, promote, reload."""

import pandas as pd
import pytest
from factories import TZ, write_portfolio
from mlflow import MlflowClient
from typer.testing import CliRunner

from forecasting.portfolio import read_portfolio
from inference.registry import ModelRegistry
from pipelines.cli import app
from pipelines.config import TrainingConfig
from pipelines.tracking import TrackingUnavailableError, tracking_session
from pipelines.training import train_site

pytestmark = pytest.mark.integration

FAST = TrainingConfig(n_estimators=40, holdout_days=5, calibration_days=5)


@pytest.fixture(scope="module")
def portfolio_dir(tmp_path_factory):
    return write_portfolio(tmp_path_factory.mktemp("pf"), days=40)


def test_train_register_promote_and_reload(portfolio_dir, mlflow_uri):
    portfolio = read_portfolio(portfolio_dir)
    first = train_site(portfolio, "load_x", FAST, train_end="2024-04-01T00:00:00+08:00")
    assert first["alias"] == "champion" and first["reason"] == "first model"
    client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    run = client.get_run(first["run_id"])
    for key in ("holdout_mae", "holdout_rmse", "holdout_mean_pinball", "holdout_coverage_p10_p90"):
        assert key in run.data.metrics
    assert run.data.params["holdout_end"] == "2024-03-31T16:00:00+00:00"
    # scored by a fit made before the held-out days; registered: refitted on all history
    assert pd.Timestamp(run.data.params["scoring_fit_end"]) < pd.Timestamp(run.data.params[
        "holdout_start"])
    assert run.data.params["fit_end"] == "2024-03-31T15:45:00+00:00"  # last interval before end
    assert run.data.tags["registered_model"].startswith("final fit")
    artifacts = {a.path for a in client.list_artifacts(first["run_id"], "plots")}
    assert "plots/forecast_vs_actual.png" in artifacts
    assert "plots/feature_importance.png" in artifacts
    assert client.get_experiment(run.info.experiment_id).name == "vpp-load"

    # a deliberately weak challenger two days later (compared on those two days, which the
    # champion did not see) must not take over
    weak = TrainingConfig(n_estimators=1, learning_rate=0.01, holdout_days=5, calibration_days=0,
                          log_plots=False)  # vpp train --no-plots
    second = train_site(portfolio, "load_x", weak, train_end="2024-04-03T00:00:00+08:00")
    assert second["alias"] == "challenger", second["reason"]
    assert not client.list_artifacts(second["run_id"], "plots")  # metrics and model still are
    assert str(client.get_model_version_by_alias("load-load_x", "champion").version) == "1"
    assert "champion_holdout_mean_pinball" in client.get_run(second["run_id"]).data.metrics

    loaded = ModelRegistry(mlflow_uri).champion("load", "load_x")
    assert loaded.label == "load-load_x/1"
    assert loaded.forecaster.training_window_[1] == pd.Timestamp("2024-03-31T15:45:00+00:00")
    out = loaded.forecaster.forecast(portfolio.site_data("load_x"),
                                     pd.Timestamp("2024-04-02T12:00", tz=TZ),
                                     pd.date_range("2024-04-03", periods=96, freq="15min", tz=TZ))
    assert out.shape == (96, 3)


def test_cli_train_and_forecast_contract(portfolio_dir, mlflow_uri, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--data", str(portfolio_dir), "--kind", "load", "--site",
                              "load_x", "--train-end", "2024-04-05T00:00:00+08:00",
                              "--holdout-days", "5", "--n-estimators", "40"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "fc.csv"
    res = runner.invoke(app, ["forecast", "--data", str(portfolio_dir), "--kind", "load",
                              "--site", "load_x", "--issue-time", "2024-04-06T12:00:00+08:00",
                              "--start", "2024-04-07T00:00:00+08:00",
                              "--end", "2024-04-08T00:00:00+08:00",
                              "--quantiles", "0.1,0.5,0.9,0.99", "--out", str(out)])
    assert res.exit_code == 0, res.output
    fc = pd.read_csv(out)
    assert list(fc.columns) == ["site_id", "issue_time", "timestamp", "q0.1", "q0.5", "q0.9",
                                "q0.99", "model_version", "quality", "method"]
    assert len(fc) == 96
    assert fc["timestamp"].iloc[0] == "2024-04-07T00:00:00+08:00"
    assert (fc["q0.1"] <= fc["q0.5"]).all() and (fc["q0.9"] <= fc["q0.99"]).all()
    assert fc["model_version"].iloc[0] == "load-load_x/1"
    assert (fc["quality"] == "ok").all()


def test_cli_errors_say_what_to_fix(portfolio_dir, mlflow_uri, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["forecast", "--data", str(portfolio_dir), "--kind", "load",
                              "--site", "nope", "--issue-time", "2024-04-06T12:00:00+08:00",
                              "--start", "2024-04-07T00:00:00+08:00",
                              "--end", "2024-04-08T00:00:00+08:00", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "unknown site 'nope'" in res.output
    res = runner.invoke(app, ["forecast", "--data", str(portfolio_dir), "--kind", "load",
                              "--site", "load_x", "--issue-time", "2024-04-06T12:00:00",
                              "--start", "2024-04-07T00:00:00+08:00",
                              "--end", "2024-04-08T00:00:00+08:00", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "no UTC offset" in res.output


def test_unreachable_tracking_server_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    with (pytest.raises(TrackingUnavailableError, match="cannot be reached|unreachable"),
          tracking_session("http://127.0.0.1:9")):
        pass


def test_batch_forecast_reports_a_failing_site_and_goes_on(portfolio_dir, mlflow_uri, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--data", str(portfolio_dir), "--kind", "load", "--site",
                              "load_x", "--holdout-days", "5", "--n-estimators", "30"])
    assert res.exit_code == 0, res.output
    from pipelines.batch import forecast_many

    portfolio = read_portfolio(portfolio_dir)
    frame, failures = forecast_many(portfolio, ["ghost", "load_x"],
                                    "2024-04-06T12:00:00+08:00", "day_ahead")
    assert failures == [{"site_id": "ghost", "error": failures[0]["error"]}]
    assert "UnknownSiteError" in failures[0]["error"]
    assert len(frame) == 96 and set(frame["site_id"]) == {"load_x"}
    stale = tmp_path / "out" / "failures_20240406T0400Z.csv"  # of an earlier failed run
    stale.parent.mkdir()
    stale.write_text("site_id,error\nload_x,StaleDataError: ...\n")
    res = runner.invoke(app, ["batch-forecast", "--data", str(portfolio_dir), "--issue-time",
                              "2024-04-06T12:00:00+08:00", "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    written = list((tmp_path / "out").glob("forecasts_*.csv"))
    assert len(written) == 1 and len(pd.read_csv(written[0])) == 96
    assert not stale.exists()  # the rerun succeeded for every site


def test_tracking_session_leaves_no_global_trace(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    before = mlflow.get_tracking_uri()
    with tracking_session(f"sqlite:///{tmp_path / 'a.db'}"):
        assert mlflow.get_tracking_uri().endswith("a.db")
    import os

    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert mlflow.get_tracking_uri() == before


def test_wind_runs_log_which_power_curve_the_features_use():
    from forecasting.portfolio import Site
    from pipelines.training import _kind_params

    named = Site("wf", "wind", "UTC", 60, capacity_kw=3050.0, turbine_type="E-101/3050")
    assert _kind_params(named)["power_curve"].endswith("E-101/3050")
    assert _kind_params(Site("wf", "wind", "UTC", 60))["power_curve"].startswith("generic")
    assert _kind_params(Site("l", "load", "UTC", 15)) == {}


def test_promotion_tolerance_lets_a_fresher_retrain_win_a_near_tie(mlflow_uri):
    import mlflow

    from pipelines.tracking import promote

    with tracking_session(mlflow_uri) as client:
        client.create_registered_model("load-tie")
        for _ in range(3):
            client.create_model_version("load-tie", "file:///nowhere")
        with mlflow.start_run():
            # 0.5 % worse than the champion: champion with a 1 % tolerance, not without
            assert promote(client, "load-tie", "2", "mean_pinball", 1.005, 1.0, "1", "w",
                           tolerance=0.01)[0] == "champion"
            assert promote(client, "load-tie", "3", "mean_pinball", 1.005, 1.0, "2", "w"
                           )[0] == "challenger"
            alias, reason = promote(client, "load-tie", "3", "mean_pinball", 1.05, 1.0, "2",
                                    "w", tolerance=0.01)
            assert alias == "challenger" and "tolerance 1%" in reason
        assert str(client.get_model_version_by_alias("load-tie", "champion").version) == "2"


def test_the_champion_is_compared_only_on_days_it_was_not_trained_on(portfolio_dir,
                                                                     mlflow_uri):
    """A retrain a few days later is compared with the champion on the held-out days after
    the champion's training end (the champion scored in sample would favour it); the same
    configuration on newer data replaces it unless more than RETRAIN_GUARD worse there; a
    retrain that brings no new reading leaves the champion without a comparison."""
    portfolio = read_portfolio(portfolio_dir)
    config = TrainingConfig(n_estimators=20, holdout_days=5, calibration_days=0,
                            log_plots=False)
    first = train_site(portfolio, "load_x", config, train_end="2024-03-28T00:00:00+08:00")
    assert first["alias"] == "champion"
    later = train_site(portfolio, "load_x", config, train_end="2024-03-30T00:00:00+08:00")
    # held out 25-29 March; the champion saw readings to 27 March 23:45: compared on 28-29
    assert "the 2 held-out days from 2024-03-28 00:00" in later["reason"], later["reason"]
    assert "a retrain of its configuration on newer data (tolerance 25%)" in later["reason"]
    client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    metrics = client.get_run(later["run_id"]).data.metrics
    assert metrics["comparison_days"] == 2
    assert metrics["challenger_comparison_n"] == metrics["champion_holdout_n"] == 2 * 96
    champion = str(client.get_model_version_by_alias("load-load_x", "champion").version)
    again = train_site(portfolio, "load_x", config, train_end="2024-03-30T00:00:00+08:00")
    assert again["alias"] == "challenger" and "no held-out day after champion" in again["reason"]
    assert str(client.get_model_version_by_alias("load-load_x", "champion").version) == champion


def test_a_changed_configuration_is_held_to_the_promotion_tolerance(portfolio_dir, mlflow_uri):
    portfolio = read_portfolio(portfolio_dir)
    config = TrainingConfig(n_estimators=20, holdout_days=5, calibration_days=0,
                            log_plots=False)
    train_site(portfolio, "load_x", config, train_end="2024-03-28T00:00:00+08:00")
    other = train_site(portfolio, "load_x", config.model_copy(update={"n_estimators": 21}),
                       train_end="2024-03-30T00:00:00+08:00")
    assert "(tolerance 1%)" in other["reason"] and "retrain of its" not in other["reason"]
