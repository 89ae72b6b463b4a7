"""The reliability suite's kill points (core/failpoints.py): off by default, trace and kill -9 when set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from airflow_provider_polar_mc.core import failpoints

SCRIPT = "from airflow_provider_polar_mc.core import failpoints as f\nfor p in 'abc': f.reached(p)\nprint('went on')"


def run(settings: str) -> subprocess.CompletedProcess:
    env = {**os.environ, failpoints.ENV_VAR: settings}
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)


def test_kill_at_the_nth_point_is_a_sigkill_after_tracing_it(tmp_path):
    trace = tmp_path / "points"
    done = run(f"trace={trace},kill_at=2")
    assert done.returncode == -signal.SIGKILL and "went on" not in done.stdout
    assert trace.read_text().splitlines() == ["a", "b"]


def test_trace_alone_records_every_point_and_goes_on(tmp_path):
    trace = tmp_path / "points"
    done = run(f"trace={trace}")
    assert done.returncode == 0 and "went on" in done.stdout
    assert trace.read_text().splitlines() == ["a", "b", "c"]


def test_an_unknown_setting_names_the_variable():
    done = run("kill_after=3")
    assert done.returncode == 1 and f"{failpoints.ENV_VAR}: unknown setting 'kill_after=3'" in done.stderr


def test_off_without_the_variable():
    assert os.environ.get(failpoints.ENV_VAR) is None
    failpoints.reached("anything")  # no trace, no kill
