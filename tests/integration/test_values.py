"""One conversion layer, two paths: a table with every mapped type, read by the full load (connectorx)
and by the binlog (mysql-replication), must give identical Arrow arrays, the expected values, and
upload to MaxCompute (the emulator) unchanged.

The module runs once more in a subprocess under ``TZ=Asia/Shanghai`` (test_same_results_in_shanghai):
the worker's local zone must change nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import connectorx as cx
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

from airflow_provider_polar_mc.core.compat import patch_pyodps_decimal_scale
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.destination.upload import TableUpload, needs_record_format
from airflow_provider_polar_mc.core.model import ColumnPlan
from airflow_provider_polar_mc.core.schema_plan import source_column_type
from airflow_provider_polar_mc.core.source.catalog import describe_tables
from airflow_provider_polar_mc.core.typemap import map_type
from airflow_provider_polar_mc.core.values import (
    ZERO_DATE,
    ConvertedColumn,
    convert_binlog_values,
    convert_snapshot_array,
    destination_arrow_type,
    snapshot_alias,
    snapshot_select_expression,
    wall_clock_from_text,
)

pytestmark = pytest.mark.integration

DATABASE = "values_t"
TABLE = "every_type"
FSPS = range(7)
BIG_JSON = {"items": [{"k": i, "name": "名字😀", "v": i * 1.5} for i in range(3000)], "z": None, "a": True}
NESTED_JSON_TEXT = '{"b": {"y": [1, 2, {"q": "\\u00e9"}], "x": 1.5},   "a": "中文😀", "n": null}'

_COLUMNS = [
    "id INT NOT NULL PRIMARY KEY",
    "ti TINYINT", "ti1 TINYINT(1)", "tiu TINYINT UNSIGNED", "si SMALLINT", "siu SMALLINT UNSIGNED",
    "mi MEDIUMINT", "miu MEDIUMINT UNSIGNED", "i INT", "iu INT UNSIGNED", "bi BIGINT", "biu BIGINT UNSIGNED",
    "d12 DECIMAL(12,2)", "d38 DECIMAL(38,18)", "d65 DECIMAL(65,30)", "d20 DECIMAL(20,0)",
    "f FLOAT", "dbl DOUBLE",
    "b1 BIT(1)", "b8 BIT(8)", "b64 BIT(64)",
    "ch CHAR(5)", "vc VARCHAR(64)", "tx TEXT", "vcb VARBINARY(16)", "bin4 BINARY(4)", "bl BLOB",
    "chb CHAR(4) CHARACTER SET binary",
    "dte DATE",
    *[f"dt{p} DATETIME({p})" for p in FSPS],
    *[f"ts{p} TIMESTAMP({p}) NULL DEFAULT NULL" for p in FSPS],
    "tm TIME", "tm1 TIME(1)", "tm3 TIME(3)", "tm6 TIME(6)",
    "y YEAR", "e ENUM('a','b','it''s')", "s SET('x','y','z')", "s_nn SET('x','y','z') NOT NULL DEFAULT ''",
    "j JSON", "pt POINT", "pg POLYGON",
]  # fmt: skip

U64_MAX = 2**64 - 1
D38_MAX = "99999999999999999999.999999999999999999"
D65_MAX = "12345678901234567890123456789012345.123456789012345678901234567891"
POINT_WKB = bytes.fromhex("0101000000000000000000f03f0000000000000040")  # POINT(1 2), little-endian WKB


def _fraction(p: int) -> str:
    return ("." + "123456"[:p]) if p else ""


def _rows() -> list[dict[str, object]]:
    """Rows to insert (column -> SQL literal), by id."""
    row1 = {
        "id": 1, "ti": 127, "ti1": 127, "tiu": 255, "si": 32767, "siu": 65535, "mi": 8388607, "miu": 16777215,
        "i": 2147483647, "iu": 4294967295, "bi": 2**63 - 1, "biu": U64_MAX,
        "d12": "9999999999.99", "d38": D38_MAX, "d65": D65_MAX, "d20": "99999999999999999999",
        "f": 3.4028234e38, "dbl": 1.7976931348623157e308, "b1": "b'1'", "b8": "b'11111111'", "b64": "b'" + "1" * 64 + "'",
        "ch": "'ab  '", "vc": "'😀中文 ok'", "tx": "''", "vcb": "0x00ff", "bin4": "'ab'", "bl": "0x00ff00ff", "chb": "'a'",
        "dte": "'9999-12-31'", **{f"dt{p}": f"'9999-12-31 23:59:59{'.999999'[: p + 1] if p else ''}'" for p in FSPS},
        **{f"ts{p}": f"'2038-01-19 03:14:07{'.999999'[: p + 1] if p else ''}'" for p in FSPS},
        "tm": "'838:59:59'", "tm1": "'838:59:59.9'", "tm3": "'838:59:59.999'", "tm6": "'838:59:59.000000'",
        "y": 2155, "e": "'it''s'", "s": "'z,x'", "s_nn": "'y'", "j": "%(big_json)s",
        "pt": "ST_GeomFromText('POINT(1 2)')", "pg": "ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))')",
    }  # fmt: skip
    row2 = {
        "id": 2, "ti": -128, "ti1": -128, "tiu": 0, "si": -32768, "siu": 0, "mi": -8388608, "miu": 0,
        "i": -2147483648, "iu": 0, "bi": -(2**63), "biu": 0,
        "d12": "-9999999999.99", "d38": "-" + D38_MAX, "d65": "-" + D65_MAX, "d20": "0",
        "f": -3.4028234e38, "dbl": -1.7976931348623157e308, "b1": "b'0'", "b8": "b'0'", "b64": "b'0'",
        "ch": "''", "vc": "''", "tx": "'x'", "vcb": "''", "bin4": "0x00", "bl": "0x00", "chb": "''",
        "dte": "'1000-01-01'", **{f"dt{p}": "'1000-01-01 00:00:00'" for p in FSPS},
        **{f"ts{p}": f"'1970-01-01 00:00:01{'.000001'[: p + 1] if p else ''}'" for p in FSPS},
        "tm": "'-838:59:59'", "tm1": "'-838:59:59.0'", "tm3": "'-838:59:59.000'", "tm6": "'-838:59:59.000000'",
        "y": 1901, "e": "'a'", "s": "''", "s_nn": "''", "j": "%(nested_json)s",
        "pt": "ST_GeomFromText('POINT(-1.5 1e10)')", "pg": None,
    }  # fmt: skip
    row3 = {"id": 3}  # every nullable column NULL
    row4 = {  # zero dates (sql_mode ''), YEAR 0000, invalid ENUM, negative TIME fractions
        "id": 4, "dte": "'0000-00-00'", "dt0": "'0000-00-00 00:00:00'", "dt3": "'2020-00-10 10:00:00.123'",
        "dt6": "'2020-05-00 00:00:00.000001'", "ts0": "'0000-00-00 00:00:00'", "ts6": "'0000-00-00 00:00:00.000000'",
        "y": 0, "e": "'nope'", "tm1": "'-00:00:01.5'", "tm3": "'-12:34:56.789'", "tm6": "'-00:00:00.000001'",
        "tm": "'-00:00:01'",
    }  # fmt: skip
    row5 = {  # every fsp, inside the nanosecond range; small floats
        "id": 5, **{f"dt{p}": f"'2024-02-29 12:34:56{_fraction(p)}'" for p in FSPS},
        **{f"ts{p}": f"'2000-01-01 00:00:00{_fraction(p)}'" for p in FSPS},
        "dte": "'2024-02-29'", "tm6": "'12:00:00.5'", "tm1": "'00:00:00.1'", "tm3": "'-00:00:00.001'", "tm": "'00:00:00'",
        "f": 0.1, "dbl": 0.1, "d12": "0.5", "d38": "0", "d65": "0", "d20": "1", "b8": "b'1010'", "b64": "b'1'",
        "j": "'\"just a string\"'", "s": "'x,y,z'", "e": "'b'",
    }  # fmt: skip
    row6 = {"id": 6, "vc": "'to be deleted'"}
    row7 = {"id": 7, "vc": "'before update'", "dt6": "'2001-01-01 00:00:00'", "j": "'[1, 2]'", "biu": 1}
    return [row1, row2, row3, row4, row5, row6, row7]


def _insert_sql(row: dict[str, object]) -> str:
    names = ", ".join(f"`{name}`" for name in row)
    literals = ", ".join("NULL" if value is None else str(value) for value in row.values())
    return f"INSERT INTO `{DATABASE}`.`{TABLE}` ({names}) VALUES ({literals})"


# --- expected values after the DML (row 6 deleted, rows 1 and 7 updated) -----------------------------


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc)


EXPECTED: dict[str, list[object]] = {
    "id": [1, 2, 3, 4, 5, 7],
    "ti1": [127, -128, None, None, None, None],
    "tiu": [255, 0, None, None, None, None],
    "siu": [65535, 0, None, None, None, None],
    "miu": [16777215, 0, None, None, None, None],
    "iu": [4294967295, 0, None, None, None, None],
    "bi": [2**63 - 1, -(2**63), None, None, None, None],
    "biu": [Decimal(U64_MAX), Decimal(0), None, None, None, Decimal(18446744073709551614)],
    "d12": [Decimal("9999999999.99"), Decimal("-9999999999.99"), None, None, Decimal("0.50"), None],
    "d38": [Decimal(D38_MAX), Decimal("-" + D38_MAX), None, None, Decimal("0E-18"), None],
    "d65": [D65_MAX, "-" + D65_MAX, None, None, "0." + "0" * 30, None],
    "d20": [Decimal("99999999999999999999"), Decimal(0), None, None, Decimal(1), None],
    "f": [pytest.approx(3.4028234e38), pytest.approx(-3.4028234e38), None, None, pytest.approx(0.1), None],
    "dbl": [1.7976931348623157e308, -1.7976931348623157e308, None, None, 0.1, None],
    "b1": [True, False, None, None, None, None],
    "b8": [255, 0, None, None, 10, None],
    "b64": [Decimal(U64_MAX), Decimal(0), None, None, Decimal(1), None],
    "ch": ["ab", "", None, None, None, None],
    "vc": ["😀中文 updated", "", None, None, None, "after update"],
    "tx": ["", "x", None, None, None, None],
    "vcb": [b"\x00\xff", b"", None, None, None, None],
    "bin4": [b"ab\x00\x00", b"\x00\x00\x00\x00", None, None, None, None],
    "bl": [b"\x00\xff\x00\xff", b"\x00", None, None, None, None],
    "chb": [b"a\x00\x00\x00", b"\x00\x00\x00\x00", None, None, None, None],
    "dte": [dt.date(9999, 12, 31), dt.date(1000, 1, 1), None, None, dt.date(2024, 2, 29), None],
    # MySQL's whole DATETIME range, beyond timestamp('ns')'s 1677..2262, kept to the microsecond.
    "dt0": [dt.datetime(9999, 12, 31, 23, 59, 59), dt.datetime(1000, 1, 1), None, None,
            dt.datetime(2024, 2, 29, 12, 34, 56), None],
    "dt6": [dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime(1000, 1, 1), None, None,
            dt.datetime(2024, 2, 29, 12, 34, 56, 123456), dt.datetime(2002, 2, 2, 2, 2, 2, 2)],
    "dt3": [dt.datetime(9999, 12, 31, 23, 59, 59, 999000), dt.datetime(1000, 1, 1), None, None,
            dt.datetime(2024, 2, 29, 12, 34, 56, 123000), None],
    "ts0": [_utc(dt.datetime(2038, 1, 19, 3, 14, 7)), _utc(dt.datetime(1970, 1, 1, 0, 0, 1)), None, None,
            _utc(dt.datetime(2000, 1, 1)), None],
    "ts6": [_utc(dt.datetime(2038, 1, 19, 3, 14, 7, 999999)), _utc(dt.datetime(1970, 1, 1, 0, 0, 1, 1)), None, None,
            _utc(dt.datetime(2000, 1, 1, 0, 0, 0, 123456)), None],
    "ts2": [_utc(dt.datetime(2038, 1, 19, 3, 14, 7, 990000)), _utc(dt.datetime(1970, 1, 1, 0, 0, 1)), None, None,
            _utc(dt.datetime(2000, 1, 1, 0, 0, 0, 120000)), None],
    "tm": ["838:59:59", "-838:59:59", None, "-00:00:01", "00:00:00", None],
    "tm1": ["838:59:59.9", "-838:59:59.0", None, "-00:00:01.5", "00:00:00.1", None],
    "tm3": ["838:59:59.999", "-838:59:59.000", None, "-12:34:56.789", "-00:00:00.001", None],
    "tm6": ["838:59:59.000000", "-838:59:59.000000", None, "-00:00:00.000001", "12:00:00.500000", None],
    "y": [2155, 1901, None, 0, None, None],
    "e": ["it's", "a", None, "", "b", None],
    "s": ["x,z", "", None, None, "x,y,z", None],
    "s_nn": ["y", "", "", "", "", ""],
    "j": [None, None, None, None, '"just a string"', "[1,2]"],  # rows 1 and 2 checked separately
    "pt": [POINT_WKB, None, None, None, None, None],  # row 2 checked separately
}  # fmt: skip
EXPECTED_WARNINGS = {
    "dte": {ZERO_DATE: 1},
    "dt0": {ZERO_DATE: 1},
    "dt3": {ZERO_DATE: 1},
    "dt6": {ZERO_DATE: 1},
    "ts0": {ZERO_DATE: 1},
    "ts6": {ZERO_DATE: 1},
}


# --- the fixture: DML captured between two binlog coordinates ------------------------------------------


def _master_status(conn) -> tuple[str, int]:
    with conn.cursor() as cur:
        cur.execute("SHOW MASTER STATUS")
        row = cur.fetchone()
    return row[0], int(row[1])


@pytest.fixture(scope="module")
def every_type(mysql_server):
    mysql_server.execute(f"DROP DATABASE IF EXISTS {DATABASE}", f"CREATE DATABASE {DATABASE}")
    mysql_server.execute(f"CREATE TABLE `{DATABASE}`.`{TABLE}` ({', '.join(_COLUMNS)})")
    conn = mysql_server.connect()
    start = _master_status(conn)
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")  # lets zero dates and invalid ENUM values in
        params = {"big_json": json.dumps(BIG_JSON, ensure_ascii=False), "nested_json": NESTED_JSON_TEXT}
        for row in _rows():
            sql = _insert_sql(row)
            cur.execute(sql, params if "%(" in sql else None)
        cur.execute(f"UPDATE `{DATABASE}`.`{TABLE}` SET vc = '😀中文 updated' WHERE id = 1")
        cur.execute(
            f"UPDATE `{DATABASE}`.`{TABLE}` SET vc = 'after update', dt6 = '2002-02-02 02:02:02.000002',"
            f" j = '[1,    2]', biu = 18446744073709551614 WHERE id = 7"
        )
        cur.execute(f"UPDATE `{DATABASE}`.`{TABLE}` SET tx = tx WHERE id = 4")  # no-op: no event
        cur.execute(f"UPDATE `{DATABASE}`.`{TABLE}` SET i = 1 WHERE id = 4")  # zero dates in both images
        cur.execute(f"DELETE FROM `{DATABASE}`.`{TABLE}` WHERE id = 6")
    conn.commit()
    end = _master_status(conn)
    table = describe_tables(conn, DATABASE, [TABLE])[TABLE]
    conn.close()
    plans = [ColumnPlan(c, c.name, map_type(source_column_type(c))) for c in table.columns]
    yield {"plans": plans, "start": start, "end": end}
    mysql_server.execute(f"DROP DATABASE {DATABASE}")


def read_snapshot(server, plans: list[ColumnPlan]) -> dict[str, ConvertedColumn]:
    projection = ", ".join(snapshot_select_expression(p) for p in plans)
    raw = cx.read_sql(
        f"mysql://root:@{server.host}:{server.port}/{DATABASE}",
        f"SELECT {projection} FROM `{DATABASE}`.`{TABLE}` ORDER BY `id`",
        return_type="arrow",
        pre_execution_query="SET time_zone = '+00:00'",
    )
    return {p.destination: convert_snapshot_array(p, raw.column(snapshot_alias(p))) for p in plans}


def read_binlog_final_images(server, plans: list[ColumnPlan], start: tuple[str, int], end: tuple[str, int]):
    """Apply the captured events to an empty table: the final image of every row, by primary key."""
    stream = BinLogStreamReader(
        connection_settings={"host": server.host, "port": server.port, "user": "root", "password": ""},
        server_id=4242,
        only_schemas=[DATABASE],
        only_tables=[TABLE],
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
        resume_stream=True,
        log_file=start[0],
        log_pos=start[1],
        blocking=False,
        # is_mariadb stays False: with True and no GTID, 1.0.17 ignores log_file/log_pos (docs/architecture.md: bounded reads).
    )
    images: dict[int, tuple[dict, dict]] = {}
    try:
        for event in stream:
            if (stream.log_file, stream.log_pos) > end:  # bounded read: stop at the captured end
                break
            for row in event.rows:
                if isinstance(event, DeleteRowsEvent):
                    images.pop(row["values"]["id"], None)
                elif isinstance(event, UpdateRowsEvent):
                    images.pop(row["before_values"]["id"], None)
                    images[row["after_values"]["id"]] = (row["after_values"], row["after_none_sources"])
                else:
                    images[row["values"]["id"]] = (row["values"], row["none_sources"])
            if (stream.log_file, stream.log_pos) == end:
                break
    finally:
        stream.close()
    ordered = [images[key] for key in sorted(images)]
    return {
        p.destination: convert_binlog_values(
            p, [values[p.source.name] for values, _ in ordered], [sources.get(p.source.name) for _, sources in ordered]
        )
        for p in plans
    }


@pytest.fixture(scope="module")
def both_paths(every_type, mysql_server):
    plans = every_type["plans"]
    snapshot = read_snapshot(mysql_server, plans)
    binlog = read_binlog_final_images(mysql_server, plans, every_type["start"], every_type["end"])
    return plans, snapshot, binlog


# --- the tests --------------------------------------------------------------------------------------------


def test_every_type_is_covered(every_type):
    kinds = {p.mapped.mc_type.split("(")[0] for p in every_type["plans"]}
    assert kinds >= {"TINYINT", "SMALLINT", "INT", "BIGINT", "DECIMAL", "FLOAT", "DOUBLE", "BOOLEAN", "STRING",
                     "BINARY", "DATE", "TIMESTAMP_NTZ", "TIMESTAMP"}  # fmt: skip
    assert {p.source.data_type for p in every_type["plans"]} >= {"json", "set", "enum", "time", "year", "point", "bit"}


def test_snapshot_and_binlog_give_identical_arrays(both_paths):
    plans, snapshot, binlog = both_paths
    for plan in plans:
        name = plan.destination
        want_type = destination_arrow_type(plan)
        assert snapshot[name].array.type == want_type, name
        assert binlog[name].array.type == want_type, name
        assert snapshot[name].array.equals(binlog[name].array), (
            f"{name}: snapshot {snapshot[name].array.to_pylist()} != binlog {binlog[name].array.to_pylist()}"
        )
        assert snapshot[name].warnings == binlog[name].warnings, name


def test_values_are_the_expected_ones(both_paths):
    _, snapshot, _ = both_paths
    for name, expected in EXPECTED.items():
        actual = snapshot[name].array.to_pylist()
        if name in ("j", "pt"):
            actual = [None, None, *actual[2:]] if name == "j" else [actual[0], None, *actual[2:]]
        assert actual == expected, name
    for p in FSPS:
        want = dt.datetime(2024, 2, 29, 12, 34, 56, int(("123456"[:p] or "0").ljust(6, "0")))
        assert snapshot[f"dt{p}"].array.to_pylist()[4] == want, p
    for name, warnings in EXPECTED_WARNINGS.items():
        assert snapshot[name].warnings == warnings, name
    assert snapshot["vc"].warnings == {} and snapshot["j"].warnings == {}


def test_json_is_canonical(both_paths):
    _, snapshot, _ = both_paths
    big, nested = snapshot["j"].array.to_pylist()[:2]
    assert len(big.encode()) > 100_000
    assert big == json.dumps(BIG_JSON, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert nested == '{"a":"中文😀","b":{"x":1.5,"y":[1,2,{"q":"é"}]},"n":null}'


def test_spatial_is_plain_wkb(both_paths):
    _, snapshot, _ = both_paths
    point, other = snapshot["pt"].array.to_pylist()[:2]
    assert point == POINT_WKB
    assert other[:5] == bytes.fromhex("0101000000") and len(other) == 21
    polygon = snapshot["pg"].array.to_pylist()[0]
    assert polygon[:5] == bytes.fromhex("0103000000") and len(polygon) == 9 + 4 + 4 * 16


# --- upload through pyodps's Arrow writer into the emulator -----------------------------------------------


def _create_table_sql(name: str, plans: list[ColumnPlan]) -> str:
    columns = ", ".join(f"`{p.destination}` {p.mapped.mc_type}" for p in plans)
    return f"CREATE TABLE {name} ({columns})"


def _is_scale0_decimal(plan: ColumnPlan) -> bool:
    return plan.mapped.mc_type.startswith("DECIMAL(") and plan.mapped.mc_type.endswith(",0)")



def test_uploads_and_reads_back_unchanged(both_paths, emulator):
    plans, snapshot, _ = both_paths
    _upload_and_compare(emulator, [p for p in plans if not _is_scale0_decimal(p)], snapshot)


def test_scale0_decimals_upload_and_read_back_unchanged(both_paths, emulator):
    plans, snapshot, _ = both_paths
    _upload_and_compare(emulator, [p for p in plans if p.source.name == "id" or _is_scale0_decimal(p)], snapshot)


def _upload(odps, plans: list[ColumnPlan], data: pa.Table) -> str:
    """A new table of ``plans`` holding ``data``, uploaded through the provider's uploader (records
    for a block beyond timestamp('ns'), Arrow otherwise)."""
    name = f"values_{uuid.uuid4().hex[:8]}"
    odps.execute_sql(_create_table_sql(name, plans), hints={"odps.sql.type.system.odps2": "true"})
    upload = TableUpload(MaxComputeDestination(odps), name)
    upload.open()
    upload.write_block(0, data)
    upload.commit([0])
    return name


def _upload_and_compare(emulator, plans: list[ColumnPlan], snapshot: dict[str, ConvertedColumn]) -> None:
    """Upload, then read back with SQL, TIMESTAMP_NTZ as its text (the way that carries 0001..9999)."""
    odps = emulator.client()
    data = pa.table({p.destination: snapshot[p.destination].array for p in plans})
    ntz = ntz_columns(plans)
    carries_sentinels = any(v is not None and v.year in (1000, 9999) for c in ntz for v in data[c].to_pylist())
    assert needs_record_format(data) == carries_sentinels
    name = _upload(odps, plans, data)
    select = ", ".join(f"CAST(`{p.destination}` AS STRING) AS `{p.destination}`" if p.destination in ntz
                       else f"`{p.destination}`" for p in plans)  # fmt: skip
    with odps.execute_sql(f"SELECT {select} FROM {name}").open_reader(tunnel=True) as reader:
        records = [dict(zip([c.name for c in record._columns], record.values, strict=True)) for record in reader]
    _assert_read_back(plans, data, records)


def _assert_read_back(plans: list[ColumnPlan], data: pa.Table, records: list[dict], *, naive_is_utc: bool = False) -> None:
    records = sorted(records, key=lambda r: r["id"])
    for plan in plans:
        want = [_as_record_value(v, plan) for v in data[plan.destination].to_pylist()]
        got = [_normalise_read_value(r[plan.destination.lower()], plan, naive_is_utc) for r in records]
        assert got == want, plan.destination


def test_every_type_reads_back_each_way(both_paths, emulator):
    """README "Reading the replica", tried as a user would: with the options it names, pyodps's record
    reader, its Arrow reader and SQL return every value as the source holds it. TIMESTAMP_NTZ values
    beyond 1677..2262 (MySQL's 1000-01-01 and 9999-12-31 sentinels) are read as text; the readers
    that cannot carry them fail loudly, except pyodps's instance-tunnel Arrow reader, whose silent
    wrap is pinned here so that the README's warning stays true."""
    from odps.config import option_context

    plans, snapshot, _ = both_paths
    odps = emulator.client()
    data = pa.table({p.destination: snapshot[p.destination].array for p in plans})
    ntz = sorted(ntz_columns(plans))
    beyond = pc.is_in(data["id"], pa.array([1, 2], data["id"].type))  # rows 1 and 2 hold the sentinels
    inside, outside = data.filter(pc.invert(beyond)), data.filter(beyond)
    inside_name, outside_name = _upload(odps, plans, inside), _upload(odps, plans, outside)

    with option_context({"allow_antique_date": True, "local_timezone": False}):
        table = odps.get_table(inside_name)
        with table.open_reader() as reader:  # the table tunnel's record reader
            _assert_read_back(plans, inside, [dict(zip(reader.schema.names, r.values, strict=True)) for r in reader], naive_is_utc=True)
        with table.open_reader(arrow=True) as reader:  # its Arrow reader (to_pandas reads the same batches)
            arrow = reader.read_all()
        _assert_read_back(plans, inside, arrow.to_pylist(), naive_is_utc=True)
        with odps.execute_sql(f"SELECT * FROM {inside_name}").open_reader(tunnel=True) as reader:  # SQL
            _assert_read_back(plans, inside, [dict(zip(reader.schema.names, r.values, strict=True)) for r in reader], naive_is_utc=True)

        beyond_table = odps.get_table(outside_name)
        with pytest.raises(pd.errors.OutOfBoundsDatetime), beyond_table.open_reader() as reader:
            list(reader)
        with pytest.raises(Exception, match="1677-09-21 .. 2262-04-11"), beyond_table.open_reader(arrow=True) as reader:
            reader.read_all()
        cast = ", ".join(f"CAST(`{c}` AS STRING) AS `{c}`" for c in ntz)
        with odps.execute_sql(f"SELECT id, {cast} FROM {outside_name}").open_reader(tunnel=True) as reader:
            texts = sorted([r["id"], *(wall_clock_from_text(r[c]) for c in ntz)] for r in reader)
        assert texts == sorted([r["id"], *(r[c] for c in ntz)] for r in outside.to_pylist())
        sql = odps.execute_sql(f"SELECT id, dt6 FROM {outside_name} WHERE id = 1")
        with sql.open_reader(tunnel=True, arrow=True) as reader:
            wrapped = reader.read_all().column("dt6").to_pylist()[0]
        assert wrapped != dt.datetime(9999, 12, 31, 23, 59, 59, 999999)  # pyodps 0.13.2: sec * 1e9 wraps


def ntz_columns(plans: list[ColumnPlan]) -> set[str]:
    return {p.destination for p in plans if p.mapped.mc_type == "TIMESTAMP_NTZ"}


def _as_record_value(value, plan: ColumnPlan):
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if plan.mapped.mc_type == "FLOAT" and value is not None:
        return pytest.approx(value, rel=1e-7)
    return value


def _normalise_read_value(value, plan: ColumnPlan, naive_is_utc: bool = False):
    """pyodps returns TIMESTAMP as pandas Timestamps in the worker's local zone (in UTC with
    ``options.local_timezone = False``), TIMESTAMP_NTZ naive."""
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and plan.mapped.mc_type == "TIMESTAMP" and not naive_is_utc:
            value = value.astimezone()  # naive local wall clock -> aware
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, str) and plan.mapped.arrow_type == pa.binary():
        value = value.encode("utf-8", "surrogateescape")
    if isinstance(value, str) and plan.mapped.mc_type == "TIMESTAMP_NTZ":
        value = dt.datetime.fromisoformat(value)
    return value


