"""The migration logic and the emulator must run without Airflow (DESIGN.md §2): enforce the boundary."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider_polar_mc"
AIRFLOW_FREE = ["core", "emulator", "sandbox", "spec.py", "exceptions.py"]


def _modules() -> list[Path]:
    files: list[Path] = []
    for entry in AIRFLOW_FREE:
        path = PACKAGE / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
    return files


def _imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_does_not_import_airflow(path: Path):
    assert "airflow" not in _imported_roots(path), f"{path} imports airflow; keep Airflow in hooks/operators"


def test_emulator_is_not_imported_by_the_provider():
    """The provider never imports the emulator at run time (it is a test and demo destination only)."""
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] in ("emulator", "sandbox"):
            continue
        text = path.read_text()
        assert "emulator" not in {m.split(".")[-1] for m in _imported_roots(path)}
        assert "airflow_provider_polar_mc.emulator" not in text, f"{rel} imports the emulator"
