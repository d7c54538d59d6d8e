"""Every notebook in notebooks/ runs top to bottom (nbclient, kernel python3 of this venv)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# wall-clock bounds (s) of notebooks meant to stay quick: about twice what they take on a
# loaded 2-core machine, so that a notebook that starts training models fails here
TIME_BUDGET_S = {"bidding.ipynb": 120.0}


def _kernel_or_skip() -> None:
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        pytest.skip("jupyter_client is not installed (pip install nbclient ipykernel)")
    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        pytest.skip("no 'python3' Jupyter kernel in this environment (pip install ipykernel)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs(path: Path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    _kernel_or_skip()
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    notebook = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    began = time.perf_counter()
    client.execute()
    elapsed = time.perf_counter() - began
    budget = TIME_BUDGET_S.get(path.name)
    assert budget is None or elapsed < budget, (
        f"{path.name} ran {elapsed:.0f} s, over its {budget:.0f} s budget: keep it on small "
        "synthetic data and the rule baselines")
    errors = [out for cell in notebook.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors
