"""Day-of information of the ML baseline: what the hours before the notice tell.

Two uses of the readings in the ``adjustment_window_minutes`` that end
``adjustment_gap_minutes`` before the notice (the reference time ``ref``):

- ``day_of_features``: model inputs for rows at ``t`` with reference ``ref``: the lead
  ``t - ref`` (minutes), the mean load over the window (in units of the customer's scale),
  its ratio to the similar-day level over the same intervals, the additive correction an
  X-of-Y adjustment would make, and the last reading before ``ref``. Event days never
  inform another day's features; no reading after ``ref`` (nor after the event start) is
  read.
- ``day_of_adjustment``: the capped multiplicative factor or additive offset (kW) that
  rescales a prediction, as in ``XofYBaseline``, from the actual over the window against
  the model's own estimate of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from forecasting.errors import DataError, InsufficientDataError
from models.baselines.common import NS_PER_MINUTE, window_index
from models.baselines.ml_customer import _Customer, _level_features, pool_codes

if TYPE_CHECKING:
    from models.baselines.ml_features import FeatureSpec


def flat_arrays(spec: FeatureSpec, cust: _Customer) -> dict:
    """Regular UTC-grid arrays of one customer for the day-of features (cached on it)."""
    if cust.flat is not None:
        return cust.flat
    m = cust.matrix
    res = spec.resolution.value
    known = m.utc_ns != np.iinfo(np.int64).max
    t0 = int(m.utc_ns[known].min())
    n = int((m.utc_ns[known].max() - t0) // res) + 1
    v = np.full(n, np.nan)
    v[(m.utc_ns[known] - t0) // res] = m.values[known]
    grid = pd.DatetimeIndex(t0 + res * np.arange(n, dtype=np.int64), tz="UTC")
    rows, slots = m.locate(grid, m.first_day)
    lvl = _level_features(m.values, cust.pool_of_row, cust.event_row, np.arange(m.n_days),
                          pool_codes(m, spec.holiday_country),
                          spec.similar_days, spec.recent_days, spec.lookback_days)
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


def day_of_features(spec: FeatureSpec, cust: _Customer, t_ns: np.ndarray,
                    refs_ns: np.ndarray, cutoff: pd.Timestamp | None
                    ) -> dict[str, np.ndarray]:
    """Day-of features of rows at ``t_ns`` with reference times ``refs_ns`` (UTC ns).

    ``cutoff``: the event start at prediction (no reading after it is read), else None.
    """
    f = flat_arrays(spec, cust)
    res = spec.resolution.value
    refs = np.broadcast_to(np.asarray(refs_ns, dtype=np.int64), t_ns.shape)
    if cutoff is not None:  # never read past the event start
        refs = np.minimum(refs, cutoff.value)
    hi = np.clip((refs - f["t0"]) // res, 0, f["n"])  # readings [lo, hi) ended by ref
    lo = np.clip(hi - int(spec.adjustment_window_minutes * NS_PER_MINUTE // res), 0,
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


def day_of_adjustment(spec: FeatureSpec, cid: str, cust: _Customer, notice: pd.Timestamp, *,
                      kind: str, cap: float | None, gap_minutes: int,
                      modelled_kw: Callable[[pd.DatetimeIndex, pd.Timestamp], np.ndarray]
                      ) -> float:
    """Capped day-of adjustment: a factor (``kind='multiplicative'``, dimensionless) or an
    offset (``'additive'``, kW) within ``cap`` (share of the modelled load; None: uncapped).

    ``modelled_kw(index, notice)``: the model's baseline (kW) of ``index`` with its day-of
    reference taken from ``notice``; it is asked for the adjustment window with the
    window's own start as notice, so that the estimate never sees the window itself.
    """
    ref = notice - pd.Timedelta(minutes=gap_minutes)
    idx = window_index(ref - pd.Timedelta(minutes=spec.adjustment_window_minutes), ref,
                       spec.resolution)
    idx = idx[idx + spec.resolution <= ref]
    if idx.empty:
        raise DataError("the adjustment window holds no whole interval; lengthen "
                        "adjustment_window_minutes")
    day = idx[0].tz_convert(spec.timezone).date()
    offsets, slots = cust.matrix.locate(idx, day)
    actual = cust.matrix.take(cust.matrix.row(day) + offsets, slots, notice)
    ok = ~np.isnan(actual)
    if not ok.any():
        raise InsufficientDataError(
            f"customer {cid}: no reading in the adjustment window {idx[0]} .. "
            f"{idx[-1] + spec.resolution}; use adjustment=None")
    model = modelled_kw(idx, idx[0])
    a, b = float(actual[ok].mean()), float(model[ok].mean())
    if kind == "multiplicative":
        if b <= 0:
            raise DataError(f"customer {cid}: modelled load over the adjustment window is "
                            f"{b:.3g} kW (<= 0); use adjustment='additive'")
        f = a / b
        return float(np.clip(f, 1 - cap, 1 + cap)) if cap is not None else f
    off = a - b
    return float(np.clip(off, -cap * abs(b), cap * abs(b))) if cap is not None else off
