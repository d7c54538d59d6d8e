"""The forecast store: nightly forecasts kept by issue, read back by the service and the next night.

Rows are the forecast output format (DATA_FORMAT.md plus the ``quality`` extension):
``site_id, issue_time, timestamp, q<level>..., model_version, quality``, times tz-aware UTC,
values in kW (mean power over the interval that ``timestamp`` starts). Two backends behind
one small interface (``ForecastStore``), chosen by ``open_store``:

- ``ParquetForecastStore(root)``, the embedded default (``var/forecast_store``): one Parquet
  file per partition, ``root/issue_date=YYYY-MM-DD/kind=<load|pv|wind>/forecasts.parquet``
  (the UTC date of the issue time).
- ``SqlForecastStore(url)``, for production (PostgreSQL; sqlite in the tests): one table,
  ``vpp_forecasts``, in long form (one row per site, issue, interval and quantile level), so
  any set of levels fits one schema. The URL comes from ``VPP_FORECAST_STORE_URL`` or
  ``--store``; a PostgreSQL URL needs its driver installed (``psycopg``).

**Writes replace, never duplicate.** ``write(frame, kind)`` replaces, for every
(site_id, issue_time) pair in ``frame``, all stored rows of that pair; other sites and other
issues in the same partition stay. A rerun for the same issue time therefore replaces the
earlier run's forecasts. Parquet: under an exclusive lock on the partition (``fcntl.flock``,
so one host), the partition is read, the pairs' rows dropped, the new rows added, the whole
written to a temporary file *in the same folder*, flushed to disk and renamed over the old
file with ``os.replace`` (atomic on POSIX): a reader sees the old or the new partition, never
a half-written one, and a crash mid-write leaves the previous complete partition plus a
temporary file that the next write of that partition removes. SQL: the pairs' rows are
deleted and the new ones inserted in one transaction.

**Reads.** ``read(site_id, issue_time, start, end)``: the rows of exactly that issue
(optionally inside [start, end)), or None; ``latest(site_id, at)``: the rows of the latest
issue at or before ``at``, or None; ``issued_between(start, end, site_ids)``: every row
issued in [start, end) (the nightly job's look back at settled days). ``stored_forecast``
is the service's fast path (``POST /forecast`` with ``source: "store"|"auto"``).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import uuid
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from forecasting.errors import DataError, DuplicateRowsError, MissingColumnsError
from forecasting.portfolio import as_utc

log = logging.getLogger(__name__)

STORE_URL_ENV = "VPP_FORECAST_STORE_URL"
DEFAULT_STORE_DIR = Path("var") / "forecast_store"
KINDS = ("load", "pv", "wind")
KEY_COLUMNS = ("site_id", "issue_time", "timestamp")
TAIL_COLUMNS = ("model_version", "quality")
PARTITION_FILE = "forecasts.parquet"
TMP_PREFIX = ".forecasts-"
TMP_SUFFIX = ".parquet.tmp"


class ForecastStoreError(RuntimeError):
    """The store cannot be read or written (folder, database, permissions)."""


class ForecastStore(Protocol):
    """What the nightly job and the service need of a forecast store (module doc)."""

    def write(self, frame: pd.DataFrame, kind: str) -> int: ...

    def read(self, site_id: str, issue_time, start=None, end=None) -> pd.DataFrame | None: ...

    def latest(self, site_id: str, at) -> pd.DataFrame | None: ...

    def issued_between(self, start, end, site_ids=None) -> pd.DataFrame: ...


def open_store(target: str | os.PathLike | None = None) -> ForecastStore:
    """The store at ``target``: a URL with ``://`` is a SQL database, anything else a folder.

    Without ``target``: ``VPP_FORECAST_STORE_URL`` if set, else ``var/forecast_store`` under
    the working directory.
    """
    target = target or os.environ.get(STORE_URL_ENV) or DEFAULT_STORE_DIR
    if "://" in str(target):
        return SqlForecastStore(str(target))
    return ParquetForecastStore(Path(target))


# --- frames -------------------------------------------------------------------------------

def level_of(column: str) -> float | None:
    """The quantile level of a ``q<level>`` column (``q0.1`` -> 0.1), else None."""
    if not column.startswith("q"):
        return None
    try:
        level = float(column[1:])
    except ValueError:
        return None
    return level if 0 < level < 1 else None


def level_column(level: float) -> str:
    """``0.1`` -> ``q0.1``, as the forecaster names its output columns."""
    return f"q{float(level):g}"


def quantile_columns(frame: pd.DataFrame) -> list[str]:
    """The ``q<level>`` columns of ``frame`` in ascending level."""
    cols = [c for c in frame.columns if level_of(str(c)) is not None]
    return sorted(cols, key=lambda c: level_of(str(c)))


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Output-format columns in order, times UTC at microsecond resolution, sorted by key."""
    qcols = quantile_columns(frame)
    out = frame[[*KEY_COLUMNS, *qcols, *TAIL_COLUMNS]].copy()
    for col in ("issue_time", "timestamp"):
        out[col] = pd.to_datetime(out[col], utc=True).dt.as_unit("us")
    for col in qcols:
        out[col] = out[col].astype("float64")
    for col in ("site_id", *TAIL_COLUMNS):
        out[col] = out[col].astype(str)
    return out.sort_values(list(KEY_COLUMNS), ignore_index=True)


