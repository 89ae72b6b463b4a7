"""MySQL 8's binary JSON without a MySQL 8 server (docs/mysql-binary-json.md).

Hand-written byte strings from the format's documentation (``sql/json_binary.h``, and MySQL's
``decimal2bin`` example for DECIMAL), then a property test: generated documents are encoded by the
test-side encoder (tests/mysql_json_encoder.py) and decoded by the provider's decoder and by
mysql-replication 1.0.17's own parser (its ``BinLogPacketWrapper.read_binary_json``, fed a real
packet object built from bytes), both turned into text by the provider's one conversion
(``values.convert_binlog_values`` for a JSON column). Where the library decodes differently from the
format, the divergence is asserted, not hidden (``test_library_divergence_*``).
"""

from __future__ import annotations

import datetime as dt
import os
import struct
import types
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pymysql.protocol import MysqlPacket
from pymysqlreplication.constants import FIELD_TYPE
from pymysqlreplication.packet import BinLogPacketWrapper

from airflow_provider_polar_mc.core.binlog.json_binary import decode_binary_json
from airflow_provider_polar_mc.core.binlog.rows_decoder import columnar_decoder, table_decoder
from airflow_provider_polar_mc.core.model import ColumnPlan, SourceColumn
from airflow_provider_polar_mc.core.schema_plan import source_column_type
from airflow_provider_polar_mc.core.typemap import map_type
from airflow_provider_polar_mc.core.values import JSON_NULL_SOURCE, canonical_json, convert_binlog_values
from tests.mysql_json_encoder import (
    FIELD_NEWDECIMAL,
    INT16,
    INT32,
    INT64,
    UINT16,
    UINT32,
    UINT64,
    Int,
    Opaque,
    date_opaque,
    datetime_fields_opaque,
    datetime_opaque,
    decimal_opaque,
    encode_binary_json,
    expected_document,
    time_opaque,
    timestamp_opaque,
    unsigned,
)

_COLUMN = SourceColumn("j", 1, "json", "json", True, None, None, None, None)
JSON_PLAN = ColumnPlan(_COLUMN, "j", map_type(source_column_type(_COLUMN)))


def provider_text(value: bytes) -> str | None:
    """The destination text of one JSON value through the provider: its decoder, the row decoder's
    none source for a JSON null document, then ``convert_binlog_values``."""
    document = decode_binary_json(value)
    source = JSON_NULL_SOURCE if document is None else None
    return convert_binlog_values(JSON_PLAN, [document], [source]).array.to_pylist()[0]


def library_value(value: bytes, length_size: int = 4) -> Any:
    """What mysql-replication decodes for a JSON column's stored value: its packet wrapper over a
    pymysql packet holding an event header (of no event class asked for) and the length-prefixed value."""
    body = len(value).to_bytes(length_size, "little") + value
    header = b"\x00" + struct.pack("<IBIIIH", 0, 0, 0, 19 + len(body), 0, 0)
    connection = types.SimpleNamespace(charset="utf8mb4")
    wrapper = BinLogPacketWrapper(MysqlPacket(header + body, "utf8"), {}, connection, None, False, frozenset(),
                                  None, None, None, None, False, False, False, False, False)  # fmt: skip
    assert wrapper.event is None
    return wrapper.read_binary_json(length_size, False)


def library_text(value: bytes) -> str | None:
    return convert_binlog_values(JSON_PLAN, [library_value(value)]).array.to_pylist()[0]


def library_outcome(value: bytes) -> str | None:
    try:
        return library_text(value)
    except Exception as error:  # noqa: BLE001 - the outcome is compared, whatever it is
        return f"raised {type(error).__name__}: {error}"


# --- hand-written bytes from the documentation ------------------------------------------------------

