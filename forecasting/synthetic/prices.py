"""Synthetic day-ahead and real-time electricity prices (CNY/MWh) for the sample portfolio.

Synthetic: a price shape with calendar and weather terms plus noise, loosely in the style
of a provincial spot market in eastern China; not market data. Per 15-minute interval:

- shape: night valley (~250), morning peak (~520 at 09:30-10:30), a midday solar dip,
  evening peak (~680 at 19:00-20:00);
- calendar: weekends x0.87, public holidays x0.78, the Spring Festival block x0.65;
- weather: +14 CNY/MWh per degC of (3-hour-lagged) regional temperature above 27 C and
  +9 per degC below 5 C (air conditioning and heating demand), -170 CNY/MWh per kW/m2 of
  regional GHI (solar infeed depresses the midday price);
- day level: AR(1) over days (std 30 CNY/MWh, e-folding 5 days, fuel and hydro);
- day-ahead: the above plus an AR(1) error (std 25); one issue per delivery day at
  17:00 local on the day before (``issue_time``);
- real-time: day-ahead plus an AR(1) deviation (std 55, e-folding 1.5 h, larger on hot and
  cold days) and rare spikes of +300..+900 for 15-60 minutes, mostly on hot evenings.

Both are clipped to ``[0, 1500]`` CNY/MWh.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.synthetic.grid import SLOTS_PER_DAY, TimeGrid
from forecasting.synthetic.load import profile_96
from forecasting.synthetic.random import ar1, smooth

PRICE_CAP_CNY_PER_MWH = 1500.0
PRICE_FLOOR_CNY_PER_MWH = 0.0
DAY_AHEAD_ISSUE_LOCAL_HOUR = 17
PRICE_SHAPE = (
    (0, 300),
    (4, 250),
    (6, 290),
    (8, 430),
    (9.5, 520),
    (10.5, 520),
    (12, 420),
    (13.5, 400),
    (16, 500),
    (18, 620),
    (19, 680),
    (20, 680),
    (21, 560),
    (23, 380),
    (24, 300),
)
SPIKES_PER_YEAR = 12


def simulate_prices(
    rng: np.random.Generator,
    grid: TimeGrid,
    regional_temp_c: np.ndarray,
    regional_ghi_wm2: np.ndarray,
) -> pd.DataFrame:
    """``prices`` table: ``market`` day_ahead (with ``issue_time``) and real_time rows."""
    n = len(grid.index_15min)
    calendar = np.select(
        [grid.day_types == "holiday", grid.day_types == "weekend"], [0.78, 0.87], 1.0
    )
    for first, _festival, last in grid.spring_festival_blocks():
        lo, hi = (first - grid.dates[0]).days, (last - grid.dates[0]).days + 1
        calendar[max(lo, 0) : max(min(hi, grid.n_days), 0)] = 0.65
    shape = np.tile(profile_96(PRICE_SHAPE), grid.n_days) * np.repeat(calendar, SLOTS_PER_DAY)
    temp_c = smooth(regional_temp_c, 12.0)
    weather = (
        14.0 * np.clip(temp_c - 27.0, 0, None)
        + 9.0 * np.clip(5.0 - temp_c, 0, None)
        - 170.0 * regional_ghi_wm2 / 1000.0
    )
    day_level = np.repeat(ar1(rng, grid.n_days, 5.0, 30.0), SLOTS_PER_DAY)
    day_ahead = shape + weather + day_level + ar1(rng, n, 8.0, 25.0)

    stress = 1.0 + np.abs(temp_c - 20.0) / 15.0
    real_time = day_ahead + ar1(rng, n, 6.0, 55.0) * stress
    n_spikes = rng.poisson(SPIKES_PER_YEAR * grid.n_days / 365.25)
    evening = (grid.local_hour_15min >= 17) & (grid.local_hour_15min < 22)
    weight = np.exp((temp_c - 30.0) / 3.0) * np.where(evening, 1.0, 0.1)
    for start in rng.choice(n, size=n_spikes, replace=False, p=weight / weight.sum()):
        length = int(rng.integers(1, 5))
        real_time[start : start + length] += rng.uniform(300.0, 900.0)

    day_ahead = np.round(np.clip(day_ahead, PRICE_FLOOR_CNY_PER_MWH, PRICE_CAP_CNY_PER_MWH), 2)
    real_time = np.round(np.clip(real_time, PRICE_FLOOR_CNY_PER_MWH, PRICE_CAP_CNY_PER_MWH), 2)
    delivery_day = np.repeat(np.arange(grid.n_days), SLOTS_PER_DAY)
    issue_local = pd.DatetimeIndex([grid.local_midnight(d) for d in grid.dates]) - pd.Timedelta(
        hours=24 - DAY_AHEAD_ISSUE_LOCAL_HOUR
    )
    issue_utc = issue_local.tz_convert("UTC").as_unit(grid.index_15min.unit)[delivery_day]
    no_issue = pd.DatetimeIndex([pd.NaT] * n, dtype=grid.index_15min.dtype)
    return pd.DataFrame(
        {
            "timestamp": grid.index_15min.append(grid.index_15min),
            "issue_time": issue_utc.append(no_issue),
            "market": np.repeat(np.array(["day_ahead", "real_time"], dtype=object), n),
            "price_cny_per_mwh": np.concatenate([day_ahead, real_time]),
        }
    )