def check_frame(frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """A frame fit to store: output-format columns, tz-aware times, unique keys."""
    if kind not in KINDS:
        raise DataError(f"unknown kind {kind!r}, expected one of {list(KINDS)}")
    missing = [c for c in (*KEY_COLUMNS, *TAIL_COLUMNS) if c not in frame.columns]
    if missing:
        raise MissingColumnsError(f"forecast frame lacks {missing}; expected the forecast "
                                  "output format (site_id, issue_time, timestamp, q..., "
                                  "model_version, quality)", missing)
    if not quantile_columns(frame):
        raise MissingColumnsError("forecast frame has no quantile column such as q0.5",
                                  ["q0.5"])
    for col in ("issue_time", "timestamp"):
        if not isinstance(frame[col].dtype, pd.DatetimeTZDtype):
            raise DataError(f"forecast column {col!r} must hold tz-aware timestamps, got "
                            f"{frame[col].dtype}")
    out = canonical(frame)
    dupes = out.duplicated(list(KEY_COLUMNS))
    if dupes.any():
        first = out.loc[dupes].iloc[0]
        raise DuplicateRowsError(f"forecast frame repeats site {first['site_id']} issue "
                                 f"{first['issue_time']} timestamp {first['timestamp']}")
    return out


def _pairs(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["site_id", "issue_time"]].drop_duplicates(ignore_index=True)


def _one_issue(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of one (site, issue): drop the level columns that issue did not store."""
    keep = [c for c in quantile_columns(frame) if frame[c].notna().any()]
    drop = [c for c in quantile_columns(frame) if c not in keep]
    return frame.drop(columns=drop).reset_index(drop=True)


def _window(frame: pd.DataFrame, start, end) -> pd.DataFrame:
    if start is not None:
        frame = frame[frame["timestamp"] >= as_utc(start, "start")]
    if end is not None:
        frame = frame[frame["timestamp"] < as_utc(end, "end")]
    return frame


# --- Parquet ------------------------------------------------------------------------------

class ParquetForecastStore:
    """Partitioned Parquet files under ``root`` (module doc)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def __str__(self) -> str:
        return f"parquet:{self.root}"

    def partition(self, issue_date: str, kind: str) -> Path:
        return self.root / f"issue_date={issue_date}" / f"kind={kind}" / PARTITION_FILE

    def write(self, frame: pd.DataFrame, kind: str) -> int:
        """Replace the stored rows of every (site, issue) in ``frame``; returns rows written."""
        new = check_frame(frame, kind)
        if new.empty:
            return 0
        dates = new["issue_time"].dt.strftime("%Y-%m-%d")
        for issue_date, part in new.groupby(dates, sort=True):
            self._replace_rows(self.partition(str(issue_date), kind), part)
        return len(new)

    def _replace_rows(self, path: Path, new: pd.DataFrame) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with _locked(path.parent / ".lock"):
                for stray in path.parent.glob(f"{TMP_PREFIX}*{TMP_SUFFIX}"):
                    stray.unlink()  # left by a writer that died: we hold the lock now
                if path.exists():
                    old = pd.read_parquet(path)
                    old = canonical(old) if len(old) else old
                    pairs = pd.MultiIndex.from_frame(_pairs(new))
                    stays = ~pd.MultiIndex.from_frame(old[["site_id", "issue_time"]]).isin(pairs)
                    merged = pd.concat([old[stays], new], ignore_index=True) if stays.any() \
                        else new
                else:
                    merged = new
                merged = merged.sort_values(list(KEY_COLUMNS), ignore_index=True)
                tmp = path.parent / f"{TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex}{TMP_SUFFIX}"
                with open(tmp, "wb") as handle:
                    merged.to_parquet(handle, index=False, compression="zstd",
                                      row_group_size=50_000)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, path)
                _fsync_dir(path.parent)
        except OSError as err:
            raise ForecastStoreError(f"forecast store {self.root}: cannot write {path} "
                                     f"({type(err).__name__}: {err})") from err

    def _partitions(self, first_date: str | None = None, last_date: str | None = None
                    ) -> list[Path]:
        """Partition files with first_date <= issue date <= last_date, newest first."""
        out = []
        for day_dir in self.root.glob("issue_date=*"):
            day = day_dir.name.removeprefix("issue_date=")
            if (first_date and day < first_date) or (last_date and day > last_date):
                continue
            out.extend(p for p in day_dir.glob(f"kind=*/{PARTITION_FILE}") if p.is_file())
        return sorted(out, key=lambda p: (p.parent.parent.name, p.parent.name), reverse=True)

    def _read(self, paths: list[Path], site_ids=None) -> pd.DataFrame:
        filters = None
        if site_ids is not None:
            filters = [("site_id", "in", sorted({str(s) for s in site_ids}))]
        frames = []
        try:
            for path in paths:
                part = pd.read_parquet(path, filters=filters)
                if len(part):
                    frames.append(canonical(part))
        except OSError as err:
            raise ForecastStoreError(f"forecast store {self.root}: cannot read "
                                     f"({type(err).__name__}: {err})") from err
        if not frames:
            return pd.DataFrame(columns=[*KEY_COLUMNS, *TAIL_COLUMNS])
        return canonical(pd.concat(frames, ignore_index=True))

    def read(self, site_id: str, issue_time, start=None, end=None) -> pd.DataFrame | None:
        issue = as_utc(issue_time, "issue_time")
        day = issue.strftime("%Y-%m-%d")
        rows = self._read(self._partitions(day, day), [site_id])
        rows = _window(rows[rows["issue_time"] == issue], start, end) if len(rows) else rows
        return _one_issue(rows) if len(rows) else None

    def latest(self, site_id: str, at) -> pd.DataFrame | None:
        at = as_utc(at, "at")
        by_day: dict[str, list[Path]] = {}
        for path in self._partitions(last_date=at.strftime("%Y-%m-%d")):
            by_day.setdefault(path.parent.parent.name, []).append(path)
        for day in sorted(by_day, reverse=True):
            rows = self._read(by_day[day], [site_id])
            rows = rows[rows["issue_time"] <= at] if len(rows) else rows
            if len(rows):
                return _one_issue(rows[rows["issue_time"] == rows["issue_time"].max()])
        return None

    def issued_between(self, start, end, site_ids=None) -> pd.DataFrame:
        s, e = as_utc(start, "start"), as_utc(end, "end")
        rows = self._read(self._partitions(s.strftime("%Y-%m-%d"), e.strftime("%Y-%m-%d")),
                          site_ids)
        if len(rows):
            rows = rows[(rows["issue_time"] >= s) & (rows["issue_time"] < e)]
        return rows.reset_index(drop=True)


@contextlib.contextmanager
def _locked(path: Path):
    with open(path, "a+") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- SQL ----------------------------------------------------------------------------------

class SqlForecastStore:
    """Table ``vpp_forecasts`` through SQLAlchemy (module doc); created if absent.

    Columns: site_id, kind, issue_time, timestamp (UTC; ``timestamp with time zone`` on
    PostgreSQL, UTC text on sqlite), quantile (level 0..1), value_kw, model_version, quality.
    Primary key (site_id, issue_time, timestamp, quantile).
    """

    def __init__(self, url: str, table: str = "vpp_forecasts"):
        import sqlalchemy as sa

        self._sa = sa
        try:
            self.engine = sa.create_engine(url)
        except (sa.exc.ArgumentError, ModuleNotFoundError) as err:
            raise ForecastStoreError(f"forecast store URL {url!r} cannot be used "
                                     f"({type(err).__name__}: {err}); give e.g. "
                                     "sqlite:///var/forecasts.db or postgresql+psycopg://"
                                     "user@host/db with its driver installed") from err
        self.url = self.engine.url.render_as_string(hide_password=True)
        meta = sa.MetaData()
        self.table = sa.Table(
            table, meta,
            sa.Column("site_id", sa.String(200), primary_key=True),
            sa.Column("issue_time", sa.DateTime(timezone=True), primary_key=True),
            sa.Column("timestamp", sa.DateTime(timezone=True), primary_key=True),
            sa.Column("quantile", sa.Float, primary_key=True),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("value_kw", sa.Float, nullable=False),
            sa.Column("model_version", sa.String(300), nullable=False),
            sa.Column("quality", sa.String(300), nullable=False),
            sa.Index(f"ix_{table}_site_issue", "site_id", "issue_time"),
        )
        try:
            meta.create_all(self.engine)
        except sa.exc.SQLAlchemyError as err:
            raise self._error("cannot create the table", err) from err

    def __str__(self) -> str:
        return f"sql:{self.url}"

    def _error(self, what: str, err: Exception) -> ForecastStoreError:
        return ForecastStoreError(f"forecast store {self.url}: {what} ({type(err).__name__}: "
                                  f"{str(err).splitlines()[0][:300]})")

    def write(self, frame: pd.DataFrame, kind: str) -> int:
        """Replace the stored rows of every (site, issue) in ``frame``: one transaction."""
        sa = self._sa
        new = check_frame(frame, kind)
        if new.empty:
            return 0
        qcols = quantile_columns(new)
        long = new.melt(id_vars=[*KEY_COLUMNS, *TAIL_COLUMNS], value_vars=qcols,
                        var_name="level", value_name="value_kw").dropna(subset=["value_kw"])
        rows = {
            "site_id": long["site_id"].tolist(),
            "issue_time": long["issue_time"].dt.to_pydatetime().tolist(),
            "timestamp": long["timestamp"].dt.to_pydatetime().tolist(),
            "quantile": [level_of(c) for c in long["level"]],
            "kind": [kind] * len(long),
            "value_kw": long["value_kw"].astype(float).tolist(),
            "model_version": long["model_version"].tolist(),
            "quality": long["quality"].tolist(),
        }
        records = [dict(zip(rows, values, strict=True)) for values in zip(*rows.values(),
                                                                            strict=True)]
        pairs = [{"b_site": s, "b_issue": i.to_pydatetime()}
                 for s, i in _pairs(new).itertuples(index=False)]
        t = self.table
        delete = t.delete().where(t.c.site_id == sa.bindparam("b_site"),
                                  t.c.issue_time == sa.bindparam("b_issue"))
        try:
            with self.engine.begin() as conn:
                conn.execute(delete, pairs)
                conn.execute(t.insert(), records)
        except sa.exc.SQLAlchemyError as err:
            raise self._error("write failed; nothing was changed", err) from err
        return len(new)

    def _select(self, *where) -> pd.DataFrame:
        sa = self._sa
        t = self.table
        stmt = sa.select(t.c.site_id, t.c.issue_time, t.c.timestamp, t.c.quantile, t.c.value_kw,
                         t.c.model_version, t.c.quality).where(*where)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(stmt).all()
        except sa.exc.SQLAlchemyError as err:
            raise self._error("read failed", err) from err
        return self._wide(rows)

    @staticmethod
    def _wide(rows) -> pd.DataFrame:
        if not rows:
            return pd.DataFrame(columns=[*KEY_COLUMNS, *TAIL_COLUMNS])
        long = pd.DataFrame(rows, columns=["site_id", "issue_time", "timestamp", "quantile",
                                           "value_kw", "model_version", "quality"])
        for col in ("issue_time", "timestamp"):  # sqlite gives naive UTC, PostgreSQL aware
            long[col] = pd.to_datetime(long[col], utc=True)
        wide = long.pivot(index=[*KEY_COLUMNS, *TAIL_COLUMNS], columns="quantile",
                          values="value_kw")
        wide.columns = [level_column(q) for q in wide.columns]
        return canonical(wide.reset_index())

    def _utc(self, value, name: str):
        return as_utc(value, name).to_pydatetime()

    def read(self, site_id: str, issue_time, start=None, end=None) -> pd.DataFrame | None:
        t = self.table
        where = [t.c.site_id == str(site_id),
                 t.c.issue_time == self._utc(issue_time, "issue_time")]
        if start is not None:
            where.append(t.c.timestamp >= self._utc(start, "start"))
        if end is not None:
            where.append(t.c.timestamp < self._utc(end, "end"))
        rows = self._select(*where)
        return _one_issue(rows) if len(rows) else None

    def latest(self, site_id: str, at) -> pd.DataFrame | None:
        sa = self._sa
        t = self.table
        stmt = sa.select(sa.func.max(t.c.issue_time)).where(
            t.c.site_id == str(site_id), t.c.issue_time <= self._utc(at, "at"))
        try:
            with self.engine.connect() as conn:
                newest = conn.execute(stmt).scalar()
        except sa.exc.SQLAlchemyError as err:
            raise self._error("read failed", err) from err
        if newest is None:
            return None
        return self.read(site_id, pd.Timestamp(newest).tz_localize("UTC")
                         if pd.Timestamp(newest).tzinfo is None else pd.Timestamp(newest))

    def issued_between(self, start, end, site_ids=None) -> pd.DataFrame:
        t = self.table
        where = [t.c.issue_time >= self._utc(start, "start"),
                 t.c.issue_time < self._utc(end, "end")]
        if site_ids is not None:
            where.append(t.c.site_id.in_(sorted({str(s) for s in site_ids})))
        return self._select(*where)


# --- the service's fast path --------------------------------------------------------------

def stored_forecast(store: ForecastStore, site_id: str, issue_time, start, end,
                    quantiles=None) -> pd.DataFrame | None:
    """The stored forecast of ``site_id`` issued exactly at ``issue_time`` for [start, end).

    Returns the rows in the forecast output format (UTC; ``model_version`` and ``quality``
    as stored), or None when the store cannot answer in full, so that the caller computes
    instead: no forecast of that issue, an interval of the window missing (the interval
    width is the stored forecast's own spacing), or a requested level not stored.
    ``quantiles``: the levels wanted (None: all stored levels), returned in that order.
    Naive times raise ``NaiveTimestampError``; an unreadable store ``ForecastStoreError``.
    """
    issue = as_utc(issue_time, "issue_time")
    s, e = as_utc(start, "start"), as_utc(end, "end")
    if e <= s:
        raise DataError(f"end {e} must be after start {s}")
    rows = store.read(site_id, issue)
    if rows is None or rows.empty:
        return None
    stamps = pd.DatetimeIndex(rows["timestamp"]).as_unit("us")
    if len(stamps) < 2:  # one interval: its width, hence completeness, is unknown
        return None
    step = pd.Timedelta(int(np.diff(stamps.asi8).min()), unit="us")
    wanted = pd.date_range(s, e, freq=step, inclusive="left").as_unit("us")
    window = rows[(rows["timestamp"] >= s) & (rows["timestamp"] < e)]
    if len(window) != len(wanted) or not (pd.DatetimeIndex(window["timestamp"]) == wanted).all():
        return None
    if quantiles is None:
        levels = quantile_columns(window)
    else:
        levels = [level_column(q) for q in quantiles]
        if any(c not in window.columns for c in levels):
            return None
    return window[[*KEY_COLUMNS, *levels, *TAIL_COLUMNS]].reset_index(drop=True)
