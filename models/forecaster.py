"""Probabilistic site forecaster: horizon buckets of LightGBM quantile models.

``SiteForecaster(kind=...)`` serves load, PV and wind. For each horizon bucket (lead-time
range, e.g. intraday up to 6 h and day-ahead to D+2) it trains one
``LGBMQuantileRegressor`` on rows (target ``t``, issue ``T = t - lead``) with the lead drawn
uniformly inside the bucket, features from ``forecasting.features`` (leak-free per row).

Calibration (``calibration_days > 0``): a first fit leaves out the last days of history,
its errors there give a normalised conformal correction per level
(Romano et al. 2019, "Conformalized quantile regression"; scale = the outermost
predicted spread), then the model is refitted on all history and corrected.

PV and wind forecasts are clipped to [0, capacity]; PV is 0 at night by construction.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from forecasting.errors import InsufficientDataError
from forecasting.features import FeatureSpec, build_features
from forecasting.portfolio import SiteData, as_utc
from models.quantile import (
    DEFAULT_QUANTILES,
    LGBMQuantileRegressor,
    check_quantiles,
    interpolate_quantiles,
)

log = logging.getLogger(__name__)

# (name, shortest lead, longest lead) in minutes. Day-ahead reaches D+2 issued at 00:00.
DEFAULT_BUCKETS = (("intraday", 0, 360), ("day_ahead", 360, 4320))
MIN_TRAINING_ROWS = 96 * 7


class SiteForecaster(BaseEstimator):
    """Quantile forecaster of one site's power (kW) from its history, weather and prices."""

    def __init__(self, kind: str = "load", quantiles=DEFAULT_QUANTILES, buckets=DEFAULT_BUCKETS,
                 feature_spec: FeatureSpec | None = None, n_estimators: int = 200,
                 learning_rate: float = 0.05, num_leaves: int = 31, min_child_samples: int = 20,
                 calibration_days: float = 14.0, max_training_days: float | None = 730,
                 random_state: int = 0):
        self.kind = kind
        self.quantiles = quantiles
        self.buckets = buckets
        self.feature_spec = feature_spec
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.calibration_days = calibration_days
        self.max_training_days = max_training_days
        self.random_state = random_state

    # ----------------------------------------------------------------- training
    def _training_rows(self, data: SiteData, bucket, rng) -> tuple[pd.DataFrame, np.ndarray]:
        _, lo, hi = bucket
        res = data.site.resolution_minutes
        targets = data.values_kw.index
        steps = rng.integers(max(lo // res, 0), hi // res + 1, size=len(targets))
        leads = pd.to_timedelta(np.maximum(steps, 0) * res, unit="m")
        X = build_features(data, targets, targets - leads, self.spec_)
        return X, data.values_kw.to_numpy(dtype=float)

    def _fit_buckets(self, data: SiteData) -> dict[str, LGBMQuantileRegressor]:
        rng = np.random.default_rng(self.random_state)
        models = {}
        for bucket in self.buckets_:
            X, y = self._training_rows(data, bucket, rng)
            if self.feature_names_ is None:
                self.feature_names_ = list(X.columns)
            model = LGBMQuantileRegressor(
                quantiles=self.quantiles_, n_estimators=self.n_estimators,
                learning_rate=self.learning_rate, num_leaves=self.num_leaves,
                min_child_samples=self.min_child_samples, random_state=self.random_state)
            models[bucket[0]] = model.fit(X[self.feature_names_].to_numpy(dtype=float), y)
        return models

    def fit(self, data: SiteData) -> SiteForecaster:
        """Fit on all measurements in ``data`` (cut it with ``data.before(train_end)`` first)."""
        self.quantiles_ = check_quantiles(self.quantiles)
        self.buckets_ = tuple(tuple(b) for b in self.buckets)
        if self.kind not in ("load", "pv", "wind"):
            raise ValueError(f"unknown kind {self.kind!r}, expected one of load, pv, wind")
        if data.site.kind != self.kind:
            raise ValueError(f"site {data.site.site_id} is of kind {data.site.kind!r}, "
                             f"this forecaster of {self.kind!r}")
        self.spec_ = self.feature_spec or FeatureSpec()
        if self.max_training_days:
            start = data.values_kw.index.max() - pd.Timedelta(days=self.max_training_days)
            data = replace(data, values_kw=data.values_kw[data.values_kw.index >= start])
        if len(data.values_kw) < MIN_TRAINING_ROWS:
            raise InsufficientDataError(
                f"site {data.site.site_id}: {len(data.values_kw)} measurements before the "
                f"training end; need at least {MIN_TRAINING_ROWS} (about a week at 15 minutes)")
        self.site_ = data.site
        self.feature_names_ = None
        self.corrections_ = np.zeros(len(self.quantiles_))
        if self.calibration_days:
            self.corrections_ = self._conformal_corrections(data)
        self.models_ = self._fit_buckets(data)
        self.training_window_ = (data.values_kw.index.min(), data.values_kw.index.max())
        return self

    def _conformal_corrections(self, data: SiteData) -> np.ndarray:
        cut = data.values_kw.index.max() - pd.Timedelta(days=self.calibration_days)
        early = replace(data, values_kw=data.values_kw[data.values_kw.index < cut])
        if len(early.values_kw) < MIN_TRAINING_ROWS:
            log.info("site %s: too little history to calibrate; no conformal correction",
                     data.site.site_id)
            return np.zeros(len(self.quantiles_))
        self.models_ = self._fit_buckets(early)
        rng = np.random.default_rng(self.random_state + 1)
        late = data.values_kw.index >= cut
        scores = []
        for bucket in self.buckets_:
            X, y = self._training_rows(data, bucket, rng)
            pred = self._predict_grid(X[late], np.zeros(len(self.quantiles_)))
            scores.append(self._normalised_residuals(y[late], pred))
        s = np.vstack(scores)
        corr = np.array([np.nanquantile(s[:, j], q) if np.isfinite(s[:, j]).any() else 0.0
                         for j, q in enumerate(self.quantiles_)])
        log.info("site %s: conformal corrections (x spread) %s", data.site.site_id,
                 np.round(corr, 3).tolist())
        return corr

    def _scale(self, pred: np.ndarray) -> np.ndarray:
        spread = pred[:, -1] - pred[:, 0] if pred.shape[1] > 1 else np.abs(pred[:, 0])
        floor = 0.01 * (self.site_.capacity_kw or np.nanmean(np.abs(pred)) or 1.0)
        return np.maximum(spread, floor)

    def _normalised_residuals(self, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
        return (y[:, None] - pred) / self._scale(pred)[:, None]

    # --------------------------------------------------------------- prediction
    def _bucket_of(self, lead_minutes: np.ndarray) -> np.ndarray:
        names = np.array([b[0] for b in self.buckets_], dtype=object)
        his = np.array([b[2] for b in self.buckets_], dtype=float)
        idx = np.searchsorted(his, lead_minutes, side="left").clip(0, len(his) - 1)
        return names[idx]

    def _predict_grid(self, X: pd.DataFrame, corrections: np.ndarray) -> np.ndarray:
        pred = np.full((len(X), len(self.quantiles_)), np.nan)
        buckets = self._bucket_of(X["lead_minutes"].to_numpy(dtype=float))
        values = X[self.feature_names_].to_numpy(dtype=float)
        for name, model in self.models_.items():
            rows = buckets == name
            if rows.any():
                pred[rows] = model.predict(values[rows])
        pred = pred + corrections[None, :] * self._scale(pred)[:, None]
        return self._bound(np.sort(pred, axis=1), X)

    def _bound(self, pred: np.ndarray, X: pd.DataFrame) -> np.ndarray:
        if self.kind in ("pv", "wind"):
            pred = np.clip(pred, 0.0, self.site_.capacity_kw)
        if self.kind == "pv" and "pv_is_night" in X:
            pred[X["pv_is_night"].to_numpy(dtype=float) > 0.5] = 0.0
        return pred

    def predict_features(self, X: pd.DataFrame, quantiles=None) -> pd.DataFrame:
        """Quantile forecasts for ready-built feature rows (columns ``q<level>``)."""
        check_is_fitted(self, "models_")
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise ValueError(f"feature rows lack {missing}")
        grid = self._predict_grid(X, self.corrections_)
        levels = check_quantiles(quantiles) if quantiles is not None else self.quantiles_
        values = interpolate_quantiles(grid, self.quantiles_, levels)
        values = self._bound(values, X)
        return pd.DataFrame(values, index=X.index, columns=[quantile_column(q) for q in levels])

    def forecast(self, data: SiteData, issue_time, timestamps: pd.DatetimeIndex,
                 quantiles=None) -> pd.DataFrame:
        """Forecast ``timestamps`` as known at ``issue_time`` (data after it is ignored)."""
        check_is_fitted(self, "models_")
        issue = as_utc(issue_time, "issue_time")
        known = data.known_at(issue)
        targets = pd.DatetimeIndex(timestamps).tz_convert("UTC")
        X = build_features(known, targets, pd.DatetimeIndex([issue] * len(targets)), self.spec_)
        return self.predict_features(X, quantiles)

    def feature_importances(self) -> pd.Series:
        """Gain importance summed over buckets and levels, normalised to 1."""
        check_is_fitted(self, "models_")
        total = sum(m.feature_importance("gain") for m in self.models_.values())
        s = pd.Series(total, index=self.feature_names_).sort_values(ascending=False)
        return s / s.sum() if s.sum() else s


def quantile_column(q: float) -> str:
    """Output column of a level, written as requested: 0.1 -> ``q0.1``, 0.05 -> ``q0.05``."""
    return f"q{float(q):g}"
