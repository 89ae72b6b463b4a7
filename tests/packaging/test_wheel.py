"""The README's deployment, exactly as written, from a checkout: build the wheel, install it into a fresh
virtualenv (no editable install, nothing from this repository's .venv), and ask Airflow what it sees.

Slow (about two minutes of installing, overlapped with the rest of the session): it is the only test that proves a user's `pip install .`
gives a working provider.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.fresh_install import fresh_venv

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(args: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> str:
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _json(output: str):
    """The JSON document of an `airflow ... -o json` command (Airflow prints some warnings on stdout)."""
    lines = [line for line in output.splitlines() if line.startswith(("[", "{"))]
    assert lines, f"no JSON in: {output[-2000:]}"
    return json.loads(lines[-1])


@pytest.fixture(scope="module")
def fresh_install() -> tuple[Path, dict[str, str]]:
    # Built in the background since the session started (tests/fixtures/fresh_install.py).
    work, venv = fresh_venv()
    home = work / "airflow-home"
    (home / "dags").mkdir(parents=True)
    # README step 3: copy the DAG file and the spec folder into the DAGs folder.
    shutil.copy(REPO / "dags" / "polar_mc_migrations.py", home / "dags")
    shutil.copytree(REPO / "dags" / "migrations", home / "dags" / "migrations")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "PYTHON"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}",
    })
    return venv, env


def test_wheel_install_shows_the_provider_with_everything_it_provides(fresh_install):
    venv, env = fresh_install
    airflow = str(venv / "bin" / "airflow")
    [info] = _json(_run([airflow, "providers", "get", "airflow-provider-polar-mc", "--full", "-o", "json"], env))
    modules = lambda group: [m for entry in info[group] for m in entry["python-modules"]]  # noqa: E731
    assert modules("hooks") == ["airflow_provider_polar_mc.hooks.polardb"]
    assert {"airflow_provider_polar_mc.operators.precheck", "airflow_provider_polar_mc.operators.schema",
            "airflow_provider_polar_mc.operators.full_load"} <= set(modules("operators"))
    assert modules("sensors") == ["airflow_provider_polar_mc.sensors.binlog"]
    assert modules("triggers") == ["airflow_provider_polar_mc.triggers.binlog"]
    assert "spec_dir" in info["config"]["polar_mc"]["options"]
    hooks = _run([airflow, "providers", "hooks", "-o", "json"], env)
    assert any(hook["connection_type"] == "polardb_mysql" for hook in _json(hooks))
    plugins = _json(_run([airflow, "plugins", "-o", "json"], env))
    assert any(plugin["name"] == "polar_mc" for plugin in plugins)


def test_wheel_install_loads_the_example_dags(fresh_install):
    venv, env = fresh_install
    airflow = str(venv / "bin" / "airflow")
    _run([airflow, "db", "migrate"], env)
    # What the dag-processor does: parse and serialize into the metadata database (the timetable must be
    # registered for that), then the scheduler's next run is the latest closed interval.
    _run([airflow, "dags", "reserialize"], env)
    assert _json(_run([airflow, "dags", "list-import-errors", "-o", "json"], env)) == []
    listed = {dag["dag_id"] for dag in _json(_run([airflow, "dags", "list", "-o", "json"], env))}
    assert {"polar_mc__example_shop__setup", "polar_mc__example_shop__incremental", "polar_mc__example_shop__resync"} <= listed
    details = _json(_run([airflow, "dags", "details", "polar_mc__example_shop__incremental", "-o", "json"], env))
    details = details[0] if isinstance(details, list) else details
    # Deployed today, the first run is the latest closed hour, not 2026-01-01 (a catch-up of months).
    first_end = dt.datetime.fromisoformat(details["next_dagrun_data_interval_end"])
    assert dt.timedelta(0) <= dt.datetime.now(dt.timezone.utc) - first_end <= dt.timedelta(hours=1, minutes=5)
    # The wheel carries the package only, never the repository's tests or DAG folder.
    site = next((venv / "lib").glob("python*/site-packages"))
    assert not (site / "tests").exists() and not (site / "dags").exists()
    assert (site / "airflow_provider_polar_mc" / "py.typed").is_file()  # PEP 561: users' type checkers see the hints
