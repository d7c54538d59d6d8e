"""The optional ``event_readings`` table: fine readings of customers' load around events.

An extension of the portfolio contract (README.md, "Capability metrics"): one row per
event, customer and reading, ``event_id``, ``customer_id``, ``timestamp`` (reading start,
ISO 8601 with offset or tz-aware), ``load_kw`` (mean kW over the reading, the customer's
net load as in measurements: consumption positive). Readings of one event and customer
are on one regular grid of 1 to 15 minutes that divides 15 minutes, within a day of the
event's window. Capability metrics (``models.capability``) use them for response time and
ramp rate; without them the 15-minute measurements serve.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.contract import CAPACITY_TOLERANCE
from forecasting.errors import (
    DataError,
    ImpossibleValueError,
    IrregularResolutionError,
    UnknownValueError,
)
from forecasting.io import find_table, read_table
from forecasting.validation import (
    check_duplicates,
    check_known_ids,
    parse_timestamps,
    require_columns,
)

TABLE = "event_readings"
COLUMNS = ("event_id", "customer_id", "timestamp", "load_kw")
MAX_WIDTH_MINUTES = 15
MAX_DISTANCE = pd.Timedelta(days=1)


def empty_event_readings() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="string") for c in COLUMNS[:2]})
    frame["timestamp"] = pd.Series(dtype="datetime64[ns, UTC]")
    frame["load_kw"] = pd.Series(dtype="float64")
    return frame


def read_event_readings(directory: Path, events: pd.DataFrame,
                        sites: pd.DataFrame) -> pd.DataFrame:
    """The validated table of ``directory`` (empty when absent)."""
    path = find_table(Path(directory), TABLE)
    if path is None:
        return empty_event_readings()
    return validate_event_readings(read_table(path), events, sites, str(path))


def validate_event_readings(raw: pd.DataFrame, events: pd.DataFrame, sites: pd.DataFrame,
                            source: str) -> pd.DataFrame:
    """Normalised readings (UTC, sorted by event, customer, timestamp); raises a typed
    ``DataError`` naming the file, row and fix."""
    require_columns(raw, COLUMNS, source)
    if events is None or events.empty:
        raise DataError(f"{source}: event readings need events.csv to say which events they "
                        "belong to; add events.csv or remove the table")
    frame = raw[list(COLUMNS)].copy()
    for col in ("event_id", "customer_id"):
        frame[col] = frame[col].astype("string")
    check_known_ids(frame["customer_id"], set(sites["customer_id"].dropna()), source,
                    "customer", "the customer_id column of sites.csv")
    unknown = ~frame["event_id"].isin(set(events["event_id"]))
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise UnknownValueError(f"{source}: row {row} names event {frame['event_id'].iloc[row]!r}"
                                ", which events.csv does not have; fix the event_id or remove "
                                "its rows")
    windows = events.set_index(["event_id", "customer_id"])[["start", "end"]]
    pairs = pd.MultiIndex.from_frame(frame[["event_id", "customer_id"]])
    missing = ~pairs.isin(windows.index)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise UnknownValueError(
            f"{source}: row {row}: customer {frame['customer_id'].iloc[row]!r} has no row for "
            f"event {frame['event_id'].iloc[row]!r} in events.csv; readings belong to an "
            "invited customer")
    frame["timestamp"] = parse_timestamps(frame["timestamp"], source, "timestamp")
    frame["load_kw"] = pd.to_numeric(frame["load_kw"], errors="coerce").astype("float64")
    bad = ~np.isfinite(frame["load_kw"].to_numpy())
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ImpossibleValueError(f"{source}: row {row} has no numeric finite load_kw "
                                   f"({raw['load_kw'].iloc[row]!r}); give kW or drop the row")
    check_duplicates(frame, ["event_id", "customer_id", "timestamp"], source)
    window = windows.reindex(pairs)
    far = ((frame["timestamp"].to_numpy() < window["start"].to_numpy() - MAX_DISTANCE)
           | (frame["timestamp"].to_numpy() >= window["end"].to_numpy() + MAX_DISTANCE))
    if far.any():
        row = int(np.flatnonzero(far)[0])
        raise ImpossibleValueError(
            f"{source}: row {row} at {frame['timestamp'].iloc[row]} is more than a day from "
            f"the window of event {frame['event_id'].iloc[row]!r}; wrong event_id?")
    _check_capacity(frame, sites, source)
    frame = frame.sort_values(["event_id", "customer_id", "timestamp"], ignore_index=True)
    for (event_id, customer_id), rows in frame.groupby(["event_id", "customer_id"], sort=False):
        _check_grid(rows["timestamp"], source, str(event_id), str(customer_id))
    return frame


def _check_capacity(frame: pd.DataFrame, sites: pd.DataFrame, source: str) -> None:
    """Readings beyond the tolerance of the customer's contracted capacity (sum of its load
    sites, when every one declares it) are a unit mistake."""
    load = sites[(sites["kind"] == "load") & sites["customer_id"].notna()]
    if "capacity_kw" not in load:
        return
    capacity = load.groupby("customer_id")["capacity_kw"].agg(
        lambda c: c.sum() if c.notna().all() else np.nan)
    limit = frame["customer_id"].map(CAPACITY_TOLERANCE * capacity).astype("float64")
    high = (frame["load_kw"].abs() > limit).to_numpy()
    if high.any():
        row = int(np.flatnonzero(high)[0])
        raise ImpossibleValueError(
            f"{source}: row {row}: customer {frame['customer_id'].iloc[row]!r} has load_kw = "
            f"{frame['load_kw'].iloc[row]:g}, above {CAPACITY_TOLERANCE:g} x its contracted "
            f"capacity ({limit.iloc[row] / CAPACITY_TOLERANCE:g} kW): W instead of kW?")


def _check_grid(stamps: pd.Series, source: str, event_id: str, customer_id: str) -> None:
    if len(stamps) < 2:
        return
    steps = np.diff(pd.DatetimeIndex(stamps).as_unit("ns").asi8)
    step = int(steps.min())
    minute = 60_000_000_000
    width = step / minute
    if (steps % step).any() or step % minute or 15 % width or width > MAX_WIDTH_MINUTES:
        raise IrregularResolutionError(
            f"{source}: readings of event {event_id!r}, customer {customer_id!r} are not on "
            f"one regular grid of 1-{MAX_WIDTH_MINUTES} minutes dividing 15 (smallest step "
            f"{pd.Timedelta(step, unit='ns')}); send them at one fixed resolution")
