"""Helpers shared by the ``vpp`` command modules: errors, --help text, tables, times."""

from __future__ import annotations

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from forecasting.errors import DataError

ERRORS = Console(stderr=True)


def fail(err: Exception, console: Console = ERRORS) -> None:
    """Print ``error: ...`` and exit with code 2 (a data or usage error)."""
    console.print(f"[red]error:[/red] {err}", soft_wrap=True)
    raise typer.Exit(2)


def help_text(doc: str) -> str:
    """A docstring as --help text: paragraphs kept, lines inside a paragraph joined."""
    paragraphs = [" ".join(line.strip() for line in part.splitlines())
                  for part in doc.strip().split("\n\n")]
    return "\n\n".join(paragraphs)


def table(frame: pd.DataFrame, title: str, fmt: dict[str, str] | None = None) -> Table:
    """A rich table of ``frame`` (a named index becomes the first column); floats are
    formatted with ``fmt[column]`` (default ``.3f``), missing values left blank."""
    out = Table(title=title)
    frame = frame.reset_index() if frame.index.name else frame
    for col in frame.columns:
        out.add_column(str(col), justify="right")
    for _, row in frame.iterrows():
        cells = []
        for col in frame.columns:
            v = row[col]
            if isinstance(v, float):
                cells.append(format(v, (fmt or {}).get(col, ".3f")) if pd.notna(v) else "")
            else:
                cells.append("" if v is None or v is pd.NA else str(v))
        out.add_row(*cells)
    return out


def parse_time(text: str, option: str) -> pd.Timestamp:
    """An ISO 8601 time with offset; naive or unparsable text is a ``DataError`` naming the
    option."""
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise DataError(f"{option} {text!r} is not an ISO 8601 time; give e.g. "
                        "2025-07-01T14:00:00+08:00") from None
    if ts.tzinfo is None:
        raise DataError(f"{option} {text!r} has no UTC offset; give e.g. "
                        "2025-07-01T14:00:00+08:00")
    return ts
