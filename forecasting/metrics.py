"""Forecast metrics: point errors, pinball loss, CRPS from quantiles, interval coverage.

All functions ignore pairs where the actual or the forecast is NaN. ``quantiles`` maps a
quantile level (0..1) to its forecast array. Units follow the inputs (kW unless stated).

References: Gneiting & Raftery (2007) "Strictly proper scoring rules"; the pinball loss as
used by GEFCom2014 (Hong et al., 2016).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def _pair(actual, forecast) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float)
    f = np.asarray(forecast, dtype=float)
    ok = ~(np.isnan(a) | np.isnan(f))
    return a[ok], f[ok]


def mae(actual, forecast) -> float:
    a, f = _pair(actual, forecast)
    return float(np.mean(np.abs(a - f))) if a.size else float("nan")


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
    if not a.size:
        return float("nan")
    diff = a - f
    return float(np.mean(np.maximum(quantile * diff, (quantile - 1) * diff)))


def mean_pinball(actual, quantiles: Mapping[float, np.ndarray]) -> float:
    """Pinball loss averaged over the given quantile levels."""
    return float(np.mean([pinball(actual, f, q) for q, f in quantiles.items()]))


def crps_from_quantiles(actual, quantiles: Mapping[float, np.ndarray]) -> float:
    """CRPS approximated as twice the mean pinball over the levels (dense grids converge)."""
    return 2.0 * mean_pinball(actual, quantiles)


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
