"""Input quality at an issue time: stale or flatlined measurements, missing or stale weather.

``assess(data, issue, targets)`` looks only at what was known at the issue time and
returns an ``InputQuality`` with flags (stable names, used in the forecast ``quality``
column and the logs) and the measurements with flatlined runs removed.

Flags:
- ``flatline_removed``: a run of identical readings long enough to be a stuck meter was
  dropped (load: >= 6 h of any value; wind: >= 6 h of a non-zero value; PV: >= 3 h of a
  non-zero value — zeros are normal at night and in calm weather). A load's run of zeros
  is kept when it lies on non-working days only (a plant shut for a holiday or a weekend)
  or when the checked history holds another such run of zeros (it shuts down normally);
  a PV or wind run at 95 % or more of the site's highest reading (or of its capacity, if
  lower) is a plateau at rated power, not a stuck meter. Only the last ``FLATLINE_LOOKBACK`` (15
  days, the longest lag a forecast reads) are checked: an old run reaches no forecast;
- ``stale_measurements``: the latest usable reading is older than ``max_measurement_age``;
- ``missing_weather``: some target intervals have no weather forecast issued by then;
- ``stale_weather``: the latest weather issue known is older than ``max_weather_age``;
- ``calendar_unannounced``: a target falls in a year whose swapped working days are not
  yet known to the calendar (``forecasting.calendar.schedule_announced``), so its day types
  follow the ordinary week; the forecast is made, the flag says it may miss a swap.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from forecasting.calendar import is_working_day, schedule_announced
from forecasting.portfolio import SiteData, as_utc

FLATLINE_HOURS = {"load": 6.0, "wind": 6.0, "pv": 3.0}
MAX_MEASUREMENT_AGE = pd.Timedelta(days=1)
MAX_WEATHER_AGE = pd.Timedelta(hours=36)
FLATLINE_LOOKBACK = pd.Timedelta(days=15)
PLATEAU_SHARE = 0.95  # of the top output: PV and wind hold their rated power for hours


@dataclass
class InputQuality:
    flags: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    data: SiteData | None = None

    @property
    def ok(self) -> bool:
        return not self.flags

    def add(self, flag: str, message: str) -> None:
        self.flags.append(flag)
        self.messages.append(message)


def flatline_mask(values: pd.Series, kind: str, resolution_minutes: int,
                  timezone: str | None = None, holiday_country: str | None = None,
                  rated_kw: float | None = None) -> np.ndarray:
    """True for readings inside a run of identical values long enough to be a stuck meter.

    For load, a run of zeros is not stuck when the site's history holds another run of
    zeros at least as long (shutdowns are normal there) or, given the site's ``timezone``,
    when every local day it touches is a non-working day (holiday or weekend, with
    ``holiday_country``'s swapped working days). For PV and wind, a run at or above
    ``PLATEAU_SHARE`` of ``rated_kw`` is rated power, not stuck.
    """
    if values.empty:
        return np.zeros(0, dtype=bool)
    v = values.to_numpy(dtype=float)
    idx = values.index
    step = pd.Timedelta(minutes=resolution_minutes)
    # a new run starts where the value changes or a gap interrupts
    new_run = np.ones(len(v), dtype=bool)
    new_run[1:] = (v[1:] != v[:-1]) | (np.diff(idx.as_unit("ns").asi8) != step.value)
    run_id = np.cumsum(new_run)
    run_len = np.bincount(run_id)[run_id]
    min_len = int(FLATLINE_HOURS[kind] * 60 / resolution_minutes)
    stuck = run_len >= min_len
    if kind in ("pv", "wind"):
        stuck &= v != 0
        if rated_kw:
            stuck &= v < PLATEAU_SHARE * rated_kw
    elif kind == "load":
        stuck &= ~_normal_zero_runs(v, idx, run_id, stuck, timezone, holiday_country)
    return stuck


def _normal_zero_runs(v: np.ndarray, idx: pd.DatetimeIndex, run_id: np.ndarray,
                      long_run: np.ndarray, timezone: str | None,
                      holiday_country: str | None) -> np.ndarray:
    """True for readings in long runs of zeros that are shutdowns, not a stuck meter."""
    zero_runs = np.unique(run_id[long_run & (v == 0)])
    normal = np.zeros(len(v), dtype=bool)
    if len(zero_runs) >= 2:  # the site's own history shows shutdowns
        normal[np.isin(run_id, zero_runs)] = True
        return normal
    if timezone is None or not len(zero_runs):
        return normal
    rows = run_id == zero_runs[0]
    days = set(idx[rows].tz_convert(timezone).date)
    if not any(is_working_day(d, holiday_country) for d in days):
        normal[rows] = True
    return normal


def assess(data: SiteData, issue_time, targets: pd.DatetimeIndex,
           weather_columns: list[str] | tuple[str, ...] = (),
           max_measurement_age: pd.Timedelta = MAX_MEASUREMENT_AGE,
           max_weather_age: pd.Timedelta = MAX_WEATHER_AGE) -> InputQuality:
    """Quality of the inputs known at ``issue_time`` for forecasting ``targets``."""
    issue = as_utc(issue_time, "issue_time")
    site = data.site
    known = data.known_at(issue)
    report = InputQuality()
    history = known.values_kw
    # the practical top output: farms seldom reach nameplate (losses, availability)
    rated = min(site.capacity_kw or np.inf, float(history.max()) if len(history) else np.inf)
    rated = rated if np.isfinite(rated) and rated > 0 else None
    mask = np.zeros(len(history), dtype=bool)
    recent = np.asarray(history.index >= issue - FLATLINE_LOOKBACK)
    mask[recent] = flatline_mask(history[recent], site.kind, site.resolution_minutes,
                                 site.timezone, site.holiday_country, rated)
    if mask.any():
        first = known.values_kw.index[mask][0]
        report.add("flatline_removed",
                   f"site {site.site_id}: {int(mask.sum())} flatlined readings from {first} "
                   "dropped (stuck meter?)")
        known = replace(known, values_kw=known.values_kw[~mask])
    res = pd.Timedelta(minutes=site.resolution_minutes)
    last = known.values_kw.index.max() + res if not known.values_kw.empty else None
    if last is None or issue - last > max_measurement_age:
        report.add("stale_measurements",
                   f"site {site.site_id}: latest usable reading ends {last}, "
                   f"{'never' if last is None else issue - last} before the issue time")
    if weather_columns:
        fc = known.weather[known.weather["issue_time"].notna()]
        cols = [c for c in weather_columns if c in fc.columns]
        covered = fc.dropna(subset=cols, how="all") if cols else fc.iloc[0:0]
        if covered.empty:
            report.add("missing_weather", f"site {site.site_id}: no weather forecast known at "
                                          f"{issue} for {list(weather_columns)}")
        else:
            latest = covered["issue_time"].max()
            if issue - latest > max_weather_age:
                report.add("stale_weather", f"site {site.site_id}: latest weather issue "
                                            f"{latest} is {issue - latest} old")
            horizon_end = covered.loc[covered["issue_time"] == latest, "timestamp"].max()
            if pd.DatetimeIndex(targets).max() > horizon_end + pd.Timedelta(hours=1):
                report.add("missing_weather", f"site {site.site_id}: weather issued {latest} "
                                              f"ends {horizon_end}, before the window ends")
    years = sorted(set(pd.DatetimeIndex(targets).tz_convert(site.timezone).year))
    unknown = [y for y in years if not schedule_announced(site.holiday_country, y)]
    if unknown:
        report.add("calendar_unannounced",
                   f"site {site.site_id}: the swapped working days of {unknown} are not known "
                   f"to the calendar (holidays package); those days are typed by the "
                   "ordinary week")
    report.data = known
    return report
