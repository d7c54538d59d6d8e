"""Scores of a delivery probability: against the settled outcomes and, where it is known (the
synthetic generator's truth), against the true probability.

Every calibration error here uses ``ECE_BINS`` = 10 equal-width bins of the *predicted*
probability ([0, 0.1), [0.1, 0.2), ... [0.9, 1.0]) weighted by their share of the rows
[Naeini et al. 2015, AAAI]. All scores are dimensionless.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score

from models.response import PROBABILITY_FLOOR

ECE_BINS = 10


def probability_bins(p, n_bins: int = ECE_BINS) -> np.ndarray:
    """Bin index (0 .. n_bins - 1) of each probability, equal-width bins, 1.0 in the last."""
    return np.clip((np.asarray(p, dtype=float) * n_bins).astype(int), 0, n_bins - 1)


def expected_calibration_error(reference, p, n_bins: int = ECE_BINS) -> float:
    """ECE: sum over equal-width bins of the predicted ``p`` of (rows in bin / rows) x |mean
    reference - mean p|. ``reference`` is the outcome (delivered 0/1: the classic ECE) or the
    true probability (ECE against the truth). 0 is perfect; in [0, 1]; NaN without rows."""
    ref = np.asarray(reference, dtype=float)
    p = np.asarray(p, dtype=float)
    if len(ref) == 0:
        return float("nan")
    bins = probability_bins(p, n_bins)
    total = 0.0
    for b in np.unique(bins):
        inside = bins == b
        total += inside.sum() / len(ref) * abs(ref[inside].mean() - p[inside].mean())
    return float(total)


def reliability_curve(reference, p, n_bins: int = ECE_BINS) -> pd.DataFrame:
    """Per non-empty bin of ``p``: ``mean_p``, ``mean_reference``, ``n``."""
    frame = pd.DataFrame({"bin": probability_bins(p, n_bins), "p": np.asarray(p, float),
                          "ref": np.asarray(reference, float)})
    g = frame.groupby("bin")
    return pd.DataFrame({"mean_p": g["p"].mean(), "mean_reference": g["ref"].mean(),
                         "n": g.size()})


def probability_metrics(delivered, p, achieved, expected) -> dict[str, float]:
    """Brier, log loss, ROC AUC (NaN with one class), ECE (10 bins), MAE of the expected
    achievement, and the number of rows."""
    y = np.asarray(delivered, dtype=bool)
    p = np.clip(np.asarray(p, dtype=float), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)
    two = y.any() and not y.all()
    return {
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, p, labels=[False, True])),
        "roc_auc": float(roc_auc_score(y, p)) if two else float("nan"),
        "ece": expected_calibration_error(y, p),
        "mae_achievement": float(np.mean(np.abs(np.asarray(achieved, float)
                                                - np.asarray(expected, float)))),
        "n": float(len(y)),
    }


def truth_metrics(p, p_true) -> dict[str, float]:
    """Calibration against the true probability: ``mae_vs_truth`` = mean |p - p_true| and
    ``ece_vs_truth`` (10 bins of p: |mean p_true - mean p|, weighted), on the rows where the
    truth is known (``n_truth``)."""
    p = np.asarray(p, dtype=float)
    p_true = np.asarray(p_true, dtype=float)
    known = np.isfinite(p_true)
    return {"mae_vs_truth": float(np.mean(np.abs(p[known] - p_true[known]))) if known.any()
            else float("nan"),
            "ece_vs_truth": expected_calibration_error(p_true[known], p[known]),
            "n_truth": float(known.sum())}


def brier_skill(brier: float, reference_brier: float) -> float:
    """1 - brier / reference_brier: 0 no better than the reference, 1 perfect."""
    return float(1.0 - brier / reference_brier) if reference_brier > 0 else float("nan")
