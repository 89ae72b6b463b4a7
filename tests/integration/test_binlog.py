"""The bounded binlog reader against real private servers: exact ranges, DTS change rows, schema tracking."""

from __future__ import annotations

import re
import resource
import threading
import time
import uuid

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from airflow_provider_polar_mc.core.binlog.coordinates import capture
from airflow_provider_polar_mc.core.binlog.reader import ChangeSet, read_changes
from airflow_provider_polar_mc.core.binlog.schema_history import TableSchema
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.model import BinlogCoordinate
from airflow_provider_polar_mc.core.planning import describe_table_schema
from airflow_provider_polar_mc.core.selection import select_tables
from airflow_provider_polar_mc.exceptions import BinlogUnavailable, SourceChanged, UnsupportedDDL
from airflow_provider_polar_mc.spec import MigrationSpec
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


# --- helpers ------------------------------------------------------------------------------------------


def endpoint(server) -> MySqlEndpoint:
    return MySqlEndpoint(host=server.host, port=server.port, user=server.user, password=server.password)


def coordinate(server) -> BinlogCoordinate:
    conn = endpoint(server).connect()
    try:
        return capture(conn)
    finally:
        conn.close()


def fresh_database(server, *tables: str) -> str:
    """A new database with the given CREATE TABLE bodies (``name (...)``)."""
    database = f"b_{uuid.uuid4().hex[:8]}"
    server.execute(f"CREATE DATABASE {database}")
    for table in tables:
        server.execute(f"CREATE TABLE {database}.{table}")
    return database


def make_spec(database: str, tables: dict[str, str | None], rule: str = "previous", schema_changes=None) -> MigrationSpec:
    entries = [{"name": name, **({"filter": expression} if expression else {})} for name, expression in tables.items()]
    return MigrationSpec.from_dict(
        {"name": "bl", "source": {"databases": [database]}, "objects": [{"database": database, "tables": entries}],
         "additional_column_rule": rule, **({"schema_changes": schema_changes} if schema_changes else {})}
    )  # fmt: skip


def read(server, database: str, start, end, tables: dict[str, str | None], schemas=None, **kwargs) -> ChangeSet:
    spec = make_spec(database, tables, kwargs.pop("rule", "previous"), kwargs.pop("schema_changes", None))
    selections = {s.source_name: s for s in select_tables(spec, {database: list(tables)})}
    if schemas is None:
        conn = endpoint(server).connect()
        schemas = {f"{database}.{t}": describe_table_schema(conn, database, t) for t in tables}
        conn.close()
    return read_changes(endpoint(server), start, end, schemas, selections, spec, **kwargs)


def schemas_now(server, database: str, *tables: str) -> dict[str, TableSchema]:
    conn = endpoint(server).connect()
    try:
        return {f"{database}.{t}": describe_table_schema(conn, database, t) for t in tables}
    finally:
        conn.close()


def rows_of(changes: ChangeSet, key: str) -> list[dict]:
    return changes.tables[key].rows.to_pylist()


# --- change rows ----------------------------------------------------------------------------------------


def test_insert_update_delete_flags_and_shared_record_ids(mysql_server):
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY, v VARCHAR(10))")
    start = coordinate(mysql_server)
    before = int(time.time())
    mysql_server.execute(
        f"INSERT INTO {db}.t VALUES (1, 'a'), (2, 'b')",
        f"UPDATE {db}.t SET v = 'x' WHERE id = 1",
        f"UPDATE {db}.t SET id = 3 WHERE id = 2",  # a key change: before-image carries the old key
        f"DELETE FROM {db}.t WHERE id = 1",
    )
    end = coordinate(mysql_server)
    changes = read(mysql_server, db, start, end, {"t": None})
    rows = rows_of(changes, f"{db}.t")
    got = [(r["operation_flag"], r["before_flag"], r["after_flag"], r["id"], r["v"]) for r in rows]
    assert got == [
        ("I", "N", "Y", 1, "a"), ("I", "N", "Y", 2, "b"),
        ("U", "Y", "N", 1, "a"), ("U", "N", "Y", 1, "x"),
        ("U", "Y", "N", 2, "b"), ("U", "N", "Y", 3, "b"),
        ("D", "Y", "N", 1, "x"),
    ]  # fmt: skip
    ids = [r["record_id"] for r in rows]
    assert ids[2] == ids[3] and ids[4] == ids[5]
    assert ids == sorted(ids) and len(set(ids)) == 5
    assert ids[0] >> 32 == start.file_index
    after = time.time()
    assert all(before <= r["utc_timestamp"] <= after for r in rows)  # event time, whole epoch seconds
    assert changes.tables[f"{db}.t"].rows.column_names[:5] == [
        "record_id", "operation_flag", "utc_timestamp", "before_flag", "after_flag"
    ]
    assert changes.rows == 7 and changes.events == 4


