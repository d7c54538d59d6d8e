"""Forecast metrics: point errors, pinball loss, CRPS from quantiles, interval coverage.

All functions ignore pairs where the actual or the forecast is NaN. ``quantiles`` maps a
quantile level (0..1) to its forecast array. Units follow the inputs (kW unless stated).
MAE and the pinball loss are scikit-learn's (``mean_absolute_error``, ``mean_pinball_loss``).

References: [1] Gneiting & Raftery (2007) "Strictly proper scoring rules, prediction, and
estimation", JASA 102(477); [2] Hong et al. (2016) "Probabilistic energy forecasting:
Global Energy Forecasting Competition 2014 and beyond", IJF 32(3) (the pinball loss).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.metrics import mean_absolute_error, mean_pinball_loss


def _pair(actual, forecast) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    ok = ~(np.isnan(a) | np.isnan(f))
    return a[ok], f[ok]


def mae(actual, forecast) -> float:
    a, f = _pair(actual, forecast)
    return float(mean_absolute_error(a, f)) if a.size else float("nan")


def rmse(actual, forecast) -> float:
    a, f = _pair(actual, forecast)
    return float(np.sqrt(np.mean((a - f) ** 2))) if a.size else float("nan")


def bias(actual, forecast) -> float:
    """Mean of forecast minus actual (positive = over-forecast)."""
    a, f = _pair(actual, forecast)
    return float(np.mean(f - a)) if a.size else float("nan")


def pinball(actual, forecast, quantile: float) -> float:
    """Mean pinball (quantile) loss at level ``quantile``."""
    a, f = _pair(actual, forecast)
    return float(mean_pinball_loss(a, f, alpha=quantile)) if a.size else float("nan")


def mean_pinball(actual, quantiles: Mapping[float, np.ndarray]) -> float:
    """Pinball loss averaged over the given quantile levels."""
    return float(np.mean([pinball(actual, f, q) for q, f in quantiles.items()]))


def crps_from_quantiles(actual, quantiles: Mapping[float, np.ndarray]) -> float:
    """Mean CRPS of the distribution the quantiles describe, in the unit of the inputs.

    The forecast CDF per row is piecewise linear through the points (quantile value,
    level), with the outer mass (below the lowest level, above the highest) placed at the
    outermost quantiles; its CRPS, the integral of (F(x) - 1{x >= y})^2 over x [1], is then
    exact (no grid). With a dense set of levels it converges to the CRPS of the true
    predictive distribution; with P10/P50/P90 only, the outer 20 % of the mass sits on two
    points, so the figure is larger than a smooth distribution's with the same quantiles.
    Rows with a NaN actual or quantile are left out. Not twice the mean pinball loss (which
    it only approximates on an even grid of levels).
    """
    levels = np.array(sorted(quantiles), dtype=float)
    y = np.asarray(actual, dtype=float)
    x = np.sort(np.column_stack([np.asarray(quantiles[q], dtype=float) for q in levels]),
                axis=1)
    ok = ~(np.isnan(y) | np.isnan(x).any(axis=1))
    y, x = y[ok], x[ok]
    if not y.size:
        return float("nan")
    yc = y[:, None]
    total = np.maximum(x[:, 0] - y, 0.0) + np.maximum(y - x[:, -1], 0.0)  # outside the knots
    a, b = x[:, :-1], x[:, 1:]
    fa, fb = levels[:-1][None, :], levels[1:][None, :]
    # each segment [a, b] is split at y: F - 0 below y, F - 1 above
    cut = np.clip(yc, a, b)
    width = np.where(b > a, b - a, 1.0)
    f_cut = fa + (fb - fa) * (cut - a) / width
    total += _linear_square(cut - a, fa, f_cut, 0.0).sum(axis=1)
    total += _linear_square(b - cut, f_cut, fb, 1.0).sum(axis=1)
    return float(np.mean(total))


def _linear_square(length, f0, f1, h: float) -> np.ndarray:
    """Integral of (F - h)^2 over an interval of ``length`` on which F runs linearly from
    ``f0`` to ``f1``."""
    u, v = f0 - h, f1 - h
    return length * (u * u + u * v + v * v) / 3.0


def coverage(actual, lower, upper) -> float:
    """Share of actuals inside [lower, upper]."""
    a = np.asarray(actual, dtype=float)
    lo = np.asarray(lower, dtype=float)
    hi = np.asarray(upper, dtype=float)
    ok = ~(np.isnan(a) | np.isnan(lo) | np.isnan(hi))
    if not ok.any():
        return float("nan")
    return float(np.mean((a[ok] >= lo[ok]) & (a[ok] <= hi[ok])))


def cvrmse(actual, forecast) -> float:
    """RMSE divided by the mean actual (ASHRAE Guideline 14), as a fraction."""
    a, f = _pair(actual, forecast)
    return float(np.sqrt(np.mean((a - f) ** 2)) / np.mean(a)) if a.size else float("nan")


def nmbe(actual, forecast) -> float:
    """Normalised mean bias error: sum(forecast - actual) / sum(actual), as a fraction."""
    a, f = _pair(actual, forecast)
    return float(np.sum(f - a) / np.sum(a)) if a.size else float("nan")


def forecast_scores(actual, quantiles: Mapping[float, np.ndarray],
                    capacity_kw: float | None = None) -> dict[str, float]:
    """The standard score set: MAE/RMSE/bias of the median, pinball, CRPS, P10-P90 coverage."""
    levels = sorted(quantiles)
    median = quantiles[min(levels, key=lambda q: abs(q - 0.5))]
    scores = {
        "mae": mae(actual, median),
        "rmse": rmse(actual, median),
        "bias": bias(actual, median),
        "mean_pinball": mean_pinball(actual, quantiles),
        "crps": crps_from_quantiles(actual, quantiles),
        "n": int(np.sum(~np.isnan(np.asarray(actual, dtype=float)))),
    }
    if 0.1 in quantiles and 0.9 in quantiles:
        scores["coverage_p10_p90"] = coverage(actual, quantiles[0.1], quantiles[0.9])
    if capacity_kw:
        scores["nmae_capacity"] = scores["mae"] / capacity_kw
    return scores