# (bytes, the document MySQL's text shows, the encoder's input)
EXAMPLES = [
    pytest.param(  # small object: count 1, size 12, key entry (11, 1), int16 1 inlined, key "a"
        "00 0100 0c00 0b00 0100 05 0100 61", {"a": 1}, {"a": 1}, id="small-object-inline-int16"
    ),
    pytest.param(  # small array of the three literals, all inlined
        "02 0300 0d00 04 0100 04 0200 04 0000", [True, False, None], [True, False, None], id="inline-literals"
    ),
    pytest.param(  # [[1], "ab"]: a nested small array at offset 10, then the string at offset 17
        "02 0200 1400 02 0a00 0c 1100 0100 0700 05 0100 02 6162", [[1], "ab"], [[1], "ab"], id="nested-array"
    ),
    pytest.param(  # large object: uint32 count and size, key entry (19, 1), int32 70000 inlined (large only)
        "01 01000000 14000000 13000000 0100 07 70110100 6b", {"k": 70000}, {"k": 70000}, id="large-object"
    ),
    pytest.param(  # the same small: the int32 is not inlined but stored at offset 12
        "00 0100 1000 0b00 0100 07 0c00 6b 70110100", {"k": 70000}, {"k": 70000}, id="small-object-int32"
    ),
    pytest.param(  # keys sorted by length, then bytes: a, c, ab, bb
        "00 0400 2600 2000 0100 2100 0100 2200 0200 2400 0200 05 0200 05 0300 05 0400 05 0100 61 63 6162 6262",
        {"a": 2, "c": 3, "ab": 4, "bb": 1},
        {"bb": 1, "a": 2, "c": 3, "ab": 4},
        id="key-order",
    ),
    pytest.param(  # DECIMAL(14,4) 1234567890.1234: decimal2bin's own example, 81 0D FB 38 D2 04 D2
        "0f f6 09 0e04 810dfb38d204d2",
        1234567890.1234,
        decimal_opaque(Decimal("1234567890.1234")),
        id="decimal",
    ),
    pytest.param(  # and its negative: every byte inverted, 7E F2 04 C7 2D FB 2D
        "0f f6 09 0e04 7ef204c72dfb2d",
        -1234567890.1234,
        decimal_opaque(Decimal("-1234567890.1234")),
        id="negative-decimal",
    ),
    pytest.param(  # DATETIME: int64 ((2026 * 13 + 11) << 5 | 30) << 17 | 12 << 12 | 34 << 6 | 56, << 24 + 123456
        "0f 0c 08 40e201b8c87cbb19",
        "2026-11-30 12:34:56.123456",
        datetime_opaque(dt.datetime(2026, 11, 30, 12, 34, 56, 123456)),
        id="datetime",
    ),
    pytest.param(  # TIME -838:59:59.000001: the packed value negated
        "0f 0b 08 ffffff0491cbffff",
        "-838:59:59.000001",
        time_opaque(-dt.timedelta(hours=838, minutes=59, seconds=59, microseconds=1)),
        id="negative-time",
    ),
    pytest.param(  # any other opaque value (here VARCHAR, type 15): MySQL's base64 text
        "0f 0f 02 cafe", "base64:type15:yv4=", Opaque(15, b"\xca\xfe"), id="other-opaque"
    ),
    pytest.param("0c 03 c3a978", "éx", "éx", id="string"),
    pytest.param("0a ffffffffffffffff", 2**64 - 1, 2**64 - 1, id="uint64"),
    pytest.param("0b 000000000000f83f", 1.5, 1.5, id="double"),
    pytest.param("04 00", None, None, id="json-null-document"),
]


@pytest.mark.parametrize(("hex_bytes", "shown", "doc"), EXAMPLES)
def test_documented_bytes(hex_bytes: str, shown: Any, doc: Any):
    data = bytes.fromhex(hex_bytes)
    large = True if data[0] in (0x01, 0x03) else None
    assert encode_binary_json(doc, large=large) == data  # the encoder writes what the documentation says
    decoded = decode_binary_json(data)
    assert decoded == (Decimal(str(shown)) if isinstance(doc, Opaque) and doc.field_type == FIELD_NEWDECIMAL
                       else shown)  # fmt: skip
    assert provider_text(data) == canonical_json(shown)


