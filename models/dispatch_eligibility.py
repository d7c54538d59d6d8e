"""The dispatch instruction and which resources may answer it (pure, no I/O).

An ``Instruction`` is what the grid operator (or the VPP's own trading desk) asks of the
portfolio: "cut 2,000 kW from 14:00 to 16:00, notified at 10:00". ``eligibility`` says, for
every controllable resource of resources.csv (../shared/DATA_FORMAT.md), whether it can take
part and, if not, why, in a sentence an operator can act on.

Times: ``notice lead = start - notice_time`` and ``duration = end - start``, both in minutes.

Rules (every one applies; a resource is eligible when it breaks none):

- response level (resources.csv ``level``), after the Chinese demand-response practice of
  graded response levels as DATA_FORMAT.md states it: level ``I`` is fast response
  (``response_minutes <= 5``), level ``II`` responds within 15 minutes
  (``response_minutes <= 15`` and ``lead >= 15``), level ``III`` is planned response and needs
  at least 4 hours of notice (``lead >= 240``);
- the resource responds in time: ``response_minutes <= lead``;
- the customer's own notice condition: ``min_notice_minutes <= lead``;
- the resource can hold the reduction: ``duration <= max_duration_minutes``;
- ``requires_approval`` resources (e.g. backup diesel, process turndown needing the plant
  manager's sign-off) only when the instruction sets ``allow_approval=True``;
- a resource of ``capacity_kw`` 0 has nothing to offer.

The thresholds are configuration of the market, kept as constants here
(``LEVEL_MAX_RESPONSE_MINUTES``, ``LEVEL_MIN_NOTICE_MINUTES``); a province whose rule differs
changes them in one place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from forecasting.contract import EVENT_TYPES, LEVELS, TABLES
from forecasting.errors import (
    DataError,
    DuplicateRowsError,
    ImpossibleValueError,
    MissingColumnsError,
    UnknownValueError,
)

REQUIRED_COLUMNS = TABLES["resources"].required
NUMERIC_COLUMNS = ("capacity_kw", "response_minutes", "min_notice_minutes",
                   "max_duration_minutes")
# Graded response levels (see the module doc): fastest allowed response and least notice.
LEVEL_MAX_RESPONSE_MINUTES = {"I": 5.0, "II": 15.0}
LEVEL_MIN_NOTICE_MINUTES = {"II": 15.0, "III": 240.0}
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


class ValleyFillingNotImplementedError(DataError, NotImplementedError):
    """Valley filling (a requested increase of load) is not planned by this module yet."""


class NoEligibleResourceError(DataError):
    """No resource of the portfolio can answer the instruction."""


def shorten(items: list[str], limit: int = 8) -> str:
    shown = "; ".join(items[:limit])
    return shown + (f"; ... and {len(items) - limit} more" if len(items) > limit else "")


def _valley_filling_message(target_kw: Any, event_type: Any) -> str | None:
    try:
        negative = float(target_kw) < 0
    except (TypeError, ValueError):
        negative = False
    if negative or event_type == "valley_filling":
        return (f"valley filling (target_kw {target_kw}, event_type {event_type}) is not "
                "implemented yet: dispatch decomposition plans load reductions only; give a "
                "positive target_kw")
    return None


class Instruction(BaseModel):
    """One dispatch instruction: a load reduction over a window, notified at a time.

    Raises ``ValleyFillingNotImplementedError`` (a ``DataError``) for a negative target or
    ``event_type="valley_filling"``, and ``pydantic.ValidationError`` (a ``ValueError``) naming
    the field for naive timestamps, ``end <= start`` or ``notice_time > start``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_kw: float = Field(
        description="requested load reduction (kW, mean power over the window), > 0")
    start: datetime = Field(description="window start, tz-aware (e.g. 2025-07-01T14:00+08:00)")
    end: datetime = Field(description="window end (exclusive), tz-aware, after start")
    notice_time: datetime = Field(
        description="when the instruction reaches the VPP, tz-aware, at or before start")
    event_type: str | None = Field(
        None, description="events.csv event_type of the instruction (recorded in the plan)")
    reserve_margin: float = Field(
        0.1, ge=0, le=1, description="plan expected delivery >= target_kw * (1 + "
        "reserve_margin) (dimensionless)")
    allow_approval: bool = Field(
        False, description="use resources with requires_approval (operator has arranged the "
        "customers' approval)")
    risk_aversion_cny_per_kw: float = Field(
        30.0, ge=0, description="penalty per kW allocated times its probability of failing "
        "the settlement threshold (CNY/kW); default about one event's compensation per kW "
        "(the sample's 13,500-31,500 CNY/MW), i.e. the payment a failing kW loses")

    def __init__(self, **data: Any) -> None:
        message = _valley_filling_message(data.get("target_kw"), data.get("event_type"))
        if message:
            raise ValleyFillingNotImplementedError(message)
        super().__init__(**data)

    @field_validator("target_kw")
    @classmethod
    def _positive_target(cls, value: float) -> float:
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"target_kw {value} must be a finite reduction > 0 kW"
                             + (" (valley filling is not implemented yet)" if value < 0 else ""))
        return value

    @field_validator("start", "end", "notice_time")
    @classmethod
    def _aware(cls, value: datetime, info: ValidationInfo) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{info.field_name} {value.isoformat()} has no UTC offset; give "
                             "e.g. 2025-07-01T14:00:00+08:00")
        return value

    @field_validator("event_type")
    @classmethod
    def _known_event_type(cls, value: str | None) -> str | None:
        if value is not None and value not in EVENT_TYPES:
            raise ValueError(f"unknown event_type {value!r}, expected one of "
                             f"{', '.join(EVENT_TYPES)}")
        if value == "valley_filling":
            raise ValueError(_valley_filling_message(None, value))
        return value

    @model_validator(mode="after")
    def _window(self) -> Instruction:
        if self.end <= self.start:
            raise ValueError(f"end {self.end.isoformat()} must be after start "
                             f"{self.start.isoformat()}")
        if self.notice_time > self.start:
            raise ValueError(f"notice_time {self.notice_time.isoformat()} is after start "
                             f"{self.start.isoformat()}; notice comes before the window")
        return self

    @property
    def lead_minutes(self) -> float:
        """Notice lead: start - notice_time (minutes)."""
        return (self.start - self.notice_time).total_seconds() / 60.0

    @property
    def duration_minutes(self) -> float:
        """Window length: end - start (minutes)."""
        return (self.end - self.start).total_seconds() / 60.0

    @property
    def required_expected_kw(self) -> float:
        """Expected delivery the plan must reach: target_kw * (1 + reserve_margin) (kW)."""
        return self.target_kw * (1.0 + self.reserve_margin)


