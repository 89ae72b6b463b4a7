"""Source values -> the Arrow arrays the Tunnel writer uploads: one layer for the full load and the binlog.

The full load reads each column with :func:`snapshot_select_expression` through connectorx and converts
the result with :func:`convert_snapshot_array` (vectorised, pyarrow.compute); the binlog path converts
what mysql-replication 1.0.17 decodes with :func:`convert_binlog_values`. Both end in the same Arrow
type (:func:`destination_arrow_type`) and, for the same stored value, the same element: a row looks
identical whichever path brings it (docs/architecture.md: same values on both paths). Where the two
readers disagree, the projection makes MySQL produce a form both can reach (text for DECIMAL, temporal
types and TIME; numbers for BIT and YEAR; raw bytes for spatial types).

Canonical forms
---------------
* JSON: parsed and re-serialised as ``json.dumps(doc, sort_keys=True, separators=(",", ":"),
  ensure_ascii=False)``. MySQL 8 returns binary JSON normalised (decoded to Python objects by the
  provider's core/binlog/json_binary.py, or by mysql-replication for tables the row decoder does not
  take; docs/mysql-binary-json.md), MariaDB keeps the text as inserted; both become this one text.
  Numbers with a fraction or exponent go through IEEE doubles, as MySQL 8 stores them (a binary
  DECIMAL of scale 0 stays an integer, as its text does). Text that is not JSON (a
  MariaDB column without the ``json_valid`` check) is kept verbatim and counted as ``invalid_json``.
* DECIMAL beyond MaxCompute's DECIMAL(38,18): fixed-point text with exactly the column's scale and no
  exponent, ``-`` for negatives (``CAST(col AS CHAR)``'s form, e.g. ``0.000`` for zero of scale 3).
* TIME: ``[-]HH:MM:SS[.f...]``, hours zero-padded to two digits (up to 838), the fraction with
  exactly the column's fsp digits: MySQL's own ``CAST(col AS CHAR)`` form.
* SET: members comma-joined in definition order; the empty set is ``''`` (not NULL). ENUM: the
  member's text (``''`` for the invalid-value index 0).
* YEAR: the number; ``0000`` is 0.
* BIT(1) -> bool; BIT(2..64) -> the bits as an unsigned number.
* BINARY(n): the n stored bytes, right-padded with 0x00 (what SELECT returns; the binlog drops the
  padding). CHAR: trailing spaces removed (what SELECT returns).
* Spatial: the stored bytes without MySQL's 4-byte SRID prefix, i.e. WKB in the stored axis order
  (MySQL 8 geographic SRSs: longitude first), identical to what the binlog carries.
* Zero dates and zero-in-date / impossible values (``0000-00-00``, ``2020-00-10``, TIMESTAMP
  ``0000-00-00 00:00:00``) -> NULL, counted under ``zero_date``.

Time zones and ranges (pyodps 0.13.2's Arrow writer, ``odps/tunnel/io/writer.py``)
----------------------------------------------------------------------------------
* The writer localises *naive* timestamp columns with ``options.local_timezone`` (the worker's zone
  by default) except for TIMESTAMP_NTZ columns. So TIMESTAMP arrays are UTC-aware
  (``timestamp('ns', tz='UTC')``) and DATETIME arrays too (``timestamp('ms', tz='UTC')``: the wall
  clock is stored as that instant in UTC, whichever zone the worker is in); TIMESTAMP_NTZ arrays are
  naive ``timestamp('ns')`` (the writer assumes UTC for them, i.e. no shift).
* The Tunnel's Arrow form of TIMESTAMP / TIMESTAMP_NTZ is ``timestamp('ns')``: 1677-09-21 ..
  2262-04-11. The writer also accepts ``struct<sec: int64, nano: int32>`` but converts it to
  nanoseconds with an unchecked multiply, so an out-of-range value silently wraps to a wrong date:
  never hand it structs. TIMESTAMP_NTZ arrays are therefore naive ``timestamp('us')``, which holds
  MaxCompute's whole 0001..9999 range (``9999-12-31 23:59:59.999999``, the common "forever"
  sentinel, and ``1000-01-01``): the uploader sends a block holding a value outside the Arrow
  window through the record (protobuf) format, which carries seconds + nanoseconds
  (core/destination/upload.py, docs/lossless-types.md). MySQL TIMESTAMP (1970..2038) always fits.

mysql-replication 1.0.17 quirks compensated here
------------------------------------------------
* Negative TIME with a fraction is decoded wrongly (``-00:00:00.000001`` arrives as
  ``-0:00:00.999999``): :func:`_repair_negative_time` inverts that arithmetic exactly.
* YEAR ``0000`` arrives as 1900; the empty SET and zero dates arrive as None (the event's
  ``none_sources`` say why: pass them in so a NOT NULL-free column can tell ``''`` from NULL);
  a zero TIMESTAMP arrives as ``1970-01-01 00:00:00`` (naive UTC, ``utcfromtimestamp``), which no
  real TIMESTAMP can hold (the range starts at 00:00:01).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Context, Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from airflow_provider_polar_mc.core import sqltext
from airflow_provider_polar_mc.core.model import ColumnPlan

ZERO_DATE = "zero_date"
INVALID_JSON = "invalid_json"
# The none_sources entry of a JSON column whose document is JSON null (not SQL NULL): set by the
# provider's row decoder (core/binlog/rows_decoder.py), converted to the text ``null``.
JSON_NULL_SOURCE = "json null"

# mysql-replication's NONE_SOURCE values (pymysqlreplication.constants.NONE_SOURCE), copied so this
# module does not import the binlog library.
_NONE_SOURCE_EMPTY_SET = "empty set"
_NONE_SOURCES_ZERO_DATE = frozenset({"out of date range", "out of datetime range", "out of datetime2 range"})

_INTEGER = frozenset({"tinyint", "smallint", "mediumint", "int", "integer", "bigint"})
_DECIMAL = frozenset({"decimal", "numeric"})
_FLOAT = frozenset({"float", "double", "real", "double precision"})
_TEXT = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext"})
_BLOB = frozenset({"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})
_SPATIAL = frozenset({
    "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
    "geometrycollection", "geomcollection",
})  # fmt: skip

_EPOCH = dt.datetime(1970, 1, 1)
# Year 0, month 0 or day 0 in MySQL's 'YYYY-MM-DD...' text.
_ZERO_IN_DATE_PATTERN = r"^(0000-|\d{4}-00-|\d{4}-\d{2}-00)"
_DECIMAL_CONTEXT = Context(prec=100)


@dataclass(frozen=True)
class ConvertedColumn:
    """One column's values as the destination Arrow array, with counted warnings (key -> rows)."""

    array: pa.Array
    warnings: dict[str, int] = field(default_factory=dict)