def test_integer_widths_and_bounds():
    for value, kind, size in [(-(2**15), INT16, 2), (2**16 - 1, UINT16, 2), (-(2**31), INT32, 4),
                              (2**32 - 1, UINT32, 4), (2**63 - 1, INT64, 8), (2**64 - 1, UINT64, 8)]:  # fmt: skip
        data = encode_binary_json(Int(value, kind))
        assert data[0] == kind and len(data) == 1 + size
        assert decode_binary_json(data) == value == library_value(data)
    assert unsigned(5).kind == UINT16 and unsigned(2**20).kind == UINT32 and unsigned(2**40).kind == UINT64


def test_long_strings_take_a_multi_byte_length():
    for length, prefix in [
        (127, "7f"),
        (128, "8001"),
        (16383, "ff7f"),
        (16384, "808001"),
        (70_000, "f0a204"),
    ]:
        data = encode_binary_json("é" * (length // 2) + "x" * (length % 2))
        assert data[1 : 1 + len(prefix) // 2].hex() == prefix
        assert len(decode_binary_json(data).encode()) == length


def test_a_document_beyond_64_kib_is_large_with_small_children():
    doc = {"big": "x" * 70_000, "n": [1, "two"], "m": {"k": 70000}}
    data = encode_binary_json(doc)
    assert data[0] == 0x01  # large object ...
    count, size = struct.unpack_from("<II", data, 1)
    assert (count, size) == (3, len(data) - 1)
    entries = 1 + 8 + 3 * 6  # ... whose children fit the small form
    assert [data[entries + 5 * i] for i in range(3)] == [0x00, 0x02, 0x0C]  # "m", "n", "big"
    assert decode_binary_json(data) == doc
    assert provider_text(data) == library_text(data) == canonical_json(doc)


def test_empty_value_is_json_null():
    assert decode_binary_json(b"") is None
    assert provider_text(b"") == "null"


def test_decimal_text_follows_mysql():
    """A DECIMAL's text parses to an integer at scale 0 and to a double otherwise, on both paths."""
    assert provider_text(encode_binary_json([decimal_opaque(Decimal("12"))])) == "[12]"
    assert provider_text(encode_binary_json([decimal_opaque(Decimal("12.50"))])) == "[12.5]"
    assert decode_binary_json(encode_binary_json(decimal_opaque(Decimal("0.001"), 20, 5))) == Decimal(
        "0.00100"
    )


def test_temporal_opaque_text():
    cases = [
        (date_opaque(dt.date(1000, 1, 1)), "1000-01-01"),
        (datetime_opaque(dt.datetime(9999, 12, 31, 23, 59, 59, 999999)), "9999-12-31 23:59:59.999999"),
        (datetime_fields_opaque(0, 0, 0, 0, 0, 0, 0), "0000-00-00 00:00:00.000000"),
        (timestamp_opaque(dt.datetime(2038, 1, 19, 3, 14, 7)), "2038-01-19 03:14:07.000000"),
        (time_opaque(dt.timedelta(0)), "00:00:00.000000"),
        (time_opaque(dt.timedelta(hours=100, seconds=1, microseconds=5)), "100:00:01.000005"),
    ]
    for opaque, text in cases:
        assert decode_binary_json(encode_binary_json(opaque)) == text == opaque.expected


@pytest.mark.parametrize(
    ("hex_bytes", "message"),
    [
        ("", None),
        ("07", "needs 4 bytes"),
        ("0d 00", "unknown value type 0x0d"),
        ("04 07", "unknown literal 0x07 at offset 1"),
        ("00 0100 0c00 0b00 0100 05 0100", "claims 12 bytes"),  # the key is missing
        ("02 0100 0700 0c 0900", "value offset 9 outside the array at offset 1"),
        ("02 0900 0700 04 0100", "9 entries do not fit"),
        ("0c 80", "unterminated length"),
        ("0c 05 6162", "string at offset 2 needs 5 bytes"),
        ("0c 02 c328", "invalid UTF-8 in the string at offset 2"),
        ("0f 0c 02 0000", "temporal value at offset 3 has 2 bytes"),
        ("0f f6 03 0402 80", "DECIMAL(4,2) at offset 3 has 1 digit bytes"),
    ],
)
def test_malformed_data_names_the_offset(hex_bytes: str, message: str | None):
    data = bytes.fromhex(hex_bytes)
    if message is None:
        assert decode_binary_json(data) is None
        return
    with pytest.raises(ValueError, match="binary JSON: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        decode_binary_json(data)


def test_bounds_inside_a_larger_buffer():
    value = encode_binary_json({"a": [1, "b"]})
    buffer = b"\xff" * 3 + value + b"\xee" * 5
    assert decode_binary_json(buffer, 3, 3 + len(value)) == {"a": [1, "b"]}
    with pytest.raises(ValueError, match="offset"):
        decode_binary_json(buffer, 3, 2 + len(value))  # one byte short: the string does not fit
    with pytest.raises(ValueError, match="outside"):
        decode_binary_json(buffer, 3, len(buffer) + 1)


# --- the property test ---------------------------------------------------------------------------------

_CHARACTERS = st.characters(blacklist_categories=("Cs",))  # utf8mb4: any code point but surrogates
_KEYS = st.text(_CHARACTERS, max_size=8)
_INT_BOUNDS = [-(2**15), 2**15 - 1, 2**15, -(2**15) - 1, -(2**31), 2**31 - 1, 2**31, -(2**63), 2**63 - 1, 2**63,
               2**64 - 1, 0, -1]  # fmt: skip


def _micros_to_timedelta(micros: int) -> dt.timedelta:
    return dt.timedelta(microseconds=micros)


_INTEGERS = st.one_of(
    st.integers(-(2**15), 2**15 - 1),
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from(_INT_BOUNDS),
    st.integers(0, 2**64 - 1).map(unsigned),
    st.builds(Int, st.integers(-(2**15), 2**15 - 1), st.sampled_from([INT32, INT64])),  # wider than needed
)
_DECIMALS = st.builds(
    lambda unscaled, scale, extra: decimal_opaque(Decimal(f"{unscaled}E-{scale}"), None if extra is None else
                                                  max(len(str(abs(unscaled))), scale + 1) + extra, scale),
    st.integers(-(10**35) + 1, 10**35 - 1), st.integers(0, 30), st.one_of(st.none(), st.integers(0, 9)),
).filter(lambda o: o.payload[0] <= 65)  # fmt: skip
_TEMPORALS = st.one_of(
    st.datetimes(dt.datetime(1000, 1, 1)).map(datetime_opaque),
    st.datetimes(dt.datetime(1970, 1, 1, 0, 0, 1), dt.datetime(2038, 1, 19, 3, 14, 7)).map(timestamp_opaque),
    st.dates(dt.date(1000, 1, 1)).map(date_opaque),
    st.integers(-(839 * 3600 * 10**6 - 1), 839 * 3600 * 10**6 - 1).map(_micros_to_timedelta).map(time_opaque),
)
_OTHER_OPAQUE = st.builds(
    Opaque, st.sampled_from([15, 16, 249, 250, 251, 252, 253, 254]), st.binary(max_size=80)
)
# mysql-replication reads these scalars as MySQL does; the temporal and other opaque values it does not.
COMPARABLE_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    _INTEGERS,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(_CHARACTERS, max_size=12),
    st.text(_CHARACTERS, min_size=64, max_size=200),  # > 127 bytes often: a two-byte length
    _DECIMALS,
)
SCALARS = st.one_of(COMPARABLE_SCALARS, _TEMPORALS, _OTHER_OPAQUE)


def _nested(depth: int, scalars: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Documents nested up to ``depth`` containers: at each level an object, a list or a scalar
    (one_of alone would weigh each of the scalars' branches like a container)."""
    if depth == 0:
        return scalars
    child = _nested(depth - 1, scalars)
    choices = (st.dictionaries(_KEYS, child, max_size=4), st.lists(child, max_size=4), scalars)
    return st.sampled_from([0, 0, 1, 2]).flatmap(choices.__getitem__)


# Half the documents without the values the library is known to misread, so it is compared on them.
DOCUMENTS = st.one_of(_nested(4, COMPARABLE_SCALARS), _nested(4, SCALARS))


def _library_diverges(doc: Any, top: bool = True) -> bool:
    """True when mysql-replication 1.0.17 is known to decode ``doc`` differently (see the tests below)."""
    if top and doc is None:
        return True
    if isinstance(doc, dict):
        return any(_library_diverges(value, False) for value in doc.values())
    if isinstance(doc, list):
        return any(_library_diverges(value, False) for value in doc)
    return isinstance(doc, Opaque) and doc.field_type != FIELD_NEWDECIMAL


# 500 fixed examples per run (about 7 s); POLAR_MC_JSON_EXAMPLES=5000 for a deeper run.
@settings(max_examples=int(os.environ.get("POLAR_MC_JSON_EXAMPLES", "500")), derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(doc=DOCUMENTS, large=st.sampled_from([None, None, True]))
def test_both_decoders_give_the_documents_text(doc: Any, large: bool | None):
    data = encode_binary_json(doc, large=large)
    expected = canonical_json(expected_document(doc))
    event(f"top-level type 0x{data[0]:02x}")  # shown by --hypothesis-show-statistics
    assert provider_text(data) == expected
    event("library: known divergence" if _library_diverges(doc) else "library: compared")
    if _library_diverges(doc):
        assert library_outcome(data) != expected  # a known divergence: still there (else update the docs)
    else:
        assert library_text(data) == expected


# --- mysql-replication 1.0.17's divergences from the format -------------------------------------------

DIVERGENCES = [
    pytest.param(date_opaque(dt.date(2026, 11, 30)), dt.datetime(2026, 11, 30), id="date-as-datetime-object"),
    pytest.param(
        datetime_opaque(dt.datetime(2026, 11, 30, 12, 34, 56, 5)),
        dt.datetime(2026, 11, 30, 12, 34, 56, 5),
        id="datetime-as-object",
    ),
    pytest.param(time_opaque(dt.timedelta(hours=-1)), dt.time(1), id="negative-time-loses-its-sign"),
    pytest.param(time_opaque(dt.timedelta(hours=30)), ValueError, id="time-beyond-24h-raises"),
    pytest.param(datetime_fields_opaque(0, 0, 0, 0, 0, 0, 0), "0000-00-00 00:00:00", id="zero-datetime-text"),
    pytest.param(timestamp_opaque(dt.datetime(2026, 1, 2, 3, 4, 5)), str, id="timestamp-as-raw-bytes-text"),
    pytest.param(Opaque(15, b"\xca\xfe"), "", id="other-opaque-bytes-dropped"),
]


@pytest.mark.parametrize(("opaque", "library_gives"), DIVERGENCES)
def test_library_divergence_opaque_values_pinned(opaque: Opaque, library_gives: Any):
    """What mysql-replication 1.0.17 returns for opaque values other than DECIMAL (none of it the
    text MySQL shows, most of it not JSON-serialisable): pinned, so a fixed library shows up here."""
    data = encode_binary_json(opaque)
    if library_gives is ValueError:
        with pytest.raises(ValueError):
            library_value(data)
    elif library_gives is str:
        assert isinstance(library_value(data), str) and library_value(data) != opaque.expected
    else:
        assert library_value(data) == library_gives
    assert decode_binary_json(data) == expected_document(opaque)


@pytest.mark.xfail(strict=True, reason="mysql-replication 1.0.17 decodes opaque DATE/TIME/DATETIME/TIMESTAMP "
                   "and other opaque values to Python objects or raw text, not MySQL's text")  # fmt: skip
@pytest.mark.parametrize("opaque", [p.values[0] for p in DIVERGENCES], ids=[p.id for p in DIVERGENCES])
def test_library_divergence_opaque_text(opaque: Opaque):
    data = encode_binary_json([opaque])
    assert library_text(data) == provider_text(data)


@pytest.mark.xfail(strict=True, reason="mysql-replication 1.0.17 returns None for an empty value and for a "
                   "JSON null document, the same as SQL NULL; MySQL reads both as JSON null")  # fmt: skip
@pytest.mark.parametrize("data", [b"", b"\x04\x00"], ids=["empty-value", "null-document"])
def test_library_divergence_json_null_document(data: bytes):
    assert library_text(data) == provider_text(data) == "null"


# --- the provider's row decoder reads JSON columns -------------------------------------------------------


def _column(name: str, kind: int, **attributes: Any) -> types.SimpleNamespace:
    return types.SimpleNamespace(name=name, type=kind, unsigned=False, character_set_name=None, **attributes)


def test_row_decoder_reads_json_columns():
    table = types.SimpleNamespace(
        columns=[_column("id", FIELD_TYPE.LONG), _column("j", FIELD_TYPE.JSON, length_size=4)]
    )
    decoder = table_decoder(table)
    assert decoder is not None  # JSON tables no longer fall back to the library's event.rows
    docs = [{"a": [1, datetime_opaque(dt.datetime(2026, 1, 2, 3, 4, 5))]}, None]
    image = b""
    for number, doc in enumerate(docs):
        value = encode_binary_json(doc)
        image += b"\x00" + struct.pack("<i", number) + struct.pack("<I", len(value)) + value
    image += b"\x00" + struct.pack("<i", 2) + struct.pack("<I", 0)  # the empty value
    image += b"\x02" + struct.pack("<i", 3)  # SQL NULL
    pos, rows = 0, []
    while pos < len(image):
        values, sources, pos = decoder._image(image, pos)
        rows.append((values["j"], sources.get("j")))
    assert rows == [({"a": [1, "2026-01-02 03:04:05.000000"]}, None), (None, JSON_NULL_SOURCE),
                    (None, JSON_NULL_SOURCE), (None, "null")]  # fmt: skip
    texts = convert_binlog_values(JSON_PLAN, [v for v, _ in rows], [s for _, s in rows]).array.to_pylist()
    assert texts == ['{"a":[1,"2026-01-02 03:04:05.000000"]}', "null", "null", None]


def test_columnar_decoder_reads_json_columns():
    """The columnar path walks JSON values like other length-prefixed ones and converts them value by
    value with the same decoder (here fed one event's images directly, as ``decode`` would)."""
    table = types.SimpleNamespace(
        columns=[_column("id", FIELD_TYPE.LONG), _column("j", FIELD_TYPE.JSON, length_size=4)]
    )
    decoder = columnar_decoder(table, [JSON_PLAN])
    assert decoder is not None
    value = encode_binary_json({"a": [1, "x"], "d": date_opaque(dt.date(2026, 1, 2))})
    images = b"\x00" + struct.pack("<iI", 1, len(value)) + value + b"\x00" + struct.pack("<iI", 2, 0)
    buffer = decoder.new_buffer()
    starts: list[int] = []
    assert decoder._table.walk(images, 0, len(images), starts.append) == len(images)
    buffer._chunks.append(images)
    buffer._starts += starts
    buffer._bases.append(0)
    buffer._counts.append(len(starts))
    buffer._size = len(images)
    arrays, warnings = buffer.to_arrow()
    assert arrays["j"].to_pylist() == ['{"a":[1,"x"],"d":"2026-01-02"}', "null"] and warnings == {}
