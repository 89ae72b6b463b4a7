"""MySQL / MariaDB column types -> MaxCompute 2.0 types, in one table (``_RULES``).

Input is what ``information_schema.COLUMNS`` reports for a column (``DATA_TYPE``, ``COLUMN_TYPE``,
``NUMERIC_PRECISION``, ``NUMERIC_SCALE``, ``DATETIME_PRECISION``, ``CHARACTER_SET_NAME``); output is a
:class:`MappedType`: the MaxCompute type for the DDL, the source ``COLUMN_TYPE`` for the column comment
(so the original type stays visible in MaxCompute), and the Arrow type both the full load and the binlog
path convert to: pyodps's ``odps.tunnel.io.types`` mapping, except that TIMESTAMP_NTZ is held at
microseconds so that its whole range fits (the uploader chooses the wire form, core/destination/upload.py).

Rules worth knowing (the full table is ``TYPE_MAPPING_ROWS``, rendered in docs/spec.md):

* Unsigned integers widen to the next signed type so every value fits; ``BIGINT UNSIGNED`` becomes
  ``DECIMAL(20,0)``. ``TINYINT(1)`` / ``BOOL`` stay ``TINYINT``: they are integers in MySQL and hold
  -128..127, never a boolean.
* ``DECIMAL(p,s)`` keeps its exact type while MaxCompute allows it (p <= 38 and s <= 18); otherwise it
  becomes ``STRING`` holding the exact decimal text, never a rounded DOUBLE.
* ``DATETIME(fsp)`` is a wall-clock value with up to microseconds: it maps to ``TIMESTAMP_NTZ``, which
  keeps microseconds over MaxCompute's 0001..9999 and is never shifted by a client's time zone, so
  every DATETIME value, ``1000-01-01 00:00:00.000001`` and ``9999-12-31 23:59:59.999999`` included,
  arrives exactly (docs/lossless-types.md: blocks holding values outside the Arrow tunnel's
  1677..2262 go as records). ``datetime_type: datetime`` gives DTS's ``DATETIME`` instead, an explicit
  lossy choice (milliseconds; the precheck warns when fsp > 3 because the fraction is truncated).
  ``TIMESTAMP(fsp)`` is an instant and maps to ``TIMESTAMP`` (read in UTC sessions).
* ``TIME`` is a duration up to +-838:59:59.999999, not a time of day: it becomes the text
  ``[-]HHH:MM:SS[.ffffff]`` (hours zero-padded to at least two digits, the fraction to the column's fsp).
* ``BIT(1)`` is a flag -> ``BOOLEAN``; ``BIT(2..63)`` -> ``BIGINT``; ``BIT(64)`` -> ``DECIMAL(20,0)``
  because its values reach 2**64-1, which no signed BIGINT holds.
* ``JSON`` -> ``STRING`` holding the JSON text (or MaxCompute ``JSON`` with ``json_type: json``).
  MariaDB reports JSON columns as ``longtext``; the catalog must pass ``DATA_TYPE='json'`` for them
  (it can tell from the ``json_valid`` check constraint), otherwise they map as text, which is the
  same STRING anyway unless ``json_type: json`` is chosen.
* Spatial types -> ``BINARY`` holding standard WKB (MySQL's internal 4-byte SRID prefix removed).
* Character types whose ``CHARACTER_SET_NAME`` is ``binary`` are byte strings -> ``BINARY``.

Zero dates (``0000-00-00``, ``0000-00-00 00:00:00``, and dates with a zero month or day) have no
MaxCompute value. Documented outcome: the column is written as NULL and the loader counts a warning per
table and column, reported in the task log and XCom; it never fails the load and never invents a date.

Types with no mapping raise :class:`~airflow_provider_polar_mc.exceptions.UnsupportedType`, for
example MariaDB's ``UUID``/``INET4``/``INET6`` and MySQL 9's ``VECTOR``: exclude the column's table or
change the type. This module imports neither Airflow nor a database driver.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from airflow_provider_polar_mc.exceptions import UnsupportedType

JsonType = Literal["string", "json"]
DatetimeType = Literal["timestamp_ntz", "datetime"]

# MaxCompute 2.0 DECIMAL limits (precision 1..38, scale 0..18).
MAX_DECIMAL_PRECISION = 38
MAX_DECIMAL_SCALE = 18
# MaxCompute DATETIME keeps milliseconds.
DATETIME_FRACTION_DIGITS = 3


@dataclass(frozen=True)
class SourceColumnType:
    """A column's type as ``information_schema.COLUMNS`` reports it."""

    data_type: str
    column_type: str
    numeric_precision: int | None = None
    numeric_scale: int | None = None
    datetime_precision: int | None = None
    character_set_name: str | None = None

    @classmethod
    def from_information_schema(cls, row: Mapping[str, Any]) -> SourceColumnType:
        """Build from an ``information_schema.COLUMNS`` row (keys in any case, e.g. ``DATA_TYPE``)."""
        fields = {str(key).lower(): value for key, value in row.items()}
        return cls(
            data_type=str(fields["data_type"]),
            column_type=str(fields.get("column_type") or fields["data_type"]),
            numeric_precision=_optional_int(fields.get("numeric_precision")),
            numeric_scale=_optional_int(fields.get("numeric_scale")),
            datetime_precision=_optional_int(fields.get("datetime_precision")),
            character_set_name=fields.get("character_set_name"),
        )

    @property
    def base_type(self) -> str:
        return self.data_type.strip().lower()

    @property
    def unsigned(self) -> bool:
        # ZEROFILL implies UNSIGNED in MySQL, and COLUMN_TYPE always shows "unsigned" with it.
        return " unsigned" in self.column_type.lower()

    @property
    def length_argument(self) -> int | None:
        """The first number in COLUMN_TYPE's parentheses: BIT(n), DATETIME(fsp), TINYINT(1)."""
        match = re.search(r"\(\s*(\d+)", self.column_type)
        return int(match.group(1)) if match else None

    @property
    def decimal_precision_scale(self) -> tuple[int, int]:
        """DECIMAL's (p, s): the catalog's NUMERIC_PRECISION/SCALE, else COLUMN_TYPE's arguments."""
        match = re.search(r"\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)", self.column_type)
        # MySQL's DECIMAL without arguments is DECIMAL(10,0).
        parsed_precision, parsed_scale = (int(match.group(1)), int(match.group(2) or 0)) if match else (10, 0)
        precision = self.numeric_precision if self.numeric_precision is not None else parsed_precision
        scale = self.numeric_scale if self.numeric_scale is not None else parsed_scale
        return precision, scale

    @property
    def fractional_digits(self) -> int:
        """DATETIME/TIMESTAMP/TIME fsp (0..6)."""
        if self.datetime_precision is not None:
            return self.datetime_precision
        return self.length_argument or 0

    @property
    def bit_width(self) -> int:
        if self.numeric_precision is not None:
            return self.numeric_precision
        return self.length_argument or 1


