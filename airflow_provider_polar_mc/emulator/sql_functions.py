"""MaxCompute built-in functions and casts, rewritten into DuckDB expressions.

The parser leaves every function call as an ``exp.Anonymous`` node (see ``sql_query``), so each
MaxCompute function is translated here by its MaxCompute name and semantics; a function missing from
:data:`FUNCTIONS` fails loudly instead of reaching DuckDB under a name that may mean something else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlglot import exp

from .sql_errors import semantic, unsupported
from .types import MCType, UnsupportedType, parse_type

Args = list[exp.Expression]


def _call(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _cast(value: exp.Expression, duckdb_type: str) -> exp.Expression:
    return exp.Cast(this=value, to=exp.DataType.build(duckdb_type, dialect="duckdb"))


def _string_literal(node: exp.Expression, fname: str, what: str) -> str:
    if not isinstance(node, exp.Literal) or not node.is_string:
        raise unsupported(f"{fname}: {what} must be a string literal")
    return node.this


def _arity(fname: str, args: Args, *allowed: int) -> None:
    if len(args) not in allowed:
        expected = " or ".join(str(a) for a in allowed)
        raise semantic(f"function {fname} expects {expected} arguments, got {len(args)}")


# -- date and time -----------------------------------------------------------------------------

# MaxCompute date parts (DATEADD/DATEDIFF/DATETRUNC/DATEPART) -> DuckDB date parts.
_DATE_PARTS = {
    "yyyy": "year",
    "year": "year",
    "mm": "month",
    "mon": "month",
    "month": "month",
    "dd": "day",
    "day": "day",
    "hh": "hour",
    "hour": "hour",
    "mi": "minute",
    "minute": "minute",
    "ss": "second",
    "second": "second",
}
# MaxCompute's TO_CHAR/TO_DATE patterns -> strftime; longest first so "mi" is not read as "m".
_MC_FORMAT = [
    ("yyyy", "%Y"),
    ("ff3", "%g"),
    ("mm", "%m"),
    ("dd", "%d"),
    ("hh", "%H"),
    ("mi", "%M"),
    ("ss", "%S"),
]
# Java patterns of Hive-style DATE_FORMAT -> strftime.
_JAVA_FORMAT = [
    ("yyyy", "%Y"),
    ("SSS", "%g"),
    ("MM", "%m"),
    ("dd", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
]


def _date_part(fname: str, node: exp.Expression) -> str:
    text = _string_literal(node, fname, "the date part").lower()
    if text not in _DATE_PARTS:
        raise unsupported(f"{fname} date part '{text}'")
    return _DATE_PARTS[text]


def _strftime_format(fname: str, node: exp.Expression, table: list[tuple[str, str]], *, fold: bool) -> str:
    """Translate a format pattern to strftime; unknown letters fail rather than print literally."""
    text = _string_literal(node, fname, "the format")
    out, i = [], 0
    while i < len(text):
        for pattern, spec in table:
            candidate = text[i : i + len(pattern)]
            if (candidate.lower() == pattern.lower()) if fold else (candidate == pattern):
                out.append(spec)
                i += len(pattern)
                break
        else:
            ch = text[i]
            if ch.isalpha():
                raise unsupported(f"{fname} format letter '{ch}' in '{text}'")
            out.append("%%" if ch == "%" else ch)
            i += 1
    return "".join(out)


def _as_timestamp(value: exp.Expression) -> exp.Expression:
    # MaxCompute converts STRING ('yyyy-mm-dd hh:mi:ss') and DATE arguments of date functions implicitly.
    return _cast(value, "TIMESTAMP")


def _as_datetime(value: exp.Expression) -> exp.Expression:
    # A DATETIME result: DuckDB's TIMESTAMP_MS (its TIMESTAMP is how TIMESTAMP_NTZ is stored).
    return _cast(value, "TIMESTAMP_MS")


def _dateadd(args: Args) -> exp.Expression:
    _arity("DATEADD", args, 3)
    part = _date_part("DATEADD", args[2])
    delta = _call(f"to_{part}s", _cast(args[1], "INTEGER" if part != "second" else "DOUBLE"))
    return _as_datetime(exp.Paren(this=exp.Add(this=_as_timestamp(args[0]), expression=delta)))


def _datediff(args: Args) -> exp.Expression:
    _arity("DATEDIFF", args, 2, 3)
    part = _date_part("DATEDIFF", args[2]) if len(args) == 3 else "day"
    return _call("date_diff", exp.Literal.string(part), _as_timestamp(args[1]), _as_timestamp(args[0]))


def _datetrunc(args: Args) -> exp.Expression:
    _arity("DATETRUNC", args, 2)
    return _as_datetime(_call("date_trunc", exp.Literal.string(_date_part("DATETRUNC", args[1])), _as_timestamp(args[0])))


def _datepart(args: Args) -> exp.Expression:
    _arity("DATEPART", args, 2)
    part = _date_part("DATEPART", args[1])
    return _cast(_call("date_part", exp.Literal.string(part), _as_timestamp(args[0])), "BIGINT")


def _extract(part: str) -> Callable[[Args], exp.Expression]:
    def build(args: Args) -> exp.Expression:
        _arity(part.upper(), args, 1)
        return _cast(_call("date_part", exp.Literal.string(part), _as_timestamp(args[0])), "INTEGER")

    return build


def _to_char(args: Args) -> exp.Expression:
    _arity("TO_CHAR", args, 1, 2)
    if len(args) == 1:
        return _cast(args[0], "VARCHAR")
    fmt = _strftime_format("TO_CHAR", args[1], _MC_FORMAT, fold=True)
    return _call("strftime", _as_timestamp(args[0]), exp.Literal.string(fmt))


def _date_format(args: Args) -> exp.Expression:
    _arity("DATE_FORMAT", args, 2)
    fmt = _strftime_format("DATE_FORMAT", args[1], _JAVA_FORMAT, fold=False)
    return _call("strftime", _as_timestamp(args[0]), exp.Literal.string(fmt))


def _to_date(args: Args) -> exp.Expression:
    _arity("TO_DATE", args, 1, 2)
    if len(args) == 1:
        return _cast(args[0], "DATE")
    # With a format MaxCompute returns a DATETIME.
    fmt = _strftime_format("TO_DATE", args[1], _MC_FORMAT, fold=True)
    return _as_datetime(_call("strptime", args[0], exp.Literal.string(fmt)))


def _unix_timestamp(args: Args) -> exp.Expression:
    _arity("UNIX_TIMESTAMP", args, 1)
    return _cast(_call("epoch", _as_timestamp(args[0])), "BIGINT")


def _from_unixtime(args: Args) -> exp.Expression:
    _arity("FROM_UNIXTIME", args, 1)
    micros = exp.Mul(this=_cast(args[0], "BIGINT"), expression=_cast(exp.Literal.number(1_000_000), "BIGINT"))
    # DATETIME has millisecond precision; values are naive UTC like everything the emulator stores.
    return _as_datetime(_call("make_timestamp", micros))


# -- strings and conditionals ------------------------------------------------------------------


def _concat(args: Args) -> exp.Expression:
    if not args:
        raise semantic("function CONCAT expects at least 1 argument")
    # MaxCompute's CONCAT is NULL when any argument is NULL, like DuckDB's || (unlike concat()).
    result = _cast(args[0], "VARCHAR")
    for arg in args[1:]:
        result = exp.DPipe(this=result, expression=_cast(arg, "VARCHAR"), safe=False)
    return exp.Paren(this=result)


def _decode(args: Args) -> exp.Expression:
    if len(args) < 3:
        raise semantic("function DECODE expects at least 3 arguments")
    subject, rest = args[0], args[1:]
    case = exp.Case()
    while len(rest) >= 2:
        # DECODE matches NULL with NULL.
        case = case.when(exp.NullSafeEQ(this=subject.copy(), expression=rest[0]), rest[1])
        rest = rest[2:]
    if rest:
        case = case.else_(rest[0])
    return case


def _wm_concat(args: Args) -> exp.Expression:
    _arity("WM_CONCAT", args, 2)
    return _call("string_agg", _cast(args[1], "VARCHAR"), args[0])


def _renamed(mc_name: str, duckdb_name: str, *arity: int) -> Callable[[Args], exp.Expression]:
    def build(args: Args) -> exp.Expression:
        if arity:
            _arity(mc_name, args, *arity)
        return _call(duckdb_name, *args)

    return build


# Functions whose DuckDB namesake has MaxCompute's semantics for the arguments MaxCompute allows.
_SAME = {
    # aggregates
    "COUNT": (),
    "SUM": (1,),
    "AVG": (1,),
    "MIN": (1,),
    "MAX": (1,),
    # window functions
    "ROW_NUMBER": (0,),
    "RANK": (0,),
    "DENSE_RANK": (0,),
    "PERCENT_RANK": (0,),
    "CUME_DIST": (0,),
    "NTILE": (1,),
    "LAG": (1, 2, 3),
    "LEAD": (1, 2, 3),
    "FIRST_VALUE": (1,),
    "LAST_VALUE": (1,),
    # conditionals
    "COALESCE": (),
    "NULLIF": (2,),
    "GREATEST": (),
    "LEAST": (),
    # math
    "ABS": (1,),
    "CEIL": (1,),
    "FLOOR": (1,),
    "ROUND": (1, 2),
    "SQRT": (1,),
    "EXP": (1,),
    "LN": (1,),
    "SIGN": (1,),
    "POW": (2,),
    "POWER": (2,),
    # strings
    "LENGTH": (1,),
    "UPPER": (1,),
    "LOWER": (1,),
    "TRIM": (1, 2),
    "LTRIM": (1, 2),
    "RTRIM": (1, 2),
    "REPLACE": (3,),
    "LPAD": (3,),
    "RPAD": (3,),
    "REVERSE": (1,),
    "REPEAT": (2,),
    "SPLIT_PART": (3,),
    "MD5": (1,),
}

FUNCTIONS: dict[str, Callable[[Args], exp.Expression]] = {
    **{name: _renamed(name, name.lower(), *arity) for name, arity in _SAME.items()},
    "NVL": _renamed("NVL", "coalesce", 2),
    "CEILING": _renamed("CEILING", "ceil", 1),
    "LOG": _renamed("LOG", "log", 2),
    "TOUPPER": _renamed("TOUPPER", "upper", 1),
    "TOLOWER": _renamed("TOLOWER", "lower", 1),
    "SUBSTR": _renamed("SUBSTR", "substring", 2, 3),
    "SUBSTRING": _renamed("SUBSTRING", "substring", 2, 3),
    "INSTR": _renamed("INSTR", "strpos", 2),
    "CONCAT": _concat,
    "DECODE": _decode,
    "WM_CONCAT": _wm_concat,
    "DATEADD": _dateadd,
    "DATEDIFF": _datediff,
    "DATETRUNC": _datetrunc,
    "DATEPART": _datepart,
    "TO_CHAR": _to_char,
    "TO_DATE": _to_date,
    "DATE_FORMAT": _date_format,
    "UNIX_TIMESTAMP": _unix_timestamp,
    "FROM_UNIXTIME": _from_unixtime,
    "YEAR": _extract("year"),
    "QUARTER": _extract("quarter"),
    "MONTH": _extract("month"),
    "DAY": _extract("day"),
    "DAYOFMONTH": _extract("day"),
    "HOUR": _extract("hour"),
    "MINUTE": _extract("minute"),
    "SECOND": _extract("second"),
    "WEEKOFYEAR": _extract("week"),
}
# Evaluated once per statement, as MaxCompute does.
_NOW_FUNCTIONS = {"GETDATE", "NOW", "CURRENT_TIMESTAMP"}


def translate_function(node: exp.Anonymous, now: datetime) -> exp.Expression:
    name = str(node.this).upper()
    args = list(node.expressions)
    if name in _NOW_FUNCTIONS:
        _arity(name, args, 0)
        return now_literal(now)
    builder = FUNCTIONS.get(name)
    if builder is None:
        raise unsupported(f"function {name}")
    return builder(args)


def now_literal(now: datetime) -> exp.Expression:
    return _as_datetime(exp.Literal.string(now.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]))


def today_literal(now: datetime) -> exp.Expression:
    return _cast(exp.Literal.string(now.strftime("%Y-%m-%d")), "DATE")


# -- casts -------------------------------------------------------------------------------------

# sqlglot's parsed type -> MaxCompute type name (CHAR/VARCHAR lengths are dropped by the Hive parser).
_CAST_TYPES = {
    "BIGINT": "BIGINT",
    "INT": "INT",
    "SMALLINT": "SMALLINT",
    "TINYINT": "TINYINT",
    "BOOLEAN": "BOOLEAN",
    "FLOAT": "FLOAT",
    "DOUBLE": "DOUBLE",
    "DECIMAL": "DECIMAL",
    "TEXT": "STRING",
    "VARCHAR": "STRING",
    "CHAR": "STRING",
    "BINARY": "BINARY",
    "VARBINARY": "BINARY",
    "DATE": "DATE",
    "DATETIME": "DATETIME",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMPNTZ": "TIMESTAMP_NTZ",
    "JSON": "JSON",
}
_INTEGER_TYPES = {"BIGINT", "INT", "SMALLINT", "TINYINT"}


def cast_target(node: exp.DataType) -> MCType:
    name = _CAST_TYPES.get(node.this.name if hasattr(node.this, "name") else str(node.this))
    if name is None:
        raise unsupported(f"CAST to {node.sql(dialect='hive')}")
    params = [p.sql() for p in node.expressions]
    text = name + (f"({','.join(params)})" if params and name == "DECIMAL" else "")
    try:
        return parse_type(text)
    except UnsupportedType as exc:
        raise unsupported(str(exc)) from None


def translate_cast(node: exp.Cast) -> exp.Expression:
    target = cast_target(node.to)
    value = node.this
    if target.name not in _INTEGER_TYPES:
        return _cast(value, target.duckdb)
    # MaxCompute truncates fractional values (and numeric strings) when casting to an integer type;
    # DuckDB rounds. typeof() is resolved when the query is bound, so only one branch ever runs.
    kind = _call("typeof", value.copy())
    fractional = exp.or_(
        exp.In(this=kind, expressions=[exp.Literal.string(t) for t in ("DOUBLE", "FLOAT", "VARCHAR")]),
        exp.Like(this=kind.copy(), expression=exp.Literal.string("DECIMAL%")),
    )
    truncated = _cast(_call("trunc", _cast(value.copy(), "DECIMAL(38,9)")), target.duckdb)
    return exp.Case().when(fractional, truncated).else_(_cast(value, target.duckdb))