# --- what each column is ---------------------------------------------------------------------------


def _kind(plan: ColumnPlan) -> str:
    data_type = plan.source.data_type.lower()
    charset = (plan.source.character_set or "").lower()
    if data_type in _INTEGER:
        return "integer"
    if data_type in _DECIMAL:
        return "decimal" if plan.mapped.mc_type.upper().startswith("DECIMAL") else "decimal_text"
    if data_type in _FLOAT:
        return "float"
    if data_type == "bit":
        return "bit"
    if data_type in _TEXT:
        return "binary" if charset == "binary" else "text"
    if data_type in _BLOB:
        return "binary"
    if data_type in _SPATIAL:
        return "spatial"
    if data_type in ("date", "datetime", "timestamp", "time", "year", "enum", "set", "json"):
        return data_type
    raise ValueError(f"no value conversion for column {plan.source.name!r} of type {plan.source.column_type!r}")


def value_kind(plan: ColumnPlan) -> str:
    """Which conversion rule applies to the column's values: ``integer``, ``decimal`` (to an Arrow
    decimal), ``decimal_text``, ``float``, ``bit``, ``text``, ``binary``, ``spatial`` or the data type
    itself (``date``, ``datetime``, ``timestamp``, ``time``, ``year``, ``enum``, ``set``, ``json``)."""
    return _kind(plan)


