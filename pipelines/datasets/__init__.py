"""Public data sets the product reads in place (``vpp baseline-eval --dataset``):
CityLearn 2022 and the OpenDSM/eemeter test meters, as ``EvalDataset`` (customers' loads,
weather and event days). The benchmarks' other adapters (``benchmarks.adapters``) turn data
sets into portfolio directories and live with the benchmarks.

The data are read from ``VPP_SHARED_DATA`` (default ``<repo>/../shared/data``), never
copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

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
