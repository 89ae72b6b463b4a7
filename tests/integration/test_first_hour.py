"""A new user's first hour, against a real private server and the emulator: a misspelt database, a
wrong password, broken filters, the connection form's Test button on a silent port, and clean stdout."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from airflow_provider_polar_mc.cli import main as polar_mc
from airflow_provider_polar_mc.core.precheck import run_prechecks
from airflow_provider_polar_mc.exceptions import SpecError
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.hooks.polardb import PolarDBMySqlHook
from airflow_provider_polar_mc.sandbox.mysql import free_port
from airflow_provider_polar_mc.spec import MigrationSpec

pytestmark = pytest.mark.integration

WRONG_PASSWORD = "not-the-Passw0rd"


@pytest.fixture
def shop(mysql_server):
    """A database ``shop_<hex>`` with orders(id, status, amount) and customers(id, name)."""
    name = f"shop_{uuid.uuid4().hex[:8]}"
    mysql_server.execute(
        f"CREATE DATABASE {name}",
        f"CREATE TABLE {name}.orders (id INT PRIMARY KEY, status VARCHAR(10), amount INT)",
        f"CREATE TABLE {name}.customers (id INT PRIMARY KEY, name TEXT)",
    )
    yield name
    mysql_server.execute(f"DROP DATABASE {name}")


def misspelt(name: str) -> str:
    """shop_1a2b3c4d -> shpo_1a2b3c4d: what a hurried user types."""
    return name[:2] + name[3] + name[2] + name[4:]


def spec_document(connections, databases: list[str], **overrides) -> dict:
    document = {
        "name": f"m_{uuid.uuid4().hex[:8]}",
        "source": {"conn_id": connections.source, "databases": databases},
        "destination": {"conn_id": connections.destination},
        "batch_rename": {"prefix": f"t{uuid.uuid4().hex[:6]}_"},
    }
    document.update(overrides)
    return document


def precheck(document: dict) -> dict[str, dict]:
    spec = MigrationSpec.from_dict(document)
    report = run_prechecks(spec, resolve.source_endpoint(spec), lambda: resolve.destination(spec))
    return {r.check_id: {"status": r.status, "message": r.message, "fix": r.fix} for r in report.results}


def write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


# --- a database that does not exist --------------------------------------------------------------------


def test_missing_database_in_source_databases_fails_source_objects_with_did_you_mean(connections, shop):
    results = precheck(spec_document(connections, [misspelt(shop)]))
    assert results["source_objects"]["status"] == "failed"
    assert results["source_objects"]["message"] == (
        f"source.databases[0]: database {misspelt(shop)!r} not found in the source; did you mean {shop!r}?")
    assert "source_tables_selected" not in results  # no hint about include/exclude patterns


def test_missing_database_named_in_objects_is_reported_once(connections, shop):
    document = spec_document(connections, [shop, misspelt(shop)], objects=[
        {"database": shop, "tables": ["orders"]}, {"database": misspelt(shop), "tables": "all"}])
    results = precheck(document)
    assert results["source_objects"]["status"] == "failed"
    assert results["source_objects"]["message"] == (
        f"source.databases[1]: database {misspelt(shop)!r} not found in the source; did you mean {shop!r}?")


def test_precheck_command_exits_1_for_a_missing_database(connections, shop, tmp_path, capsys):
    path = write(tmp_path, spec_document(connections, [misspelt(shop)]))
    assert polar_mc(["precheck", "--spec", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED    source_objects" in out and f"did you mean {shop!r}?" in out


def test_plan_fails_for_a_missing_database(connections, shop, tmp_path, capsys):
    path = write(tmp_path, spec_document(connections, [misspelt(shop)]))
    assert polar_mc(["plan", "--spec", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path} does not match the source" in captured.err
    assert f"database {misspelt(shop)!r} not found in the source; did you mean {shop!r}?" in captured.err
    assert "Traceback" not in captured.err


def test_plan_fails_when_nothing_is_selected_and_says_why(connections, shop, tmp_path, capsys):
    objects = [{"database": shop, "tables": "all", "include": ["order*"], "exclude": ["orders"]}]
    path = write(tmp_path, spec_document(connections, [shop], objects=objects))
    assert polar_mc(["plan", "--spec", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"objects[0].exclude: ['orders'] excludes every table of {shop} that include selects (orders)" in captured.err


def test_an_empty_database_fails_source_tables_selected_saying_so(connections, mysql_server):
    empty = f"empty_{uuid.uuid4().hex[:8]}"
    mysql_server.execute(f"CREATE DATABASE {empty}")
    try:
        results = precheck(spec_document(connections, [empty]))
    finally:
        mysql_server.execute(f"DROP DATABASE {empty}")
    assert results["source_objects"]["status"] == "passed"
    assert results["source_tables_selected"]["status"] == "failed"
    assert f"database {empty!r} has no tables" in results["source_tables_selected"]["message"]


# --- a wrong password -------------------------------------------------------------------------------------


def test_plan_with_a_wrong_password_names_the_fix_without_traceback(connections, mysql_server, shop, tmp_path, capsys):
    connections.set_source(mysql_server, "root", WRONG_PASSWORD)
    path = write(tmp_path, spec_document(connections, [shop]))
    assert polar_mc(["plan", "--spec", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "Traceback" not in captured.err
    assert captured.err.startswith(f"polar-mc: source connection {connections.source!r}: cannot connect to "
                                   f"127.0.0.1:{mysql_server.port} as root: access denied: wrong login or password")
    assert WRONG_PASSWORD not in captured.err


def test_precheck_with_a_wrong_password_fails_source_connectivity(connections, mysql_server, shop, tmp_path, capsys):
    connections.set_source(mysql_server, "root", WRONG_PASSWORD)
    path = write(tmp_path, spec_document(connections, [shop]))
    assert polar_mc(["precheck", "--json", "--spec", str(path)]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    source = next(r for r in report["results"] if r["check_id"] == "source_connectivity")
    assert source["status"] == "failed" and "access denied" in source["message"] and "(MySQL error 1045)" in source["message"]
    assert WRONG_PASSWORD not in captured.out + captured.err


# --- filters ------------------------------------------------------------------------------------------------


def test_filter_messages_quote_the_users_filter_and_suggest_columns(connections, mysql_server, shop):
    """Syntax is the spec's business (every filter problem at once, when the spec loads); unknown
    columns the precheck's, which knows the table."""
    mysql_server.execute(f"CREATE TABLE {shop}.refunds (id INT PRIMARY KEY, amount INT)",
                         f"CREATE TABLE {shop}.notes (id INT PRIMARY KEY, body TEXT)")
    objects = [{"database": shop, "tables": [
        {"name": "orders", "filter": "status = = 'paid'"},
        {"name": "customers", "filter": "nme LIKE 'a%'"},
        {"name": "refunds", "filter": "amount >"},
        {"name": "notes", "filter": "zzz = 1"},
    ]}]
    with pytest.raises(SpecError) as raised:
        precheck(spec_document(connections, [shop], objects=objects))
    problems = {problem.path: problem.message for problem in raised.value.problems}
    assert problems == {
        "objects[0].tables[0].filter": "SQL syntax error at character 10, near \"= 'paid'\"",
        "objects[0].tables[2].filter": "SQL syntax error: the condition is incomplete, something is missing after "
                                       "'amount >'",
    }
    objects[0]["tables"] = [objects[0]["tables"][1], objects[0]["tables"][3]]
    result = precheck(spec_document(connections, [shop], objects=objects))["filter_conditions"]
    assert result["status"] == "failed"
    problems = result["message"].split("; objects")
    assert problems[0] == (f"objects[0].tables[0].filter on {shop}.customers: \"nme LIKE 'a%'\": unknown column "
                           "'nme'; did you mean 'name'?")
    assert problems[1] == f"[0].tables[1].filter on {shop}.notes: 'zzz = 1': unknown column 'zzz'; the table's columns are id, body"
    assert "LIMIT" not in result["message"]


