"""LightGBM quantile regression on a grid of levels, non-crossing, any level on request.

``LGBMQuantileRegressor`` fits one LightGBM booster per level of ``quantiles`` (one thread
each: on 2-core machines several threads per small model are much slower, see
../shared/STACK_NOTES.md). ``predict`` returns the grid sorted per row, so quantiles never
cross. ``contributions`` gives one level's per-feature contributions (LightGBM's
``pred_contrib``, TreeSHAP): a row's contributions plus the bias sum to that level's raw
(unsorted) prediction, ``predict_raw``. ``QuantileBag`` averages several fitted
regressors (a seed bag: each member trained with its own seed and rows), predictions and
contributions alike, so the same identity holds for the bag. ``interpolate_quantiles`` gives any other level: linear in the level inside the grid,
normal-tail extrapolation outside it (the spacing of the two outermost levels fixes the
scale), so 99 percentiles can come from a 7-level grid.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
from scipy.stats import norm
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

# The levels trained by default; other levels are interpolated/extrapolated from them.
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)


def check_quantiles(quantiles) -> tuple[float, ...]:
    qs = tuple(float(q) for q in quantiles)
    if not qs:
        raise ValueError("give at least one quantile level")
    bad = [q for q in qs if not 0.0 < q < 1.0]
    if bad:
        raise ValueError(f"quantile levels must lie strictly between 0 and 1, got {bad}")
    if len(set(qs)) != len(qs):
        raise ValueError(f"quantile levels repeat: {list(qs)}")
    return tuple(sorted(qs))


class LGBMQuantileRegressor(RegressorMixin, BaseEstimator):
    """One LightGBM quantile booster per level; ``predict`` returns shape (n, len(quantiles)).

    Parameters are LightGBM's (``n_estimators``, ``learning_rate``, ``num_leaves``,
    ``min_child_samples``, ``subsample``, ``colsample_bytree``); ``n_jobs`` defaults to 1.
    """

    def __init__(self, quantiles=DEFAULT_QUANTILES, n_estimators: int = 200,
                 learning_rate: float = 0.05, num_leaves: int = 31, min_child_samples: int = 20,
                 subsample: float = 0.8, colsample_bytree: float = 0.8, reg_lambda: float = 0.0,
                 max_bin: int = 63, n_jobs: int = 1, random_state: int = 0):
        self.quantiles = quantiles
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.max_bin = max_bin
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _params(self, alpha: float) -> dict:
        return {"objective": "quantile", "alpha": alpha, "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_child_samples,
                "bagging_fraction": self.subsample,
                "bagging_freq": 1 if self.subsample < 1 else 0,
                "feature_fraction": self.colsample_bytree, "lambda_l2": self.reg_lambda,
                "max_bin": self.max_bin, "force_col_wise": True, "num_threads": self.n_jobs,
                "seed": self.random_state, "verbose": -1}

    def fit(self, X, y, sample_weight=None):
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if X.ndim != 2 or len(X) != len(y):
            raise ValueError(f"X must be 2-D with len(y) rows; got {X.shape} and {y.shape}")
        if np.isnan(y).any():
            raise ValueError("y holds NaN; drop those rows before fitting")
        if len(y) < 2 * self.min_child_samples:
            raise ValueError(f"{len(y)} training rows are too few (need at least "
                             f"{2 * self.min_child_samples})")
        self.quantiles_ = check_quantiles(self.quantiles)
        self.n_features_in_ = X.shape[1]
        # One binned dataset shared by every level's booster.
        weight = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        dataset = lgb.Dataset(X, y, weight=weight, params={"max_bin": self.max_bin,
                                                           "verbose": -1},
                              free_raw_data=False).construct()
        self.boosters_ = [
            lgb.train(self._params(q), dataset, num_boost_round=self.n_estimators)
            for q in self.quantiles_
        ]
        return self

    def _check_X(self, X) -> np.ndarray:
        check_is_fitted(self, "boosters_")
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has shape {X.shape}, the model was fitted on "
                             f"{self.n_features_in_} features")
        return X

    def predict_raw(self, X) -> np.ndarray:
        """Each level's booster output, unsorted, shape (n, len(quantiles))."""
        X = self._check_X(X)
        return np.column_stack([b.predict(X, num_threads=self.n_jobs) for b in self.boosters_])

    def predict(self, X) -> np.ndarray:
        return np.sort(self.predict_raw(X), axis=1)

    def contributions(self, X, quantile: float = 0.5) -> np.ndarray:
        """Per-feature contributions to level ``quantile``'s raw prediction (TreeSHAP,
        LightGBM ``pred_contrib``): shape (n, n_features + 1), the last column the bias
        (expected value); each row sums to that level's column of ``predict_raw(X)``."""
        X = self._check_X(X)
        return self.boosters_[_level_index(self.quantiles_, quantile)].predict(
            X, pred_contrib=True, num_threads=self.n_jobs)

    def feature_importance(self, importance_type: str = "gain") -> np.ndarray:
        """Importance summed over the levels' boosters."""
        check_is_fitted(self, "boosters_")
        return np.sum([b.feature_importance(importance_type) for b in self.boosters_], axis=0)


