"""Unit tests of the emulator's SQL engine: run_sql against a Storage in tmp_path (no HTTP)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest
from odps.models import Table as OdpsTable
from odps.models import TableSchema
from odps.types import Column as OdpsColumn
from odps.types import Partition as OdpsPartition

from airflow_provider_polar_mc.emulator.sql import QueryResult, SqlError, run_sql
from airflow_provider_polar_mc.emulator.storage import Storage
from airflow_provider_polar_mc.emulator.types import parse_type

P = "proj"

DTS_MERGE = """
set odps.sql.allow.fullscan=true;
INSERT OVERWRITE TABLE orders
SELECT id, amount FROM (
  SELECT id, amount, operation_flag, after_flag,
         ROW_NUMBER() OVER (PARTITION BY id ORDER BY record_id DESC, after_flag DESC) AS rn
  FROM (
    SELECT id, amount, 0 AS record_id, 'I' AS operation_flag, 'Y' AS after_flag FROM orders_base
    UNION ALL
    SELECT id, amount, record_id, operation_flag, after_flag FROM orders_log WHERE modifytime_year <= '2026'
  ) u
) r WHERE rn = 1 AND after_flag = 'Y' AND operation_flag <> 'D';
"""


@pytest.fixture
def storage(tmp_path):
    s = Storage(tmp_path / "mc.duckdb")
    yield s
    s.close()


def sql(storage: Storage, text: str, **settings: str) -> QueryResult | None:
    return run_sql(storage, P, text, {k.replace("__", "."): v for k, v in settings.items()})


def rows(storage: Storage, text: str, **settings: str) -> list[tuple]:
    result = sql(storage, text, **settings)
    assert result is not None
    columns = [c.to_pylist() for c in result.table.columns]
    return list(zip(*columns, strict=True)) if columns else []


def fails(storage: Storage, text: str, code: str, **settings: str) -> SqlError:
    with pytest.raises(SqlError) as info:
        sql(storage, text, **settings)
    assert info.value.code == code, info.value.message
    return info.value


@pytest.fixture
def orders(storage):
    """orders_base (full load), orders_log (partitioned increments) and an empty orders replica."""
    sql(
        storage,
        """
        CREATE TABLE orders_base (id BIGINT, amount DECIMAL(12,2));
        CREATE TABLE orders (id BIGINT, amount DECIMAL(12,2));
        CREATE TABLE orders_log (id BIGINT, amount DECIMAL(12,2), record_id BIGINT,
                                 operation_flag STRING, after_flag STRING)
            PARTITIONED BY (modifytime_year STRING);
        INSERT OVERWRITE TABLE orders_base SELECT 1, 10 UNION ALL SELECT 2, 20 UNION ALL SELECT 4, 40;
        INSERT INTO orders_log PARTITION (modifytime_year='2026')
            SELECT 1, 10, 5, 'U', 'N' UNION ALL SELECT 1, 11, 5, 'U', 'Y'
            UNION ALL SELECT 2, 20, 6, 'D', 'Y' UNION ALL SELECT 3, 33, 7, 'I', 'Y'
            UNION ALL SELECT 3, 34, 8, 'U', 'N' UNION ALL SELECT 3, 35, 8, 'U', 'Y';
        """,
    )
    return storage


# -- DDL ---------------------------------------------------------------------------------------


def test_create_table_as_pyodps_generates_it(storage):
    schema = TableSchema(
        columns=[
            OdpsColumn("id", "bigint", comment="it's the key"),
            OdpsColumn("amount", "decimal(12,2)"),
            OdpsColumn("name", "varchar(20)"),
            OdpsColumn("created", "datetime"),
        ],
        partitions=[OdpsPartition("ds", "string", comment="day")],
    )
    ddl = OdpsTable.gen_create_table_sql(
        "t1", schema, comment='A "table"', if_not_exists=True, lifecycle=7, project=P
    )
    assert sql(storage, ddl) is None
    meta = storage.require_table(P, "t1")
    assert [(c.name, str(c.type), c.comment) for c in meta.columns] == [
        ("id", "bigint", "it's the key"),
        ("amount", "decimal(12,2)", ""),
        ("name", "varchar(20)", ""),
        ("created", "datetime", ""),
    ]
    assert [(c.name, str(c.type), c.comment) for c in meta.partition_columns] == [("ds", "string", "day")]
    assert meta.comment == 'A "table"'
    assert meta.lifecycle == 7
    sql(storage, ddl)  # IF NOT EXISTS: no error the second time


def test_create_table_all_types(storage):
    types = [
        "BIGINT", "INT", "SMALLINT", "TINYINT", "BOOLEAN", "FLOAT", "DOUBLE", "DECIMAL(38,18)", "STRING",
        "VARCHAR(10)", "CHAR(3)", "BINARY", "DATE", "DATETIME", "TIMESTAMP", "TIMESTAMP_NTZ", "JSON",
    ]  # fmt: skip
    cols = ", ".join(
        f"c{i} {t} NOT NULL COMMENT 'c'" if i == 0 else f"`C{i}` {t}" for i, t in enumerate(types)
    )
    sql(storage, f"create table `{P}`.`All_Types` ({cols})")
    meta = storage.require_table(P, "all_types")
    assert [c.type for c in meta.columns] == [parse_type(t) for t in types]


def test_create_existing_table_fails_with_ddl_code(storage):
    sql(storage, "CREATE TABLE t (a BIGINT)")
    err = fails(storage, "CREATE TABLE t (a BIGINT)", "ODPS-0110061")
    assert "already exists" in err.message


def test_create_table_unsupported_type_and_clauses(storage):
    fails(storage, "CREATE TABLE t (a ARRAY<BIGINT>)", "ODPS-EMULATOR-UNSUPPORTED")
    fails(storage, "CREATE TABLE t (a FOO)", "ODPS-EMULATOR-UNSUPPORTED")
    fails(storage, "CREATE TABLE t AS SELECT 1 AS a", "ODPS-EMULATOR-UNSUPPORTED")
    fails(
        storage,
        "CREATE TABLE t (a BIGINT) TBLPROPERTIES ('transactional'='true')",
        "ODPS-EMULATOR-UNSUPPORTED",
    )
    fails(storage, "CREATE TABLE t (a BIGINT, PRIMARY KEY (a))", "ODPS-EMULATOR-UNSUPPORTED")
    fails(storage, "CREATE TABLE t (a BIGINT", "ODPS-0130161")
    assert storage.get_table(P, "t") is None


def test_drop_table(storage):
    sql(storage, "CREATE TABLE t (a BIGINT); DROP TABLE proj.`t`")
    assert storage.get_table(P, "t") is None
    sql(storage, "DROP TABLE IF EXISTS t")
    fails(storage, "DROP TABLE t", "ODPS-0130131")


def test_alter_table_add_columns_keeps_partition_columns_last(storage):
    sql(storage, "CREATE TABLE t (a BIGINT) PARTITIONED BY (ds STRING)")
    sql(storage, "INSERT INTO t PARTITION (ds='1') SELECT 7")
    sql(storage, "ALTER TABLE proj.`t` ADD COLUMNS (\n  `b` STRING COMMENT 'new'\n)")
    sql(storage, "ALTER TABLE t ADD COLUMNS IF NOT EXISTS (b STRING, c DOUBLE)")
    result = sql(storage, "SELECT * FROM t WHERE ds = '1'")
    assert [c.name for c in result.columns] == ["a", "b", "c", "ds"]
    assert rows(storage, "SELECT * FROM t WHERE ds = '1'") == [(7, None, None, "1")]
    fails(storage, "ALTER TABLE t ADD COLUMNS (a BIGINT)", "ODPS-0130071")


def test_change_column_widens_a_type_in_place_and_refuses_anything_else(storage):
    sql(storage, "CREATE TABLE t (a INT, d DECIMAL(10,2), f FLOAT, v VARCHAR(4)) PARTITIONED BY (ds STRING)")
    sql(storage, "INSERT INTO t PARTITION (ds='1') SELECT 2147483647, 12345678.91, CAST(1.5 AS FLOAT), 'abcd'")
    sql(storage, "ALTER TABLE t CHANGE COLUMN a a BIGINT")
    sql(storage, "ALTER TABLE t CHANGE d d DECIMAL(20,4)")
    sql(storage, "ALTER TABLE t CHANGE COLUMN f f DOUBLE")
    sql(storage, "ALTER TABLE t CHANGE COLUMN v v STRING")
    result = sql(storage, "SELECT * FROM t WHERE ds = '1'")
    assert [str(c.type) for c in result.columns] == ["bigint", "decimal(20,4)", "double", "string", "string"]
    sql(storage, "INSERT INTO t PARTITION (ds='2') SELECT 9223372036854775807, 1234567890123456.1234, 0.25, 'longer'")
    assert sorted(rows(storage, "SELECT a, v FROM t WHERE ds >= '1'")) == [(2147483647, "abcd"), (9223372036854775807, "longer")]
    for narrowing in ("a INT", "d DECIMAL(20,2)", "f FLOAT", "v VARCHAR(2)"):
        error = fails(storage, f"ALTER TABLE t CHANGE COLUMN {narrowing.split()[0]} {narrowing}", "ODPS-0130071")
        assert "is not supported" in error.message
    fails(storage, "ALTER TABLE t CHANGE COLUMN ds ds BIGINT", "ODPS-0130071")  # partition columns keep their type


def test_add_and_drop_partitions(storage):
    sql(storage, "CREATE TABLE t (a BIGINT) PARTITIONED BY (ds STRING, hh STRING)")
    sql(storage, "ALTER TABLE proj.`t` ADD IF NOT EXISTS PARTITION (ds='1',hh='00')")
    sql(storage, "ALTER TABLE t ADD PARTITION (ds='1', hh='01') PARTITION (ds='2', hh='00')")
    sql(storage, "ALTER TABLE t ADD IF NOT EXISTS PARTITION (ds='1',hh='00')")
    fails(storage, "ALTER TABLE t ADD PARTITION (ds='1',hh='00')", "ODPS-0110061")
    assert storage.list_partitions(P, "t") == [
        {"ds": "1", "hh": "00"},
        {"ds": "1", "hh": "01"},
        {"ds": "2", "hh": "00"},
    ]
    sql(storage, "INSERT INTO t PARTITION (ds='1', hh='01') SELECT 5")
    sql(storage, "ALTER TABLE t DROP PARTITION (ds='1', hh='01')")
    sql(storage, "ALTER TABLE t DROP IF EXISTS PARTITION (ds='9', hh='00')")
    fails(storage, "ALTER TABLE t DROP PARTITION (ds='9', hh='00')", "ODPS-0110061")
    assert storage.count(P, "t") == 0
    assert {"ds": "1", "hh": "01"} not in storage.list_partitions(P, "t")
    fails(storage, "ALTER TABLE t ADD PARTITION (nope='1')", "ODPS-0130071")
    fails(storage, "ALTER TABLE t SET LIFECYCLE 3", "ODPS-EMULATOR-UNSUPPORTED")


def test_truncate(storage):
    sql(storage, "CREATE TABLE t (a BIGINT); INSERT INTO t SELECT 1; TRUNCATE TABLE t")
    assert storage.count(P, "t") == 0
    sql(storage, "CREATE TABLE p (a BIGINT) PARTITIONED BY (ds STRING)")
    sql(storage, "INSERT INTO p PARTITION (ds='1') SELECT 1; INSERT INTO p PARTITION (ds='2') SELECT 2")
    sql(storage, "TRUNCATE TABLE p PARTITION (ds='1')")
    assert storage.count(P, "p", {"ds": "1"}) == 0
    assert storage.count(P, "p", {"ds": "2"}) == 1
    assert {"ds": "1"} in storage.list_partitions(P, "p")  # truncate keeps the partition


# -- INSERT ------------------------------------------------------------------------------------


def test_insert_into_and_overwrite_non_partitioned(storage):
    sql(storage, "CREATE TABLE t (a BIGINT, b STRING)")
    sql(storage, "INSERT INTO TABLE t SELECT 1, 'x'; INSERT INTO t SELECT 2, \"y\"")
    assert sorted(rows(storage, "SELECT a, b FROM t")) == [(1, "x"), (2, "y")]
    sql(storage, "INSERT OVERWRITE TABLE t SELECT 3, 'z'")
    assert rows(storage, "SELECT * FROM t") == [(3, "z")]


def test_insert_overwrite_can_read_its_own_table(storage):
    sql(storage, "CREATE TABLE t (a BIGINT); INSERT INTO t SELECT 1 UNION ALL SELECT 2")
    sql(storage, "INSERT OVERWRITE TABLE t SELECT a * 10 FROM t")
    assert sorted(rows(storage, "SELECT a FROM t")) == [(10,), (20,)]


def test_insert_with_column_list_fills_others_with_null(storage):
    sql(storage, "CREATE TABLE t (a BIGINT, b STRING, c DOUBLE)")
    sql(storage, "INSERT INTO t (c, a) SELECT 1.5, 7")
    assert rows(storage, "SELECT * FROM t") == [(7, None, 1.5)]
    fails(storage, "INSERT INTO t (a, nope) SELECT 1, 2", "ODPS-0130071")


def test_insert_overwrite_static_partition_replaces_only_that_partition(storage):
    sql(storage, "CREATE TABLE t (a BIGINT) PARTITIONED BY (ds STRING)")
    sql(storage, "INSERT INTO t PARTITION (ds='1') SELECT 1; INSERT INTO t PARTITION (ds='2') SELECT 2")
    sql(storage, "INSERT OVERWRITE TABLE t PARTITION (ds='1') SELECT 11 UNION ALL SELECT 12")
    assert sorted(rows(storage, "SELECT ds, a FROM t WHERE ds > '0'")) == [("1", 11), ("1", 12), ("2", 2)]
    assert storage.list_partitions(P, "t") == [{"ds": "1"}, {"ds": "2"}]


def test_insert_overwrite_static_partition_with_no_rows_creates_empty_partition(storage):
    sql(storage, "CREATE TABLE t (a BIGINT) PARTITIONED BY (ds STRING)")
    sql(storage, "INSERT OVERWRITE TABLE t PARTITION (ds='1') SELECT 1 FROM t WHERE ds = 'none'")
    assert storage.list_partitions(P, "t") == [{"ds": "1"}]
    assert storage.count(P, "t") == 0


def test_dynamic_partitions(storage):
    sql(storage, "CREATE TABLE src (a BIGINT, ds STRING)")
    sql(storage, "INSERT INTO src SELECT 1, '2026' UNION ALL SELECT 2, '2026' UNION ALL SELECT 3, '2025'")
    sql(storage, "CREATE TABLE t (a BIGINT) PARTITIONED BY (region STRING, ds STRING)")
    sql(storage, "INSERT INTO t PARTITION (region='cn', ds='2024') SELECT 99")
    sql(storage, "INSERT INTO t PARTITION (region='cn', ds='2026') SELECT 98")
    sql(storage, "INSERT OVERWRITE TABLE t PARTITION (region='cn', ds) SELECT a, ds FROM src")
    assert storage.list_partitions(P, "t") == [
        {"region": "cn", "ds": "2024"},
        {"region": "cn", "ds": "2025"},
        {"region": "cn", "ds": "2026"},
    ]
    # Overwrite replaced the partitions the query produced, and left 2024 alone.
    got = sorted(rows(storage, "SELECT ds, a FROM t", odps__sql__allow__fullscan="true"))
    assert got == [("2024", 99), ("2025", 3), ("2026", 1), ("2026", 2)]
    sql(storage, "INSERT INTO t PARTITION (region, ds) SELECT 5, 'us', '2026'")
    assert {"region": "us", "ds": "2026"} in storage.list_partitions(P, "t")


def test_dynamic_partition_value_must_not_be_null(storage):
    sql(storage, "CREATE TABLE t (a BIGINT) PARTITIONED BY (ds STRING)")
    err = fails(storage, "INSERT INTO t PARTITION (ds) SELECT 1, CAST(NULL AS STRING)", "ODPS-0123131")
    assert "NULL" in err.message
    assert storage.list_partitions(P, "t") == []


def test_insert_partition_clause_errors(storage):
    sql(storage, "CREATE TABLE t (a BIGINT) PARTITIONED BY (ds STRING, hh STRING); CREATE TABLE n (a BIGINT)")
    fails(storage, "INSERT INTO t SELECT 1", "ODPS-0130071")
    fails(storage, "INSERT INTO t PARTITION (hh='1', ds='2') SELECT 1", "ODPS-0130071")
    fails(storage, "INSERT INTO t PARTITION (ds, hh='1') SELECT 1, '2'", "ODPS-0130071")
    fails(storage, "INSERT INTO n PARTITION (ds='1') SELECT 1", "ODPS-0130071")
    fails(storage, "INSERT INTO nope SELECT 1", "ODPS-0130131")


def test_insert_column_count_and_type_checks(storage):
    sql(storage, "CREATE TABLE t (a INT, b DECIMAL(10,2), c STRING, d DATETIME)")
    fails(storage, "INSERT INTO t SELECT 1, 2, 'x'", "ODPS-0130071")
    err = fails(storage, "INSERT INTO t SELECT CAST(1 AS BIGINT), 2, 'x', GETDATE()", "ODPS-0130071")
    assert "column a" in err.message
    fails(storage, "INSERT INTO t SELECT 1.5, 2, 'x', GETDATE()", "ODPS-0130071")  # DECIMAL -> INT
    fails(
        storage, "INSERT INTO t SELECT 1, 2, 'x', '2026-01-01 00:00:00'", "ODPS-0130071"
    )  # STRING -> DATETIME
    # Widening and to-string conversions are implicit; NULL goes anywhere.
    sql(storage, "INSERT INTO t SELECT CAST(1 AS TINYINT), 2, 3.5, CAST('2026-01-02' AS DATE)")
    sql(storage, "INSERT INTO t SELECT NULL, NULL, NULL, NULL")
    assert rows(storage, "SELECT * FROM t WHERE a IS NOT NULL") == [
        (1, Decimal("2.00"), "3.5", dt.datetime(2026, 1, 2))
    ]


def test_failed_insert_overwrite_of_a_partition_leaves_data_unchanged(storage):
    sql(storage, "CREATE TABLE src (s STRING); INSERT INTO src SELECT '1' UNION ALL SELECT 'oops'")
    sql(storage, "CREATE TABLE t (a BIGINT) PARTITIONED BY (ds STRING)")
    sql(storage, "INSERT INTO t PARTITION (ds='1') SELECT 100 UNION ALL SELECT 101")
    before_meta = storage.require_table(P, "t")
    fails(
        storage,
        "INSERT OVERWRITE TABLE t PARTITION (ds='1') SELECT CAST(s AS BIGINT) FROM src",
        "ODPS-0123131",
    )
    fails(
        storage,
        "INSERT OVERWRITE TABLE t PARTITION (ds='2') SELECT CAST(s AS BIGINT) FROM src",
        "ODPS-0123131",
    )
    assert sorted(rows(storage, "SELECT a FROM t WHERE ds = '1'")) == [(100,), (101,)]
    assert storage.list_partitions(P, "t") == [{"ds": "1"}]
    assert storage.require_table(P, "t").modified_at == before_meta.modified_at


def test_failed_statement_stops_the_script(storage):
    sql(storage, "CREATE TABLE t (a BIGINT)")
    fails(storage, "INSERT INTO t SELECT 1; SELECT nope FROM t; INSERT INTO t SELECT 2", "ODPS-0130071")
    assert rows(storage, "SELECT a FROM t") == [(1,)]  # statements run one by one, as in MaxCompute


def test_insert_values_is_reported_unsupported(storage):
    sql(storage, "CREATE TABLE t (a BIGINT)")
    fails(storage, "INSERT INTO t VALUES (1)", "ODPS-EMULATOR-UNSUPPORTED")


# -- the DTS merge -----------------------------------------------------------------------------


def test_dts_merge_query_end_to_end(orders):
    assert sql(orders, DTS_MERGE) is None
    assert sorted(rows(orders, "SELECT id, amount FROM orders")) == [
        (1, Decimal("11.00")),  # update: the after-image of the latest record wins
        (3, Decimal("35.00")),  # insert then update
        (4, Decimal("40.00")),  # untouched base row
    ]  # id 2 was deleted


def test_dts_merge_prunes_the_log_by_its_partition_predicate(orders):
    # The WHERE on modifytime_year is in orders_log's own scope, so no full-scan setting is needed.
    sql(orders, DTS_MERGE.replace("set odps.sql.allow.fullscan=true;", ""))
    assert len(rows(orders, "SELECT id FROM orders")) == 3
    without_predicate = DTS_MERGE.replace("set odps.sql.allow.fullscan=true;", "").replace(
        "WHERE modifytime_year <= '2026'", ""
    )
    fails(orders, without_predicate, "ODPS-0130241")


# -- queries -----------------------------------------------------------------------------------


def test_fullscan_rule(orders):
    err = fails(orders, "SELECT * FROM orders_log", "ODPS-0130241")
    assert (
        "Table(proj.orders_log) is full scan with all partitions, please specify partition predicates."
        in err.message
    )
    assert err.message.startswith("[1,15]")
    assert len(rows(orders, "SELECT * FROM orders_log WHERE modifytime_year = '2026'")) == 6
    assert len(rows(orders, "SELECT * FROM orders_log l WHERE l.modifytime_year = '2026'")) == 6
    assert len(rows(orders, "set odps.sql.allow.fullscan=true;\nSELECT * FROM orders_log")) == 6
    assert len(rows(orders, "SELECT * FROM orders_log", odps__sql__allow__fullscan="true")) == 6
    # A predicate on another table's column of the same name does not count.
    fails(
        orders, "SELECT * FROM orders_log l JOIN orders_base b ON l.id = b.id WHERE b.id = 1", "ODPS-0130241"
    )
    # The predicate must be in the scope that reads the table.
    fails(orders, "SELECT * FROM (SELECT * FROM orders_log) x WHERE modifytime_year = '2026'", "ODPS-0130241")
    # Settings apply to the statements after the SET only.
    fails(orders, "SELECT * FROM orders_log; set odps.sql.allow.fullscan=true", "ODPS-0130241")


def test_joins(storage):
    sql(storage, "CREATE TABLE a (id BIGINT, x STRING); CREATE TABLE b (id BIGINT, y STRING)")
    sql(storage, "INSERT INTO a SELECT 1, 'a1' UNION ALL SELECT 2, 'a2'")
    sql(storage, "INSERT INTO b SELECT 2, 'b2' UNION ALL SELECT 3, 'b3'")
    q = "SELECT a.id, b.id, x, y FROM a {} JOIN b ON a.id = b.id ORDER BY a.id, b.id LIMIT 10"
    assert rows(storage, q.format("")) == [(2, 2, "a2", "b2")]
    assert rows(storage, q.format("LEFT OUTER")) == [(1, None, "a1", None), (2, 2, "a2", "b2")]
    assert rows(storage, q.format("RIGHT")) == [(None, 3, None, "b3"), (2, 2, "a2", "b2")]
    assert rows(storage, q.format("FULL OUTER")) == [
        (None, 3, None, "b3"),
        (1, None, "a1", None),
        (2, 2, "a2", "b2"),
    ]
    assert rows(storage, "SELECT id FROM a LEFT SEMI JOIN b ON a.id = b.id") == [(2,)]
    assert rows(storage, "SELECT id FROM a LEFT ANTI JOIN b ON a.id = b.id") == [(1,)]


def test_union_cte_subquery_group_by_having(storage):
    sql(storage, "CREATE TABLE t (k STRING, v BIGINT)")
    sql(
        storage,
        "INSERT INTO t SELECT 'a', 1 UNION ALL SELECT 'a', 2 UNION ALL SELECT 'b', 5 UNION ALL SELECT 'c', 1",
    )
    got = rows(
        storage,
        """
        -- totals per key, keys with more than one row or a big value
        WITH totals AS (SELECT k, SUM(v) AS total, COUNT(*) AS n FROM t GROUP BY k HAVING COUNT(*) > 1 OR SUM(v) > 4)
        SELECT k, total, n FROM (SELECT * FROM totals UNION ALL SELECT 'z', 0, 0) s ORDER BY k LIMIT 100
        """,
    )
    assert got == [("a", 3, 2), ("b", 5, 1), ("z", 0, 0)]
    result = sql(storage, "SELECT k, SUM(v), AVG(v), COUNT(DISTINCT v) FROM t GROUP BY k ORDER BY k LIMIT 1")
    assert [(c.name, str(c.type)) for c in result.columns] == [
        ("k", "string"),
        ("_c1", "bigint"),
        ("_c2", "double"),
        ("_c3", "bigint"),
    ]
    assert result.table.schema == pa.schema(
        [("k", pa.string()), ("_c1", pa.int64()), ("_c2", pa.float64()), ("_c3", pa.int64())]
    )


def test_window_functions(storage):
    sql(storage, "CREATE TABLE t (g STRING, v BIGINT)")
    sql(
        storage,
        "INSERT INTO t SELECT 'a', 1 UNION ALL SELECT 'a', 3 UNION ALL SELECT 'a', 3 UNION ALL SELECT 'b', 2",
    )
    got = rows(
        storage,
        """SELECT g, v,
                  ROW_NUMBER() OVER (PARTITION BY g ORDER BY v DESC) rn,
                  RANK() OVER (PARTITION BY g ORDER BY v DESC) rk,
                  DENSE_RANK() OVER (PARTITION BY g ORDER BY v) drk,
                  LAG(v, 1, 0) OVER (PARTITION BY g ORDER BY v) prev,
                  SUM(v) OVER (PARTITION BY g) total
           FROM t ORDER BY g, rn LIMIT 10""",
    )
    assert got == [
        ("a", 3, 1, 1, 2, 1, 7),
        ("a", 3, 2, 1, 2, 3, 7),
        ("a", 1, 3, 3, 1, 0, 7),
        ("b", 2, 1, 1, 1, 0, 2),
    ]


def test_nulls_sort_first_ascending_like_maxcompute(storage):
    sql(storage, "CREATE TABLE t (v BIGINT); INSERT INTO t SELECT 2 UNION ALL SELECT NULL UNION ALL SELECT 1")
    assert rows(storage, "SELECT v FROM t ORDER BY v LIMIT 5") == [(None,), (1,), (2,)]
    assert rows(storage, "SELECT v FROM t ORDER BY v DESC LIMIT 5") == [(2,), (1,), (None,)]


def test_order_by_requires_limit_unless_disabled(storage):
    sql(storage, "CREATE TABLE t (v BIGINT); INSERT INTO t SELECT 2 UNION ALL SELECT 1")
    fails(storage, "SELECT v FROM t ORDER BY v", "ODPS-0130071")
    assert rows(storage, "set odps.sql.validate.orderby.limit=false; SELECT v FROM t ORDER BY v") == [
        (1,),
        (2,),
    ]


def test_scalar_functions(storage):
    sql(storage, "CREATE TABLE t (s STRING, n BIGINT, d DOUBLE, ts DATETIME)")
    sql(storage, "INSERT INTO t SELECT 'Hello', NULL, -2.7, CAST('2026-01-31 10:11:12' AS DATETIME)")
    got = rows(
        storage,
        """SELECT CASE WHEN n IS NULL THEN 'null' ELSE 'x' END, COALESCE(n, 5), NVL(n, 6), IF(d < 0, 'neg', 'pos'),
                  CONCAT(s, '-', 1), CONCAT(s, n), SUBSTR(s, 2, 3), UPPER(s), LOWER(s), LENGTH(s), TRIM('  x '),
                  CAST(d AS BIGINT), CAST('3.9' AS INT), CAST(n AS STRING), ROUND(d), ABS(d),
                  DATEADD(ts, 1, 'mm'), DATEADD(ts, -1, 'dd'), DATEDIFF(ts, CAST('2026-01-01 00:00:00' AS DATETIME), 'dd'),
                  TO_CHAR(ts, 'yyyy-mm-dd hh:mi:ss'), DATETRUNC(ts, 'mm'), YEAR(ts), MONTH(ts), DAY(ts),
                  DECODE(n, NULL, 'was null', 'other'), 7 / 2, 7 % 0, 1 / 0,
                  TO_DATE('20260102', 'yyyymmdd'), GREATEST(1, 3, 2)
           FROM t""",
    )
    assert got == [
        (
            "null", 5, 6, "neg",
            "Hello-1", None, "ell", "HELLO", "hello", 5, "x",
            -2, 3, None, -3.0, 2.7,
            dt.datetime(2026, 2, 28, 10, 11, 12), dt.datetime(2026, 1, 30, 10, 11, 12), 30,
            "2026-01-31 10:11:12", dt.datetime(2026, 1, 1), 2026, 1, 31,
            "was null", 3.5, None, None,
            dt.datetime(2026, 1, 2), 3,
        )
    ]  # fmt: skip


def test_getdate_is_utc_now(storage):
    before = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    (value,) = rows(storage, "SELECT GETDATE()")[0]
    after = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    # Bracketed by the clock read before and after, however long the statement took (value in milliseconds).
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= value <= after, (before, value, after)


def test_result_types_map_back_to_maxcompute(storage):
    sql(
        storage,
        "CREATE TABLE t (a DECIMAL(12,2), b DATETIME, c TIMESTAMP, d DATE, e BINARY, f BOOLEAN, g INT)",
    )
    sql(
        storage,
        "INSERT INTO t SELECT 1.25, GETDATE(), CAST(GETDATE() AS TIMESTAMP), CAST(GETDATE() AS DATE), CAST('x' AS BINARY), true, 1",
    )
    result = sql(storage, "SELECT a, b, c, d, e, f, g, 1 AS lit, NULL AS nothing, 3000000000 AS big FROM t")
    assert [str(c.type) for c in result.columns] == [
        "decimal(12,2)", "datetime", "timestamp", "date", "binary", "boolean", "int", "int", "string", "bigint",
    ]  # fmt: skip
    assert result.table.schema.types == [c.type.arrow for c in result.columns]


def test_identifiers_are_case_insensitive_and_strings_take_both_quotes(storage):
    sql(storage, "CREATE TABLE Orders (ID BIGINT, Name STRING)")
    sql(storage, "INSERT INTO ORDERS SELECT 1, \"it's\" UNION ALL SELECT 2, 'say \\'hi\\''")
    result = sql(storage, "SELECT `Id`, NAME FROM proj.ORDERS o WHERE O.id >= 1 ORDER BY ID LIMIT 2")
    assert [c.name for c in result.columns] == ["id", "name"]
    assert rows(storage, "SELECT name FROM orders ORDER BY id LIMIT 2") == [("it's",), ("say 'hi'",)]


def test_last_statement_decides_the_result(storage):
    assert sql(storage, "CREATE TABLE t (a BIGINT)") is None
    assert sql(storage, "SELECT 1; INSERT INTO t SELECT 1") is None
    assert rows(storage, "INSERT INTO t SELECT 2; SELECT COUNT(*) FROM t") == [(2,)]


def test_other_project_tables(storage):
    run_sql(storage, "other", "CREATE TABLE t (a BIGINT); INSERT INTO t SELECT 42", {})
    assert rows(storage, "SELECT a FROM other.t") == [(42,)]
    fails(storage, "SELECT a FROM t", "ODPS-0130131")


# -- errors ------------------------------------------------------------------------------------


def test_parse_errors_name_line_column_and_token(storage):
    err = fails(storage, "SELECT 1;\nSELECT a FROM t WHERE", "ODPS-0130161")
    assert err.message.startswith("[2,17] Parse exception") and "'WHERE'" in err.message.upper()
    err = fails(storage, "select a, from t", "ODPS-0130161")
    assert err.message.startswith("[1,11]") and "'from'" in err.message
    fails(storage, "SELECT 'unterminated", "ODPS-0130161")
    fails(storage, "CREATE TABLE t (a BIGINT,, b STRING)", "ODPS-0130161")
    fails(storage, "-- only a comment", "ODPS-0130161")


def test_table_and_column_errors(storage):
    err = fails(storage, "SELECT * FROM nope", "ODPS-0130131")
    assert "proj.nope" in err.message
    sql(storage, "CREATE TABLE t (a BIGINT)")
    err = fails(storage, "SELECT b FROM t", "ODPS-0130071")
    assert '"b"' in err.message and "mc__" not in err.message
    fails(storage, "SELECT a FROM t WHERE a = 'x' || 'y'", "ODPS-EMULATOR-UNSUPPORTED")


def test_unsupported_constructs_fail_loudly(storage):
    sql(storage, "CREATE TABLE t (a BIGINT, s STRING)")
    for text, construct in [
        ("SELECT no_such_fn(a) FROM t", "function NO_SUCH_FN"),
        ("SELECT x FROM t LATERAL VIEW explode(s) z AS x", "LATERAL VIEW"),
        ("SELECT a FROM t DISTRIBUTE BY a", "DISTRIBUTE BY"),
        ("SELECT DATEADD(a, 1, 'weeks') FROM t", "DATEADD date part"),
        ("SELECT TO_CHAR(GETDATE(), 'yyyy-Q') FROM t", "format letter"),
        ("DESC t", "statement DESC"),
        ("UPDATE t SET a = 1", "statement UPDATE"),
        ("SELECT a FROM proj.default.t", "three-part"),
    ]:
        err = fails(storage, text, "ODPS-EMULATOR-UNSUPPORTED")
        assert construct in err.message, (text, err.message)


def test_fractional_literals_are_double_as_in_maxcompute(storage):
    result = sql(storage, "SELECT 0.1 + 0.2 AS x, 1e3 AS y, 7 AS z")
    assert [str(c.type) for c in result.columns] == ["double", "double", "int"]
    assert rows(storage, "SELECT 0.1 + 0.2") == [(0.1 + 0.2,)]
