"""Time grid of the synthetic sample portfolio: local days, 15-minute and hourly stamps.

The synthetic generator works on whole local days in the sites' zone (Asia/Shanghai, which
has no daylight-saving time), so every day has 96 quarter hours and 24 hours and arrays can
be reshaped to ``(n_days, 96)``. Stamps are tz-aware UTC and label the interval start.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.calendar import day_type, spring_festival

SLOTS_PER_DAY = 96
HOURS_PER_DAY = 24


@dataclass(frozen=True)
class TimeGrid:
    """Local days ``[start, end)`` of a zone, with the stamps of their intervals.

    Attributes
    ----------
    timezone : IANA zone of the local days.
    holiday_country : ISO code used for day types.
    dates : local calendar dates, one per day.
    day_types : ``forecasting.calendar`` day type of each date.
    index_15min : UTC start of each 15-minute interval, ``n_days * 96`` stamps.
    index_hourly : UTC start of each hour, ``n_days * 24`` stamps.
    """

    timezone: str
    holiday_country: str
    dates: tuple[dt.date, ...]
    day_types: np.ndarray
    index_15min: pd.DatetimeIndex
    index_hourly: pd.DatetimeIndex

    @property
    def n_days(self) -> int:
        return len(self.dates)

    @property
    def day_of_year(self) -> np.ndarray:
        """Day of year (1..366) of each local date."""
        return np.array([d.timetuple().tm_yday for d in self.dates], dtype=float)

    @property
    def working(self) -> np.ndarray:
        """True on working days (ordinary weekdays and swapped working weekends)."""
        return np.isin(self.day_types, ("workday", "swapped_workday"))

    @property
    def local_hour_15min(self) -> np.ndarray:
        """Local hour (0..24) of the midpoint of each 15-minute interval."""
        slot_hours = (np.arange(SLOTS_PER_DAY) + 0.5) * 24.0 / SLOTS_PER_DAY
        return np.tile(slot_hours, self.n_days)

    @property
    def day_of_year_15min(self) -> np.ndarray:
        """Fractional day of year at the midpoint of each 15-minute interval."""
        return np.repeat(self.day_of_year, SLOTS_PER_DAY) + self.local_hour_15min / 24.0

    def local_midnight(self, date: dt.date) -> pd.Timestamp:
        """Start of ``date`` in the grid's zone, as a tz-aware stamp."""
        return pd.Timestamp(date).tz_localize(self.timezone)

    def day_index(self, date: dt.date) -> int:
        """Position of a local date in the grid (``ValueError`` if outside)."""
        pos = (date - self.dates[0]).days
        if not 0 <= pos < self.n_days:
            raise ValueError(f"{date} is outside the grid {self.dates[0]}..{self.dates[-1]}")
        return pos

    def spring_festival_blocks(self) -> list[tuple[dt.date, dt.date, dt.date]]:
        """(first rest day, Spring Festival day, last rest day) of each Spring Festival
        whose holiday block touches the grid (rest days: holidays and ordinary weekends)."""
        blocks = []
        for year in range(self.dates[0].year, self.dates[-1].year + 2):
            festival = spring_festival(year)
            first = last = festival
            while _is_rest(first - dt.timedelta(days=1), self.holiday_country):
                first -= dt.timedelta(days=1)
            while _is_rest(last + dt.timedelta(days=1), self.holiday_country):
                last += dt.timedelta(days=1)
            if last >= self.dates[0] - dt.timedelta(days=30) and first <= self.dates[-1]:
                blocks.append((first, festival, last))
        return blocks


def _is_rest(date: dt.date, country: str) -> bool:
    return day_type(date, country) in ("holiday", "weekend")


def make_grid(
    start: str | dt.date,
    end: str | dt.date,
    timezone: str = "Asia/Shanghai",
    holiday_country: str = "CN",
) -> TimeGrid:
    """Grid of the local days from ``start`` (inclusive) to ``end`` (exclusive).

    ``start`` and ``end`` are local calendar dates (``'2024-01-01'``), not instants.
    """
    first, stop = pd.Timestamp(start), pd.Timestamp(end)
    if (
        first.tzinfo is not None
        or stop.tzinfo is not None
        or first != first.normalize()
        or stop != stop.normalize()
    ):
        raise ValueError(
            f"start={start!r} and end={end!r} must be local calendar dates like '2024-01-01' "
            f"(midnight in {timezone}), without a time or offset"
        )
    if stop <= first:
        raise ValueError(f"end={end!r} must be after start={start!r} (end is exclusive)")
    dates = tuple(d.date() for d in pd.date_range(first, stop, freq="D", inclusive="left"))
    t0 = first.tz_localize(timezone)
    t1 = stop.tz_localize(timezone)
    index_15min = pd.date_range(t0, t1, freq="15min", inclusive="left").tz_convert("UTC")
    index_hourly = pd.date_range(t0, t1, freq="h", inclusive="left").tz_convert("UTC")
    if len(index_15min) != len(dates) * SLOTS_PER_DAY:
        raise ValueError(
            f"the synthetic generator needs a zone without daylight-saving time; "
            f"{timezone} has days that are not 24 h long between {start} and {end}"
        )
    types = np.array([day_type(d, holiday_country) for d in dates], dtype=object)
    return TimeGrid(timezone, holiday_country, dates, types, index_15min, index_hourly)