def test_new_additional_column_rule_names(mysql_server):
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY)")
    start = coordinate(mysql_server)
    mysql_server.execute(f"INSERT INTO {db}.t VALUES (1)")
    changes = read(mysql_server, db, start, coordinate(mysql_server), {"t": None}, rule="new")
    table = changes.tables[f"{db}.t"].rows
    assert table.column_names == [
        "new_dts_sync_record_id", "new_dts_sync_operation_flag", "new_dts_sync_utc_timestamp",
        "new_dts_sync_before_flag", "new_dts_sync_after_flag", "id",
    ]  # fmt: skip
    assert table.schema.field("new_dts_sync_record_id").type == pa.int64()


def test_unchanged_table_has_an_empty_entry_with_its_schema(mysql_server):
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY)", "idle (id INT PRIMARY KEY, d DATETIME(3))")
    start = coordinate(mysql_server)
    mysql_server.execute(f"INSERT INTO {db}.t VALUES (1)")
    changes = read(mysql_server, db, start, coordinate(mysql_server), {"t": None, "idle": None})
    idle = changes.tables[f"{db}.idle"]
    assert idle.rows.num_rows == 0
    assert idle.rows.schema.field("d").type == pa.timestamp("us")  # TIMESTAMP_NTZ at microseconds: its whole range
    assert idle.schema_at_end.column_names == ("id", "d")


def test_empty_range_reads_nothing(mysql_server):
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY)")
    here = coordinate(mysql_server)
    changes = read(mysql_server, db, here, here, {"t": None})
    assert changes.rows == 0 and changes.events == 0


# --- exact ranges -----------------------------------------------------------------------------------------


def test_reread_is_identical_and_intervals_are_contiguous(mysql_server):
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY, v INT)")
    a = coordinate(mysql_server)
    for i in range(50):
        mysql_server.execute(f"INSERT INTO {db}.t VALUES ({i}, {i})", f"UPDATE {db}.t SET v = v + 1 WHERE id = {i // 2}")
    b = coordinate(mysql_server)
    mysql_server.execute(f"DELETE FROM {db}.t WHERE id < 10", f"UPDATE {db}.t SET v = 0")
    c = coordinate(mysql_server)
    key = f"{db}.t"
    schemas = schemas_now(mysql_server, db, "t")
    first = read(mysql_server, db, a, b, {"t": None}, schemas).tables[key].rows
    again = read(mysql_server, db, a, b, {"t": None}, schemas).tables[key].rows
    second = read(mysql_server, db, b, c, {"t": None}, schemas).tables[key].rows
    whole = read(mysql_server, db, a, c, {"t": None}, schemas).tables[key].rows
    assert first.equals(again)
    assert pa.concat_tables([first, second]).equals(whole)
    assert first.num_rows == 150 and second.num_rows == 10 + 2 * 40
    last_of_first = pc.max(first["record_id"]).as_py()
    assert pc.min(second["record_id"]).as_py() > last_of_first
    ids = whole["record_id"].to_pylist()
    assert all(x <= y for x, y in zip(ids, ids[1:], strict=False))


def test_start_position_is_honoured_on_this_server(mysql_server):
    """Changes before ``start`` (same file, earlier in it) never appear. mysql-replication's MariaDB path
    (is_mariadb=True, no GTID) would start at the first binlog and return them all (docs/architecture.md: bounded reads)."""
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY)")
    mysql_server.execute("FLUSH BINARY LOGS")
    mysql_server.execute(f"INSERT INTO {db}.t VALUES (1), (2), (3)")  # in the start file, before start
    start = coordinate(mysql_server)
    mysql_server.execute(f"INSERT INTO {db}.t VALUES (4)")
    end = coordinate(mysql_server)
    assert start.log_file == end.log_file and start.log_pos > 4
    rows = rows_of(read(mysql_server, db, start, end, {"t": None}), f"{db}.t")
    assert [r["id"] for r in rows] == [4]
    assert all((r["record_id"] & 0xFFFFFFFF) >= start.log_pos for r in rows)


