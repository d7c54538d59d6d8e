"""Probabilistic site forecaster: horizon buckets of LightGBM quantile models.

``SiteForecaster(kind=...)`` serves load, PV and wind. For each horizon bucket (lead-time
range, e.g. intraday up to 6 h and day-ahead to D+2) it trains one
``LGBMQuantileRegressor`` on rows (target ``t``, issue ``T = t - lead``) with the lead drawn
uniformly inside the bucket, features from ``forecasting.features`` (leak-free per row).
A spec that reads no measured history (no lags, no last-known features) gets one bucket:
the lead then only matters through the weather, which the features carry.

Seed bag (``n_bags``, 3 by default): each bucket is learnt by ``n_bags`` booster sets, each
with its own seed (LightGBM's row bagging and feature subsampling), its own lead draws and,
where history is longer than ``max_rows_per_bucket``, its own random rows; their quantile
predictions are averaged. Measured on OpenSTEF 307 over seeds 0-4 (README): a single
booster of 31 leaves on up to 16,000 rows gave MAE 2.318-2.445 MW (sd 0.058); the bag of 3
boosters of 15 leaves on up to 8,000 rows each gives a lower mean with sd under 0.02, for
about 1.4 times the fit time on a year of 15-minute data (fewer leaves and rows pay for
most of the two extra boosters; ``benchmarks.speed``).

Training rows: each measured target gets a lead drawn uniformly in the bucket; a share of
the rows whose lead falls beyond the NWP known at their issue (e.g. one 24-h run a day)
gets a lead the NWP reaches instead (``nwp_redraw_share``), so the model mostly learns
from rows that have weather, as forecasts have. PV night rows are not learnt (0 by
construction), and each booster set draws at most ``max_rows_per_bucket`` random targets
(before their features are built): neighbouring 15-minute intervals are near-duplicates,
and the quantile objective's cost grows with the rows (a year of 15-minute data trains in
seconds).

Targets are learnt as measured by default (``target_level="none"``); ``"mean_7d"`` learns
them relative to the mean of the last 7 days known at the issue (trees cannot
extrapolate a level shift; it did not pay on the public load data, whose weekly level
moves with embedded PV and wind).

Calibration (``calibration_days > 0``): a quick first fit (half the rows and rounds at
twice the learning rate) leaves out the last days of history; its normalised errors there
give a conformal correction per bucket and level (Romano et al. 2019, "Conformalized
quantile regression"; scale = the outermost predicted spread; PV night rows, certain by
construction, are left out), applied to the final fit on all history. Only the spread is
corrected (``conformal_shift=False``): the common shift (the older fit's bias over the
calibration days) is mostly drift the final fit has already learnt.

Quantiles: any levels on request (up to 99 percentiles) from the trained grid, linear
inside it and normal tails outside (``models.quantile.interpolate_quantiles``), sorted per
row so they never cross. PV and wind forecasts are clipped to [0, capacity]; PV is 0 at
night by construction (``pv_is_night``); load is unbounded (net load may be negative).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from forecasting.errors import InsufficientDataError
from forecasting.features import (
    FeatureSpec,
    Grid,
    build_features,
    forecast_weather_columns,
    window_known_at,
)
from forecasting.portfolio import SiteData, as_utc
from models.quantile import (
    DEFAULT_QUANTILES,
    LGBMQuantileRegressor,
    QuantileBag,
    check_quantiles,
    interpolate_quantiles,
)

log = logging.getLogger(__name__)

# (name, shortest lead, longest lead) in minutes. Day-ahead reaches D+2 issued at 00:00.
DEFAULT_BUCKETS = (("intraday", 0, 360), ("day_ahead", 360, 4320))
MIN_TRAINING_DAYS = 7  # of readings, at any resolution
TARGET_LEVELS = ("none", "mean_7d")
# Level columns tried in order when the target is learnt relative to a known level.
LEVEL_COLUMNS = ("mean_7d_kw", "mean_24h_kw", "last_known_kw")
BAG_SEED_STEP = 7919  # seed offset between a bag's members (a prime, apart from user seeds)


class SiteForecaster(BaseEstimator):
    """Quantile forecaster of one site's power (kW) from its history, weather and prices.

    Parameters (see the module doc): ``kind`` load/pv/wind; ``quantiles`` the trained grid;
    ``buckets`` (name, min lead, max lead) in minutes; ``feature_spec``; LightGBM's
    ``n_estimators``, ``learning_rate``, ``num_leaves``, ``min_child_samples``,
    ``subsample``, ``colsample_bytree``; ``calibration_days`` (0 = no calibration),
    ``calibration_fraction``, ``calibration_quick``, ``conformal_shift``;
    ``max_training_days`` of history; ``max_rows_per_bucket`` (per bag member);
    ``nwp_redraw_share``; ``target_level``; ``random_state``; ``n_bags`` (seed bag size).
    """

    def __init__(self, kind: str = "load", quantiles=DEFAULT_QUANTILES, buckets=DEFAULT_BUCKETS,
                 feature_spec: FeatureSpec | None = None, n_estimators: int = 150,
                 learning_rate: float = 0.07, num_leaves: int = 15, min_child_samples: int = 20,
                 calibration_days: float = 14.0, max_training_days: float | None = 730,
                 random_state: int = 0, target_level: str = "none",
                 calibration_fraction: float = 0.5, nwp_redraw_share: float = 0.8,
                 subsample: float = 0.8, colsample_bytree: float = 0.8,
                 calibration_quick: bool = True, max_rows_per_bucket: int | None = 8000,
                 conformal_shift: bool = False, n_bags: int = 3):
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
        self.target_level = target_level
        self.calibration_fraction = calibration_fraction
        self.nwp_redraw_share = nwp_redraw_share
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.calibration_quick = calibration_quick
        self.max_rows_per_bucket = max_rows_per_bucket
        self.conformal_shift = conformal_shift
        self.n_bags = n_bags

    # ----------------------------------------------------------------- training
    def _training_rows(self, data: SiteData, bucket, rng, since: pd.Timestamp | None = None,
                       size: int | None = None) -> tuple[pd.DataFrame, np.ndarray]:
        """Rows (target, target - lead) for the measured targets (from ``since`` on; a random
        ``size`` of them when given), the lead drawn uniformly in the bucket; features see
        all of ``data`` (leak-free)."""
        _, lo, hi = bucket
        res = data.site.resolution_minutes
        values = data.values_kw if since is None else data.values_kw[data.values_kw.index
                                                                     >= since]
        if size is not None:
            measured = np.flatnonzero(values.notna().to_numpy())
            if size < len(measured):
                values = values.iloc[np.sort(rng.choice(measured, size, replace=False))]
        targets = values.index
        steps = rng.integers(max(lo // res, 0), hi // res + 1, size=len(targets))
        if self.nwp_redraw_share > 0:
            steps = self._redraw_without_nwp(data, targets, steps, bucket, rng)
        leads = pd.to_timedelta(np.maximum(steps, 0) * res, unit="m")
        X = build_features(data, targets, targets - leads, self.spec_)
        return X, values.to_numpy(dtype=float)

    def _redraw_without_nwp(self, data: SiteData, targets: pd.DatetimeIndex, steps: np.ndarray,
                            bucket, rng) -> np.ndarray:
        """Redraw the lead of rows the NWP does not reach (share ``nwp_redraw_share``).

        A uniform lead often falls beyond the weather forecasts known at its issue (e.g. one
        24-h run a day): such rows teach the model little. Where some forecast covers the
        target within the bucket, a share of them gets a new lead drawn uniformly up to the
        longest lead at which a forecast was known (``t`` minus its earliest issue); the
        rest stay, so forecasts beyond the NWP horizon still have rows to learn from.
        """
        wx = data.weather
        if wx.empty or "issue_time" not in wx or wx["issue_time"].isna().all():
            return steps
        fc = wx.loc[wx["issue_time"].notna(), ["timestamp", "issue_time"]]
        first = fc.groupby("timestamp")["issue_time"].min().sort_index()
        res = data.site.resolution_minutes
        # the weather grid point of each target, as forecasting.features aligns them
        grid = Grid.of(first.index.as_unit("ns").asi8)
        t0 = pd.to_datetime(grid.floor(targets.as_unit("ns").asi8), unit="ns", utc=True)
        # the earliest issue per target, kept as a tz-aware array: NaT where no forecast
        # covers the target (``.to_numpy()`` would give objects, and naive stamps when every
        # target is uncovered, e.g. observed weather for all of history, forecasts after it)
        earliest = first.reindex(t0).array
        reach = ((targets - earliest) / pd.Timedelta(minutes=1)).to_numpy(dtype=float)
        lo_step, hi_step = max(bucket[1] // res, 0), bucket[2] // res
        reach_step = np.floor(np.nan_to_num(reach, nan=-1.0) / res).astype(np.int64)
        beyond = (steps > reach_step) & (reach_step >= lo_step)
        redraw = beyond & (rng.random(len(steps)) < self.nwp_redraw_share)
        top = np.minimum(reach_step[redraw], hi_step)
        steps = steps.copy()
        steps[redraw] = lo_step + np.floor(rng.random(int(redraw.sum())) * (top - lo_step + 1)
                                           ).astype(np.int64)
        return steps

    def _level(self, X: pd.DataFrame) -> np.ndarray:
        """The known level each row is learnt relative to (0 when not used)."""
        level = np.zeros(len(X))
        if not self.uses_level_:
            return level
        missing = np.ones(len(X), dtype=bool)
        for col in LEVEL_COLUMNS:
            if col in X:
                v = X[col].to_numpy(dtype=float)
                take = missing & ~np.isnan(v)
                level[take] = v[take]
                missing &= ~take
        return level

    def _model(self, quick: bool = False, member: int = 0) -> LGBMQuantileRegressor:
        """A booster set (bag member ``member``, seeded apart); ``quick`` (the calibration
        fit) takes half the rounds at twice the learning rate."""
        n, rate = self.n_estimators, self.learning_rate
        if quick and self.calibration_quick:
            n, rate = max(n // 2, 1), min(2 * rate, 1.0)
        return LGBMQuantileRegressor(
            quantiles=self.quantiles_, n_estimators=n, learning_rate=rate,
            num_leaves=self.num_leaves, min_child_samples=self.min_child_samples,
            subsample=self.subsample, colsample_bytree=self.colsample_bytree,
            random_state=self.random_state + BAG_SEED_STEP * member)

    def _fit_buckets(self, data: SiteData, fraction: float = 1.0, required: bool = True
                     ) -> dict[str, LGBMQuantileRegressor | QuantileBag] | None:
        """One booster set (or a bag of ``n_bags``) per bucket, each learning from its own
        rows (``_member_size``; own leads too). A bucket with fewer usable rows than a
        booster needs (e.g. the few daylight hours of a short hourly PV history) raises
        ``InsufficientDataError``, or returns None when the fit is not ``required`` (the
        calibration fit, which is then skipped)."""
        rng = np.random.default_rng(self.random_state)
        size, limit = self._member_size(data, fraction)
        models = {}
        for bucket in self.buckets_:
            members = []
            for member in range(self.n_bags):
                X, y = self._training_rows(data, bucket, rng, size=size)
                keep = self._usable_rows(X, y)
                need = 2 * self.min_child_samples  # LGBMQuantileRegressor's minimum
                if keep.sum() < need and len(y) < len(data.values_kw):  # all targets, then
                    X, y = self._training_rows(data, bucket, rng)
                    keep = self._usable_rows(X, y)
                if keep.sum() < need:
                    if not required:
                        return None
                    self._too_few(data, bucket, X, y)
                if keep.sum() > limit:  # PV: more daylight rows drawn than a member learns
                    picked = rng.choice(np.flatnonzero(keep), limit, replace=False)
                    keep = np.zeros(len(y), dtype=bool)
                    keep[picked] = True
                level = self._level(X)
                members.append(self._model(quick=fraction < 1.0, member=member).fit(
                    X[self.feature_names_].to_numpy(dtype=float)[keep], (y - level)[keep]))
            models[bucket[0]] = members[0] if len(members) == 1 else QuantileBag(members)
        return models

    def _member_size(self, data: SiteData, fraction: float) -> tuple[int, int]:
        """(targets drawn, most rows learnt) per booster set: the measured targets, a random
        ``max_rows_per_bucket`` of them when there are more (neighbouring intervals are
        near-duplicates: a random subset learns as well), both times ``fraction`` (the
        calibration fit's share). PV draws twice the rows (night is not learnt)."""
        n = int(data.values_kw.notna().sum())
        want = int(np.ceil(fraction * n))
        if self.max_rows_per_bucket:
            want = min(want, int(self.max_rows_per_bucket * fraction))
        want = max(want, min(n, 2 * self.min_child_samples))
        draw = 2 * want if self.kind == "pv" else want
        return min(draw, n), want

    def _usable_rows(self, X: pd.DataFrame, y: np.ndarray) -> np.ndarray:
        """Rows with a target (PV: in daylight), as a mask."""
        if self.feature_names_ is None:
            self.feature_names_ = list(X.columns)
        keep = ~np.isnan(y)
        if self.kind == "pv" and "pv_is_night" in X:  # 0 by construction, not learnt
            keep &= X["pv_is_night"].to_numpy(dtype=float) < 0.5
        return keep

    def _too_few(self, data: SiteData, bucket, X: pd.DataFrame, y: np.ndarray):
        usable = ~np.isnan(y)
        if self.kind == "pv" and "pv_is_night" in X:
            usable &= X["pv_is_night"].to_numpy(dtype=float) < 0.5
        need = 2 * self.min_child_samples  # LGBMQuantileRegressor's minimum
        what = "daytime readings" if self.kind == "pv" else "readings"
        raise InsufficientDataError(
            f"site {data.site.site_id}: {int(usable.sum())} {what} to train the "
            f"{bucket[0]} horizons on; need at least {need} — load more history or "
            "move --train-end later")

    def fit(self, data: SiteData) -> SiteForecaster:
        """Fit on all measurements in ``data`` (cut it with ``data.before(train_end)`` first)."""
        self.quantiles_ = check_quantiles(self.quantiles)
        if self.kind not in ("load", "pv", "wind"):
            raise ValueError(f"unknown kind {self.kind!r}, expected one of load, pv, wind")
        if self.target_level not in TARGET_LEVELS:
            raise ValueError(f"unknown target_level {self.target_level!r}, expected one of "
                             f"{list(TARGET_LEVELS)}")
        if not 0.0 < self.calibration_fraction <= 1.0:
            raise ValueError(f"calibration_fraction must lie in (0, 1], got "
                             f"{self.calibration_fraction}")
        if int(self.n_bags) != self.n_bags or self.n_bags < 1:
            raise ValueError(f"n_bags must be a whole number of at least 1, got {self.n_bags}")
        if data.site.kind != self.kind:
            raise ValueError(f"site {data.site.site_id} is of kind {data.site.kind!r}, "
                             f"this forecaster of {self.kind!r}")
        spec = self.feature_spec or FeatureSpec()
        # only the weather columns forecast for this site: the others are NaN in every row
        self.spec_ = replace(spec, weather_columns=forecast_weather_columns(data.weather, spec))
        buckets = tuple(tuple(b) for b in self.buckets)
        if not self.spec_.uses_history:  # the lead only matters through the weather
            buckets = (("all", min(b[1] for b in buckets), max(b[2] for b in buckets)),)
        self.buckets_ = buckets
        self.uses_level_ = self.spec_.use_last_known and self.target_level == "mean_7d"
        if self.max_training_days:
            start = data.values_kw.index.max() - pd.Timedelta(days=self.max_training_days)
            data = replace(data, values_kw=data.values_kw[data.values_kw.index >= start])
        need = min_training_rows(data.site.resolution_minutes)
        if len(data.values_kw) < need:
            raise InsufficientDataError(
                f"site {data.site.site_id}: {len(data.values_kw)} measurements before the "
                f"training end; need at least {need} ({MIN_TRAINING_DAYS} days at "
                f"{data.site.resolution_minutes} minutes) — load more history or move "
                "--train-end later")
        self.site_ = data.site
        self.feature_names_ = None
        values = data.values_kw.to_numpy(dtype=float)
        self.scale_floor_ = 0.01 * float(self.site_.capacity_kw or np.nanmean(np.abs(values))
                                         or 1.0)
        self.corrections_ = {b[0]: np.zeros(len(self.quantiles_)) for b in self.buckets_}
        if self.calibration_days:
            self.corrections_ = self._conformal_corrections(data)
        self.models_ = self._fit_buckets(data)
        self.training_window_ = (data.values_kw.index.min(), data.values_kw.index.max())
        return self

    def _conformal_corrections(self, data: SiteData) -> dict[str, np.ndarray]:
        zero = {b[0]: np.zeros(len(self.quantiles_)) for b in self.buckets_}
        cut = data.values_kw.index.max() - pd.Timedelta(days=self.calibration_days)
        early = replace(data, values_kw=data.values_kw[data.values_kw.index < cut])
        if len(early.values_kw) < min_training_rows(data.site.resolution_minutes):
            log.info("site %s: too little history to calibrate; no conformal correction",
                     data.site.site_id)
            return zero
        self.models_ = self._fit_buckets(early, self.calibration_fraction, required=False)
        if self.models_ is None:
            log.info("site %s: too few rows to calibrate; no conformal correction",
                     data.site.site_id)
            return zero
        self.corrections_ = zero
        rng = np.random.default_rng(self.random_state + 1)
        out = {}
        for bucket in self.buckets_:
            X, y = self._training_rows(data, bucket, rng, since=cut)
            pred = self._predict_grid(X, bucket_only=bucket[0])
            s = self._normalised_residuals(y, pred)
            if self.kind == "pv" and "pv_is_night" in X:  # certain by construction
                s = s[X["pv_is_night"].to_numpy(dtype=float) < 0.5]
            ok = np.isfinite(s).all(axis=1)
            corr = (np.array([np.quantile(s[ok, j], q) for j, q in enumerate(self.quantiles_)])
                    if ok.sum() >= 20 else np.zeros(len(self.quantiles_)))
            if not self.conformal_shift:  # keep the spread correction, drop the common shift
                corr = corr - np.interp(0.5, self.quantiles_, corr)
            out[bucket[0]] = corr
        log.info("site %s: conformal corrections (x spread) %s", data.site.site_id,
                 {k: np.round(v, 3).tolist() for k, v in out.items()})
        return out

    def _scale(self, pred: np.ndarray) -> np.ndarray:
        spread = pred[:, -1] - pred[:, 0] if pred.shape[1] > 1 else np.abs(pred[:, 0])
        return np.maximum(spread, self.scale_floor_)

    def _normalised_residuals(self, y: np.ndarray, pred: np.ndarray) -> np.ndarray:
        return (y[:, None] - pred) / self._scale(pred)[:, None]

    # --------------------------------------------------------------- prediction
    def _bucket_of(self, lead_minutes: np.ndarray) -> np.ndarray:
        names = np.array([b[0] for b in self.buckets_], dtype=object)
        his = np.array([b[2] for b in self.buckets_], dtype=float)
        idx = np.searchsorted(his, lead_minutes, side="left").clip(0, len(his) - 1)
        return names[idx]

    def _predict_grid(self, X: pd.DataFrame, bucket_only: str | None = None) -> np.ndarray:
        """Corrected, bounded, sorted predictions on the trained grid, shape (n, levels)."""
        pred = np.full((len(X), len(self.quantiles_)), np.nan)
        buckets = (np.full(len(X), bucket_only, dtype=object) if bucket_only else
                   self._bucket_of(X["lead_minutes"].to_numpy(dtype=float)))
        values = X[self.feature_names_].to_numpy(dtype=float)
        level = self._level(X)
        for name, model in self.models_.items():
            rows = buckets == name
            if rows.any():
                raw = np.sort(model.predict(values[rows]), axis=1) + level[rows, None]
                pred[rows] = raw + self.corrections_[name][None, :] * self._scale(raw)[:, None]
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
        grid = self._predict_grid(X)
        levels = check_quantiles(quantiles) if quantiles is not None else self.quantiles_
        values = interpolate_quantiles(grid, self.quantiles_, levels)
        values = self._bound(values, X)
        return pd.DataFrame(values, index=X.index, columns=[quantile_column(q) for q in levels])

    def features(self, data: SiteData, issue_time, timestamps: pd.DatetimeIndex
                 ) -> pd.DataFrame:
        """The feature rows ``forecast`` predicts from (only data known at ``issue_time``)."""
        check_is_fitted(self, "models_")
        issue = as_utc(issue_time, "issue_time")
        targets = pd.DatetimeIndex(timestamps).tz_convert("UTC")
        known = window_known_at(data, targets, issue, self.spec_)
        return build_features(known, targets, pd.DatetimeIndex([issue] * len(targets)),
                              self.spec_)

    def forecast(self, data: SiteData, issue_time, timestamps: pd.DatetimeIndex,
                 quantiles=None) -> pd.DataFrame:
        """Forecast ``timestamps`` as known at ``issue_time`` (data after it is ignored)."""
        return self.predict_features(self.features(data, issue_time, timestamps), quantiles)

    def bucket_names(self, X: pd.DataFrame) -> np.ndarray:
        """The horizon bucket (name) that answers each feature row, from its lead."""
        check_is_fitted(self, "models_")
        return self._bucket_of(X["lead_minutes"].to_numpy(dtype=float))

    def known_level(self, X: pd.DataFrame) -> np.ndarray:
        """The level (kW) each row's target is learnt relative to; 0 unless
        ``target_level="mean_7d"``."""
        check_is_fitted(self, "models_")
        return self._level(X)

    def feature_importances(self) -> pd.Series:
        """Gain importance summed over buckets and levels, normalised to 1."""
        check_is_fitted(self, "models_")
        total = sum(m.feature_importance("gain") for m in self.models_.values())
        s = pd.Series(total, index=self.feature_names_).sort_values(ascending=False)
        return s / s.sum() if s.sum() else s


def min_training_rows(resolution_minutes: int) -> int:
    """Readings a fit needs: ``MIN_TRAINING_DAYS`` days at the site's resolution."""
    return MIN_TRAINING_DAYS * 1440 // resolution_minutes


def quantile_column(q: float) -> str:
    """Output column of a level, written as requested: 0.1 -> ``q0.1``, 0.05 -> ``q0.05``."""
    return f"q{float(q):g}"
