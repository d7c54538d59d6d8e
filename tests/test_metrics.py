"""Forecast metrics against closed forms (CRPS of a normal, of a point) and hand values."""

import numpy as np
import pytest
from scipy.stats import norm

from forecasting.metrics import crps_from_quantiles, forecast_scores, mae, mean_pinball, pinball


def crps_normal(y, mu, sigma):
    """Gneiting & Raftery (2007), eq. 21."""
    z = (y - mu) / sigma
    return sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))


def test_crps_of_dense_normal_quantiles_matches_the_closed_form():
    levels = np.round(np.arange(0.001, 1.0, 0.001), 3)
    y = np.array([-2.5, -1.0, 0.0, 0.3, 1.7, 4.0])
    q = {float(p): np.full(len(y), norm.ppf(p, 0.0, 2.0)) for p in levels}
    expected = crps_normal(y, 0.0, 2.0).mean()
    assert crps_from_quantiles(y, q) == pytest.approx(expected, rel=5e-3)


def test_crps_of_a_point_forecast_is_the_absolute_error():
    y = np.array([1.0, 5.0, -3.0])
    point = np.array([2.0, 2.0, 2.0])
    q = {0.1: point, 0.5: point, 0.9: point}
    assert crps_from_quantiles(y, q) == pytest.approx(mae(y, point))


def test_crps_is_not_twice_the_mean_pinball_on_three_levels():
    rng = np.random.default_rng(0)
    y = rng.normal(size=500)
    q = {0.1: np.full(500, -1.2816), 0.5: np.zeros(500), 0.9: np.full(500, 1.2816)}
    crps = crps_from_quantiles(y, q)
    assert abs(crps - 2 * mean_pinball(y, q)) > 0.05
    # the outer mass on two points makes it worse than the smooth normal's 0.564
    assert crps > crps_normal(y, 0.0, 1.0).mean()


def test_crps_leaves_out_nan_rows_and_sorts_crossing_quantiles():
    y = np.array([0.0, np.nan, 1.0])
    q = {0.1: np.array([-1.0, 0.0, 2.0]), 0.9: np.array([1.0, 0.0, 0.0])}
    crossed = crps_from_quantiles(y, q)
    fixed = crps_from_quantiles(y[[0, 2]], {0.1: np.array([-1.0, 0.0]),
                                            0.9: np.array([1.0, 2.0])})
    assert crossed == pytest.approx(fixed)


def test_pinball_and_scores_by_hand():
    y = np.array([10.0, 0.0, np.nan])
    f = np.array([8.0, 1.0, 3.0])
    assert pinball(y, f, 0.9) == pytest.approx((0.9 * 2 + 0.1 * 1) / 2)
    s = forecast_scores(y, {0.1: f - 1, 0.5: f, 0.9: f + 1})
    assert s["mae"] == pytest.approx(1.5) and s["n"] == 2
    assert s["coverage_p10_p90"] == pytest.approx(0.5)