def _level_index(trained, quantile: float) -> int:
    hit = np.flatnonzero(np.isclose(trained, quantile))
    if not hit.size:
        raise ValueError(f"level {quantile} is not trained; trained levels are {list(trained)}")
    return int(hit[0])


class QuantileBag:
    """The mean of fitted ``LGBMQuantileRegressor`` members on the same levels and features.

    A seed bag: each member is trained with its own seed (row bagging, feature subsampling)
    and, in ``SiteForecaster``, its own training rows; averaging them takes most of the
    seed's noise out of the forecast. Same methods as a single regressor.
    """

    def __init__(self, members):
        members = list(members)
        if not members:
            raise ValueError("a bag needs at least one fitted member")
        for m in members:
            check_is_fitted(m, "boosters_")
        first = members[0]
        if any(m.quantiles_ != first.quantiles_ or m.n_features_in_ != first.n_features_in_
               for m in members):
            raise ValueError("bag members must share levels and features")
        self.members_ = members
        self.quantiles_ = first.quantiles_
        self.n_features_in_ = first.n_features_in_

    def predict_raw(self, X) -> np.ndarray:
        return np.mean([m.predict_raw(X) for m in self.members_], axis=0)

    def predict(self, X) -> np.ndarray:
        return np.sort(self.predict_raw(X), axis=1)

    def contributions(self, X, quantile: float = 0.5) -> np.ndarray:
        return np.mean([m.contributions(X, quantile) for m in self.members_], axis=0)

    def feature_importance(self, importance_type: str = "gain") -> np.ndarray:
        return np.mean([m.feature_importance(importance_type) for m in self.members_], axis=0)


def interpolate_quantiles(values: np.ndarray, grid, requested) -> np.ndarray:
    """Quantiles at ``requested`` levels from sorted predictions at ``grid`` levels.

    ``values`` has shape (n, len(grid)), sorted along rows. Inside the grid: linear in the
    level. Outside: a normal tail whose scale comes from the two outermost grid levels on
    that side. Output is non-crossing, shape (n, len(requested)).
    """
    grid = np.asarray(grid, dtype=float)
    req = np.asarray(check_quantiles(requested), dtype=float)
    values = np.sort(np.asarray(values, dtype=float), axis=1)
    out = np.empty((values.shape[0], len(req)))
    for j, q in enumerate(req):
        hit = np.flatnonzero(np.isclose(grid, q))
        if hit.size:
            out[:, j] = values[:, hit[0]]
        elif grid[0] < q < grid[-1]:
            k = np.searchsorted(grid, q)
            w = (q - grid[k - 1]) / (grid[k] - grid[k - 1])
            out[:, j] = values[:, k - 1] * (1 - w) + values[:, k] * w
        elif len(grid) == 1:
            out[:, j] = values[:, 0]
        else:
            edge, inner = (0, 1) if q < grid[0] else (-1, -2)
            z_edge, z_inner = norm.ppf(grid[edge]), norm.ppf(grid[inner])
            scale = (values[:, edge] - values[:, inner]) / (z_edge - z_inner)
            out[:, j] = values[:, edge] + (norm.ppf(q) - z_edge) * np.maximum(scale, 0)
    return np.sort(out, axis=1)
