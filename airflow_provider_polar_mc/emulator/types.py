"""MaxCompute column types as the emulator understands them.

One parser for the type strings that appear in DDL, in table metadata and in tunnel schemas, and
one place that says how each type is stored in DuckDB and exchanged as Arrow. The HTTP layer, the
SQL translator and the tunnel all go through here so that a type means the same thing everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa

# MaxCompute 2.0 primitive types supported by the emulator (what the provider maps MySQL onto).
_SIMPLE = {
    "BIGINT": ("BIGINT", pa.int64()),
    "INT": ("INTEGER", pa.int32()),
    "SMALLINT": ("SMALLINT", pa.int16()),
    "TINYINT": ("TINYINT", pa.int8()),
    "BOOLEAN": ("BOOLEAN", pa.bool_()),
    "FLOAT": ("FLOAT", pa.float32()),
    "DOUBLE": ("DOUBLE", pa.float64()),
    "STRING": ("VARCHAR", pa.string()),
    "BINARY": ("BLOB", pa.binary()),
    "DATE": ("DATE", pa.date32()),
    # DATETIME and TIMESTAMP are instants, stored as naive UTC; TIMESTAMP_NTZ is a wall clock. Each
    # has its own DuckDB type so a query result's type says which MaxCompute type it is. DATETIME
    # keeps milliseconds over 0001..9999 (DuckDB TIMESTAMP_MS). TIMESTAMP_NTZ covers MaxCompute's
    # 0001..9999 too, at microseconds (DuckDB TIMESTAMP; the emulator refuses finer digits instead of
    # dropping them). TIMESTAMP keeps nanoseconds, within 1677-09-21 .. 2262-04-11 only (DuckDB
    # TIMESTAMP_NS), which holds every MySQL TIMESTAMP. The Arrow type is pyodps's wire type
    # (odps/tunnel/io/types.py), whatever the stored range.
    "DATETIME": ("TIMESTAMP_MS", pa.timestamp("ms")),
    "TIMESTAMP": ("TIMESTAMP_NS", pa.timestamp("ns")),
    "TIMESTAMP_NTZ": ("TIMESTAMP", pa.timestamp("ns")),
    # JSON documents are kept as their text.
    "JSON": ("VARCHAR", pa.string()),
}
_ALIASES = {"INTEGER": "INT", "BOOL": "BOOLEAN", "REAL": "FLOAT", "TEXT": "STRING"}

_TYPE_RE = re.compile(r"^\s*([A-Za-z_]+)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?\s*$")


class UnsupportedType(ValueError):
    """A type string the emulator does not implement."""


@dataclass(frozen=True)
class MCType:
    """A parsed MaxCompute type: ``name`` upper-case, with precision/scale or length where it has one."""

    name: str
    precision: int | None = None
    scale: int | None = None
    length: int | None = None

    def __str__(self) -> str:
        # pyodps parses these back, so spell them as MaxCompute does (lower-case, no spaces).
        if self.name == "DECIMAL":
            return f"decimal({self.precision},{self.scale})"
        if self.name in ("VARCHAR", "CHAR"):
            return f"{self.name.lower()}({self.length})"
        return self.name.lower()

    @property
    def duckdb(self) -> str:
        """The DuckDB column type that stores this type without loss."""
        if self.name == "DECIMAL":
            return f"DECIMAL({self.precision},{self.scale})"
        if self.name in ("VARCHAR", "CHAR"):
            return "VARCHAR"
        return _SIMPLE[self.name][0]

    @property
    def arrow(self) -> pa.DataType:
        """The Arrow type pyodps uses for this type in Arrow tunnel sessions."""
        if self.name == "DECIMAL":
            return pa.decimal128(self.precision, self.scale)
        if self.name in ("VARCHAR", "CHAR"):
            return pa.string()
        return _SIMPLE[self.name][1]

    @property
    def stored_arrow(self) -> pa.DataType:
        """The Arrow type the emulator holds this type's values in between storage and the wire:
        :attr:`arrow`, except TIMESTAMP_NTZ, whose full range needs microseconds (the wire's
        nanoseconds end in 2262)."""
        if self.name == "TIMESTAMP_NTZ":
            return pa.timestamp("us")
        return self.arrow


_INTEGER_RANK = {"TINYINT": 1, "SMALLINT": 2, "INT": 3, "BIGINT": 4}


def widens(old: MCType, new: MCType) -> bool:
    """Whether ``ALTER TABLE ... CHANGE COLUMN`` may turn ``old`` into ``new`` keeping every value: the
    widenings MaxCompute's column-type change is documented for that the emulator implements (a wider
    integer, FLOAT -> DOUBLE, a DECIMAL with at least as many integer and fraction digits, VARCHAR to a
    longer VARCHAR or STRING). Anything else is refused, as the service refuses an unsupported change."""
    if old == new:
        return True
    if old.name in _INTEGER_RANK and new.name in _INTEGER_RANK:
        return _INTEGER_RANK[new.name] > _INTEGER_RANK[old.name]
    if (old.name, new.name) == ("FLOAT", "DOUBLE"):
        return True
    if old.name == new.name == "DECIMAL":
        assert old.precision is not None and old.scale is not None and new.precision is not None and new.scale is not None
        return new.scale >= old.scale and new.precision - new.scale >= old.precision - old.scale
    if old.name == "VARCHAR" and new.name in ("VARCHAR", "STRING"):
        return new.name == "STRING" or (new.length or 0) >= (old.length or 0)
    return False


def parse_type(text: str) -> MCType:
    """Parse a MaxCompute type string such as ``decimal(12,2)``, ``varchar(16)`` or ``BIGINT``."""
    m = _TYPE_RE.match(text)
    if not m:
        raise UnsupportedType(f"unsupported or malformed column type: {text!r}")
    name = m.group(1).upper()
    name = _ALIASES.get(name, name)
    a, b = m.group(2), m.group(3)
    if name == "DECIMAL":
        # MaxCompute 2.0 DECIMAL without arguments is DECIMAL(38,18).
        precision = int(a) if a is not None else 38
        scale = int(b) if b is not None else (0 if a is not None else 18)
        if not (1 <= precision <= 38) or not (0 <= scale <= precision):
            raise UnsupportedType(f"DECIMAL precision/scale out of range in {text!r} (1 <= p <= 38, 0 <= s <= p)")
        return MCType("DECIMAL", precision=precision, scale=scale)
    if name in ("VARCHAR", "CHAR"):
        if a is None or b is not None:
            raise UnsupportedType(f"{name} needs one length argument: {text!r}")
        length = int(a)
        limit = 65535 if name == "VARCHAR" else 255
        if not 1 <= length <= limit:
            raise UnsupportedType(f"{name} length out of range in {text!r} (1..{limit})")
        return MCType(name, length=length)
    if name not in _SIMPLE:
        raise UnsupportedType(f"unsupported column type: {text!r}")
    if a is not None:
        raise UnsupportedType(f"type {name} takes no arguments: {text!r}")
    return MCType(name)
