"""``INSERT OVERWRITE|INTO TABLE t [PARTITION (...)] [(columns)] <query>`` on the emulator.

The header is parsed from tokens, the query by :mod:`sql_query`. The whole write is one DuckDB
transaction: the query is materialised first (so a table can overwrite itself), then the rows it
replaces are deleted, the new rows inserted and the partitions registered; a failure anywhere
leaves the table exactly as it was.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb

from .catalog import Column, TableMeta, storage_table
from .sql_ddl import TableName, parse_table_name
from .sql_errors import RUNTIME_ERROR, SqlError, semantic, table_not_found, unsupported
from .sql_lexer import Statement, TokenCursor
from .sql_query import BoundQuery, QueryTranslator, bind, duckdb_error, parse_query, positional, result_type
from .storage import Storage, StorageError
from .types import MCType

_INTEGER_RANK = {"TINYINT": 1, "SMALLINT": 2, "INT": 3, "BIGINT": 4}
_STRINGS = {"STRING", "VARCHAR", "CHAR", "JSON"}
_TIMES = {"DATETIME", "TIMESTAMP", "TIMESTAMP_NTZ"}


@dataclass(frozen=True)
class InsertTarget:
    table: TableName
    overwrite: bool
    partition: list[tuple[str, str | None]]  # (column, static value or None for dynamic), as written
    columns: list[str] | None  # explicit column list


def implicitly_castable(source: MCType | None, target: MCType) -> bool:
    """MaxCompute's implicit conversions when inserting; ``None`` is an untyped NULL."""
    if source is None or source.name == target.name:
        return True
    s, t = source.name, target.name
    if s in _INTEGER_RANK:
        if t in _INTEGER_RANK:
            return _INTEGER_RANK[s] <= _INTEGER_RANK[t]  # no silent narrowing
        return t in ("FLOAT", "DOUBLE", "DECIMAL", "STRING", "VARCHAR", "CHAR")
    if s in ("FLOAT", "DOUBLE", "DECIMAL"):
        return t in ("FLOAT", "DOUBLE", "DECIMAL", "STRING", "VARCHAR", "CHAR")
    if s in _STRINGS:
        # STRING -> number/date needs an explicit CAST (DuckDB's implicit string parsing rounds).
        return t in _STRINGS
    if s == "DATE":
        return t in _TIMES or t in ("STRING", "VARCHAR", "CHAR")
    if s in _TIMES:
        return t in _TIMES or t in ("STRING", "VARCHAR", "CHAR")
    return False


def parse_insert_header(cur: TokenCursor, project: str) -> InsertTarget:
    cur.expect_word("INSERT")
    overwrite = cur.accept_word("OVERWRITE") is not None
    if not overwrite:
        cur.expect_word("INTO", "OVERWRITE")
    cur.accept_word("TABLE")
    table = parse_table_name(cur, project)
    partition: list[tuple[str, str | None]] = []
    if cur.accept_word("PARTITION"):
        cur.expect_op("(")
        while True:
            key = cur.expect_name("a partition column").value.lower()
            value: str | None = None
            if cur.accept_op("="):
                tok = cur.next("a partition value")
                if tok.kind not in ("string", "number", "word"):
                    raise cur.error("a partition value")
                value = tok.value
            partition.append((key, value))
            if cur.accept_op(","):
                continue
            cur.expect_op(")")
            break
    columns: list[str] | None = None
    nxt = cur.peek(1)
    if (
        cur.peek() is not None
        and cur.peek().kind == "op"
        and cur.peek().value == "("
        and not (nxt is not None and nxt.is_word("SELECT", "WITH"))
    ):
        cur.expect_op("(")
        columns = [cur.expect_name("a column name").value.lower()]
        while cur.accept_op(","):
            columns.append(cur.expect_name("a column name").value.lower())
        cur.expect_op(")")
    return InsertTarget(table, overwrite, partition, columns)


def run_insert(storage: Storage, project: str, statement: Statement, settings: Mapping[str, str]) -> None:
    cur = TokenCursor(statement)
    target = parse_insert_header(cur, project)
    head = cur.peek()
    if head is not None and head.is_word("VALUES"):
        raise unsupported("INSERT ... VALUES (use INSERT ... SELECT)", head.line, head.col)
    text, line, col = cur.rest_text()
    tree = parse_query(text, statement, line, col)
    meta = storage.get_table(target.table.project, target.table.name)
    if meta is None:
        raise table_not_found(target.table.project, target.table.name, target.table.line, target.table.col)
    static, dynamic = _check_partition_clause(meta, target)
    data_columns = _target_columns(meta, target)

    translator = QueryTranslator(storage, project, settings, statement)
    sql = translator.translate(tree, origin=(line, col), name_outputs=False)
    bind_cursor = storage.cursor().cursor()  # see sql._run_query: a connection of its own
    try:
        bound = bind(bind_cursor, sql)
    finally:
        bind_cursor.close()
    projections = _projections(bound, data_columns, dynamic)
    _write(storage, meta, target.overwrite, bound, data_columns, static, dynamic, projections)


