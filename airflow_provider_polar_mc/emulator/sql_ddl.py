"""DDL statements of the emulator: CREATE/DROP TABLE, ALTER TABLE ADD COLUMNS / CHANGE COLUMN (type widening) / ADD|DROP PARTITION, TRUNCATE.

Parsed by hand from the statement's tokens (the grammar is small and pyodps emits it in a fixed
shape, see ``odps.models.Table.gen_create_table_sql``) and applied through :class:`Storage`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalog import Column, InvalidName, PartitionSpec, normalize_name, storage_table
from .sql_errors import DDL_ERROR, SqlError, semantic, table_not_found, unsupported
from .sql_lexer import Statement, TokenCursor
from .storage import (
    InvalidArgument,
    NoSuchPartition,
    NoSuchTable,
    PartitionExists,
    Storage,
    StorageError,
    TableExists,
)
from .types import UnsupportedType, parse_type, widens


@dataclass(frozen=True)
class TableName:
    project: str
    name: str
    line: int
    col: int


def parse_table_name(cur: TokenCursor, default_project: str) -> TableName:
    """``t``, ``project.t`` (either part may be backquoted); three-part (schema) names are unsupported."""
    first = cur.expect_name("a table name")
    parts = [first.value]
    while cur.accept_op("."):
        parts.append(cur.expect_name("a table name").value)
    if len(parts) > 2:
        raise unsupported(f"three-part table name {'.'.join(parts)} (project schemas)", first.line, first.col)
    try:
        name = normalize_name(parts[-1], "table name")
        project = parts[0].lower() if len(parts) == 2 else default_project.lower()
    except InvalidName as exc:
        raise semantic(str(exc), first.line, first.col) from None
    return TableName(project, name, first.line, first.col)


def parse_column_defs(cur: TokenCursor, *, allow_constraints: bool = False) -> list[Column]:
    """``(name type [NOT NULL] [COMMENT '...'], ...)``; the opening parenthesis is consumed here."""
    cur.expect_op("(")
    columns: list[Column] = []
    while True:
        if allow_constraints and cur.peek() is not None and cur.peek().is_word("PRIMARY"):
            tok = cur.next()
            raise unsupported("PRIMARY KEY (transactional tables)", tok.line, tok.col)
        name_tok = cur.expect_name("a column name")
        try:
            name = normalize_name(name_tok.value, "column name")
        except InvalidName as exc:
            raise semantic(str(exc), name_tok.line, name_tok.col) from None
        col_type = parse_type_tokens(cur)
        nullable = True
        if cur.accept_word("NOT"):
            cur.expect_word("NULL")
            nullable = False
        comment = ""
        if cur.accept_word("COMMENT"):
            comment = cur.expect_string("a comment string").value
        nxt = cur.peek()
        if nxt is not None and nxt.is_word("DEFAULT"):
            raise unsupported("column DEFAULT values", nxt.line, nxt.col)
        columns.append(Column(name, col_type, comment, nullable))
        if cur.accept_op(","):
            continue
        cur.expect_op(")")
        return columns


def parse_type_tokens(cur: TokenCursor):
    """A column type: a word with optional ``(n)`` or ``(p,s)``, checked by :func:`types.parse_type`."""
    tok = cur.expect_name("a column type")
    text = tok.value
    nxt = cur.peek()
    if nxt is not None and nxt.kind == "op" and nxt.value in ("<",):
        raise unsupported(f"complex column type {tok.value.upper()}<...>", tok.line, tok.col)
    if cur.accept_op("("):
        args = [cur.next("a type argument").value]
        while cur.accept_op(","):
            args.append(cur.next("a type argument").value)
        cur.expect_op(")")
        text += "(" + ",".join(args) + ")"
    try:
        return parse_type(text)
    except UnsupportedType as exc:
        raise unsupported(str(exc), tok.line, tok.col) from None


def parse_partition_spec_tokens(cur: TokenCursor) -> PartitionSpec:
    """``PARTITION (k='v', k2=3)``; the PARTITION keyword is consumed here."""
    cur.expect_word("PARTITION")
    cur.expect_op("(")
    spec: PartitionSpec = {}
    while True:
        key_tok = cur.expect_name("a partition column")
        cur.expect_op("=")
        value_tok = cur.next("a partition value")
        if value_tok.kind not in ("string", "number", "word"):
            raise cur.error("a partition value")
        spec[key_tok.value.lower()] = value_tok.value
        if cur.accept_op(","):
            continue
        cur.expect_op(")")
        return spec


def parse_partition_specs(cur: TokenCursor) -> list[PartitionSpec]:
    """One or more ``PARTITION (...)`` clauses, separated by commas or blanks."""
    specs = [parse_partition_spec_tokens(cur)]
    while True:
        if cur.accept_op(","):
            specs.append(parse_partition_spec_tokens(cur))
        elif cur.peek() is not None and cur.peek().is_word("PARTITION"):
            specs.append(parse_partition_spec_tokens(cur))
        else:
            return specs


def storage_error(exc: StorageError, table: TableName) -> SqlError:
    """Report a storage failure as MaxCompute reports the equivalent DDL failure."""
    if isinstance(exc, NoSuchTable):
        return table_not_found(table.project, table.name, table.line, table.col)
    if isinstance(exc, (TableExists, PartitionExists, NoSuchPartition)):
        return SqlError(DDL_ERROR, f"Failed to run ddltask - {exc}")
    if isinstance(exc, InvalidArgument):
        return semantic(str(exc), table.line, table.col)
    return SqlError(DDL_ERROR, f"Failed to run ddltask - {exc}")


# -- statements ------------------------------------------------------------------------------


def run_create_table(storage: Storage, project: str, statement: Statement) -> None:
    cur = TokenCursor(statement)
    cur.expect_word("CREATE")
    for word in ("EXTERNAL", "VIEW", "MATERIALIZED", "TEMPORARY"):
        tok = cur.peek()
        if tok is not None and tok.is_word(word):
            raise unsupported(f"CREATE {word}", tok.line, tok.col)
    cur.expect_word("TABLE")
    if_not_exists = _accept_if_not_exists(cur)
    table = parse_table_name(cur, project)
    tok = cur.peek()
    if tok is not None and tok.is_word("LIKE", "AS", "LIFECYCLE"):
        raise unsupported(
            f"CREATE TABLE ... {tok.value.upper()} (only column lists are supported)", tok.line, tok.col
        )
    columns = parse_column_defs(cur, allow_constraints=True)
    comment = ""
    partition_columns: list[Column] = []
    lifecycle: int | None = None
    while not cur.at_end():
        if cur.accept_word("COMMENT"):
            comment = cur.expect_string("a comment string").value
        elif cur.accept_word("PARTITIONED"):
            cur.expect_word("BY")
            partition_columns = parse_column_defs(cur)
        elif cur.accept_word("LIFECYCLE"):
            days = cur.next("a number of days")
            if days.kind != "number" or not days.value.isdigit():
                raise cur.error("a number of days")
            lifecycle = int(days.value)
        else:
            tok = cur.peek()
            clause = tok.value.upper() if tok.kind == "word" else tok.value
            raise unsupported(f"CREATE TABLE clause {clause}", tok.line, tok.col)
    for pcol in partition_columns:
        if pcol.type.name not in ("STRING", "VARCHAR", "CHAR", "BIGINT", "INT", "SMALLINT", "TINYINT"):
            raise semantic(f"partition column {pcol.name} cannot be of type {pcol.type}")
    try:
        storage.create_table(
            table.project,
            table.name,
            columns,
            partition_columns,
            comment=comment,
            lifecycle=lifecycle,
            if_not_exists=if_not_exists,
        )
    except StorageError as exc:
        raise storage_error(exc, table) from None


def run_drop_table(storage: Storage, project: str, statement: Statement) -> None:
    cur = TokenCursor(statement)
    cur.expect_word("DROP")
    tok = cur.peek()
    if tok is not None and not tok.is_word("TABLE"):
        raise unsupported(f"DROP {tok.value.upper()}", tok.line, tok.col)
    cur.expect_word("TABLE")
    if_exists = _accept_if_exists(cur)
    table = parse_table_name(cur, project)
    cur.expect_end()
    try:
        storage.drop_table(table.project, table.name, if_exists=if_exists)
    except StorageError as exc:
        raise storage_error(exc, table) from None


def run_alter_table(storage: Storage, project: str, statement: Statement) -> None:
    cur = TokenCursor(statement)
    cur.expect_word("ALTER")
    cur.expect_word("TABLE")
    table = parse_table_name(cur, project)
    try:
        if cur.accept_word("ADD"):
            if cur.accept_word("COLUMNS"):
                if_not_exists = _accept_if_not_exists(cur)
                columns = parse_column_defs(cur)
                cur.expect_end()
                _add_columns(storage, table, columns, if_not_exists)
                return
            if_not_exists = _accept_if_not_exists(cur)
            specs = parse_partition_specs(cur)
            cur.expect_end()
            for spec in specs:
                storage.create_partition(table.project, table.name, spec, if_not_exists=if_not_exists)
            return
        if cur.accept_word("CHANGE"):
            cur.accept_word("COLUMN")
            old_tok = cur.expect_name("a column name")
            new_tok = cur.expect_name("the new column name")
            new_type = parse_type_tokens(cur)
            cur.expect_end()
            if old_tok.value.lower() != new_tok.value.lower():
                raise unsupported("ALTER TABLE ... CHANGE COLUMN renaming and retyping at once", new_tok.line, new_tok.col)
            _change_column_type(storage, table, old_tok.value.lower(), new_type, old_tok.line, old_tok.col)
            return
        if cur.accept_word("DROP"):
            if_exists = _accept_if_exists(cur)
            tok = cur.peek()
            if tok is not None and not tok.is_word("PARTITION"):
                raise unsupported(f"ALTER TABLE ... DROP {tok.value.upper()}", tok.line, tok.col)
            specs = parse_partition_specs(cur)
            cur.expect_end()
            for spec in specs:
                storage.drop_partition(table.project, table.name, spec, if_exists=if_exists)
            return
    except StorageError as exc:
        raise storage_error(exc, table) from None
    tok = cur.peek()
    if tok is None:
        raise cur.error("an ALTER TABLE action")
    raise unsupported(f"ALTER TABLE ... {tok.value.upper()}", tok.line, tok.col)


def run_truncate_table(storage: Storage, project: str, statement: Statement) -> None:
    cur = TokenCursor(statement)
    cur.expect_word("TRUNCATE")
    cur.expect_word("TABLE")
    table = parse_table_name(cur, project)
    specs = parse_partition_specs(cur) if not cur.at_end() else []
    cur.expect_end()
    meta = storage.get_table(table.project, table.name)
    if meta is None:
        raise table_not_found(table.project, table.name, table.line, table.col)
    target = storage_table(meta.project, meta.name)
    if not specs:
        storage.run_in_transaction([f"DELETE FROM {target}"])
        return
    predicates = []
    try:
        for spec in specs:
            spec = storage.canonical_spec(meta, spec, prefix_ok=True)
            if not storage.list_partitions(meta.project, meta.name, spec):
                raise NoSuchPartition(f"Partition not found - {spec}")
            predicates.append(storage.spec_predicate(spec))
    except StorageError as exc:
        raise storage_error(exc, table) from None
    storage.run_in_transaction([f"DELETE FROM {target} WHERE {' OR '.join(f'({p})' for p in predicates)}"])


def _add_columns(storage: Storage, table: TableName, columns: list[Column], if_not_exists: bool) -> None:
    meta = storage.get_table(table.project, table.name)
    if meta is None:
        raise table_not_found(table.project, table.name, table.line, table.col)
    if if_not_exists:
        columns = [c for c in columns if meta.column(c.name) is None]
    if columns:
        storage.add_columns(table.project, table.name, columns)


def _change_column_type(storage: Storage, table: TableName, column: str, new_type, line: int, col: int) -> None:
    meta = storage.get_table(table.project, table.name)
    if meta is None:
        raise table_not_found(table.project, table.name, table.line, table.col)
    existing = meta.column(column)
    if existing is None or any(p.name == column for p in meta.partition_columns):
        raise semantic(f"column {column} cannot be resolved in table {meta.name}", line, col)
    if not widens(existing.type, new_type):
        raise semantic(f"changing column data type from {existing.type} to {new_type} is not supported", line, col)
    storage.change_column_type(table.project, table.name, column, new_type)


def _accept_if_not_exists(cur: TokenCursor) -> bool:
    if cur.accept_word("IF"):
        cur.expect_word("NOT")
        cur.expect_word("EXISTS")
        return True
    return False


def _accept_if_exists(cur: TokenCursor) -> bool:
    if cur.accept_word("IF"):
        cur.expect_word("EXISTS")
        return True
    return False
