"""Public data sets turned into portfolios (../shared/DATA_FORMAT.md), read in place.

Each adapter module reads one folder of the shared data (``VPP_SHARED_DATA``, default
``<repo>/../shared/data``) and returns the portfolio tables as frames (``frames()``) or writes
them to a directory (``write(out_dir)``), never into the repository. Every choice the data
do not settle (issue times of NWP without one, units, time zones, capacities) is stated in
the adapter's docstring. ``python -m benchmarks.adapters.<name> --out DIR`` writes one.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


class SharedDataMissingError(FileNotFoundError):
    """A public data set is not where the adapters look for it."""


def shared_data_root() -> Path:
    """``$VPP_SHARED_DATA`` or ``<repo>/../shared/data``."""
    env = os.environ.get("VPP_SHARED_DATA")
    return Path(env) if env else (ROOT.parent / "shared" / "data")


def dataset_dir(name: str, root: Path | str | None = None, probe: str | None = None) -> Path:
    """Folder ``name`` of the shared data; a clear error when it (or ``probe`` in it) is absent."""
    path = Path(root) if root is not None else shared_data_root()
    path = path / name
    if not path.is_dir() or (probe and not (path / probe).exists()):
        raise SharedDataMissingError(
            f"public data set {name!r} not found at {path}"
            + (f" (no {probe})" if probe else "")
            + "; set VPP_SHARED_DATA to the folder that holds it (default <repo>/../shared/data)")
    return path


def write_portfolio(frames: dict[str, pd.DataFrame], out_dir: Path | str) -> Path:
    """Write portfolio tables: ``sites.csv`` and the others as Parquet with tz-aware UTC stamps."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        if name == "sites":
            frame.to_csv(out / "sites.csv", index=False)
        elif frame is not None and len(frame):
            frame.to_parquet(out / f"{name}.parquet", index=False)
    return out


def cli(name: str, make_frames) -> None:
    """``python -m benchmarks.adapters.<name> --out DIR``: write the portfolio to DIR."""
    import argparse

    parser = argparse.ArgumentParser(description=f"write the {name} data set as a portfolio "
                                     "directory (DATA_FORMAT.md)")
    parser.add_argument("--out", required=True, type=Path, help="directory to write")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="shared data folder (default $VPP_SHARED_DATA or ../shared/data)")
    args = parser.parse_args()
    path = write_portfolio(make_frames(args.data_root), args.out)
    print(f"wrote {name} portfolio to {path}")