def _check_partition_clause(meta: TableMeta, target: InsertTarget) -> tuple[dict[str, str], list[Column]]:
    """Split the PARTITION clause into static values and dynamic columns, checked against the table."""
    table = f"{meta.project}.{meta.name}"
    if not meta.is_partitioned:
        if target.partition:
            raise semantic(f"table {table} is not partitioned, a PARTITION clause is not allowed")
        return {}, []
    if not target.partition:
        raise semantic(f"table {table} is partitioned, INSERT needs a PARTITION clause")
    names = [c.name for c in meta.partition_columns]
    written = [k for k, _ in target.partition]
    if written != names:
        raise semantic(
            f"PARTITION clause ({', '.join(written)}) must name the partition columns ({', '.join(names)}) in order"
        )
    static: dict[str, str] = {}
    dynamic: list[Column] = []
    for column, (_, value) in zip(meta.partition_columns, target.partition, strict=True):
        if value is None:
            dynamic.append(column)
        elif dynamic:
            raise semantic(f"static partition column {column.name} cannot follow a dynamic one")
        else:
            static[column.name] = value
    return static, dynamic


def _target_columns(meta: TableMeta, target: InsertTarget) -> list[Column]:
    if target.columns is None:
        return list(meta.columns)
    by_name = {c.name: c for c in meta.columns}
    seen: set[str] = set()
    columns = []
    for name in target.columns:
        if name not in by_name:
            raise semantic(f"column {name} cannot be resolved in table {meta.project}.{meta.name}")
        if name in seen:
            raise semantic(f"column {name} appears twice in the INSERT column list")
        seen.add(name)
        columns.append(by_name[name])
    return columns


def _projections(bound: BoundQuery, data_columns: list[Column], dynamic: list[Column]) -> list[str]:
    """Check the query's columns against the target's and cast each to the stored type."""
    expected = [*data_columns, *dynamic]
    if len(bound.names) != len(expected):
        raise semantic(
            f"the number of target columns ({len(expected)}) does not match the number of query columns ({len(bound.names)})"
        )
    projections = []
    for i, (column, duck_type) in enumerate(zip(expected, bound.duckdb_types, strict=True)):
        source = None if duck_type in ('"NULL"', "NULL") else result_type(duck_type)[0]
        if not implicitly_castable(source, column.type):
            raise semantic(
                f"cannot insert {source} into column {column.name} of type {column.type} "
                f"(query column {i + 1}); use an explicit CAST"
            )
        value = f"CAST(_q{i} AS {column.type.duckdb})"
        if column in dynamic:
            value = f"CAST({value} AS VARCHAR)"  # partition values are stored as text
        projections.append(f'{value} AS "{column.name}"')
    return projections


def _write(
    storage: Storage,
    meta: TableMeta,
    overwrite: bool,
    bound: BoundQuery,
    data_columns: list[Column],
    static: dict[str, str],
    dynamic: list[Column],
    projections: list[str],
) -> None:
    target = storage_table(meta.project, meta.name)
    staging = f'"_mc_insert_{uuid.uuid4().hex}"'
    written = [c.name for c in (*data_columns, *dynamic)]
    static_values = [f"'{v.replace(chr(39), chr(39) * 2)}' AS \"{k}\"" for k, v in static.items()]

    def work(cur: duckdb.DuckDBPyConnection) -> None:
        cur.execute(
            f"CREATE TEMP TABLE {staging} AS SELECT {', '.join(projections)} FROM {positional(bound)}"
        )
        specs: list[dict[str, str]]
        if dynamic:
            keys = ", ".join(f'"{c.name}"' for c in dynamic)
            specs = []
            for row in cur.execute(f"SELECT DISTINCT {keys} FROM {staging}").fetchall():
                if any(v is None or v == "" for v in row):
                    raise SqlError(
                        RUNTIME_ERROR,
                        f"Runtime error - dynamic partition value of {keys} cannot be NULL or empty: {row}",
                    )
                specs.append({**static, **{c.name: v for c, v in zip(dynamic, row, strict=True)}})
        else:
            specs = [static] if static else []
        if overwrite:
            where = storage.spec_predicate(static) if static else "TRUE"
            if dynamic:
                same_partition = " AND ".join(f'{staging}."{c.name}" = {target}."{c.name}"' for c in dynamic)
                where += f" AND EXISTS (SELECT 1 FROM {staging} WHERE {same_partition})"
            cur.execute(f"DELETE FROM {target} WHERE {where}")
        names = ", ".join(f'"{n}"' for n in (*written, *static))
        values = ", ".join([*(f'"{n}"' for n in written), *static_values])
        cur.execute(f"INSERT INTO {target} ({names}) SELECT {values} FROM {staging}")
        for spec in specs:
            storage.record_partition(cur, meta, spec)
        storage.mark_modified(cur, meta)
        cur.execute(f"DROP TABLE {staging}")

    try:
        storage.write_transaction(work)
    except duckdb.Error as exc:
        raise duckdb_error(exc) from None
    except StorageError as exc:
        raise semantic(str(exc)) from None
