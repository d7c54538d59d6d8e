"""The strict field types every request body of the API uses.

JSON from the wire is validated strictly (``StrictRequest.model_validate_json``, what
BentoML calls on a body): ``false`` is not a number, ``"2000"`` is not
a number, ``"yes"`` is not a boolean, an epoch number is not a time, an unknown field is an
error. Times must carry a UTC offset and lie in ``TIME_RANGE`` (year 9999 is a mistake, and
beyond what the forecasting library's timestamps hold). Ids are at most ``MAX_ID_CHARS``
characters, so an error message never echoes megabytes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from forecasting.contract import EVENT_TYPES

MAX_ID_CHARS = 128
TIME_RANGE = (datetime(1990, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


class StrictRequest(BaseModel):
    """Base of request bodies: strict JSON types, unknown fields refused. Built in Python
    (tests, the command line) the usual conversions apply, e.g. ISO text to a time."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def model_validate_json(cls, json_data, *, strict: bool | None = None, **kwargs):
        return super().model_validate_json(json_data, strict=True if strict is None
                                           else strict, **kwargs)


def _in_range(value: datetime) -> datetime:
    low, high = TIME_RANGE
    if not low <= value < high:
        raise ValueError(f"time {value.isoformat()} is outside {low.year}..{high.year - 1}")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
EventType = Literal[EVENT_TYPES]  # events.csv event types, the contract's one list