def test_a_multi_line_filter_error_gives_line_and_column(connections, shop):
    objects = [{"database": shop, "tables": [{"name": "orders", "filter": "status = 'paid'\nAND amount > > 3"}]}]
    with pytest.raises(SpecError, match=r"SQL syntax error at character 30 \(line 2, column 14\), near '> 3'"):
        precheck(spec_document(connections, [shop], objects=objects))


def test_valid_filters_still_pass(connections, shop):
    objects = [{"database": shop, "tables": [{"name": "orders", "filter": "status <> 'x' AND (amount > 1)"}]}]
    assert precheck(spec_document(connections, [shop], objects=objects))["filter_conditions"]["status"] == "passed"


# --- the connection form's Test button -----------------------------------------------------------------------


def _define(monkeypatch, conn_id: str, port: int, connect_timeout: float, password: str = "") -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({
        "conn_type": "polardb_mysql", "host": "127.0.0.1", "port": port, "login": "root", "password": password,
        "extra": {"connect_timeout": connect_timeout}}))


def test_test_connection_answers_within_connect_timeout_on_a_silent_port(monkeypatch):
    """A listening socket that never accepts: the TCP handshake completes (backlog), the MySQL greeting
    never comes. Before, the Test button waited forever (read_timeout None) inside the 720-minute
    retry window."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        _define(monkeypatch, "polar_silent", port, connect_timeout=2)
        hook = PolarDBMySqlHook(polardb_conn_id="polar_silent")
        assert hook.retry.connection_seconds == 720 * 60
        started = time.monotonic()
        ok, message = hook.test_connection()
        elapsed = time.monotonic() - started
    assert not ok
    assert 1.5 <= elapsed < 2 + 3, elapsed  # connect_timeout plus scheduling slack on a busy 2-core machine
    assert message.startswith(f"cannot connect to 127.0.0.1:{port} as root: the server accepted the connection "
                              "but sent no MySQL greeting within 2 s")


def test_test_connection_on_a_closed_port_and_with_a_wrong_password(monkeypatch, mysql_server):
    port = free_port()
    _define(monkeypatch, "polar_closed", port, connect_timeout=2)
    started = time.monotonic()
    ok, message = PolarDBMySqlHook(polardb_conn_id="polar_closed").test_connection()
    assert not ok and time.monotonic() - started < 5  # refused at once; generous for a loaded machine
    assert message.startswith(f"cannot connect to 127.0.0.1:{port} as root: connection refused")

    _define(monkeypatch, "polar_wrong", mysql_server.port, connect_timeout=2, password=WRONG_PASSWORD)
    ok, message = PolarDBMySqlHook(polardb_conn_id="polar_wrong").test_connection()
    assert not ok and "access denied" in message and WRONG_PASSWORD not in message


def test_test_connection_succeeds_against_the_server(monkeypatch, mysql_server):
    _define(monkeypatch, "polar_ok", mysql_server.port, connect_timeout=2)
    ok, message = PolarDBMySqlHook(polardb_conn_id="polar_ok").test_connection()
    assert ok and message.startswith(f"connected to 127.0.0.1:{mysql_server.port} as root (server ")
    assert "5.5.5-" not in message


# --- stdout carries only the result ---------------------------------------------------------------------------


def _run_cli(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    polar_mc_bin = Path(sys.executable).with_name("polar-mc")
    return subprocess.run([str(polar_mc_bin), *argv], capture_output=True, text=True, env=env, timeout=300)


def test_precheck_json_and_plan_print_only_their_result(connections, mysql_server, shop, tmp_path):
    """An empty password and a URI (its extras are strings, "10" shorter than 5 characters) made
    Airflow write "Skipping masking for a secret as it's too short" to stdout in every command."""
    env = dict(os.environ)
    env[f"AIRFLOW_CONN_{connections.source.upper()}"] = (
        f"polardb-mysql://root:@127.0.0.1:{mysql_server.port}/?connect_timeout=10")
    path = write(tmp_path, spec_document(connections, [shop]))

    checked = _run_cli(env, "precheck", "--json", "--spec", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["passed"] is True  # stdout is exactly one JSON document

    planned = _run_cli(env, "plan", "--spec", str(path))
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.startswith(f"-- {shop}.") and "CREATE TABLE IF NOT EXISTS" in planned.stdout
    for done in (checked, planned):
        assert "Skipping masking" not in done.stdout + done.stderr
        assert "Traceback" not in done.stderr