@dataclass(frozen=True)
class MappingOptions:
    """The spec options that change the mapping (``json_type``, ``datetime_type``)."""

    json_type: JsonType = "string"
    datetime_type: DatetimeType = "timestamp_ntz"


@dataclass(frozen=True)
class MappedType:
    """A source column's MaxCompute type.

    ``comment`` is the source COLUMN_TYPE (put it in the column comment); ``arrow_type`` is what the
    converted values carry for ``mc_type`` (:func:`arrow_type_for`); ``precision_loss`` says what the mapping cannot keep (None
    when nothing is lost), for the precheck to warn about.
    """

    mc_type: str
    comment: str
    arrow_type: pa.DataType
    precision_loss: str | None = None


# --- the table -----------------------------------------------------------------------------------

_Predicate = Callable[[SourceColumnType, MappingOptions], bool]
_TypeBuilder = Callable[[SourceColumnType], str]


@dataclass(frozen=True)
class _Rule:
    mysql: str  # as rendered in the docs
    data_types: frozenset[str]
    maxcompute: str  # as rendered in the docs
    note: str
    mc_type: _TypeBuilder
    applies: _Predicate = lambda column, options: True  # noqa: E731


def _const(mc_type: str) -> _TypeBuilder:
    return lambda column: mc_type


