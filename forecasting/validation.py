"""Validation of portfolio tables against the contract; returns normalised frames.

Every check raises a typed error from ``forecasting.errors`` that names the file (``source``),
the column, the site and the first bad row (0-based data row, as pandas counts), and says
how to fix it. Normalised frames hold UTC timestamps (``datetime64[ns, UTC]``).
Recoverable findings (gaps, dropped NaN readings) are returned as notes, not raised.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.contract import (
    CAPACITY_TOLERANCE,
    EVENT_TYPES,
    KINDS,
    LEVELS,
    MARKETS,
    RESOLUTIONS_MINUTES,
    TABLES,
    VALUE_COLUMN,
    WEATHER_RANGES,
)
from forecasting.errors import (
    DuplicateRowsError,
    ImpossibleValueError,
    IrregularResolutionError,
    MissingColumnsError,
    NaiveTimestampError,
    UnknownSiteError,
    UnknownValueError,
    UnparsableTimestampError,
)

_OFFSET = re.compile(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$")


@dataclass
class Notes:
    """Findings that do not stop the work (gaps, dropped readings), for logs and reports."""

    items: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.items.append(text)


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...] | list[str], source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise MissingColumnsError(
            f"{source}: missing column(s) {missing}; present: {list(frame.columns)}. "
            "Rename or add them as DATA_FORMAT.md names them.",
            missing,
        )


def parse_timestamps(values: pd.Series, source: str, column: str, allow_missing: bool = False
                     ) -> pd.Series:
    """Parse one timestamp column to UTC, refusing naive or unparsable values."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        out = values.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(values.dtype) and allow_missing and values.isna().all():
        out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")  # all empty
    elif pd.api.types.is_datetime64_dtype(values.dtype):
        raise NaiveTimestampError(
            f"{source}: column {column!r} holds naive timestamps (no zone); store them tz-aware "
            "(e.g. UTC) or as ISO 8601 text with an offset such as 2024-01-15T14:30:00+08:00"
        )
    else:
        text = values.astype("string").str.strip()
        present = text.notna() & (text != "")
        bad = present & ~text.str.contains(_OFFSET, regex=True).fillna(False)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise NaiveTimestampError(
                f"{source}: column {column!r} row {row} has a timestamp without UTC offset "
                f"({text.iloc[row]!r}); write it with its offset, e.g. 2024-01-15T14:30:00+08:00"
            )
        out = pd.to_datetime(text.where(present), utc=True, errors="coerce", format="ISO8601")
        unparsable = present & out.isna()
        if unparsable.any():
            row = int(np.flatnonzero(unparsable.to_numpy())[0])
            raise UnparsableTimestampError(
                f"{source}: column {column!r} row {row} is not an ISO 8601 timestamp "
                f"({text.iloc[row]!r}); use e.g. 2024-01-15T14:30:00+08:00"
            )
    if not allow_missing and out.isna().any():
        row = int(np.flatnonzero(out.isna().to_numpy())[0])
        raise UnparsableTimestampError(f"{source}: column {column!r} row {row} is empty; fill it")
    return out.astype("datetime64[ns, UTC]")


def issue_times(frame: pd.DataFrame, source: str) -> pd.Series:
    """The optional ``issue_time`` column in UTC; NaT (an observation) where empty or absent.

    An absent column is all observations, not naive timestamps: it gets tz-aware NaT."""
    if "issue_time" not in frame.columns:
        return pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    return parse_timestamps(frame["issue_time"], source, "issue_time", allow_missing=True)


def _first_row(mask: pd.Series | np.ndarray) -> int:
    return int(np.flatnonzero(np.asarray(mask))[0])


def check_duplicates(frame: pd.DataFrame, key: list[str], source: str) -> None:
    dup = frame.duplicated(subset=key, keep=False)
    if dup.any():
        row = _first_row(dup)
        shown = {k: str(frame[k].iloc[row]) for k in key}
        raise DuplicateRowsError(
            f"{source}: {int(dup.sum())} duplicate rows for key {key}, first at row {row} "
            f"({shown}); keep one row per key (drop or average the repeats)"
        )


