"""The strict field types every request body of the API uses.

JSON is validated strictly (``StrictRequest``): ``false`` is not a number, ``"2000"`` is not
a number, ``"yes"`` is not a boolean, an epoch number is not a time, an unknown field is an
error. Times must carry a UTC offset and lie in ``TIME_RANGE`` (year 9999 is a mistake, and
beyond what the forecasting library's timestamps hold). Ids are at most ``MAX_ID_CHARS``
characters, so an error message never echoes megabytes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

MAX_ID_CHARS = 128
TIME_RANGE = (datetime(1990, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))


class StrictRequest(BaseModel):
    """Base of request bodies: strict JSON types, unknown fields refused."""

    model_config = ConfigDict(extra="forbid", strict=True)


def _in_range(value: datetime) -> datetime:
    low, high = TIME_RANGE
    if not low <= value < high:
        raise ValueError(f"time {value.isoformat()} is outside {low.year}..{high.year - 1}")
    return value


Instant = Annotated[AwareDatetime, AfterValidator(_in_range)]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]
