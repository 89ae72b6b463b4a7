"""PrecheckOperator and SchemaMigrateOperator against a real private server and the emulator."""

from __future__ import annotations

import uuid

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_polar_mc.cli import main as polar_mc
from airflow_provider_polar_mc.operators.precheck import PrecheckOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator

pytestmark = pytest.mark.integration

ALL_TYPES_DDL = """
CREATE TABLE all_types (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  c_tinyint TINYINT, c_bool TINYINT(1), c_tinyint_u TINYINT UNSIGNED,
  c_smallint SMALLINT, c_smallint_u SMALLINT UNSIGNED, c_mediumint MEDIUMINT, c_int INT, c_int_u INT UNSIGNED,
  c_bigint BIGINT, c_decimal DECIMAL(12,2), c_decimal_big DECIMAL(65,30), c_float FLOAT, c_double DOUBLE,
  c_bit1 BIT(1), c_bit8 BIT(8), c_char CHAR(10), c_varchar VARCHAR(255), c_text TEXT, c_longtext LONGTEXT,
  c_binary BINARY(4), c_varbinary VARBINARY(16), c_blob BLOB, c_date DATE, c_datetime DATETIME(6),
  c_timestamp TIMESTAMP(3) NULL, c_time TIME(6), c_year YEAR, c_enum ENUM('a','b'), c_set SET('x','y'),
  c_json JSON, c_point POINT
)"""

EXPECTED_BASE = {
    "id": "decimal(20,0)", "c_tinyint": "tinyint", "c_bool": "tinyint", "c_tinyint_u": "smallint",
    "c_smallint": "smallint", "c_smallint_u": "int", "c_mediumint": "int", "c_int": "int", "c_int_u": "bigint",
    "c_bigint": "bigint", "c_decimal": "decimal(12,2)", "c_decimal_big": "string", "c_float": "float",
    "c_double": "double", "c_bit1": "boolean", "c_bit8": "bigint", "c_char": "string", "c_varchar": "string",
    "c_text": "string", "c_longtext": "string", "c_binary": "binary", "c_varbinary": "binary", "c_blob": "binary",
    "c_date": "date", "c_datetime": "timestamp_ntz", "c_timestamp": "timestamp", "c_time": "string",
    "c_year": "int", "c_enum": "string", "c_set": "string", "c_json": "string", "c_point": "binary",
}  # fmt: skip


@pytest.fixture
def db(mysql_server):
    name = f"src_{uuid.uuid4().hex[:8]}"
    mysql_server.execute(f"CREATE DATABASE {name}")
    yield name
    mysql_server.execute(f"DROP DATABASE {name}")


def make_spec(connections, db: str, **overrides) -> dict:
    spec = {
        "name": f"m_{uuid.uuid4().hex[:8]}",
        "source": {"conn_id": connections.source, "databases": [db]},
        "destination": {"conn_id": connections.destination},
        "batch_rename": {"prefix": f"t{uuid.uuid4().hex[:6]}_"},
    }
    spec.update(overrides)
    return spec


def run_precheck(spec: dict) -> dict:
    try:
        return {"raised": False, **PrecheckOperator(task_id="precheck", spec=spec).execute({})}
    except AirflowFailException as exc:
        from airflow_provider_polar_mc.core.precheck import run_prechecks
        from airflow_provider_polar_mc.hooks import resolve
        from airflow_provider_polar_mc.operators._base import load_spec

        s = load_spec(spec)
        report = run_prechecks(s, resolve.source_endpoint(s), lambda: resolve.destination(s))
        return {"raised": True, "error": str(exc), **report.to_dict()}


def statuses(report: dict) -> dict[str, str]:
    return {r["check_id"]: r["status"] for r in report["results"]}


def result(report: dict, check_id: str) -> dict:
    return next(r for r in report["results"] if r["check_id"] == check_id)


def test_all_types_table_passes_and_gets_the_mapped_schema(connections, mysql_server, emulator, db):
    mysql_server.execute(ALL_TYPES_DDL, database=db)
    spec = make_spec(connections, db)
    report = run_precheck(spec)
    assert not report["raised"], report
    assert report["passed"] and set(statuses(report).values()) == {"passed"}
    assert {"binlog_enabled", "binlog_row_metadata", "binlog_retention", "primary_key"} <= set(statuses(report))

    outcomes = SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    prefix = spec["batch_rename"]["prefix"]
    assert [(o["table"], o["action"]) for o in outcomes] == [
        (f"{prefix}all_types_base", "created"),
        (f"{prefix}all_types_log", "created"),
    ]
    o = emulator.client()
    base = o.get_table(f"{prefix}all_types_base").table_schema
    assert {c.name: str(c.type).lower() for c in base.simple_columns} == EXPECTED_BASE
    assert next(c for c in base.simple_columns if c.name == "id").comment == "bigint(20) unsigned"
    log = o.get_table(f"{prefix}all_types_log").table_schema
    names = [c.name for c in log.simple_columns]
    assert names[:5] == ["record_id", "operation_flag", "utc_timestamp", "before_flag", "after_flag"]
    assert names[5:] == list(EXPECTED_BASE)
    assert [p.name for p in log.partitions] == ["modifytime_year", "modifytime_month", "modifytime_day"]

    # Idempotent: a re-run finds its own tables.
    again = SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    assert {o["action"] for o in again} == {"exists"}