def destination_arrow_type(plan: ColumnPlan) -> pa.DataType:
    """The Arrow type both converters produce for ``plan``: :func:`typemap.arrow_type_for` of the
    MaxCompute type (TIMESTAMP_NTZ naive at microseconds), except that TIMESTAMP and DATETIME are
    UTC-aware so the writer does not shift them by the worker's local time zone."""
    mc_type = plan.mapped.mc_type.upper()
    if mc_type == "TIMESTAMP":
        return pa.timestamp("ns", tz="UTC")
    if mc_type == "DATETIME":
        return pa.timestamp("ms", tz="UTC")
    return plan.mapped.arrow_type


def snapshot_alias(plan: ColumnPlan) -> str:
    """The result-set name of the column's projection: ``c<ordinal>``, safe for any driver."""
    return f"c{plan.source.ordinal}"


def snapshot_select_expression(plan: ColumnPlan) -> str:
    """The SELECT-list item (``<expr> AS `c<ordinal>```) the full load reads the column with.

    Chosen so connectorx returns every storable value exactly and never panics: DECIMAL, TIME and
    the temporal types as MySQL's text (connectorx rejects DECIMAL scales, panics on zero dates and
    on TIME beyond 24h; the text also lets zero dates be counted); BIT and YEAR as numbers; JSON as
    text (MySQL 8's binary JSON is not a connectorx type); spatial values as their stored bytes
    without the SRID prefix. Requires the session time zone ``+00:00`` (TIMESTAMP text is rendered
    in it): connectorx's ``pre_execution_query="SET time_zone='+00:00'"``.
    """
    column = sqltext.quote_mysql_name(plan.source.name)
    kind = _kind(plan)
    if kind in ("decimal", "decimal_text", "date", "datetime", "timestamp", "time", "json"):
        expression = f"CAST({column} AS CHAR)"
    elif kind == "bit":
        expression = f"CAST({column} AS UNSIGNED)"
    elif kind == "year":
        expression = f"CAST({column} AS SIGNED)"
    elif kind == "spatial":
        expression = f"SUBSTRING(CAST({column} AS BINARY), 5)"
    else:
        expression = column
    return f"{expression} AS {sqltext.quote_mysql_name(snapshot_alias(plan))}"


# --- the snapshot path (connectorx Arrow -> destination) -------------------------------------------


def convert_snapshot_array(plan: ColumnPlan, array: pa.Array | pa.ChunkedArray) -> ConvertedColumn:
    """Convert connectorx's Arrow result of :func:`snapshot_select_expression` to the destination."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    kind = _kind(plan)
    target = destination_arrow_type(plan)
    if kind in ("date", "datetime", "timestamp"):
        return _temporal_from_text(plan, _as_string(array))
    if kind == "json":
        return _json_from_text(_as_string(array))
    if kind == "bit":
        return ConvertedColumn(_bits_to_destination(array.cast(pa.uint64()), target))
    if kind in ("decimal_text", "time", "text", "enum", "set"):
        return ConvertedColumn(_as_string(array))  # MySQL's text already is the canonical form
    if kind in ("binary", "spatial"):
        return ConvertedColumn(array.cast(pa.binary()))
    # integer, year, float, decimal: exact casts (decimal text carries exactly the column's scale).
    return ConvertedColumn(array.cast(target))


def _as_string(array: pa.Array) -> pa.Array:
    if pa.types.is_binary(array.type) or pa.types.is_large_binary(array.type):
        array = array.cast(pa.large_binary()).cast(pa.large_string())  # validates UTF-8
    return array.cast(pa.string())


def _bits_to_destination(bits: pa.Array, target: pa.DataType) -> pa.Array:
    if pa.types.is_boolean(target):
        return pc.not_equal(bits, pa.scalar(0, pa.uint64()))
    return bits.cast(target)


def _temporal_from_text(plan: ColumnPlan, text: pa.Array) -> ConvertedColumn:
    """MySQL's 'YYYY-MM-DD[ HH:MM:SS[.ffffff]]' text -> the destination, zero dates -> NULL."""
    warnings: dict[str, int] = {}
    zero = pc.fill_null(pc.match_substring_regex(text, _ZERO_IN_DATE_PATTERN), False)
    zeros = pc.sum(zero).as_py() or 0
    if zeros:
        text = pc.if_else(zero, pa.scalar(None, pa.string()), text)
    if _kind(plan) == "date":
        try:
            dates = text.cast(pa.date32())
        except pa.ArrowInvalid:  # an impossible date stored with ALLOW_INVALID_DATES: rare, go slow
            dates, invalid = _parse_slowly(text, lambda s: dt.date.fromisoformat(s), pa.date32())
            zeros += invalid
        _count(warnings, ZERO_DATE, zeros)
        return ConvertedColumn(dates, warnings)
    try:
        micros = text.cast(pa.timestamp("us"))
    except pa.ArrowInvalid:
        micros, invalid = _parse_slowly(text, dt.datetime.fromisoformat, pa.timestamp("us"))
        zeros += invalid
    _count(warnings, ZERO_DATE, zeros)
    return _timestamp_to_destination(plan, micros, warnings)


