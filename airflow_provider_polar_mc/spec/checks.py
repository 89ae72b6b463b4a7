"""Checks of single spec values that a type or a pattern cannot express; each returns why a value is
unacceptable, or None. Public ones are reused by the precheck and the command line. No Airflow here."""

from __future__ import annotations

import string
from typing import Any

from airflow_provider_polar_mc.core import filters, naming
from airflow_provider_polar_mc.spec.errors import describe


def filter_problem(expression: Any) -> str | None:
    """Why a ``filter`` is not an acceptable condition, or None: the grammar of ``core.filters`` (one
    condition over the table's columns, literals, operators and deterministic built-in functions)."""
    if not isinstance(expression, str):
        return f"must be a SQL condition (a string), got {describe(expression)}"
    return filters.filter_problem(expression)


def replica_pattern_problem(pattern: str) -> str | None:
    """Why a ``merge.replica_name`` pattern is unusable, or None."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as error:
        return f"{pattern!r} is not a valid pattern: {error}"
    unknown = [name for name in fields if name not in naming.REPLICA_PLACEHOLDERS]
    if unknown:
        allowed = ", ".join("{" + name + "}" for name in naming.REPLICA_PLACEHOLDERS)
        return f"{pattern!r} uses unknown placeholder(s) {', '.join(unknown) or '{}'}; allowed: {allowed}"
    if "table" not in fields:
        return f"{pattern!r} must contain {{table}}, or every table's replica would get the same name"
    example = naming.replica_table_name("t", pattern, "d")
    if example in (naming.base_table_name("t"), naming.log_table_name("t")):
        return f"{pattern!r} names the replica like the _base/_log table"
    problem = naming.name_problem(example)
    if problem:
        return f"{pattern!r} gives names like {example!r}, which {problem}"
    return None


def table_pattern_problem(pattern: str) -> str | None:
    """Why an ``include``/``exclude`` fnmatch pattern is surely a typo, or None."""
    if pattern != pattern.strip():
        return f"pattern {pattern!r} has leading or trailing spaces"
    # fnmatch takes an unclosed '[' literally; in a table pattern it is always a typo.
    depth = 0
    for char in pattern:
        if char == "[":
            if depth:
                return f"pattern {pattern!r} has a '[' inside a [...] set"
            depth = 1
        elif char == "]" and depth:
            depth = 0
    if depth:
        return f"pattern {pattern!r} has an unclosed '['"
    return None


def maxcompute_name_problem(name: str, max_length: int) -> str | None:
    """Why ``name`` cannot be a MaxCompute table (``max_length`` 123, room for ``_base``) or column
    (128) name, or None."""
    problem = naming.name_problem(name)
    if problem is None and len(name) > max_length:
        problem = f"is longer than {max_length} characters (room is kept for the _base/_log suffix)"
    return f"{name!r} is not a valid MaxCompute name: it {problem}" if problem else None


__all__ = ["filter_problem", "maxcompute_name_problem", "replica_pattern_problem", "table_pattern_problem"]
