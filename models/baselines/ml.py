"""ML counterfactual baseline: LightGBM with weather, calendar and the customer's recent level.

``MLBaseline`` learns a customer's load on *non-event* days from features known before an
event (plus the weather, which a response cannot change) and predicts the event window:
``baseline_kw`` from a least-squares booster (the conditional mean, so that summed over
many events the baseline is unbiased, which a median is not for skewed household load) and
a band ``baseline_p10_kw``/``baseline_p90_kw`` from ``models.quantile.LGBMQuantileRegressor``.

The pieces, one idea per module:

- ``ml_customer``: what the model keeps of a customer (``_Customer``: day matrix, pools,
  event days, temperature, scale) and the recent-level statistics (``_level_features``);
- ``ml_features``: the feature rows, declared by ``FeatureSpec`` / ``feature_names``
  (calendar, weather, recent level, day of the event, customer; see that module's doc).
  Only days before the event day are used, and at prediction every reading is masked
  unless its interval ended by the event start: no leakage;
- ``ml_day_of``: the day-of features, known at the reference time ``ref = notice - gap``
  (training rows draw the lead log-uniformly between ``adjustment_gap_minutes`` and
  ``day_of_max_lead_hours``, so that the model learns how fast that information decays),
  and the capped day-of adjustment of a prediction;
- ``ml_training``: customer checks, training rows and the boosters;
- this module: the estimator (parameters, ``fit``, ``predict``, ``with_history``).

A customer whose training load was never negative (no net infeed) gets no negative baseline.

The target is ``(load - similar-day level) / scale`` (``target='residual'``, a learned
correction of the similar-days baseline) or ``load / scale`` (``'scaled'``), so that one
pooled model serves customers of any size;
``strategy`` picks ``pooled`` (one model for all, helps customers with little history),
``per_customer`` or ``auto`` (own model where at least ``min_days_own_model`` days of
history exist, the pooled model for the others). An optional capped day-of adjustment
(``adjustment``) rescales the prediction with the hours before the notice, as in
``XofYBaseline``.

A fitted model is read-only for callers: ``with_history`` gives a copy that knows newer
readings (for a model shared between concurrent requests); nothing public mutates it.

References: Ke et al. (2017) "LightGBM"; LBNL (Mathieu, Price, Kiliccote, Piette 2011)
"Quantifying changes in building electricity use, with application to demand response";
CalTRACK 2.0 methods (hourly model: time-of-week and temperature) for the weather part.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from forecasting.errors import DataError, InsufficientDataError, UnknownSiteError
from models.baselines.common import (
    BaselineDetails,
    BaselineEstimator,
    DayMatrix,
    check_load,
    check_window,
    to_local_dates,
    window_index,
)
from models.baselines.ml_customer import (  # noqa: F401  (re-exported: pickled models, callers)
    POOL_CODE,
    _Customer,
    _event_rows,
    _level_features,
    pool_codes,
    temperature_series,
)
from models.baselines.ml_day_of import day_of_adjustment
from models.baselines.ml_features import (  # noqa: F401  (re-exported)
    CALENDAR_FEATURES,
    CUSTOMER_FEATURES,
    DAY_OF_FEATURES,
    LEVEL_FEATURES,
    WEATHER_FEATURES,
    WEATHER_LEVEL_FEATURES,
    FeatureSpec,
    feature_names,
    feature_rows,
)
from models.baselines.ml_training import fit_boosters, training_customer, training_rows
from models.baselines.rules import ADJUSTMENTS
from models.quantile import check_quantiles

TARGETS = ("residual", "scaled")
STRATEGIES = ("pooled", "per_customer", "auto")
SINGLE = "customer"


class MLBaseline(BaselineEstimator):
    """LightGBM counterfactual baseline with a P10-P90 band (see the module doc).

    Parameters
    ----------
    quantiles : levels of the band (0.1, 0.9).
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM settings shared by
        the mean and the quantile boosters (one thread each).
    use_recent_level : offer the recent-level features (True). Off for long-horizon M&V
        (a reporting year after a retrofit), where the recent level would hold the saving.
    use_day_of : offer the day-of features (True); they use readings up to
        ``notice - adjustment_gap_minutes`` only. Off for long-horizon M&V.
    day_of_max_lead_hours : longest lead drawn for the day-of features in training (30);
        leads are drawn log-uniformly, so short leads (real-time events) are dense.
    target : ``'residual'`` (default): the model learns ``(load - similar-day level) / scale``,
        a correction of the similar-days baseline, which keeps the resolution of the trees
        for very steady customers; ``'scaled'``: ``load / scale`` (needed without the recent
        level, e.g. for long-horizon M&V).
    similar_days, recent_days, lookback_days : window of the level features (5, 7, 45 days).
    strategy : ``pooled``, ``per_customer`` or ``auto`` (see module doc).
    min_days_own_model : history (days) for an own model under ``auto`` (180).
    adjustment, adjustment_cap : optional capped day-of adjustment of the prediction, as in
        ``XofYBaseline`` (default None: off).
    adjustment_window_minutes, adjustment_gap_minutes : the window before the notice used by
        the day-of features and the adjustment (180 min ending 60 min before the notice).
    max_training_days : history used for training, counted back from the training end (365).
    min_training_days : fewest days with non-event readings before the training end that a
        customer needs (14: two weeks give the similar-day level its five working days).
    max_training_rows : random subsample of training rows above this (300,000).
    random_state : seed of LightGBM's bagging and the subsample.
    """

    method = "ml"

    def __init__(self, quantiles=(0.1, 0.9), n_estimators: int = 300,
                 learning_rate: float = 0.05, num_leaves: int = 31,
                 min_child_samples: int = 50, use_recent_level: bool = True,
                 use_day_of: bool = True, day_of_max_lead_hours: float = 30.0,
                 target: str = "residual",
                 similar_days: int = 5, recent_days: int = 7, lookback_days: int = 45,
                 strategy: str = "pooled", min_days_own_model: int = 180,
                 adjustment: str | None = None, adjustment_cap: float | None = 0.2,
                 adjustment_window_minutes: int = 180, adjustment_gap_minutes: int = 60,
                 max_training_days: int | None = 365, max_training_rows: int = 300_000,
                 min_training_days: int = 14, random_state: int = 0):
        self.quantiles = quantiles
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.use_recent_level = use_recent_level
        self.use_day_of = use_day_of
        self.target = target
        self.day_of_max_lead_hours = day_of_max_lead_hours
        self.similar_days = similar_days
        self.recent_days = recent_days
        self.lookback_days = lookback_days
        self.strategy = strategy
        self.min_days_own_model = min_days_own_model
        self.adjustment = adjustment
        self.adjustment_cap = adjustment_cap
        self.adjustment_window_minutes = adjustment_window_minutes
        self.adjustment_gap_minutes = adjustment_gap_minutes
        self.max_training_days = max_training_days
        self.max_training_rows = max_training_rows
        self.min_training_days = min_training_days
        self.random_state = random_state

    # -- configuration ---------------------------------------------------------------------
    def _validate_params(self) -> None:
        check_quantiles(self.quantiles)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}, expected one of "
                             f"{list(STRATEGIES)}")
        if self.adjustment not in ADJUSTMENTS:
            raise ValueError(f"unknown adjustment {self.adjustment!r}, expected one of "
                             f"{list(ADJUSTMENTS)}")
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}, expected one of {list(TARGETS)}")
        if self.target == "residual" and not self.use_recent_level:
            raise ValueError("target='residual' corrects the similar-day level, which needs "
                             "use_recent_level=True; use target='scaled'")
        for name in ("similar_days", "recent_days", "lookback_days", "n_estimators",
                     "min_child_samples", "max_training_rows"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature columns in model order, derived from the configuration."""
        return feature_names(self.use_recent_level, self.use_day_of)

    def _spec(self) -> FeatureSpec:
        """The feature settings of this fitted model."""
        return FeatureSpec(self.timezone_, self.holiday_country_, self.resolution_,
                           self.use_recent_level, self.use_day_of, self.similar_days,
                           self.recent_days, self.lookback_days,
                           self.adjustment_window_minutes)

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, load_kw: pd.Series | Mapping[str, pd.Series], *, timezone: str,
            holiday_country: str | None = None,
            event_days: Iterable | Mapping[str, Iterable] = (),
            weather: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
            customer_id: str | None = None, train_end=None):
        """Fit on the non-event days before ``train_end`` (default: all history).

        ``load_kw`` is one customer's series or a mapping customer id -> series (pooled);
        ``event_days`` and ``weather`` are then mappings too (weather: a frame with
        ``temp_air_c``, see ``temperature_series``). The full history is kept for the
        recent-level features of later predictions (masked at each event start).

        Sets ``training_window_``: the (first, last) timestamp (interval start, UTC) of the
        readings eligible for training (non-event, before ``train_end``, within
        ``max_training_days``), over all customers; ``n_training_rows_``: the rows fitted.
        """
        self._validate_params()
        loads = dict(load_kw) if isinstance(load_kw, Mapping) else {customer_id or SINGLE:
                                                                     load_kw}
        if not loads:
            raise DataError("no customer load given")
        events = (event_days if isinstance(event_days, Mapping)
                  else {c: event_days for c in loads})
        weathers = weather if isinstance(weather, Mapping) else {c: weather for c in loads}
        self.timezone_ = timezone
        self.holiday_country_ = holiday_country
        self.customers_: dict[str, _Customer] = {}
        resolutions = set()
        end = None if train_end is None else pd.Timestamp(train_end)
        for code, (cid, series) in enumerate(sorted(loads.items())):
            load, res = check_load(series, f"load of customer {cid}")
            resolutions.add(res)
            self.customers_[cid] = training_customer(
                code, cid, load, res, events.get(cid, ()), weathers.get(cid), end,
                timezone=self.timezone_, holiday_country=self.holiday_country_,
                max_training_days=self.max_training_days,
                min_training_days=self.min_training_days)
        if len(resolutions) > 1:
            raise DataError(f"customers have different resolutions {sorted(resolutions)}; "
                            "fit one MLBaseline per resolution")
        self.resolution_ = resolutions.pop()
        self.train_end_ = end
        X, y, owners, self.training_window_ = training_rows(
            self._spec(), self.customers_, end, target=self.target,
            random_state=self.random_state, max_training_days=self.max_training_days,
            max_training_rows=self.max_training_rows,
            adjustment_gap_minutes=self.adjustment_gap_minutes,
            day_of_max_lead_hours=self.day_of_max_lead_hours)
        self.n_training_rows_ = len(y)
        self.models_: dict[str, tuple] = {}
        self.model_of_: dict[str, str] = {}
        pooled_needed = self.strategy == "pooled" or len(self.customers_) == 1
        if not pooled_needed:
            for cid, cust in self.customers_.items():
                own = self.strategy == "per_customer" or cust.n_days >= self.min_days_own_model
                if own:
                    mask = owners == cid
                    self.models_[cid] = self._fit_boosters(X[mask], y[mask], cid)
                    self.model_of_[cid] = cid
                else:
                    pooled_needed = True
        if pooled_needed:
            self.models_["pooled"] = self._fit_boosters(X, y, "pooled")
            for cid in self.customers_:
                self.model_of_.setdefault(cid, "pooled")
        return self

    def _fit_boosters(self, X, y, label):
        return fit_boosters(X, y, label, quantiles=self.quantiles,
                            n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                            num_leaves=self.num_leaves,
                            min_child_samples=self.min_child_samples,
                            random_state=self.random_state)

    # -- prediction ------------------------------------------------------------------------
    def _customer_of(self, customer_id: str | None) -> tuple[str, _Customer]:
        check_is_fitted(self, "models_")
        if customer_id is None:
            if len(self.customers_) != 1:
                raise DataError("this ML baseline was fitted on several customers; pass "
                                "customer_id")
            customer_id = next(iter(self.customers_))
        if customer_id not in self.customers_:
            known = sorted(self.customers_)
            raise UnknownSiteError(f"customer {customer_id!r} is not known to this ML "
                                   f"baseline; known: {', '.join(known[:10])}"
                                   f"{' ...' if len(known) > 10 else ''}")
        return customer_id, self.customers_[customer_id]

    def _raw(self, cid: str, cust: _Customer, index: pd.DatetimeIndex, cutoff: pd.Timestamp,
             notice: pd.Timestamp | None = None) -> np.ndarray:
        """Baseline, P10 and P90 (kW) of ``index``, columns in that order, unadjusted."""
        ref = (notice if notice is not None else cutoff) - pd.Timedelta(
            minutes=self.adjustment_gap_minutes)
        X = feature_rows(self._spec(), cust, index, None, cutoff, refs_ns=np.int64(ref.value))
        mean, band = self.models_[self.model_of_[cid]]
        mu = mean.predict(X, num_threads=1)
        qs = band.predict(X)
        if self.target == "residual":
            ref = X[:, self.feature_names.index("lvl_similar_days_rel")]
            if np.isnan(ref).any():
                raise InsufficientDataError(
                    f"customer {cid}: no similar-day history for {int(np.isnan(ref).sum())} "
                    f"interval(s) from {index[np.isnan(ref)][0]} (the residual ML baseline "
                    "corrects the similar-day level); use a rule baseline or more history")
            mu = mu + ref
            qs = qs + ref[:, None]
        lo = np.minimum(qs[:, 0], mu)
        hi = np.maximum(qs[:, -1], mu)
        out = np.column_stack([mu, lo, hi]) * cust.scale_kw
        # a customer that never fed in during training gets no negative baseline
        return np.maximum(out, 0.0) if cust.nonnegative else out

    def predict(self, start, end, notice_time=None, customer_id: str | None = None
                ) -> pd.DataFrame:
        """Baseline (``baseline_kw``) and band (``baseline_p10_kw``, ``baseline_p90_kw``)."""
        return self.predict_details(start, end, notice_time, customer_id).frame

    def predict_details(self, start, end, notice_time=None, customer_id: str | None = None
                        ) -> BaselineDetails:
        cid, cust = self._customer_of(customer_id)
        s, e, n = check_window(start, end, notice_time)
        index = window_index(s, e, self.resolution_)
        raw = self._raw(cid, cust, index, s, n)
        factor = None
        notes = [f"model {self.model_of_[cid]}"]
        if self.adjustment is not None:
            factor = day_of_adjustment(
                self._spec(), cid, cust, n, kind=self.adjustment, cap=self.adjustment_cap,
                gap_minutes=self.adjustment_gap_minutes,
                modelled_kw=lambda idx, notice: self._raw(cid, cust, idx, s, notice)[:, 0])
            if self.adjustment == "multiplicative":
                raw = raw * factor
            else:
                raw = raw + factor
        frame = pd.DataFrame(raw, index=index,
                             columns=["baseline_kw", "baseline_p10_kw", "baseline_p90_kw"])
        return BaselineDetails(frame, self.method, (), factor, self.adjustment, tuple(notes))

    # -- newer readings, on a copy ---------------------------------------------------------
    def with_history(self, load_kw: pd.Series | Mapping[str, pd.Series],
                     event_days: Iterable | Mapping[str, Iterable] = (),
                     weather: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None
                     ) -> MLBaseline:
        """A copy that knows this history (for the level and day-of features), leaving this
        model as it was: for a model shared between concurrent requests, e.g. one loaded
        from the registry and given the readings up to now. The boosters are shared,
        read-only; the per-customer history is the copy's own. Customers must be known to
        the model; scale and code stay those of training."""
        view = copy.copy(self)
        view.customers_ = dict(self.customers_)
        return view._set_history(load_kw, event_days, weather)

    def _set_history(self, load_kw, event_days=(), weather=None) -> MLBaseline:
        """Replace the customers' history in place (only on a fresh copy: ``with_history``)."""
        check_is_fitted(self, "models_")
        loads = dict(load_kw) if isinstance(load_kw, Mapping) else {
            next(iter(self.customers_)): load_kw}
        events = event_days if isinstance(event_days, Mapping) else {c: event_days
                                                                     for c in loads}
        weathers = weather if isinstance(weather, Mapping) else {c: weather for c in loads}
        for cid, series in loads.items():
            _, old = self._customer_of(cid)
            load, res = check_load(series, f"load of customer {cid}")
            if res != self.resolution_:
                raise DataError(f"customer {cid}: resolution {res} differs from the model's "
                                f"{self.resolution_}")
            days = to_local_dates(events.get(cid, ()))
            m = DayMatrix.build(load, res, self.timezone_)
            temp = temperature_series(weathers.get(cid), f"weather of customer {cid}")
            self.customers_[cid] = _Customer(old.code, m, pool_codes(m, self.holiday_country_),
                                             _event_rows(m, days), days,
                                             temp if temp is not None else old.temperature,
                                             old.scale_kw, old.n_days, old.nonnegative)
        return self

    def feature_importances(self) -> pd.Series:
        """Gain of the mean booster(s), summed over models, by feature name."""
        check_is_fitted(self, "models_")
        gain = np.sum([mean.feature_importance("gain") for mean, _ in self.models_.values()],
                      axis=0)
        return pd.Series(gain, index=list(self.feature_names)).sort_values(ascending=False)