def _parse_slowly(text: pa.Array, parse: Callable[[str], Any], arrow_type: pa.DataType) -> tuple[pa.Array, int]:
    values: list[Any] = []
    invalid = 0
    for item in text.to_pylist():
        try:
            values.append(None if item is None else parse(item))
        except ValueError:
            values.append(None)
            invalid += 1
    return pa.array(values, type=arrow_type), invalid


def _timestamp_to_destination(plan: ColumnPlan, micros: pa.Array, warnings: dict[str, int]) -> ConvertedColumn:
    """Naive wall-clock microseconds (UTC for TIMESTAMP) -> the destination timestamp type."""
    target = destination_arrow_type(plan)
    if target.unit == "ms":
        # MaxCompute DATETIME keeps milliseconds: drop the finer digits (floor, also before 1970).
        millis = pc.floor_temporal(micros, unit="millisecond").cast(pa.timestamp("ms"))
        return ConvertedColumn(millis.cast(pa.timestamp("ms", tz=target.tz)), warnings)
    if target == micros.type:  # TIMESTAMP_NTZ: every value kept, whatever its year
        return ConvertedColumn(micros, warnings)
    # TIMESTAMP: MySQL's 1970..2038 always fits int64 nanoseconds (a safe cast would raise otherwise).
    return ConvertedColumn(micros.cast(pa.timestamp("ns")).cast(target), warnings)


def timestamps_to_destination(plan: ColumnPlan, micros: pa.Array, warnings: dict[str, int]) -> ConvertedColumn:
    """Finish a DATETIME / TIMESTAMP column the way :func:`convert_binlog_values` does: naive wall-clock
    ``timestamp('us')`` values (UTC for TIMESTAMP; zero dates already NULL and counted in ``warnings``)
    -> the destination type. For decoders that
    produce the microseconds themselves (core/binlog/rows_decoder.py)."""
    return _timestamp_to_destination(plan, micros, warnings)


def wall_clock_from_text(text: str | None) -> dt.datetime | None:
    """A TIMESTAMP_NTZ read back as MaxCompute's text (``CAST(c AS STRING)``, ``YYYY-MM-DD
    HH:MM:SS[.f...]`` with up to nine fraction digits) -> a naive datetime at microseconds. The text
    is the one form every reader carries over 0001..9999 (pyodps's readers build pandas nanosecond
    Timestamps, which end in 2262: README "Reading the replica")."""
    if text is None:
        return None
    whole, _, fraction = text.strip().partition(".")
    value = dt.datetime.strptime(whole, "%Y-%m-%d %H:%M:%S")
    if fraction:
        value = value.replace(microsecond=int(fraction[:6].ljust(6, "0")))
    return value


