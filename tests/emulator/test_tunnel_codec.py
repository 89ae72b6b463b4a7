"""The emulator's tunnel wire formats against pyodps's own writers and readers, used in-process.

pyodps produces the bytes our decoders must accept (and reject once corrupted); our encoders
produce the bytes pyodps's readers must accept.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import zlib
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pytest
from odps import utils as odps_utils
from odps.config import option_context
from odps.models import Record, TableSchema
from odps.tunnel.io.reader import TunnelArrowReader, TunnelRecordReader
from odps.tunnel.io.stream import CompressOption
from odps.tunnel.io.writer import BufferedArrowWriter, BufferedRecordWriter

from airflow_provider_polar_mc.core.compat import patch_pyodps_decimal_scale
from airflow_provider_polar_mc.emulator.catalog import Column
from airflow_provider_polar_mc.emulator.tunnel_codec import (
    TunnelFormatError,
    UnsupportedEncoding,
    cast_to_columns,
    crc32c,
    crc32c_combine,
    decode_arrow_block,
    decode_record_block,
    decompress_body,
    encode_arrow_stream,
    encode_record_stream,
    stored_schema,
    timestamps_as_struct,
)
from airflow_provider_polar_mc.emulator.types import parse_type

# Every type the provider maps MySQL onto, with edge values. JSON exists only in the record
# format: pyodps has no Arrow mapping for it.
TYPES = {
    "c_bigint": "bigint",
    "c_int": "int",
    "c_smallint": "smallint",
    "c_tinyint": "tinyint",
    "c_bool": "boolean",
    "c_float": "float",
    "c_double": "double",
    "c_string": "string",
    "c_varchar": "varchar(20)",
    "c_char": "char(5)",
    "c_binary": "binary",
    "c_date": "date",
    "c_datetime": "datetime",
    "c_timestamp": "timestamp",
    "c_dec38": "decimal(38,18)",
    "c_dec38_0": "decimal(38,0)",
    "c_dec10": "decimal(10,2)",
}
RECORD_TYPES = {**TYPES, "c_json": "json"}

ROWS = [
    {
        "c_bigint": -(2**63),
        "c_int": 2**31 - 1,
        "c_smallint": -(2**15),
        "c_tinyint": 127,
        "c_bool": True,
        "c_float": 1.5,
        "c_double": -1234.5678901234,
        "c_string": "utf8mb4 😀 emoji, 中文",
        "c_varchar": "naïve ☃",
        "c_char": "abc",
        "c_binary": b"\x00\xff\x10binary\x00",
        "c_date": dt.date(1900, 1, 1),
        "c_datetime": dt.datetime(2024, 2, 29, 23, 59, 59, 999000),
        "c_timestamp": pd.Timestamp("2024-01-02 03:04:05.123456789"),
        "c_dec38": Decimal("12345678901234567890.123456789012345678"),
        "c_dec38_0": Decimal("9" * 38),
        "c_dec10": Decimal("-12345678.90"),
        "c_json": {"k": [1, "два", None]},
    },
    {name: None for name in RECORD_TYPES},
    {
        "c_bigint": 2**63 - 1,
        "c_int": -(2**31),
        "c_smallint": 0,
        "c_tinyint": -128,
        "c_bool": False,
        "c_float": -0.25,
        "c_double": 0.0,
        "c_string": "",
        "c_varchar": "x" * 20,
        "c_char": "",
        "c_binary": b"",
        "c_date": dt.date(2262, 4, 11),
        "c_datetime": dt.datetime(1969, 12, 31, 23, 59, 58, 1000),
        "c_timestamp": pd.Timestamp("1970-01-01 00:00:00.000000001"),
        "c_dec38": Decimal("-0.000000000000000001"),
        "c_dec38_0": Decimal("-" + "9" * 38),
        "c_dec10": Decimal("0.01"),
        "c_json": "plain string",
    },
]


@pytest.fixture(autouse=True)
def _pyodps_in_utc():
    """pyodps reads naive datetimes in options.local_timezone; pin it to UTC so that values are
    comparable whatever the machine's TZ (the suite is also run with TZ=Asia/Shanghai)."""
    from odps import options

    saved = options.local_timezone
    options.local_timezone = False
    yield
    options.local_timezone = saved


class _Response:
    headers: dict[str, str] = {}


def _columns(types: dict[str, str]) -> list[Column]:
    return [Column(name, parse_type(t)) for name, t in types.items()]


