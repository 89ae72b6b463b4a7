"""MaxCompute queries (SELECT, UNION, WITH ...) validated against the catalog and rewritten for DuckDB.

sqlglot's Hive dialect parses the query (MaxCompute SQL is Hive-like); the translator then
- rejects every syntax node it does not know to mean the same on DuckDB (loud failure, never a
  silently different answer),
- resolves table names against the emulator's catalog and replaces each by a subquery over its
  DuckDB storage table (columns in catalog order, partition columns last),
- enforces MaxCompute's full-scan and ORDER BY ... LIMIT rules,
- rewrites functions and casts to DuckDB with MaxCompute semantics (see ``sql_functions``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.dialects.hive import Hive
from sqlglot.errors import ParseError, TokenError

from .catalog import Column, TableMeta
from .sql_errors import (
    FULL_SCAN,
    RUNTIME_ERROR,
    SqlError,
    parse_error,
    position,
    semantic,
    table_not_found,
    unsupported,
)
from .sql_functions import now_literal, today_literal, translate_cast, translate_function
from .sql_lexer import Statement
from .storage import Storage
from .types import MCType


class MaxComputeDialect(Hive):
    """Hive syntax, but every function call stays an ``Anonymous`` node for ``sql_functions``."""

    class Parser(Hive.Parser):
        FUNCTIONS: dict = {}
        FUNCTION_PARSERS = {"CAST": Hive.Parser.FUNCTION_PARSERS["CAST"]}
        # MaxCompute's CAST fails on bad input (Hive's returns NULL).
        STRICT_CAST = True


# Syntax nodes whose DuckDB rendering means what the MaxCompute query means.
_ALLOWED_NODES: tuple[type[exp.Expression], ...] = (
    exp.Select,
    exp.Union,
    exp.Intersect,
    exp.Except,
    exp.Subquery,
    exp.From,
    exp.Join,
    exp.Table,
    exp.TableAlias,
    exp.With,
    exp.CTE,
    exp.Where,
    exp.Group,
    exp.Having,
    exp.Order,
    exp.Ordered,
    exp.Limit,
    exp.Offset,
    exp.Window,
    exp.WindowSpec,
    exp.Column,
    exp.Identifier,
    exp.Star,
    exp.Alias,
    exp.Literal,
    exp.Null,
    exp.Boolean,
    exp.Paren,
    exp.Neg,
    exp.Not,
    exp.And,
    exp.Or,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.NullSafeEQ,
    exp.Is,
    exp.In,
    exp.Between,
    exp.Like,
    exp.RegexpLike,
    exp.Add,
    exp.Sub,
    exp.Mul,
    exp.Div,
    exp.IntDiv,
    exp.Mod,
    exp.Case,
    exp.If,
    exp.Cast,
    exp.DataType,
    exp.DataTypeParam,
    exp.Anonymous,
    exp.Distinct,
    exp.Exists,
    exp.Tuple,
    exp.CurrentTimestamp,
    exp.CurrentDate,
    exp.Hint,
)
_CONSTRUCT_NAMES = {
    exp.Lateral: "LATERAL VIEW",
    exp.Distribute: "DISTRIBUTE BY",
    exp.Sort: "SORT BY",
    exp.Cluster: "CLUSTER BY",
    exp.DPipe: "the || operator",
    exp.Values: "VALUES",
    exp.Bracket: "array/map subscripts",
    exp.Dot: "struct field access",
    exp.ILike: "ILIKE",
}
_JOIN_KINDS = {"", "INNER", "OUTER", "CROSS", "SEMI", "ANTI"}

# DuckDB result types -> MaxCompute types; None means "cast it first" (see _RESULT_CASTS).
_RESULT_TYPES = {
    "BIGINT": "BIGINT",
    "INTEGER": "INT",
    "SMALLINT": "SMALLINT",
    "TINYINT": "TINYINT",
    "BOOLEAN": "BOOLEAN",
    "FLOAT": "FLOAT",
    "DOUBLE": "DOUBLE",
    "VARCHAR": "STRING",
    "BLOB": "BINARY",
    "DATE": "DATE",
    "TIMESTAMP_MS": "DATETIME",
    "TIMESTAMP": "TIMESTAMP_NTZ",
    "TIMESTAMP_NS": "TIMESTAMP",
}
# DuckDB types MaxCompute has no direct equivalent for, cast to the type MaxCompute would report.
_RESULT_CASTS = {
    "HUGEINT": "BIGINT",  # SUM(BIGINT)
    "UHUGEINT": "BIGINT",
    "UBIGINT": "BIGINT",
    "UINTEGER": "BIGINT",
    "USMALLINT": "INT",
    "UTINYINT": "SMALLINT",
    "TIMESTAMP_S": "DATETIME",
    '"NULL"': "STRING",  # SELECT NULL
    "NULL": "STRING",
}
_DECIMAL_RE = re.compile(r"^DECIMAL\((\d+),(\d+)\)$")


def result_type(duckdb_type: str) -> tuple[MCType, bool]:
    """The MaxCompute type of a DuckDB result column, and whether the value must be cast to it."""
    m = _DECIMAL_RE.match(duckdb_type)
    if m:
        return MCType("DECIMAL", precision=int(m.group(1)), scale=int(m.group(2))), False
    if duckdb_type in _RESULT_TYPES:
        return MCType(_RESULT_TYPES[duckdb_type]), False
    if duckdb_type in _RESULT_CASTS:
        return MCType(_RESULT_CASTS[duckdb_type]), True
    raise unsupported(f"query result of DuckDB type {duckdb_type} (no MaxCompute equivalent)")


@dataclass(frozen=True)
class BoundQuery:
    """A translated query with the DuckDB types of its result columns (known after binding)."""

    sql: str
    names: list[str]
    duckdb_types: list[str]


def parse_query(text: str, statement: Statement, line: int, col: int) -> exp.Query:
    """Parse one query; ``line``/``col`` is where ``text`` starts in the script (for error positions)."""

    def where(rel_line: int, rel_col: int) -> tuple[int, int]:
        return (line, col + rel_col - 1) if rel_line == 1 else (line + rel_line - 1, rel_col)

    try:
        trees = sqlglot.parse(text, read=MaxComputeDialect)
    except ParseError as exc:
        detail = exc.errors[0] if exc.errors else {}
        token = detail.get("highlight") or ""
        err_line, err_col = where(detail.get("line", 1), detail.get("col", 1) - max(len(token) - 1, 0))
        description = detail.get("description", "")
        # sqlglot's descriptions name its own classes when a clause is incomplete; those help nobody.
        hint = f" ({description})" if description and "<class" not in description else ""
        raise parse_error(f"invalid token '{token}'{hint}", err_line, err_col) from None
    except TokenError as exc:
        raise parse_error(str(exc), line, col) from None
    if len(trees) != 1 or trees[0] is None:
        raise parse_error("expecting exactly one query", line, col)
    tree = trees[0]
    if not isinstance(tree, exp.Query):
        raise unsupported(f"statement {type(tree).__name__.upper()}", line, col)
    _reject_trailing_commas(statement)
    return tree


def _reject_trailing_commas(statement: Statement) -> None:
    # sqlglot accepts "SELECT a, FROM t"; MaxCompute does not.
    tokens = statement.tokens
    for tok, nxt in zip(tokens, tokens[1:], strict=False):
        if (
            tok.kind == "op"
            and tok.value == ","
            and (
                nxt.is_word("FROM", "WHERE", "GROUP", "ORDER", "LIMIT", "HAVING", "UNION")
                or (nxt.kind == "op" and nxt.value == ")")
            )
        ):
            raise parse_error(f"invalid token '{nxt.value}'", nxt.line, nxt.col)


def _node_position(node: exp.Expression) -> tuple[int | None, int | None]:
    ident = node if isinstance(node, exp.Identifier) else node.find(exp.Identifier)
    meta = ident.meta if ident is not None else {}
    line, col = meta.get("line"), meta.get("col")
    if col is not None and "start" in meta and "end" in meta:
        col -= meta["end"] - meta["start"]  # sqlglot records where the token ends
    return line, col


class QueryTranslator:
    """Translate one parsed query of one statement; the instance is not reused across statements."""

    def __init__(self, storage: Storage, project: str, settings: Mapping[str, str], statement: Statement):
        self.storage = storage
        self.project = project.lower()
        self.settings = settings
        self.statement = statement
        self.now = datetime.now(timezone.utc).replace(tzinfo=None)  # naive UTC, as stored
        self.tables_read: list[TableMeta] = []

    def _setting_true(self, key: str, default: bool) -> bool:
        value = self.settings.get(key)
        return default if value is None else value.strip().lower() == "true"

    def _abs(self, line: int | None, col: int | None) -> tuple[int | None, int | None]:
        # Node positions are relative to the text handed to sqlglot, which starts the statement
        # for plain queries; an INSERT's query starts later on the same line, see translate().
        if line is None or col is None:
            return None, None
        return self._origin_line + line - 1, (self._origin_col + col - 1) if line == 1 else col

    def translate(self, tree: exp.Query, *, origin: tuple[int, int], name_outputs: bool = True) -> str:
        self._origin_line, self._origin_col = origin
        self._check_nodes(tree)
        self._check_order_by_limit(tree)
        if name_outputs:
            self._name_outputs(tree)
        self._resolve_tables(tree)
        self._translate_expressions(tree)
        return tree.sql(dialect="duckdb", comments=False)

    # -- validation ----------------------------------------------------------------------------
    def _check_nodes(self, tree: exp.Expression) -> None:
        for node in list(tree.walk()):
            if isinstance(node, exp.Hint):
                node.pop()  # optimiser hints (MAPJOIN ...) do not change results
                continue
            if type(node) not in _ALLOWED_NODES:
                name = _CONSTRUCT_NAMES.get(type(node), type(node).__name__)
                raise unsupported(name, *self._abs(*_node_position(node)))
            if isinstance(node, exp.Join):
                kind = (node.args.get("kind") or "").upper()
                if kind not in _JOIN_KINDS or node.args.get("method"):
                    raise unsupported(f"{node.args.get('method') or ''} {kind} JOIN".strip())
                if node.args.get("using"):
                    raise unsupported("JOIN ... USING")
            if isinstance(node, exp.Select) and node.args.get("into"):
                raise unsupported("SELECT ... INTO")

    def _check_order_by_limit(self, tree: exp.Expression) -> None:
        if not self._setting_true("odps.sql.validate.orderby.limit", True):
            return
        for node in tree.walk():
            if (
                isinstance(node, (exp.Select, exp.SetOperation))
                and node.args.get("order")
                and not node.args.get("limit")
            ):
                line, col = _node_position(node.args["order"])
                raise semantic(
                    "ORDER BY must be used with a LIMIT clause, please set odps.sql.validate.orderby.limit=false to use it",
                    *self._abs(line, col),
                )

    @staticmethod
    def _name_outputs(tree: exp.Query) -> None:
        # MaxCompute names unaliased expression columns _c0, _c1 ... by position.
        select = tree
        while isinstance(select, exp.SetOperation):
            select = select.left
        if not isinstance(select, exp.Select):
            return
        for i, projection in enumerate(select.expressions):
            if not isinstance(projection, (exp.Alias, exp.Column, exp.Star)):
                projection.replace(exp.alias_(projection.copy(), f"_c{i}"))

    # -- tables --------------------------------------------------------------------------------
    def _resolve_tables(self, tree: exp.Expression) -> None:
        allow_fullscan = self._setting_true("odps.sql.allow.fullscan", False)
        for table in list(tree.find_all(exp.Table)):
            line, col = self._abs(*_node_position(table))
            if table.args.get("catalog"):
                raise unsupported(f"three-part table name {table.sql(dialect='hive')}", line, col)
            name = table.name.lower()
            project = table.db.lower() if table.db else self.project
            if not table.db and name in _visible_ctes(table):
                continue
            meta = self.storage.get_table(project, name)
            if meta is None:
                raise table_not_found(project, name, line, col)
            alias = table.alias_or_name.lower()
            table_alias = table.args.get("alias")
            if table_alias is not None and table_alias.columns:
                raise unsupported("table alias with column names", line, col)
            if (
                meta.is_partitioned
                and not allow_fullscan
                and not _has_partition_predicate(table, meta, alias)
            ):
                raise SqlError(
                    FULL_SCAN,
                    f"{position(line, col)}Table({meta.project}.{meta.name}) is full scan with all partitions, "
                    "please specify partition predicates.",
                )
            self.tables_read.append(meta)
            table.replace(_storage_subquery(meta, alias))

    # -- expressions ---------------------------------------------------------------------------
    def _translate_expressions(self, tree: exp.Expression) -> None:
        # Deepest first, so a function's arguments are already translated when it is, and nodes
        # created by a translation are never translated twice.
        nodes = [
            n
            for n in tree.walk()
            if isinstance(
                n,
                (
                    exp.Anonymous,
                    exp.Cast,
                    exp.CurrentTimestamp,
                    exp.CurrentDate,
                    exp.Mod,
                    exp.IntDiv,
                    exp.Literal,
                ),
            )
        ]
        nodes.sort(key=lambda n: n.depth, reverse=True)
        for node in nodes:
            if isinstance(node, exp.Anonymous):
                node.replace(translate_function(node, self.now))
            elif isinstance(node, exp.Cast):
                node.replace(translate_cast(node))
            elif isinstance(node, exp.CurrentTimestamp):
                node.replace(now_literal(self.now))
            elif isinstance(node, exp.CurrentDate):
                node.replace(today_literal(self.now))
            elif isinstance(node, exp.Literal):
                # 1.5 and 1e3 are DOUBLE in MaxCompute (DECIMAL literals need a BD suffix); DuckDB reads DECIMAL.
                if not node.is_string and any(ch in node.this for ch in ".eE"):
                    node.replace(exp.Cast(this=node.copy(), to=exp.DataType.build("DOUBLE")))
            else:
                # x % 0 and x DIV 0 are NULL in MaxCompute; DuckDB raises.
                divisor = node.expression
                divisor.replace(exp.Nullif(this=divisor.copy(), expression=exp.Literal.number(0)))


def _visible_ctes(table: exp.Table) -> set[str]:
    names: set[str] = set()
    node: exp.Expression | None = table.parent
    while node is not None:
        if isinstance(node, exp.Query):
            names.update(cte.alias_or_name.lower() for cte in node.ctes)
        node = node.parent
    return names


def _has_partition_predicate(table: exp.Table, meta: TableMeta, alias: str) -> bool:
    """Does the WHERE (or the JOIN ... ON) of the table's own SELECT mention one of its partition columns?"""
    partition_names = {c.name for c in meta.partition_columns}
    conditions: list[exp.Expression] = []
    if isinstance(table.parent, exp.Join) and table.parent.args.get("on") is not None:
        conditions.append(table.parent.args["on"])
    select = table.find_ancestor(exp.Select)
    if select is not None and select.args.get("where") is not None:
        conditions.append(select.args["where"])
    qualifiers = {"", alias, meta.name}
    for condition in conditions:
        for column in condition.find_all(exp.Column):
            if column.name.lower() in partition_names and column.table.lower() in qualifiers:
                return True
    return False


