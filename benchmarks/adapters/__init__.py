"""Public data sets turned into portfolios (../shared/DATA_FORMAT.md), read in place.

Each adapter module reads one folder of the shared data (``VPP_SHARED_DATA``, default
``<repo>/../shared/data``) and returns the portfolio tables as frames (``frames()``) or writes
them to a directory (``write(out_dir)``), never into the repository. Every choice the data
do not settle (issue times of NWP without one, units, time zones, capacities) is stated in
the adapter's docstring. ``python -m benchmarks.adapters.<name> --out DIR`` writes one.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipelines.datasets import (  # noqa: F401  (one definition, shared by the adapters)
    ROOT,
    SharedDataMissingError,
    dataset_dir,
    shared_data_root,
)


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
