"""Just enough of MySQL's DDL to tell what a binlog QueryEvent does to a migrated table.

The incremental migration follows exactly one kind of schema change, ``ALTER TABLE ... ADD
[COLUMN]`` (new columns are added to ``_base``/``_log`` before rows carrying them are written).
Everything else that touches a migrated table's columns, key or rows outside the row events (DROP /
MODIFY / CHANGE / RENAME COLUMN, RENAME / DROP / TRUNCATE TABLE, DROP / TRUNCATE / EXCHANGE
PARTITION, CONVERT TO CHARACTER SET, primary key changes ...) is classified ``unsupported`` so the
reader can stop with a clear message instead of silently diverging. Changes that leave columns and
rows alone (indexes, engine, comments, ALGORITHM/LOCK, partitioning that keeps rows) are ``ignored``.
An ALTER clause this parser does not recognise is ``unsupported``: failing loudly is the safe default.

Not a SQL parser: a tokenizer that understands quotes, backquoted identifiers, comments (including
executable ``/*! ... */`` and MariaDB ``/*M! ... */`` comments, whose content counts) and
parentheses, plus a clause classifier. Pure functions, no database needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from airflow_provider_polar_mc.core import sqltext
from airflow_provider_polar_mc.core.model import SourceColumn
from airflow_provider_polar_mc.core.sqltext import Token

# --- tokens -----------------------------------------------------------------------------------------


def _split_top_level(tokens: list[Token], separator: str = ",") -> list[list[Token]]:
    parts: list[list[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token.kind == "symbol" and token.text == "(":
            depth += 1
        elif token.kind == "symbol" and token.text == ")":
            depth -= 1
        if depth == 0 and token.kind == "symbol" and token.text == separator:
            parts.append([])
        else:
            parts[-1].append(token)
    return [p for p in parts if p]


def _render(tokens: list[Token]) -> str:
    out: list[str] = []
    for token in tokens:
        text = sqltext.quote_mysql_name(token.text) if token.kind == "quoted_name" else token.text
        if out and (token.text in (")", ",", ".") or out[-1] in ("(", ".")):
            out[-1] += text
        else:
            out.append(text)
    return " ".join(out)


# --- what a statement does ------------------------------------------------------------------------


@dataclass(frozen=True)
class AddedColumn:
    """One ``ADD COLUMN``: the column (ordinal 0: the position is resolved against the tracked schema)
    and where it goes (``first``, or ``after`` a column; neither: at the end)."""

    column: SourceColumn
    first: bool = False
    after: str | None = None
    if_not_exists: bool = False
    collation: str | None = None  # an explicit COLLATE, for filter evaluation
    # What rows that exist at the DDL get without any row event (DEFAULT x, NOT NULL's implicit
    # default, AUTO_INCREMENT, a generated column); None: NULL, nothing to fill.
    existing_rows: ExistingRowsValue | None = None

    @property
    def fills_existing_rows(self) -> str | None:
        """Why existing rows get a non-NULL value no row event carries, or None."""
        return self.existing_rows.reason if self.existing_rows else None


@dataclass(frozen=True)
class DroppedColumn:
    """One ``DROP [COLUMN] [IF EXISTS] name``."""

    name: str
    if_exists: bool = False


@dataclass(frozen=True)
class RenamedColumn:
    """``RENAME COLUMN old TO new``, ``CHANGE old new <definition>`` or ``MODIFY old <definition>``
    (``new`` == ``old``); with a ``definition`` the reader follows it only when every existing value and
    the MaxCompute type stay as they are (a widening)."""

    old: str
    new: str
    definition: AddedColumn | None = None


@dataclass(frozen=True)
class CreatedTable:
    """``CREATE TABLE t (<columns>, PRIMARY KEY (...)) [DEFAULT CHARSET=x]``: what a new table starts as."""

    columns: tuple[AddedColumn, ...]
    primary_key: tuple[str, ...]
    charset: str | None = None


@dataclass(frozen=True)
class RenamedTable:
    """``ALTER TABLE t RENAME [TO | AS] target``."""

    target: tuple[str | None, str]


@dataclass(frozen=True)
class ExistingRowsValue:
    """The value ``ADD COLUMN`` gives the rows that exist at the DDL.

    ``known``: the statement alone says it: ``text`` is MySQL's text of the value (a constant
    DEFAULT, or the type's implicit default for NOT NULL; None for a zero date, which the migration
    keeps as NULL). Not known: only the server can tell (AUTO_INCREMENT, generated columns,
    expressions and CURRENT_TIMESTAMP, TIMESTAMP constants read in the DDL session's time zone,
    types whose defaults the migration does not spell: BIT, JSON, spatial, binary strings)."""

    reason: str
    text: str | None = None
    known: bool = False


@dataclass(frozen=True)
class TableDDL:
    """The effect of one DDL statement on one table ``(database, table)``.

    ``action``: ``add_columns`` (only ADD COLUMN clauses, plus ignorable ones), ``drop_columns``
    (only DROP COLUMN clauses, plus ignorable ones), ``rename_columns`` (RENAME COLUMN, or CHANGE
    with a new name), ``drop_table``, ``rename_table`` (the table leaves under another name:
    ``reason`` says which), ``truncate``
    (TRUNCATE TABLE), ``ignored`` (nothing the migration has to follow) or ``unsupported`` (``reason``
    says which part).
    """

    database: str | None  # None: the statement's default database
    table: str
    action: str
    added: tuple[AddedColumn, ...] = ()
    reason: str = ""
    dropped: tuple[DroppedColumn, ...] = ()
    renamed: tuple[RenamedColumn, ...] = ()
    created: CreatedTable | None = None  # create_table: the definition (None: not one to follow; reason)
    if_not_exists: bool = False
    default_charset: str | None = None  # ALTER TABLE ... [DEFAULT] CHARACTER SET x


@dataclass(frozen=True)
class ParsedDDL:
    """Every table a statement touches; ``tables`` empty for statements that touch none (BEGIN,
    CREATE DATABASE, GRANT ...)."""

    statement: str
    tables: tuple[TableDDL, ...] = field(default_factory=tuple)


_DDL_VERBS = ("ALTER", "RENAME", "DROP", "TRUNCATE", "CREATE")


def parse_ddl(statement: str) -> ParsedDDL:
    """Classify a binlog QueryEvent statement per table it touches (see the module docstring)."""
    head = statement.lstrip()[:16].upper()
    if head.startswith(("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "XA ")):
        return ParsedDDL(statement)
    tokens = sqltext.tokenize_mysql(statement)
    if not tokens or tokens[0].upper not in _DDL_VERBS:
        return ParsedDDL(statement)
    verb = tokens[0].upper
    if verb == "ALTER":
        return ParsedDDL(statement, _parse_alter(tokens))
    if verb == "RENAME":
        return ParsedDDL(statement, _parse_rename(tokens))
    if verb == "DROP":
        return ParsedDDL(statement, _parse_drop(tokens))
    if verb == "TRUNCATE":
        rest = tokens[1:]
        if rest and rest[0].upper == "TABLE":
            rest = rest[1:]
        name, _ = _qualified_name(rest)
        # Deletes every row without row events: the merge empties the replica at this position.
        return ParsedDDL(statement, (TableDDL(*name, "truncate"),))
    return ParsedDDL(statement, _parse_create(tokens))


def _qualified_name(tokens: list[Token]) -> tuple[tuple[str | None, str], list[Token]]:
    """``db.table`` / ``table`` at the start of ``tokens`` -> ((db, table), rest)."""
    if not tokens or tokens[0].kind not in ("word", "quoted_name"):
        raise ValueError(f"expected a table name, got {_render(tokens[:3])!r}")
    if len(tokens) >= 3 and tokens[1].text == "." and tokens[1].kind == "symbol":
        return (tokens[0].text, tokens[2].text), tokens[3:]
    return (None, tokens[0].text), tokens[1:]


def _skip_words(tokens: list[Token], *words: str) -> list[Token]:
    """Drop the optional keyword sequence ``words`` from the start of ``tokens`` if present."""
    if len(tokens) >= len(words) and all(t.upper == w for t, w in zip(tokens, words, strict=False)):
        return tokens[len(words):]
    return tokens


def _parse_rename(tokens: list[Token]) -> tuple[TableDDL, ...]:
    rest = tokens[1:]
    if not rest or rest[0].upper not in ("TABLE", "TABLES"):
        return ()  # RENAME USER ...
    out: list[TableDDL] = []
    for pair in _split_top_level(rest[1:]):
        pair = _skip_words(pair, "IF", "EXISTS")
        source, after = _qualified_name(pair)
        after = [t for t in after if t.upper not in ("WAIT", "NOWAIT") and t.kind != "number"]
        target, _ = _qualified_name(after[1:]) if after and after[0].upper == "TO" else ((None, ""), [])
        target_name = ".".join(p for p in target if p)
        out.append(TableDDL(*source, "rename_table", reason=f"RENAME TABLE to {target_name}"))
        if target[1]:
            out.append(_renamed_onto(target))
    return tuple(out)


def _renamed_onto(target: tuple[str | None, str]) -> TableDDL:
    # Another table takes a migrated table's name (pt-osc / gh-ost cut-over, a swap): its rows were never
    # read, so following it needs a new snapshot of the table.
    return TableDDL(*target, "unsupported", reason="RENAME TABLE onto a migrated table's name (another table takes it)")


def _parse_drop(tokens: list[Token]) -> tuple[TableDDL, ...]:
    rest = tokens[1:]
    if rest and rest[0].upper == "TEMPORARY":
        return ()  # temporary tables are never migrated
    if rest and rest[0].upper == "INDEX":  # DROP INDEX name ON table
        rest = rest[2:] if len(rest) > 1 else rest
        index_name = tokens[2].text.upper() if len(tokens) > 2 else ""
        rest = _skip_words(rest, "ON")
        name, _ = _qualified_name(rest)
        if index_name == "PRIMARY":
            return (TableDDL(*name, "unsupported", reason="dropping the primary key"),)
        return (TableDDL(*name, "ignored"),)
    if not rest or rest[0].upper != "TABLE":
        return ()  # DROP DATABASE/VIEW/TRIGGER/...: no table's columns or rows change
    rest = _skip_words(rest[1:], "IF", "EXISTS")
    out = []
    for part in _split_top_level(rest):
        name, _ = _qualified_name(part)
        out.append(TableDDL(*name, "drop_table", reason="DROP TABLE"))
    return tuple(out)


def _parse_create(tokens: list[Token]) -> tuple[TableDDL, ...]:
    rest = _skip_words(tokens[1:], "OR", "REPLACE")
    replace = len(rest) != len(tokens) - 1
    if rest and rest[0].upper == "TEMPORARY":
        return ()
    if rest and rest[0].upper in ("UNIQUE", "FULLTEXT", "SPATIAL"):
        rest = rest[1:]
    if rest and rest[0].upper == "INDEX":  # CREATE INDEX name ON table (...): no column change
        on = next((i for i, t in enumerate(rest) if t.upper == "ON"), None)
        if on is None:
            return ()
        name, _ = _qualified_name(rest[on + 1:])
        return (TableDDL(*name, "ignored"),)
    if not rest or rest[0].upper != "TABLE":
        return ()
    after_if = _skip_words(rest[1:], "IF", "NOT", "EXISTS")
    if_not_exists = len(after_if) != len(rest) - 1
    name, body = _qualified_name(after_if)
    # The reader decides: a migrated table's name re-created is refused (IF NOT EXISTS on one that exists
    # is a no-op), a new table matching the selection is followed from here when ``created`` says how.
    created, reason = _created_table(body)
    return (TableDDL(*name, "create_table", reason=reason, created=created, if_not_exists=if_not_exists and not replace),)


def _created_table(body: list[Token]) -> tuple[CreatedTable | None, str]:
    """The columns and key of ``(<definitions>) [options]``; (None, why) for ``LIKE``, ``AS SELECT`` and
    what this parser does not understand (its rows, if any, were never in row events we read)."""
    if not body or body[0].text != "(" or body[0].kind != "symbol":
        return None, "CREATE TABLE ... LIKE / SELECT copies rows or a definition the binlog does not carry"
    depth, end = 0, None
    for i, token in enumerate(body):
        if token.kind == "symbol" and token.text in "()":
            depth += 1 if token.text == "(" else -1
            if depth == 0:
                end = i
                break
    if end is None:
        return None, "unbalanced parentheses"
    options = body[end + 1 :]
    if any(t.upper in ("SELECT", "AS", "LIKE", "PARTITION") for t in options):
        return None, "CREATE TABLE ... SELECT (or PARTITION BY): rows or a layout the row events do not carry"
    columns: list[AddedColumn] = []
    primary: tuple[str, ...] = ()
    for part in _split_top_level(body[1:end]):
        words = [t.upper for t in part]
        if words[:2] == ["PRIMARY", "KEY"] or (words[:1] == ["CONSTRAINT"] and "PRIMARY" in words):
            start = next(i for i, t in enumerate(part) if t.text == "(")
            primary = tuple(t.text for t in part[start + 1 :] if t.kind in ("word", "quoted_name") and t.upper != "USING")
            continue
        if words[0] in _INDEX_WORDS:
            continue  # indexes, unique keys, checks, foreign keys: no column
        inline = [i for i, w in enumerate(words) if w == "PRIMARY" and i + 1 < len(words) and words[i + 1] == "KEY"]
        if inline:
            part = part[: inline[0]] + part[inline[0] + 2 :]
            primary = (part[0].text,)
        try:
            columns.append(parse_column_definition(part))
        except ValueError as exc:
            return None, f"column {_render(part[:1])}: {exc}"
    if not primary:
        return None, "no primary key (the merge needs one)"
    return CreatedTable(tuple(columns), primary, _table_charset(options)), ""


def _table_charset(options: list[Token]) -> str | None:
    """``[DEFAULT] CHARSET [=] x`` / ``CHARACTER SET [=] x`` / ``COLLATE [=] x_...`` among table options."""
    values = [t for t in options if not (t.kind == "symbol" and t.text == "=")]
    for i, token in enumerate(values[:-1]):
        if token.upper == "CHARSET" or (token.upper == "SET" and i and values[i - 1].upper == "CHARACTER"):
            return values[i + 1].text.strip("'\"").lower()
    for i, token in enumerate(values[:-1]):
        if token.upper == "COLLATE":
            return values[i + 1].text.strip("'\"").lower().split("_")[0]
    return None


# ALTER TABLE clauses that change neither columns nor rows.
_IGNORED_CLAUSE_STARTS = frozenset({
    "ENGINE", "COMMENT", "AUTO_INCREMENT", "ROW_FORMAT", "KEY_BLOCK_SIZE", "ALGORITHM", "LOCK", "FORCE",
    "STATS_PERSISTENT", "STATS_AUTO_RECALC", "STATS_SAMPLE_PAGES", "PACK_KEYS", "CHECKSUM", "PAGE_CHECKSUM",
    "DELAY_KEY_WRITE", "ORDER", "ENABLE", "DISABLE", "AVG_ROW_LENGTH", "MAX_ROWS", "MIN_ROWS", "COMPRESSION",
    "ENCRYPTION", "ENCRYPTED", "ENCRYPTION_KEY_ID", "TABLESPACE", "INSERT_METHOD", "UNION", "DATA", "INDEX",
    "PAGE_COMPRESSED", "PAGE_COMPRESSION_LEVEL", "TRANSACTIONAL", "SECONDARY_ENGINE", "AUTOEXTEND_SIZE",
    "PARTITION", "REMOVE", "COALESCE", "REORGANIZE", "ANALYZE", "CHECK", "OPTIMIZE", "REBUILD", "REPAIR",
    "WITH", "WITHOUT", "IMPORT", "DISCARD", "UPGRADE", "SEQUENCE",
})  # fmt: skip
_INDEX_WORDS = frozenset({"INDEX", "KEY", "UNIQUE", "FULLTEXT", "SPATIAL", "FOREIGN", "CHECK", "CONSTRAINT",
                          "PRIMARY", "PARTITION", "PERIOD", "SYSTEM", "VECTOR"})


def _parse_alter(tokens: list[Token]) -> tuple[TableDDL, ...]:
    rest = tokens[1:]
    while rest and rest[0].upper in ("ONLINE", "IGNORE", "OFFLINE"):
        rest = rest[1:]
    if not rest or rest[0].upper != "TABLE":
        return ()  # ALTER DATABASE/VIEW/USER/...
    rest = _skip_words(rest[1:], "IF", "EXISTS")
    name, body = _qualified_name(rest)
    added: list[AddedColumn] = []
    dropped: list[DroppedColumn] = []
    renamed: list[RenamedColumn] = []
    default_charset: str | None = None
    for clause in _split_top_level(body):
        result = _classify_alter_clause(clause)
        if isinstance(result, str):
            return (TableDDL(*name, "unsupported", reason=result),)
        if isinstance(result, list):
            added.extend(result)
        elif isinstance(result, DroppedColumn):
            dropped.append(result)
        elif isinstance(result, RenamedColumn):
            renamed.append(result)
        elif isinstance(result, RenamedTable):
            if len(_split_top_level(body)) != 1:
                return (TableDDL(*name, "unsupported", reason="RENAME TO together with other changes"),)
            target_name = ".".join(p for p in result.target if p)
            return (TableDDL(*name, "rename_table", reason=f"RENAME TABLE to {target_name}"), _renamed_onto(result.target))
        elif isinstance(result, tuple):
            default_charset = result[1]
    if sum(bool(kind) for kind in (added, dropped, renamed)) > 1:
        return (TableDDL(*name, "unsupported", reason="ADD, DROP and RENAME COLUMN mixed in one statement"),)
    action = "add_columns" if added else "drop_columns" if dropped else "rename_columns" if renamed else "ignored"
    return (TableDDL(*name, action, tuple(added), default_charset=default_charset, dropped=tuple(dropped),
                     renamed=tuple(renamed)),)  # fmt: skip


def _classify_alter_clause(
    clause: list[Token],
) -> str | list[AddedColumn] | DroppedColumn | RenamedColumn | RenamedTable | tuple[str, str] | None:
    """None: ignorable; a list: added columns; a DroppedColumn; ("charset", x): new default charset; a
    str: why the clause is unsupported."""
    words = [t.upper for t in clause]
    first = words[0]
    text = _render(clause)
    if first == "ADD":
        rest = clause[1:]
        if rest and rest[0].upper == "COLUMN":
            return _parse_added_columns(rest[1:], text)
        if rest and rest[0].kind == "word" and rest[0].upper in _INDEX_WORDS:
            if "PRIMARY" in words:
                return f"{text}: a primary key change"
            if rest[0].upper in ("PARTITION", "PERIOD", "SYSTEM"):
                return None if rest[0].upper == "PARTITION" else f"{text}: adds hidden columns"
            return None
        return _parse_added_columns(rest, text)
    if first == "DROP":
        second = words[1] if len(words) > 1 else ""
        if second == "PRIMARY":
            return f"{text}: a primary key change"
        if second in ("INDEX", "KEY", "FOREIGN", "CHECK", "CONSTRAINT"):
            return None
        if second == "PARTITION":
            return f"{text}: deletes rows without row events"
        rest = clause[2:] if second == "COLUMN" else clause[1:]
        if_exists = [t.upper for t in rest[:2]] == ["IF", "EXISTS"]
        rest = rest[2:] if if_exists else rest
        if len(rest) == 1 and rest[0].kind in ("word", "quoted_name"):
            return DroppedColumn(rest[0].text, if_exists)
        return f"{text}: not recognised"
    if first == "CHANGE":
        rest = clause[2:] if len(words) > 1 and words[1] == "COLUMN" else clause[1:]
        if len(rest) >= 3 and rest[0].kind in ("word", "quoted_name"):
            try:
                definition = parse_column_definition(rest[1:])
            except ValueError as exc:
                return f"{text}: {exc}"
            return RenamedColumn(rest[0].text, definition.column.name, definition)
        return f"{text}: not recognised"
    if first == "MODIFY":
        rest = clause[2:] if len(words) > 1 and words[1] == "COLUMN" else clause[1:]
        try:
            definition = parse_column_definition(rest)
        except ValueError as exc:
            return f"{text}: {exc}"
        return RenamedColumn(definition.column.name, definition.column.name, definition)
    if first == "RENAME":
        second = words[1] if len(words) > 1 else ""
        if second in ("INDEX", "KEY"):
            return None
        if second == "COLUMN":
            rest = clause[2:]
            if len(rest) == 3 and rest[1].upper == "TO" and all(t.kind in ("word", "quoted_name") for t in (rest[0], rest[2])):
                return RenamedColumn(rest[0].text, rest[2].text)
            return f"{text}: not recognised"
        rest = clause[2:] if second in ("TO", "AS") else clause[1:]
        try:
            target, after = _qualified_name(rest)
        except ValueError:
            return f"{text}: not recognised"
        return RenamedTable(target) if not after else f"{text}: not recognised"
    if first == "ALTER":
        # ALTER [COLUMN] c SET/DROP DEFAULT, SET [IN]VISIBLE; ALTER INDEX/CHECK/CONSTRAINT ...
        if any(w in ("DEFAULT", "VISIBLE", "INVISIBLE") for w in words) or words[1:2] in (["INDEX"], ["CHECK"],
                                                                                            ["CONSTRAINT"]):
            return None
        return f"{text}: not a change the migration can follow"
    if first == "CONVERT":
        return f"{text}: re-encodes every text column"
    if first in ("TRUNCATE", "EXCHANGE"):
        return f"{text}: changes rows without row events"
    if first in ("DEFAULT", "CHARACTER", "CHARSET", "COLLATE"):
        return _default_charset(clause)
    if first == "PARTITION" and len(words) > 1 and words[1] == "BY":
        return None
    if first in ("ADD", "DROP") or first not in _IGNORED_CLAUSE_STARTS:
        return f"{text}: not recognised"
    return None


def _default_charset(clause: list[Token]) -> tuple[str, str] | None:
    values = [t for t in clause if t.kind in ("word", "quoted_name", "string") and t.upper not in
              ("DEFAULT", "CHARACTER", "SET", "CHARSET", "COLLATE")]
    if not values:
        return None
    words = [t.upper for t in clause]
    value = values[0].text.strip("'\"").lower()
    if "COLLATE" in words and "SET" not in words and "CHARSET" not in words:
        value = value.split("_")[0]
    return ("charset", value)


def _parse_added_columns(tokens: list[Token], text: str) -> list[AddedColumn] | str:
    if_not_exists = False
    if [t.upper for t in tokens[:3]] == ["IF", "NOT", "EXISTS"]:
        tokens, if_not_exists = tokens[3:], True
    if tokens and tokens[0].text == "(" and tokens[0].kind == "symbol":
        inner = tokens[1:-1] if tokens[-1].text == ")" else tokens[1:]
        definitions = _split_top_level(inner)
    else:
        definitions = [tokens]
    out: list[AddedColumn] = []
    for definition in definitions:
        try:
            out.append(parse_column_definition(definition, if_not_exists))
        except ValueError as exc:
            return f"{text}: {exc}"
    return out


# --- column definitions ----------------------------------------------------------------------------

_TYPE_ALIASES = {
    "integer": "int", "int4": "int", "int1": "tinyint", "int2": "smallint", "int3": "mediumint", "int8": "bigint",
    "middleint": "mediumint", "dec": "decimal", "fixed": "decimal", "numeric": "decimal", "real": "double",
    "float4": "float", "float8": "double", "bool": "tinyint", "boolean": "tinyint", "nchar": "char",
    "nvarchar": "varchar", "character": "char",
}  # fmt: skip
_INTEGER_TYPES = ("tinyint", "smallint", "mediumint", "int", "bigint")
_TEXT_TYPES = ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set")
_TEMPORAL_FSP = ("datetime", "timestamp", "time")
_KNOWN_TYPES = frozenset({
    *_INTEGER_TYPES, "decimal", "float", "double", "bit", *_TEXT_TYPES, "binary", "varbinary", "tinyblob", "blob",
    "mediumblob", "longblob", "date", "datetime", "timestamp", "time", "year", "json", "geometry", "point",
    "linestring", "polygon", "multipoint", "multilinestring", "multipolygon", "geometrycollection", "geomcollection",
    "serial", "long", "uuid", "inet4", "inet6",
})  # fmt: skip


def parse_column_definition(tokens: list[Token], if_not_exists: bool = False) -> AddedColumn:
    """``name type [attributes] [FIRST | AFTER col]`` -> :class:`AddedColumn`; ``character_set`` is
    left None for text types without an explicit one (the caller applies the table default)."""
    if len(tokens) < 2 or tokens[0].kind not in ("word", "quoted_name"):
        raise ValueError("expected a column name and a type")
    name = tokens[0].text
    type_word = tokens[1].text.lower()
    i = 2
    if type_word == "double" and i < len(tokens) and tokens[i].upper == "PRECISION":
        i += 1
    if type_word == "national" and i < len(tokens):
        type_word, i = tokens[i].text.lower(), i + 1
    if type_word in ("character", "char") and i < len(tokens) and tokens[i].upper == "VARYING":
        type_word, i = "varchar", i + 1
    if type_word == "long" and i < len(tokens) and tokens[i].upper in ("VARCHAR", "VARBINARY"):
        type_word, i = ("mediumtext" if tokens[i].upper == "VARCHAR" else "mediumblob"), i + 1
    data_type = _TYPE_ALIASES.get(type_word, type_word)
    if data_type not in _KNOWN_TYPES:
        raise ValueError(f"unknown column type {tokens[1].text!r}")
    args: list[Token] = []
    if i < len(tokens) and tokens[i].text == "(" and tokens[i].kind == "symbol":
        depth, j = 0, i
        while j < len(tokens):
            if tokens[j].text == "(" and tokens[j].kind == "symbol":
                depth += 1
            elif tokens[j].text == ")" and tokens[j].kind == "symbol":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        args, i = tokens[i + 1 : j], j + 1
    attributes = tokens[i:]
    words = [t.upper for t in attributes]

    def word_after(*keys: str) -> str | None:
        for k, w in enumerate(words):
            if w in keys and k + 1 < len(attributes):
                following = attributes[k + 1]
                if following.upper == "SET" and k + 2 < len(attributes):  # CHARACTER SET x
                    following = attributes[k + 2]
                return following.text.strip("'\"").lower()
        return None

    unsigned = "UNSIGNED" in words or "ZEROFILL" in words
    numbers = [int(float(t.text)) for t in args if t.kind == "number"]
    precision = scale = fsp = None
    column_type = data_type
    if type_word in ("bool", "boolean"):
        column_type = "tinyint(1)"
    elif data_type == "serial":
        data_type, column_type, unsigned = "bigint", "bigint", True
    elif data_type == "long":
        data_type = column_type = "mediumtext"
    elif data_type in ("enum", "set"):
        column_type = f"{data_type}({','.join(_render([t]) for t in args if t.kind == 'string')})"
    elif args:
        column_type = f"{data_type}({','.join(str(n) for n in numbers)})"
    if data_type == "decimal":
        precision = numbers[0] if numbers else 10
        scale = numbers[1] if len(numbers) > 1 else 0
        column_type = f"decimal({precision},{scale})"
    elif data_type == "bit":
        precision = numbers[0] if numbers else 1
        column_type = f"bit({precision})"
    elif data_type in _TEMPORAL_FSP:
        fsp = numbers[0] if numbers else 0
    elif data_type in _INTEGER_TYPES:
        scale = 0
    if unsigned and data_type in (*_INTEGER_TYPES, "decimal", "float", "double"):
        column_type += " unsigned"
    if "ZEROFILL" in words:
        column_type += " zerofill"
    charset = None
    if data_type in _TEXT_TYPES:
        charset = word_after("CHARACTER", "CHARSET")
        collation = word_after("COLLATE")
        if charset is None and collation:
            charset = collation.split("_")[0]
        if type_word in ("nchar", "nvarchar", "national"):
            charset = charset or "utf8mb3"
    if "PRIMARY" in words:
        raise ValueError("a new primary key column changes the table's key")
    generated = "GENERATED" in words or "AS" in words
    nullable = not any(w == "NOT" and k + 1 < len(words) and words[k + 1] == "NULL" for k, w in enumerate(words))
    first = "FIRST" in words
    after = None
    if "AFTER" in words:
        k = words.index("AFTER")
        if k + 1 >= len(attributes):
            raise ValueError("AFTER without a column")
        after = attributes[k + 1].text
    column = SourceColumn(
        name=name, ordinal=0, data_type=data_type, column_type=column_type, nullable=nullable,
        numeric_precision=precision, numeric_scale=scale, datetime_precision=fsp, character_set=charset,
        generated=generated,
    )
    collation = word_after("COLLATE") if data_type in _TEXT_TYPES else None
    return AddedColumn(
        column,
        first=first,
        after=after,
        if_not_exists=if_not_exists,
        collation=collation,
        existing_rows=_existing_rows(column, attributes, words, args),
    )


# Types whose implicit NOT NULL default and constant defaults the migration spells (MySQL's "Data
# Type Default Values"); the others' existing rows are known only to the server.
_SPELLED_DEFAULTS = (*_INTEGER_TYPES, "decimal", "float", "double", "char", "varchar", "tinytext", "text",
                     "mediumtext", "longtext", "enum", "date", "datetime", "time", "year")  # fmt: skip
_IMPLICIT_DEFAULTS = {"date": "0000-00-00", "datetime": "0000-00-00 00:00:00", "time": "00:00:00", "year": "0000"}


def _existing_rows(column: SourceColumn, attributes: list[Token], words: list[str], args: list[Token]) -> ExistingRowsValue | None:
    if column.generated:
        return ExistingRowsValue("a generated column")
    if "AUTO_INCREMENT" in words:
        return ExistingRowsValue("AUTO_INCREMENT")
    spelled = column.data_type in _SPELLED_DEFAULTS and column.character_set != "binary"
    if "DEFAULT" in words:
        k = words.index("DEFAULT")
        value = attributes[k + 1 :]
        if value and value[0].upper == "NULL":
            return None
        text = _constant(value)
        if text is None or not spelled:
            return ExistingRowsValue("a DEFAULT value")
        return ExistingRowsValue("a DEFAULT value", _zero_date_as_null(column, text), known=True)
    if column.nullable:
        return None
    reason = "NOT NULL (its implicit default)"
    if not spelled:
        return ExistingRowsValue(reason)
    if column.data_type == "enum":
        members = [t.string_value for t in args if t.kind == "string"]
        return ExistingRowsValue(reason, members[0] if members else "", known=True)
    if column.data_type in _IMPLICIT_DEFAULTS:
        return ExistingRowsValue(reason, _zero_date_as_null(column, _IMPLICIT_DEFAULTS[column.data_type]), known=True)
    numeric = column.data_type in (*_INTEGER_TYPES, "decimal", "float", "double")
    return ExistingRowsValue(reason, "0" if numeric else "", known=True)


def _constant(tokens: list[Token]) -> str | None:
    """The text of a constant DEFAULT (a string, or a number with an optional sign), else None (an
    expression, CURRENT_TIMESTAMP, a function ...)."""
    if tokens and tokens[0].kind == "string":
        return tokens[0].string_value
    sign = ""
    if tokens and tokens[0].kind == "symbol" and tokens[0].text in ("-", "+"):
        sign, tokens = ("-" if tokens[0].text == "-" else ""), tokens[1:]
    if tokens and tokens[0].kind == "number":
        return sign + tokens[0].text
    if not sign and tokens and tokens[0].upper in ("TRUE", "FALSE"):
        return "1" if tokens[0].upper == "TRUE" else "0"
    return None


def _zero_date_as_null(column: SourceColumn, text: str) -> str | None:
    """Zero dates (``0000-00-00``, a zero month or day) are NULL in the migration, as in the full load."""
    if column.data_type in ("date", "datetime") and (text[:4] == "0000" or text[5:7] == "00" or text[8:10] == "00"):
        return None
    return text
