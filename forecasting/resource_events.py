"""``resource_events.csv`` (optional): the per-resource settlement of events.csv rows.

An extension of the portfolio format (README "Per-resource settlement"): where an operator
meters and settles a customer's resources separately, each settled (event, customer) row of
``events.csv`` may be split into one row per resource:

=============  ==========================================================================
``event_id``   an event of events.csv
``customer_id`` the customer of that events.csv row
``resource_id`` a resource of resources.csv belonging to that customer
``target_kw``  the resource's share of the committed change (kW, sign as events.csv)
``actual_kw``  optional: the resource's settled change (kW); empty while unsettled
=============  ==========================================================================

Timing, event type and notice come from the events.csv row. Only the response likelihood
reads this table (``read_resource_events``); everything else keeps to events.csv.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.errors import DataError, MissingColumnsError
from forecasting.io import find_table, read_table

NAME = "resource_events"
REQUIRED = ("event_id", "customer_id", "resource_id", "target_kw")
COLUMNS = (*REQUIRED, "actual_kw")


def read_resource_events(directory: Path, events: pd.DataFrame, resources: pd.DataFrame
                         ) -> pd.DataFrame | None:
    """The validated table of ``directory`` (None when absent), see the module doc."""
    path = find_table(Path(directory), NAME)
    if path is None:
        return None
    return validate_resource_events(read_table(path), events, resources, str(path))


def validate_resource_events(raw: pd.DataFrame, events: pd.DataFrame, resources: pd.DataFrame,
                             where: str = NAME) -> pd.DataFrame:
    """Check ids against events.csv and resources.csv, unique keys, finite targets."""
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise MissingColumnsError(f"{where} lacks column(s) {', '.join(missing)}; see the "
                                  "README section Per-resource settlement", missing)
    frame = raw.copy()
    for col in ("event_id", "customer_id", "resource_id"):
        frame[col] = frame[col].astype(str)
    frame["target_kw"] = pd.to_numeric(frame["target_kw"], errors="coerce")
    frame["actual_kw"] = (pd.to_numeric(frame["actual_kw"], errors="coerce")
                          if "actual_kw" in frame else np.nan)
    bad = frame[~np.isfinite(frame["target_kw"]) | (frame["target_kw"] == 0)]
    if not bad.empty:
        first = bad.iloc[0]
        raise DataError(f"{where}: target_kw must be a non-zero number (kW); first bad row "
                        f"event {first['event_id']}, resource {first['resource_id']}")
    dupes = frame.duplicated(["event_id", "customer_id", "resource_id"])
    if dupes.any():
        first = frame[dupes].iloc[0]
        raise DataError(f"{where}: event {first['event_id']} resource {first['resource_id']} "
                        "appears twice; one row per event and resource")
    keys = set(zip(events["event_id"].astype(str), events["customer_id"].astype(str),
                   strict=True))
    unknown = [(e, c) for e, c in zip(frame["event_id"], frame["customer_id"], strict=True)
               if (e, c) not in keys]
    if unknown:
        raise DataError(f"{where}: {len(unknown)} row(s) have no events.csv row, first event "
                        f"{unknown[0][0]} customer {unknown[0][1]}; split only rows of "
                        "events.csv")
    owner = (dict(zip(resources["resource_id"].astype(str),
                      resources["customer_id"].astype(str), strict=True))
             if not resources.empty else {})
    wrong = frame[frame["resource_id"].map(owner) != frame["customer_id"]]
    if not wrong.empty:
        first = wrong.iloc[0]
        raise DataError(f"{where}: resource {first['resource_id']} is not a resource of "
                        f"customer {first['customer_id']} in resources.csv")
    return frame[list(COLUMNS)].reset_index(drop=True)
