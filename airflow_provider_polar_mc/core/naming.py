"""How source objects are named in MaxCompute, and the checks that find naming problems.

Order of mapping for a table (the same order DTS applies):

1. an explicit ``target`` wins; otherwise ``batch_rename`` adds its ``prefix``/``suffix`` to the
   source table name;
2. capitalization: MaxCompute is case-insensitive and stores every identifier in lower case, so the
   *stored* name is always lower case whatever the policy. ``default``, ``destination`` and ``lower``
   spell identifiers in lower case in the generated DDL/SQL; ``upper`` spells them in upper case and
   ``source`` keeps the source spelling, which only changes how the DDL and logs read (see
   :func:`spell`). Consequently two source names that differ only in case always collide;
3. derived tables: ``<name>_base`` (full baseline), ``<name>_log`` (incremental, partitioned) and the
   merged replica (``merge.replica_name`` pattern, ``{table}`` by default).

Columns keep their source names unless the spec's ``columns`` map renames them (MySQL column names are
case-insensitive, so the map is looked up case-insensitively).

The ``_log`` table also carries DTS's additional columns and partition columns. Under the
``previous`` rule they are ``record_id``, ``operation_flag``, ``utc_timestamp``, ``before_flag``,
``after_flag`` and ``modifytime_year`` .. ``modifytime_minute``; under the ``new`` rule the same names
prefixed with ``new_dts_sync_``, the way out when a source column is already called ``record_id``.

The ``find_*`` functions return :class:`NamingFinding` lists rather than raising, so the precheck can
report every problem at once with a fix.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Capitalization = Literal["default", "source", "destination", "upper", "lower"]
AdditionalColumnRule = Literal["previous", "new"]
PartitionLevel = Literal["year", "month", "day", "hour", "minute"]
Severity = Literal["error", "warning"]

CAPITALIZATIONS: tuple[str, ...] = ("default", "source", "destination", "upper", "lower")
ADDITIONAL_COLUMN_RULES: tuple[str, ...] = ("previous", "new")
PARTITION_LEVELS: tuple[str, ...] = ("year", "month", "day", "hour", "minute")
NEW_RULE_PREFIX = "new_dts_sync_"

BASE_SUFFIX = "_base"
LOG_SUFFIX = "_log"
DEFAULT_REPLICA_PATTERN = "{table}"
# Placeholders a replica-name pattern may use.
REPLICA_PLACEHOLDERS: tuple[str, ...] = ("table", "database")

MAX_NAME_LENGTH = 128  # MaxCompute's limit for table and column names
# Longest name a user may give a table: the derived "<name>_base" must still fit.
MAX_TABLE_NAME_LENGTH = MAX_NAME_LENGTH - len(BASE_SUFFIX)

_VALID_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")

# MaxCompute SQL reserved words (its documentation's list). They are valid names only when quoted
# with backticks; the provider's writer quotes every identifier, but hand-written queries will not.
RESERVED_WORDS: frozenset[str] = frozenset(
    """
    add all alter and as asc between bigint boolean by case cast column comment create desc distinct
    distribute double drop else false from full group if in insert into is join left lifecycle like
    limit mapjoin not null on or order outer overwrite partition rename replace right rlike select
    sort string table tablesample tblproperties then touch true union view when where
    """.split()
)


# --- capitalization and table names ---------------------------------------------------------------


def stored_name(name: str) -> str:
    """The name as MaxCompute stores (and returns) it: lower case."""
    return name.lower()


def spell(name: str, capitalization: Capitalization) -> str:
    """How generated DDL/SQL spells an identifier under a capitalization policy (MaxCompute folds
    every spelling to :func:`stored_name`, so this never changes which object is meant)."""
    if capitalization == "upper":
        return name.upper()
    if capitalization == "source":
        return name
    if capitalization in ("default", "destination", "lower"):
        return name.lower()
    raise ValueError(f"unknown capitalization {capitalization!r}; expected one of {CAPITALIZATIONS}")


def destination_table_name(
    source_table: str,
    *,
    target: str | None = None,
    prefix: str = "",
    suffix: str = "",
) -> str:
    """The stored destination name of a table: ``target`` if given, else batch rename applied."""
    return stored_name(target if target else f"{prefix}{source_table}{suffix}")


def base_table_name(table: str) -> str:
    return stored_name(table + BASE_SUFFIX)


def log_table_name(table: str) -> str:
    return stored_name(table + LOG_SUFFIX)


def replica_table_name(table: str, pattern: str = DEFAULT_REPLICA_PATTERN, database: str = "") -> str:
    """The merged replica's name from ``merge.replica_name`` (placeholders ``{table}``, ``{database}``)."""
    return stored_name(pattern.format(table=table, database=database))


