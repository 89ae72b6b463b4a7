"""Split a table into primary-key ranges of bounded size, and render them as SQL.

The plan walks the key index (``WHERE key > last ORDER BY key LIMIT 1 OFFSET n-1``), so every range holds
at most ``chunk_rows`` rows when planned, whatever the key's type or distribution (sparse ids, strings,
composite keys). A plan is computed once and stored with the table's upload session: a retry reads the
same ranges into the same Tunnel blocks, which is what makes a resumed load exactly-once.

Key values are stored as JSON (tagged where JSON has no type: decimals, bytes, dates).
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pymysql

from airflow_provider_polar_mc.core import sqltext

KeyValue = tuple[Any, ...]


def encode_key(values: KeyValue | None) -> list[Any] | None:
    """JSON-safe form of a key tuple."""
    if values is None:
        return None
    out: list[Any] = []
    for v in values:
        if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
            out.append(v)
        elif isinstance(v, float):
            out.append({"float": repr(v)})
        elif isinstance(v, decimal.Decimal):
            out.append({"decimal": str(v)})
        elif isinstance(v, (bytes, bytearray)):
            out.append({"bytes": base64.b64encode(bytes(v)).decode()})
        elif isinstance(v, dt.datetime):
            out.append({"datetime": v.isoformat(sep=" ")})
        elif isinstance(v, dt.date):
            out.append({"date": v.isoformat()})
        elif isinstance(v, dt.timedelta):
            out.append({"seconds": v.total_seconds()})
        else:
            raise TypeError(f"unsupported key value {v!r} ({type(v).__name__})")
    return out


def decode_key(values: Sequence[Any] | None) -> KeyValue | None:
    if values is None:
        return None
    out: list[Any] = []
    for v in values:
        if isinstance(v, dict):
            ((tag, text),) = v.items()
            out.append(
                {
                    "float": float,
                    "decimal": decimal.Decimal,
                    "bytes": base64.b64decode,
                    "datetime": dt.datetime.fromisoformat,
                    "date": dt.date.fromisoformat,
                    "seconds": lambda s: dt.timedelta(seconds=s),
                }[tag](text)
            )
        else:
            out.append(v)
    return tuple(out)


@dataclass(frozen=True)
class KeyRange:
    """Rows with ``lower < key <= upper`` (None: unbounded on that side). ``index`` is the Tunnel block id."""

    index: int
    lower: KeyValue | None
    upper: KeyValue | None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "lower": encode_key(self.lower), "upper": encode_key(self.upper)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyRange:
        return cls(data["index"], decode_key(data["lower"]), decode_key(data["upper"]))


def _compare(key: Sequence[str], values: KeyValue, op: str, literal: Callable[[Any], str]) -> str:
    """Lexicographic ``key op values`` for op in '>' / '<=', spelled out so every server uses the index."""
    strict = op == ">"
    terms = []
    for i, column in enumerate(key):
        eq = [f"{sqltext.quote_mysql_name(key[j])} = {literal(values[j])}" for j in range(i)]
        last = i == len(key) - 1
        cmp = (">" if strict else "<=") if last else (">" if strict else "<")
        terms.append("(" + " AND ".join([*eq, f"{sqltext.quote_mysql_name(column)} {cmp} {literal(values[i])}"]) + ")")
    return "(" + " OR ".join(terms) + ")"


def range_predicate(key: Sequence[str], r: KeyRange, literal: Callable[[Any], str]) -> str:
    parts = []
    if r.lower is not None:
        parts.append(_compare(key, r.lower, ">", literal))
    if r.upper is not None:
        parts.append(_compare(key, r.upper, "<=", literal))
    return " AND ".join(parts) or "TRUE"


def sql_literal(charset: str = "utf8mb4") -> Callable[[Any], str]:
    """Render a key value as a SQL literal (for readers that take no bind parameters): through
    ``sqltext.mysql_literal``, so strings are hex literals in ``charset`` and mean the same under any
    ``sql_mode`` (``NO_BACKSLASH_ESCAPES`` included)."""

    def literal(value: Any) -> str:
        return sqltext.mysql_literal(value, charset)

    return literal


def plan_ranges(
    conn: pymysql.Connection,
    database: str,
    table: str,
    key: Sequence[str],
    chunk_rows: int,
    max_ranges: int = 20000,
) -> list[KeyRange]:
    """Walk the key index and return consecutive ranges covering every key (and future keys beyond
    the last one: the final range is open-ended)."""
    if not key:
        raise ValueError(f"{database}.{table} has no key to split on")
    cols = ", ".join(sqltext.quote_mysql_name(c) for c in key)
    order = ", ".join(sqltext.quote_mysql_name(c) for c in key)
    literal = sql_literal()
    bounds: list[KeyValue] = []
    last: KeyValue | None = None
    with conn.cursor() as cur:
        while True:
            where = f"WHERE {_compare(key, last, '>', literal)}" if last is not None else ""
            cur.execute(
                f"SELECT {cols} FROM {sqltext.quote_mysql_table(database, table)} {where} ORDER BY {order} "
                f"LIMIT 1 OFFSET {int(chunk_rows) - 1}"
            )
            row = cur.fetchone()
            if row is None:
                break
            last = tuple(row)
            bounds.append(last)
            if len(bounds) >= max_ranges:
                raise ValueError(
                    f"{database}.{table} needs more than {max_ranges} chunks of {chunk_rows} rows (the Tunnel's block "
                    "limit): raise full_load.chunk_rows"
                )
    ranges: list[KeyRange] = []
    lower: KeyValue | None = None
    for i, upper in enumerate(bounds):
        ranges.append(KeyRange(i, lower, upper))
        lower = upper
    ranges.append(KeyRange(len(bounds), lower, None))
    return ranges
