"""The value-conversion layer without a database: canonical forms, the binlog library's quirks, the
pyodps facts the layer relies on (and the DECIMAL(p,0) patch), and the full-load conversion speed."""

from __future__ import annotations

import datetime as dt
import io
import time
from decimal import Decimal

import pyarrow as pa
import pytest

from airflow_provider_polar_mc.core.compat import patch_pyodps_decimal_scale
from airflow_provider_polar_mc.core.model import ColumnPlan, SourceColumn
from airflow_provider_polar_mc.core.schema_plan import source_column_type
from airflow_provider_polar_mc.core.typemap import MappingOptions, map_type
from airflow_provider_polar_mc.core.values import (
    INVALID_JSON,
    ZERO_DATE,
    _repair_negative_time,
    canonical_json,
    convert_binlog_values,
    convert_snapshot_array,
    destination_arrow_type,
    format_time,
    set_members,
    snapshot_select_expression,
)


def plan(
    column_type: str,
    data_type: str | None = None,
    *,
    name: str = "c",
    nullable: bool = True,
    precision: int | None = None,
    scale: int | None = None,
    fsp: int | None = None,
    charset: str | None = None,
    options: MappingOptions | None = None,
) -> ColumnPlan:
    data_type = data_type or column_type.split("(")[0].split()[0].lower()
    column = SourceColumn(name, 3, data_type, column_type, nullable, precision, scale, fsp, charset)
    return ColumnPlan(column, name, map_type(source_column_type(column), options))


# --- projections ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "expression"),
    [
        (plan("decimal(65,30)", precision=65, scale=30), "CAST(`c` AS CHAR) AS `c3`"),
        (plan("time(6)", fsp=6), "CAST(`c` AS CHAR) AS `c3`"),
        (plan("datetime(6)", fsp=6), "CAST(`c` AS CHAR) AS `c3`"),
        (plan("bit(64)", precision=64), "CAST(`c` AS UNSIGNED) AS `c3`"),
        (plan("year(4)"), "CAST(`c` AS SIGNED) AS `c3`"),
        (plan("json"), "CAST(`c` AS CHAR) AS `c3`"),
        (plan("point"), "SUBSTRING(CAST(`c` AS BINARY), 5) AS `c3`"),
        (plan("bigint(20) unsigned", name="we`ird name"), "`we``ird name` AS `c3`"),
        (plan("set('a','b')"), "`c` AS `c3`"),
    ],
)
def test_snapshot_projection(column, expression):
    assert snapshot_select_expression(column) == expression


# --- canonical forms --------------------------------------------------------------------------------------


def test_time_text_keeps_the_columns_fraction_digits():
    assert format_time(dt.timedelta(hours=-838, minutes=-59, seconds=-59), 0) == "-838:59:59"
    assert format_time(dt.timedelta(seconds=1, microseconds=500000), 3) == "00:00:01.500"
    assert format_time(dt.timedelta(microseconds=-1), 6) == "-00:00:00.000001"
    assert format_time(dt.timedelta(0), 1) == "00:00:00.0"


@pytest.mark.parametrize(
    ("decoded", "true"),
    [
        # what mysql-replication 1.0.17 yields -> the stored value (observed on MariaDB 10.11)
        (dt.timedelta(days=-1, seconds=86399, microseconds=1), dt.timedelta(microseconds=-1)),
        (dt.timedelta(seconds=-1, microseconds=-500000), dt.timedelta(seconds=-1, microseconds=-500000)),
        (dt.timedelta(seconds=-1.75), dt.timedelta(seconds=-1.25)),
        (dt.timedelta(seconds=-(12 * 3600 + 34 * 60 + 57) + 0.789), dt.timedelta(seconds=-(12 * 3600 + 34 * 60 + 56.789))),
        (dt.timedelta(hours=-838, minutes=-59, seconds=-59), dt.timedelta(hours=-838, minutes=-59, seconds=-59)),
        (dt.timedelta(seconds=5, microseconds=1), dt.timedelta(seconds=5, microseconds=1)),
    ],
)
def test_negative_time_fractions_are_repaired(decoded, true):
    assert _repair_negative_time(decoded) == true


def test_set_members_in_definition_order():
    assert set_members("set('x','it''s','a,b')") == ["x", "it's", "a,b"]
    column = plan("set('x','y','z')")
    converted = convert_binlog_values(column, [{"z", "x"}, None, None], [None, "empty set", "null"])
    assert converted.array.to_pylist() == ["x,z", "", None]
    not_null = plan("set('x','y','z')", nullable=False)
    assert convert_binlog_values(not_null, [None]).array.to_pylist() == [""]


