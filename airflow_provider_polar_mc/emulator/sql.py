"""The emulator's SQL engine: run a MaxCompute SQL script against :class:`Storage`.

``run_sql`` is what the HTTP server calls for a submitted SQL instance. A script is split into
statements (``sql_lexer``); ``SET key=value`` statements change the settings for the rest of the
script; DDL is handled by ``sql_ddl``, INSERT by ``sql_insert``, queries by ``sql_query``. Anything
outside the supported subset raises :class:`SqlError` with a MaxCompute error code (or
``ODPS-EMULATOR-UNSUPPORTED``), never a silently different result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from .catalog import Column
from .sql_ddl import run_alter_table, run_create_table, run_drop_table, run_truncate_table
from .sql_errors import SqlError, parse_error, unsupported
from .sql_insert import run_insert
from .sql_lexer import Statement, split_statements
from .sql_query import QueryTranslator, bind, duckdb_error, parse_query, positional, result_columns
from .storage import Storage

__all__ = ["QueryResult", "SqlError", "run_sql"]

_SET_RE = re.compile(r"^\s*set\s+([A-Za-z0-9_.\-]+)\s*=\s*(.*?)\s*$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class QueryResult:
    """The result of a script ending in a SELECT: MaxCompute columns and rows in their Arrow types."""

    columns: list[Column]
    table: pa.Table


def run_sql(storage: Storage, project: str, sql_text: str, settings: Mapping[str, str]) -> QueryResult | None:
    """Run a script; return the last statement's result if it is a SELECT, else None."""
    effective = {k.strip().lower(): str(v).strip() for k, v in (settings or {}).items()}
    statements = split_statements(sql_text)
    if not statements:
        raise parse_error("empty script, expecting a statement", 1, 1)
    result: QueryResult | None = None
    for statement in statements:
        result = _run_statement(storage, project, statement, effective)
    return result


def _run_statement(
    storage: Storage, project: str, statement: Statement, settings: dict[str, str]
) -> QueryResult | None:
    first = statement.tokens[0]
    if first.kind == "op" and first.value == "(":
        return _run_query(storage, project, statement, settings)
    if first.kind != "word":
        raise parse_error(f"invalid token '{first.value}'", first.line, first.col)
    keyword = first.value.upper()
    if keyword == "SET":
        _apply_set(statement, settings)
        return None
    if keyword in ("SELECT", "WITH"):
        return _run_query(storage, project, statement, settings)
    if keyword == "INSERT":
        run_insert(storage, project, statement, settings)
        return None
    handlers = {
        "CREATE": run_create_table,
        "DROP": run_drop_table,
        "ALTER": run_alter_table,
        "TRUNCATE": run_truncate_table,
    }
    if keyword in handlers:
        handlers[keyword](storage, project, statement)
        return None
    raise unsupported(f"statement {keyword}", first.line, first.col)


def _apply_set(statement: Statement, settings: dict[str, str]) -> None:
    m = _SET_RE.match(statement.text)
    if not m:
        raise parse_error("expecting SET key=value", statement.line, statement.col)
    value = m.group(2)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    settings[m.group(1).lower()] = value


def _run_query(
    storage: Storage, project: str, statement: Statement, settings: Mapping[str, str]
) -> QueryResult:
    tree = parse_query(statement.text, statement, statement.line, statement.col)
    translator = QueryTranslator(storage, project, settings, statement)
    sql = translator.translate(tree, origin=(statement.line, statement.col))
    # A connection of its own: the storage's per-thread cursor may hold a half-fetched result,
    # which DuckDB's relation API refuses to work next to.
    cur = storage.cursor().cursor()
    try:
        bound = bind(cur, sql)
        columns, projections = result_columns(bound)
        table = cur.sql(f"SELECT {', '.join(projections)} FROM {positional(bound)}").to_arrow_table()
    except duckdb.Error as exc:
        raise duckdb_error(exc) from None
    finally:
        cur.close()
    return QueryResult(columns, _as_maxcompute_arrow(table, columns))


def _as_maxcompute_arrow(table: pa.Table, columns: list[Column]) -> pa.Table:
    """Give every result column the Arrow type pyodps expects for its MaxCompute type, named as MaxCompute names it."""
    arrays = []
    for array, column in zip(table.columns, columns, strict=True):
        target = column.type.stored_arrow
        if array.type != target:
            # DATETIME is milliseconds: sub-millisecond digits of a DuckDB expression go.
            truncating = pa.types.is_timestamp(target) and target.unit == "ms"
            array = array.cast(target, safe=not truncating)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=[c.name for c in columns])
