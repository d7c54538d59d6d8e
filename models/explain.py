"""Per-forecast feature contributions of a fitted ``SiteForecaster`` (TreeSHAP).

LightGBM's ``pred_contrib=True`` gives, for each row, one contribution per feature plus the
model's expected value (the bias), computed exactly by TreeSHAP (Lundberg et al. 2020,
"From local explanations to global understanding with explainable AI for trees", Nature
Machine Intelligence 2, 56-67). For a bag of boosters (``n_bags > 1``) the contributions
are the mean of the boosters' contributions, as the prediction is the mean of theirs.

The identity that holds, per row, for the explained level ``q`` (the median by default) of
the bucket that answers the row::

    sum(feature contributions) + bias_kw + known_level_kw == raw_kw

where ``raw_kw`` is that level's bag-mean booster output plus the known level (0 unless
``target_level="mean_7d"``), *before* the forecaster's post-processing. The forecast's
``q0.5`` equals ``raw_kw`` exactly when the post-processing leaves it alone: the levels
are already in order on that row (no crossing to sort), the conformal correction of the
median is 0 (the default ``conformal_shift=False`` removes the common shift, so the
correction at level 0.5 is 0 by construction), and no bound applies (load is unbounded;
PV and wind are clipped to [0, capacity] and PV is 0 at night). ``raw_kw`` is returned
beside the contributions so a reader can see where the two differ.

Units: contributions are in the target's unit, kW (``*_kw`` columns).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

BIAS = "bias_kw"
LEVEL = "known_level_kw"
RAW = "raw_kw"


def feature_contributions(forecaster, X: pd.DataFrame, quantile: float = 0.5) -> pd.DataFrame:
    """Contributions (kW) of each feature to level ``quantile``'s raw prediction per row.

    ``forecaster``: a fitted ``models.forecaster.SiteForecaster``; ``X``: its feature rows
    (``SiteForecaster.features``). Returns a frame on ``X.index`` with one column per model
    feature, ``bias_kw`` (the booster's expected value), ``known_level_kw`` and ``raw_kw``
    (their sum; see the module doc for how it relates to the forecast).
    """
    check_is_fitted(forecaster, "models_")
    names = list(forecaster.feature_names_)
    missing = [c for c in names if c not in X.columns]
    if missing:
        raise ValueError(f"feature rows lack {missing}")
    values = X[names].to_numpy(dtype=float)
    buckets = forecaster.bucket_names(X)
    contrib = np.full((len(X), len(names) + 1), np.nan)
    for name, model in forecaster.models_.items():
        rows = buckets == name
        if rows.any():
            contrib[rows] = model.contributions(values[rows], quantile)
    out = pd.DataFrame(contrib[:, :-1], index=X.index, columns=names)
    out[BIAS] = contrib[:, -1]
    out[LEVEL] = forecaster.known_level(X)
    out[RAW] = contrib.sum(axis=1) + out[LEVEL].to_numpy()
    return out


def feature_columns(contributions: pd.DataFrame) -> list[str]:
    """The per-feature columns of a ``feature_contributions`` frame (not bias/level/raw)."""
    return [c for c in contributions.columns if c not in (BIAS, LEVEL, RAW)]


def top_contributions(contributions: pd.DataFrame, X: pd.DataFrame, top: int = 5
                      ) -> pd.DataFrame:
    """The ``top`` largest contributions by magnitude per row, long format.

    Columns: ``timestamp`` (the row's index), ``rank`` (1 = largest |contribution|),
    ``feature``, ``feature_value`` (the input, NaN where unknown at the issue),
    ``contribution_kw``, and the row's ``bias_kw`` and ``raw_kw``.
    """
    if top < 1:
        raise ValueError(f"top must be at least 1, got {top}")
    names = feature_columns(contributions)
    c = contributions[names].to_numpy(dtype=float)
    k = min(top, len(names))
    order = np.argsort(-np.abs(c), axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(len(c)), k)
    cols = order.ravel()
    feats = np.asarray(names, dtype=object)[cols]
    xv = X[names].to_numpy(dtype=float)
    return pd.DataFrame({
        "timestamp": contributions.index[rows],
        "rank": np.tile(np.arange(1, k + 1), len(c)),
        "feature": feats,
        "feature_value": xv[rows, cols],
        "contribution_kw": c[rows, cols],
        BIAS: contributions[BIAS].to_numpy()[rows],
        RAW: contributions[RAW].to_numpy()[rows],
    })


def mean_abs_contributions(contributions: pd.DataFrame) -> pd.Series:
    """Mean |contribution| (kW) per feature, largest first (the global summary)."""
    names = feature_columns(contributions)
    return contributions[names].abs().mean().sort_values(ascending=False)