def test_decimal_text_is_fixed_scale_on_both_paths():
    column = plan("decimal(65,30)", precision=65, scale=30)
    assert column.mapped.mc_type == "STRING"
    binlog = convert_binlog_values(column, [Decimal("0E-30"), Decimal("-1.5"), Decimal("-0")]).array.to_pylist()
    assert binlog == ["0." + "0" * 30, "-1.5" + "0" * 29, "0." + "0" * 30]
    exact = plan("decimal(12,2)", precision=12, scale=2)
    snapshot = convert_snapshot_array(exact, pa.array(["-1234567890.12", None], pa.large_string()))
    assert snapshot.array.equals(convert_binlog_values(exact, [Decimal("-1234567890.12"), None]).array)


def test_json_canonical_text():
    assert canonical_json({"b": [1, 2.5], "a": "é😀"}) == '{"a":"é😀","b":[1,2.5]}'
    column = plan("longtext", "json")
    converted = convert_binlog_values(column, ['{"b": 1,  "a": "\\u00e9"}', "not json", None])
    assert converted.array.to_pylist() == ['{"a":"é","b":1}', "not json", None]
    assert converted.warnings == {INVALID_JSON: 1}
    mysql_json = plan("json")  # MySQL 8: binary JSON decoded to objects; a str is a JSON string
    assert convert_binlog_values(mysql_json, [{b"k": [b"v", 1.0]}, "text"]).array.to_pylist() == [
        '{"k":["v",1.0]}',
        '"text"',
    ]


def test_bits_year_and_fixed_binary_from_the_binlog():
    assert convert_binlog_values(plan("bit(1)", precision=1), ["1", "0", None]).array.to_pylist() == [True, False, None]
    bit64 = convert_binlog_values(plan("bit(64)", precision=64), ["1" * 64]).array
    assert bit64.type == pa.decimal128(20, 0) and bit64.to_pylist() == [Decimal(2**64 - 1)]
    assert convert_binlog_values(plan("year(4)"), [1900, 1901, 2155]).array.to_pylist() == [0, 1901, 2155]
    fixed = plan("binary(4)", charset="binary")
    assert convert_binlog_values(fixed, [b"ab", b"", None]).array.to_pylist() == [b"ab\0\0", b"\0\0\0\0", None]
    assert convert_binlog_values(plan("char(5)"), ["ab  ", ""]).array.to_pylist() == ["ab", ""]


def test_zero_dates_are_null_and_every_other_datetime_is_kept_whatever_its_year():
    column = plan("datetime(6)", fsp=6)
    assert destination_arrow_type(column) == pa.timestamp("us")
    text = pa.array(["0000-00-00 00:00:00.000000", "2020-00-10 00:00:00.000000", "9999-12-31 23:59:59.999999",
                     "2262-04-11 23:47:16.854775", "1000-01-01 00:00:00.000001", None])  # fmt: skip
    snapshot = convert_snapshot_array(column, text)
    assert snapshot.array.to_pylist() == [
        None, None, dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime(2262, 4, 11, 23, 47, 16, 854775),
        dt.datetime(1000, 1, 1, 0, 0, 0, 1), None,
    ]  # fmt: skip
    assert snapshot.warnings == {ZERO_DATE: 2}
    binlog = convert_binlog_values(
        column,
        [None, None, dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime(2262, 4, 11, 23, 47, 16, 854775),
         dt.datetime(1000, 1, 1, 0, 0, 0, 1), None],
        ["out of datetime2 range", "out of datetime2 range", None, None, None, "null"],
    )  # fmt: skip
    assert binlog.array.equals(snapshot.array) and binlog.warnings == snapshot.warnings


def test_timestamps_are_utc_aware_and_zero_timestamp_is_null():
    column = plan("timestamp(3)", fsp=3)
    assert destination_arrow_type(column) == pa.timestamp("ns", tz="UTC")
    snapshot = convert_snapshot_array(column, pa.array(["0000-00-00 00:00:00.000", "2038-01-19 03:14:07.999"]))
    binlog = convert_binlog_values(column, [dt.datetime(1970, 1, 1), dt.datetime(2038, 1, 19, 3, 14, 7, 999000)])
    assert snapshot.array.equals(binlog.array) and snapshot.warnings == binlog.warnings == {ZERO_DATE: 1}


def test_datetime_type_keeps_the_full_range_in_milliseconds():
    column = plan("datetime(6)", fsp=6, options=MappingOptions(datetime_type="datetime"))
    assert destination_arrow_type(column) == pa.timestamp("ms", tz="UTC")
    snapshot = convert_snapshot_array(column, pa.array(["9999-12-31 23:59:59.999999", "1000-01-01 00:00:00.000500"]))
    want = [dt.datetime(9999, 12, 31, 23, 59, 59, 999000, dt.timezone.utc), dt.datetime(1000, 1, 1, tzinfo=dt.timezone.utc)]
    assert snapshot.array.to_pylist() == want and snapshot.warnings == {}
    binlog = convert_binlog_values(column, [dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.datetime(1000, 1, 1, 0, 0, 0, 500)])
    assert binlog.array.equals(snapshot.array)