def canonical_json(document: Any) -> str:
    """The one JSON text both paths produce for a parsed document."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _json_from_text(text: pa.Array) -> ConvertedColumn:
    values: list[str | None] = []
    invalid = 0
    for item in text.to_pylist():  # per document: JSON has no vectorised parser that keeps key order rules
        if item is None:
            values.append(None)
            continue
        try:
            values.append(canonical_json(json.loads(item)))
        except ValueError:
            values.append(item)
            invalid += 1
    warnings: dict[str, int] = {}
    _count(warnings, INVALID_JSON, invalid)
    return ConvertedColumn(pa.array(values, type=pa.string()), warnings)


def _count(warnings: dict[str, int], key: str, rows: int) -> None:
    if rows:
        warnings[key] = warnings.get(key, 0) + rows


# --- the binlog path (mysql-replication values -> destination) -------------------------------------


def convert_binlog_values(
    plan: ColumnPlan,
    values: Sequence[Any],
    none_sources: Sequence[str | None] | None = None,
) -> ConvertedColumn:
    """Convert one column's values as mysql-replication 1.0.17 decodes them (one per row image).

    ``none_sources`` (optional, parallel to ``values``) is the row's ``none_sources`` /
    ``after_none_sources`` / ``before_none_sources`` entry for this column: it tells an empty SET
    and a zero date from SQL NULL, since the library yields None for all three.
    """
    sources = list(none_sources) if none_sources is not None else [None] * len(values)
    if len(sources) != len(values):
        raise ValueError("none_sources must have one entry per value")
    kind = _kind(plan)
    target = destination_arrow_type(plan)
    if kind == "integer":
        if pa.types.is_decimal(target):  # BIGINT UNSIGNED: via uint64, like the snapshot's uint64
            return ConvertedColumn(pa.array(values, type=pa.uint64()).cast(target))
        return ConvertedColumn(pa.array(values, type=target))
    if kind == "float":
        return ConvertedColumn(pa.array(values, type=target))  # FLOAT arrives as the float32's double
    if kind in ("decimal", "decimal_text"):
        _, scale = _decimal_scale(plan)
        text = pa.array([None if v is None else _decimal_text(v, scale) for v in values], type=pa.string())
        return ConvertedColumn(text if kind == "decimal_text" else text.cast(target))
    if kind == "bit":
        bits = pa.array([None if v is None else _bit_number(v) for v in values], type=pa.uint64())
        return ConvertedColumn(_bits_to_destination(bits, target))
    if kind == "text":
        pad_stripped = plan.source.data_type.lower() == "char"
        return ConvertedColumn(pa.array([_text(v, pad_stripped) for v in values], type=pa.string()))
    if kind == "binary":
        width = _fixed_binary_width(plan)
        return ConvertedColumn(pa.array([_binary(v, width) for v in values], type=pa.binary()))
    if kind == "spatial":
        # The binlog carries MySQL's stored form: a 4-byte SRID, then WKB.
        return ConvertedColumn(pa.array([None if v is None else bytes(v)[4:] for v in values], type=pa.binary()))
    if kind in ("date", "datetime", "timestamp"):
        return _temporal_from_binlog(plan, values, sources)
    if kind == "time":
        digits = _fractional_digits(plan)
        text = [None if v is None else format_time(_repair_negative_time(v), digits) for v in values]
        return ConvertedColumn(pa.array(text, type=pa.string()))
    if kind == "year":
        # YEAR 0000 is stored as 0, which mysql-replication turns into 1900 (not a valid YEAR).
        return ConvertedColumn(pa.array([0 if v == 1900 else v for v in values], type=target))
    if kind == "enum":
        return ConvertedColumn(pa.array([_text(v, False) for v in values], type=pa.string()))
    if kind == "set":
        return _set_from_binlog(plan, values, sources)
    if kind == "json":
        return _json_from_binlog(plan, values, sources)
    raise AssertionError(kind)  # _kind() knows no other kinds


def _decimal_scale(plan: ColumnPlan) -> tuple[int, int]:
    precision = plan.source.numeric_precision
    scale = plan.source.numeric_scale
    if precision is None or scale is None:
        match = re.search(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", plan.source.column_type)
        precision, scale = (int(match.group(1)), int(match.group(2) or 0)) if match else (10, 0)
    return precision, scale


def _decimal_text(value: Any, scale: int) -> str:
    """``CAST(d AS CHAR)``'s form: fixed point, exactly ``scale`` digits, no exponent, no '-0'."""
    number = Decimal(value).quantize(Decimal(1).scaleb(-scale), context=_DECIMAL_CONTEXT)
    if number.is_zero():
        number = abs(number)
    return format(number, "f")


