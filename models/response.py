"""Response likelihood: will a customer deliver what it committed in a demand-response event?

*Delivered* means ``achievement = actual_kw / target_kw >= threshold`` (the settlement
rule's ``min_achievement_ratio``, default 0.8; ``forecasting.settlement``). Two estimates
per (event, customer) row of ``models.response_features.event_features``:

- ``p_deliver``: the calibrated probability of delivering. A small, regularised LightGBM
  classifier is fitted on the earlier part of the training rows (in order of ``start``)
  and calibrated on the later ``calibration_fraction`` of them, which it never saw:
  isotonic regression when that slice has at least ``isotonic_min_rows`` rows, else Platt
  scaling (a logistic regression on the logit of the raw score) [1, 2]. Calibrating on a
  time-ordered slice measures the booster's over-confidence on *later* events, which is
  what it will face in use.
- ``expected_achievement``: a LightGBM regressor of the achievement (all training rows),
  clipped to [0, ``max_paid_achievement_ratio``] (default 1.2, the paid cap).

The reference method is ``historical_rate``: each customer's delivered share shrunk towards
the portfolio's with a Beta prior of ``prior_strength`` pseudo-events [3].

References
----------
[1] J. Platt (1999), Probabilistic outputs for support vector machines and comparisons to
    regularized likelihood methods.
[2] B. Zadrozny, C. Elkan (2002), Transforming classifier scores into accurate multiclass
    probability estimates, KDD.
[3] A. Gelman et al., Bayesian Data Analysis (3rd ed.), ch. 2.4 and 5.3 (beta-binomial).
"""

from __future__ import annotations

import logging
import math

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from forecasting.errors import DataError, InsufficientDataError, MissingColumnsError
from forecasting.settlement import SettlementRule
from models.response_features import META_COLUMNS, achievement

log = logging.getLogger(__name__)

PROBABILITY_FLOOR = 1e-3  # p_deliver is kept in [floor, 1 - floor]: no certainty from data
OUTPUT_COLUMNS = ("p_deliver", "expected_achievement")


class NoLabelsError(InsufficientDataError):
    """No event row has a settled ``actual_kw``: there is nothing to learn from."""


class SingleClassError(InsufficientDataError):
    """Every labelled row delivered, or none did: a classifier cannot be fitted."""


