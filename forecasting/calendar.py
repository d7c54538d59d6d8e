"""Calendar features in a site's local time, with public holidays and swapped working days.

China moves working days around its public holidays (调休): some Saturdays and Sundays
become working days ("swapped working weekends", ``holidays.China().weekend_workdays``)
and some weekdays become rest days. A day is a *working day* when it is a weekday that
is not a public or swapped rest day, or a weekend day that was swapped to work.

All functions take tz-aware timestamps (any zone) and a site timezone; naive input
is refused. Day types:

- ``workday``  ordinary working weekday
- ``swapped_workday`` a Saturday/Sunday made a working day by the holiday schedule
- ``weekend``  an ordinary Saturday/Sunday
- ``holiday``  a public holiday or a swapped rest day (Spring Festival included)

References: ``holidays`` package (vacanza/holidays), State Council holiday notices.
"""

from __future__ import annotations

import datetime as dt
import logging
from functools import lru_cache

import holidays
import numpy as np
import pandas as pd

from forecasting.errors import NaiveTimestampError, UnknownValueError

log = logging.getLogger(__name__)

DAY_TYPES = ("workday", "swapped_workday", "weekend", "holiday")
# Countries that move working days around their holidays, announced year by year.
SWAPPING_COUNTRIES = ("CN",)
SPRING_FESTIVAL_NAME_ZH = "春节"


@lru_cache(maxsize=64)
def _country_calendar(country: str, year: int) -> holidays.HolidayBase:
    try:
        if country == "CN":
            return holidays.China(years=year, language="zh_CN")
        code, _, subdivision = country.partition("-")  # e.g. GB-ENG: England's bank holidays
        return holidays.country_holidays(code, subdiv=subdivision or None, years=year,
                                         language="en_US")
    except NotImplementedError as err:  # pragma: no cover - depends on holidays' coverage
        raise UnknownValueError(
            f"holiday_country {country!r} is not known to the holidays package; "
            "give an ISO 3166 alpha-2 code such as 'CN' or 'NL', optionally with a "
            "subdivision such as 'GB-ENG'"
        ) from err


@lru_cache(maxsize=64)
def holiday_dates(country: str | None, year: int) -> frozenset[dt.date]:
    """Public holidays and swapped rest days of ``country`` in ``year`` (empty if no country)."""
    if not country:
        return frozenset()
    return frozenset(d for d in _country_calendar(country, year) if d.year == year)


@lru_cache(maxsize=64)
def swapped_workdays(country: str | None, year: int) -> frozenset[dt.date]:
    """Weekend days of ``year`` that the holiday schedule made working days."""
    if not country:
        return frozenset()
    cal = _country_calendar(country, year)
    days = getattr(cal, "weekend_workdays", set())
    return frozenset(d for d in days if d.year == year)


@lru_cache(maxsize=64)
def schedule_announced(country: str | None, year: int) -> bool:
    """False when ``country`` swaps working days (China) but none are known for ``year``.

    China's State Council announces each year's schedule late in the year before; until
    the ``holidays`` package carries it, that year's days are typed by the ordinary week
    and the swapped working weekends are missed. Logged once per country and year.
    """
    if country not in SWAPPING_COUNTRIES or swapped_workdays(country, year):
        return True
    log.warning("holiday_country %s: no swapped working days known for %d (not yet announced "
                "or holidays %s too old); that year's days follow the ordinary week",
                country, year, holidays.__version__)
    return False


@lru_cache(maxsize=64)
def spring_festival(year: int) -> dt.date:
    """First day of the Chinese New Year (春节) in ``year``."""
    cal = _country_calendar("CN", year)
    days = sorted(d for d, name in cal.items() if SPRING_FESTIVAL_NAME_ZH == name and d.year == year)
    if not days:  # pragma: no cover - holidays covers 2001+
        raise UnknownValueError(f"no Spring Festival date known for {year}")
    return days[0]


def _require_aware(index: pd.DatetimeIndex, name: str) -> None:
    if index.tz is None:
        raise NaiveTimestampError(
            f"{name} has naive timestamps; give them a UTC offset or a timezone "
            "(e.g. '2024-01-15T14:30:00+08:00') — local time without a zone is ambiguous"
        )