def _bit_number(value: Any) -> int:
    if isinstance(value, str):  # mysql-replication: the bits as '0'/'1' characters
        return int(value, 2) if value else 0
    if isinstance(value, (bytes, bytearray)):
        return int.from_bytes(value, "big")
    return int(value)


def _text(value: Any, pad_stripped: bool) -> str | None:
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):  # the library could not map the charset: MySQL sent UTF-8
        value = bytes(value).decode("utf-8")
    # SELECT returns CHAR without its trailing pad spaces (unless PAD_CHAR_TO_FULL_LENGTH).
    return value.rstrip(" ") if pad_stripped else value


def _fixed_binary_width(plan: ColumnPlan) -> int | None:
    match = re.fullmatch(r"\s*(binary|char)\s*\(\s*(\d+)\s*\).*", plan.source.column_type, re.IGNORECASE)
    return int(match.group(2)) if match else None


def _binary(value: Any, width: int | None) -> bytes | None:
    if value is None:
        return None
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    # BINARY(n) is stored right-padded with 0x00; the binlog drops the padding, SELECT returns it.
    return data.ljust(width, b"\x00") if width else data


def _fractional_digits(plan: ColumnPlan) -> int:
    if plan.source.datetime_precision is not None:
        return plan.source.datetime_precision
    match = re.search(r"\(\s*(\d+)", plan.source.column_type)
    return int(match.group(1)) if match else 0


def _temporal_from_binlog(plan: ColumnPlan, values: Sequence[Any], sources: Sequence[str | None]) -> ConvertedColumn:
    kind = _kind(plan)
    warnings: dict[str, int] = {}
    cleaned: list[Any] = []
    zeros = 0
    for value, source in zip(values, sources, strict=True):
        if value is None:
            if source in _NONE_SOURCES_ZERO_DATE:
                zeros += 1
            cleaned.append(None)
        elif kind == "timestamp":
            instant = _utc_naive(value)
            if instant == _EPOCH:  # the zero TIMESTAMP, decoded as utcfromtimestamp(0)
                zeros += 1
                cleaned.append(None)
            else:
                cleaned.append(instant)
        else:
            cleaned.append(value)
    _count(warnings, ZERO_DATE, zeros)
    if kind == "date":
        return ConvertedColumn(pa.array(cleaned, type=pa.date32()), warnings)
    return _timestamp_to_destination(plan, pa.array(cleaned, type=pa.timestamp("us")), warnings)


def _utc_naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value  # mysql-replication decodes TIMESTAMP with utcfromtimestamp: already UTC


