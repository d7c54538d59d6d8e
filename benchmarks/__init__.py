"""Accuracy and speed benchmarks on the public data sets in ../shared/data.

``python -m benchmarks.run_all`` (``make benchmarks``) runs them all; each module also runs
alone (``python -m benchmarks.load_openstef`` ...). The data sets are read in place through
``benchmarks.adapters``; nothing is copied into the repository. Shared helpers live here: ``portfolio_from``
(adapter tables -> validated portfolio), peak memory, tables.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from benchmarks.adapters import write_portfolio
from forecasting.portfolio import Portfolio, read_portfolio

os.environ.setdefault("OMP_NUM_THREADS", "1")

PERCENTILES = tuple(round(q / 100, 2) for q in range(1, 100))


def portfolio_from(frames: dict[str, pd.DataFrame]) -> Portfolio:
    """Write the adapter's tables to a temporary directory and read them back (validated)."""
    with tempfile.TemporaryDirectory(prefix="vpp-bench-") as tmp:
        return read_portfolio(write_portfolio(frames, Path(tmp)))


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MB (Linux ru_maxrss is in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@contextmanager
def timed(store: dict, key: str):
    t0 = time.perf_counter()
    yield
    store[key] = store.get(key, 0.0) + time.perf_counter() - t0


def print_table(frame: pd.DataFrame, title: str, floatfmt: str = "{:.4f}") -> None:
    print(f"\n== {title}")
    text = frame.to_string(float_format=lambda v: floatfmt.format(v))
    print(text)
