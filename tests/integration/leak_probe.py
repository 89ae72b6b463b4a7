"""Not collected by default (no ``test_`` prefix): test_temp_cleanup.py runs it in a pytest subprocess
whose TMPDIR is an empty directory, then checks the directory is empty again.

Between them the two tests use every fixture that writes temporary files; the second fails on purpose,
after starting servers of its own, because cleaning up must not depend on tests passing.
"""

from __future__ import annotations

import os

import pytest

PROBE_ENV = "POLAR_MC_LEAK_PROBE"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get(PROBE_ENV) != "1", reason="run by tests/integration/test_temp_cleanup.py"),
]


def test_session_fixtures(airflow_db, emulator, tmp_path, tmp_path_factory):
    assert airflow_db.exists()
    (tmp_path / "scratch.txt").write_text("x")
    (tmp_path_factory.mktemp("shared") / "scratch.txt").write_text("x")
    assert not emulator.client().exist_table("nothing_here")


def test_fails_on_purpose_with_servers_running(mysql_server, mysql_server_factory, private_emulator, tmp_path):
    mysql_server.execute("CREATE DATABASE IF NOT EXISTS probe", "CREATE TABLE IF NOT EXISTS probe.t (id INT PRIMARY KEY)")
    mysql_server.execute("INSERT INTO probe.t VALUES (1)", "FLUSH BINARY LOGS")
    private_emulator.client().exist_table("nothing_here")
    (tmp_path / "scratch.txt").write_text("x")
    raise AssertionError("deliberate failure (leak probe)")