def _odps_schema(types: dict[str, str]) -> TableSchema:
    return TableSchema.from_lists(list(types), list(types.values()))


def pyodps_record_block(types: dict[str, str], rows: list[dict], compress_option=None) -> bytes:
    """The body pyodps's BufferedRecordWriter sends for one block."""
    schema = _odps_schema(types)
    sent: list[bytes] = []
    writer = BufferedRecordWriter(
        schema, lambda block_id, data: (sent.append(data), _Response())[1], compress_option=compress_option
    )
    for row in rows:
        writer.write(Record(schema=schema, values=[row[name] for name in types]))
    writer.close()
    assert len(sent) == 1
    return sent[0]


def pyodps_arrow_block(types: dict[str, str], data, compress_option=None) -> bytes:
    """The body pyodps's BufferedArrowWriter sends for one block."""
    sent: list[bytes] = []
    writer = BufferedArrowWriter(
        _odps_schema(types), lambda block_id, body: sent.append(body), compress_option=compress_option
    )
    writer.write(data)
    writer.close()
    assert len(sent) == 1
    return sent[0]


def pyodps_record_reader(types: dict[str, str], body: bytes, columns=None) -> list[list]:
    def stream_creator(cursor, row_number=None, raw_size=None):
        return io.BytesIO(body) if cursor == 0 else None

    with TunnelRecordReader(_odps_schema(types), stream_creator, columns=columns) as reader:
        return [record.values for record in reader]


def pyodps_arrow_reader(types: dict[str, str], body: bytes, timestamp_as_struct: bool = False) -> pa.Table:
    reader = TunnelArrowReader(
        _odps_schema(types), lambda pos: io.BytesIO(body), timestamp_as_struct=timestamp_as_struct
    )
    return reader.read()


def _to_ms(value: dt.datetime) -> int:
    # pyodps interprets naive datetimes in its local time zone; compare on its own scale
    return odps_utils.MillisecondsConverter().to_milliseconds(value)


def _expected_storage_values(name: str, value):
    """What a decoded Arrow column holds for a value pyodps wrote."""
    if value is None:
        return None
    kind = RECORD_TYPES[name]
    if kind == "datetime":
        return _to_ms(value)
    if kind == "timestamp":
        return value.value  # nanoseconds
    if kind == "json":
        return odps_json_text(value)
    return value


def odps_json_text(value) -> str:
    import json

    return json.dumps(value)


def _decoded_as_comparable(table: pa.Table) -> list[dict]:
    rows = []
    cast = {}
    for name in table.column_names:
        kind = RECORD_TYPES[name]
        col = table.column(name)
        cast[name] = col.cast(pa.int64()).to_pylist() if kind in ("datetime", "timestamp") else col.to_pylist()
    for i in range(table.num_rows):
        rows.append({name: cast[name][i] for name in table.column_names})
    return rows


# -- CRC32C ---------------------------------------------------------------------------------------
def test_crc32c_matches_the_standard_check_value_and_combines():
    assert crc32c(b"123456789") == 0xE3069283
    a, b = os.urandom(1000), os.urandom(65536)
    assert crc32c(b, crc32c(a)) == crc32c(a + b)
    assert crc32c_combine(crc32c(a), crc32c(b), len(b)) == crc32c(a + b)


def test_crc32c_matches_pyodps_checksum():
    from odps.tunnel.checksum import Checksum

    checksum = Checksum()
    checksum.update(b"hello tunnel")
    assert crc32c(b"hello tunnel") == checksum.getvalue()


# -- record format --------------------------------------------------------------------------------
def test_record_block_from_pyodps_decodes_every_type_exactly():
    body = pyodps_record_block(RECORD_TYPES, ROWS)
    table = decode_record_block(body, _columns(RECORD_TYPES))
    assert table.schema == stored_schema(_columns(RECORD_TYPES))
    expected = [{name: _expected_storage_values(name, row[name]) for name in RECORD_TYPES} for row in ROWS]
    assert _decoded_as_comparable(table) == expected


def test_record_block_of_many_rows():
    types = {"id": "bigint", "name": "string"}
    rows = [{"id": i, "name": f"row {i} 😀"} for i in range(10_000)]
    table = decode_record_block(pyodps_record_block(types, rows), _columns(types))
    assert table.column("id").to_pylist() == list(range(10_000))
    assert table.column("name")[9_999].as_py() == "row 9999 😀"


