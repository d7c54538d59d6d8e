"""ML counterfactual baseline: LightGBM with weather, calendar and the customer's recent level.

``MLBaseline`` learns a customer's load on *non-event* days from features known before an
event (plus the weather, which a response cannot change) and predicts the event window:
``baseline_kw`` from a least-squares booster (the conditional mean, so that summed over
many events the baseline is unbiased, which a median is not for skewed household load) and
a band ``baseline_p10_kw``/``baseline_p90_kw`` from ``models.quantile.LGBMQuantileRegressor``.

Features of the interval ``t`` on local day ``D`` (declared in ``FEATURES``):

- calendar (``forecasting.calendar.calendar_features``) and the similar-day pool of ``D``;
- weather: ``temp_air_c`` at ``t``, its mean over the 24 h before ``t`` and the maximum of
  day ``D`` (observed weather, or the latest forecast where no observation exists); with
  the recent level also the temperature of the similar days at ``t``'s slot and today's
  difference to it (the similar-day level carries those days' weather);
- recent level, in units of the customer's scale (``use_recent_level``): at ``t``'s slot,
  the mean of the latest ``similar_days`` days of ``D``'s pool (the similar-days baseline)
  and the value 7 days earlier; the mean of the ``recent_days`` days before ``D``. Event
  days never enter. Only days before ``D`` are used, and at prediction every reading is
  masked unless its interval ended by the event start (``DayMatrix`` cut-off): no leakage;
- day of the event (``use_day_of``), known at the reference time ``ref = notice - gap``:
  the mean load over the ``adjustment_window_minutes`` before ``ref`` (in units of the
  scale), its ratio to the similar-day level over the same intervals (what an X-of-Y
  day-of adjustment measures) and the corrections a multiplicative or additive X-of-Y
  adjustment would make, the last reading before ``ref`` and the lead ``t - ref``.
  Training rows draw the lead log-uniformly between ``adjustment_gap_minutes`` and
  ``day_of_max_lead_hours``, so that the model learns how fast that information decays;
- customer: its scale (mean training load, kW) and an integer code (pooled models).

A customer whose training load was never negative (no net infeed) gets no negative baseline.

The target is ``(load - similar-day level) / scale`` (``target='residual'``, a learned
correction of the similar-days baseline) or ``load / scale`` (``'scaled'``), so that one
pooled model serves customers of any size;
``strategy`` picks ``pooled`` (one model for all, helps customers with little history),
``per_customer`` or ``auto`` (own model where at least ``min_days_own_model`` days of
history exist, the pooled model for the others). An optional capped day-of adjustment
(``adjustment``) rescales the prediction with the hours before the notice, as in
``XofYBaseline``.

References: Ke et al. (2017) "LightGBM"; LBNL (Mathieu, Price, Kiliccote, Piette 2011)
"Quantifying changes in building electricity use, with application to demand response";
CalTRACK 2.0 methods (hourly model: time-of-week and temperature) for the weather part.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from forecasting.calendar import calendar_features
from forecasting.errors import (
    DataError,
    InsufficientDataError,
    MissingColumnsError,
    UnknownSiteError,
)
from models.baselines.common import (
    NS_PER_MINUTE,
    BaselineDetails,
    BaselineEstimator,
    DayMatrix,
    check_load,
    check_window,
    pool_of_day,
    to_local_dates,
    window_index,
)
from models.baselines.rules import ADJUSTMENTS
from models.quantile import LGBMQuantileRegressor, check_quantiles

POOL_CODE = {"working": 0, "weekend": 1, "holiday": 2}
CALENDAR_FEATURES = ("cal_minute_of_day", "cal_day_of_week", "cal_is_working_day",
                     "cal_is_holiday", "cal_is_swapped_workday", "cal_day_of_year_sin",
                     "cal_day_of_year_cos", "cal_prev_day_working", "cal_next_day_working",
                     "cal_days_to_spring_festival", "cal_pool")
WEATHER_FEATURES = ("wx_temp_air_c", "wx_temp_mean_24h_c", "wx_temp_day_max_c")
# with the recent level: the temperature of the similar days, and today's difference to it
WEATHER_LEVEL_FEATURES = ("wx_temp_similar_days_c", "wx_temp_minus_similar_days_c")
LEVEL_FEATURES = ("lvl_similar_days_rel", "lvl_week_ago_rel", "lvl_recent_mean_rel")
DAY_OF_FEATURES = ("do_lead_minutes", "do_level_rel", "do_ratio", "do_last_rel",
                   "do_mult_adjustment_rel", "do_add_adjustment_rel")
TARGETS = ("residual", "scaled")
CUSTOMER_FEATURES = ("cust_scale_kw", "cust_code")
STRATEGIES = ("pooled", "per_customer", "auto")
SINGLE = "customer"


def temperature_series(weather: pd.DataFrame | pd.Series | None, name: str = "weather"
                       ) -> pd.Series | None:
    """Air temperature (°C) per UTC timestamp from a weather frame.

    Accepts a Series, a frame indexed by timestamp, or a frame with a ``timestamp`` column
    (and optional ``issue_time``: observations, ``issue_time`` NaT, win; elsewhere the latest
    issued forecast). Refuses a frame without ``temp_air_c``.
    """
    if weather is None:
        return None
    if isinstance(weather, pd.Series):
        temp = weather
    else:
        frame = weather
        if "timestamp" in frame.columns:
            frame = frame.set_index("timestamp")
        if "temp_air_c" not in frame.columns:
            raise MissingColumnsError(f"{name} has no temp_air_c column; the ML baseline needs "
                                      "air temperature", ["temp_air_c"])
        if "issue_time" in frame.columns:
            obs = frame["issue_time"].isna()
            order = frame.assign(_obs=obs.astype(int)).sort_values(["_obs", "issue_time"],
                                                                   na_position="last")
            frame = order[~order.index.duplicated(keep="last")]
        temp = frame["temp_air_c"]
    if not isinstance(temp.index, pd.DatetimeIndex) or temp.index.tz is None:
        raise DataError(f"{name}: timestamps must be tz-aware")
    temp = pd.to_numeric(temp, errors="coerce").astype("float64").dropna()
    temp.index = temp.index.tz_convert("UTC").as_unit("ns")
    return temp[~temp.index.duplicated(keep="last")].sort_index()


@dataclass
class _Customer:
    """What the model keeps of one customer: history, calendar and scale."""

    code: int
    matrix: DayMatrix
    pool_of_row: np.ndarray
    event_row: np.ndarray
    event_days: frozenset
    temperature: pd.Series | None
    scale_kw: float
    n_days: int
    nonnegative: bool = True
    temp_mean_24h: pd.Series | None = None
    temp_day_max: pd.Series | None = None
    flat: dict | None = None  # regular UTC grid arrays for the day-of features
    temp_cells: np.ndarray | None = None  # temperature at each (day, slot) cell of matrix

    def __post_init__(self):
        temp = self.temperature
        if temp is not None and not temp.empty and self.temp_mean_24h is None:
            self.temp_mean_24h = temp.rolling("24h").mean()
            local_days = temp.index.tz_convert(self.matrix.timezone).tz_localize(
                None).normalize()
            self.temp_day_max = temp.groupby(local_days).max()


def _event_rows(matrix: DayMatrix, days) -> np.ndarray:
    """Boolean per matrix row: is that local day an event day."""
    out = np.zeros(matrix.n_days, dtype=bool)
    for d in days:
        r = matrix.row(d)
        if 0 <= r < matrix.n_days:
            out[r] = True
    return out


def _level_features(values: np.ndarray, pool_of_row: np.ndarray, event_row: np.ndarray,
                    day_rows: np.ndarray, day_pools: np.ndarray, k: int, recent_days: int,
                    lookback_days: int) -> dict[str, np.ndarray]:
    """Recent-level features (kW) for days ``day_rows``, shape (len(day_rows), n_slots).

    Only rows strictly before each day are read, event rows never. ``values`` may hold NaN.
    """
    n_days, n_slots = values.shape
    out_sim = np.full((len(day_rows), n_slots), np.nan)
    clean = np.where(event_row[:, None], np.nan, values)
    finite = ~np.isnan(clean)
    for pool in np.unique(day_pools):
        rows_p = np.flatnonzero((pool_of_row == pool) & ~event_row)
        target = np.flatnonzero(day_pools == pool)
        if rows_p.size == 0 or target.size == 0:
            continue
        sub = np.nan_to_num(clean[rows_p])
        cnt = finite[rows_p].astype(np.int64)
        csum = np.vstack([np.zeros((1, n_slots)), np.cumsum(sub, axis=0)])
        ccnt = np.vstack([np.zeros((1, n_slots), dtype=np.int64), np.cumsum(cnt, axis=0)])
        j = np.searchsorted(rows_p, day_rows[target], side="left")  # rows before the day
        lo = np.maximum(j - k, 0)
        s = csum[j] - csum[lo]
        c = ccnt[j] - ccnt[lo]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s / c
        last = np.where(j > 0, rows_p[np.maximum(j - 1, 0)], -10**9)
        stale = (day_rows[target] - last) > lookback_days
        mean[stale] = np.nan
        out_sim[target] = mean
    week = day_rows - 7
    ok = (week >= 0) & (week < n_days)
    week_ago = np.full((len(day_rows), n_slots), np.nan)
    week_ago[ok] = clean[week[ok]]
    # mean of the `recent_days` calendar days before each day (event days excluded)
    day_sum = np.nansum(clean, axis=1)
    day_cnt = finite.sum(axis=1)
    cs = np.concatenate([[0.0], np.cumsum(day_sum)])
    cc = np.concatenate([[0], np.cumsum(day_cnt)])
    hi = np.clip(day_rows, 0, n_days)
    lo = np.clip(day_rows - recent_days, 0, n_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        recent = (cs[hi] - cs[lo]) / (cc[hi] - cc[lo])
    return {"similar": out_sim, "week_ago": week_ago, "recent": recent}


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
        names = [*CALENDAR_FEATURES, *WEATHER_FEATURES]
        if self.use_recent_level:
            names += (*LEVEL_FEATURES, *WEATHER_LEVEL_FEATURES)
        if self.use_day_of:
            names += DAY_OF_FEATURES
        return (*names, *CUSTOMER_FEATURES)

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
            self.customers_[cid] = self._customer(code, cid, load, res, events.get(cid, ()),
                                                  weathers.get(cid), end)
        if len(resolutions) > 1:
            raise DataError(f"customers have different resolutions {sorted(resolutions)}; "
                            "fit one MLBaseline per resolution")
        self.resolution_ = resolutions.pop()
        self.train_end_ = end
        X, y, owners, self.training_window_ = self._training_rows(end)
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

    def _customer(self, code, cid, load, res, events, weather, end) -> _Customer:
        days = to_local_dates(events)
        matrix = DayMatrix.build(load, res, self.timezone_)
        pools = np.array([POOL_CODE[pool_of_day(matrix.day(r), self.holiday_country_)]
                          for r in range(matrix.n_days)])
        ev = _event_rows(matrix, days)
        train = load if end is None else load[load.index < end]
        if self.max_training_days and not train.empty:
            train = train[train.index >= train.index[-1] - pd.Timedelta(
                days=self.max_training_days)]
        local_days = train.index.tz_convert(self.timezone_).date
        train = train[~pd.Index(local_days).isin(list(days))]
        if train.empty:
            raise InsufficientDataError(
                f"customer {cid}: no non-event readings before the training end {end}; the ML "
                "baseline needs history")
        n_days = int(pd.Index(local_days[~pd.Index(local_days).isin(list(days))]).nunique())
        if n_days < self.min_training_days:
            raise InsufficientDataError(
                f"customer {cid}: {n_days} day(s) of non-event readings before the training "
                f"end {end}, the ML baseline needs at least {self.min_training_days} "
                "(min_training_days); use a rule baseline or give more history")
        scale = float(train.abs().mean())
        if scale <= 0:
            raise DataError(f"customer {cid}: load is zero throughout the training window")
        return _Customer(code, matrix, pools, ev, days,
                         temperature_series(weather, f"weather of customer {cid}"), scale,
                         n_days, bool(train.min() >= 0))

    def _training_rows(self, end):
        """Feature rows of every customer's non-event readings before ``end``, and the
        (first, last) UTC timestamp of those readings (before any subsample).

        Above ``max_training_rows`` a random subsample (the same share of each customer) is
        drawn *before* the features are built.
        """
        rng = np.random.default_rng(self.random_state + 1)
        chosen = {}
        for cid, cust in self.customers_.items():
            m = cust.matrix
            utc = m.utc_ns.ravel()
            ok = ~np.isnan(m.values.ravel()) & ~np.repeat(cust.event_row, m.n_slots)
            if end is not None:
                ok &= utc < end.value
            if self.max_training_days and ok.any():
                ok &= utc >= utc[ok].max() - self.max_training_days * 86_400 * 10**9
            chosen[cid] = np.flatnonzero(ok)
        eligible = [cust.matrix.utc_ns.ravel()[chosen[cid]] for cid, cust in
                    self.customers_.items() if chosen[cid].size]
        window = ((pd.Timestamp(min(int(u.min()) for u in eligible), tz="UTC"),
                   pd.Timestamp(max(int(u.max()) for u in eligible), tz="UTC"))
                  if eligible else None)
        total = sum(len(v) for v in chosen.values())
        if total > self.max_training_rows:
            share = self.max_training_rows / total
            sub = np.random.default_rng(self.random_state)
            chosen = {c: np.sort(sub.choice(v, round(len(v) * share), replace=False))
                      for c, v in chosen.items()}
        frames, targets, owners = [], [], []
        for cid, cust in self.customers_.items():
            cells = chosen[cid]
            if cells.size == 0:
                continue
            m = cust.matrix
            index = pd.DatetimeIndex(m.utc_ns.ravel()[cells], tz="UTC")
            rows = cells // m.n_slots
            refs = None
            if self.use_day_of:
                lo_min = float(self.adjustment_gap_minutes)
                hi_min = max(lo_min, 60.0 * self.day_of_max_lead_hours)
                lead = np.exp(rng.uniform(np.log(max(lo_min, 1.0)), np.log(hi_min),
                                          len(index))) * NS_PER_MINUTE
                refs = index.asi8 - lead.astype(np.int64)
            X = self._features(cust, index, rows, cutoff=None, refs_ns=refs)
            y = m.values.ravel()[cells] / cust.scale_kw
            if self.target == "residual":
                ref = X[:, self.feature_names.index("lvl_similar_days_rel")]
                y = y - ref
                keep = np.isfinite(ref)
                X, y = X[keep], y[keep]
            frames.append(X)
            targets.append(y)
            owners.append(np.full(len(X), cid, dtype=object))
        if not frames:
            raise InsufficientDataError("no training rows: every reading is an event day or "
                                        "after the training end")
        return np.vstack(frames), np.concatenate(targets), np.concatenate(owners), window

    def _fit_boosters(self, X, y, label):
        if len(y) < 4 * self.min_child_samples:
            raise InsufficientDataError(
                f"{label}: {len(y)} training rows are too few for the ML baseline (need "
                f"{4 * self.min_child_samples}); use a rule baseline or give more history")
        params = {"objective": "regression", "learning_rate": self.learning_rate,
                  "num_leaves": self.num_leaves, "min_data_in_leaf": self.min_child_samples,
                  "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8,
                  "max_bin": 63, "force_col_wise": True, "num_threads": 1,
                  "seed": self.random_state, "verbose": -1}
        mean = lgb.train(params, lgb.Dataset(X, y, params={"max_bin": 63, "verbose": -1}),
                         num_boost_round=self.n_estimators)
        band = LGBMQuantileRegressor(
            quantiles=self.quantiles, n_estimators=self.n_estimators,
            learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples, n_jobs=1,
            random_state=self.random_state).fit(X, y)
        return mean, band

    # -- features --------------------------------------------------------------------------
    def _features(self, cust: _Customer, index: pd.DatetimeIndex, day_rows: np.ndarray | None,
                  cutoff: pd.Timestamp | None, refs_ns: np.ndarray | None = None
                  ) -> np.ndarray:
        """Feature matrix (rows of ``index``) in ``feature_names`` order.

        ``cutoff``: mask every reading whose interval had not ended by then (prediction).
        ``refs_ns``: the day-of reference time of each row (UTC ns; readings must have ended
        by it).
        """
        m = cust.matrix
        local = index.tz_convert(self.timezone_)
        dates = np.asarray(local.tz_localize(None).normalize().asi8 // (86_400 * 10**9))
        first = (m.first_day - dt.date(1970, 1, 1)).days
        rows = dates - first if day_rows is None else day_rows
        res_min = int(self.resolution_ / pd.Timedelta(minutes=1))
        slots = ((local.hour * 60 + local.minute) // res_min).to_numpy()
        cal = calendar_features(index, self.timezone_, self.holiday_country_)
        unique_rows, inverse = np.unique(rows, return_inverse=True)
        day_pool = np.array([POOL_CODE[pool_of_day(m.day(r), self.holiday_country_)]
                             for r in unique_rows])
        cols = {c: cal[c].to_numpy(dtype=float) for c in CALENDAR_FEATURES if c in cal}
        cols["cal_pool"] = day_pool[inverse].astype(float)
        cols.update(self._weather_features(cust, index, local))
        if self.use_recent_level:
            values = m.values
            if cutoff is not None:
                known = (m.utc_ns != np.iinfo(np.int64).max) & (
                    m.utc_ns + self.resolution_.value <= cutoff.value)
                values = np.where(known, values, np.nan)
            lvl = _level_features(values, cust.pool_of_row, cust.event_row, unique_rows,
                                  day_pool, self.similar_days, self.recent_days,
                                  self.lookback_days)
            cols["lvl_similar_days_rel"] = lvl["similar"][inverse, slots] / cust.scale_kw
            cols["lvl_week_ago_rel"] = lvl["week_ago"][inverse, slots] / cust.scale_kw
            cols["lvl_recent_mean_rel"] = lvl["recent"][inverse] / cust.scale_kw
            temp_sim = np.full(len(index), np.nan)
            cells = self._temp_cells(cust)
            if cells is not None:
                tl = _level_features(cells, cust.pool_of_row, cust.event_row, unique_rows,
                                     day_pool, self.similar_days, self.recent_days,
                                     self.lookback_days)
                temp_sim = tl["similar"][inverse, slots]
            cols["wx_temp_similar_days_c"] = temp_sim
            cols["wx_temp_minus_similar_days_c"] = cols["wx_temp_air_c"] - temp_sim
        if self.use_day_of:
            cols.update(self._day_of_features(cust, index.asi8, refs_ns, cutoff))
            # what a multiplicative X-of-Y adjustment would add to the similar-day level
            sim = cols.get("lvl_similar_days_rel", np.full(len(index), np.nan))
            cols["do_mult_adjustment_rel"] = (cols["do_ratio"] - 1.0) * sim
        cols["cust_scale_kw"] = np.full(len(index), cust.scale_kw)
        cols["cust_code"] = np.full(len(index), float(cust.code))
        return np.column_stack([cols[name] for name in self.feature_names])

    def _temp_cells(self, cust: _Customer) -> np.ndarray | None:
        """Air temperature at every (day, slot) cell with a reading (cached), else None."""
        if cust.temperature is None or cust.temperature.empty:
            return None
        if cust.temp_cells is None:
            m = cust.matrix
            known = m.utc_ns != np.iinfo(np.int64).max
            at = self._weather_features(cust, pd.DatetimeIndex(m.utc_ns[known], tz="UTC"),
                                        None, only_temperature=True)
            cells = np.full(m.values.shape, np.nan)
            cells[known] = at
            cust.temp_cells = cells
        return cust.temp_cells

    def _flat(self, cust: _Customer) -> dict:
        """Regular UTC-grid arrays of one customer for the day-of features (cached)."""
        if cust.flat is not None:
            return cust.flat
        m = cust.matrix
        res = self.resolution_.value
        known = m.utc_ns != np.iinfo(np.int64).max
        t0 = int(m.utc_ns[known].min())
        n = int((m.utc_ns[known].max() - t0) // res) + 1
        v = np.full(n, np.nan)
        v[(m.utc_ns[known] - t0) // res] = m.values[known]
        grid = pd.DatetimeIndex(t0 + res * np.arange(n, dtype=np.int64), tz="UTC")
        rows, slots = m.locate(grid, m.first_day)
        lvl = _level_features(m.values, cust.pool_of_row, cust.event_row, np.arange(m.n_days),
                              np.array([POOL_CODE[pool_of_day(m.day(r), self.holiday_country_)]
                                        for r in range(m.n_days)]),
                              self.similar_days, self.recent_days, self.lookback_days)
        inside = (rows >= 0) & (rows < m.n_days)
        sim = np.full(n, np.nan)
        sim[inside] = lvl["similar"][rows[inside], slots[inside]]
        # event days never inform the day-of features of another day
        ev = np.zeros(n, dtype=bool)
        ev[inside] = cust.event_row[rows[inside]]
        v[ev] = np.nan
        both = ~np.isnan(v) & ~np.isnan(sim)
        z = np.zeros(1)
        cust.flat = {
            "t0": t0, "n": n, "v": v,
            "cs_v": np.concatenate([z, np.cumsum(np.nan_to_num(v))]),
            "cs_n": np.concatenate([z, np.cumsum(~np.isnan(v))]),
            "cs_vb": np.concatenate([z, np.cumsum(np.where(both, v, 0.0))]),
            "cs_sb": np.concatenate([z, np.cumsum(np.where(both, sim, 0.0))]),
            "cs_nb": np.concatenate([z, np.cumsum(both)]),
        }
        return cust.flat

    def _day_of_features(self, cust: _Customer, t_ns: np.ndarray, refs_ns: np.ndarray,
                         cutoff: pd.Timestamp | None) -> dict[str, np.ndarray]:
        """Day-of features of rows at ``t_ns`` with reference times ``refs_ns`` (see doc)."""
        f = self._flat(cust)
        res = self.resolution_.value
        refs = np.broadcast_to(np.asarray(refs_ns, dtype=np.int64), t_ns.shape)
        if cutoff is not None:  # never read past the event start
            refs = np.minimum(refs, cutoff.value)
        hi = np.clip((refs - f["t0"]) // res, 0, f["n"])  # readings [lo, hi) ended by ref
        lo = np.clip(hi - int(self.adjustment_window_minutes * NS_PER_MINUTE // res), 0,
                     f["n"])
        with np.errstate(invalid="ignore", divide="ignore"):
            level = (f["cs_v"][hi] - f["cs_v"][lo]) / (f["cs_n"][hi] - f["cs_n"][lo])
            ratio = (f["cs_vb"][hi] - f["cs_vb"][lo]) / (f["cs_sb"][hi] - f["cs_sb"][lo])
            offset = ((f["cs_vb"][hi] - f["cs_vb"][lo]) - (f["cs_sb"][hi] - f["cs_sb"][lo])) / (
                f["cs_nb"][hi] - f["cs_nb"][lo])
        last = np.where(hi > 0, f["v"][np.maximum(hi - 1, 0)], np.nan)
        return {"do_lead_minutes": (t_ns - refs) / NS_PER_MINUTE,
                "do_level_rel": level / cust.scale_kw,
                "do_ratio": np.where(np.isfinite(ratio), ratio, np.nan),
                "do_last_rel": last / cust.scale_kw,
                "do_add_adjustment_rel": offset / cust.scale_kw}

    def _weather_features(self, cust, index, local, only_temperature: bool = False):
        """Weather features of ``index`` (dict), or the temperature array alone."""
        n = len(index)
        temp = cust.temperature
        if temp is None or temp.empty:
            return {name: np.full(n, np.nan) for name in WEATHER_FEATURES}
        width = pd.Timedelta(hours=1) if len(temp) < 2 else pd.Timedelta(
            int(np.median(np.diff(temp.index.asi8))), unit="ns")
        pos = temp.index.searchsorted(index, side="right") - 1
        valid = (pos >= 0)
        at = np.full(n, np.nan)
        p = np.maximum(pos, 0)
        fresh = valid & ((index - temp.index[p]) < width)
        at[fresh] = temp.to_numpy()[p[fresh]]
        if only_temperature:
            return at
        m24 = np.full(n, np.nan)
        m24[valid] = cust.temp_mean_24h.to_numpy()[p[valid]]
        want = local.tz_localize(None).normalize()
        dmax = cust.temp_day_max.reindex(want).to_numpy()
        return {"wx_temp_air_c": at, "wx_temp_mean_24h_c": m24, "wx_temp_day_max_c": dmax}

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
        ref = (notice if notice is not None else cutoff) - pd.Timedelta(
            minutes=self.adjustment_gap_minutes)
        X = self._features(cust, index, None, cutoff, refs_ns=np.int64(ref.value))
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
            factor = self._adjust(cid, cust, s, n)
            if self.adjustment == "multiplicative":
                raw = raw * factor
            else:
                raw = raw + factor
        frame = pd.DataFrame(raw, index=index,
                             columns=["baseline_kw", "baseline_p10_kw", "baseline_p90_kw"])
        return BaselineDetails(frame, self.method, (), factor, self.adjustment, tuple(notes))

    def _adjust(self, cid, cust, start, notice) -> float:
        ref = notice - pd.Timedelta(minutes=self.adjustment_gap_minutes)
        idx = window_index(ref - pd.Timedelta(minutes=self.adjustment_window_minutes), ref,
                           self.resolution_)
        idx = idx[idx + self.resolution_ <= ref]
        if idx.empty:
            raise DataError("the adjustment window holds no whole interval; lengthen "
                            "adjustment_window_minutes")
        day = idx[0].tz_convert(self.timezone_).date()
        offsets, slots = cust.matrix.locate(idx, day)
        actual = cust.matrix.take(cust.matrix.row(day) + offsets, slots, notice)
        ok = ~np.isnan(actual)
        if not ok.any():
            raise InsufficientDataError(
                f"customer {cid}: no reading in the adjustment window {idx[0]} .. "
                f"{idx[-1] + self.resolution_}; use adjustment=None")
        # the model's estimate for the adjustment window must not see that window itself:
        # its day-of reference is the window's own start (minus the gap)
        model = self._raw(cid, cust, idx, start, idx[0])[:, 0]
        a, b = float(actual[ok].mean()), float(model[ok].mean())
        cap = self.adjustment_cap
        if self.adjustment == "multiplicative":
            if b <= 0:
                raise DataError(f"customer {cid}: modelled load over the adjustment window is "
                                f"{b:.3g} kW (<= 0); use adjustment='additive'")
            f = a / b
            return float(np.clip(f, 1 - cap, 1 + cap)) if cap is not None else f
        off = a - b
        return float(np.clip(off, -cap * abs(b), cap * abs(b))) if cap is not None else off

    def set_history(self, load_kw: pd.Series | Mapping[str, pd.Series],
                    event_days: Iterable | Mapping[str, Iterable] = (),
                    weather: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None
                    ) -> MLBaseline:
        """Replace the customers' history (for the level features) without refitting.

        For a model loaded from the registry: give it the readings up to now. Customers must
        be known to the model; scale and code stay those of training.
        """
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
            pools = np.array([POOL_CODE[pool_of_day(m.day(r), self.holiday_country_)]
                              for r in range(m.n_days)])
            ev = _event_rows(m, days)
            temp = temperature_series(weathers.get(cid), f"weather of customer {cid}")
            self.customers_[cid] = _Customer(old.code, m, pools, ev, days,
                                             temp if temp is not None else old.temperature,
                                             old.scale_kw, old.n_days, old.nonnegative)
        return self

    def with_history(self, load_kw, event_days=(), weather=None) -> MLBaseline:
        """A copy that knows this history, leaving this model as it was: for a model shared
        between concurrent requests (the boosters are shared, read-only; the per-customer
        history is the copy's own)."""
        view = copy.copy(self)
        view.customers_ = dict(self.customers_)
        return view.set_history(load_kw, event_days, weather)

    def feature_importances(self) -> pd.Series:
        """Gain of the mean booster(s), summed over models, by feature name."""
        check_is_fitted(self, "models_")
        gain = np.sum([mean.feature_importance("gain") for mean, _ in self.models_.values()],
                      axis=0)
        return pd.Series(gain, index=list(self.feature_names)).sort_values(ascending=False)