def test_new_rule_partitions_capitalization_and_mapping(connections, mysql_server, emulator, db):
    mysql_server.execute("CREATE TABLE Orders (ID INT PRIMARY KEY, Record_Id INT, Amount DECIMAL(10,2))", database=db)
    spec = make_spec(
        connections,
        db,
        objects=[{"database": db, "tables": [{"name": "Orders", "target": f"ord_{uuid.uuid4().hex[:6]}", "columns": {"Amount": "total"}}]}],
        additional_column_rule="new",
        partition=["year", "month", "day", "hour"],
        capitalization="upper",
    )
    report = run_precheck(spec)
    assert report["passed"], report
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    target = spec["objects"][0]["tables"][0]["target"]
    log = emulator.client().get_table(f"{target}_log").table_schema
    assert [c.name for c in log.simple_columns] == [
        "new_dts_sync_record_id", "new_dts_sync_operation_flag", "new_dts_sync_utc_timestamp",
        "new_dts_sync_before_flag", "new_dts_sync_after_flag", "id", "record_id", "total",
    ]  # fmt: skip
    assert [p.name for p in log.partitions][-1] == "new_dts_sync_modifytime_hour"


def test_no_key_table_fails_primary_key(connections, mysql_server, db):
    mysql_server.execute("CREATE TABLE nokey (a INT, b INT)", "CREATE TABLE ok (id INT PRIMARY KEY)", database=db)
    report = run_precheck(make_spec(connections, db))
    assert report["raised"] and "primary_key" in report["error"]
    r = result(report, "primary_key")
    assert r["status"] == "failed" and r["objects"] == [f"{db}.nokey"] and "add a primary key" in r["fix"]


def test_conflicting_destination_table_fails_and_ignore_mode_checks_compatibility(connections, mysql_server, emulator, db):
    mysql_server.execute("CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(10))", database=db)
    spec = make_spec(connections, db)
    prefix = spec["batch_rename"]["prefix"]
    emulator.client().execute_sql(f"CREATE TABLE {prefix}orders_base (id INT, other STRING)")
    report = run_precheck(spec)
    r = result(report, "destination_conflicts")
    assert report["raised"] and r["status"] == "failed" and f"{prefix}orders_base" in r["objects"]
    with pytest.raises(AirflowFailException, match="already exists"):
        SchemaMigrateOperator(task_id="schema", spec=spec).execute({})

    ignore = dict(spec, conflict_mode="ignore_and_proceed")
    r = result(run_precheck(ignore), "destination_conflicts")
    assert r["status"] == "failed" and "column note (string) is missing" in r["message"]

    emulator.client().execute_sql(f"DROP TABLE {prefix}orders_base")
    emulator.client().execute_sql(f"CREATE TABLE {prefix}orders_base (id INT, note STRING, extra STRING)")
    assert result(run_precheck(ignore), "destination_conflicts")["status"] == "passed"
    outcomes = SchemaMigrateOperator(task_id="schema", spec=ignore).execute({})
    assert ("kept_existing" in {o["action"] for o in outcomes}) and ("created" in {o["action"] for o in outcomes})


def test_additional_column_collision_suggests_the_new_rule(connections, mysql_server, db):
    mysql_server.execute("CREATE TABLE t (id INT PRIMARY KEY, record_id INT, modifytime_year INT)", database=db)
    report = run_precheck(make_spec(connections, db))
    r = result(report, "additional_column_collision")
    assert r["status"] == "failed" and "additional_column_rule: new" in r["fix"]
    assert set(r["objects"]) == {f"{db}.t.record_id", f"{db}.t.modifytime_year"}
    assert run_precheck(make_spec(connections, db, additional_column_rule="new"))["passed"]


def test_two_tables_mapped_to_one_name_fail(connections, mysql_server, db):
    mysql_server.execute("CREATE TABLE a (id INT PRIMARY KEY)", "CREATE TABLE b (id INT PRIMARY KEY)", database=db)
    spec = make_spec(connections, db, objects=[{"database": db, "tables": [{"name": "a", "target": "same"}, {"name": "b", "target": "same"}]}])
    r = result(run_precheck(spec), "table_name_collision")
    assert r["status"] == "failed" and set(r["objects"]) == {f"{db}.a", f"{db}.b"}


def test_unmappable_and_invalid_names(connections, mysql_server, db):
    mysql_server.execute("CREATE TABLE `bad-name` (id INT PRIMARY KEY, `2col` INT)", database=db)
    report = run_precheck(make_spec(connections, db))
    r = result(report, "invalid_name")
    assert r["status"] == "failed" and any("bad-name" in o for o in r["objects"]) and any("2col" in o for o in r["objects"])


