"""The one SQL-text layer: every identifier and literal the provider puts into MySQL or MaxCompute SQL
is spelled here, and MySQL statements are tokenized here.

Why one place: names come from users' databases and specs (any character MySQL allows: backticks,
quotes, newlines, ``--``, ``#``, unicode), so a single missed escape is an injection. A test
(tests/unit/test_sqltext_usage.py) fails when code outside this module puts a name between backticks or
quotes by hand.

MySQL literals are written so they mean the same under every ``sql_mode`` (``NO_BACKSLASH_ESCAPES``,
``ANSI_QUOTES``) and connection character set: text goes as a hex literal with an explicit character
set introducer, never as a quoted string. MaxCompute names are restricted to letters, digits and
underscores by MaxCompute itself, so they are validated rather than escaped.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# --- MySQL ------------------------------------------------------------------------------------------

MYSQL_NAME_MAX = 64


def mysql_name_problem(name: Any) -> str | None:
    """Why ``name`` cannot be a MySQL identifier, or None (MySQL: 1-64 characters, no NUL, only the
    Basic Multilingual Plane, no trailing space)."""
    if not isinstance(name, str) or not name:
        return "is empty"
    if len(name) > MYSQL_NAME_MAX:
        return f"is longer than {MYSQL_NAME_MAX} characters"
    if "\x00" in name:
        return "contains a NUL character"
    if any(ord(char) > 0xFFFF for char in name):
        return "contains a character outside the Basic Multilingual Plane (MySQL does not allow it in names)"
    if name.endswith(" "):
        return "ends with a space"
    return None


def quote_mysql_name(name: str) -> str:
    """A MySQL identifier, backquoted, backquotes doubled (valid under ``ANSI_QUOTES`` too)."""
    problem = mysql_name_problem(name)
    if problem:
        raise ValueError(f"{name!r} is not a MySQL identifier: it {problem}")
    return "`" + name.replace("`", "``") + "`"


def quote_mysql_table(database: str, table: str) -> str:
    return f"{quote_mysql_name(database)}.{quote_mysql_name(table)}"


def mysql_text(text: str, charset: str = "utf8mb4", collation: str | None = None) -> str:
    """A MySQL text literal as ``_charset X'hex'`` (and ``COLLATE``): no quote or backslash to escape,
    so its meaning depends on neither ``sql_mode`` nor the connection's character set.

    The bytes are ``text`` encoded in ``charset``; a character the charset cannot hold raises ValueError.
    """
    codec = _PY_CODECS.get(charset.lower(), charset)
    try:
        data = text.encode(codec)
    except (UnicodeEncodeError, LookupError) as error:
        raise ValueError(f"{text!r} cannot be written in the character set {charset}: {error}") from None
    literal = f"_{_plain_word(charset)} X'{data.hex()}'"
    return f"{literal} COLLATE {_plain_word(collation)}" if collation else literal


def mysql_bytes(data: bytes) -> str:
    return f"X'{bytes(data).hex()}'" if data else "_binary''"


def mysql_literal(value: Any, charset: str = "utf8mb4") -> str:
    """A Python value as a MySQL literal of the natural type (None -> NULL)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no MySQL literal")
        return format(value, "f")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no MySQL literal")
        return repr(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return mysql_bytes(bytes(value))
    if isinstance(value, str):
        return mysql_text(value, charset)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP'{value.replace(tzinfo=None).isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, dt.timedelta):
        return f"CAST({mysql_text(_timedelta_text(value))} AS TIME(6))"
    raise TypeError(f"no MySQL literal for {type(value).__name__}")


def _timedelta_text(value: dt.timedelta) -> str:
    micros = value.days * 86_400_000_000 + value.seconds * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    seconds, fraction = divmod(micros, 1_000_000)
    return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{fraction:06d}"


_PY_CODECS = {"utf8mb4": "utf-8", "utf8mb3": "utf-8", "utf8": "utf-8", "latin1": "cp1252", "binary": "latin-1",
              "ascii": "ascii", "gbk": "gbk", "gb2312": "gb2312", "gb18030": "gb18030", "big5": "big5",
              "ucs2": "utf-16-be", "utf16": "utf-16-be", "utf16le": "utf-16-le", "utf32": "utf-32-be"}
_WORD = re.compile(r"[A-Za-z0-9_]+")


def _plain_word(word: str) -> str:
    """Character set and collation names are plain words; anything else is refused, never quoted."""
    if not _WORD.fullmatch(word or ""):
        raise ValueError(f"{word!r} is not a character set or collation name")
    return word


# --- MaxCompute -------------------------------------------------------------------------------------

_MC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def quote_mc_name(name: str) -> str:
    """A MaxCompute identifier, backquoted. MaxCompute names hold only letters, digits and underscores
    (starting with a letter or underscore, at most 128), so anything else is refused, not escaped."""
    if not isinstance(name, str) or not _MC_NAME.fullmatch(name):
        raise ValueError(f"{name!r} is not a MaxCompute name (letters, digits and _, starting with a letter or _, "
                         "at most 128 characters)")
    return f"`{name}`"


def mc_string(text: str) -> str:
    """A MaxCompute SQL string literal (single quotes; backslash escapes as in MaxCompute's parser)."""
    escaped = (text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\r", "\\r")
               .replace("\t", "\\t").replace("\x00", "\\0"))
    return f"'{escaped}'"


def mc_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}L" if not -(2**31) <= value < 2**31 else str(value)
    if isinstance(value, str):
        return mc_string(value)
    raise TypeError(f"no MaxCompute literal for {type(value).__name__}")


