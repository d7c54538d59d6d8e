"""What the ML baseline keeps of one customer, and the recent-level statistics read from it.

``_Customer`` holds a customer's history as a ``DayMatrix`` (local day x slot, kW), the
pool (working, weekend, holiday) and event flag of every matrix row, the air temperature
(°C, UTC-indexed) and the training scale (kW). ``_level_features`` computes, for chosen
days, the similar-day mean, the value 7 days earlier and the mean of the recent days, from
rows strictly before each day and never from event rows (no leakage by construction).
``temperature_series`` turns a weather frame into the temperature series the model reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.errors import DataError, MissingColumnsError
from models.baselines.common import DayMatrix, pool_of_day

POOL_CODE = {"working": 0, "weekend": 1, "holiday": 2}


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


def pool_codes(matrix: DayMatrix, holiday_country: str | None) -> np.ndarray:
    """``POOL_CODE`` of the pool of every row (local day) of ``matrix``."""
    return np.array([POOL_CODE[pool_of_day(matrix.day(r), holiday_country)]
                     for r in range(matrix.n_days)])


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