def _repair_negative_time(value: dt.timedelta) -> dt.timedelta:
    """Undo mysql-replication 1.0.17's decoding of negative TIME values with a fraction.

    It reads the integer part of the stored (two's-complemented) value as one second too many and
    the fraction negated, then negates the sum: ``-(s + 1 - f)`` for the true ``-(s + f)``. A wrong
    result is recognisable: negative with a fraction; any negative value with a fraction is such a
    result, because the true fraction makes the decoded one non-zero and vice versa.
    """
    micros = _micros(value)
    if micros >= 0 or micros % 1_000_000 == 0:
        return value
    decoded = -micros
    whole_plus_one = -(-decoded // 1_000_000)  # ceil: s + 1
    true_micros = (whole_plus_one - 1) * 1_000_000 + (whole_plus_one * 1_000_000 - decoded)
    return dt.timedelta(microseconds=-true_micros)


def _micros(value: dt.timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def format_time(value: dt.timedelta, fractional_digits: int) -> str:
    """A TIME value as ``[-]HH:MM:SS[.f...]`` with exactly ``fractional_digits`` digits."""
    micros = _micros(value)
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"
    if fractional_digits:
        text += "." + f"{fraction:06d}"[:fractional_digits]
    return text


def set_members(column_type: str) -> list[str]:
    """The members of ``set('a','b',...)`` / ``enum(...)`` in definition order (quotes unescaped)."""
    body = column_type[column_type.index("(") + 1 : column_type.rindex(")")]
    return [m.replace("''", "'").replace("\\\\", "\\") for m in re.findall(r"'((?:[^']|'')*)'", body)]


def _set_from_binlog(plan: ColumnPlan, values: Sequence[Any], sources: Sequence[str | None]) -> ConvertedColumn:
    members = set_members(plan.source.column_type)
    position = {member.lower(): index for index, member in enumerate(members)}
    texts: list[str | None] = []
    for value, source in zip(values, sources, strict=True):
        if value is None:
            # An empty set arrives as None too; a NOT NULL column cannot hold NULL.
            empty = source == _NONE_SOURCE_EMPTY_SET or not plan.source.nullable
            texts.append("" if empty else None)
        elif isinstance(value, str):
            texts.append(value)
        else:
            ordered = sorted(value, key=lambda member: position.get(str(member).lower(), len(members)))
            texts.append(",".join(str(member) for member in ordered))
    return ConvertedColumn(pa.array(texts, type=pa.string()))


def _json_from_binlog(
    plan: ColumnPlan, values: Sequence[Any], sources: Sequence[str | None]
) -> ConvertedColumn:
    # MySQL's JSON type travels as binary JSON, decoded to Python objects (a str is a JSON string):
    # by mysql-replication, or by the provider's core/binlog/json_binary.py, whose row decoder marks
    # a JSON null document (None) with the source JSON_NULL_SOURCE; MariaDB's JSON is LONGTEXT,
    # decoded to its text.
    binary_json = plan.source.column_type.strip().lower() == "json"
    if not binary_json:
        return _json_from_text(pa.array([_text(v, False) for v in values], type=pa.string()))
    texts = [
        ("null" if source == JSON_NULL_SOURCE else None) if v is None else canonical_json(_json_plain(v))
        for v, source in zip(values, sources, strict=True)
    ]
    return ConvertedColumn(pa.array(texts, type=pa.string()))


def _json_plain(value: Any) -> Any:
    """Binary-JSON documents as the decoders give them -> plain JSON values: bytes (mysql-replication's
    keys and strings) as text; a DECIMAL as the number MySQL's text shows (``12`` for scale 0, else
    through a double, as the snapshot path's ``json.loads`` of ``12.50`` gives)."""
    if isinstance(value, dict):
        return {_json_plain(key): _json_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_plain(item) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    return value


# --- a value no row event carries: what ADD COLUMN gives the existing rows ---------------------------


def existing_rows_literal(plan: ColumnPlan, text: str | None) -> str:
    """The MaxCompute SQL literal of the value an ``ADD COLUMN`` gives the rows that exist at the DDL,
    from MySQL's text of it (``core/binlog/ddl.py`` ExistingRowsValue; None: NULL). Converted the way
    the binlog path converts the same value, so the merge fills exactly what a row event would carry.
    Raises ValueError for a kind it does not spell (the DDL parser marks those as not known)."""
    if text is None:
        return "NULL"
    kind = _kind(plan)
    if kind == "integer":
        value: Any = int(text)
    elif kind == "year":
        value = int(text)
    elif kind in ("decimal", "decimal_text"):
        value = Decimal(text)
    elif kind == "float":
        value = float(text)
    elif kind in ("text", "enum", "time"):
        value = text if kind != "time" else _time_value(text)
    elif kind == "date":
        value = dt.date.fromisoformat(text)
    elif kind == "datetime":
        value = dt.datetime.fromisoformat(text)
    else:
        raise ValueError(f"no literal for an existing-rows value of a {plan.source.column_type} column")
    converted = convert_binlog_values(plan, [value]).array
    return sqltext.mc_typed_literal(converted[0].as_py(), plan.mapped.mc_type)


def _time_value(text: str) -> dt.timedelta:
    sign = -1 if text.startswith("-") else 1
    hours, minutes, seconds = text.lstrip("-").split(":")
    return sign * dt.timedelta(hours=int(hours), minutes=int(minutes), seconds=float(seconds))
