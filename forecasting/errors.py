"""Typed errors of the domain library.

Each subclasses a built-in so callers may catch broadly, and each message says what is
wrong, where (file, column, site, first bad row) and what to do about it. The serving
layer maps every ``DataError`` to HTTP 4xx with the message as the fix hint.
"""

from __future__ import annotations


class DataError(ValueError):
    """Base class: input data that breaks the portfolio contract (../shared/DATA_FORMAT.md)."""


class MissingColumnsError(DataError):
    def __init__(self, message: str, columns: list[str] | None = None):
        super().__init__(message)
        self.columns = list(columns or [])


class NaiveTimestampError(DataError):
    """A timestamp without a UTC offset or zone."""


class UnparsableTimestampError(DataError):
    """A timestamp that is not ISO 8601."""


class DuplicateRowsError(DataError):
    """Two rows for the same key (site and timestamp, plus issue time for forecasts)."""


class UnknownValueError(DataError):
    """A categorical value outside the allowed set (kind, market, event type, level...)."""


class UnknownSiteError(DataError, LookupError):
    """A site or customer id that sites.csv does not declare."""


class ImpossibleValueError(DataError):
    """A value that cannot be physical: negative PV, power far above capacity, NaN in a value."""


class IrregularResolutionError(DataError):
    """A site whose measurement timestamps are not on one regular 5/15/30/60-minute grid."""


class InsufficientDataError(DataError):
    """Not enough history to train or to compute a baseline for the requested window."""


class StaleDataError(DataError):
    """Weather or measurements older than the service accepts for a forecast."""


class ModelNotFoundError(LookupError):
    """No registered model (or no champion alias) for a kind and site."""
