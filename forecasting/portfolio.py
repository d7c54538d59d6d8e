"""A validated portfolio in memory, and what was known of it at an issue time.

``read_portfolio(dir)`` reads and validates every table; ``Portfolio.site_data(site_id)``
gives one site's measurements, weather and prices; ``SiteData.known_at(issue_time)`` keeps
only what was known then:

- a measurement is known once its interval has ended (``timestamp + resolution <= issue``);
- a weather or price *forecast* is known from its ``issue_time`` on (``issue_time <= issue``);
- a weather or price *observation* (no ``issue_time``) once its interval has ended.

``latest_issue(frame, issue_times, ...)`` picks, for each target, the latest forecast issued
at or before its own issue time.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.contract import VALUE_COLUMN
from forecasting.errors import NaiveTimestampError, UnknownSiteError
from forecasting.event_readings import empty_event_readings, read_event_readings
from forecasting.io import read_tables
from forecasting.validation import (
    Notes,
    validate_events,
    validate_measurements,
    validate_prices,
    validate_resources,
    validate_sites,
    validate_weather,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Site:
    """One metered site as sites.csv declares it (plus its measured resolution)."""

    site_id: str
    kind: str
    timezone: str
    resolution_minutes: int = 15
    latitude_deg: float | None = None
    longitude_deg: float | None = None
    capacity_kw: float | None = None
    customer_id: str | None = None
    tilt_deg: float | None = None
    azimuth_deg: float | None = None
    hub_height_m: float | None = None
    turbine_type: str | None = None
    holiday_country: str | None = None

    @property
    def value_column(self) -> str:
        return VALUE_COLUMN[self.kind]

    @classmethod
    def from_row(cls, row: pd.Series, resolution_minutes: int) -> Site:
        def opt(name: str):
            value = row.get(name)
            return None if value is None or pd.isna(value) else value

        return cls(
            site_id=str(row["site_id"]),
            kind=str(row["kind"]),
            timezone=str(row["timezone"]),
            resolution_minutes=int(resolution_minutes),
            latitude_deg=opt("latitude_deg"),
            longitude_deg=opt("longitude_deg"),
            capacity_kw=opt("capacity_kw"),
            customer_id=opt("customer_id") and str(opt("customer_id")),
            tilt_deg=opt("tilt_deg"),
            azimuth_deg=opt("azimuth_deg"),
            hub_height_m=opt("hub_height_m"),
            turbine_type=opt("turbine_type") and str(opt("turbine_type")),
            holiday_country=opt("holiday_country") and str(opt("holiday_country")),
        )

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def as_utc(value, name: str) -> pd.Timestamp:
    """A tz-aware timestamp in UTC; refuses naive input naming the argument."""
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        raise NaiveTimestampError(
            f"{name} {value!s} has no UTC offset; give e.g. 2024-01-15T12:00:00+08:00"
        )
    return ts.tz_convert("UTC")


@dataclass
class SiteData:
    """What a forecaster needs of one site.

    ``load``: the measured value (kW) indexed by UTC interval start, sorted, gaps absent.
    ``weather``: rows of the weather table for the site (``issue_time`` NaT = observation).
    ``prices``: the price table (shared by all sites).
    """

    site: Site
    values_kw: pd.Series
    weather: pd.DataFrame
    prices: pd.DataFrame

    def known_at(self, issue_time) -> SiteData:
        """Only what was known at ``issue_time`` (see module doc)."""
        t = as_utc(issue_time, "issue_time")
        res = pd.Timedelta(minutes=self.site.resolution_minutes)
        values = self.values_kw[self.values_kw.index + res <= t]
        return replace(self, values_kw=values, weather=known_rows(self.weather, t),
                       prices=known_rows(self.prices, t))

    def before(self, end) -> SiteData:
        """Measurements whose interval starts strictly before ``end`` (training cut-off)."""
        t = as_utc(end, "train_end")
        return replace(self, values_kw=self.values_kw[self.values_kw.index < t])


def known_rows(frame: pd.DataFrame, issue_time: pd.Timestamp,
               observation_resolution: pd.Timedelta | None = None) -> pd.DataFrame:
    """Rows of a weather/price table known at ``issue_time``.

    Forecast rows need ``issue_time <= issue``; observation rows need their interval to have
    ended. The observation interval is inferred from the timestamps (hourly data -> 1 h)
    unless given.
    """
    if frame.empty:
        return frame
    is_obs = frame["issue_time"].isna()
    known_fc = ~is_obs & (frame["issue_time"] <= issue_time)
    width = observation_resolution or observation_width(frame.loc[is_obs, "timestamp"])
    known_obs = is_obs & (frame["timestamp"] + width <= issue_time)
    return frame[known_fc | known_obs]


def observation_width(timestamps: pd.Series) -> pd.Timedelta:
    """Typical spacing of observation timestamps (the interval width); 1 h if unknown."""
    ts = pd.DatetimeIndex(timestamps.drop_duplicates().sort_values())
    if len(ts) < 2:
        return pd.Timedelta(hours=1)
    return pd.Timedelta(np.median(np.diff(ts.as_unit("ns").asi8)), unit="ns")


def latest_issue(frame: pd.DataFrame, targets: pd.DatetimeIndex, issue_times: pd.DatetimeIndex,
                 columns: list[str]) -> pd.DataFrame:
    """For each (target timestamp, issue time) pair, the latest forecast issued at or before it.

    ``frame`` holds forecast rows (``timestamp``, ``issue_time``, columns...). Targets without
    such a forecast get NaN. Returns a frame aligned with ``targets`` (positional), with the
    chosen ``issue_time`` as ``source_issue_time``.
    """
    left = pd.DataFrame({"timestamp": targets.astype("datetime64[ns, UTC]"),
                         "issue": issue_times.astype("datetime64[ns, UTC]"),
                         "_pos": np.arange(len(targets))})
    fc = frame.loc[frame["issue_time"].notna(), ["timestamp", "issue_time", *columns]]
    if fc.empty or left.empty:
        out = pd.DataFrame(np.nan, index=range(len(targets)), columns=columns)
        out["source_issue_time"] = pd.NaT
        return out
    fc = fc.sort_values("issue_time").astype({"issue_time": "datetime64[ns, UTC]",
                                              "timestamp": "datetime64[ns, UTC]"})
    merged = pd.merge_asof(
        left.sort_values("issue"), fc.rename(columns={"issue_time": "source_issue_time"}),
        left_on="issue", right_on="source_issue_time", by="timestamp", direction="backward",
    )
    merged = merged.sort_values("_pos")
    return merged[[*columns, "source_issue_time"]].reset_index(drop=True)


@dataclass
class Portfolio:
    """Validated tables of one portfolio directory (UTC timestamps); ``event_readings``: the
    optional fine readings around events (``forecasting.event_readings``, empty if absent)."""

    sites: dict[str, Site]
    measurements: pd.DataFrame
    weather: pd.DataFrame
    prices: pd.DataFrame
    events: pd.DataFrame
    resources: pd.DataFrame
    source: Path
    notes: list[str] = field(default_factory=list)
    event_readings: pd.DataFrame = field(default_factory=empty_event_readings, repr=False)
    _site_data: dict[str, SiteData] = field(default_factory=dict, repr=False, compare=False)

    def site(self, site_id: str) -> Site:
        try:
            return self.sites[site_id]
        except KeyError:
            known = sorted(self.sites)
            shown = ", ".join(known[:10]) + (" ..." if len(known) > 10 else "")
            raise UnknownSiteError(
                f"unknown site {shown_id(site_id)} in {self.source}; known sites: {shown}"
            ) from None

    def sites_of_kind(self, kind: str) -> list[Site]:
        return [s for s in self.sites.values() if s.kind == kind]

    def site_data(self, site_id: str) -> SiteData:
        """The site's rows of the tables (built once per site; treat it as read-only: every
        method of ``SiteData`` returns a new one)."""
        cached = self._site_data.get(site_id)
        if cached is None:
            cached = self._site_data.setdefault(site_id, self._build_site_data(site_id))
        return cached

    # -- customers (load sites grouped by ``customer_id``) ------------------------------

    def customer_sites(self, customer_id: str) -> list[Site]:
        """The load sites that declare ``customer_id`` (UnknownSiteError: none does)."""
        sites = [s for s in self.sites.values()
                 if s.kind == "load" and s.customer_id == customer_id]
        if not sites:
            known = sorted({s.customer_id for s in self.sites.values() if s.customer_id})
            raise UnknownSiteError(
                f"unknown customer {shown_id(customer_id)} in {self.source}: no load site "
                f"declares it in sites.csv (customer_id); known customers: "
                f"{', '.join(known[:10])}{' ...' if len(known) > 10 else ''}")
        return sites

    def customer_load(self, customer_id: str) -> tuple[pd.Series, list[Site]]:
        """A customer's load (sum of its load sites, kW, UTC index) and its sites.

        The one definition of a customer's load: intervals where any of the customer's
        sites has no reading are dropped (a partial sum would understate the load)."""
        sites = self.customer_sites(customer_id)
        series = [self.site_data(s.site_id).values_kw for s in sites]
        total = (pd.concat(series, axis=1).dropna().sum(axis=1) if len(series) > 1
                 else series[0].copy())
        total.name = "load_kw"
        return total, sites

    def customer_loads(self, customers=None) -> dict[str, pd.Series]:
        """``customer_load`` of each customer (default: every customer of a load site)."""
        ids = customers if customers is not None else sorted(
            {s.customer_id for s in self.sites_of_kind("load") if s.customer_id})
        return {cid: self.customer_load(cid)[0] for cid in ids}

    def customer_event_days(self, customer_id: str, timezone: str) -> frozenset:
        """Local dates on which ``customer_id`` had any event (events.csv)."""
        ev = self.events
        if ev is None or ev.empty:
            return frozenset()
        rows = ev[ev["customer_id"] == customer_id]
        return event_days(rows["start"], rows["end"], timezone)

    def _build_site_data(self, site_id: str) -> SiteData:
        site = self.site(site_id)
        rows = self.measurements[self.measurements["site_id"] == site_id]
        values = pd.Series(rows["value_kw"].to_numpy(), index=pd.DatetimeIndex(rows["timestamp"]),
                           name=site.value_column)
        weather = self.weather[self.weather["site_id"] == site_id].drop(columns="site_id")
        # the table is shared: columns only other sites fill are not this site's weather
        empty = [c for c in weather.columns if c not in ("timestamp", "issue_time")
                 and weather[c].isna().all()]
        weather = weather.drop(columns=empty)
        return SiteData(site=site, values_kw=values, weather=weather.reset_index(drop=True),
                        prices=self.prices)


def event_days(starts, ends, timezone: str) -> frozenset:
    """Local dates touched by any [start, end) window."""
    days = set()
    for start, end in zip(starts, ends, strict=True):
        first = start.tz_convert(timezone).date()
        last = (end - pd.Timedelta(seconds=1)).tz_convert(timezone).date()
        days.update(first + dt.timedelta(days=k) for k in range((last - first).days + 1))
    return frozenset(days)


def shown_id(value: object, limit: int = 64) -> str:
    """An id as a message may quote it: repr, cut to ``limit`` characters (a request may
    send megabytes in an id field)."""
    text = repr(str(value))
    return text if len(text) <= limit else f"{text[:limit]}... ({len(str(value))} characters)"


def _empty(columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})
    for c in ("timestamp", "issue_time"):
        if c in frame:
            frame[c] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame


def read_portfolio(directory: Path | str) -> Portfolio:
    """Read and validate a portfolio directory (see ../shared/DATA_FORMAT.md)."""
    directory = Path(directory)
    tables = read_tables(directory)
    notes = Notes()
    path, raw = tables["sites"]
    sites_frame = validate_sites(raw, str(path))
    path, raw = tables["measurements"]
    measurements, resolutions = validate_measurements(raw, sites_frame, str(path), notes)
    weather = (validate_weather(tables["weather"][1], sites_frame, str(tables["weather"][0]))
               if "weather" in tables else _empty(["site_id", "timestamp", "issue_time"]))
    prices = (validate_prices(tables["prices"][1], str(tables["prices"][0]))
              if "prices" in tables else _empty(["timestamp", "issue_time", "market"]))
    events = (validate_events(tables["events"][1], sites_frame, str(tables["events"][0]))
              if "events" in tables else pd.DataFrame())
    resources = (validate_resources(tables["resources"][1], sites_frame,
                                    str(tables["resources"][0]))
                 if "resources" in tables else pd.DataFrame())
    sites = {
        sid: Site.from_row(row, resolutions.get(sid, 15)) for sid, row in sites_frame.iterrows()
    }
    for note in notes.items:
        log.info(note)
    readings = read_event_readings(directory, events, sites_frame)
    return Portfolio(sites=sites, measurements=measurements, weather=weather, prices=prices,
                     events=events, resources=resources, source=directory, notes=notes.items,
                     event_readings=readings)
