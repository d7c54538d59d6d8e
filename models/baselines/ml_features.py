"""Feature rows of the ML baseline, declared as data (``FeatureSpec``, ``feature_names``).

Features of the interval ``t`` on local day ``D``, in ``feature_names`` order:

- calendar (``forecasting.calendar.calendar_features``) and the similar-day pool of ``D``;
- weather: ``temp_air_c`` at ``t``, its mean over the 24 h before ``t`` and the maximum of
  day ``D`` (observed weather, or the latest forecast where no observation exists); with
  the recent level also the temperature of the similar days at ``t``'s slot and today's
  difference to it (the similar-day level carries those days' weather);
- recent level, in units of the customer's scale (``use_recent_level``): at ``t``'s slot,
  the mean of the latest ``similar_days`` days of ``D``'s pool (the similar-days baseline)
  and the value 7 days earlier; the mean of the ``recent_days`` days before ``D``. Event
  days never enter. Only days before ``D`` are used, and at prediction every reading is
  masked unless its interval ended by the event start (``cutoff``): no leakage;
- day of the event (``use_day_of``, ``models.baselines.ml_day_of``), known at the
  reference time ``ref = notice - gap``, plus the correction a multiplicative X-of-Y
  adjustment would add to the similar-day level;
- customer: its scale (mean training load, kW) and an integer code (pooled models).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.calendar import calendar_features
from models.baselines.common import pool_of_day
from models.baselines.ml_customer import POOL_CODE, _Customer, _level_features
from models.baselines.ml_day_of import day_of_features

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
CUSTOMER_FEATURES = ("cust_scale_kw", "cust_code")


def feature_names(use_recent_level: bool, use_day_of: bool) -> tuple[str, ...]:
    """Feature columns in model order, derived from the two switches."""
    names = [*CALENDAR_FEATURES, *WEATHER_FEATURES]
    if use_recent_level:
        names += (*LEVEL_FEATURES, *WEATHER_LEVEL_FEATURES)
    if use_day_of:
        names += DAY_OF_FEATURES
    return (*names, *CUSTOMER_FEATURES)


@dataclass(frozen=True)
class FeatureSpec:
    """What the feature rows depend on: the fitted calendar and grid, and the settings.

    ``resolution``: width of an interval; ``similar_days``, ``recent_days``,
    ``lookback_days``: windows of the level features (days); ``adjustment_window_minutes``:
    the window before the day-of reference time.
    """

    timezone: str
    holiday_country: str | None
    resolution: pd.Timedelta
    use_recent_level: bool
    use_day_of: bool
    similar_days: int
    recent_days: int
    lookback_days: int
    adjustment_window_minutes: int

    @property
    def names(self) -> tuple[str, ...]:
        return feature_names(self.use_recent_level, self.use_day_of)


def feature_rows(spec: FeatureSpec, cust: _Customer, index: pd.DatetimeIndex,
                 day_rows: np.ndarray | None, cutoff: pd.Timestamp | None,
                 refs_ns: np.ndarray | None = None) -> np.ndarray:
    """Feature matrix (rows of ``index``) in ``spec.names`` order.

    ``day_rows``: matrix row of each timestamp's local day (None: computed from ``index``).
    ``cutoff``: mask every reading whose interval had not ended by then (prediction).
    ``refs_ns``: the day-of reference time of each row (UTC ns; readings must have ended
    by it).
    """
    m = cust.matrix
    local = index.tz_convert(spec.timezone)
    dates = np.asarray(local.tz_localize(None).normalize().asi8 // (86_400 * 10**9))
    first = (m.first_day - dt.date(1970, 1, 1)).days
    rows = dates - first if day_rows is None else day_rows
    res_min = int(spec.resolution / pd.Timedelta(minutes=1))
    slots = ((local.hour * 60 + local.minute) // res_min).to_numpy()
    cal = calendar_features(index, spec.timezone, spec.holiday_country)
    unique_rows, inverse = np.unique(rows, return_inverse=True)
    day_pool = np.array([POOL_CODE[pool_of_day(m.day(r), spec.holiday_country)]
                         for r in unique_rows])
    cols = {c: cal[c].to_numpy(dtype=float) for c in CALENDAR_FEATURES if c in cal}
    cols["cal_pool"] = day_pool[inverse].astype(float)
    cols.update(weather_features(cust, index, local))
    if spec.use_recent_level:
        values = m.values
        if cutoff is not None:
            known = (m.utc_ns != np.iinfo(np.int64).max) & (
                m.utc_ns + spec.resolution.value <= cutoff.value)
            values = np.where(known, values, np.nan)
        lvl = _level_features(values, cust.pool_of_row, cust.event_row, unique_rows,
                              day_pool, spec.similar_days, spec.recent_days,
                              spec.lookback_days)
        cols["lvl_similar_days_rel"] = lvl["similar"][inverse, slots] / cust.scale_kw
        cols["lvl_week_ago_rel"] = lvl["week_ago"][inverse, slots] / cust.scale_kw
        cols["lvl_recent_mean_rel"] = lvl["recent"][inverse] / cust.scale_kw
        temp_sim = np.full(len(index), np.nan)
        cells = temperature_cells(cust)
        if cells is not None:
            tl = _level_features(cells, cust.pool_of_row, cust.event_row, unique_rows,
                                 day_pool, spec.similar_days, spec.recent_days,
                                 spec.lookback_days)
            temp_sim = tl["similar"][inverse, slots]
        cols["wx_temp_similar_days_c"] = temp_sim
        cols["wx_temp_minus_similar_days_c"] = cols["wx_temp_air_c"] - temp_sim
    if spec.use_day_of:
        cols.update(day_of_features(spec, cust, index.asi8, refs_ns, cutoff))
        # what a multiplicative X-of-Y adjustment would add to the similar-day level
        sim = cols.get("lvl_similar_days_rel", np.full(len(index), np.nan))
        cols["do_mult_adjustment_rel"] = (cols["do_ratio"] - 1.0) * sim
    cols["cust_scale_kw"] = np.full(len(index), cust.scale_kw)
    cols["cust_code"] = np.full(len(index), float(cust.code))
    return np.column_stack([cols[name] for name in spec.names])


def temperature_cells(cust: _Customer) -> np.ndarray | None:
    """Air temperature (°C) at every (day, slot) cell with a reading (cached), else None."""
    if cust.temperature is None or cust.temperature.empty:
        return None
    if cust.temp_cells is None:
        m = cust.matrix
        known = m.utc_ns != np.iinfo(np.int64).max
        at = weather_features(cust, pd.DatetimeIndex(m.utc_ns[known], tz="UTC"), None,
                              only_temperature=True)
        cells = np.full(m.values.shape, np.nan)
        cells[known] = at
        cust.temp_cells = cells
    return cust.temp_cells


def weather_features(cust: _Customer, index: pd.DatetimeIndex,
                     local: pd.DatetimeIndex | None, only_temperature: bool = False):
    """Weather features of ``index`` (dict of arrays, °C), or the temperature array alone.

    The temperature at ``t`` is the latest reading at or before ``t`` if it is fresher than
    the weather's own step (else NaN); ``local`` (``index`` in the local zone) picks the day
    of the daily maximum.
    """
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