def _decimal_fits(column: SourceColumnType) -> bool:
    precision, scale = column.decimal_precision_scale
    return precision <= MAX_DECIMAL_PRECISION and scale <= MAX_DECIMAL_SCALE


def _decimal_type(column: SourceColumnType) -> str:
    precision, scale = column.decimal_precision_scale
    return f"DECIMAL({precision},{scale})"


def _types(*names: str) -> frozenset[str]:
    return frozenset(names)


_TEXT = _types("char", "varchar", "tinytext", "text", "mediumtext", "longtext")
_BLOB = _types("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob")
_SPATIAL = _types(
    "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
    "geometrycollection", "geomcollection",
)

# First matching rule wins; order matters only within one data type (specific before general).
_RULES: tuple[_Rule, ...] = (
    _Rule("TINYINT (incl. TINYINT(1), BOOL)", _types("tinyint"), "TINYINT",
          "TINYINT(1)/BOOL stays an integer, never BOOLEAN", _const("TINYINT"),
          lambda c, o: not c.unsigned),
    _Rule("TINYINT UNSIGNED", _types("tinyint"), "SMALLINT", "widened so 0..255 fits", _const("SMALLINT")),
    _Rule("SMALLINT", _types("smallint"), "SMALLINT", "", _const("SMALLINT"), lambda c, o: not c.unsigned),
    _Rule("SMALLINT UNSIGNED", _types("smallint"), "INT", "widened so 0..65535 fits", _const("INT")),
    _Rule("MEDIUMINT [UNSIGNED]", _types("mediumint"), "INT", "", _const("INT")),
    _Rule("INT / INTEGER", _types("int", "integer"), "INT", "", _const("INT"), lambda c, o: not c.unsigned),
    _Rule("INT UNSIGNED", _types("int", "integer"), "BIGINT", "widened so 0..4294967295 fits",
          _const("BIGINT")),
    _Rule("BIGINT", _types("bigint"), "BIGINT", "", _const("BIGINT"), lambda c, o: not c.unsigned),
    _Rule("BIGINT UNSIGNED (incl. SERIAL)", _types("bigint"), "DECIMAL(20,0)",
          "exact; values reach 18446744073709551615", _const("DECIMAL(20,0)")),
    _Rule("DECIMAL(p,s) / NUMERIC, p <= 38 and s <= 18", _types("decimal", "numeric"), "DECIMAL(p,s)",
          "exact", _decimal_type, lambda c, o: _decimal_fits(c)),
    _Rule("DECIMAL(p,s) / NUMERIC, p > 38 or s > 18", _types("decimal", "numeric"), "STRING",
          "exact decimal text (MaxCompute DECIMAL allows p <= 38, s <= 18)", _const("STRING")),
    _Rule("FLOAT", _types("float"), "FLOAT", "", _const("FLOAT")),
    _Rule("DOUBLE / REAL", _types("double", "real", "double precision"), "DOUBLE", "", _const("DOUBLE")),
    _Rule("BIT(1)", _types("bit"), "BOOLEAN", "", _const("BOOLEAN"), lambda c, o: c.bit_width == 1),
    _Rule("BIT(2..63)", _types("bit"), "BIGINT", "the bits as an unsigned number", _const("BIGINT"),
          lambda c, o: c.bit_width < 64),
    _Rule("BIT(64)", _types("bit"), "DECIMAL(20,0)", "values reach 2**64-1, beyond BIGINT",
          _const("DECIMAL(20,0)")),
    _Rule("CHAR/VARCHAR/TEXT types with CHARACTER SET binary", _TEXT, "BINARY", "the bytes as stored",
          _const("BINARY"), lambda c, o: (c.character_set_name or "").lower() == "binary"),
    _Rule("CHAR / VARCHAR / TINYTEXT / TEXT / MEDIUMTEXT / LONGTEXT", _TEXT, "STRING", "UTF-8 text",
          _const("STRING")),
    _Rule("BINARY / VARBINARY / TINYBLOB / BLOB / MEDIUMBLOB / LONGBLOB", _BLOB, "BINARY", "",
          _const("BINARY")),
    _Rule("DATE", _types("date"), "DATE", "zero dates become NULL (counted warning)", _const("DATE")),
    _Rule("DATETIME(fsp)", _types("datetime"), "TIMESTAMP_NTZ",
          "wall clock, microseconds kept, no time-zone shift; zero dates become NULL",
          _const("TIMESTAMP_NTZ"), lambda c, o: o.datetime_type == "timestamp_ntz"),
    _Rule("DATETIME(fsp) with datetime_type: datetime", _types("datetime"), "DATETIME",
          "DTS-compatible; milliseconds only (precheck warns when fsp > 3)", _const("DATETIME")),
    _Rule("TIMESTAMP(fsp)", _types("timestamp"), "TIMESTAMP",
          "an instant, read in UTC; zero timestamps become NULL", _const("TIMESTAMP")),
    _Rule("TIME(fsp)", _types("time"), "STRING", "'[-]HHH:MM:SS[.ffffff]' (a duration, not a time of day)",
          _const("STRING")),
    _Rule("YEAR", _types("year"), "INT", "", _const("INT")),
    _Rule("ENUM", _types("enum"), "STRING", "the member's text", _const("STRING")),
    _Rule("SET", _types("set"), "STRING", "members' text joined by ','", _const("STRING")),
    _Rule("JSON", _types("json"), "STRING", "JSON text (default, json_type: string)", _const("STRING"),
          lambda c, o: o.json_type == "string"),
    _Rule("JSON with json_type: json", _types("json"), "JSON", "MaxCompute JSON type", _const("JSON")),
    _Rule("GEOMETRY / POINT / LINESTRING / POLYGON / MULTI* / GEOMETRYCOLLECTION", _SPATIAL, "BINARY",
          "standard WKB (SRID prefix removed)", _const("BINARY")),
)