def test_limited_grants_show_exactly_the_missing_privileges(connections, mysql_server, db):
    mysql_server.execute(
        "CREATE TABLE granted (id INT PRIMARY KEY)",
        "CREATE TABLE insert_only (id INT PRIMARY KEY)",
        "CREATE TABLE invisible (id INT PRIMARY KEY)",
        database=db,
    )
    user = f"u{uuid.uuid4().hex[:8]}"
    mysql_server.execute(
        f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'",
        f"GRANT SELECT ON {db}.granted TO '{user}'@'%'",
        f"GRANT INSERT ON {db}.insert_only TO '{user}'@'%'",
    )
    try:
        connections.set_source(mysql_server, user, "pw")
        spec = make_spec(connections, db, objects=[{"database": db, "tables": ["granted", "insert_only", "invisible"]}])
        report = run_precheck(spec)
        assert report["raised"]
        select = result(report, "source_select_privileges")
        assert select["status"] == "failed" and select["objects"] == [f"{db}.insert_only"]
        assert select["fix"] == f"GRANT SELECT ON {db}.insert_only TO '{user}'@'%'"
        # A table the account has no privilege on at all is hidden by information_schema.
        objects = result(report, "source_objects")
        assert f"{db}.invisible not found" in objects["message"] and "GRANT SELECT" in objects["fix"]
        repl = result(report, "source_replication_privileges")
        assert repl["status"] == "failed" and repl["objects"] == ["REPLICATION SLAVE", "REPLICATION CLIENT"]
        assert repl["fix"] == f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'%'"

        mysql_server.execute(
            f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'%'",
            f"GRANT SELECT ON {db}.* TO '{user}'@'%'",
        )
        report = run_precheck(spec)
        assert not report["raised"], report
        assert result(report, "source_replication_privileges")["status"] == "passed"
    finally:
        mysql_server.execute(f"DROP USER '{user}'@'%'")


@pytest.mark.parametrize(
    "config, check_id, fragment",
    [
        ({"log_bin": False}, "binlog_enabled", "loose_polar_log_bin"),
        ({"binlog_row_metadata": "MINIMAL"}, "binlog_row_metadata", "binlog_row_metadata=FULL"),
        ({"binlog_row_image": "MINIMAL"}, "binlog_row_image", "binlog_row_image=FULL"),
        ({"binlog_format": "MIXED"}, "binlog_format", "binlog_format=ROW"),
        ({"binlog_expire_seconds": 86400}, "binlog_retention", "604800"),
    ],
)
def test_misconfigured_server_fails_the_right_check(connections, mysql_server_factory, config, check_id, fragment):
    server = mysql_server_factory(**config)
    server.execute("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    connections.set_source(server)
    report = run_precheck(make_spec(connections, "shop"))
    r = result(report, check_id)
    assert report["raised"] and r["status"] == "failed" and fragment in r["fix"]
    others = {k: v for k, v in statuses(report).items() if k != check_id}
    assert "failed" not in others.values(), others


def test_short_retention_warning_can_be_accepted(connections, mysql_server_factory):
    server = mysql_server_factory(binlog_expire_seconds=5 * 86400)
    server.execute("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    connections.set_source(server)
    report = run_precheck(make_spec(connections, "shop"))
    assert report["raised"] and result(report, "binlog_retention")["status"] == "warning"
    accepted = run_precheck(make_spec(connections, "shop", accepted_warnings=["binlog_retention"]))
    assert not accepted["raised"] and result(accepted, "binlog_retention")["status"] == "accepted"


def test_full_only_migration_skips_binlog_checks_and_requires_existing_tables(connections, mysql_server_factory):
    server = mysql_server_factory(log_bin=False)
    server.execute("CREATE DATABASE shop", "CREATE TABLE shop.t (id INT PRIMARY KEY)")
    connections.set_source(server)
    report = run_precheck(make_spec(connections, "shop", migration_types=["full"]))
    assert "binlog_enabled" not in statuses(report)
    r = result(report, "destination_conflicts")
    assert r["status"] == "failed" and "schema migration is off" in r["message"]


def test_command_line_precheck_and_plan(connections, mysql_server, db, tmp_path, capsys):
    import yaml

    mysql_server.execute("CREATE TABLE t (id INT PRIMARY KEY, amount DECIMAL(10,2))", "CREATE TABLE nokey (a INT)", database=db)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(make_spec(connections, db)))
    assert polar_mc(["precheck", "--spec", str(path)]) == 1
    out = capsys.readouterr().out
    assert "FAILED    primary_key" in out and "fix: add a primary key" in out
    assert polar_mc(["plan", "--spec", str(path)]) == 0
    out = capsys.readouterr().out
    assert "CREATE TABLE IF NOT EXISTS `" in out and "`amount` decimal(10,2) COMMENT 'decimal(10,2)'" in out
    assert "PARTITIONED BY (`modifytime_year` string" in out
    path.write_text("name: x\nsource: {databases: []}\nbogus: 1\n")
    assert polar_mc(["precheck", "--spec", str(path)]) == 2
    err = capsys.readouterr().err
    assert "source.databases" in err and "bogus" in err