def test_stops_at_end_while_writes_continue(mysql_server):
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY)")
    start = coordinate(mysql_server)
    mysql_server.execute(*[f"INSERT INTO {db}.t VALUES ({i})" for i in range(100)])
    end = coordinate(mysql_server)
    stop = threading.Event()
    written = [0]

    def keep_writing() -> None:
        conn = mysql_server.connect()
        i = 1000
        with conn.cursor() as cur:
            while not stop.is_set():
                cur.execute(f"INSERT INTO {db}.t VALUES ({i})")
                i += 1
                written[0] += 1
        conn.close()

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        # The binlog already goes past `end` when the read starts, and keeps growing while it runs.
        wait_until(lambda: written[0] >= 50 or not writer.is_alive(), what=lambda: f"50 writes past end ({written[0]})")
        assert writer.is_alive(), "the writer thread died"
        rows = rows_of(read(mysql_server, db, start, end, {"t": None}), f"{db}.t")
    finally:
        stop.set()
        writer.join()
    assert [r["id"] for r in rows] == list(range(100))
    assert written[0] >= 50


def test_follows_binlog_rotation(mysql_server_factory):
    server = mysql_server_factory(max_binlog_size=4096)
    db = fresh_database(server, "t (id INT PRIMARY KEY, pad VARCHAR(200))")
    start = coordinate(server)
    for i in range(300):
        server.execute(f"INSERT INTO {db}.t VALUES ({i}, REPEAT('p', 150))")
    server.execute(f"UPDATE {db}.t SET pad = 'short' WHERE id < 20")
    end = coordinate(server)
    assert end.file_index - start.file_index >= 5
    rows = rows_of(read(server, db, start, end, {"t": None}), f"{db}.t")
    assert [r["id"] for r in rows if r["operation_flag"] == "I"] == list(range(300))
    assert len(rows) == 340
    ids = [r["record_id"] for r in rows]
    assert ids == sorted(ids) and len({i >> 32 for i in ids}) >= 5
    # An interval ending inside a later file, and one starting there.
    middle = next(r for r in rows if r["id"] == 150)["record_id"]
    assert middle >> 32 > start.file_index


def test_source_restart_inside_the_range(mysql_server_factory):
    server = mysql_server_factory()
    db = fresh_database(server, "t (id INT PRIMARY KEY)", "other (id INT PRIMARY KEY)")
    start = coordinate(server)
    server.execute(f"INSERT INTO {db}.t VALUES (1)", f"INSERT INTO {db}.other VALUES (1)")
    server.restart()  # a new binlog file; table ids are handed out afresh
    server.execute(f"INSERT INTO {db}.other VALUES (2)", f"INSERT INTO {db}.t VALUES (2)")
    server.execute(f"UPDATE {db}.t SET id = 3 WHERE id = 1")
    end = coordinate(server)
    assert end.file_index > start.file_index
    rows = rows_of(read(server, db, start, end, {"t": None}), f"{db}.t")
    assert [(r["operation_flag"], r["id"]) for r in rows] == [("I", 1), ("I", 2), ("U", 1), ("U", 3)]


def test_large_transaction_in_one_interval(mysql_server):
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY, v VARCHAR(32), d DECIMAL(12,2))")
    start = coordinate(mysql_server)
    mysql_server.execute(
        "SET SESSION max_recursive_iterations = 200000" if mysql_server.is_mariadb
        else "SET SESSION cte_max_recursion_depth = 200000",
        f"INSERT INTO {db}.t WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 99999)"
        " SELECT n, CONCAT('row ', n), n / 100 FROM s",
    )
    end = coordinate(mysql_server)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.monotonic()
    changes = read(mysql_server, db, start, end, {"t": None})
    seconds = time.monotonic() - began
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    table = changes.tables[f"{db}.t"].rows
    assert table.num_rows == 100_000
    assert table["id"].to_pylist() == list(range(100_000))
    assert str(table["d"][12345].as_py()) == "123.45"
    assert seconds < 60, seconds
    assert grown_mb < 600, grown_mb