# (MySQL type, MaxCompute type, note) for the README / docs table.
TYPE_MAPPING_ROWS: list[tuple[str, str, str]] = [(rule.mysql, rule.maxcompute, rule.note) for rule in _RULES]

SUPPORTED_DATA_TYPES: frozenset[str] = frozenset().union(*(rule.data_types for rule in _RULES))

_ARROW_TYPES: dict[str, pa.DataType] = {
    "TINYINT": pa.int8(),
    "SMALLINT": pa.int16(),
    "INT": pa.int32(),
    "BIGINT": pa.int64(),
    "BOOLEAN": pa.bool_(),
    "FLOAT": pa.float32(),
    "DOUBLE": pa.float64(),
    "STRING": pa.string(),
    "JSON": pa.string(),  # pyodps has no Arrow JSON type; the Tunnel takes JSON columns as text
    "BINARY": pa.binary(),
    "DATE": pa.date32(),
    "DATETIME": pa.timestamp("ms"),
    "TIMESTAMP": pa.timestamp("ns"),
    # pyodps's wire type is timestamp('ns') (1677..2262 only); the provider's arrays keep microseconds
    # and the uploader sends a block that leaves that window as records (core/destination/upload.py).
    "TIMESTAMP_NTZ": pa.timestamp("us"),
}


def arrow_type_for(mc_type: str) -> pa.DataType:
    """The Arrow type the provider's arrays carry for a MaxCompute type (``DECIMAL(p,s)`` included):
    pyodps's Tunnel writer type, except TIMESTAMP_NTZ at microseconds."""
    normalized = mc_type.strip().upper()
    decimal = re.fullmatch(r"DECIMAL\((\d+),\s*(\d+)\)", normalized)
    if decimal:
        return pa.decimal128(int(decimal.group(1)), int(decimal.group(2)))
    try:
        return _ARROW_TYPES[normalized]
    except KeyError:
        raise ValueError(f"no Arrow type known for MaxCompute type {mc_type!r}") from None


