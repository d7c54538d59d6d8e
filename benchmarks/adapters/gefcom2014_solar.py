"""GEFCom2014 solar track: 3 PV plants, hourly power (0..1 of capacity) and ECMWF NWP.

Source: ../shared/data/gefcom2014_solar/SOURCE.txt (Hong et al. 2016, IJF 32(3); public
research data). ``gefcom2014_solar_full.csv.gz``: ZONEID, TIMESTAMP_UTC (hour-ending),
12 ECMWF variables, POWER; 2012-04-01 .. 2014-07-01 (zones 1 and 2 end 2014-06-01, so task
15, June 2014, exists for zone 3 only).

Choices made here:

- **Sites** ``zone1``..``zone3``, kind pv, location about -35.3, 149.1 (the organisers never
  published it; the NWP's solar noon puts the plants there, SOURCE.txt), timezone
  Australia/Sydney, orientation unknown (left empty: no tilt/azimuth is guessed).
- **Power**: normalised to capacity, so each plant is written as a **1 kW** plant
  (``capacity_kw = 1``) and ``pv_power_kw = POWER``: scores in kW are scores on normalised
  power, as GEFCom scored them. Hour-ending stamps become interval starts (``- 1 h``).
- **NWP**: one ECMWF run a day at 00 UTC covering valid times 01:00..24:00 UTC; each row's
  ``issue_time`` is that run's 00 UTC (the dissemination delay of a few hours is not
  modelled: GEFCom gave a month's NWP at once). Accumulated fields are de-accumulated with
  ``forecasting.solar.deaccumulate`` per run: SSRD (J/m2) -> ``ghi_wm2`` (mean W/m2 over the
  hour), TP (m) -> ``precipitation_mm`` (mm/h). Instantaneous fields are averaged over the
  interval (mean of its start and end valid times): 2 m temperature K -> ``temp_air_c``,
  TCC -> ``cloud_cover_frac`` (clipped to 0..1), RH at 1000 hPa -> ``relative_humidity_pct``
  (clipped to 0..100), surface pressure Pa -> ``pressure_hpa``, 10 m U/V ->
  ``wind_speed_10m_mps`` and ``wind_dir_10m_deg`` (meteorological, from). Four fields are
  not in the contract and are written as extra weather columns (DATA_FORMAT.md allows
  adding columns; ``FeatureSpec.extra_weather_columns`` picks them up): total column cloud
  liquid and ice water (kg/m2, ``cloud_liquid_water_kgm2``, ``cloud_ice_water_kgm2``), and
  de-accumulated STRD and TSR (W/m2, ``thermal_down_wm2``, ``toa_net_solar_wm2``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.adapters import cli, dataset_dir
from forecasting.solar import deaccumulate

NAME = "gefcom2014_solar"
FILE = "gefcom2014_solar_full.csv.gz"
TIMEZONE = "Australia/Sydney"
LATITUDE_DEG, LONGITUDE_DEG = -35.3, 149.1
ZONES = (1, 2, 3)
# NWP fields outside the contract's weather columns, written as extra columns.
EXTRA_WEATHER_COLUMNS = ("cloud_liquid_water_kgm2", "cloud_ice_water_kgm2", "thermal_down_wm2",
                         "toa_net_solar_wm2")


def site_id(zone: int) -> str:
    return f"zone{zone}"


def read_raw(root=None) -> pd.DataFrame:
    raw = pd.read_csv(dataset_dir(NAME, root, probe=FILE) / FILE)
    raw["valid"] = pd.to_datetime(raw["TIMESTAMP_UTC"], utc=True).astype("datetime64[ns, UTC]")
    return raw


def _zone_weather(z: pd.DataFrame) -> pd.DataFrame:
    z = z.set_index("valid").sort_index()
    acc = deaccumulate(z[["VAR169", "VAR175", "VAR178"]], issue_hours_utc=(0,),
                       max_span_minutes=60)
    rain = deaccumulate(z[["VAR228"]], issue_hours_utc=(0,), unit_factor=1000.0,
                        per_seconds=3600.0, max_span_minutes=60)
    inst = z[["VAR78", "VAR79", "VAR134", "VAR157", "VAR164", "VAR165", "VAR166", "VAR167"]]
    before = inst.shift(1, freq="1h").reindex(inst.index)  # value at the interval start
    mean = (inst + before.fillna(inst)) / 2.0
    u, v = mean["VAR165"].to_numpy(), mean["VAR166"].to_numpy()
    start = z.index - pd.Timedelta(hours=1)
    return pd.DataFrame({
        "timestamp": start,
        "issue_time": (z.index - pd.Timedelta(1, "ns")).floor("D"),
        "temp_air_c": mean["VAR167"].to_numpy() - 273.15,
        "relative_humidity_pct": np.clip(mean["VAR157"].to_numpy(), 0, 100),
        "pressure_hpa": mean["VAR134"].to_numpy() / 100.0,
        "cloud_cover_frac": np.clip(mean["VAR164"].to_numpy(), 0, 1),
        "ghi_wm2": np.clip(acc["VAR169"].to_numpy(), 0, 1500),
        "precipitation_mm": rain["VAR228"].to_numpy(),
        "wind_speed_10m_mps": np.hypot(u, v),
        "wind_dir_10m_deg": np.mod(np.degrees(np.arctan2(-u, -v)), 360.0),
        # not in the contract (extra columns, EXTRA_WEATHER_COLUMNS):
        "cloud_liquid_water_kgm2": mean["VAR78"].to_numpy(),
        "cloud_ice_water_kgm2": mean["VAR79"].to_numpy(),
        "thermal_down_wm2": np.clip(acc["VAR175"].to_numpy(), 0, None),
        "toa_net_solar_wm2": np.clip(acc["VAR178"].to_numpy(), 0, None),
    })


def frames(root=None) -> dict[str, pd.DataFrame]:
    raw = read_raw(root)
    sites = pd.DataFrame([{"site_id": site_id(z), "kind": "pv", "timezone": TIMEZONE,
                           "latitude_deg": LATITUDE_DEG, "longitude_deg": LONGITUDE_DEG,
                           "capacity_kw": 1.0} for z in ZONES])
    meas, weather = [], []
    for zone, z in raw.groupby("ZONEID"):
        sid = site_id(int(zone))
        meas.append(pd.DataFrame({"site_id": sid, "timestamp": z["valid"] - pd.Timedelta(hours=1),
                                  "pv_power_kw": np.clip(z["POWER"].to_numpy(float), 0, None)}))
        wx = _zone_weather(z)
        wx.insert(0, "site_id", sid)
        weather.append(wx)
    return {"sites": sites, "measurements": pd.concat(meas, ignore_index=True),
            "weather": pd.concat(weather, ignore_index=True)}


def task_month(task: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Interval starts [first, end) of task ``task``'s month (task 1 = April 2013), UTC.

    The month's hour-ending stamps run from 01:00 on its first day to 00:00 on the next
    month's first day, i.e. interval starts 00:00 .. 23:00 of the month.
    """
    first = pd.Timestamp("2013-04-01", tz="UTC") + pd.DateOffset(months=task - 1)
    return first, first + pd.DateOffset(months=1)


def leaderboard(root=None) -> pd.DataFrame:
    """Per-task published scores (benchmark, best team, winner, median team), by task."""
    folder = dataset_dir(NAME, root, probe="leaderboard_solar_per_task.csv")
    return pd.read_csv(folder / "leaderboard_solar_per_task.csv").set_index("task")


if __name__ == "__main__":
    cli(NAME, frames)