def test_multi_table_transactions_and_unselected_tables(mysql_server):
    db = fresh_database(mysql_server, "a (id INT PRIMARY KEY)", "b (id INT PRIMARY KEY, s VARCHAR(5))",
                        "noise (id INT PRIMARY KEY, x TEXT)")  # fmt: skip
    other = fresh_database(mysql_server, "a (id INT PRIMARY KEY, different_column INT)")  # same name, unselected
    start = coordinate(mysql_server)
    conn = mysql_server.connect(autocommit=False)
    with conn.cursor() as cur:
        for i in range(20):
            cur.execute(f"INSERT INTO {db}.a VALUES ({i})")
            cur.execute(f"INSERT INTO {db}.noise VALUES ({i}, 'n')")
            cur.execute(f"INSERT INTO {other}.a VALUES ({i}, {i})")
            cur.execute(f"INSERT INTO {db}.b VALUES ({i}, 's')")
            if i % 5 == 4:
                conn.commit()
        cur.execute(f"ALTER TABLE {db}.noise DROP COLUMN x")  # DDL on an unselected table: ignored
        cur.execute(f"UPDATE {db}.a SET id = id + 100")
        cur.execute(f"DELETE FROM {db}.b WHERE id >= 10")
    conn.commit()
    conn.close()
    end = coordinate(mysql_server)
    changes = read(mysql_server, db, start, end, {"a": None, "b": None})
    a, b = rows_of(changes, f"{db}.a"), rows_of(changes, f"{db}.b")
    assert len(a) == 20 + 40 and len(b) == 20 + 10
    assert set(changes.tables) == {f"{db}.a", f"{db}.b"}
    both = sorted([(r["record_id"], "a") for r in a] + [(r["record_id"], "b") for r in b])
    assert [t for _, t in both[:4]] == ["a", "b", "a", "b"]  # interleaved in binlog order
    assert all(set(r) == {"record_id", "operation_flag", "utc_timestamp", "before_flag", "after_flag", "id"} for r in a)


# --- filters ----------------------------------------------------------------------------------------------


def test_filter_applies_to_changes_with_update_moving_rows(mysql_server):
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY, region VARCHAR(10), amount INT)")
    mysql_server.execute(f"INSERT INTO {db}.t VALUES (1, 'east', 5), (2, 'west', 5), (3, 'east', 5)")
    start = coordinate(mysql_server)
    mysql_server.execute(
        f"INSERT INTO {db}.t VALUES (10, 'EAST', 1), (11, 'west', 1)",  # ci collation: 'EAST' = 'east'
        f"UPDATE {db}.t SET amount = 6 WHERE id = 1",  # stays in: U pair
        f"UPDATE {db}.t SET region = 'east' WHERE id = 2",  # enters: I of the after-image
        f"UPDATE {db}.t SET region = 'west' WHERE id = 3",  # leaves: D of the before-image
        f"UPDATE {db}.t SET amount = 7 WHERE id = 11",  # never in: dropped
        f"DELETE FROM {db}.t WHERE id IN (10, 11)",
    )
    end = coordinate(mysql_server)
    changes = read(mysql_server, db, start, end, {"t": "region = 'east'"})
    got = [(r["operation_flag"], r["before_flag"], r["after_flag"], r["id"], r["region"], r["amount"])
           for r in rows_of(changes, f"{db}.t")]  # fmt: skip
    assert got == [
        ("I", "N", "Y", 10, "EAST", 1),
        ("U", "Y", "N", 1, "east", 5), ("U", "N", "Y", 1, "east", 6),
        ("I", "N", "Y", 2, "east", 5),
        ("D", "Y", "N", 3, "east", 5),
        ("D", "Y", "N", 10, "EAST", 1),
    ]  # fmt: skip


def test_filter_uses_the_column_collation_and_types(mysql_server):
    db = fresh_database(
        mysql_server,
        "t (id INT PRIMARY KEY, code VARCHAR(10) COLLATE utf8mb4_bin, at DATETIME(3), price DECIMAL(8,2))",
    )
    start = coordinate(mysql_server)
    mysql_server.execute(
        f"INSERT INTO {db}.t VALUES (1, 'abc', '2024-01-01 10:00:00.500', 1.10), (2, 'ABC', '2023-12-31', 9.99),"
        " (3, 'abc', '2024-02-01', 100.00)"
    )
    end = coordinate(mysql_server)
    changes = read(mysql_server, db, start, end,
                   {"t": "code = 'abc' AND at >= '2024-01-01 10:00:00.5' AND price < 50"})  # fmt: skip
    assert [r["id"] for r in rows_of(changes, f"{db}.t")] == [1]


