"""A table's ``filter`` is a grammar, not text: parsed, checked against an allow-list, rendered by us.

A filter is one condition over the table's own columns, literals, operators and deterministic
built-in functions (the list is ``ALLOWED_FUNCTIONS``, documented in docs/spec.md). It is parsed with
sqlglot's MySQL dialect (configured so that every function call stays a plain call we can check by
name) and rendered back to SQL by :func:`_render` below, never passed on as the user wrote it:
identifiers through ``sqltext.quote_mysql_name``, strings as hex literals (``sqltext.mysql_text``), so
what the server runs is what was checked whatever its ``sql_mode`` (``NO_BACKSLASH_ESCAPES``,
``ANSI_QUOTES``, ``PIPES_AS_CONCAT``) and the connection's character set. Reading sessions also set
their own ``sql_mode`` (``core.endpoint``).

Refused: subqueries, other tables' columns, variables (``@x``, ``@@x``), placeholders, assignments,
comments, several statements, user functions and procedures, sequences, and every function with side
effects or whose value depends on when or where it runs (``SLEEP``, ``BENCHMARK``, ``LOAD_FILE``,
``GET_LOCK``, ``NOW``, ``RAND``, ``UUID``, ``USER``...): the full load and the binlog evaluate the same
filter at different times, so a time-dependent filter would make the replica disagree with itself.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError, TokenError

from airflow_provider_polar_mc.core import sqltext

MAX_FILTER_CHARS = 10_000
MAX_DEPTH = 100

# Deterministic built-ins, by MySQL name -> (fewest, most) arguments (None: any number).
ALLOWED_FUNCTIONS: dict[str, tuple[int, int | None]] = {
    # strings
    "ASCII": (1, 1), "BIN": (1, 1), "BIT_LENGTH": (1, 1), "CHAR_LENGTH": (1, 1), "CHARACTER_LENGTH": (1, 1),
    "CONCAT": (1, None), "CONCAT_WS": (2, None), "ELT": (2, None), "FIELD": (2, None), "FIND_IN_SET": (2, 2),
    "HEX": (1, 1), "INSTR": (2, 2), "LCASE": (1, 1), "LEFT": (2, 2), "LENGTH": (1, 1), "LOCATE": (2, 3),
    "LOWER": (1, 1), "LPAD": (3, 3), "LTRIM": (1, 1), "OCT": (1, 1), "ORD": (1, 1), "REPEAT": (2, 2),
    "REPLACE": (3, 3), "REVERSE": (1, 1), "RIGHT": (2, 2), "RPAD": (3, 3), "RTRIM": (1, 1), "SPACE": (1, 1),
    "STRCMP": (2, 2), "SUBSTRING_INDEX": (3, 3), "UCASE": (1, 1), "UNHEX": (1, 1), "UPPER": (1, 1),
    # numbers
    "ABS": (1, 1), "CEIL": (1, 1), "CEILING": (1, 1), "CONV": (3, 3), "CRC32": (1, 1), "DEGREES": (1, 1),
    "EXP": (1, 1), "FLOOR": (1, 1), "GREATEST": (2, None), "LEAST": (2, None), "LN": (1, 1), "LOG": (1, 2),
    "LOG10": (1, 1), "LOG2": (1, 1), "MOD": (2, 2), "PI": (0, 0), "POW": (2, 2), "POWER": (2, 2),
    "RADIANS": (1, 1), "ROUND": (1, 2), "SIGN": (1, 1), "SQRT": (1, 1), "TRUNCATE": (2, 2),
    # NULL handling and choice
    "COALESCE": (1, None), "IF": (3, 3), "IFNULL": (2, 2), "ISNULL": (1, 1), "NULLIF": (2, 2),
    # dates and times (of the values, never of the clock)
    "ADDDATE": (2, 2), "ADDTIME": (2, 2), "DATE": (1, 1), "DATE_ADD": (2, 2), "DATE_FORMAT": (2, 2),
    "DATE_SUB": (2, 2), "DATEDIFF": (2, 2), "DAY": (1, 1), "DAYNAME": (1, 1), "DAYOFMONTH": (1, 1),
    "DAYOFWEEK": (1, 1), "DAYOFYEAR": (1, 1), "FROM_DAYS": (1, 1), "HOUR": (1, 1), "LAST_DAY": (1, 1),
    "MAKEDATE": (2, 2), "MAKETIME": (3, 3), "MICROSECOND": (1, 1), "MINUTE": (1, 1), "MONTH": (1, 1),
    "MONTHNAME": (1, 1), "PERIOD_ADD": (2, 2), "PERIOD_DIFF": (2, 2), "QUARTER": (1, 1), "SEC_TO_TIME": (1, 1),
    "SECOND": (1, 1), "STR_TO_DATE": (2, 2), "SUBDATE": (2, 2), "SUBTIME": (2, 2), "TIME": (1, 1),
    "TIME_FORMAT": (2, 2), "TIME_TO_SEC": (1, 1), "TIMEDIFF": (2, 2), "TIMESTAMP": (1, 2),
    "TO_DAYS": (1, 1), "TO_SECONDS": (1, 1), "UNIX_TIMESTAMP": (1, 1), "WEEK": (1, 2), "WEEKDAY": (1, 1),
    "WEEKOFYEAR": (1, 1), "YEAR": (1, 1), "YEARWEEK": (1, 2),
    # JSON values
    "JSON_CONTAINS": (2, 3), "JSON_CONTAINS_PATH": (3, None), "JSON_EXTRACT": (2, None), "JSON_LENGTH": (1, 2),
    "JSON_TYPE": (1, 1), "JSON_UNQUOTE": (1, 1), "JSON_VALID": (1, 1),
}  # fmt: skip

# Refused with their own reason: the value changes with the clock, the session or the server.
_CLOCK_OR_SESSION = frozenset({
    "NOW", "SYSDATE", "CURDATE", "CURTIME", "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP", "LOCALTIME",
    "LOCALTIMESTAMP", "UTC_DATE", "UTC_TIME", "UTC_TIMESTAMP", "RAND", "UUID", "UUID_SHORT", "SYS_GUID", "USER",
    "CURRENT_USER", "SESSION_USER", "SYSTEM_USER", "DATABASE", "SCHEMA", "VERSION", "CONNECTION_ID",
    "LAST_INSERT_ID", "FOUND_ROWS", "ROW_COUNT", "CURRENT_ROLE",
})  # fmt: skip

# Units of INTERVAL, EXTRACT and TIMESTAMPDIFF.
_UNITS = frozenset({
    "MICROSECOND", "SECOND", "MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "QUARTER", "YEAR", "SECOND_MICROSECOND",
    "MINUTE_MICROSECOND", "MINUTE_SECOND", "HOUR_MICROSECOND", "HOUR_SECOND", "HOUR_MINUTE", "DAY_MICROSECOND",
    "DAY_SECOND", "DAY_MINUTE", "DAY_HOUR", "YEAR_MONTH",
})  # fmt: skip

_BINARY = {
    exp.And: "AND", exp.Or: "OR", exp.Xor: "XOR", exp.EQ: "=", exp.NEQ: "<>", exp.NullSafeEQ: "<=>", exp.GT: ">",
    exp.GTE: ">=", exp.LT: "<", exp.LTE: "<=", exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/",
    exp.Mod: "%", exp.IntDiv: "DIV", exp.BitwiseAnd: "&", exp.BitwiseOr: "|", exp.BitwiseXor: "^",
    exp.BitwiseLeftShift: "<<", exp.BitwiseRightShift: ">>", exp.Like: "LIKE", exp.RegexpLike: "REGEXP",
    exp.Is: "IS",
}  # fmt: skip

_UNARY = {exp.Not: "NOT ", exp.Neg: "-", exp.BitwiseNot: "~"}

# CAST / CONVERT targets, by sqlglot's type -> MySQL's cast type (and whether it takes a length).
_CAST_TYPES = {
    "BIGINT": "SIGNED", "INT": "SIGNED", "UBIGINT": "UNSIGNED", "UINT": "UNSIGNED", "CHAR": "CHAR",
    "VARCHAR": "CHAR", "NCHAR": "NCHAR", "BINARY": "BINARY", "VARBINARY": "BINARY", "DATE": "DATE",
    "DATETIME": "DATETIME", "TIME": "TIME", "DECIMAL": "DECIMAL", "DOUBLE": "DOUBLE", "FLOAT": "FLOAT",
    "JSON": "JSON",
}  # fmt: skip

_NUMBER = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_HEX = re.compile(r"[0-9A-Fa-f]*")
_BITS = re.compile(r"[01]*")
_WORD = re.compile(r"[A-Za-z0-9_]+")


class FilterError(ValueError):
    """The filter is outside the grammar; the message says what and how to write it instead."""


@dataclass(frozen=True)
class Filter:
    """A checked filter: ``text`` as written, ``sql`` as the provider runs it, ``columns`` it reads
    (lower-case)."""

    text: str
    sql: str
    columns: frozenset[str]


class _FilterDialect(MySQL):
    """MySQL's syntax, but every ``name(args)`` call stays an ``exp.Anonymous`` (checked by name
    against the allow-list, rendered as written) instead of becoming sqlglot's portable function
    nodes, whose MySQL rendering may differ from what the user wrote (``REGEXP`` -> ``REGEXP_LIKE``,
    which MariaDB lacks). Only calls with a syntax of their own keep their parsers."""

    class Tokenizer(MySQL.Tokenizer):
        # Statement keywords that are also built-in functions; in a condition they are only functions.
        KEYWORDS = {word: kind for word, kind in MySQL.Tokenizer.KEYWORDS.items() if word not in ("REPLACE",)}

    class Parser(MySQL.Parser):
        FUNCTIONS: dict = {}
        FUNCTION_PARSERS = {
            name: parser for name, parser in MySQL.Parser.FUNCTION_PARSERS.items()
            if name in ("CAST", "CONVERT", "EXTRACT", "SUBSTR", "SUBSTRING", "TRIM")
        }  # fmt: skip
        NO_PAREN_FUNCTION_PARSERS = {
            name: parser for name, parser in MySQL.Parser.NO_PAREN_FUNCTION_PARSERS.items() if name == "CASE"
        }


def filter_problem(text: object) -> str | None:
    """Why ``text`` is not an acceptable filter, or None."""
    if not isinstance(text, str):
        return f"must be a SQL condition (a string), got {type(text).__name__}"
    try:
        parse_filter(text)
    except FilterError as error:
        return str(error)
    return None


@functools.lru_cache(maxsize=1024)
def parse_filter(text: str) -> Filter:
    """The checked filter, or FilterError saying why ``text`` is not one."""
    if not text.strip():
        raise FilterError("must be a non-empty SQL condition, e.g. \"status <> 'deleted'\"")
    if len(text) > MAX_FILTER_CHARS:
        raise FilterError(f"is {len(text):,} characters long; a filter may have at most {MAX_FILTER_CHARS:,}")
    if "\x00" in text:
        raise FilterError("contains a NUL character")
    tokens: list = []
    try:
        tokens = _FilterDialect().tokenize(text)
        _check_tokens(text, tokens)
        tree = sqlglot.parse_one(text, dialect=_FilterDialect, into=exp.Condition)
    except TokenError:
        raise FilterError(f"SQL syntax error: {_unclosed(text)}") from None
    except ParseError as error:
        raise FilterError(f"SQL syntax error{_unbalanced(tokens) or _parse_message(text, error)}") from None
    except RecursionError:
        raise FilterError(f"is nested too deeply (at most {MAX_DEPTH} levels)") from None
    _check_shape(tree)
    columns: set[str] = set()
    sql = _render(tree, columns, 0)
    return Filter(text=text, sql=sql, columns=frozenset(columns))


def _check_tokens(text: str, tokens: list) -> None:
    """What sqlglot's parser would let through: a ``;`` (even a trailing one, which it drops), and
    ``> >`` read as ``>>`` (MySQL refuses it)."""
    if any(token.token_type.name == "SEMICOLON" for token in tokens):
        raise FilterError("must be a single condition without ';'")
    for first, second in zip(tokens, tokens[1:], strict=False):
        if first.token_type == second.token_type and first.text in ("<", ">") and second.start != first.end + 1:
            raise ParseError.new(f"{first.text} {second.text}", line=text.count("\n", 0, second.start) + 1,
                                 col=second.start - text.rfind("\n", 0, second.start), highlight=second.text,
                                 end_context=text[second.end + 1:second.end + 30])


def _parse_message(text: str, error: ParseError) -> str:
    """``" at character 10, near '= 1'"``, or that the condition is incomplete (for the spec's message)."""
    first = (error.errors or [{}])[0]
    highlight, after = first.get("highlight") or "", first.get("end_context") or ""
    line, col = first.get("line"), first.get("col")
    if not after.strip() and (first.get("description", "").startswith(("Required keyword", "Expecting"))
                              or not highlight.strip()):
        return f": the condition is incomplete, something is missing after {text.rstrip()[-30:]!r}"
    if not line or not col:
        return f": {first.get('description') or error}"
    lines = text.split("\n")
    position = sum(len(lines[i]) + 1 for i in range(min(line - 1, len(lines)))) + col - len(highlight)
    where = f"character {position + 1}"
    if len(lines) > 1:
        where += f" (line {line}, column {col - len(highlight) + 1})"
    return f" at {where}, near {text[position:position + 30]!r}"


def _unbalanced(tokens: list) -> str:
    """``": 2 unclosed '('"`` / ``": a ')' without a matching '('"``, or "" when parentheses balance."""
    depth = 0
    for token in tokens:
        depth += {"L_PAREN": 1, "R_PAREN": -1}.get(token.token_type.name, 0)
        if depth < 0:
            return ": a ')' without a matching '('"
    return f": {depth} unclosed '('" if depth else ""


def _unclosed(text: str) -> str:
    """Which quote is left open, by the one MySQL tokenizer (sqlglot's own message cuts the text)."""
    try:
        sqltext.tokenize_mysql(text)
    except ValueError as error:
        return str(error)
    return "cannot be read as SQL"


def _check_shape(tree: exp.Expression) -> None:
    for node in tree.walk():
        if node.comments:
            raise FilterError("must not contain SQL comments (#, --, /* */)")
    top = tree.unnest() if isinstance(tree, exp.Paren) else tree
    if isinstance(top, (exp.Literal, exp.Null, exp.HexString, exp.BitString)):
        raise FilterError("must be a condition on the table's columns (e.g. \"id > 0\"), not a constant")


def _render(node: exp.Expression, columns: set[str], depth: int) -> str:
    if depth > MAX_DEPTH:
        raise FilterError(f"is nested too deeply (at most {MAX_DEPTH} levels)")
    sub: Callable[[exp.Expression], str] = lambda child: _render(child, columns, depth + 1)  # noqa: E731
    kind = type(node)
    if kind is exp.Column:
        if node.table or node.args.get("db") or node.args.get("catalog"):
            raise FilterError(f"may only use the table's own columns, not {node.sql(dialect='mysql')!r} "
                              "(write the column name alone)")
        if isinstance(node.this, exp.Star):
            raise FilterError("may not use '*'")
        columns.add(node.name.lower())
        return sqltext.quote_mysql_name(node.name)
    if kind is exp.Literal:
        if node.is_string:
            return sqltext.mysql_text(node.this)
        if not _NUMBER.fullmatch(node.this):
            raise FilterError(f"has a number sqlglot read as {node.this!r}")
        return node.this
    if kind is exp.National:
        return sqltext.mysql_text(node.this)
    if kind is exp.Introducer:
        charset, value = node.this, node.expression
        if not (isinstance(value, exp.Literal) and value.is_string):
            raise FilterError("a character set introducer (_utf8mb4) must precede a string literal")
        return sqltext.mysql_text(value.this, _plain_word(charset.name if isinstance(charset, exp.Expression)
                                                          else str(charset)).lstrip("_"))
    if kind is exp.HexString:
        digits = str(node.this)
        if not _HEX.fullmatch(digits):
            raise FilterError(f"has an invalid hexadecimal literal {digits!r}")
        return f"X'{digits if len(digits) % 2 == 0 else '0' + digits}'"
    if kind is exp.BitString:
        bits = str(node.this)
        if not _BITS.fullmatch(bits):
            raise FilterError(f"has an invalid bit literal {bits!r}")
        return f"b'{bits}'"
    if kind is exp.Null:
        return "NULL"
    if kind is exp.Boolean:
        return "TRUE" if node.this else "FALSE"
    if kind is exp.Paren:
        return f"({sub(node.this)})"
    if kind in (exp.And, exp.Or, exp.Xor):  # a long chain is one level, not one per operand
        return "(" + f" {_BINARY[kind]} ".join(sub(operand) for operand in node.flatten()) + ")"
    if kind in _BINARY:
        return f"({sub(node.this)} {_BINARY[kind]} {sub(node.expression)})"
    if kind is exp.Escape:  # LIKE ... ESCAPE 'c': one operator with three operands
        like = node.this
        if not isinstance(like, exp.Like):
            raise FilterError("ESCAPE belongs to LIKE: column LIKE 'a!%' ESCAPE '!'")
        return f"({sub(like.this)} LIKE {sub(like.expression)} ESCAPE {sub(node.expression)})"
    if kind in _UNARY:
        return f"({_UNARY[kind]}{sub(node.this)})"
    if kind is exp.In:
        if node.args.get("query") or node.args.get("unnest") or node.args.get("field") or not node.expressions:
            raise FilterError("IN takes a list of values, e.g. \"status IN ('new', 'paid')\"; subqueries are not allowed")
        return f"({sub(node.this)} IN ({', '.join(sub(e) for e in node.expressions)}))"
    if kind is exp.Between:
        return f"({sub(node.this)} BETWEEN {sub(node.args['low'])} AND {sub(node.args['high'])})"
    if kind is exp.Collate:
        return f"({sub(node.this)} COLLATE {_plain_word(node.expression.name)})"
    if kind is exp.Concat:  # adjacent string literals: 'a' 'b'
        return f"CONCAT({', '.join(sub(e) for e in node.expressions)})"
    if kind is exp.Case:
        parts = ["CASE"] + ([sub(node.this)] if node.this else [])
        for branch in node.args.get("ifs") or []:
            parts += ["WHEN", sub(branch.this), "THEN", sub(branch.args["true"])]
        if node.args.get("default") is not None:
            parts += ["ELSE", sub(node.args["default"])]
        return "(" + " ".join(parts + ["END"]) + ")"
    if kind is exp.Cast:
        return _render_cast(node, sub)
    if kind is exp.Interval:
        unit = node.args.get("unit")
        if unit is None or node.this is None:
            raise FilterError("INTERVAL takes a value and a unit, e.g. INTERVAL 1 DAY")
        value = node.this
        if isinstance(value, exp.Literal) and value.is_string and _NUMBER.fullmatch(value.this):
            value = exp.Literal.number(value.this)
        return f"INTERVAL {sub(value)} {_unit(unit)}"
    if kind is exp.Extract:
        return f"EXTRACT({_unit(node.this)} FROM {sub(node.expression)})"
    if kind is exp.Substring:
        args = [sub(node.this), sub(node.args["start"])] + ([sub(node.args["length"])] if node.args.get("length") else [])
        return f"SUBSTRING({', '.join(args)})"
    if kind is exp.Trim:
        chars, position = node.args.get("expression"), node.args.get("position")
        if node.args.get("collation"):
            raise FilterError("TRIM(... COLLATE ...) is not supported; apply COLLATE outside TRIM")
        if chars is None and position is None:
            return f"TRIM({sub(node.this)})"
        where = _plain_word(str(position)).upper() if position else "BOTH"
        if where not in ("BOTH", "LEADING", "TRAILING"):
            raise FilterError(f"TRIM takes BOTH, LEADING or TRAILING, not {where}")
        return f"TRIM({where} {sub(chars) if chars is not None else sqltext.mysql_text(' ')} FROM {sub(node.this)})"
    if kind is exp.Anonymous:
        return _render_call(node, sub)
    raise FilterError(_refusal(node))


def _render_call(node: exp.Anonymous, sub: Callable[[exp.Expression], str]) -> str:
    name = str(node.this).upper()
    args = list(node.expressions)
    if name == "TIMESTAMPDIFF":
        if len(args) != 3:
            raise FilterError("TIMESTAMPDIFF takes (unit, start, end)")
        return f"TIMESTAMPDIFF({_unit(args[0])}, {sub(args[1])}, {sub(args[2])})"
    if name not in ALLOWED_FUNCTIONS:
        if name in _CLOCK_OR_SESSION:
            raise FilterError(f"may not call {name}(): its value depends on when or where it runs, so the full load "
                              "and the incremental batches would disagree; compare with a fixed value instead")
        close = difflib.get_close_matches(name, ALLOWED_FUNCTIONS, n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}()?" if close else ""
        raise FilterError(f"may not call {name}(): filters may use only deterministic built-in functions "
                          f"(docs/spec.md lists them){hint}")
    fewest, most = ALLOWED_FUNCTIONS[name]
    if len(args) < fewest or (most is not None and len(args) > most):
        count = str(fewest) if fewest == most else f"{fewest} or more" if most is None else f"{fewest} to {most}"
        raise FilterError(f"{name}() takes {count} argument{'s' if count != '1' else ''}, got {len(args)}")
    return f"{name}({', '.join(sub(a) for a in args)})"


def _render_cast(node: exp.Cast, sub: Callable[[exp.Expression], str]) -> str:
    target = node.to
    if node.args.get("format") or node.args.get("default") or node.args.get("action"):
        raise FilterError("CAST takes a value and a type, e.g. CAST(amount AS SIGNED)")
    type_name = target.this.name if hasattr(target.this, "name") else str(target.this)
    if type_name == "CHARACTER_SET":
        return f"CONVERT({sub(node.this)} USING {_plain_word(target.args['kind'].name)})"
    mysql_type = _CAST_TYPES.get(type_name)
    if mysql_type is None:
        raise FilterError(f"cannot CAST to {target.sql(dialect='mysql')}; use one of "
                          "SIGNED, UNSIGNED, CHAR(n), BINARY(n), DATE, DATETIME(n), TIME(n), DECIMAL(p,s), DOUBLE, JSON")
    params = []
    for param in target.expressions:
        value = param.this if isinstance(param, exp.DataTypeParam) else param
        if not (isinstance(value, exp.Literal) and not value.is_string and value.this.isdigit()):
            raise FilterError(f"the type of a CAST takes whole numbers, not {param.sql(dialect='mysql')!r}")
        params.append(value.this)
    return f"CAST({sub(node.this)} AS {mysql_type}{'(' + ', '.join(params) + ')' if params else ''})"


def _unit(node: exp.Expression) -> str:
    unit = (node.name if isinstance(node, (exp.Var, exp.Column, exp.Identifier, exp.Literal)) else "").upper()
    if unit not in _UNITS:
        raise FilterError(f"{node.sql(dialect='mysql')!r} is not a time unit (DAY, HOUR, MINUTE, ...)")
    return unit


def _plain_word(word: str) -> str:
    if not _WORD.fullmatch(word or ""):
        raise FilterError(f"{word!r} is not a character set or collation name")
    return word


_REFUSALS: dict[type, str] = {
    exp.Select: "may not contain a subquery", exp.Subquery: "may not contain a subquery",
    exp.Exists: "may not contain a subquery", exp.All: "may not contain a subquery", exp.Any: "may not contain a subquery",
    exp.Parameter: "may not use variables (@name)", exp.SessionParameter: "may not use system variables (@@name)",
    exp.Placeholder: "may not contain placeholders (?)", exp.PropertyEQ: "may not assign (:=)",
    exp.Star: "may not use '*'", exp.JSONExtract: "may not use '->'; write JSON_EXTRACT(column, '$.path')",
    exp.JSONExtractScalar: "may not use '->>'; write JSON_UNQUOTE(JSON_EXTRACT(column, '$.path'))",
}  # fmt: skip


def _refusal(node: exp.Expression) -> str:
    for kind, message in _REFUSALS.items():
        if isinstance(node, kind):
            return message
    if isinstance(node, exp.Func):
        return (f"may not use {node.sql_name()} (a function whose value depends on when or where it runs, or "
                "one outside the allowed list in docs/spec.md)")
    return f"may not contain {type(node).__name__} ({node.sql(dialect='mysql')[:60]!r})"