# The point-in-time snapshots of a replica (merge.snapshots): <replica>_snapshot, partitioned by ds
# (DataWorks' business-date partition column, so analysts' `WHERE ds = '20261130'` reads as usual).
SNAPSHOT_SUFFIX = "_snapshot"
SNAPSHOT_PARTITION_COLUMN = "ds"


def snapshot_table_name(replica_table: str) -> str:
    return stored_name(replica_table + SNAPSHOT_SUFFIX)


def destination_column_name(source_column: str, column_map: Mapping[str, str] | None = None) -> str:
    """A column's stored destination name; ``column_map`` (source -> destination) is matched
    case-insensitively because MySQL column names are."""
    if column_map:
        lowered = {key.lower(): value for key, value in column_map.items()}
        if source_column.lower() in lowered:
            return stored_name(lowered[source_column.lower()])
    return stored_name(source_column)


# --- additional and partition columns -------------------------------------------------------------


@dataclass(frozen=True)
class AdditionalColumn:
    """One DTS column of the ``_log`` table: ``role`` is the name under the ``previous`` rule."""

    role: str
    name: str
    mc_type: str
    meaning: str


# (role, MaxCompute type, meaning); the layout the change-row builder writes.
_ADDITIONAL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("record_id", "BIGINT", "increases in binlog order; deterministic for a coordinate"),
    ("operation_flag", "STRING", "I (insert), U (update) or D (delete)"),
    ("utc_timestamp", "BIGINT", "the binlog event's time, seconds since the epoch (UTC)"),
    ("before_flag", "STRING", "Y when the row is a before-image (update, delete), else N"),
    ("after_flag", "STRING", "Y when the row is an after-image (insert, update), else N"),
)


def _apply_rule(role: str, rule: AdditionalColumnRule) -> str:
    if rule == "previous":
        return role
    if rule == "new":
        return NEW_RULE_PREFIX + role
    raise ValueError(f"unknown additional_column_rule {rule!r}; expected one of {ADDITIONAL_COLUMN_RULES}")


def additional_columns(rule: AdditionalColumnRule = "previous") -> tuple[AdditionalColumn, ...]:
    """The DTS columns every ``_log`` row carries, named under ``rule``."""
    return tuple(
        AdditionalColumn(role, _apply_rule(role, rule), mc_type, meaning)
        for role, mc_type, meaning in _ADDITIONAL_COLUMNS
    )


def partition_columns(
    rule: AdditionalColumnRule = "previous",
    levels: Sequence[str] = ("year", "month", "day"),
) -> tuple[str, ...]:
    """The ``_log`` table's partition column names (all STRING) for a partition definition."""
    unknown = [level for level in levels if level not in PARTITION_LEVELS]
    if unknown:
        raise ValueError(f"unknown partition level(s) {unknown}; expected a prefix of {PARTITION_LEVELS}")
    return tuple(_apply_rule(f"modifytime_{level}", rule) for level in levels)


def reserved_log_column_names(
    rule: AdditionalColumnRule = "previous",
    levels: Sequence[str] = PARTITION_LEVELS,
) -> frozenset[str]:
    """Every name the ``_log`` table uses besides the source columns."""
    return frozenset(column.name for column in additional_columns(rule)) | frozenset(
        partition_columns(rule, levels)
    )