def _bool_column(values: pd.Series, ids: pd.Series) -> np.ndarray:
    if pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=bool)
    text = values.astype("string").str.strip().str.lower().fillna("")
    bad = ~text.isin(_TRUE | _FALSE)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise UnknownValueError(
            f"resources: requires_approval {values.iloc[i]!r} of resource {ids.iloc[i]} is not "
            "a boolean; use True or False")
    return text.isin(_TRUE).to_numpy()


def check_resources(resources: pd.DataFrame) -> pd.DataFrame:
    """resources.csv rows normalised for dispatch (a copy; raises typed ``DataError``s).

    Adds ``requires_approval`` (False when the column is absent) and ``cost_cny_per_mwh``
    (NaN when absent: ``decompose`` takes it as 0 and says so).
    """
    if not isinstance(resources, pd.DataFrame) or resources.empty:
        raise DataError("resources: no rows; dispatch needs resources.csv (DATA_FORMAT.md) with "
                        "at least one controllable resource")
    missing = [c for c in REQUIRED_COLUMNS if c not in resources.columns]
    if missing:
        raise MissingColumnsError(
            f"resources: missing column(s) {missing}; present: {list(resources.columns)}. "
            "Add them as DATA_FORMAT.md names them.", missing)
    frame = resources.reset_index(drop=True).copy()
    for col in ("resource_id", "customer_id", "level"):
        frame[col] = frame[col].astype("string").str.strip()
    ids = frame["resource_id"]
    if ids.isna().any():
        raise DataError(f"resources: row {int(np.flatnonzero(ids.isna())[0])} has no resource_id")
    dup = ids.duplicated()
    if dup.any():
        raise DuplicateRowsError(f"resources: resource_id {ids[dup].iloc[0]} appears twice")
    bad = ~frame["level"].isin(LEVELS).fillna(False)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise UnknownValueError(f"resources: unknown level {frame['level'].iloc[i]!r} of "
                                f"resource {ids.iloc[i]}; expected one of {', '.join(LEVELS)}")
    for col in NUMERIC_COLUMNS:
        raw = frame[col]
        frame[col] = pd.to_numeric(raw, errors="coerce").astype("float64")
        values = frame[col].to_numpy()
        bad = ~np.isfinite(values)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ImpossibleValueError(f"resources: {col} {raw.iloc[i]!r} of resource "
                                       f"{ids.iloc[i]} is not a number")
        neg = values < 0
        if neg.any():
            i = int(np.flatnonzero(neg)[0])
            raise ImpossibleValueError(f"resources: {col} {values[i]:g} of resource "
                                       f"{ids.iloc[i]} is negative; it must be >= 0")
    frame["cost_cny_per_mwh"] = (pd.to_numeric(frame["cost_cny_per_mwh"], errors="coerce")
                                 .astype("float64") if "cost_cny_per_mwh" in frame
                                 else np.nan)
    frame["requires_approval"] = (_bool_column(frame["requires_approval"], ids)
                                  if "requires_approval" in frame else False)
    return frame