def check_known_ids(ids: pd.Series, known: set, source: str, what: str, where: str) -> None:
    """Every id must be declared (``where``); names the first unknown one and its row."""
    unknown = ~ids.isin(known)
    if unknown.any():
        row = _first_row(unknown)
        raise UnknownSiteError(
            f"{source}: row {row} names {what} {ids.iloc[row]!r}, which {where} does not "
            f"declare; add it there or remove its rows")


def check_allowed(values: pd.Series, allowed: tuple[str, ...], source: str, column: str) -> None:
    bad = values.notna() & ~values.isin(allowed)
    if bad.any():
        row = _first_row(bad)
        raise UnknownValueError(
            f"{source}: column {column!r} row {row} has unknown value {values.iloc[row]!r}; "
            f"expected one of {list(allowed)}"
        )


def validate_sites(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    require_columns(raw, TABLES["sites"].required, source)
    sites = raw.copy()
    sites["site_id"] = sites["site_id"].astype("string")
    check_duplicates(sites, ["site_id"], source)
    check_allowed(sites["kind"], KINDS, source, "kind")
    for row, tz in enumerate(sites["timezone"]):
        try:
            zoneinfo.ZoneInfo(str(tz))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
            raise UnknownValueError(
                f"{source}: row {row} (site {sites['site_id'].iloc[row]}) has unknown timezone "
                f"{tz!r}; give an IANA zone such as 'Asia/Shanghai'"
            ) from err
    for col in TABLES["sites"].optional:
        if col not in sites.columns:
            sites[col] = pd.NA
    pv = sites["kind"] == "pv"
    no_loc = pv & (sites["latitude_deg"].isna() | sites["longitude_deg"].isna())
    if no_loc.any():
        row = _first_row(no_loc)
        raise MissingColumnsError(
            f"{source}: pv site {sites['site_id'].iloc[row]} (row {row}) has no latitude_deg/"
            "longitude_deg; PV forecasts need the location for solar geometry",
            ["latitude_deg", "longitude_deg"],
        )
    generators = sites["kind"].isin(["pv", "wind"])
    no_cap = generators & (pd.to_numeric(sites["capacity_kw"], errors="coerce").fillna(0) <= 0)
    if no_cap.any():
        row = _first_row(no_cap)
        raise MissingColumnsError(
            f"{source}: {sites['kind'].iloc[row]} site {sites['site_id'].iloc[row]} (row {row}) "
            "needs a positive capacity_kw (nameplate)",
            ["capacity_kw"],
        )
    for col in ("latitude_deg", "longitude_deg", "capacity_kw", "tilt_deg", "azimuth_deg",
                "hub_height_m"):
        sites[col] = pd.to_numeric(sites[col], errors="coerce").astype("float64")
    for col in ("customer_id", "turbine_type", "holiday_country"):
        sites[col] = sites[col].astype("string")
    return sites.set_index("site_id", drop=False)


def infer_resolution_minutes(timestamps: pd.Series, source: str, site_id: str) -> int:
    """The regular resolution of one site's timestamps; refuses irregular grids."""
    ts = pd.DatetimeIndex(timestamps).sort_values().as_unit("ns")
    if len(ts) < 2:
        raise IrregularResolutionError(
            f"{source}: site {site_id} has {len(ts)} measurement(s); at least two are needed"
        )
    diffs_min = np.diff(ts.asi8) / 60e9
    step = float(np.min(diffs_min))
    if step not in RESOLUTIONS_MINUTES:
        row = int(np.argmin(diffs_min))
        raise IrregularResolutionError(
            f"{source}: site {site_id} has a {step:g}-minute step at {ts[row]}; resolution must be "
            f"one of {RESOLUTIONS_MINUTES} minutes — resample (mean power) first"
        )
    res = int(step)
    off_grid = (diffs_min % res != 0) | False
    minute = (ts.asi8 // 60_000_000_000) % res
    if not off_grid.any() and (minute != 0).any() and (minute == minute[0]).all():
        # regular, but the steps fall between the UTC grid points, e.g. hourly readings on
        # the whole local hours of a zone at UTC+05:30
        finer = max(r for r in RESOLUTIONS_MINUTES if int(minute[0]) % r == 0)
        raise IrregularResolutionError(
            f"{source}: site {site_id} has a regular {res}-minute step, but its intervals "
            f"start {int(minute[0])} minutes past the UTC {res}-minute grid (first "
            f"{ts[0]}), as whole local hours do in a zone offset by a fraction of an hour; "
            f"the service needs {res}-minute intervals to start on the UTC grid: give the "
            f"readings at {finer} minutes (repeat each reading of mean power) instead")
    if off_grid.any() or (minute != 0).any():
        where = ts[int(np.flatnonzero(minute != 0)[0])] if (minute != 0).any() else ts[
            int(np.flatnonzero(off_grid)[0]) + 1]
        raise IrregularResolutionError(
            f"{source}: site {site_id} is not on a regular {res}-minute grid (first off-grid "
            f"timestamp {where}); align timestamps to interval starts"
        )
    return res


def validate_measurements(raw: pd.DataFrame, sites: pd.DataFrame, source: str, notes: Notes
                          ) -> tuple[pd.DataFrame, dict[str, int]]:
    """Normalised measurements (site_id, timestamp, value_kw) and each site's resolution."""
    require_columns(raw, TABLES["measurements"].required, source)
    frame = raw.copy()
    frame["site_id"] = frame["site_id"].astype("string")
    check_known_ids(frame["site_id"], set(sites.index), source, "site", "sites.csv")
    frame["timestamp"] = parse_timestamps(frame["timestamp"], source, "timestamp")
    check_duplicates(frame, ["site_id", "timestamp"], source)
    parts, resolutions = [], {}
    for site_id, rows in frame.groupby("site_id", sort=True):
        site = sites.loc[site_id]
        col = VALUE_COLUMN[site["kind"]]
        if col not in rows.columns or rows[col].isna().all():
            raise MissingColumnsError(
                f"{source}: site {site_id} is of kind {site['kind']!r} but has no {col!r} values; "
                f"add the {col} column (kW, mean power over the interval)",
                [col],
            )
        values = pd.to_numeric(rows[col], errors="coerce")
        nan = values.isna()
        if nan.any():
            notes.add(f"{source}: site {site_id}: {int(nan.sum())} empty {col} readings dropped "
                      f"(first at {rows['timestamp'][nan].iloc[0]})")
        rows = rows.assign(value_kw=values)[~nan]
        check_site_values(rows, site, col, source)
        res = infer_resolution_minutes(rows["timestamp"], source, str(site_id))
        resolutions[str(site_id)] = res
        span = (rows["timestamp"].max() - rows["timestamp"].min()) / pd.Timedelta(minutes=res) + 1
        if len(rows) < span:
            notes.add(f"{source}: site {site_id}: {int(span - len(rows))} missing {res}-minute "
                      "intervals (gaps are allowed; forecasts and baselines skip them)")
        parts.append(rows[["site_id", "timestamp", "value_kw"]])
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["site_id", "timestamp", "value_kw"])
    return out.sort_values(["site_id", "timestamp"], ignore_index=True), resolutions


def check_site_values(rows: pd.DataFrame, site: pd.Series, col: str, source: str) -> None:
    """Impossible values against the site's kind and capacity."""
    values = rows["value_kw"]
    capacity = site["capacity_kw"]
    site_id = site["site_id"]
    if site["kind"] in ("pv", "wind"):
        floor = -0.02 * capacity
        neg = values < floor
        if neg.any():
            row = _first_row(neg)
            raise ImpossibleValueError(
                f"{source}: {site['kind']} site {site_id} has {col} = {values.iloc[row]:g} kW at "
                f"{rows['timestamp'].iloc[row]} (below -2% of capacity); generation is >= 0 — "
                "check the sign convention"
            )
    if pd.notna(capacity) and capacity > 0:
        limit = CAPACITY_TOLERANCE * capacity
        high = values.abs() > limit
        if high.any():
            row = _first_row(high)
            raise ImpossibleValueError(
                f"{source}: site {site_id} has {col} = {values.iloc[row]:g} at "
                f"{rows['timestamp'].iloc[row]}, above {CAPACITY_TOLERANCE:g} x capacity_kw "
                f"({capacity:g} kW): is it in W or MW instead of kW, or is capacity_kw wrong?"
            )


def validate_weather(raw: pd.DataFrame, sites: pd.DataFrame, source: str) -> pd.DataFrame:
    require_columns(raw, TABLES["weather"].required, source)
    frame = raw.copy()
    frame["site_id"] = frame["site_id"].astype("string")
    check_known_ids(frame["site_id"], set(sites.index), source, "site", "sites.csv")
    frame["timestamp"] = parse_timestamps(frame["timestamp"], source, "timestamp")
    frame["issue_time"] = issue_times(frame, source)
    check_duplicates(frame, ["site_id", "timestamp", "issue_time"], source)
    for col, (lo, hi) in WEATHER_RANGES.items():
        if col not in frame.columns:
            continue
        values = pd.to_numeric(frame[col], errors="coerce").astype("float64")
        bad = (values < lo - 1e-9) | (values > hi + 1e-9)
        if bad.any():
            row = _first_row(bad)
            raise ImpossibleValueError(
                f"{source}: column {col!r} row {row} (site {frame['site_id'].iloc[row]}) is "
                f"{values.iloc[row]:g}, outside [{lo:g}, {hi:g}]; check the unit the name "
                "declares (e.g. W/m2 not J/m2, degC not K, fraction 0..1 not %)"
            )
        frame[col] = values
    return frame.sort_values(["site_id", "timestamp", "issue_time"], ignore_index=True)


def validate_prices(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    require_columns(raw, TABLES["prices"].required, source)
    frame = raw.copy()
    price_cols = [c for c in frame.columns if c.startswith("price_") and c.endswith("_per_mwh")]
    if not price_cols:
        raise MissingColumnsError(
            f"{source}: no price column; name it price_cny_per_mwh (or price_<ccy>_per_mwh)",
            ["price_cny_per_mwh"],
        )
    frame["timestamp"] = parse_timestamps(frame["timestamp"], source, "timestamp")
    frame["issue_time"] = issue_times(frame, source)
    if "market" not in frame.columns:
        frame["market"] = "day_ahead"
    frame["market"] = frame["market"].astype("string")
    check_allowed(frame["market"], MARKETS, source, "market")
    check_duplicates(frame, ["market", "timestamp", "issue_time"], source)
    for col in price_cols:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame.sort_values(["market", "timestamp", "issue_time"], ignore_index=True)


def validate_events(raw: pd.DataFrame, sites: pd.DataFrame, source: str) -> pd.DataFrame:
    require_columns(raw, TABLES["events"].required, source)
    frame = raw.copy()
    for col in ("event_id", "customer_id"):
        frame[col] = frame[col].astype("string")
    check_allowed(frame["event_type"], EVENT_TYPES, source, "event_type")
    for col in ("notice_time", "start", "end"):
        frame[col] = parse_timestamps(frame[col], source, col)
    check_duplicates(frame, ["event_id", "customer_id"], source)
    check_known_ids(frame["customer_id"], set(sites["customer_id"].dropna()), source,
                    "customer", "the customer_id column of sites.csv")
    bad = (frame["end"] <= frame["start"]) | (frame["notice_time"] > frame["start"])
    if bad.any():
        row = _first_row(bad)
        raise ImpossibleValueError(
            f"{source}: event {frame['event_id'].iloc[row]} row {row} needs notice_time <= start "
            "< end"
        )
    for col in ("target_kw", "actual_kw", "compensation_cny_per_mw"):
        if col in frame.columns:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    return frame


def validate_resources(raw: pd.DataFrame, sites: pd.DataFrame, source: str) -> pd.DataFrame:
    require_columns(raw, TABLES["resources"].required, source)
    frame = raw.copy()
    frame["resource_id"] = frame["resource_id"].astype("string")
    frame["customer_id"] = frame["customer_id"].astype("string")
    check_duplicates(frame, ["resource_id"], source)
    check_allowed(frame["level"], LEVELS, source, "level")
    check_known_ids(frame["customer_id"], set(sites["customer_id"].dropna()), source,
                    "customer", "the customer_id column of sites.csv")
    for col in ("capacity_kw", "response_minutes", "min_notice_minutes", "max_duration_minutes"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("float64")
    neg = frame["capacity_kw"] <= 0
    if neg.any():
        row = _first_row(neg)
        raise ImpossibleValueError(f"{source}: resource row {row} needs capacity_kw > 0")
    return frame
