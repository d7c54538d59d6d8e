"""Quantile model, horizon-aware features and the no-leakage rule."""

import numpy as np
import pandas as pd
import pytest
from factories import TZ, site_data

from forecasting.features import FeatureSpec, build_features
from models.forecaster import SiteForecaster
from models.quantile import LGBMQuantileRegressor, interpolate_quantiles


def test_quantile_regressor_non_crossing_and_ordered():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    y = 2 * X[:, 0] + rng.normal(size=2000)
    model = LGBMQuantileRegressor(quantiles=(0.9, 0.1, 0.5), n_estimators=50).fit(X, y)
    assert model.quantiles_ == (0.1, 0.5, 0.9)
    pred = model.predict(X)
    assert pred.shape == (2000, 3)
    assert (np.diff(pred, axis=1) >= 0).all()
    cover = np.mean((y >= pred[:, 0]) & (y <= pred[:, 2]))
    assert 0.7 < cover < 0.9


def test_quantile_regressor_rejects_bad_levels():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        LGBMQuantileRegressor(quantiles=(0.1, 1.0)).fit(np.zeros((100, 1)), np.zeros(100))


def test_interpolation_inside_and_tails():
    grid = (0.1, 0.5, 0.9)
    values = np.array([[-1.2816, 0.0, 1.2816]])  # standard normal quantiles
    out = interpolate_quantiles(values, grid, [0.01, 0.1, 0.3, 0.5, 0.99])
    assert out[0, 1] == pytest.approx(-1.2816)
    assert out[0, 2] == pytest.approx(-0.6408)  # linear between 0.1 and 0.5
    assert out[0, 0] == pytest.approx(-2.326, abs=0.01)  # normal tail
    assert out[0, 4] == pytest.approx(2.326, abs=0.01)
    assert (np.diff(out, axis=1) >= 0).all()


def test_lags_shorter_than_the_lead_are_masked():
    data = site_data(days=20)
    t = pd.DatetimeIndex([pd.Timestamp("2024-03-15T10:00", tz=TZ)] * 2).tz_convert("UTC")
    issues = pd.DatetimeIndex([t[0] - pd.Timedelta(minutes=30), t[0] - pd.Timedelta(hours=30)])
    X = build_features(data, t, issues, FeatureSpec(lags_minutes=(15, 30, 45, 1440, 2880)))
    # issued 30 min ahead: the 30-minute lag (interval 09:30-09:45) has not ended at 09:30
    assert np.isnan(X["lag_15m_kw"].iloc[0]) and np.isnan(X["lag_30m_kw"].iloc[0])
    assert not np.isnan(X["lag_45m_kw"].iloc[0])
    # issued 30 h ahead: only the 2-day lag is known
    assert np.isnan(X["lag_1440m_kw"].iloc[1]) and not np.isnan(X["lag_2880m_kw"].iloc[1])
    assert X["lead_minutes"].tolist() == [30.0, 1800.0]


@pytest.fixture(scope="module")
def fitted():
    data = site_data(days=45)
    model = SiteForecaster(n_estimators=60, calibration_days=7).fit(
        data.before(pd.Timestamp("2024-04-10T00:00", tz=TZ)))
    return data, model


def test_forecast_is_unchanged_when_data_after_issue_changes(fitted):
    data, model = fitted
    issue = pd.Timestamp("2024-04-11T12:00", tz=TZ)
    targets = pd.date_range("2024-04-12", periods=96, freq="15min", tz=TZ)
    before = model.forecast(data, issue, targets, [0.1, 0.5, 0.9])
    after = data.values_kw.index >= issue
    altered = data.values_kw.copy()
    altered[after] = altered[after] * 5 + 1000
    weather = data.weather.copy()
    weather.loc[weather["issue_time"] > issue, "temp_air_c"] += 20
    changed = type(data)(data.site, altered, weather, data.prices)
    pd.testing.assert_frame_equal(before, model.forecast(changed, issue, targets, [0.1, 0.5, 0.9]))
    # and data before the issue time does matter (the test can fail)
    earlier = data.values_kw.copy()
    earlier[(earlier.index < issue) & (earlier.index >= issue - pd.Timedelta(days=8))] += 500
    moved = model.forecast(type(data)(data.site, earlier, data.weather, data.prices), issue,
                           targets, [0.5])
    assert not np.allclose(moved["q0.5"], before["q0.5"])


def test_forecast_quality_and_any_quantiles(fitted):
    data, model = fitted
    issue = pd.Timestamp("2024-04-11T12:00", tz=TZ)
    targets = pd.date_range("2024-04-12", periods=96 * 3, freq="15min", tz=TZ)
    out = model.forecast(data, issue, targets, [0.05, 0.1, 0.5, 0.9, 0.95])
    assert list(out.columns) == ["q0.05", "q0.1", "q0.5", "q0.9", "q0.95"]
    assert (np.diff(out.to_numpy(), axis=1) >= 0).all()
    actual = data.values_kw.reindex(out.index)
    mae = np.mean(np.abs(out["q0.5"] - actual))
    assert mae < 60  # noise sd 20 kW, a 400 kW working-hours step
    cover = np.mean((actual >= out["q0.1"]) & (actual <= out["q0.9"]))
    assert 0.6 <= cover <= 0.97


