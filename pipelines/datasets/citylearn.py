"""CityLearn Challenge 2022 (17 homes, Fontana CA, one year hourly) read in place.

Source and licence: ../shared/data/citylearn_2022/SOURCE.txt (CityLearn, MIT; EPRI/CSI ZNE
community study). The files carry no calendar year: ``month``, ``hour`` 1-24 (hour ending)
and ``day_type`` 1-7 (Monday..Sunday; 8 = holiday never occurs). Row 0 is hour 24 of a
Sunday in July followed by Monday 1 August, and 8,760 rows later the year ends: consistent
with 2016-07-31 23:00 .. 2017-07-31 22:00 (1 Aug 2016 was a Monday), which is what we use.
``daylight_savings_status`` is 0 throughout and no hour repeats or is missing, so the clock
is taken as Pacific standard time all year (``Etc/GMT+8``).

Load is ``non_shiftable_load`` (kWh per hour = mean kW; dhw/cooling/heating demands are 0 in
this release): the household's gross consumption, not net of its PV.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from inference.baseline_data import EvalDataset
from pipelines.datasets import dataset_dir

NAME = "citylearn_2022"
TIMEZONE = "Etc/GMT+8"  # PST without daylight saving (see module doc)
HOLIDAY_COUNTRY = "US"
FIRST_INTERVAL_LOCAL = "2016-07-31 23:00"


def data_dir(root: Path | None = None) -> Path:
    """The shared data folder ``NAME`` (``$VPP_SHARED_DATA``); a clear error
    (``SharedDataMissingError``, a ``FileNotFoundError``) when it is absent."""
    return dataset_dir(NAME, root, probe="weather.csv")


def _index(n: int) -> pd.DatetimeIndex:
    local = pd.date_range(FIRST_INTERVAL_LOCAL, periods=n, freq="1h", tz=TIMEZONE)
    return local.tz_convert("UTC")


def read_building(number: int, root: Path | None = None) -> pd.Series:
    """Household load (kW, hourly, UTC index of interval starts) of ``Building_<number>``."""
    frame = pd.read_csv(data_dir(root) / f"Building_{number}.csv")
    idx = _index(len(frame))
    check = pd.Series(idx.tz_convert(TIMEZONE).day_of_week + 1, index=frame.index)
    if not (check == frame["day_type"]).all():
        raise ValueError("CityLearn day_type does not match the assumed calendar")
    return pd.Series(frame["non_shiftable_load"].to_numpy(dtype=float), index=idx,
                     name="load_kw")


def read_weather(root: Path | None = None) -> pd.DataFrame:
    """Observed outdoor temperature (°C) etc., hourly, column ``timestamp`` (UTC)."""
    frame = pd.read_csv(data_dir(root) / "weather.csv")
    return pd.DataFrame({
        "timestamp": _index(len(frame)),
        "temp_air_c": frame["outdoor_dry_bulb_temperature"].to_numpy(dtype=float),
        "relative_humidity_pct": frame["outdoor_relative_humidity"].to_numpy(dtype=float),
    })


def load_dataset(root: Path | None = None, buildings: list[int] | None = None,
                 first_days: int | None = None) -> EvalDataset:
    """The homes as an ``EvalDataset`` (``first_days``: keep only that many days, for tests)."""
    numbers = buildings or list(range(1, 18))
    weather = read_weather(root)
    loads = {}
    for n in numbers:
        load = read_building(n, root)
        if first_days:
            load = load.iloc[: first_days * 24]
        loads[f"building_{n:02d}"] = load
    return EvalDataset(NAME, loads, TIMEZONE, HOLIDAY_COUNTRY,
                       weather={c: weather for c in loads},
                       notes="17 real homes, hourly gross load; no real DR events")