# --- DDL ------------------------------------------------------------------------------------------------


def test_add_column_first_after_and_two_in_one_alter(mysql_server):
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY, v VARCHAR(10))")
    start_schemas = schemas_now(mysql_server, db, "t")
    start = coordinate(mysql_server)
    mysql_server.execute(
        f"INSERT INTO {db}.t VALUES (1, 'before')",
        f"ALTER TABLE {db}.t ADD COLUMN head INT FIRST",
        f"INSERT INTO {db}.t VALUES (7, 2, 'head')",
        f"ALTER TABLE `{db}`.`t` ADD COLUMN (price DECIMAL(10,2) NULL DEFAULT NULL, note TEXT),"
        " ADD COLUMN made DATETIME(6) AFTER id",
        f"INSERT INTO {db}.t (id, v, price, note, made) VALUES (3, 'after', 1.5, 'n', '2024-01-01 00:00:00.000001')",
        f"UPDATE {db}.t SET price = 2 WHERE id = 1",
    )
    end = coordinate(mysql_server)
    changes = read(mysql_server, db, start, end, {"t": None}, start_schemas)
    result = changes.tables[f"{db}.t"]
    assert result.schema_at_end.column_names == ("head", "id", "made", "v", "price", "note")
    assert [c.destination for c in result.added_columns] == ["head", "made", "price", "note"]
    assert [c.mapped.mc_type for c in result.added_columns] == ["INT", "TIMESTAMP_NTZ", "DECIMAL(10,2)", "STRING"]
    assert result.rows.column_names[5:] == ["head", "id", "made", "v", "price", "note"]
    rows = result.rows.to_pylist()
    assert (rows[0]["id"], rows[0]["head"], rows[0]["price"]) == (1, None, None)
    assert (rows[1]["id"], rows[1]["head"]) == (2, 7)
    assert (rows[2]["id"], str(rows[2]["price"]), rows[2]["note"], rows[2]["made"].microsecond) == (3, "1.50", "n", 1)
    assert [r["operation_flag"] for r in rows[3:]] == ["U", "U"] and str(rows[4]["price"]) == "2.00"
    # The schema at the end is what the next interval starts from.
    assert TableSchema.from_dict(result.schema_at_end.to_dict()) == result.schema_at_end
    mysql_server.execute(f"INSERT INTO {db}.t (id) VALUES (4)")
    later = read(mysql_server, db, end, coordinate(mysql_server), {"t": None}, {f"{db}.t": result.schema_at_end})
    assert later.tables[f"{db}.t"].added_columns == ()
    assert rows_of(later, f"{db}.t")[0]["id"] == 4


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE {db}.t DROP COLUMN id",
        "ALTER TABLE {db}.t MODIFY v VARCHAR(5)",
        "ALTER TABLE {db}.t CHANGE v w TEXT NOT NULL",
        "ALTER TABLE {db}.t RENAME COLUMN id TO key_id",
        "CREATE OR REPLACE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(10))",
    ],
)
def test_unfollowable_ddl_stops_the_table_for_a_resync_or_fails_naming_the_statement(mysql_server, statement):
    """Default (`schema_changes.unfollowable: resync`): the rows before the change are written, the table
    stops there with the reason, for the resync to take it back; `fail` raises naming the statement."""
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY, v VARCHAR(10))")
    schemas = schemas_now(mysql_server, db, "t")
    start = coordinate(mysql_server)
    sql = statement.format(db=db)
    mysql_server.execute(f"INSERT INTO {db}.t VALUES (1, 'x')", sql, f"DELETE FROM {db}.t")
    end = coordinate(mysql_server)
    stopped = read(mysql_server, db, start, end, {"t": None}, schemas).tables[f"{db}.t"]
    assert [r["id"] for r in stopped.rows.to_pylist()] == [1]
    assert stopped.schema_at_end.awaits_resync and sql.split()[0] in stopped.schema_at_end.stopped_reason
    assert start.record_id() < stopped.schema_at_end.stopped_at < end.record_id()
    with pytest.raises(UnsupportedDDL) as caught:
        read(mysql_server, db, start, end, {"t": None}, schemas, schema_changes={"unfollowable": "fail"})
    message = str(caught.value)
    assert sql.split()[0] in message and f"{db}.t" in message and "re-run the setup" in message
    assert caught.value.statement and sql.split(".")[-1].split()[0] in caught.value.statement
    assert caught.value.coordinate is not None and caught.value.coordinate.key() > start.key()


