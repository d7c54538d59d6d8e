"""Explanations: TreeSHAP contributions add up, vpp forecast --explain, the run's plot.

Data: the hand-made SYNTHETIC load series of tests/factories.py.
"""

import numpy as np
import pandas as pd
import pytest
from factories import TZ, site_data, write_portfolio
from mlflow import MlflowClient
from typer.testing import CliRunner

from models.explain import BIAS, LEVEL, RAW, feature_contributions, top_contributions
from models.forecaster import SiteForecaster
from models.quantile import LGBMQuantileRegressor
from pipelines.cli import app
from pipelines.explain import PLOT_ARTIFACT


def test_regressor_contributions_sum_to_its_raw_prediction():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    y = 3 * X[:, 0] - X[:, 1] + rng.normal(size=600)
    model = LGBMQuantileRegressor(n_estimators=30).fit(X, y)
    for j, q in enumerate(model.quantiles_):
        c = model.contributions(X[:50], q)
        assert c.shape == (50, 5)
        np.testing.assert_allclose(c.sum(axis=1), model.predict_raw(X[:50])[:, j], atol=1e-9)
    # the informative features carry the contributions, the noise ones little
    share = np.abs(model.contributions(X, 0.5)[:, :4]).mean(axis=0)
    assert share[0] > 5 * share[2] and share[0] > 5 * share[3]
    with pytest.raises(ValueError, match="not trained"):
        model.contributions(X, 0.3)


@pytest.fixture(scope="module")
def bagged():
    data = site_data(days=30)
    model = SiteForecaster(n_estimators=20, n_bags=2, calibration_days=7).fit(
        data.before(pd.Timestamp("2024-03-28T00:00", tz=TZ)))
    return data, model


def test_bag_contributions_sum_to_the_raw_median_and_the_forecast(bagged):
    """The exact identity (models.explain): features + bias + known level = the median's
    bag-mean raw output; the forecast's q0.5 equals it on rows whose levels do not cross
    (load: unbounded; the median's conformal correction is 0 without conformal_shift)."""
    data, model = bagged
    issue = pd.Timestamp("2024-03-28T21:00", tz=TZ)  # both buckets: leads 0-6 h and beyond
    targets = pd.date_range("2024-03-28T21:00", periods=96, freq="15min", tz=TZ)
    X = model.features(data, issue, targets)
    contrib = feature_contributions(model, X)
    names = model.feature_names_
    assert list(contrib.columns) == [*names, BIAS, LEVEL, RAW]
    np.testing.assert_allclose(contrib[[*names, BIAS, LEVEL]].sum(axis=1), contrib[RAW],
                               atol=1e-9)
    buckets = model.bucket_names(X)
    assert set(buckets) == {"intraday", "day_ahead"}
    values = X[names].to_numpy(dtype=float)
    raw_grid = np.full((len(X), 3), np.nan)
    for name, bag in model.models_.items():
        rows = buckets == name
        assert len(bag.members_) == 2
        raw_grid[rows] = np.mean([m.predict_raw(values[rows]) for m in bag.members_], axis=0)
        assert model.corrections_[name][1] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(contrib[RAW], raw_grid[:, 1], atol=1e-9)
    forecast = model.forecast(data, issue, targets, [0.1, 0.5, 0.9])
    ordered = (np.diff(raw_grid, axis=1) >= 0).all(axis=1)
    assert ordered.mean() > 0.5
    np.testing.assert_allclose(forecast["q0.5"].to_numpy()[ordered], contrib[RAW][ordered],
                               atol=1e-6)


def test_top_contributions_are_the_largest_per_timestamp(bagged):
    data, model = bagged
    issue = pd.Timestamp("2024-03-28T12:00", tz=TZ)
    targets = pd.date_range("2024-03-29", periods=8, freq="15min", tz=TZ)
    X = model.features(data, issue, targets)
    contrib = feature_contributions(model, X)
    top = top_contributions(contrib, X, top=3)
    assert len(top) == 24 and list(top["rank"][:3]) == [1, 2, 3]
    for t, group in top.groupby("timestamp"):
        row = contrib.loc[t, model.feature_names_].abs()
        assert group["feature"].tolist() == row.sort_values(ascending=False,
                                                            kind="stable").index[:3].tolist()
        assert group["contribution_kw"].abs().is_monotonic_decreasing
        assert group["feature_value"].iloc[0] == pytest.approx(X.loc[t, group["feature"].iloc[0]],
                                                               nan_ok=True)


@pytest.mark.integration
def test_cli_explain_writes_contributions_and_the_run_has_the_plot(tmp_path, mlflow_uri):
    pf = write_portfolio(tmp_path / "pf", days=30)
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--data", str(pf), "--kind", "load", "--site", "load_x",
                              "--train-end", "2024-03-29T00:00:00+08:00", "--holdout-days", "4",
                              "--n-estimators", "30"])
    assert res.exit_code == 0, res.output
    client = MlflowClient(tracking_uri=mlflow_uri, registry_uri=mlflow_uri)
    version = client.get_model_version_by_alias("load-load_x", "champion")
    artifacts = {a.path for a in client.list_artifacts(version.run_id, "plots")}
    assert PLOT_ARTIFACT in artifacts
    local = client.download_artifacts(version.run_id, PLOT_ARTIFACT, str(tmp_path))
    with open(local, "rb") as png:
        assert png.read(8) == b"\x89PNG\r\n\x1a\n"

    out = tmp_path / "fc.csv"
    window = ["--issue-time", "2024-03-29T12:00:00+08:00", "--start",
              "2024-03-30T00:00:00+08:00", "--end", "2024-03-31T00:00:00+08:00"]
    res = runner.invoke(app, ["forecast", "--data", str(pf), "--kind", "load", "--site",
                              "load_x", *window, "--out", str(out), "--explain"])
    assert res.exit_code == 0, res.output
    explained = pd.read_csv(tmp_path / "fc_explain.csv")
    assert list(explained.columns) == ["site_id", "issue_time", "timestamp", "rank", "feature",
                                       "feature_value", "contribution_kw", BIAS, RAW]
    assert len(explained) == 96 * 5
    assert explained["timestamp"].iloc[0] == "2024-03-30T00:00:00+08:00"
    # the explained median is the forecast's wherever its levels were in order
    fc = pd.read_csv(out).set_index("timestamp")
    raw = explained.groupby("timestamp", sort=False)[RAW].first()
    close = np.isclose(raw.to_numpy(), fc.loc[raw.index, "q0.5"].to_numpy(), atol=1e-3)
    assert close.mean() > 0.5
    # --explain-out alone asks for it too, at the path given
    res = runner.invoke(app, ["forecast", "--data", str(pf), "--kind", "load", "--site",
                              "load_x", *window, "--out", str(out), "--explain-out",
                              str(tmp_path / "why.csv"), "--explain-top", "2"])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(tmp_path / "why.csv")) == 96 * 2