def mc_typed_literal(value: Any, mc_type: str) -> str:
    """``value`` as a MaxCompute SQL expression of type ``mc_type`` (``CAST('<text>' AS <type>)``, so the
    value's text, not a literal's own type, decides). DATETIME and TIMESTAMP are refused: MaxCompute
    reads their text in the project's time zone."""
    if value is None:
        return "NULL"
    target = mc_type.strip().upper()
    if not re.fullmatch(r"[A-Z_]+(\(\d+(,\s*\d+)?\))?", target):
        raise ValueError(f"not a MaxCompute type: {mc_type!r}")
    if target in ("DATETIME", "TIMESTAMP"):
        raise ValueError(f"no time-zone-free literal for MaxCompute {target}")
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float, decimal.Decimal, str)):
        text = repr(value) if isinstance(value, float) else str(value)
    elif isinstance(value, dt.datetime):
        text = value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    elif isinstance(value, dt.date):
        text = value.isoformat()
    else:
        raise TypeError(f"no MaxCompute literal for {type(value).__name__}")
    return mc_string(text) if target == "STRING" else f"CAST({mc_string(text)} AS {target})"


def mc_partition_spec(columns: Iterable[str], values: Iterable[str]) -> str:
    """``col='value',...`` as pyodps and MaxCompute SQL take a partition (names validated, values quoted)."""
    parts = []
    for column, value in zip(columns, values, strict=True):
        quote_mc_name(column)
        parts.append(f"{column}={mc_string(str(value))}")
    return ",".join(parts)


def sql_comment(text: str) -> str:
    """``text`` as one ``--`` comment line whatever it holds (newlines and control characters escaped),
    for scripts people run (``polar-mc plan``)."""
    visible = "".join(char if char.isprintable() else f"\\x{ord(char):02x}" for char in text)
    return f"-- {visible}"


# --- tokenizing MySQL -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    text: str  # identifiers unquoted; everything else (strings too) as written
    kind: str  # word | quoted_name | string | number | symbol
    position: int = 0  # offset in the statement with comments removed

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    @property
    def string_value(self) -> str:
        """A string token's value: quotes removed, escapes and doubled quotes resolved."""
        if self.kind != "string":
            raise ValueError(f"{self.text!r} is not a string literal")
        return _unquote_string(self.text)


_EXECUTABLE_COMMENT = re.compile(r"/\*(?:!|M!)\d{0,6}")


def strip_mysql_comments(statement: str) -> str:
    """The statement without comments; executable comments (``/*! ... */``, ``/*M! ... */``) keep
    their content, since the server runs it. Quotes are respected (a ``#`` in a string is no comment)."""
    out: list[str] = []
    i, n = 0, len(statement)
    quote: str | None = None
    in_executable = False
    while i < n:
        c = statement[i]
        if quote:
            out.append(c)
            if c == "\\" and quote != "`" and i + 1 < n:
                out.append(statement[i + 1])
                i += 2
                continue
            if c == quote:
                quote = None
            i += 1
            continue
        if c in "'\"`":
            quote = c
            out.append(c)
            i += 1
        elif statement.startswith("/*", i):
            executable = _EXECUTABLE_COMMENT.match(statement, i)
            if executable:
                in_executable = True
                out.append(" ")
                i = executable.end()
            else:
                end = statement.find("*/", i + 2)
                i = n if end < 0 else end + 2
                out.append(" ")
        elif in_executable and statement.startswith("*/", i):
            in_executable = False
            out.append(" ")
            i += 2
        elif c == "#" or (statement.startswith("--", i) and (i + 2 >= n or statement[i + 2] in " \t\r\n")):
            end = statement.find("\n", i)
            i = n if end < 0 else end
        else:
            out.append(c)
            i += 1
    return "".join(out)


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<quoted_name>`(?:[^`]|``)*`)
      | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
      | (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      | (?P<word>[A-Za-z0-9_$\u0080-\uffff]+)
      | (?P<symbol>[(),.;=]|[^\sA-Za-z0-9_$'"`])
    )""",
    re.VERBOSE | re.DOTALL,
)
_STRING_ESCAPES = {"0": "\x00", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


def _unquote_string(literal: str) -> str:
    quote, body = literal[0], literal[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(_STRING_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        elif c == quote and i + 1 < len(body) and body[i + 1] == quote:
            out.append(quote)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def iter_mysql_tokens(statement: str) -> Iterator[Token]:
    """Tokens of a MySQL statement (comments removed as the server does). Raises ValueError on text
    that is not MySQL, naming an unterminated quote."""
    text = strip_mysql_comments(statement)
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            return
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            rest = text[pos:].lstrip()
            if rest[:1] in ("'", '"', "`"):
                raise ValueError(f"unterminated {rest[0]} quote near {rest[:30]!r}")
            raise ValueError(f"cannot tokenize SQL near {text[pos:pos + 30]!r}")
        kind = m.lastgroup or "symbol"
        value = m.group(kind)
        if kind == "quoted_name":
            value = value[1:-1].replace("``", "`")
        yield Token(value, kind, m.start(kind))
        pos = m.end()


def tokenize_mysql(statement: str) -> list[Token]:
    return list(iter_mysql_tokens(statement))