# --- findings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NamingFinding:
    """One naming problem for the precheck.

    ``code``: ``invalid_name``, ``reserved_word``, ``table_name_collision``, ``column_name_collision``
    or ``additional_column_collision``. ``objects`` names the source objects involved
    (``db.table`` or ``db.table.column``), ``name`` the destination name at fault, ``fix`` what to change.
    """

    code: str
    severity: Severity
    name: str
    objects: tuple[str, ...]
    message: str
    fix: str


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid MaxCompute table or column name, or None if it is."""
    if not name:
        return "is empty"
    if len(name.encode("utf-8")) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} bytes"
    if not name[0].isascii() or not name[0].isalpha():
        return "must start with a letter"
    if not _VALID_NAME.fullmatch(name):
        return "may contain only letters, digits and underscores"
    return None


def is_reserved_word(name: str) -> bool:
    return name.lower() in RESERVED_WORDS


def check_name(name: str, source_object: str, *, kind: str, fix: str) -> list[NamingFinding]:
    """Findings for one destination name: invalid (error) or a reserved word (warning)."""
    problem = name_problem(name)
    if problem:
        return [
            NamingFinding(
                "invalid_name", "error", name, (source_object,),
                f"{kind} name {name!r} (from {source_object}) {problem}", fix,
            )
        ]
    if is_reserved_word(name):
        return [
            NamingFinding(
                "reserved_word", "warning", name, (source_object,),
                f"{kind} name {name!r} (from {source_object}) is a MaxCompute reserved word; "
                "queries must quote it with backticks",
                fix,
            )
        ]
    return []


class DestinationTable(Protocol):
    """What :func:`find_table_findings` needs of a selected table (``spec.TableSelection`` has it)."""

    @property
    def source_name(self) -> str: ...  # "db.table"

    @property
    def destination_names(self) -> tuple[str, ...]: ...  # base, log, replica ... as stored


def find_table_findings(tables: Iterable[DestinationTable]) -> list[NamingFinding]:
    """Invalid destination table names and destination names claimed by more than one source table
    (including one table's replica landing on another's ``_base``/``_log``)."""
    findings: list[NamingFinding] = []
    claimants: dict[str, list[str]] = defaultdict(list)
    for table in tables:
        for name in dict.fromkeys(table.destination_names):  # one table may not collide with itself
            findings += check_name(
                name, table.source_name, kind="table",
                fix="give the table a `target` in objects[].tables[] or change batch_rename",
            )
            claimants[stored_name(name)].append(table.source_name)
    for name, sources in claimants.items():
        if len(sources) > 1:
            findings.append(
                NamingFinding(
                    "table_name_collision", "error", name, tuple(sources),
                    f"destination table {name!r} would be written by {', '.join(sources)} "
                    "(MaxCompute names are case-insensitive and databases share one project)",
                    "give all but one of these tables a distinct `target`, or change batch_rename / "
                    "merge.replica_name",
                )
            )
    return findings


def find_column_findings(
    source_table: str,
    source_columns: Iterable[str],
    column_map: Mapping[str, str] | None = None,
    *,
    rule: AdditionalColumnRule = "previous",
    partition_levels: Sequence[str] = ("year", "month", "day"),
    snapshot_partition: str | None = None,
) -> list[NamingFinding]:
    """Column findings for one table (``source_table`` is ``db.table``): invalid or reserved names after
    mapping, two source columns mapped to one name, and mapped names equal to an additional or
    partition column of the ``_log`` table under ``rule``."""
    findings: list[NamingFinding] = []
    by_destination: dict[str, list[str]] = defaultdict(list)
    rename_fix = f"rename the column in the `columns` map of {source_table}"
    for column in source_columns:
        destination = destination_column_name(column, column_map)
        source_object = f"{source_table}.{column}"
        by_destination[destination].append(source_object)
        findings += check_name(destination, source_object, kind="column", fix=rename_fix)

    for name, sources in by_destination.items():
        if len(sources) > 1:
            findings.append(
                NamingFinding(
                    "column_name_collision", "error", name, tuple(sources),
                    f"columns {', '.join(sources)} would all be named {name!r}", rename_fix,
                )
            )

    dts_names = reserved_log_column_names(rule, partition_levels)
    for name, sources in by_destination.items():
        if name in dts_names:
            fix = (
                "set additional_column_rule: new (DTS columns get the new_dts_sync_ prefix)"
                if rule == "previous"
                else rename_fix
            )
            findings.append(
                NamingFinding(
                    "additional_column_collision", "error", name, tuple(sources),
                    f"column {name!r} of {source_table} collides with the DTS column of the same name "
                    f"in the _log table (additional_column_rule: {rule})",
                    fix,
                )
            )
    if snapshot_partition is not None and snapshot_partition in by_destination:
        findings.append(
            NamingFinding(
                "snapshot_partition_collision", "error", snapshot_partition, tuple(by_destination[snapshot_partition]),
                f"column {snapshot_partition!r} of {source_table} collides with the partition column of the "
                "replica's snapshot table",
                f"{rename_fix}, or set merge.snapshots: none",
            )
        )
    return findings