def test_index_ddl_and_unselected_ddl_are_ignored(mysql_server):
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY, v VARCHAR(10))", "u (id INT PRIMARY KEY)")
    schemas = schemas_now(mysql_server, db, "t")
    start = coordinate(mysql_server)
    mysql_server.execute(
        f"ALTER TABLE {db}.t ADD INDEX iv (v), COMMENT = 'hello'",
        f"CREATE INDEX iv2 ON {db}.t (v)",
        f"DROP TABLE {db}.u",
        f"INSERT INTO {db}.t VALUES (1, 'x')",
    )
    changes = read(mysql_server, db, start, coordinate(mysql_server), {"t": None}, schemas)
    assert [r["id"] for r in rows_of(changes, f"{db}.t")] == [1]


# --- unreadable ranges ----------------------------------------------------------------------------------


def test_purged_binlog_raises_before_reading(mysql_server_factory):
    server = mysql_server_factory()
    db = fresh_database(server, "t (id INT PRIMARY KEY)")
    start = coordinate(server)
    server.execute(f"INSERT INTO {db}.t VALUES (1)", "FLUSH BINARY LOGS")
    end = coordinate(server)
    server.purge_binary_logs_to(end.log_file)
    assert start.log_file not in server.binary_logs()
    with pytest.raises(BinlogUnavailable) as caught:
        read(server, db, start, end, {"t": None})
    assert start.log_file in str(caught.value) and "re-run the setup" in str(caught.value)


def test_reset_master_raises_before_reading(mysql_server_factory):
    server = mysql_server_factory()
    db = fresh_database(server, "t (id INT PRIMARY KEY)")
    server.execute(*[f"INSERT INTO {db}.t VALUES ({i})" for i in range(5)])
    start = coordinate(server)
    server.execute(f"INSERT INTO {db}.t VALUES (100)")
    end = coordinate(server)
    server.execute("RESET MASTER")
    with pytest.raises((SourceChanged, BinlogUnavailable)) as caught:
        read(server, db, start, end, {"t": None})
    assert "re-run the setup" in str(caught.value)


def test_coordinate_of_another_server_raises(mysql_server, mysql_server_factory):
    other = mysql_server_factory(server_id=77)
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY)")
    start = coordinate(mysql_server)
    with pytest.raises(SourceChanged):
        read_changes(endpoint(other), start, start, schemas_now(mysql_server, db, "t"),
                     {s.source_name: s for s in select_tables(make_spec(db, {"t": None}), {db: ["t"]})},
                     make_spec(db, {"t": None}))  # fmt: skip


# --- value fidelity: the binlog path gives the full load's values -----------------------------------------


