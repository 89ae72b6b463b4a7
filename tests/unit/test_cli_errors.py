"""``polar-mc``: every user mistake that needs no server gets one clear message on stderr naming the
object and the fix, exit code 2, no traceback (unless -v), nothing on stdout, and never a secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from airflow_provider_polar_mc.cli import main
from airflow_provider_polar_mc.sandbox.mysql import free_port

PASSWORD = "s3cr3t-Pa55word"


@pytest.fixture
def conn_ids(monkeypatch):
    """Unique connection ids, none defined; ``define`` sets one as an AIRFLOW_CONN_* variable."""
    suffix = uuid.uuid4().hex[:8]

    class Ids:
        source = f"polar_{suffix}"
        destination = f"mc_{suffix}"

        @staticmethod
        def define(conn_id: str, value: str) -> None:
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", value)

    for name in list(os.environ):
        if name.startswith("AIRFLOW_CONN_"):
            monkeypatch.delenv(name)
    return Ids


def write_spec(tmp_path: Path, conn_ids, extra: str = "") -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(
        f"name: shop_mc\nsource:\n  conn_id: {conn_ids.source}\n  databases: [shop]\n"
        f"destination:\n  conn_id: {conn_ids.destination}\n{extra}"
    )
    return path


def source_json(port: int, **fields) -> str:
    return json.dumps({"conn_type": "polardb_mysql", "host": "127.0.0.1", "port": port, "login": "root", **fields})


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_clean_failure(code: int, out: str, err: str, *fragments: str, exit_code: int = 2) -> None:
    assert code == exit_code, err
    assert out == ""
    assert "Traceback" not in err
    assert err.startswith("polar-mc: "), err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    assert PASSWORD not in err


# --- the spec file --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["precheck", "plan"])
def test_latin1_spec(capsys, tmp_path, command):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"name: shop_mc\nsource:\n  databases: [shop]  # caf\xe9\n")
    assert_clean_failure(*run(capsys, command, "--spec", str(path)), str(path), "not UTF-8", "line 3", "save it as UTF-8")


def test_deeply_nested_spec(capsys, tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("name: x\nsource: " + "[" * 3000 + "]" * 3000 + "\n")
    assert_clean_failure(*run(capsys, "plan", "--spec", str(path)), "nested deeper than 32 levels")


def test_alias_bomb_is_refused_fast(capsys, tmp_path):
    from tests.unit.test_spec_loading import BILLION_LAUGHS

    path = tmp_path / "spec.yaml"
    path.write_text(BILLION_LAUGHS)
    started = time.monotonic()
    result = run(capsys, "precheck", "--spec", str(path))
    assert time.monotonic() - started < 5  # was 29 s before the bound (MemoryError); slack for load
    assert_clean_failure(*result, "refused", "more than 200,000 values")


def test_duplicate_key_range_and_tag_problems_are_listed_together(capsys, tmp_path, conn_ids):
    path = write_spec(tmp_path, conn_ids, "throttle:\n  full:\n    mb_per_s: 1.0e-300\nenvironment_tag: "
                      + "t" * 101 + "\nname: again\n")
    code, out, err = run(capsys, "precheck", "--spec", str(path))
    assert_clean_failure(code, out, err, "(3 problems)", "name: is given twice, on line 1 and on line 11",
                         "throttle.full.mb_per_s: must be a positive number from 0.1 to 10,000, got 1e-300",
                         "environment_tag: is 101 characters long; at most 100")


# --- connections ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["precheck", "plan"])
def test_connection_not_defined(capsys, tmp_path, conn_ids, command):
    path = write_spec(tmp_path, conn_ids)
    variable = f"AIRFLOW_CONN_{conn_ids.source.upper()}"
    assert_clean_failure(*run(capsys, command, "--spec", str(path)), f"connection {conn_ids.source!r}",
                         "source.conn_id", "is not defined", variable, "airflow connections add")


def test_connection_not_defined_suggests_a_misspelt_variable(capsys, tmp_path, conn_ids):
    path = write_spec(tmp_path, conn_ids)
    conn_ids.define(conn_ids.source[:-1] + "x", source_json(1))
    assert_clean_failure(*run(capsys, "plan", "--spec", str(path)), "a typo?")


def test_destination_connection_not_defined(capsys, tmp_path, conn_ids):
    path = write_spec(tmp_path, conn_ids)
    conn_ids.define(conn_ids.source, source_json(free_port()))
    assert_clean_failure(*run(capsys, "precheck", "--spec", str(path)), f"connection {conn_ids.destination!r}",
                         "destination.conn_id", f"AIRFLOW_CONN_{conn_ids.destination.upper()}", '"conn_type": "maxcompute"')


def test_truncated_connection_json_names_the_variable_not_undefined(capsys, tmp_path, conn_ids):
    path = write_spec(tmp_path, conn_ids)
    whole = source_json(3306, password=PASSWORD)
    conn_ids.define(conn_ids.source, whole[: len(whole) - 12])
    code, out, err = run(capsys, "plan", "--spec", str(path))
    assert_clean_failure(code, out, err, f"AIRFLOW_CONN_{conn_ids.source.upper()} is set but its JSON is invalid",
                         "line 1, column", "truncated")
    assert "isn't defined" not in err and "not defined" not in err


def test_connection_json_with_an_unknown_key(capsys, tmp_path, conn_ids):
    path = write_spec(tmp_path, conn_ids)
    conn_ids.define(conn_ids.source, json.dumps({"conn_type": "polardb_mysql", "host": "h", "pasword": PASSWORD}))
    assert_clean_failure(*run(capsys, "plan", "--spec", str(path)), "unknown key 'pasword'")


def test_invalid_connection_uri_never_shows_the_password(capsys, tmp_path, conn_ids):
    path = write_spec(tmp_path, conn_ids)
    conn_ids.define(conn_ids.source, f"polardb-mysql://root:{PASSWORD}@h://x://y:3306")
    assert_clean_failure(*run(capsys, "plan", "--spec", str(path)), "its URI is invalid", "polardb-mysql://login:password@host:3306")


def test_bad_connection_extra(capsys, tmp_path, conn_ids):
    path = write_spec(tmp_path, conn_ids)
    conn_ids.define(conn_ids.source, source_json(3306, extra={"connect_timeout": "soon"}))
    assert_clean_failure(*run(capsys, "plan", "--spec", str(path)), "extra connect_timeout must be a number of seconds")


def test_plan_against_a_closed_port_names_host_port_and_cause(capsys, tmp_path, conn_ids):
    path = write_spec(tmp_path, conn_ids)
    port = free_port()
    conn_ids.define(conn_ids.source, source_json(port, password=PASSWORD))
    assert_clean_failure(*run(capsys, "plan", "--spec", str(path)), f"source connection {conn_ids.source!r}",
                         f"127.0.0.1:{port} as root", "connection refused")


def test_verbose_shows_the_traceback(capsys, tmp_path, conn_ids):
    path = write_spec(tmp_path, conn_ids)
    code, out, err = run(capsys, "plan", "-v", "--spec", str(path))
    assert code == 2 and out == ""
    assert "Traceback" in err and "ConnectionNotUsable" in err and "polar-mc: connection" in err


# --- stdout holds only the result -----------------------------------------------------------------------


def test_precheck_json_stdout_is_only_json_and_no_masking_warning(tmp_path, conn_ids):
    """An empty password and a URI extra shorter than 5 characters (connect_timeout=10) made Airflow
    log "Skipping masking for a secret as it's too short" on stdout, before the JSON. A new process,
    since Airflow warns once per process."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("AIRFLOW_CONN_")}
    env[f"AIRFLOW_CONN_{conn_ids.source.upper()}"] = f"polardb-mysql://root:@127.0.0.1:{port}/?connect_timeout=10"
    # No endpoint: the destination check fails at once instead of retrying for seconds.
    env[f"AIRFLOW_CONN_{conn_ids.destination.upper()}"] = json.dumps(
        {"conn_type": "maxcompute", "extra": {"access_key_id": "ak", "access_key_secret": "sk", "project": "p"}})
    path = write_spec(tmp_path, conn_ids)
    polar_mc = Path(sys.executable).with_name("polar-mc")
    done = subprocess.run([str(polar_mc), "precheck", "--json", "--spec", str(path)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)  # the whole of stdout is one JSON document
    assert {r["check_id"]: r["status"] for r in report["results"]} == {
        "source_connectivity": "failed", "destination_connectivity": "failed"}
    assert "connection refused" in report["results"][0]["message"]
    assert "Skipping masking" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
