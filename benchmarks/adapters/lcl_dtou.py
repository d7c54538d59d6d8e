"""Low Carbon London dynamic time-of-use trial 2013 (lcl_dtou_dr), read in place.

Source and licence: ../shared/data/lcl_dtou_dr/SOURCE.txt (UKPN Low Carbon London, open
licence with attribution; the group aggregate derived by groupoasys, GPL-3.0). Real data.

Choices the files do not settle:

- **Customers.** ``dToU_group_aggregate_demand_2013.csv`` holds, per half hour, the mean
  kWh per household of three groups of dToU households: ``flex`` (the most price-flexible
  cluster, about 40-49 homes), ``noflex`` (the others, about 310-380) and ``all``. Each group
  is one customer-like load ``lcl_<group>``: the **average household** of the group, in kW
  (mean kWh per half hour x 2). Reductions are therefore per household.
- **Clock.** Every day of 2013 has 48 half hours in both files (17,520 rows, no daylight-
  saving gap or repeat), which a British wall clock does not: stamps are read as UTC (GMT
  all year). Calendar and clock windows use ``Europe/London``.
- **Holidays.** ``holiday_country='GB'`` (the project calendar, ``holidays`` package) holds
  the UK-wide bank holidays only; England's Easter Monday and Summer Bank Holiday are
  missing from it. ``uncovered_bank_holidays`` lists the dates of ``uk_bank_holidays.csv``
  the calendar does not type as holidays; ``load_dataset`` adds them to every customer's
  excluded days (``event_days``), so that they never stand in for a working day in a pool and
  no placebo window falls on them (2013: 1 April, 26 August; no price event on either).
- **Events.** ``dToU_tariff_schedule_2013.csv`` gives the tariff of every half hour (High
  67.20 p/kWh, Low 3.99 p/kWh, Normal 11.76 p/kWh). A run of consecutive High (Low) half
  hours is one event block: ``event_type`` ``peak_shaving`` (``valley_filling``) with
  ``price_signal`` High (Low). Signals were sent day-ahead: ``notice_time`` is taken as 12:00
  London time of the day before the block starts (the trial's exact send time is not in the
  files). ``target_kw`` is NaN: households committed to nothing. Every day a block touches
  is an event day for all three groups (all dToU homes received the same signals).
- **Weather.** Hourly DarkSky observations (``london_weather_hourly_darksky_2011_2014.csv``,
  stamps read as UTC): ``temp_air_c``, ``relative_humidity_pct``, ``cloud_cover_frac``,
  ``pressure_hpa``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.adapters import cli, dataset_dir
from forecasting.calendar import day_type
from inference.baseline_data import EvalDataset

NAME = "lcl_dtou_dr"
TIMEZONE = "Europe/London"
HOLIDAY_COUNTRY = "GB"
GROUPS = ("flex", "noflex", "all")
RESOLUTION = pd.Timedelta(minutes=30)
SIGNALS = {"High": "peak_shaving", "Low": "valley_filling"}
NOTICE_LOCAL_HOUR = 12  # day-ahead notice: noon of the day before (assumed, see module doc)


def data_dir(root: Path | None = None) -> Path:
    """The shared folder ``NAME``; ``SharedDataMissingError`` when it is absent."""
    return dataset_dir(NAME, root, probe="dToU_group_aggregate_demand_2013.csv")


def customer_id(group: str) -> str:
    return f"lcl_{group}"


def _utc(values) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(values)).tz_localize("UTC").as_unit("ns")


def read_demand(root: Path | None = None) -> pd.DataFrame:
    """Average-household load per group (kW), UTC index of half-hour starts, columns
    ``flex``, ``noflex``, ``all``; plus ``price_gbp_per_kwh`` (the applied tariff)."""
    raw = pd.read_csv(data_dir(root) / "dToU_group_aggregate_demand_2013.csv")
    idx = _utc(raw["DateTime"])
    out = pd.DataFrame({g: raw[f"mean_{g}"].to_numpy(dtype=float) * 2.0 for g in GROUPS},
                       index=idx)
    out["price_gbp_per_kwh"] = raw["Price"].to_numpy(dtype=float)
    out.index.name = "timestamp"
    steps = np.unique(np.diff(out.index.asi8))
    if len(steps) != 1 or steps[0] != RESOLUTION.value:
        raise ValueError(f"{NAME}: the demand file is not a regular 30-minute grid")
    return out


def read_tariffs(root: Path | None = None) -> pd.Series:
    """Tariff (``High``, ``Low``, ``Normal``) per half hour, UTC index."""
    raw = pd.read_csv(data_dir(root) / "dToU_tariff_schedule_2013.csv")
    return pd.Series(raw["Tariff"].to_numpy(), index=_utc(raw["TariffDateTime"]),
                     name="tariff")


def event_blocks(tariffs: pd.Series) -> pd.DataFrame:
    """One row per run of High or Low half hours: ``price_signal``, ``start``, ``end`` (UTC,
    end exclusive), ``notice_time``, ``n_intervals``. A run cut by the first or last stamp
    of ``tariffs`` is left out (its length is unknown)."""
    run = (tariffs != tariffs.shift()).cumsum()
    rows = []
    for _, part in tariffs.groupby(run, sort=True):
        signal = part.iloc[0]
        if signal not in SIGNALS or part.index[0] == tariffs.index[0] \
                or part.index[-1] == tariffs.index[-1]:
            continue
        start, end = part.index[0], part.index[-1] + RESOLUTION
        day_before = start.tz_convert(TIMEZONE).normalize() - pd.Timedelta(days=1)
        notice = (day_before + pd.Timedelta(hours=NOTICE_LOCAL_HOUR)).tz_convert("UTC")
        rows.append({"price_signal": signal, "start": start, "end": end,
                     "notice_time": notice, "n_intervals": len(part)})
    return pd.DataFrame(rows)


def block_days(blocks: pd.DataFrame) -> frozenset[dt.date]:
    """London dates touched by any block."""
    from forecasting.portfolio import event_days

    return event_days(blocks["start"], blocks["end"], TIMEZONE)


def bank_holidays(root: Path | None = None) -> frozenset[dt.date]:
    """England and Wales bank holidays 2011-2014 (``uk_bank_holidays.csv``)."""
    text = (data_dir(root) / "uk_bank_holidays.csv").read_text().split()
    return frozenset(dt.date.fromisoformat(d) for d in text)


def uncovered_bank_holidays(root: Path | None = None, year: int = 2013) -> frozenset[dt.date]:
    """Bank holidays of ``year`` that ``holiday_country='GB'`` does not type as holidays."""
    return frozenset(d for d in bank_holidays(root) if d.year == year
                     and day_type(d, HOLIDAY_COUNTRY) != "holiday")


def read_weather(root: Path | None = None) -> pd.DataFrame:
    """Hourly observed weather, column ``timestamp`` (UTC) and DATA_FORMAT columns."""
    raw = pd.read_csv(data_dir(root) / "london_weather_hourly_darksky_2011_2014.csv")
    out = pd.DataFrame({
        "timestamp": _utc(raw["time"]),
        "temp_air_c": raw["temperature"].to_numpy(dtype=float),
        "relative_humidity_pct": 100 * raw["humidity"].to_numpy(dtype=float),
        "cloud_cover_frac": raw["cloudCover"].to_numpy(dtype=float),
        "pressure_hpa": raw["pressure"].to_numpy(dtype=float),
    })
    return out.drop_duplicates("timestamp").sort_values("timestamp", ignore_index=True)


def events_table(blocks: pd.DataFrame, groups=GROUPS) -> pd.DataFrame:
    """events.csv rows: one per block and group customer (DATA_FORMAT), plus
    ``price_signal``."""
    rows = []
    for b in blocks.itertuples():
        eid = f"{b.price_signal.lower()}-{b.start.strftime('%Y%m%dT%H%M')}"
        for g in groups:
            rows.append({"event_id": eid, "customer_id": customer_id(g),
                         "event_type": SIGNALS[b.price_signal], "notice_time": b.notice_time,
                         "start": b.start, "end": b.end, "target_kw": np.nan,
                         "price_signal": b.price_signal})
    return pd.DataFrame(rows)


def load_dataset(root: Path | None = None, groups=GROUPS, first_days: int | None = None
                 ) -> tuple[EvalDataset, pd.DataFrame]:
    """The groups as an ``EvalDataset`` and the event blocks (``event_blocks``).

    ``first_days``: keep only the first that many days (tests).
    """
    demand = read_demand(root)
    tariffs = read_tariffs(root)
    if not demand.index.equals(tariffs.index):
        raise ValueError(f"{NAME}: demand and tariff files do not share one time grid")
    if first_days:
        cut = demand.index[0] + pd.Timedelta(days=first_days)
        demand, tariffs = demand[demand.index < cut], tariffs[tariffs.index < cut]
    blocks = event_blocks(tariffs)
    weather = read_weather(root)
    weather = weather[(weather["timestamp"] >= demand.index[0] - pd.Timedelta(days=2))
                      & (weather["timestamp"] <= demand.index[-1] + pd.Timedelta(days=1))]
    excluded = block_days(blocks) | uncovered_bank_holidays(root)
    loads = {customer_id(g): demand[g].rename("load_kw") for g in groups}
    data = EvalDataset(NAME, loads, TIMEZONE, HOLIDAY_COUNTRY,
                       weather={c: weather for c in loads},
                       event_days={c: excluded for c in loads},
                       notes="LCL dToU 2013: average household of each group, 30-minute, "
                             "real price events")
    return data, blocks


def frames(root: Path | None = None) -> dict[str, pd.DataFrame]:
    """Portfolio tables (DATA_FORMAT.md): sites, measurements, weather, events."""
    data, blocks = load_dataset(root)
    sites = pd.DataFrame([{"site_id": c, "kind": "load", "timezone": TIMEZONE,
                           "customer_id": c, "holiday_country": HOLIDAY_COUNTRY,
                           "latitude_deg": 51.51, "longitude_deg": -0.13}
                          for c in data.loads])
    measurements = pd.concat([pd.DataFrame({"site_id": c, "timestamp": s.index,
                                            "load_kw": s.to_numpy()})
                              for c, s in data.loads.items()], ignore_index=True)
    wx = next(iter(data.weather.values()))
    weather = pd.concat([wx.assign(site_id=c) for c in data.loads], ignore_index=True)
    events = events_table(blocks, [c.removeprefix("lcl_") for c in data.loads])
    return {"sites": sites, "measurements": measurements, "weather": weather,
            "events": events}


if __name__ == "__main__":
    cli(NAME, frames)