def eligibility(resources: pd.DataFrame, instruction: Instruction) -> pd.DataFrame:
    """Which resources can answer ``instruction`` (rules in the module doc).

    Returns the normalised resources (``check_resources``), one row per resource in input
    order, with ``eligible`` (bool) and ``reason`` ("" when eligible, else the broken rules
    as sentences joined by "; ", e.g. "notice 60 min < min_notice_minutes 1440").
    """
    frame = check_resources(resources)
    lead = instruction.lead_minutes
    duration = instruction.duration_minutes
    level = frame["level"].to_numpy(dtype=object)
    response = frame["response_minutes"].to_numpy()
    notice = frame["min_notice_minutes"].to_numpy()
    max_duration = frame["max_duration_minutes"].to_numpy()
    rules: list[tuple[np.ndarray, Any]] = []
    for lvl, limit in LEVEL_MAX_RESPONSE_MINUTES.items():
        rules.append(((level == lvl) & (response > limit),
                      lambda i, lvl=lvl, limit=limit: f"level {lvl} needs response_minutes <= "
                      f"{limit:g} (has {response[i]:g})"))
    for lvl, need in LEVEL_MIN_NOTICE_MINUTES.items():
        if lead < need:
            rules.append((level == lvl, lambda i, lvl=lvl, need=need:
                          f"level {lvl} needs >= {need:g} min notice"))
    rules += [
        (response > lead, lambda i: f"response_minutes {response[i]:g} > notice {lead:g} min"),
        (notice > lead, lambda i: f"notice {lead:g} min < min_notice_minutes {notice[i]:g}"),
        (duration > max_duration,
         lambda i: f"duration {duration:g} min > max_duration_minutes {max_duration[i]:g}"),
        (frame["capacity_kw"].to_numpy() == 0, lambda i: "capacity_kw is 0"),
    ]
    if not instruction.allow_approval:
        rules.append((frame["requires_approval"].to_numpy(dtype=bool),
                      lambda i: "requires approval (allow_approval=False)"))
    reasons: list[list[str]] = [[] for _ in range(len(frame))]
    for mask, sentence in rules:
        for i in np.flatnonzero(mask):
            reasons[i].append(sentence(i))
    frame["reason"] = ["; ".join(r) for r in reasons]
    frame["eligible"] = frame["reason"] == ""
    return frame


def no_eligible_error(table: pd.DataFrame) -> NoEligibleResourceError:
    """The error for a table without any eligible resource, listing reasons (shortened)."""
    items = [f"{rid}: {reason}" for rid, reason in zip(table["resource_id"], table["reason"],
                                                       strict=True)]
    return NoEligibleResourceError(
        f"no resource can answer the instruction ({len(items)} excluded): {shorten(items)}. "
        "Give more notice, a shorter window, or allow_approval=True where approval is arranged")