def _storage_subquery(meta: TableMeta, alias: str) -> exp.Subquery:
    """``(SELECT data columns, partition columns FROM <storage table>) AS alias``."""
    storage_ident = exp.to_identifier(f"mc__{meta.project}__{meta.name}", quoted=True)
    columns = [
        exp.column(exp.to_identifier(c.name, quoted=True)) for c in (*meta.columns, *meta.partition_columns)
    ]
    select = exp.select(*columns).from_(exp.Table(this=storage_ident))
    return select.subquery(exp.to_identifier(alias, quoted=True))


# -- running on DuckDB -------------------------------------------------------------------------

_INTERNAL_NAME_RE = re.compile(r'"?mc__([a-z0-9_]+?)__([a-z0-9_]+)"?')


def duckdb_error(exc: duckdb.Error) -> SqlError:
    """Report a DuckDB failure in MaxCompute's terms, without the emulator's internal table names."""
    message = _INTERNAL_NAME_RE.sub(lambda m: f"{m.group(1)}.{m.group(2)}", str(exc)).split("\n\nLINE")[0]
    message = " ".join(message.split())
    if isinstance(exc, (duckdb.BinderException, duckdb.CatalogException)):
        return semantic(message.removeprefix("Binder Error: ").removeprefix("Catalog Error: "))
    if isinstance(exc, duckdb.ParserException):
        return unsupported(f"translated query rejected by DuckDB: {message}")
    return SqlError(RUNTIME_ERROR, f"Runtime error - {message}")


def bind(cur: duckdb.DuckDBPyConnection, sql: str) -> BoundQuery:
    """Bind a translated query (no execution) to learn its result columns."""
    try:
        rel = cur.sql(sql)
        return BoundQuery(sql, list(rel.columns), [str(t) for t in rel.types])
    except duckdb.Error as exc:
        raise duckdb_error(exc) from None


def positional(bound: BoundQuery) -> str:
    """The query with its result columns renamed _q0, _q1 ... so duplicate names cannot clash."""
    names = ", ".join(f"_q{i}" for i in range(len(bound.names)))
    return f"(\n{bound.sql}\n) AS _q({names})"


def result_columns(bound: BoundQuery) -> tuple[list[Column], list[str]]:
    """MaxCompute columns of a SELECT's result and the DuckDB projection producing them."""
    columns: list[Column] = []
    projections: list[str] = []
    for i, (name, duck_type) in enumerate(zip(bound.names, bound.duckdb_types, strict=True)):
        mc_type, needs_cast = result_type(duck_type)
        columns.append(Column(name.lower(), mc_type))
        projections.append(f"CAST(_q{i} AS {mc_type.duckdb})" if needs_cast else f"_q{i}")
    return columns, projections
