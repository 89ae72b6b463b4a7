"""Evaluate a table's ``filter`` (a SQL WHERE expression) on binlog row images, with MySQL's semantics.

The full load applies the filter in its SELECT, so the server decides (collations, implicit casts,
NULL logic). The incremental path must decide identically, so it asks the same server: the images
are rendered as literals of the column's type, character set and collation into a derived table
and the filter runs against it::

    SELECT idx FROM (SELECT 0 AS idx, <literal> AS `col`, ... UNION ALL SELECT 1, ...) AS t WHERE (<filter>)

Read-only (no temporary table, nothing reaches the source's binlog), batched by statement size.
Values the literals cannot represent exactly are documented at :func:`sql_literal`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pymysql

from airflow_provider_polar_mc.core import filters, sqltext
from airflow_provider_polar_mc.core.model import SourceColumn
from airflow_provider_polar_mc.core.values import _repair_negative_time, format_time, set_members

# Keep each statement well under the default max_allowed_packet (MariaDB 16 MiB, MySQL 64 MiB).
MAX_STATEMENT_BYTES = 4 * 1024 * 1024
MAX_ROWS_PER_STATEMENT = 2000

_TEXT = frozenset({"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"})
_SPATIAL = frozenset({
    "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
    "geometrycollection", "geomcollection",
})  # fmt: skip


def _text_literal(text: str, charset: str | None, collation: str | None) -> str:
    # Hex keeps any byte sequence safe from the connection's escaping rules and sql_mode.
    literal = sqltext.mysql_text(text)
    charset = (charset or "utf8mb4").lower()
    if charset not in ("utf8mb4", "binary"):
        literal = f"CONVERT({literal} USING {charset})"
    if collation:
        literal += f" COLLATE {collation}"
    return literal


def _fixed_width(column: SourceColumn) -> int | None:
    m = re.fullmatch(r"\s*binary\s*\(\s*(\d+)\s*\).*", column.column_type, re.IGNORECASE)
    return int(m.group(1)) if m else None


def sql_literal(column: SourceColumn, value: Any, collation: str | None = None) -> str:
    """``value`` as mysql-replication decodes it for ``column`` -> a SQL literal of the column's type.

    Text carries the column's character set and (when known) collation, so comparisons collate like
    the column does. Known approximations: zero dates and the empty SET arrive as None and are
    rendered NULL; a spatial value is its stored bytes (a binary string).
    """
    if value is None:
        return "NULL"
    data_type = column.data_type.lower()
    if isinstance(value, bool):
        return "1" if value else "0"
    if data_type == "year":
        return "0" if value == 1900 else str(int(value))
    if data_type == "bit":
        bits = value if isinstance(value, str) else format(int.from_bytes(bytes(value), "big"), "b")
        return f"b'{bits or '0'}'"
    if isinstance(value, float) and not math.isfinite(value):
        return "NULL"  # NaN and infinities have no MySQL literal (and no FLOAT/DOUBLE column stores them)
    if isinstance(value, dt.datetime):
        return f"CAST({sqltext.mysql_text(value.isoformat(sep=' '))} AS DATETIME(6))"
    if isinstance(value, (int, float, Decimal, dt.date)):
        return sqltext.mysql_literal(value)
    if isinstance(value, dt.timedelta):
        return f"CAST({sqltext.mysql_text(format_time(_repair_negative_time(value), 6))} AS TIME(6))"
    if isinstance(value, (set, frozenset)):
        order = set_members(column.column_type)
        value = ",".join(member for member in order if member in value)
    if isinstance(value, (dict, list)):  # MySQL 8 binary JSON, decoded
        value = json.dumps(_json_text_keys(value), ensure_ascii=False)
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
        if data_type in _TEXT and (column.character_set or "").lower() != "binary":
            return _text_literal(data.decode("utf-8", "replace"), column.character_set, collation)
        width = _fixed_width(column)
        if width:
            data = data.ljust(width, b"\x00")
        return sqltext.mysql_bytes(data)
    if isinstance(value, str):
        if data_type in _TEXT and (column.character_set or "").lower() != "binary":
            return _text_literal(value, column.character_set, collation)
        return sqltext.mysql_bytes(value.encode("utf-8"))
    return _text_literal(str(value), None, None)


def _json_text_keys(document: Any) -> Any:
    if isinstance(document, dict):
        return {(k.decode() if isinstance(k, bytes) else k): _json_text_keys(v) for k, v in document.items()}
    if isinstance(document, list):
        return [_json_text_keys(v) for v in document]
    if isinstance(document, bytes):
        return document.decode("utf-8", "replace")
    return document


def matching_images(
    conn: pymysql.Connection,
    filter_expression: str,
    columns: Sequence[SourceColumn],
    images: Sequence[Mapping[str, Any]],
    collations: Mapping[str, str] | None = None,
) -> set[int]:
    """Indexes of the row images (column name -> value) for which ``filter_expression`` (the spec's
    text; what runs is its rendering by ``core.filters``) is TRUE."""
    condition = filters.parse_filter(filter_expression).sql
    collations = {k.lower(): v for k, v in (collations or {}).items()}
    names = [(c, sqltext.quote_mysql_name(c.name), collations.get(c.name.lower())) for c in columns]
    matched: set[int] = set()
    selects: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if not selects:
            return
        sql = f"SELECT idx FROM ({' UNION ALL '.join(selects)}) AS t WHERE {condition}"
        with conn.cursor() as cur:
            cur.execute(sql)
            matched.update(int(row[0]) for row in cur.fetchall())
        selects.clear()
        size = 0

    for index, image in enumerate(images):
        items = [f"{index} AS idx"] + [
            f"{sql_literal(column, image.get(column.name), collation)} AS {quoted}"
            for column, quoted, collation in names
        ]
        select = "SELECT " + ", ".join(items)
        selects.append(select)
        size += len(select)
        if len(selects) >= MAX_ROWS_PER_STATEMENT or size >= MAX_STATEMENT_BYTES:
            flush()
    flush()
    return matched
