"""The synthetic sample generator is a leaf of ``forecasting/``: the domain core (contract,
validation, calendar, features, metrics, portfolio, ...) never imports it, so it could be
removed without breaking the library; it lives in ``forecasting/synthetic/`` alone."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "forecasting"
GENERATOR = CORE / "synthetic"


def imports_generator(path: Path) -> bool:
    """Whether the module imports ``forecasting.synthetic`` (or one of its modules)."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        if any(n == "forecasting.synthetic" or n.startswith("forecasting.synthetic.")
               for n in names):
            return True
    return False


def test_domain_core_does_not_import_the_generator():
    core = [p for p in CORE.rglob("*.py") if GENERATOR not in p.parents]
    assert len(core) > 10, f"expected the core modules in {CORE}, found {len(core)}"
    offenders = [str(p.relative_to(ROOT)) for p in core if imports_generator(p)]
    assert offenders == [], f"domain core imports the synthetic generator: {offenders}"


def test_the_scan_sees_the_generators_users():
    """The scan is not blind: the CLI imports the generator, the generator its modules."""
    assert imports_generator(ROOT / "pipelines" / "cli.py")
    assert imports_generator(GENERATOR / "generator.py")


def test_no_generator_module_is_left_beside_the_core():
    leftovers = sorted(p.name for p in CORE.glob("synthetic*.py"))
    assert leftovers == [], f"move {leftovers} into forecasting/synthetic/"


def test_generator_modules_stay_small():
    """One idea per module (STYLE: modules of about 400 lines at most)."""
    sizes = {p.name: len(p.read_text().splitlines()) for p in GENERATOR.glob("*.py")}
    assert len(sizes) > 10, sizes
    too_long = {name: n for name, n in sizes.items() if n > 400}
    assert too_long == {}, f"split these generator modules by idea: {too_long}"
