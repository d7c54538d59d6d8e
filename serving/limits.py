"""Bounds of one request, so that no single call can ask for unbounded work.

A request beyond a bound is refused with 422 and the bound in the message
(``BoundExceededError``, mapped in ``serving.service``). The body itself is capped at
``MAX_BODY_BYTES`` by ``serving.auth`` (413).
"""

from __future__ import annotations

from collections.abc import Sized
from datetime import datetime, timedelta

MAX_BODY_BYTES = 1_000_000
MAX_FORECAST_WINDOW = timedelta(days=45)
MAX_EVENT_WINDOW = timedelta(days=7)  # /baseline, /baseline/measure, /dispatch, /response-...
MAX_CUSTOMERS = 500  # /dispatch and /response-likelihood
MAX_READINGS = 17_280  # /baseline/measure: one day of 5-second readings


class BoundExceededError(ValueError):
    """A request asking for more than one call may (window, list length)."""


def check_window(start: datetime, end: datetime, bound: timedelta, what: str) -> None:
    if end - start > bound:
        raise BoundExceededError(f"{what} {start.isoformat()} .. {end.isoformat()} spans "
                                 f"{_days(end - start)}; at most {_days(bound)} per request: "
                                 "split it into several requests")


def check_count(items: Sized | None, bound: int, what: str) -> None:
    if items is not None and len(items) > bound:
        raise BoundExceededError(f"{len(items)} {what}; at most {bound} per request: split "
                                 "them into several requests")


def _days(span: timedelta) -> str:
    days = span / timedelta(days=1)
    return f"{days:g} days" if days >= 1 else f"{span / timedelta(hours=1):g} h"


# /baseline/measure: the readings and target of one customer or site
MAX_ABS_LOAD_KW = 1e7  # 10 GW: no single customer draws more; beyond is a unit error
LOAD_SCALE_FACTOR = 10.0  # a reading beyond 10 x the customer's capacity (or peak) is refused
NEGATIVE_LOAD_TOLERANCE = 0.02  # share of that scale a never-infeeding meter may read below 0
MAX_SETTLEMENT_RATIO = 10.0  # any ratio of a request's settlement rule