def map_type(
    column: SourceColumnType | Mapping[str, Any],
    options: MappingOptions | None = None,
) -> MappedType:
    """Map one source column's type; raise ``UnsupportedType`` when MaxCompute has no counterpart.

    ``column`` is a :class:`SourceColumnType` or an ``information_schema.COLUMNS`` row.
    """
    if not isinstance(column, SourceColumnType):
        column = SourceColumnType.from_information_schema(column)
    options = options or MappingOptions()
    rule = _find_rule(column, options)
    mc_type = rule.mc_type(column)
    return MappedType(
        mc_type=mc_type,
        comment=column.column_type,
        arrow_type=arrow_type_for(mc_type),
        precision_loss=_precision_loss(column, mc_type),
    )


def _find_rule(column: SourceColumnType, options: MappingOptions) -> _Rule:
    base_type = column.base_type
    for rule in _RULES:
        if base_type in rule.data_types and rule.applies(column, options):
            return rule
    raise UnsupportedType(
        f"column type {column.column_type!r} (DATA_TYPE {column.data_type!r}) has no MaxCompute mapping; "
        "exclude the table (or change the column's type) and run the precheck again. "
        f"Supported DATA_TYPEs: {', '.join(sorted(SUPPORTED_DATA_TYPES))}"
    )


def _precision_loss(column: SourceColumnType, mc_type: str) -> str | None:
    if mc_type == "DATETIME" and column.fractional_digits > DATETIME_FRACTION_DIGITS:
        return (
            f"{column.column_type} keeps {column.fractional_digits} fractional digits but MaxCompute "
            f"DATETIME keeps {DATETIME_FRACTION_DIGITS}: the fraction is truncated to milliseconds "
            "(use datetime_type: timestamp_ntz to keep it)"
        )
    return None


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


_INTEGER_WIDTHS = {"tinyint": 1, "smallint": 2, "int": 3, "bigint": 4}
_DECIMAL = re.compile(r"decimal\((\d+),(\d+)\)")


def holds(existing: str, new: str) -> bool:
    """Whether a MaxCompute column of type ``existing`` takes every value of type ``new`` unchanged (the
    same type, a wider integer, a DECIMAL with as many integer and fraction digits, DOUBLE for FLOAT):
    a narrowing in the source keeps the wider MaxCompute column."""
    a, b = existing.lower().replace(" ", ""), new.lower().replace(" ", "")
    if a == b:
        return True
    if a in _INTEGER_WIDTHS and b in _INTEGER_WIDTHS:
        return _INTEGER_WIDTHS[a] >= _INTEGER_WIDTHS[b]
    wide, narrow = _DECIMAL.fullmatch(a), _DECIMAL.fullmatch(b)
    if wide and b in _INTEGER_WIDTHS:
        return int(wide.group(1)) - int(wide.group(2)) >= {1: 3, 2: 5, 3: 10, 4: 19}[_INTEGER_WIDTHS[b]]
    if wide and narrow:
        (p1, s1), (p2, s2) = (int(v) for v in wide.groups()), (int(v) for v in narrow.groups())
        return s1 >= s2 and p1 - s1 >= p2 - s2
    return (a, b) == ("double", "float")

def widens_in_place(existing: str, new: str) -> bool:
    """Whether MaxCompute's ``ALTER TABLE ... CHANGE COLUMN`` turns a column of type ``existing`` into
    ``new`` keeping every stored value: a wider integer, FLOAT -> DOUBLE, a DECIMAL with at least as many
    integer and fraction digits, a longer VARCHAR or STRING. Integer -> DECIMAL is not among the
    documented changes, so such a change is a resync, never tried in place."""
    a, b = existing.lower().replace(" ", ""), new.lower().replace(" ", "")
    if a == b:
        return False
    if a.startswith("varchar(") and (b == "string" or b.startswith("varchar(")):
        return b == "string" or int(b[8:-1]) >= int(a[8:-1])
    both_decimal = bool(_DECIMAL.fullmatch(a) and _DECIMAL.fullmatch(b))
    both_integer = a in _INTEGER_WIDTHS and b in _INTEGER_WIDTHS
    return (both_decimal or both_integer or (a, b) == ("float", "double")) and holds(b, a)
