"""The value types the spec's models are declared with.

Each is an ``Annotated`` type: pydantic constraints (which are also what ``polar-mc spec-schema``
publishes: patterns, lengths, bounds, minimum items) plus, where needed, a :class:`~.errors.Says`
wording its problems, or a validator for what a constraint cannot say. No Airflow here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    PlainSerializer,
    StringConstraints,
    WithJsonSchema,
)

from airflow_provider_polar_mc.core import naming
from airflow_provider_polar_mc.spec.checks import (
    filter_problem,
    maxcompute_name_problem,
    replica_pattern_problem,
    table_pattern_problem,
)
from airflow_provider_polar_mc.spec.errors import Says, describe, fail

MigrationType = Literal["schema", "full", "incremental"]
ConflictMode = Literal["precheck_and_report", "ignore_and_proceed"]
JsonType = Literal["string", "json"]
DatetimeType = Literal["timestamp_ntz", "datetime"]
MergeMode = Literal["incremental", "full"]
SnapshotUnit = Literal["none", "day", "hour"]
ChangePolicy = Literal["follow", "resync", "fail"]
CreateTablePolicy = Literal["follow", "fail"]
UnfollowablePolicy = Literal["resync", "fail"]

MIGRATION_TYPES: tuple[str, ...] = ("schema", "full", "incremental")
CONFLICT_MODES: tuple[str, ...] = ("precheck_and_report", "ignore_and_proceed")
JSON_TYPES: tuple[str, ...] = ("string", "json")
DATETIME_TYPES: tuple[str, ...] = ("timestamp_ntz", "datetime")
DEFAULT_PARTITION: tuple[str, ...] = ("year", "month", "day")
# Airflow DAG tags have at most 100 characters; the tag also prefixes log lines and alerts.
ENVIRONMENT_TAG_MAX_LENGTH = 100


def _anchored(pattern: str) -> str:
    """A whole-value pattern for pydantic and for JSON Schema, whose ``pattern`` matches anywhere in the
    value. (Python's ``$``, used by ``jsonschema``, also matches before a final newline: the schema may let
    through a trailing newline the loader refuses, never the other way round.)"""
    return f"^(?:{pattern})$"


def text(pattern: str | None = None, rule: str | None = None, *, max_length: int | None = None,
         too_long: str | None = None, expected: str = "a non-empty string") -> Any:
    """A string; without ``pattern``, one that is not blank. ``rule`` completes "<value> ..." when the
    pattern does not match."""
    constraint = StringConstraints(pattern=_anchored(pattern) if pattern is not None else r"\S", max_length=max_length)
    return Annotated[str, constraint, Says(pattern=rule, too_long=too_long, expected=expected)]


def _unique(items: tuple[Any, ...]) -> tuple[Any, ...]:
    seen: set[Any] = set()
    repeated = []
    for index, item in enumerate(items):
        if item in seen:
            repeated.append(((index,), f"{item!r} is listed twice"))
        seen.add(item)
    if repeated:
        raise fail(*repeated)
    return items


def _schema_extra(**keywords: Any) -> Any:
    """Extra JSON Schema keywords; ``default=None`` drops a default that the schema would misstate."""
    def update(schema: dict[str, Any]) -> None:
        for key, value in keywords.items():
            if value is None:
                schema.pop(key, None)
            else:
                schema[key] = value

    return update


def _check_not_empty(message: str) -> Any:
    # Before the items: a list whose every item is wrong is not also reported as empty (pydantic's
    # min_length would report that too).
    def check(value: Any) -> Any:
        if isinstance(value, (list, tuple)) and not value:
            raise fail(message)
        return value

    return BeforeValidator(check)


def unique_list(item: Any, *, min_items: bool = False, says: Says | None = None, empty: str | None = None,
                **schema_extra: Any) -> Any:
    """A list (a tuple once built) of distinct ``item`` values; ``min_items``: at least one (``empty``
    says so when not)."""
    if not min_items:
        return Annotated[tuple[item, ...], Field(json_schema_extra=_schema_extra(uniqueItems=True, **schema_extra)),
                         AfterValidator(_unique), says or Says()]
    return Annotated[tuple[item, ...],
                     Field(json_schema_extra=_schema_extra(uniqueItems=True, minItems=1, **schema_extra)),
                     AfterValidator(_unique), _check_not_empty(empty or "must list at least one entry"), says or Says()]


def non_empty_list(item: Any, empty: str, **schema_extra: Any) -> Any:
    """A list (a tuple once built) with at least one ``item``; ``empty`` says so when not."""
    return Annotated[tuple[item, ...], Field(json_schema_extra=_schema_extra(minItems=1, **schema_extra)),
                     _check_not_empty(empty)]


# --- names ----------------------------------------------------------------------------------------

NonEmpty = text()
MigrationName = text(r"[a-z0-9_]{1,64}", "must be 1-64 characters of a-z, 0-9 and _ (it namespaces checkpoints)")
DatabaseName = text(max_length=64, too_long="a MySQL database name has at most 64 characters")
# MySQL allows almost any character in a quoted table name, but not a trailing space, and at most 64.
TableName = text(r"[\s\S]{0,63}[^ ]", "is not a MySQL table name (at most 64 characters, no trailing space)")
MySqlIdentifier = text(r"[A-Za-z0-9_$]{1,64}", "must be 1-64 characters of letters, digits, _ and $")
CheckId = text(r"[A-Za-z0-9_.:-]+", "is not a precheck id (letters, digits, _ . : -)")
Prefix = text(r"(?:[A-Za-z][A-Za-z0-9_]*)?", "must start with a letter and contain only letters, digits and "
              "underscores", expected="a string")
Suffix = text(r"[A-Za-z0-9_]*", "may contain only letters, digits and underscores", expected="a string")
EnvironmentTag = text(
    r"[A-Za-z0-9][A-Za-z0-9_.:-]*",
    "may contain only letters, digits and _ . : - and must start with a letter or digit (it becomes a DAG tag "
    "and a log prefix)",
    max_length=ENVIRONMENT_TAG_MAX_LENGTH,
    too_long="is {length} characters long; at most {limit} (it becomes an Airflow DAG tag, limited to 100 characters)",
)
_MAXCOMPUTE_NAME = r"[A-Za-z][A-Za-z0-9_]*"


def _maxcompute_name(max_length: int) -> Any:
    def check(value: Any) -> Any:
        problem = maxcompute_name_problem(value, max_length) if isinstance(value, str) else None
        if problem:
            raise fail(problem)
        return value

    return Annotated[str, StringConstraints(pattern=_anchored(_MAXCOMPUTE_NAME), max_length=max_length),
                     BeforeValidator(check)]


TargetTableName = _maxcompute_name(naming.MAX_TABLE_NAME_LENGTH)
TargetColumnName = _maxcompute_name(naming.MAX_NAME_LENGTH)


def _refuse_on(problem_of: Callable[[Any], str | None]) -> Callable[[Any], Any]:
    """A validator that passes a value through unless ``problem_of`` names a problem with it."""

    def check(value: Any) -> Any:
        problem = problem_of(value)
        if problem:
            raise fail(problem)
        return value

    return check


Filter = Annotated[str, StringConstraints(pattern=r"\S"), BeforeValidator(_refuse_on(filter_problem))]
HeartbeatDatabase = Annotated[
    text(r"[A-Za-z0-9_$]{1,64}", "is not a MySQL database name"),
    # The provider's one write goes to a database the migration owns, never the server's own.
    AfterValidator(_refuse_on(lambda name: f"{name!r} is a system database: the heartbeat table belongs in one of "
                              "yours (leave it empty for the first of source.databases)"
                              if name.lower() in ("mysql", "information_schema", "performance_schema", "sys") else None)),
]
TablePatterns = unique_list(
    Annotated[str, StringConstraints(pattern=r"\S"), AfterValidator(_refuse_on(table_pattern_problem))]
)
ReplicaPattern = Annotated[str, StringConstraints(pattern=r"\S"), AfterValidator(_refuse_on(replica_pattern_problem))]


# --- structures -----------------------------------------------------------------------------------


def _check_column_map(value: Any) -> Any:
    """Source column -> destination column; names compared case-insensitively (MySQL and MaxCompute
    both are), so two sources or two targets differing only in case collide."""
    if not isinstance(value, Mapping):
        raise fail(f"must map source column names to destination names, got {describe(value)}")
    problems: list[tuple[tuple[str, ...], str] | str] = []
    sources: dict[str, str] = {}
    targets: dict[str, str] = {}
    for source, target in value.items():
        if not isinstance(source, str) or not source.strip():
            problems.append(f"source column names must be non-empty strings, got {describe(source)}")
        elif not isinstance(target, str):
            problems.append(((source,), f"must be the destination column name, got {describe(target)}"))
        elif problem := maxcompute_name_problem(target, naming.MAX_NAME_LENGTH):
            problems.append(((source,), problem))
        elif source.lower() in sources:
            problems.append(((source,), f"column {sources[source.lower()]!r} is already mapped"))
        elif target.lower() in targets:
            problems.append(((source,), f"{target!r} is already the target of column {targets[target.lower()]!r}"))
        else:
            sources[source.lower()] = targets[target.lower()] = source
    if problems:
        raise fail(*problems)
    return dict(value)


ColumnMap = Annotated[Mapping[str, TargetColumnName], BeforeValidator(_check_column_map),
                      AfterValidator(MappingProxyType), PlainSerializer(dict, return_type=dict[str, str])]


def _check_partition(value: Any) -> Any:
    expected = f"must be a non-empty prefix of [{', '.join(naming.PARTITION_LEVELS)}], e.g. [year, month, day]"
    if not isinstance(value, (list, tuple)) or not value:
        raise fail(f"{expected}; got {describe(value)}")
    if tuple(value) != naming.PARTITION_LEVELS[: len(value)]:
        raise fail(f"{expected}; got {list(value)}")
    return tuple(value)


Partition = Annotated[
    tuple[naming.PartitionLevel, ...],
    BeforeValidator(_check_partition),
    WithJsonSchema({"type": "array", "items": {"enum": list(naming.PARTITION_LEVELS)},
                    "enum": [list(naming.PARTITION_LEVELS[:n]) for n in range(1, len(naming.PARTITION_LEVELS) + 1)]}),
]


def _check_start_date(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):  # YAML reads an unquoted date as one
        value = value.isoformat()
    if not isinstance(value, str):
        raise fail(f"must be an ISO 8601 date or date-time (e.g. 2026-01-01), got {describe(value)}")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{value!r} is not an ISO 8601 date or date-time (e.g. 2026-01-01)") from None
    if parsed.year < 2000:  # every interval since then would be queued as a catch-up run
        raise fail(f"{value!r} is before 2000-01-01; leave it unset to start at the latest interval when the DAG "
                   "is deployed")
    return value


StartDate = Annotated[str, BeforeValidator(_check_start_date)]


def _canonical_order(kinds: tuple[str, ...]) -> tuple[str, ...]:
    """Migration types in one order, so equal sets give equal specs."""
    return tuple(kind for kind in MIGRATION_TYPES if kind in kinds)


MigrationTypes = Annotated[unique_list(MigrationType, min_items=True), AfterValidator(_canonical_order)]


def bounded(default: Any, minimum: float, maximum: float) -> Any:
    """A number within [minimum, maximum] (inclusive; ``RANGES`` and docs/spec.md list them). Strict:
    a bool, a string or (for an integer) 1.5 is refused, not converted."""
    return Field(default, strict=True, ge=minimum, le=maximum)


__all__ = [
    "CONFLICT_MODES", "DATETIME_TYPES", "DEFAULT_PARTITION", "ENVIRONMENT_TAG_MAX_LENGTH", "JSON_TYPES",
    "MIGRATION_TYPES", "CheckId", "ColumnMap", "ConflictMode", "DatabaseName", "DatetimeType", "EnvironmentTag",
    "Filter", "HeartbeatDatabase", "JsonType", "MigrationName", "MigrationType", "MigrationTypes", "MySqlIdentifier",
    "NonEmpty", "Partition", "Prefix", "ReplicaPattern", "StartDate", "Suffix", "TableName", "TablePatterns",
    "TargetTableName", "bounded", "non_empty_list", "text", "unique_list",
]
