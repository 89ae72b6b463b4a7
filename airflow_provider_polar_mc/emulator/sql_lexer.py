"""Tokens and statements of a MaxCompute SQL script.

The lexer knows MaxCompute's lexical rules (single- or double-quoted strings with backslash escapes,
backquoted identifiers, ``--`` and ``/* */`` comments), splits a script on top-level ``;`` and gives
every token its line and column, so errors can point where MaxCompute would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .sql_errors import SqlError, parse_error

# Backslash escapes MaxCompute (and pyodps's escape_odps_string) use inside string literals.
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "r": "\r", "0": "\0", "'": "'", '"': '"', "\\": "\\"}
_TWO_CHAR_OPS = {"<=", ">=", "<>", "!=", "==", "||", "&&", "<=>"}


@dataclass(frozen=True)
class Token:
    kind: str  # "word", "qident", "string", "number", "op"
    value: str  # unescaped for strings and backquoted identifiers
    line: int
    col: int
    start: int  # offset in the script
    end: int

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.value.upper() in words

    @property
    def is_name(self) -> bool:
        return self.kind in ("word", "qident")


@dataclass(frozen=True)
class Statement:
    text: str
    tokens: tuple[Token, ...]
    line: int  # where the statement starts in the script
    col: int
    start: int  # offset of ``text`` in the script

    def absolute(self, line: int, col: int) -> tuple[int, int]:
        """Turn a (line, col) relative to ``text`` into one relative to the script."""
        if line == 1:
            return self.line, self.col + col - 1
        return self.line + line - 1, col


def tokenize(script: str) -> list[Token]:
    tokens: list[Token] = []
    i, line, line_start = 0, 1, 0
    n = len(script)

    def err(msg: str, at: int) -> SqlError:
        return parse_error(msg, line, at - line_start + 1)

    while i < n:
        ch = script[i]
        if ch == "\n":
            i += 1
            line, line_start = line + 1, i
            continue
        if ch.isspace():
            i += 1
            continue
        if script.startswith("--", i):
            while i < n and script[i] != "\n":
                i += 1
            continue
        if script.startswith("/*", i):
            close = script.find("*/", i + 2)
            if close < 0:
                raise err("unterminated comment", i)
            for j in range(i, close):
                if script[j] == "\n":
                    line, line_start = line + 1, j + 1
            i = close + 2
            continue
        start, col, start_line = i, i - line_start + 1, line
        if ch in "'\"":
            buf: list[str] = []
            i += 1
            while True:
                if i >= n:
                    raise parse_error("unterminated string literal", line, col)
                c = script[i]
                if c == "\\" and i + 1 < n:
                    buf.append(_ESCAPES.get(script[i + 1], script[i + 1]))
                    i += 2
                    continue
                if c == ch:
                    i += 1
                    break
                if c == "\n":
                    line, line_start = line + 1, i + 1
                buf.append(c)
                i += 1
            tokens.append(Token("string", "".join(buf), start_line, col, start, i))
            continue
        if ch == "`":
            buf = []
            i += 1
            while True:
                if i >= n:
                    raise parse_error("unterminated backquoted identifier", line, col)
                if script[i] == "`":
                    if script.startswith("``", i):
                        buf.append("`")
                        i += 2
                        continue
                    i += 1
                    break
                buf.append(script[i])
                i += 1
            tokens.append(Token("qident", "".join(buf), line, col, start, i))
            continue
        if ch.isalpha() or ch == "_" or ch == "$":
            while i < n and (script[i].isalnum() or script[i] in "_$"):
                i += 1
            tokens.append(Token("word", script[start:i], line, col, start, i))
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and script[i + 1].isdigit()):
            while i < n and (script[i].isalnum() or script[i] == "."):
                i += 1
            tokens.append(Token("number", script[start:i], line, col, start, i))
            continue
        op = next((o for o in sorted(_TWO_CHAR_OPS, key=len, reverse=True) if script.startswith(o, i)), ch)
        i += len(op)
        tokens.append(Token("op", op, line, col, start, i))
    return tokens


def split_statements(script: str) -> list[Statement]:
    """The non-empty ``;``-separated statements of a script, with their tokens."""
    statements: list[Statement] = []
    current: list[Token] = []

    def flush(end: int) -> None:
        if current:
            first = current[0]
            statements.append(
                Statement(script[first.start : end], tuple(current), first.line, first.col, first.start)
            )
            current.clear()

    for tok in tokenize(script):
        if tok.kind == "op" and tok.value == ";":
            flush(tok.start)
        else:
            current.append(tok)
    flush(len(script))
    return statements


class TokenCursor:
    """Recursive-descent helper over one statement's tokens."""

    def __init__(self, statement: Statement):
        self.statement = statement
        self.tokens: Sequence[Token] = statement.tokens
        self.i = 0

    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.tokens[j] if j < len(self.tokens) else None

    def at_end(self) -> bool:
        return self.i >= len(self.tokens)

    def error(self, expected: str) -> SqlError:
        tok = self.peek()
        if tok is None:
            last = self.tokens[-1]
            return parse_error(f"unexpected end of statement, expecting {expected}", last.line, last.col)
        return parse_error(f"invalid token '{tok.value}', expecting {expected}", tok.line, tok.col)

    def next(self, expected: str = "more input") -> Token:
        tok = self.peek()
        if tok is None:
            raise self.error(expected)
        self.i += 1
        return tok

    def accept_word(self, *words: str) -> Token | None:
        tok = self.peek()
        if tok is not None and tok.is_word(*words):
            self.i += 1
            return tok
        return None

    def expect_word(self, *words: str) -> Token:
        tok = self.accept_word(*words)
        if tok is None:
            raise self.error(" or ".join(words))
        return tok

    def accept_op(self, op: str) -> Token | None:
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.value == op:
            self.i += 1
            return tok
        return None

    def expect_op(self, op: str) -> Token:
        tok = self.accept_op(op)
        if tok is None:
            raise self.error(f"'{op}'")
        return tok

    def expect_name(self, what: str) -> Token:
        tok = self.peek()
        if tok is None or not tok.is_name:
            raise self.error(what)
        self.i += 1
        return tok

    def expect_string(self, what: str) -> Token:
        tok = self.peek()
        if tok is None or tok.kind != "string":
            raise self.error(what)
        self.i += 1
        return tok

    def expect_end(self) -> None:
        if not self.at_end():
            raise self.error("end of statement")

    def rest_text(self) -> tuple[str, int, int]:
        """The statement text from the current token on, with that token's line and column."""
        tok = self.peek()
        if tok is None:
            raise self.error("a query")
        return self.statement.text[tok.start - self.statement.start :], tok.line, tok.col
