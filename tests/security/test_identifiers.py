"""Legal MySQL names that break naive SQL: backticks, quotes, spaces, newlines, ``--``, ``#``, unicode,
64 characters, and a table named like an injection. Mapped to MaxCompute names they migrate end to end
(schema, full load, incremental, merge, validate) with nothing else read; unmapped, the precheck
refuses them and names the mapping that fixes it; ``polar-mc plan`` prints a script whose every line
is a comment or a CREATE TABLE, whatever the names."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from airflow_provider_polar_mc.cli import render_plan
from airflow_provider_polar_mc.core import sqltext
from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.planning import plan_selected
from airflow_provider_polar_mc.core.precheck import run_prechecks
from airflow_provider_polar_mc.core.validate import compare_migration
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.operators._base import load_spec
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
from airflow_provider_polar_mc.operators.merge import MergeOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from airflow_provider_polar_mc.sensors.binlog import BinlogSensor
from tests.integration.session_clock import execute_at, snapshot_at

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc
FIRST = dt.datetime(2026, 1, 1, 0, tzinfo=UTC)
INJECTION = "x` UNION ALL SELECT 7,CONCAT(User,'@',Host) FROM mysql.user#"
# Source table name -> (its columns' awkward names)
TABLES = {
    "we`ird": ("co`l", "c'2"),
    "it's \"quoted\"": ('c"3', "c #4"),
    "sp ace -- x": ("c -- 5", "c\n6"),
    "new\nline": ("列", "c;7"),
    "订单#1": ("名字", "x" * 64),
    "t" * 64: ("c`;DROP TABLE x;--", "v"),
    INJECTION: ("id2", "v2"),
}


def q(*parts: str) -> str:
    return sqltext.quote_mysql_table(*parts) if len(parts) == 2 else sqltext.quote_mysql_name(parts[0])


@pytest.fixture
def awkward(mysql_server):
    database = f"hd`b {uuid.uuid4().hex[:6]}"
    statements = [f"CREATE DATABASE {q(database)}"]
    for i, (table, (first, second)) in enumerate(TABLES.items()):
        statements.append(f"CREATE TABLE {q(database, table)} (id INT PRIMARY KEY, {q(first)} VARCHAR(20), "
                          f"{q(second)} INT)")
        rows = ", ".join(f"({n}, {sqltext.mysql_text(f'v{i}-{n}')}, {n * 10})" for n in range(1, 6))
        statements.append(f"INSERT INTO {q(database, table)} VALUES {rows}")
    mysql_server.execute(*statements)
    yield database
    mysql_server.execute(f"DROP DATABASE {q(database)}")


def mapped_spec(connections, database: str) -> dict:
    tag = uuid.uuid4().hex[:6]
    tables = []
    for i, (table, columns) in enumerate(TABLES.items()):
        tables.append({"name": table, "target": f"aw{tag}_t{i}",
                       "columns": {column: f"c{j}" for j, column in enumerate(columns)}})
    return {
        "name": f"aw_{tag}",
        "source": {"conn_id": connections.source, "databases": [database]},
        "destination": {"conn_id": connections.destination},
        "objects": [{"database": database, "tables": tables}],
        "partition": ["year", "month", "day", "hour"],
        "full_load": {"chunk_rows": 2, "parallelism": 2},
        "incremental": {"start_date": FIRST.isoformat(), "settle_seconds": 0},
    }


@pytest.mark.security_case("identifier_injection", accepted=True)
def test_awkward_names_migrate_end_to_end_when_mapped(connections, mysql_server, emulator, awkward):
    spec = mapped_spec(connections, awkward)
    migration = load_spec(spec)
    report = run_prechecks(migration, resolve.source_endpoint(migration), lambda: resolve.destination(migration))
    assert report.passed, report.render()
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    # The snapshot "at" 1 s before the interval, the changes "in" it (time-true interval ends,
    # docs/interval-boundaries.md; tests/integration/session_clock.py).
    snapshot_at(MaxComputeCheckpointStore(resolve.destination(migration), migration.name), mysql_server,
                FIRST.timestamp() - 1)
    loaded = FullLoadOperator(task_id="full", spec=spec).execute({})
    assert sorted(r["rows"] for r in loaded) == [5] * len(TABLES), "SILENT: a table copied rows it does not hold"
    changes = []
    for table, (first, second) in TABLES.items():
        changes += [f"INSERT INTO {q(awkward, table)} VALUES (100, 'new', 1)",
                    f"UPDATE {q(awkward, table)} SET {q(first)} = 'changed', {q(second)} = -1 WHERE id = 2",
                    f"DELETE FROM {q(awkward, table)} WHERE id = 3"]
    execute_at(mysql_server, FIRST.timestamp() + 10, *changes)
    context = {"data_interval_start": FIRST, "data_interval_end": FIRST + dt.timedelta(hours=1)}
    BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(context)
    summary = IncrementalLoadOperator(task_id="load", spec=spec).execute(context)
    assert summary, summary
    MergeOperator(task_id="merge", spec=spec).execute(context)
    results = compare_migration(migration, resolve.source_endpoint(migration), resolve.destination(migration))
    assert len(results) == len(TABLES)
    assert all(r.equal for r in results), [r.summary() for r in results if not r.equal]
    # The injection-named table holds its own rows (5 + 1 inserted - 1 deleted), no account of the server.
    injected = next(r for r in results if r.source.endswith(INJECTION))
    assert injected.source_rows == injected.destination_rows == 5


@pytest.mark.security_case("identifier_injection")
def test_unmapped_awkward_names_are_refused_at_precheck_with_the_mapping_that_fixes_them(connections, awkward):
    spec = {
        "name": f"aw_{uuid.uuid4().hex[:6]}",
        "source": {"conn_id": connections.source, "databases": [awkward]},
        "destination": {"conn_id": connections.destination},
        "objects": [{"database": awkward, "tables": list(TABLES)}],
    }
    migration = load_spec(spec)
    report = run_prechecks(migration, resolve.source_endpoint(migration), lambda: resolve.destination(migration))
    assert not report.passed, "SILENT: names MaxCompute cannot hold passed the precheck"
    text = report.render()
    failed = {r.check_id: r for r in report.results if r.status == "failed"}
    assert failed, text
    fixes = " ".join(r.fix for r in failed.values())
    assert "target" in fixes and "columns" in fixes, text
    assert "Traceback" not in text


@pytest.mark.security_case("identifier_injection")
def test_plan_script_is_only_comments_and_create_statements(connections, awkward):
    """Read by MaxCompute's lexical rules (the emulator's own lexer: strings with backslash escapes,
    ``--`` comments), the script is one CREATE TABLE per destination table and nothing else; the source
    names live only in comments and in COMMENT strings."""
    from airflow_provider_polar_mc.emulator.sql_lexer import split_statements

    migration = load_spec(mapped_spec(connections, awkward))
    plans = plan_selected(migration, resolve.source_endpoint(migration))
    statements = split_statements(render_plan(plans))
    expected = sum(len(plan.ddls) for plan in plans)
    assert len(statements) == expected, f"DAMAGE: {len(statements)} statements for {expected} tables"
    for statement in statements:
        words = [t for t in statement.tokens if t.kind == "word"]
        assert words[0].is_word("CREATE") and words[1].is_word("TABLE"), f"DAMAGE: {statement.text!r}"
        assert not any(t.is_word("DROP", "INSERT", "SELECT", "UNION", "DELETE") for t in words), \
            f"DAMAGE: live SQL in the plan: {statement.text!r}"
