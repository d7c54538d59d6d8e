"""Training of the ML baseline: each customer's kept history, the training rows, the boosters.

``training_customer`` checks a customer's history (enough non-event days before the
training end, a non-zero scale) and builds what the model keeps of it; ``training_rows``
draws the feature rows of every customer's non-event readings before the training end
(day-of reference times drawn log-uniformly between ``adjustment_gap_minutes`` and
``day_of_max_lead_hours``); ``fit_boosters`` fits the least-squares booster (the baseline)
and the quantile boosters (the band) on them.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from forecasting.errors import DataError, InsufficientDataError
from models.baselines.common import NS_PER_MINUTE, DayMatrix, to_local_dates
from models.baselines.ml_customer import (
    _Customer,
    _event_rows,
    pool_codes,
    temperature_series,
)
from models.baselines.ml_features import FeatureSpec, feature_rows
from models.quantile import LGBMQuantileRegressor


def training_customer(code: int, cid: str, load: pd.Series, res: pd.Timedelta, events,
                      weather, end: pd.Timestamp | None, *, timezone: str,
                      holiday_country: str | None, max_training_days: int | None,
                      min_training_days: int) -> _Customer:
    """What the model keeps of customer ``cid`` (full history), after checking that its
    non-event readings before ``end`` (within ``max_training_days``) span at least
    ``min_training_days`` days and have a non-zero scale (mean absolute load, kW)."""
    days = to_local_dates(events)
    matrix = DayMatrix.build(load, res, timezone)
    pools = pool_codes(matrix, holiday_country)
    ev = _event_rows(matrix, days)
    train = load if end is None else load[load.index < end]
    if max_training_days and not train.empty:
        train = train[train.index >= train.index[-1] - pd.Timedelta(days=max_training_days)]
    local_days = train.index.tz_convert(timezone).date
    train = train[~pd.Index(local_days).isin(list(days))]
    if train.empty:
        raise InsufficientDataError(
            f"customer {cid}: no non-event readings before the training end {end}; the ML "
            "baseline needs history")
    n_days = int(pd.Index(local_days[~pd.Index(local_days).isin(list(days))]).nunique())
    if n_days < min_training_days:
        raise InsufficientDataError(
            f"customer {cid}: {n_days} day(s) of non-event readings before the training "
            f"end {end}, the ML baseline needs at least {min_training_days} "
            "(min_training_days); use a rule baseline or give more history")
    scale = float(train.abs().mean())
    if scale <= 0:
        raise DataError(f"customer {cid}: load is zero throughout the training window")
    return _Customer(code, matrix, pools, ev, days,
                     temperature_series(weather, f"weather of customer {cid}"), scale,
                     n_days, bool(train.min() >= 0))


def training_rows(spec: FeatureSpec, customers: dict[str, _Customer],
                  end: pd.Timestamp | None, *, target: str, random_state: int,
                  max_training_days: int | None, max_training_rows: int,
                  adjustment_gap_minutes: int, day_of_max_lead_hours: float):
    """Feature rows ``X``, targets ``y`` and owner customer id of every customer's non-event
    readings before ``end``, and the (first, last) UTC timestamp of those readings (before
    any subsample; None when there are none).

    Above ``max_training_rows`` a random subsample (the same share of each customer) is
    drawn *before* the features are built. ``target``: ``'residual'`` (load minus the
    similar-day level, in units of the scale; rows without that level are dropped) or
    ``'scaled'`` (load / scale).
    """
    rng = np.random.default_rng(random_state + 1)
    chosen = {}
    for cid, cust in customers.items():
        m = cust.matrix
        utc = m.utc_ns.ravel()
        ok = ~np.isnan(m.values.ravel()) & ~np.repeat(cust.event_row, m.n_slots)
        if end is not None:
            ok &= utc < end.value
        if max_training_days and ok.any():
            ok &= utc >= utc[ok].max() - max_training_days * 86_400 * 10**9
        chosen[cid] = np.flatnonzero(ok)
    eligible = [cust.matrix.utc_ns.ravel()[chosen[cid]] for cid, cust in
                customers.items() if chosen[cid].size]
    window = ((pd.Timestamp(min(int(u.min()) for u in eligible), tz="UTC"),
               pd.Timestamp(max(int(u.max()) for u in eligible), tz="UTC"))
              if eligible else None)
    total = sum(len(v) for v in chosen.values())
    if total > max_training_rows:
        share = max_training_rows / total
        sub = np.random.default_rng(random_state)
        chosen = {c: np.sort(sub.choice(v, round(len(v) * share), replace=False))
                  for c, v in chosen.items()}
    names = spec.names
    frames, targets, owners = [], [], []
    for cid, cust in customers.items():
        cells = chosen[cid]
        if cells.size == 0:
            continue
        m = cust.matrix
        index = pd.DatetimeIndex(m.utc_ns.ravel()[cells], tz="UTC")
        rows = cells // m.n_slots
        refs = None
        if spec.use_day_of:
            lo_min = float(adjustment_gap_minutes)
            hi_min = max(lo_min, 60.0 * day_of_max_lead_hours)
            lead = np.exp(rng.uniform(np.log(max(lo_min, 1.0)), np.log(hi_min),
                                      len(index))) * NS_PER_MINUTE
            refs = index.asi8 - lead.astype(np.int64)
        X = feature_rows(spec, cust, index, rows, cutoff=None, refs_ns=refs)
        y = m.values.ravel()[cells] / cust.scale_kw
        if target == "residual":
            ref = X[:, names.index("lvl_similar_days_rel")]
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


def fit_boosters(X: np.ndarray, y: np.ndarray, label: str, *, quantiles, n_estimators: int,
                 learning_rate: float, num_leaves: int, min_child_samples: int,
                 random_state: int) -> tuple[lgb.Booster, LGBMQuantileRegressor]:
    """The least-squares booster (mean) and the quantile boosters (band), one thread each.

    ``label`` names the model (a customer id or ``pooled``) in the error for too few rows.
    """
    if len(y) < 4 * min_child_samples:
        raise InsufficientDataError(
            f"{label}: {len(y)} training rows are too few for the ML baseline (need "
            f"{4 * min_child_samples}); use a rule baseline or give more history")
    params = {"objective": "regression", "learning_rate": learning_rate,
              "num_leaves": num_leaves, "min_data_in_leaf": min_child_samples,
              "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8,
              "max_bin": 63, "force_col_wise": True, "num_threads": 1,
              "seed": random_state, "verbose": -1}
    mean = lgb.train(params, lgb.Dataset(X, y, params={"max_bin": 63, "verbose": -1}),
                     num_boost_round=n_estimators)
    band = LGBMQuantileRegressor(
        quantiles=quantiles, n_estimators=n_estimators, learning_rate=learning_rate,
        num_leaves=num_leaves, min_child_samples=min_child_samples, n_jobs=1,
        random_state=random_state).fit(X, y)
    return mean, band
