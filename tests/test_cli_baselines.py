"""``vpp baseline-train`` end to end: a portfolio on disk, a real MLflow sqlite store."""

from __future__ import annotations

import mlflow
import pytest
from typer.testing import CliRunner

from pipelines.cli_baselines import app
from tests.factories import write_portfolio

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def portfolio_dir(tmp_path_factory):
    return write_portfolio(tmp_path_factory.mktemp("baseline_cli"), days=75)


def test_baseline_train_registers_champion_then_challenger(portfolio_dir, mlflow_uri):
    args = ["baseline-train", "--data", str(portfolio_dir), "--holdout-days", "14"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "baseline-cx v1 -> champion (first model)" in first.output
    assert "held-out CV(RMSE)" in first.output and "similar_days" in first.output
    second = CliRunner().invoke(app, args)
    assert second.exit_code == 0, second.output
    assert "baseline-cx v2 -> challenger" in second.output
    skipped = CliRunner().invoke(app, [*args, "--skip-trained"])
    assert skipped.exit_code == 0, skipped.output
    assert "baseline-cx has a champion (v1); skipped" in " ".join(skipped.output.split())

    client = mlflow.MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    champion = client.get_model_version_by_alias("baseline-cx", "champion")
    challenger = client.get_model_version_by_alias("baseline-cx", "challenger")
    assert (int(champion.version), int(challenger.version)) == (1, 2)
    run = client.get_run(champion.run_id)
    assert run.data.metrics["holdout_cvrmse"] > 0
    assert client.get_experiment(run.info.experiment_id).name == "vpp-baseline"
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert plots == {"plots/feature_importance.png", "plots/holdout_placebo_events.png"}


def test_baseline_train_registers_the_fit_on_every_reading_before_train_end(portfolio_dir,
                                                                            mlflow_uri):
    # 75 days of 15-minute readings from 2024-03-01 local; train end = the last reading
    # (2024-05-14 23:45, exclusive), held out from 2024-04-30 00:00 local
    args = ["baseline-train", "--data", str(portfolio_dir), "--holdout-days", "14"]
    trained = CliRunner().invoke(app, args)
    assert trained.exit_code == 0, trained.output
    said = " ".join(trained.output.split())
    assert "scored: a fit on readings to 2024-04-29 15:45 UTC" in said
    assert "registered: refitted on readings 2024-02-29 16:00 .. 2024-05-14 15:30 UTC" in said

    client = mlflow.MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    champion = client.get_model_version_by_alias("baseline-cx", "champion")
    run = client.get_run(champion.run_id)
    params, tags = run.data.params, run.data.tags
    assert tags["holdout_start"] == "2024-04-29T16:00:00+00:00"
    assert tags["train_end"] == "2024-05-14T15:45:00+00:00"
    assert params["scoring_fit_end"] == "2024-04-29T15:45:00+00:00"
    assert params["final_fit_start"] == params["scoring_fit_start"] == (
        "2024-02-29T16:00:00+00:00")
    assert params["final_fit_end"] == "2024-05-14T15:30:00+00:00"
    assert int(params["final_fit_n_rows"]) > int(params["scoring_fit_n_rows"])
    assert tags["registered_model"] == "final fit on all history before train_end"
    registered = mlflow.pyfunc.load_model(f"models:/baseline-cx/{champion.version}")
    assert registered.unwrap_python_model().baseline.training_window_[1].isoformat() == (
        "2024-05-14T15:30:00+00:00")


def test_baseline_train_refuses_an_unknown_customer(portfolio_dir, mlflow_uri):
    result = CliRunner().invoke(app, ["baseline-train", "--data", str(portfolio_dir),
                                      "--customers", "nobody"])
    assert result.exit_code == 2
    assert "unknown customer 'nobody'" in result.output and "cx" in result.output


def test_baseline_train_without_enough_history_says_so(tmp_path, mlflow_uri):
    short = write_portfolio(tmp_path / "short", days=20)
    result = CliRunner().invoke(app, ["baseline-train", "--data", str(short),
                                      "--holdout-days", "14"])
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # the console wraps long lines
    assert "customer cx: 5 day(s) of non-event readings" in said
    assert "at least 14 (min_training_days)" in said


def test_baseline_train_with_an_unreachable_tracking_server(portfolio_dir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    result = CliRunner().invoke(app, ["baseline-train", "--data", str(portfolio_dir),
                                      "--holdout-days", "14"])
    assert result.exit_code == 2
    assert "127.0.0.1:9" in result.output
