"""Imports point one way: forecasting <- models <- inference <- pipelines, and inference <-
serving (serving never imports pipelines: request-time code lives in inference); benchmarks
only at the top, never imported by product code. An AST scan of every module (imports inside functions included), so a late import
cannot hide an upward arrow."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("forecasting", "models", "inference", "pipelines", "serving")
ALLOWED = {  # project packages each may import
    "forecasting": {"forecasting"},
    "models": {"forecasting", "models"},
    "inference": {"forecasting", "models", "inference"},
    "pipelines": {"forecasting", "models", "inference", "pipelines"},
    "serving": {"forecasting", "models", "inference", "serving"},
}
FORBIDDEN_THIRD_PARTY = {  # the estimators stay free of tracking and serving frameworks
    "forecasting": {"mlflow", "bentoml"},
    "models": {"mlflow", "bentoml"},
    "inference": {"bentoml"},
    "pipelines": {"bentoml"},
}
# MLflow calls that write (runs, metrics, artifacts, registrations, aliases): only pipelines/
MLFLOW_WRITES = re.compile(r"^(start_run|log_\w+|set_tag\w*|register_model|create_\w+|"
                           r"set_registered_model_alias|delete_\w+|update_\w+|"
                           r"transition_\w+|set_experiment\w*|autolog)$")


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and _dynamic_import(node.func) and node.args:
            name = _leading_text(node.args[0])
            if name:
                roots.add(name.split(".")[0])
    return roots


def _dynamic_import(func: ast.expr) -> bool:
    """``__import__(...)`` or ``importlib.import_module(...)``."""
    return (getattr(func, "id", None) == "__import__"
            or getattr(func, "attr", None) == "import_module")


def _leading_text(arg: ast.expr) -> str | None:
    """The module name's constant start: a string, or an f-string's first literal part."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        return str(arg.values[0].value)
    return None


# Known debts, each with its reason; a new upward import fails the test.
KNOWN: set[tuple[str, str]] = set()


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_point_down(layer: str):
    bad = []
    for path in sorted((ROOT / layer).rglob("*.py")):
        roots = imported_roots(path)
        project = roots & {*LAYERS, "benchmarks", "tests", "notebooks"}
        for name in sorted(project - ALLOWED[layer]):
            if (str(path.relative_to(ROOT)), name) not in KNOWN:
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
        for name in sorted(roots & FORBIDDEN_THIRD_PARTY.get(layer, set())):
            bad.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def test_the_scan_sees_late_and_dynamic_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import importlib\n\ndef f(n):\n    from serving.auth import x\n"
                      "    __import__('benchmarks.y')\n"
                      "    importlib.import_module(f'notebooks.{n}')\n")
    assert {"serving", "benchmarks", "notebooks"} <= imported_roots(module)


def test_known_debts_are_still_there():
    """An entry of KNOWN that no longer applies is removed, so the list stays true."""
    for rel, name in KNOWN:
        assert name in imported_roots(ROOT / rel), f"{rel} no longer imports {name}"


def mlflow_writes(path: Path) -> list[str]:
    """Calls of MLflow's writing API in a module: ``mlflow.log_metric(...)``,
    ``client.set_registered_model_alias(...)`` and the like (by attribute name, on any
    object of a module that imports mlflow)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if "mlflow" not in imported_roots(path):
        return []
    return sorted({node.func.attr for node in ast.walk(tree)
                   if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                   and MLFLOW_WRITES.match(node.func.attr)})


@pytest.mark.parametrize("layer", ["inference", "serving"])
def test_only_pipelines_write_to_mlflow(layer: str):
    bad = [f"{path.relative_to(ROOT)} calls {', '.join(calls)}"
           for path in sorted((ROOT / layer).rglob("*.py")) if (calls := mlflow_writes(path))]
    assert not bad, "MLflow writes outside pipelines/:\n" + "\n".join(bad)


def test_the_write_scan_sees_a_write(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import mlflow\n\ndef f(c):\n    c.set_registered_model_alias('a', 'b', 1)\n"
                      "    mlflow.log_metric('x', 1)\n")
    assert mlflow_writes(module) == ["log_metric", "set_registered_model_alias"]
    assert mlflow_writes(ROOT / "pipelines" / "tracking.py")  # the real writer is seen
