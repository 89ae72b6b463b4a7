"""Import boundaries (docs/architecture.md): the migration logic and the emulator run without Airflow,
the provider never imports the emulator, and inside ``core/`` imports run one way: a stage package
(source/, binlog/, destination/, replica/) imports only ``core.model``, the shared modules at ``core/``
level, ``exceptions`` and ``spec``; never another stage, never an orchestrator."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_provider_polar_mc"
AIRFLOW_FREE = ["core", "emulator", "sandbox", "spec.py", "spec", "exceptions.py"]


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


# --- core/ grouped by stage ---------------------------------------------------------------------------

CORE = PACKAGE / "core"
STAGES = ("source", "binlog", "destination", "replica")
# Below every stage: the shared descriptions and rules. Orchestrators (precheck, full_load, incremental,
# intervals, planning, validate) sit above the stages and may import any of them.
SHARED = {"model", "typemap", "naming", "values", "throttle", "schema_plan", "endpoint", "sqltext", "selection", "retry", "compat", "filters", "cancellation", "failpoints"}
OUTSIDE_CORE_ALLOWED = {"exceptions", "spec"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _provider_imports(path: Path, text: str | None = None) -> set[str]:
    """Every module of the provider that ``path`` imports (absolute or relative, at any depth, also
    under TYPE_CHECKING), as dotted names; ``from pkg import mod`` counts as ``pkg.mod``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text() if text is None else text, str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == PACKAGE.name}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] != PACKAGE.name:
                continue
            for alias in node.names:
                found.add(f"{module}.{alias.name}" if _is_module(f"{module}.{alias.name}") else module)
    return found


def _boundary_problems(path: Path, text: str | None = None) -> list[str]:
    """Why ``path`` (a module of a stage package) breaks the stage rule; [] when it does not."""
    stage = path.relative_to(CORE).parts[0]
    problems = []
    for module in sorted(_provider_imports(path, text)):
        parts = module.split(".")[1:]  # without the package name
        if not parts or parts[0] != "core":
            if not parts or parts[0] not in OUTSIDE_CORE_ALLOWED:
                problems.append(f"imports {module}: a stage imports only core.model, shared modules, exceptions, spec")
            continue
        head = parts[1] if len(parts) > 1 else ""
        if head == stage or head in SHARED:
            continue
        what = "another stage" if head in STAGES else "an orchestrator (above the stages)"
        problems.append(f"imports {module}: {what}")
    return problems


def _stage_modules() -> list[Path]:
    return [p for stage in STAGES for p in sorted((CORE / stage).rglob("*.py"))]


def _shared_modules() -> list[Path]:
    return [CORE / f"{name}.py" for name in sorted(SHARED) if (CORE / f"{name}.py").exists()]


def test_the_stage_packages_exist():
    assert all((CORE / stage / "__init__.py").is_file() for stage in STAGES)
    assert _stage_modules(), "no stage modules found: did core/ move?"


@pytest.mark.parametrize("path", _stage_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_stage_imports_only_downward(path: Path):
    assert _boundary_problems(path) == [], f"{path.relative_to(PACKAGE)} breaks the stage rule"


@pytest.mark.parametrize("path", _shared_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_shared_modules_import_no_stage_and_no_orchestrator(path: Path):
    """The shared modules sit below the stages: they import one another, exceptions and spec only."""
    bad = []
    for module in sorted(_provider_imports(path)):
        parts = module.split(".")[1:]
        if parts[0] == "core" and len(parts) > 1 and parts[1] not in SHARED:
            bad.append(module)
        elif parts[0] != "core" and parts[0] not in OUTSIDE_CORE_ALLOWED:
            bad.append(module)
    assert bad == [], f"{path.relative_to(PACKAGE)} imports {bad}"


def test_model_imports_nothing_of_the_provider_at_run_time():
    """core/model.py is the bottom layer: project imports only under TYPE_CHECKING (annotations)."""
    tree = ast.parse((CORE / "model.py").read_text())
    runtime = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert all(not (getattr(n, "module", None) or "").startswith(PACKAGE.name) for n in runtime)


def test_the_stage_rule_catches_what_it_is_for():
    """A stage module importing another stage, an orchestrator or the Airflow layer is reported,
    in absolute, relative and module (``from ..x import y``) forms; model and its own stage are fine."""
    probe = CORE / "binlog" / "probe.py"
    source = (
        "from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination\n"
        "from ..source import catalog\n"
        "from airflow_provider_polar_mc.core import full_load\n"
        "from airflow_provider_polar_mc.core.planning import plan_migration\n"
        "from airflow_provider_polar_mc.hooks import resolve\n"
        "from airflow_provider_polar_mc.core.model import BinlogCoordinate\n"
        "from airflow_provider_polar_mc.core import values\n"
        "from . import ddl\n"
        "from .coordinates import capture\n"
    )
    problems = _boundary_problems(probe, source)
    assert [p.split(":")[0] for p in problems] == [
        "imports airflow_provider_polar_mc.core.destination.maxcompute",
        "imports airflow_provider_polar_mc.core.full_load",
        "imports airflow_provider_polar_mc.core.planning",
        "imports airflow_provider_polar_mc.core.source.catalog",
        "imports airflow_provider_polar_mc.hooks.resolve",
    ], problems