def test_fit_refuses_too_little_history():
    from forecasting.errors import InsufficientDataError

    data = site_data(days=3)
    with pytest.raises(InsufficientDataError, match="need at least"):
        SiteForecaster().fit(data)


def test_seed_bag_makes_the_forecast_depend_much_less_on_the_seed():
    """Pairs of seeds, same data: the default seed bag's medians lie much closer together
    than those of the single booster it replaced (n_bags=1, 31 leaves, up to 16,000 rows).
    Measured: about 0.55 of the single booster's gap. Fails on the single-booster code (no
    n_bags; its default is the single booster)."""
    data = site_data(days=30)
    history = data.before(pd.Timestamp("2024-03-29T00:00", tz=TZ))
    issue = pd.Timestamp("2024-03-29T12:00", tz=TZ)
    targets = pd.date_range("2024-03-30", periods=96, freq="15min", tz=TZ)
    fast = {"n_estimators": 60, "calibration_days": 0, "buckets": (("day_ahead", 360, 4320),)}
    single = {"n_bags": 1, "max_rows_per_bucket": 16000, "num_leaves": 31}

    def seed_gap(**params) -> float:
        """Mean |median(seed a) - median(seed b)| (kW) over three pairs of seeds."""
        gaps = []
        for a, b in ((0, 1), (2, 3), (4, 5)):
            medians = [SiteForecaster(random_state=seed, **fast, **params).fit(history)
                       .forecast(data, issue, targets, [0.5])["q0.5"].to_numpy()
                       for seed in (a, b)]
            gaps.append(np.mean(np.abs(medians[0] - medians[1])))
        return float(np.mean(gaps))

    assert SiteForecaster().n_bags > 1
    assert seed_gap() < 0.7 * seed_gap(**single)


def test_seed_bag_default_depends_on_the_kind_and_an_explicit_size_wins():
    """The bag was measured better for load (OpenSTEF 307) and worse for wind (GEFCom2012)
    and PV (GEFCom2014 solar): by default load trains a bag of 3 boosters of 15 leaves on up
    to 8,000 rows, PV and wind the single booster of 31 leaves on up to 16,000 rows; an
    explicit value is used for every kind."""
    from pipelines.config import TrainingConfig

    def boosters(config, kind):
        model = config.forecaster(kind)
        return model.n_bags, model.num_leaves, model.max_rows_per_bucket

    default = TrainingConfig()
    assert default.n_bags is None and default.num_leaves is None
    assert {k: boosters(default, k) for k in ("load", "pv", "wind")} == {
        "load": (3, 15, 8000), "pv": (1, 31, 16000), "wind": (1, 31, 16000)}
    for size in (1, 2, 5):
        assert {TrainingConfig(n_bags=size).forecaster(k).n_bags
                for k in ("load", "pv", "wind")} == {size}
    given = TrainingConfig(n_bags=2, num_leaves=7, max_rows_per_bucket=500)
    assert {boosters(given, k) for k in ("load", "pv", "wind")} == {(2, 7, 500)}
    assert boosters(TrainingConfig(num_leaves=63), "load") == (3, 63, 8000)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        TrainingConfig(n_bags=0)
    with pytest.raises(ValueError, match="unknown kind 'solar'"):
        default.bags_for("solar")


def test_wind_sites_get_the_direction_sectors_and_load_features_are_unchanged():
    """The training config gives wind sites the 10 m speed split by 8 direction sectors
    (measured on GEFCom2012 wind, pipelines.config.KIND_FEATURES); a load site's spec is
    the plain one."""
    from forecasting.portfolio import Site, SiteData
    from pipelines.config import TrainingConfig

    config = TrainingConfig()
    assert config.forecaster("wind").feature_spec.wind_direction_sectors == 8
    assert config.forecaster("load").feature_spec == FeatureSpec()
    assert config.forecaster("pv").feature_spec.wind_direction_sectors == 0
    weather_only = TrainingConfig(features="weather_only").forecaster("wind").feature_spec
    assert weather_only.wind_direction_sectors == 8 and not weather_only.lags_minutes
    # SYNTHETIC hourly wind site: one forecast run, 6 m/s from the east (sector 2 of 8)
    t0 = pd.Timestamp("2024-01-01", tz="UTC")
    hours = pd.date_range(t0, periods=48, freq="h")
    weather = pd.DataFrame({"timestamp": hours[1:], "issue_time": t0,
                            "wind_speed_10m_mps": 6.0, "wind_dir_10m_deg": 90.0})
    from factories import empty_prices

    data = SiteData(Site("wf", "wind", "UTC", 60, capacity_kw=1.0),
                    pd.Series(0.5, index=hours, name="wind_power_kw"), weather, empty_prices())
    X = build_features(data, hours[1:3], pd.DatetimeIndex([t0] * 2),
                       config.forecaster("wind").feature_spec)
    sectors = X[[f"wind_speed_10m_sector{k}of8_mps" for k in range(8)]].to_numpy()
    np.testing.assert_allclose(sectors, [[0, 0, 6, 0, 0, 0, 0, 0]] * 2)
    with pytest.raises(ValueError, match="wind_direction_sectors"):
        FeatureSpec(wind_direction_sectors=1)