def test_bigint_unsigned_max_round_trips_through_the_emulator(emulator):
    from odps.tunnel import TableTunnel

    patch_pyodps_decimal_scale()
    odps = emulator.client()
    name = f"u64_{uuid.uuid4().hex[:8]}"
    odps.execute_sql(f"CREATE TABLE {name} (v DECIMAL(20,0))", hints={"odps.sql.type.system.odps2": "true"})
    values = [U64_MAX, 0, 1, None]
    tunnel = TableTunnel(odps)
    session = tunnel.create_upload_session(name)
    with session.open_arrow_writer(0) as writer:
        writer.write(pa.table({"v": pa.array(values, pa.uint64()).cast(pa.decimal128(20, 0))}))
    session.commit([0])
    with tunnel.create_download_session(name).open_record_reader(0, len(values)) as reader:
        got = sorted((r.values[0] for r in reader), key=lambda v: (v is None, v))
    assert got == [Decimal(0), Decimal(1), Decimal(U64_MAX), None]


# --- the same module under another worker time zone ---------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("TZ") == "Asia/Shanghai", reason="already the Shanghai run")
def test_same_results_in_shanghai():
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(Path(__file__).relative_to(root))],
        cwd=root,
        env={**os.environ, "TZ": "Asia/Shanghai"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