def test_every_type_changes_match_the_snapshot(mysql_server):
    from tests.integration import test_values as tv

    mysql_server.execute(f"DROP DATABASE IF EXISTS {tv.DATABASE}", f"CREATE DATABASE {tv.DATABASE}")
    mysql_server.execute(f"CREATE TABLE `{tv.DATABASE}`.`{tv.TABLE}` ({', '.join(tv._COLUMNS)})")
    schemas = schemas_now(mysql_server, tv.DATABASE, tv.TABLE)
    start = coordinate(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        import json

        params = {"big_json": json.dumps(tv.BIG_JSON, ensure_ascii=False), "nested_json": tv.NESTED_JSON_TEXT}
        for row in tv._rows():
            sql = tv._insert_sql(row)
            cur.execute(sql, params if "%(" in sql else None)
        cur.execute(f"UPDATE `{tv.DATABASE}`.`{tv.TABLE}` SET vc = '😀中文 updated' WHERE id = 1")
        cur.execute(
            f"UPDATE `{tv.DATABASE}`.`{tv.TABLE}` SET vc = 'after update', dt6 = '2002-02-02 02:02:02.000002',"
            f" j = '[1,    2]', biu = 18446744073709551614 WHERE id = 7"
        )
        cur.execute(f"UPDATE `{tv.DATABASE}`.`{tv.TABLE}` SET i = 1 WHERE id = 4")
        cur.execute(f"DELETE FROM `{tv.DATABASE}`.`{tv.TABLE}` WHERE id = 6")
    conn.close()
    end = coordinate(mysql_server)
    key = f"{tv.DATABASE}.{tv.TABLE}"
    try:
        changes = read(mysql_server, tv.DATABASE, start, end, {tv.TABLE: None}, schemas)
        log = changes.tables[key].rows
        # The final after-image per key, applied like the merge does.
        final: dict[int, int] = {}
        for index, (pk, op, after) in enumerate(zip(log["id"].to_pylist(), log["operation_flag"].to_pylist(),
                                                    log["after_flag"].to_pylist(), strict=True)):  # fmt: skip
            if op == "D":
                final.pop(pk, None)
            elif after == "Y":
                final[pk] = index
        images = log.take(pa.array([final[k] for k in sorted(final)]))
        from airflow_provider_polar_mc.core.schema_plan import plan_table

        spec = make_spec(tv.DATABASE, {tv.TABLE: None})
        selection = select_tables(spec, {tv.DATABASE: [tv.TABLE]})[0]
        plans = list(plan_table(spec, selection, schemas[key].as_source_table()).columns)
        snapshot = tv.read_snapshot(mysql_server, plans)
        for plan in plans:
            want = snapshot[plan.destination].array
            got = images[plan.destination].combine_chunks()
            assert got.type == want.type, plan.destination
            assert got.equals(want), f"{plan.destination}: {got.to_pylist()} != {want.to_pylist()}"
        for name, expected in tv.EXPECTED.items():
            if name not in ("j", "pt"):
                assert images[name].to_pylist() == expected, name
        warnings = changes.tables[key].warnings
        assert warnings.get("dte") and warnings["dte"]["zero_date"] >= 1
    finally:
        mysql_server.execute(f"DROP DATABASE {tv.DATABASE}")


def test_fast_decoder_gives_the_library_values(mysql_server, monkeypatch):
    """rows_decoder handles these types itself (columnar: no filter here); the batch's rows must convert
    exactly like the library's."""
    from airflow_provider_polar_mc.core.binlog import rows_decoder

    decoded: list[int] = []
    original = rows_decoder.ColumnarDecoder.decode

    def counting(self, event, buffer):
        images = original(self, event, buffer)
        decoded.append(images)
        return images

    monkeypatch.setattr(rows_decoder.ColumnarDecoder, "decode", counting)
    fsps = range(7)
    db = fresh_database(mysql_server, (
        "t (id INT PRIMARY KEY, ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,"
        " mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,"
        " f FLOAT, d DOUBLE, d12 DECIMAL(12,2), d65 DECIMAL(65,30), d9 DECIMAL(9,0), d5 DECIMAL(5,5),"
        " ch CHAR(5), vc VARCHAR(300), l1 VARCHAR(10) CHARACTER SET latin1, tx TEXT, bl BLOB, vb VARBINARY(10),"
        " bn BINARY(4), dte DATE, y YEAR, e ENUM('a','b'), s SET('x','y'),"
        + ", ".join(f"dt{p} DATETIME({p}), ts{p} TIMESTAMP({p}) NULL DEFAULT NULL" for p in fsps) + ")"
    ))  # fmt: skip
    start = coordinate(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")
        cur.execute(
            f"INSERT INTO {db}.t VALUES (1, -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,"
            " -9223372036854775808, 18446744073709551615, -1.5, -2.25e-300, -1234567890.12,"
            " -12345678901234567890123456789012345.123456789012345678901234567891, -999999999, -0.12345,"
            " 'ab', REPEAT('é', 300), 'çà', 'text😀', 0x00ff, 0x01, 'ab', '0000-00-00', 0, 'b', '',"
            + ", ".join("'2024-02-29 12:34:56.123456', '2000-01-01 00:00:01.654321'" for _ in fsps) + ")"
        )
        cur.execute(
            f"INSERT INTO {db}.t (id, d12, d65, d9, d5, dte, dt3, ts6, y, s) VALUES (2, 0, 0, 0, 0, '2020-00-10',"
            " '0000-00-00 00:00:00', '1970-01-01 00:00:01', 2155, 'x,y'), (3, 0.5, 1e-30, 1, 0.00001, '9999-12-31',"
            " '9999-12-31 23:59:59.999', '2038-01-19 03:14:07.999999', 1901, 'y')"
        )
        cur.execute(f"UPDATE {db}.t SET vc = 'changed', d12 = -d12, dt6 = NULL WHERE id IN (1, 3)")
        cur.execute(f"DELETE FROM {db}.t WHERE id = 2")
    conn.close()
    end = coordinate(mysql_server)
    schemas = schemas_now(mysql_server, db, "t")
    fast = read(mysql_server, db, start, end, {"t": None}, schemas, fast_decode=True).tables[f"{db}.t"]
    slow = read(mysql_server, db, start, end, {"t": None}, schemas, fast_decode=False).tables[f"{db}.t"]
    assert fast.rows.num_rows == 3 + 4 + 1
    assert len(decoded) == 4 and None not in decoded  # every rows event went through the columnar decoder
    for name in slow.rows.column_names:
        assert fast.rows[name].equals(slow.rows[name]), (name, fast.rows[name].to_pylist(), slow.rows[name].to_pylist())
    assert fast.warnings == slow.warnings


def test_every_fail_policy_fails_at_its_statement_naming_the_setting(mysql_server):
    """schema_changes.<kind>: fail stops the read at that DDL, naming the statement and the setting
    (one table, one statement per kind, the reader alone)."""
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY, v VARCHAR(10), n INT)")
    statements = {
        "add_column": "ALTER TABLE {db}.t ADD COLUMN extra INT",
        "rename_column": "ALTER TABLE {db}.t RENAME COLUMN n TO m",
        "modify_column": "ALTER TABLE {db}.t MODIFY v VARCHAR(64)",
        "drop_column": "ALTER TABLE {db}.t DROP COLUMN m",
        "truncate": "TRUNCATE TABLE {db}.t",
        "drop_table": "DROP TABLE {db}.t",
    }
    schemas = schemas_now(mysql_server, db, "t")
    for policy, statement in statements.items():
        spec = MigrationSpec.from_dict({"name": "bl", "source": {"databases": [db]}, "objects": [{"database": db, "tables": ["t"]}],
                                        "schema_changes": {policy: "fail"}})  # fmt: skip
        selections = {s.source_name: s for s in select_tables(spec, {db: ["t"]})}
        start = coordinate(mysql_server)
        sql = statement.format(db=db)
        mysql_server.execute(sql)
        end = coordinate(mysql_server)
        with pytest.raises(UnsupportedDDL, match=f"schema_changes.{policy} is `fail`") as caught:
            read_changes(endpoint(mysql_server), start, end, schemas, selections, spec)
        assert caught.value.statement.split()[:2] == sql.split()[:2]  # (the server rewrites DROP TABLE's text)
        # followed under the default policy: the next statement starts from the changed table
        schemas = {k: v.schema_at_end for k, v in read(mysql_server, db, start, end, {"t": None}, schemas).tables.items()}
        if policy == "drop_table":
            assert schemas[f"{db}.t"].stopped_at is not None


def test_add_column_whose_existing_values_only_the_server_knows_is_resynced_or_fails_loudly(mysql_server):
    """Existing rows get the DDL's time, which no row event carries: the table stops for a resync (the
    default), or the read fails naming it, never leaving NULLs behind in the replica."""
    db = fresh_database(mysql_server, "t (id INT PRIMARY KEY)")
    schemas = schemas_now(mysql_server, db, "t")
    start = coordinate(mysql_server)
    mysql_server.execute(f"ALTER TABLE {db}.t ADD COLUMN made DATETIME DEFAULT CURRENT_TIMESTAMP")
    why = "ADD COLUMN made .* a DEFAULT value that only the server knows"
    stopped = read(mysql_server, db, start, coordinate(mysql_server), {"t": None}, schemas).tables[f"{db}.t"]
    assert stopped.schema_at_end.awaits_resync and re.search(why, stopped.schema_at_end.stopped_reason)
    with pytest.raises(UnsupportedDDL, match=why):
        read(mysql_server, db, start, coordinate(mysql_server), {"t": None}, schemas, schema_changes={"unfollowable": "fail"})
