"""Errors of the emulator's SQL engine, coded as MaxCompute codes them.

pyodps turns the code at the start of a failed SQL task's message into an exception class
(``ODPS-0130161`` -> ``ParseError``, ``ODPS-0130131`` -> ``NoSuchTable`` ...), so the codes matter.
"""

from __future__ import annotations

PARSE_ERROR = "ODPS-0130161"
TABLE_NOT_FOUND = "ODPS-0130131"
SEMANTIC_ERROR = "ODPS-0130071"
FULL_SCAN = "ODPS-0130241"
DDL_ERROR = "ODPS-0110061"
# A run-time failure of a query (bad cast, overflow ...).
RUNTIME_ERROR = "ODPS-0123131"
# Not a MaxCompute code: the emulator does not implement the construct. It starts with "ODPS-" so
# pyodps still extracts it as the error code (and raises a plain ODPSError).
UNSUPPORTED = "ODPS-EMULATOR-UNSUPPORTED"


class SqlError(Exception):
    """A failed SQL statement: ``code`` is the MaxCompute error code, ``message`` the text after it."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}:{message}")
        self.code = code
        self.message = message


def position(line: int | None, col: int | None) -> str:
    """MaxCompute's ``[line,col] `` prefix of a message, or nothing when the position is unknown."""
    return f"[{line},{col}] " if line is not None and col is not None else ""


def unsupported(construct: str, line: int | None = None, col: int | None = None) -> SqlError:
    return SqlError(UNSUPPORTED, f"{position(line, col)}Unsupported by the MaxCompute emulator - {construct}")


def semantic(message: str, line: int | None = None, col: int | None = None) -> SqlError:
    return SqlError(SEMANTIC_ERROR, f"{position(line, col)}Semantic analysis exception - {message}")


def parse_error(message: str, line: int | None = None, col: int | None = None) -> SqlError:
    return SqlError(PARSE_ERROR, f"{position(line, col)}Parse exception - {message}")


def table_not_found(project: str, name: str, line: int | None = None, col: int | None = None) -> SqlError:
    return SqlError(
        TABLE_NOT_FOUND, f"{position(line, col)}Table not found - table {project}.{name} cannot be resolved"
    )