# --- pyodps facts --------------------------------------------------------------------------------------------


def test_decimal_scale_patch_is_idempotent_and_reaches_the_writer():
    from odps import types as odps_types
    from odps.models import TableSchema
    from odps.tunnel.io import types as io_types
    from odps.tunnel.io.writer import BaseArrowWriter

    patch_pyodps_decimal_scale()
    assert patch_pyodps_decimal_scale() is False
    assert io_types.odps_type_to_arrow_type(odps_types.Decimal(20, 0)) == pa.decimal128(20, 0)
    assert io_types.odps_type_to_arrow_type(odps_types.Decimal(12, 2)) == pa.decimal128(12, 2)
    schema = TableSchema.from_lists(["v"], ["decimal(20,0)"])
    assert BaseArrowWriter(schema, out=io.BytesIO())._arrow_schema.field("v").type == pa.decimal128(20, 0)


def test_arrow_writer_sends_u64_max_exactly_with_the_patch():
    """The block the writer produces, read with the table's declared type (as the Tunnel does)."""
    from odps.models import TableSchema
    from odps.tunnel.io.writer import BaseArrowWriter

    from airflow_provider_polar_mc.emulator import tunnel_codec
    from airflow_provider_polar_mc.emulator.catalog import Column
    from airflow_provider_polar_mc.emulator.types import parse_type

    patch_pyodps_decimal_scale()
    out = io.BytesIO()
    writer = BaseArrowWriter(TableSchema.from_lists(["v"], ["decimal(20,0)"]), out=out)
    writer.write(pa.table({"v": pa.array([2**64 - 1, 0], pa.uint64()).cast(pa.decimal128(20, 0))}))
    writer.close()
    table = tunnel_codec.decode_arrow_block(out.getvalue(), [Column("v", parse_type("decimal(20,0)"))])
    assert table.column("v").to_pylist() == [Decimal(2**64 - 1), Decimal(0)]


def test_arrow_writer_wraps_out_of_range_struct_timestamps_silently():
    """Why out-of-range DATETIMEs become NULL: the writer's struct(sec, nano) path overflows."""
    from odps.tunnel.io.types import TIMESTAMP_STRUCT_TYPE
    from odps.tunnel.io.writer import BaseArrowWriter

    sec = int((dt.datetime(9999, 12, 31) - dt.datetime(1970, 1, 1)).total_seconds())
    struct = pa.StructArray.from_arrays([pa.array([sec]), pa.array([0], pa.int32())], fields=list(TIMESTAMP_STRUCT_TYPE))
    wrapped = BaseArrowWriter._convert_struct_to_timestamp(struct).to_pylist()[0]
    assert wrapped.year != 9999


def test_arrow_writer_leaves_utc_aware_timestamps_alone():
    from odps.tunnel.io.writer import BaseArrowWriter

    aware = pa.array([0], pa.timestamp("ns", tz="UTC"))
    assert BaseArrowWriter._localize_timezone(aware, "Asia/Shanghai") is aware
    naive = pa.array([0], pa.timestamp("ns"))  # what a naive column would suffer on a Shanghai worker
    shifted = BaseArrowWriter._localize_timezone(naive, "Asia/Shanghai")
    assert shifted.cast(pa.int64()).to_pylist() == [-8 * 3600 * 10**9]


# --- speed of the full-load conversion ---------------------------------------------------------------------


def test_snapshot_conversion_is_vectorised():
    rows = 200_000
    columns = {
        plan("bigint(20) unsigned"): pa.array(range(rows), pa.uint64()),
        plan("decimal(12,2)", precision=12, scale=2): pa.array([f"{i}.25" for i in range(rows)]),
        plan("datetime(6)", fsp=6): pa.array([f"2024-01-01 00:00:{i % 60:02d}.123456" for i in range(rows)]),
        plan("timestamp"): pa.array(["2024-01-01 00:00:00"] * rows),
        plan("varchar(20)"): pa.array(["some text"] * rows),
        plan("int(11)"): pa.array(range(rows), pa.int32()),
    }
    started = time.perf_counter()
    for column, array in columns.items():
        convert_snapshot_array(column, array)
    rows_per_second = rows / (time.perf_counter() - started)
    # Measured ~2.5M rows/s for these six columns on 2 cores; the full load needs several hundred thousand.
    assert rows_per_second > 500_000, rows_per_second
