"""Synthetic consumption of industrial and commercial load sites (before demand response).

Synthetic: a composition of declared daily shapes (``segments.SEGMENTS``) and
calendar and weather effects, not a model fitted to real meters. Per 15-minute interval:

``gross_kw = peak_kw * (shape(day plan, slot) * day_level + cooling + heating) * (1 + noise)``

- day plan: working-day or rest-day shape from ``forecasting.calendar`` day types, so
  public holidays and swapped working weekends (调休) behave like real ones; factories shut
  for Spring Festival (from the working day before the holiday block until
  ``shutdown_days`` after the festival, then ramp up over six days, with a quieter week
  before); campuses follow school vacations; other segments scale by ``festival_level``;
- day level: growth, a small seasonal swing and day-to-day AR(1) variation (3 %);
- cooling/heating: softplus hinges of the 3-hour-lagged air temperature at 24 C and 12 C,
  weighted by how much of the site is in operation;
- noise: multiplicative AR(1) (1-hour e-folding) plus white noise;
- limits: at least 3 % of peak, at most 98 % of the contracted capacity.

``load_kw`` subtracts behind-the-meter PV (south-facing, 10 degree tilt), so sites with
rooftop PV occasionally show net infeed (negative ``load_kw``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.synthetic.grid import SLOTS_PER_DAY, TimeGrid
from forecasting.synthetic.power import pv_power_kw
from forecasting.synthetic.random import ar1, smooth
from forecasting.synthetic.segments import SEGMENTS, LoadSegment, Profile
from forecasting.synthetic.sites import SiteSpec

COOLING_THRESHOLD_C = 24.0
HEATING_THRESHOLD_C = 12.0
SHUTDOWN_LEVEL = 0.45  # of the rest-day shape
RAMP_UP_LEVELS = (0.55, 0.65, 0.75, 0.85, 0.92, 0.97)
PRE_FESTIVAL_LEVEL = 0.93
MIN_LOAD_FRACTION = 0.03  # of peak
MAX_LOAD_FRACTION = 0.98  # of contracted capacity (the connection limit)


@dataclass(frozen=True)
class LoadTruth:
    """15-minute consumption of one load site without demand-response events.

    ``load_kw`` net metered power (gross minus behind-the-meter PV, may be negative);
    ``gross_kw`` consumption; ``activity`` 0..1 share of full operation (daily shape over its
    working-day maximum), which limits what demand response can curtail.
    """

    load_kw: np.ndarray
    gross_kw: np.ndarray
    activity: np.ndarray


def profile_96(anchors: Profile) -> np.ndarray:
    """Shape at the 96 quarter-hour midpoints, linear between ``(hour, value)`` anchors."""
    hours, values = zip(*anchors, strict=True)
    slot_hours = (np.arange(SLOTS_PER_DAY) + 0.5) * 24.0 / SLOTS_PER_DAY
    return np.interp(slot_hours, hours, values)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def day_plan(
    grid: TimeGrid, segment: LoadSegment, shutdown_days: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per local day: use the rest shape (bool) and a level multiplier."""
    types = grid.day_types
    weekend, holiday = types == "weekend", types == "holiday"
    if segment.all_days or not segment.rest_profile:
        use_rest = np.zeros(grid.n_days, dtype=bool)
        level = np.where(weekend, segment.weekend_level, 1.0)
    else:
        use_rest = ~grid.working
        level = np.ones(grid.n_days)
    level = np.where(holiday, segment.holiday_level, level)

    def span(first: dt.date, last: dt.date) -> slice:
        lo = max((first - grid.dates[0]).days, 0)
        hi = min((last - grid.dates[0]).days + 1, grid.n_days)
        return slice(lo, max(lo, hi))

    day = dt.timedelta(days=1)
    for first, festival, last in grid.spring_festival_blocks():
        if segment.school_vacations:
            vacation = span(festival - 21 * day, festival + 14 * day)
            use_rest[vacation], level[vacation] = True, 0.75
        elif shutdown_days > 0:
            shut_first, shut_last = first - day, festival + shutdown_days * day
            pre = span(shut_first - 7 * day, shut_first - day)
            level[pre] *= PRE_FESTIVAL_LEVEL
            shut = span(shut_first, shut_last)
            use_rest[shut], level[shut] = True, SHUTDOWN_LEVEL
            for k, ramp in enumerate(RAMP_UP_LEVELS, start=1):
                s = span(shut_last + k * day, shut_last + k * day)
                level[s] *= ramp
        else:
            level[span(first, last)] *= segment.festival_level
    if segment.school_vacations:
        for year in range(grid.dates[0].year, grid.dates[-1].year + 1):
            summer = span(dt.date(year, 7, 10), dt.date(year, 8, 31))
            use_rest[summer], level[summer] = True, 0.8
    return use_rest, level


def simulate_load(
    rng: np.random.Generator, grid: TimeGrid, site: SiteSpec, weather: dict[str, np.ndarray]
) -> LoadTruth:
    """Consumption of one load site driven by its observed (truth) weather."""
    segment = SEGMENTS[site.segment]
    peak_kw = segment.peak_fraction * site.capacity_kw
    working_shape = profile_96(segment.working_profile)
    rest_shape = profile_96(segment.rest_profile) if segment.rest_profile else working_shape

    use_rest, level = day_plan(grid, segment, site.shutdown_days)
    years = np.arange(grid.n_days) / 365.25
    phase = rng.uniform(0, 2 * np.pi)
    level = (
        level
        * (1 + segment.growth_per_year * years)
        * (1 + 0.03 * np.sin(2 * np.pi * grid.day_of_year / 365.25 + phase))
        * np.exp(ar1(rng, grid.n_days, 3.0, 0.03))
    )
    shape = np.where(use_rest[:, None], rest_shape, working_shape) * level[:, None]
    shape = shape.reshape(-1)
    activity = np.clip(shape / working_shape.max(), 0.0, 1.0)

    temp_lagged_c = smooth(weather["temp_air_c"], 12.0)
    hvac_weight = 0.3 + 0.7 * activity
    cooling = segment.cooling_per_c * _softplus(temp_lagged_c - COOLING_THRESHOLD_C) * hvac_weight
    heating = segment.heating_per_c * _softplus(HEATING_THRESHOLD_C - temp_lagged_c) * hvac_weight
    noise = ar1(rng, shape.size, 4.0, segment.noise_fraction) + rng.normal(
        0.0, 0.4 * segment.noise_fraction, shape.size
    )
    gross_kw = np.clip(
        peak_kw * (shape + cooling + heating) * (1 + noise),
        MIN_LOAD_FRACTION * peak_kw,
        MAX_LOAD_FRACTION * site.capacity_kw,
    )

    btm_kw = np.zeros_like(gross_kw)
    if site.btm_pv_kw > 0:
        btm_kw = pv_power_kw(
            grid.index_15min + pd.Timedelta(minutes=7.5),
            weather["solar_zenith_deg"],
            weather["solar_azimuth_deg"],
            weather["ghi_wm2"],
            weather["dni_wm2"],
            weather["dhi_wm2"],
            weather["temp_air_c"],
            weather["wind_speed_10m_mps"],
            tilt_deg=10.0,
            azimuth_deg=180.0,
            capacity_kw=site.btm_pv_kw,
            dc_ac_ratio=1.1,
        )
    return LoadTruth(load_kw=gross_kw - btm_kw, gross_kw=gross_kw, activity=activity)