def test_record_encoding_is_read_back_by_pyodps():
    columns = _columns(RECORD_TYPES)
    table = decode_record_block(pyodps_record_block(RECORD_TYPES, ROWS), columns)
    body = b"".join(encode_record_stream(table, columns, rows_per_piece=2))
    assert pyodps_record_reader(RECORD_TYPES, body) == [[row[name] for name in RECORD_TYPES] for row in ROWS]


def test_record_encoding_numbers_fields_by_requested_columns():
    types = {"a": "bigint", "b": "string", "c": "double"}
    table = pa.table({"a": [1, 2], "b": ["x", None], "c": [0.5, 1.5]})
    picked = [Column("c", parse_type("double")), Column("a", parse_type("bigint"))]
    body = b"".join(encode_record_stream(table, picked))
    assert pyodps_record_reader(types, body, columns=["c", "a"]) == [[0.5, 1], [1.5, 2]]


def test_empty_record_stream_is_valid_for_pyodps():
    types = {"a": "bigint"}
    body = b"".join(encode_record_stream(pa.table({"a": pa.array([], pa.int64())}), _columns(types)))
    assert pyodps_record_reader(types, body) == []


@pytest.mark.parametrize("position", ["first_value", "middle", "record_checksum", "footer"])
def test_corrupted_record_block_is_rejected(position):
    types = {"id": "bigint", "name": "string"}
    body = bytearray(pyodps_record_block(types, [{"id": i, "name": f"name-{i}"} for i in range(50)]))
    index = {"first_value": 2, "middle": len(body) // 2, "record_checksum": None, "footer": len(body) - 2}[position]
    if index is None:
        index = body.index(b"name-0") + len(b"name-0") + 5  # inside the first record's checksum varint
    body[index] ^= 0x01
    with pytest.raises(TunnelFormatError):
        decode_record_block(bytes(body), _columns(types))


def test_truncated_record_block_is_rejected():
    types = {"id": "bigint"}
    body = pyodps_record_block(types, [{"id": i} for i in range(10)])
    for cut in (1, len(body) // 2, len(body) - 1):
        with pytest.raises(TunnelFormatError):
            decode_record_block(body[:cut], _columns(types))


def test_record_block_with_more_fields_than_the_schema_is_rejected():
    body = pyodps_record_block({"a": "bigint", "b": "bigint"}, [{"a": 1, "b": 2}])
    with pytest.raises(TunnelFormatError, match="field number 2"):
        decode_record_block(body, _columns({"a": "bigint"}))


def test_record_block_with_wrong_types_is_rejected():
    body = pyodps_record_block({"a": "string"}, [{"a": "text"}])
    with pytest.raises(TunnelFormatError, match="wire type"):
        decode_record_block(body, _columns({"a": "bigint"}))


def test_value_out_of_range_for_the_column_is_rejected():
    body = pyodps_record_block({"a": "bigint"}, [{"a": 300}])
    with pytest.raises(TunnelFormatError, match="out of range"):
        decode_record_block(body, _columns({"a": "tinyint"}))


def test_varchar_longer_than_declared_is_rejected():
    body = pyodps_record_block({"a": "string"}, [{"a": "x" * 11}])
    with pytest.raises(TunnelFormatError, match="exceeds varchar"):
        decode_record_block(body, _columns({"a": "varchar(10)"}))


# -- Arrow tunnel format --------------------------------------------------------------------------
# The emulator's client is the provider, which always fixes pyodps's DECIMAL(p,0) Arrow mapping.
patch_pyodps_decimal_scale()
ARROW_ROWS = ROWS


def _arrow_input() -> pa.Table:
    columns = _columns(TYPES)
    arrays = []
    for column in columns:
        values = [_expected_storage_values(column.name, row[column.name]) for row in ARROW_ROWS]
        if column.type.name in ("DATETIME", "TIMESTAMP"):
            arrays.append(pa.array(values, pa.int64()).cast(column.type.arrow))
        else:
            arrays.append(pa.array(values, column.type.arrow))
    return pa.Table.from_arrays(arrays, schema=stored_schema(columns))


def test_arrow_block_from_pyodps_decodes_every_type_exactly():
    source = _arrow_input()
    table = decode_arrow_block(pyodps_arrow_block(TYPES, source), _columns(TYPES))
    assert table.equals(source)


def test_arrow_block_from_a_pandas_dataframe():
    frame = pd.DataFrame({"id": [1, 2, None], "name": ["a", None, "😀"]})
    types = {"id": "bigint", "name": "string"}
    table = decode_arrow_block(pyodps_arrow_block(types, frame), _columns(types))
    assert table.to_pylist() == [{"id": 1, "name": "a"}, {"id": 2, "name": None}, {"id": None, "name": "😀"}]


def test_large_arrow_block_spans_many_chunks():
    types = {"id": "bigint", "payload": "string"}
    source = pa.table({"id": pa.array(range(200_000), pa.int64()), "payload": [f"p{i}" for i in range(200_000)]})
    body = pyodps_arrow_block(types, source)
    assert len(body) > 10 * 65536
    assert decode_arrow_block(body, _columns(types)).equals(source)


@pytest.mark.parametrize("where", ["chunk_size", "first_chunk", "last_chunk", "total_checksum"])
def test_corrupted_arrow_block_is_rejected(where):
    types = {"id": "bigint", "payload": "string"}
    source = pa.table({"id": pa.array(range(50_000), pa.int64()), "payload": [f"p{i}" for i in range(50_000)]})
    body = bytearray(pyodps_arrow_block(types, source))
    index = {"chunk_size": 3, "first_chunk": 100, "last_chunk": len(body) - 10, "total_checksum": len(body) - 1}[where]
    body[index] ^= 0x40
    with pytest.raises(TunnelFormatError):
        decode_arrow_block(bytes(body), _columns(types))


def test_truncated_arrow_block_is_rejected():
    types = {"id": "bigint"}
    body = pyodps_arrow_block(types, pa.table({"id": pa.array(range(100_000), pa.int64())}))
    for cut in (3, 6, 70_000, len(body) - 1):
        with pytest.raises(TunnelFormatError):
            decode_arrow_block(body[:cut], _columns(types))


def test_arrow_block_with_other_types_than_the_session_is_rejected():
    body = pyodps_arrow_block({"a": "string"}, pa.table({"a": ["x" * 100]}))
    with pytest.raises(TunnelFormatError):
        decode_arrow_block(body, _columns({"a": "bigint", "b": "bigint"}))


def test_arrow_encoding_is_read_back_by_pyodps():
    source = _arrow_input()
    wire = cast_to_columns(source, _columns(TYPES))
    body = b"".join(encode_arrow_stream(wire.to_batches(max_chunksize=1), chunk_size=256))
    assert pyodps_arrow_reader(TYPES, body).cast(source.schema).equals(source)


def test_arrow_encoding_of_no_rows_is_read_back_by_pyodps():
    types = {"a": "bigint"}
    assert pyodps_arrow_reader(types, b"".join(encode_arrow_stream([]))).num_rows == 0


def test_arrow_encoding_with_chunks_that_end_exactly_on_a_batch():
    types = {"a": "bigint"}
    batch = pa.record_batch([pa.array(range(64), pa.int64())], names=["a"])
    size = len(batch.serialize())
    body = b"".join(encode_arrow_stream([batch, batch], chunk_size=size))
    assert pyodps_arrow_reader(types, body).column("a").to_pylist() == list(range(64)) * 2


def test_instance_tunnel_timestamps_travel_as_struct():
    types = {"ts": "timestamp", "d": "datetime"}
    nanos = [-1, 0, 1_700_000_000_123_456_789, None]
    source = pa.table(
        {
            "ts": pa.array(nanos, pa.int64()).cast(pa.timestamp("ns")),
            "d": pa.array([0, 1, 2, None], pa.int64()).cast(pa.timestamp("ms")),
        }
    )
    wire = timestamps_as_struct(source)
    assert wire.column("ts").to_pylist()[0] == {"sec": -1, "nano": 999_999_999}
    body = b"".join(encode_arrow_stream(wire.to_batches()))
    read = pyodps_arrow_reader(types, body, timestamp_as_struct=True)
    assert read.column("ts").cast(pa.int64()).to_pylist() == nanos


# -- compression ----------------------------------------------------------------------------------
def test_deflate_body_from_pyodps_is_decompressed():
    types = {"id": "bigint"}
    option = CompressOption(CompressOption.CompressAlgorithm.ODPS_ZLIB)
    body = pyodps_record_block(types, [{"id": 7}], compress_option=option)
    data = decompress_body(body, option.algorithm.get_encoding())
    assert decode_record_block(data, _columns(types)).column("id").to_pylist() == [7]


@pytest.mark.parametrize("encoding, codec", [("zstd", "zstd"), ("x-lz4-frame", "lz4"), ("x-odps-lz4-frame", "lz4")])
def test_zstd_and_lz4_frame_bodies_are_decompressed(encoding, codec):
    raw = os.urandom(1000) * 5
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, codec) as out:
        out.write(raw)
    assert decompress_body(sink.getvalue().to_pybytes(), encoding) == raw


def test_unsupported_or_corrupt_compression_fails_loudly():
    with pytest.raises(UnsupportedEncoding, match="x-snappy-framed"):
        decompress_body(b"anything", "x-snappy-framed")
    with pytest.raises(TunnelFormatError):
        decompress_body(zlib.compress(b"abc")[:-3] + b"xyz", "deflate")
    assert decompress_body(b"plain", None) == b"plain"
    assert decompress_body(b"plain", "identity") == b"plain"


# -- TIMESTAMP_NTZ over MaxCompute's whole range ----------------------------------------------------
NTZ_EDGES = [
    dt.datetime(1, 1, 1),
    dt.datetime(1000, 1, 1, 0, 0, 0, 1),
    dt.datetime(1677, 9, 21, 0, 12, 43, 145225),  # the first microsecond inside timestamp(ns)
    dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
    dt.datetime(2262, 4, 11, 23, 47, 16, 854775),  # the last one inside
    dt.datetime(9999, 12, 31, 23, 59, 59, 999999),
    None,
]


def test_record_block_carries_timestamp_ntz_over_the_whole_range():
    """The record format sends seconds + nanoseconds, so 0001..9999 arrive exactly (stored at microseconds)."""
    types = {"v": "timestamp_ntz"}
    # pyodps refuses pre-1928 values unless told (the LMT offsets it guards against do not apply
    # to a wall clock); the provider's record writer sets the same option (core/compat.py)
    with option_context({"allow_antique_date": True}):
        body = pyodps_record_block(types, [{"v": value} for value in NTZ_EDGES])
    table = decode_record_block(body, _columns(types))
    assert table.schema.field("v").type == pa.timestamp("us")
    assert table.column("v").to_pylist() == NTZ_EDGES


def test_record_block_with_sub_microsecond_timestamp_ntz_is_refused_not_rounded():
    types = {"v": "timestamp_ntz"}
    body = pyodps_record_block(types, [{"v": pd.Timestamp("2020-01-01 00:00:00.000000001")}])
    with pytest.raises(TunnelFormatError, match="keeps microseconds"):
        decode_record_block(body, _columns(types))


def test_arrow_block_timestamp_ntz_is_stored_at_microseconds():
    types = {"v": "timestamp_ntz"}
    inside = [value for value in NTZ_EDGES[2:5]] + [None]
    table = decode_arrow_block(pyodps_arrow_block(types, pa.table({"v": pa.array(inside, pa.timestamp("us"))})), _columns(types))
    assert table.column("v").to_pylist() == inside
    with pytest.raises(TunnelFormatError, match="keeps microseconds"):
        decode_arrow_block(
            pyodps_arrow_block(types, pa.table({"v": pa.array([1], pa.int64()).cast(pa.timestamp("ns"))})),
            _columns(types),
        )


def test_stored_timestamp_ntz_goes_out_whole_by_record_and_struct_but_never_wraps_on_the_arrow_tunnel():
    types = {"v": "timestamp_ntz"}
    columns = _columns(types)
    stored = pa.table({"v": pa.array(NTZ_EDGES, pa.timestamp("us"))})
    # pyodps's record reader builds pandas nanosecond Timestamps: inside 1677..2262 it returns the
    # values exactly; outside it raises on the client (the README's "Reading the replica").
    # (It adds the nanoseconds to a Timestamp of the whole seconds, so 1677-09-21 00:12:43.x fails too.)
    inside = stored.slice(3, 2)
    with option_context({"allow_antique_date": True}):
        read = [row[0] for row in pyodps_record_reader(types, b"".join(encode_record_stream(inside, columns)))]
        assert read == [pd.Timestamp(value) for value in NTZ_EDGES[3:5]]
        with pytest.raises(pd.errors.OutOfBoundsDatetime):
            pyodps_record_reader(types, b"".join(encode_record_stream(stored.slice(5, 1), columns)))
    wire = timestamps_as_struct(stored)
    assert wire.column("v").to_pylist()[-2] == {"sec": 253402300799, "nano": 999_999_000}
    with pytest.raises(TunnelFormatError, match="outside 1677-09-21 .. 2262-04-11"):
        cast_to_columns(stored, columns)
    assert cast_to_columns(stored.slice(2, 3), columns).column("v").to_pylist() == [
        pd.Timestamp(value) for value in NTZ_EDGES[2:5]
    ]