def local_dates(timestamps: pd.DatetimeIndex, timezone: str) -> pd.Index:
    """Calendar date of each timestamp in the site's zone."""
    _require_aware(timestamps, "timestamps")
    return pd.Index(timestamps.tz_convert(timezone).date)


def day_types(dates: pd.Index | list[dt.date], country: str | None) -> np.ndarray:
    """Day type (see module doc) of each local date; array of strings."""
    dates = pd.Index(dates)
    out = np.empty(len(dates), dtype=object)
    cache: dict[dt.date, str] = {}
    for i, d in enumerate(dates):
        t = cache.get(d)
        if t is None:
            t = day_type(d, country)
            cache[d] = t
        out[i] = t
    return out


def day_type(date: dt.date, country: str | None) -> str:
    """Day type of one local date."""
    if date in holiday_dates(country, date.year):
        return "holiday"
    if date in swapped_workdays(country, date.year):
        return "swapped_workday"
    return "weekend" if date.weekday() >= 5 else "workday"


def is_working_day(date: dt.date, country: str | None) -> bool:
    """True on ordinary working weekdays and on swapped working weekends."""
    return day_type(date, country) in ("workday", "swapped_workday")


def days_to_spring_festival(dates: pd.Index) -> np.ndarray:
    """Signed days from each date to the nearest Spring Festival (negative before it)."""
    dates = pd.Index(dates)
    out = np.empty(len(dates), dtype=float)
    for i, d in enumerate(dates):
        candidates = [spring_festival(y) for y in (d.year - 1, d.year, d.year + 1)]
        deltas = [(d - c).days for c in candidates]
        out[i] = min(deltas, key=abs)
    return out


def calendar_features(
    timestamps: pd.DatetimeIndex, timezone: str, country: str | None
) -> pd.DataFrame:
    """Calendar features of the interval starting at each timestamp, in local time.

    Columns: ``cal_minute_of_day`` (local, 0..1439), ``cal_day_of_week`` (0 = Monday),
    ``cal_is_working_day``, ``cal_is_holiday``, ``cal_is_swapped_workday``,
    ``cal_is_weekend``, ``cal_day_of_year_sin``/``_cos``, ``cal_days_to_spring_festival``
    (clipped to ±30, China only, NaN elsewhere), ``cal_prev_day_working`` and
    ``cal_next_day_working`` (bridge days around holidays).
    """
    _require_aware(timestamps, "timestamps")
    local = timestamps.tz_convert(timezone)
    dates = pd.Index(local.date)
    unique = pd.Index(dates.unique())
    types = pd.Series(day_types(unique, country), index=unique)
    prev_types = pd.Series(
        day_types(pd.Index([d - dt.timedelta(days=1) for d in unique]), country), index=unique
    )
    next_types = pd.Series(
        day_types(pd.Index([d + dt.timedelta(days=1) for d in unique]), country), index=unique
    )
    t = types.reindex(dates).to_numpy()
    working = {"workday", "swapped_workday"}
    doy = local.day_of_year.to_numpy()
    feats = {
        "cal_minute_of_day": (local.hour * 60 + local.minute).to_numpy(),
        "cal_day_of_week": local.day_of_week.to_numpy(),
        "cal_is_working_day": np.isin(t, list(working)).astype(np.int8),
        "cal_is_holiday": (t == "holiday").astype(np.int8),
        "cal_is_swapped_workday": (t == "swapped_workday").astype(np.int8),
        "cal_is_weekend": (t == "weekend").astype(np.int8),
        "cal_prev_day_working": np.isin(prev_types.reindex(dates).to_numpy(), list(working)).astype(
            np.int8
        ),
        "cal_next_day_working": np.isin(next_types.reindex(dates).to_numpy(), list(working)).astype(
            np.int8
        ),
        "cal_day_of_year_sin": np.sin(2 * np.pi * doy / 365.25),
        "cal_day_of_year_cos": np.cos(2 * np.pi * doy / 365.25),
    }
    if country == "CN":
        sf = pd.Series(days_to_spring_festival(unique), index=unique)
        feats["cal_days_to_spring_festival"] = np.clip(sf.reindex(dates).to_numpy(), -30, 30)
    else:
        feats["cal_days_to_spring_festival"] = np.full(len(local), np.nan)
    return pd.DataFrame(feats, index=timestamps)
