"""Reading portfolio tables from disk: CSV, gzipped CSV or Parquet with the same columns.

The only module of ``forecasting`` that touches files. Timestamps are read as text from
CSV (so that naive ones can be refused) and as they are from Parquet.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from forecasting.contract import TABLES
from forecasting.errors import DataError, MissingColumnsError

SUFFIXES = (".parquet", ".csv.gz", ".csv")


def find_table(directory: Path, name: str) -> Path | None:
    """Path of table ``name`` in ``directory`` (``name.parquet``, ``name.csv.gz`` or ``name.csv``)."""
    found = [directory / f"{name}{s}" for s in SUFFIXES if (directory / f"{name}{s}").exists()]
    if len(found) > 1:
        raise DataError(
            f"{directory}: table {name!r} is given twice ({', '.join(p.name for p in found)}); "
            "keep one file per table"
        )
    return found[0] if found else None


def read_table(path: Path) -> pd.DataFrame:
    """Read one table; timestamp columns of CSV files stay strings for validation."""
    path = Path(path)
    name = path.name
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    if name.endswith((".csv", ".csv.gz")):
        table = name.split(".")[0]
        ts_cols = TABLES[table].timestamp_columns if table in TABLES else ()
        dtypes = {c: "string" for c in (*ts_cols, "site_id", "customer_id", "event_id",
                                        "resource_id")}
        return pd.read_csv(path, dtype=dtypes, keep_default_na=True)
    raise DataError(f"{path}: unknown file type; use .csv, .csv.gz or .parquet")


def read_tables(directory: Path) -> dict[str, tuple[Path, pd.DataFrame]]:
    """All contract tables present in ``directory``: name -> (path, raw frame)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"portfolio directory {directory} does not exist; pass --data DIR")
    out: dict[str, tuple[Path, pd.DataFrame]] = {}
    for name, spec in TABLES.items():
        path = find_table(directory, name)
        if path is None:
            if spec.required_file:
                raise MissingColumnsError(
                    f"{directory}: required table {name!r} is missing; add {name}.csv "
                    f"(or .csv.gz/.parquet) as described in DATA_FORMAT.md"
                )
            continue
        out[name] = (path, read_table(path))
    return out
