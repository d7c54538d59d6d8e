"""GEFCom2014 load track: one US utility's hourly load (MW) and 25 stations' temperature.

Source: ../shared/data/gefcom2014_load/SOURCE.txt (Hong et al. 2016, IJF 32(3); organiser
data, research use with citation). ``gefcom2014_load_history_2001_2011.csv.gz``: ZONEID,
TIMESTAMP (local, hour-ending, no DST), LOAD (MW, from 2005), w1..w25 (deg F, from 2001).

Choices made here:

- **Site** ``gefcom_load``, kind load, hourly, timezone ``Etc/GMT+5`` (UTC-05:00 all year:
  the data are local time without DST shifts; the utility is in the US East, the offset
  only places the calendar days), holiday calendar US.
- **Load**: ``load_kw = LOAD x 1000`` (the benchmark scores in MW again). Hour-ending stamps
  become interval starts (``- 1 h``).
- **Temperature**: ``temp_air_c`` = the mean of the 25 stations, converted from deg F
  (the organisers did not say which stations matter; winners selected station blends, a
  mean is the plain choice).
- **Weather rows**: the temperature is written as observations (no ``issue_time``) for
  2001-2011, and, from ``forecast_from`` on, also as day-ahead "forecasts" (one run a day
  issued 00:00 UTC for the next 48 h) equal to the observed temperature: GEFCom gave no
  weather forecasts, and a model learns how load follows temperature from rows that have
  it. ``frames(forecast_until=...)`` leaves out the runs issued at or after a time, so a
  month forecast issued at its start sees no temperature of the month (the competition's
  setting: the service then answers from weather scenarios).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.adapters import cli, dataset_dir

NAME = "gefcom2014_load"
FILE = "gefcom2014_load_history_2001_2011.csv.gz"
SITE_ID = "gefcom_load"
TIMEZONE = "Etc/GMT+5"  # POSIX sign: UTC-05:00
STATIONS = tuple(f"w{i}" for i in range(1, 26))
FORECAST_FROM = pd.Timestamp("2008-01-01", tz="UTC")
RUN_HOURS = 48


def read_raw(root=None) -> pd.DataFrame:
    raw = pd.read_csv(dataset_dir(NAME, root, probe=FILE) / FILE)
    local = pd.to_datetime(raw["TIMESTAMP"]) - pd.Timedelta(hours=1)  # interval start
    raw["timestamp"] = local.dt.tz_localize(TIMEZONE).dt.tz_convert("UTC").astype(
        "datetime64[ns, UTC]")
    return raw


def temperature_c(raw: pd.DataFrame) -> pd.Series:
    """Mean of the 25 stations, deg C, by UTC interval start."""
    f = raw[list(STATIONS)].mean(axis=1)
    return pd.Series(((f - 32.0) * 5.0 / 9.0).to_numpy(), index=raw["timestamp"])


def pseudo_forecasts(temp: pd.Series, since: pd.Timestamp, until: pd.Timestamp | None
                     ) -> pd.DataFrame:
    """Runs issued daily at 00 UTC from ``since`` (before ``until``), 48 h each, equal to
    the observed temperature (see the module doc)."""
    last = temp.index.max() if until is None else min(temp.index.max(), until)
    issues = pd.date_range(since, last, freq="1D", inclusive="left")
    if until is not None:
        issues = issues[issues < until]
    steps = np.arange(RUN_HOURS) * np.timedelta64(1, "h")
    valid = (issues.values[:, None] + steps[None, :]).ravel()
    issue = np.repeat(issues.values, RUN_HOURS)
    values = temp.reindex(pd.DatetimeIndex(valid, tz="UTC")).to_numpy()
    out = pd.DataFrame({"site_id": SITE_ID, "timestamp": pd.DatetimeIndex(valid, tz="UTC"),
                        "issue_time": pd.DatetimeIndex(issue, tz="UTC"),
                        "temp_air_c": values})
    return out.dropna(subset=["temp_air_c"])


def frames(root=None, forecast_until: pd.Timestamp | None = None,
           raw: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Portfolio tables; ``forecast_until``: no pseudo-forecast run issued at or after it."""
    raw = read_raw(root) if raw is None else raw
    sites = pd.DataFrame([{"site_id": SITE_ID, "kind": "load", "timezone": TIMEZONE,
                           "resolution_minutes": 60, "holiday_country": "US"}])
    loaded = raw.dropna(subset=["LOAD"])
    meas = pd.DataFrame({"site_id": SITE_ID, "timestamp": loaded["timestamp"],
                         "load_kw": loaded["LOAD"].to_numpy(float) * 1000.0})
    temp = temperature_c(raw)
    obs = pd.DataFrame({"site_id": SITE_ID, "timestamp": temp.index,
                        "issue_time": pd.Series(pd.NaT, index=range(len(temp)),
                                                dtype="datetime64[ns, UTC]").to_numpy(),
                        "temp_air_c": temp.to_numpy()})
    obs["issue_time"] = pd.to_datetime(obs["issue_time"], utc=True)
    runs = pseudo_forecasts(temp, FORECAST_FROM, forecast_until)
    return {"sites": sites, "measurements": meas,
            "weather": pd.concat([obs, runs], ignore_index=True)}


def task_month(task: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """Interval starts [first, end) of task ``task``'s month (task 1 = October 2010), UTC:
    local (UTC-05:00) 00:00 of the month's first day to that of the next month's."""
    first = pd.Timestamp("2010-10-01") + pd.DateOffset(months=task - 1)
    end = first + pd.DateOffset(months=1)
    return (first.tz_localize(TIMEZONE).tz_convert("UTC"),
            end.tz_localize(TIMEZONE).tz_convert("UTC"))


def leaderboard(root=None) -> pd.DataFrame:
    """Per task: the benchmark, #1, #2, #10, #20 (tidy file) and the median of the scraped
    top 20 (positions 10 and 11), MW."""
    folder = dataset_dir(NAME, root, probe="leaderboard_load_per_task.csv")
    tidy = pd.read_csv(folder / "leaderboard_load_per_task.csv").set_index("task")
    top = pd.read_csv(folder / "original" / "epfl_scraped_leaderboard_top20_per_task.csv",
                      index_col=0)
    top.index = top.index.astype(int)
    tidy["median_top20"] = top.median(axis=1).reindex(tidy.index)
    return tidy


if __name__ == "__main__":
    cli(NAME, frames)