class ResponseLikelihood(BaseEstimator):
    """Calibrated probability of delivering, and expected achievement (see module doc).

    Parameters
    ----------
    threshold : achievement counted as delivered (settlement ``min_achievement_ratio``).
    max_paid_achievement_ratio : upper clip of ``expected_achievement`` (paid cap).
    calibration_fraction : latest share of the training rows (by ``start``) held out from
        the classifier to calibrate it.
    isotonic_min_rows : isotonic calibration from this many calibration rows, else Platt.
    min_labelled_events : fewer labelled rows than this are refused.
    n_estimators, learning_rate, num_leaves, max_depth, min_child_samples, reg_lambda,
    subsample, colsample_bytree : LightGBM settings (small trees, strong regularisation:
        a few hundred rows are typical).
    random_state : seed of LightGBM's row and column sampling.
    """

    def __init__(self, threshold: float = 0.8, max_paid_achievement_ratio: float = 1.2,
                 calibration_fraction: float = 0.25, isotonic_min_rows: int = 200,
                 min_labelled_events: int = 40, n_estimators: int = 200,
                 learning_rate: float = 0.03, num_leaves: int = 7, max_depth: int = 3,
                 min_child_samples: int = 15, reg_lambda: float = 5.0, subsample: float = 0.8,
                 colsample_bytree: float = 0.8, random_state: int = 0):
        self.threshold = threshold
        self.max_paid_achievement_ratio = max_paid_achievement_ratio
        self.calibration_fraction = calibration_fraction
        self.isotonic_min_rows = isotonic_min_rows
        self.min_labelled_events = min_labelled_events
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.max_depth = max_depth
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.random_state = random_state

    def _lgb_params(self) -> dict:
        return {"n_estimators": self.n_estimators, "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves, "max_depth": self.max_depth,
                "min_child_samples": self.min_child_samples, "reg_lambda": self.reg_lambda,
                "subsample": self.subsample, "subsample_freq": 1,
                "colsample_bytree": self.colsample_bytree, "random_state": self.random_state,
                "n_jobs": 1, "verbose": -1}

    def fit(self, X: pd.DataFrame, y) -> ResponseLikelihood:
        """Fit on feature rows ``X`` and their achievement ``y`` (actual_kw / target_kw).

        ``X``: numeric feature columns (``event_features`` output; ``notice_time``/``start``
        are used only to order the rows in time, ``start`` first). ``y``: achievement per row
        (array or Series aligned by position), NaN where unsettled (those rows are dropped).

        Sets ``training_window_``: the (first, last) ``start`` (else ``notice_time``) of the
        labelled rows fitted, UTC; None when ``X`` has neither column.
        """
        if not 0 < self.calibration_fraction < 1:
            raise ValueError(f"calibration_fraction {self.calibration_fraction} must lie in "
                             "(0, 1)")
        if not isinstance(X, pd.DataFrame):
            raise TypeError("X must be a DataFrame of feature columns "
                            "(models.response_features.event_features)")
        y = np.asarray(y, dtype="float64")
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        labelled = np.isfinite(y)
        n = int(labelled.sum())
        if n == 0:
            raise NoLabelsError(
                f"none of the {len(y)} event rows has a settled actual_kw; the response "
                "likelihood learns from settled events (events.csv column actual_kw)")
        if n < self.min_labelled_events:
            raise InsufficientDataError(
                f"only {n} labelled event rows (customer x event with actual_kw); at least "
                f"{self.min_labelled_events} are needed to fit and calibrate a model; until "
                "then use models.response.historical_rate")
        delivered = y[labelled] >= self.threshold
        if delivered.all() or not delivered.any():
            which = "delivered" if delivered.all() else "missed"
            raise SingleClassError(
                f"all {n} labelled event rows {which} the threshold (achievement >= "
                f"{self.threshold:g}): a single class in the labels, nothing to discriminate; "
                "use models.response.historical_rate (the Beta-shrunk delivered rate) instead")
        self.feature_names_in_ = feature_columns(X)
        self.n_features_in_ = len(self.feature_names_in_)
        rows = X.loc[labelled, list(self.feature_names_in_)].astype("float64")
        order = _time_order(X.loc[labelled])
        self.training_window_ = _time_window(X.loc[labelled])
        rows, ach, delivered = rows.iloc[order], y[labelled][order], delivered[order]
        n_cal = max(1, math.ceil(self.calibration_fraction * n))
        fit_rows, cal_rows = rows.iloc[: n - n_cal], rows.iloc[n - n_cal:]
        fit_y, cal_y = delivered[: n - n_cal], delivered[n - n_cal:]
        if fit_y.all() or not fit_y.any():
            raise SingleClassError(
                f"the earliest {n - n_cal} labelled rows (before the calibration slice) are "
                "all of one class; give more history or use models.response.historical_rate")
        self.classifier_ = lgb.LGBMClassifier(**self._lgb_params()).fit(fit_rows, fit_y)
        raw = self.classifier_.predict_proba(cal_rows)[:, 1]
        self.n_fit_rows_, self.n_calibration_rows_ = len(fit_rows), len(cal_rows)
        if cal_y.all() or not cal_y.any():
            log.warning("calibration slice of %d rows has one class only; p_deliver is the "
                        "uncalibrated classifier score", len(cal_rows))
            self.calibration_, self.calibrator_ = "none", None
        elif len(cal_rows) >= self.isotonic_min_rows:
            self.calibration_ = "isotonic"
            self.calibrator_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip"
                                                  ).fit(raw, cal_y.astype(float))
        else:
            self.calibration_ = "sigmoid"
            self.calibrator_ = LogisticRegression(C=1e4).fit(_logit(raw)[:, None], cal_y)
        self.regressor_ = lgb.LGBMRegressor(**self._lgb_params()).fit(rows, ach)
        self.base_rate_ = float(delivered.mean())
        return self

    def _raw(self, X: pd.DataFrame) -> pd.DataFrame:
        check_is_fitted(self, "classifier_")
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise MissingColumnsError(f"feature rows lack {', '.join(missing)}; build them with "
                                      "models.response_features.event_features", missing)
        return X[list(self.feature_names_in_)].astype("float64")

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated [P(missed), P(delivered)] per row (sklearn convention)."""
        rows = self._raw(X)
        raw = self.classifier_.predict_proba(rows)[:, 1]
        if self.calibration_ == "isotonic":
            p = self.calibrator_.predict(raw)
        elif self.calibration_ == "sigmoid":
            p = self.calibrator_.predict_proba(_logit(raw)[:, None])[:, 1]
        else:
            p = raw
        p = np.clip(p, PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
        return np.column_stack([1 - p, p])

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """``p_deliver`` (calibrated probability) and ``expected_achievement`` (clipped to
        [0, max_paid_achievement_ratio]) per row of ``X``, same index."""
        p = self.predict_proba(X)[:, 1]
        expected = np.clip(self.regressor_.predict(self._raw(X)), 0.0,
                           self.max_paid_achievement_ratio)
        return pd.DataFrame({"p_deliver": p, "expected_achievement": expected}, index=X.index)

    def feature_importances(self) -> pd.Series:
        """Gain of each feature in the classifier, as a share of the total, descending."""
        check_is_fitted(self, "classifier_")
        gain = pd.Series(self.classifier_.booster_.feature_importance("gain"),
                         index=list(self.feature_names_in_), dtype="float64")
        total = gain.sum()
        return (gain / total if total > 0 else gain).sort_values(ascending=False)


def feature_columns(X: pd.DataFrame) -> tuple[str, ...]:
    """Numeric columns of ``X`` other than the time-ordering ``META_COLUMNS``."""
    cols = tuple(str(c) for c in X.columns
                 if c not in META_COLUMNS and pd.api.types.is_numeric_dtype(X[c]))
    if not cols:
        raise DataError("X has no numeric feature column; build the rows with "
                        "models.response_features.event_features")
    return cols


def _time_order(X: pd.DataFrame) -> np.ndarray:
    for col in ("start", "notice_time"):
        if col in X.columns:
            return np.argsort(pd.to_datetime(X[col]).to_numpy(dtype="datetime64[ns]"),
                              kind="stable")
    return np.arange(len(X))


def _time_window(X: pd.DataFrame) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    for col in ("start", "notice_time"):
        if col in X.columns:
            times = pd.to_datetime(X[col], utc=True)
            return times.min(), times.max()
    return None


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def historical_rate(events: pd.DataFrame, rule: SettlementRule | None = None,
                    prior_strength: float = 5.0, customers=None) -> pd.DataFrame:
    """Each customer's delivered rate shrunk to the portfolio's (the reference method).

    With ``k`` delivered of ``n`` settled events for a customer and the portfolio-wide rate
    ``p0 = K / N``, the posterior mean under a Beta(``m p0``, ``m (1 - p0)``) prior of
    strength ``m = prior_strength`` pseudo-events is ``(k + m p0) / (n + m)`` [3]. The mean
    achievement is shrunk the same way towards the portfolio's mean achievement, then
    clipped to [0, the rule's paid cap].

    Returns a frame indexed by ``customer_id`` (all customers with settled events, plus any
    in ``customers``; unknown ones get the portfolio values): ``n_events``,
    ``n_delivered``, ``delivered_rate`` (raw), ``p_deliver`` (shrunk),
    ``expected_achievement``; ``attrs['portfolio_rate']`` holds ``p0``.
    """
    rule = rule or SettlementRule()
    if prior_strength < 0:
        raise ValueError(f"prior_strength {prior_strength} must be >= 0 pseudo-events")
    ach = achievement(events)
    ach = ach[np.isfinite(ach.to_numpy())]
    if ach.empty:
        raise NoLabelsError("no event has a settled actual_kw (events.csv); the historical "
                            "rate needs settled events")
    frame = pd.DataFrame({"customer_id": ach.index.get_level_values("customer_id"),
                          "achievement": ach.to_numpy()})
    frame["delivered"] = frame["achievement"] >= rule.min_achievement_ratio
    p0 = float(frame["delivered"].mean())
    a0 = float(frame["achievement"].mean())
    g = frame.groupby("customer_id")
    out = pd.DataFrame({"n_events": g.size(), "n_delivered": g["delivered"].sum(),
                        "sum_achievement": g["achievement"].sum()})
    if customers is not None:
        out = out.reindex(sorted(set(out.index) | {str(c) for c in customers}), fill_value=0)
    m = float(prior_strength)
    n = out["n_events"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["delivered_rate"] = np.where(n > 0, out["n_delivered"] / n, np.nan)
        out["p_deliver"] = np.where(n + m > 0, (out["n_delivered"] + m * p0) / (n + m), p0)
        expected = np.where(n + m > 0, (out["sum_achievement"] + m * a0) / (n + m), a0)
    out["expected_achievement"] = np.clip(expected, 0.0, rule.max_paid_achievement_ratio)
    out = out.drop(columns="sum_achievement")
    out.index.name = "customer_id"
    out.attrs["portfolio_rate"] = p0
    out.attrs["portfolio_mean_achievement"] = a0
    return out
