"""The migration spec: every option of a DTS migration task, validated when built.

Build it with :meth:`MigrationSpec.from_yaml` (a path or YAML text) or :meth:`MigrationSpec.from_dict`.
Validation checks the whole document and raises ONE :class:`~airflow_provider_polar_mc.exceptions.
SpecError` listing every problem with its field path (``objects[3].filter: ...``); unknown keys are
errors with a "did you mean" suggestion. The result is a tree of frozen dataclasses; ``to_dict()``
gives back a plain document (defaults filled in) that ``from_dict`` accepts unchanged.

docs/spec.md is the reference of every option. This module imports nothing from Airflow.
"""

from __future__ import annotations

import datetime as dt
import difflib
import fnmatch
import re
import reprlib
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from airflow_provider_polar_mc import spec_yaml
from airflow_provider_polar_mc.core import naming
from airflow_provider_polar_mc.exceptions import SourceMismatch, SpecError, SpecProblem

MigrationType = Literal["schema", "full", "incremental"]
ConflictMode = Literal["precheck_and_report", "ignore_and_proceed"]

MIGRATION_TYPES: tuple[str, ...] = ("schema", "full", "incremental")
CONFLICT_MODES: tuple[str, ...] = ("precheck_and_report", "ignore_and_proceed")
JSON_TYPES: tuple[str, ...] = ("string", "json")
DATETIME_TYPES: tuple[str, ...] = ("timestamp_ntz", "datetime")
DEFAULT_PARTITION: tuple[str, ...] = ("year", "month", "day")

_MIGRATION_NAME = re.compile(r"[a-z0-9_]{1,64}")
_MYSQL_IDENTIFIER = re.compile(r"[A-Za-z0-9_$]{1,64}")
_CHECK_ID = re.compile(r"[A-Za-z0-9_.:-]+")
_PREFIX = re.compile(r"(?:[A-Za-z][A-Za-z0-9_]*)?")
_SUFFIX = re.compile(r"[A-Za-z0-9_]*")
# Airflow DAG tags have at most 100 characters; the tag also prefixes log lines and alerts.
ENVIRONMENT_TAG_MAX_LENGTH = 100
_ENVIRONMENT_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]*")

# Numeric options: (minimum, maximum), inclusive; docs/spec.md lists the same ranges.
RANGES: dict[str, tuple[float, float]] = {
    "throttle.full.source_qps": (1, 100_000),
    "throttle.full.rows_per_s": (1, 100_000_000),
    "throttle.full.mb_per_s": (0.1, 10_000),
    "throttle.incremental.rows_per_s": (1, 100_000_000),
    "throttle.incremental.mb_per_s": (0.1, 10_000),
    "retry.connection_minutes": (10, 1440),
    "retry.other_minutes": (1, 1440),
    "heartbeat.interval_seconds": (1, 3600),
    "latency_alert_seconds": (1, 604_800),
    "full_load.chunk_rows": (1, 10_000_000),
    "full_load.parallelism": (1, 64),
    "incremental.settle_seconds": (0, 3600),
    "incremental.poll_seconds": (1, 600),
    "incremental.block_rows": (1000, 10_000_000),
}

_EMPTY_MAP: Mapping[str, str] = MappingProxyType({})
_SYSTEM_DATABASES = frozenset({"information_schema", "mysql", "performance_schema", "sys"})


# --- the spec tree --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceSpec:
    """Where to read: an Airflow connection to PolarDB for MySQL / MySQL 8 / MariaDB."""

    conn_id: str = "polardb_default"
    databases: tuple[str, ...] = ()


@dataclass(frozen=True)
class DestinationSpec:
    """Where to write: a ``maxcompute`` Airflow connection; ``project`` None means the connection's."""

    conn_id: str = "maxcompute_default"
    project: str | None = None


@dataclass(frozen=True)
class TableSpec:
    """One explicitly listed table.

    ``target`` renames it in MaxCompute (batch rename is then not applied); ``filter`` is a SQL WHERE
    expression applied to the full load and to incremental changes; ``columns`` renames columns
    (source -> destination).
    """

    name: str
    target: str | None = None
    filter: str | None = None
    columns: Mapping[str, str] = field(default_factory=lambda: _EMPTY_MAP)


@dataclass(frozen=True)
class ObjectSpec:
    """One database's selection: every table (``all_tables``, narrowed by fnmatch ``include`` and
    ``exclude`` patterns, matched case-insensitively) or the listed ``tables``."""

    database: str
    all_tables: bool
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    tables: tuple[TableSpec, ...] = ()


@dataclass(frozen=True)
class BatchRename:
    """Added around the name of every table without an explicit ``target``."""

    prefix: str = ""
    suffix: str = ""


@dataclass(frozen=True)
class FullThrottle:
    source_qps: int | None = None
    rows_per_s: int | None = None
    mb_per_s: float | None = None


@dataclass(frozen=True)
class IncrementalThrottle:
    rows_per_s: int | None = None
    mb_per_s: float | None = None


@dataclass(frozen=True)
class ThrottleSpec:
    """Rate limits; None means unlimited."""

    full: FullThrottle = field(default_factory=FullThrottle)
    incremental: IncrementalThrottle = field(default_factory=IncrementalThrottle)


@dataclass(frozen=True)
class RetrySpec:
    """How long to keep retrying: ``connection_minutes`` after losing a connection to the source or
    the destination, ``other_minutes`` after other retryable errors (operators derive Airflow task
    retries from these)."""

    connection_minutes: int = 720
    other_minutes: int = 10


@dataclass(frozen=True)
class HeartbeatSpec:
    """A source table written every ``interval_seconds`` so the binlog position advances even when no
    selected table changes; ``database`` None means the first of ``source.databases``."""

    enabled: bool = False
    table: str = "polar_mc_heartbeat"
    database: str | None = None
    interval_seconds: int = 60


@dataclass(frozen=True)
class IncrementalSpec:
    """How incremental batches are scheduled: one Airflow run (and one ``_log`` partition) per
    partition unit, from ``start_date`` (UTC, ISO 8601); each run waits until the source's clock has
    passed the interval's end by ``settle_seconds`` before it captures the end coordinate."""

    start_date: str | None = None
    settle_seconds: int = 30
    poll_seconds: int = 10
    block_rows: int = 100_000


@dataclass(frozen=True)
class FullLoadSpec:
    chunk_rows: int = 50_000
    parallelism: int = 2


@dataclass(frozen=True)
class MergeSpec:
    """The replica built in MaxCompute from ``_base`` and ``_log`` (runs only with incremental
    migration). ``replica_name`` may use ``{table}`` (the mapped name) and ``{database}``."""

    enabled: bool = True
    replica_name: str = naming.DEFAULT_REPLICA_PATTERN


@dataclass(frozen=True)
class TableSelection:
    """One source table selected for migration, with every destination name after mapping.

    Destination names are as MaxCompute stores them (lower case); use :meth:`spell` to write them in
    DDL/SQL the way the ``capitalization`` policy asks. ``destination_names`` lists the tables this
    selection will own under the spec's migration types (for collision findings). JSON-safe through
    ``to_dict``/``from_dict`` for XCom and dynamic task mapping.
    """

    source_database: str
    source_table: str
    destination_table: str
    base_table: str
    log_table: str
    replica_table: str
    filter: str | None = None
    columns: Mapping[str, str] = field(default_factory=lambda: _EMPTY_MAP)
    capitalization: naming.Capitalization = "default"
    destination_names: tuple[str, ...] = ()
    spec_path: str = ""  # where in the spec the table was selected, for messages

    @property
    def source_name(self) -> str:
        return f"{self.source_database}.{self.source_table}"

    def spell(self, name: str) -> str:
        return naming.spell(name, self.capitalization)

    def destination_column(self, source_column: str) -> str:
        return naming.destination_column_name(source_column, self.columns)

    def unknown_mapped_columns(self, source_columns: Iterable[str]) -> list[str]:
        """Keys of the ``columns`` map that name no source column (case-insensitive)."""
        present = {column.lower() for column in source_columns}
        return [column for column in self.columns if column.lower() not in present]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source_database": self.source_database,
            "source_table": self.source_table,
            "destination_table": self.destination_table,
            "base_table": self.base_table,
            "log_table": self.log_table,
            "replica_table": self.replica_table,
            "filter": self.filter,
            "columns": dict(self.columns),
            "capitalization": self.capitalization,
            "destination_names": list(self.destination_names),
            "spec_path": self.spec_path,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TableSelection:
        values = dict(data)
        values["columns"] = MappingProxyType(dict(values.get("columns") or {}))
        values["destination_names"] = tuple(values.get("destination_names") or ())
        return cls(**values)


@dataclass(frozen=True)
class MigrationSpec:
    """A whole migration. See docs/spec.md for every option; built only through ``from_dict`` /
    ``from_yaml`` (which validate), never half-valid.

    ``migration_types`` is any non-empty combination of ``schema``, ``full`` and ``incremental``
    (DTS accepts each of the seven). Consequences the operators and the precheck rely on:

    * without ``schema`` the destination tables must already exist under their mapped names
      (``destination_tables_must_exist``; ``existing_tables_required`` lists them per table);
    * without ``full`` the incremental migration starts at the coordinate captured when the migration
      first runs (``incremental_start == "first_run"``), so the replica holds only what ``_base``
      already had plus later changes; with ``full`` it starts at the full load's snapshot coordinate;
    * the merge runs only when ``incremental`` is selected (``merge_active``).
    """

    name: str
    source: SourceSpec
    destination: DestinationSpec = field(default_factory=DestinationSpec)
    migration_types: tuple[MigrationType, ...] = MIGRATION_TYPES  # type: ignore[assignment]
    objects: tuple[ObjectSpec, ...] = ()
    batch_rename: BatchRename = field(default_factory=BatchRename)
    additional_column_rule: naming.AdditionalColumnRule = "previous"
    partition: tuple[str, ...] = DEFAULT_PARTITION
    conflict_mode: ConflictMode = "precheck_and_report"
    capitalization: naming.Capitalization = "default"
    throttle: ThrottleSpec = field(default_factory=ThrottleSpec)
    retry: RetrySpec = field(default_factory=RetrySpec)
    heartbeat: HeartbeatSpec = field(default_factory=HeartbeatSpec)
    latency_alert_seconds: int | None = None
    environment_tag: str | None = None
    json_type: Literal["string", "json"] = "string"
    datetime_type: Literal["timestamp_ntz", "datetime"] = "timestamp_ntz"
    full_load: FullLoadSpec = field(default_factory=FullLoadSpec)
    incremental: IncrementalSpec = field(default_factory=IncrementalSpec)
    merge: MergeSpec = field(default_factory=MergeSpec)
    accepted_warnings: tuple[str, ...] = ()

    # -- building --

    @classmethod
    def from_dict(cls, document: Any, source: str | None = None) -> MigrationSpec:
        """Validate ``document`` (parsed YAML/JSON) and build the spec, or raise one ``SpecError``."""
        return _Parser(source).parse(document)

    @classmethod
    def from_yaml(cls, path_or_text: str | Path) -> MigrationSpec:
        """Load a YAML spec from a file path or from YAML text (UTF-8, at most 1 MiB, no key twice)."""
        text, source = _read_yaml_source(path_or_text)
        # Bounded: size, nesting and alias expansion; a key given twice is an error (spec_yaml).
        document, duplicates = spec_yaml.load_spec_document(text, source)
        try:
            spec = cls.from_dict(document, source=source)
        except SpecError as error:
            raise SpecError([*duplicates, *error.problems], source) from None
        if duplicates:
            raise SpecError(duplicates, source)
        return spec

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain document, every default explicit; ``from_dict`` round-trips it."""
        return {
            "name": self.name,
            "source": {"conn_id": self.source.conn_id, "databases": list(self.source.databases)},
            "destination": {"conn_id": self.destination.conn_id, "project": self.destination.project},
            "migration_types": list(self.migration_types),
            "objects": [_object_to_dict(entry) for entry in self.objects],
            "batch_rename": {"prefix": self.batch_rename.prefix, "suffix": self.batch_rename.suffix},
            "additional_column_rule": self.additional_column_rule,
            "partition": list(self.partition),
            "conflict_mode": self.conflict_mode,
            "capitalization": self.capitalization,
            "throttle": {
                "full": {
                    "source_qps": self.throttle.full.source_qps,
                    "rows_per_s": self.throttle.full.rows_per_s,
                    "mb_per_s": self.throttle.full.mb_per_s,
                },
                "incremental": {
                    "rows_per_s": self.throttle.incremental.rows_per_s,
                    "mb_per_s": self.throttle.incremental.mb_per_s,
                },
            },
            "retry": {
                "connection_minutes": self.retry.connection_minutes,
                "other_minutes": self.retry.other_minutes,
            },
            "heartbeat": {
                "enabled": self.heartbeat.enabled,
                "table": self.heartbeat.table,
                "database": self.heartbeat.database,
                "interval_seconds": self.heartbeat.interval_seconds,
            },
            "latency_alert_seconds": self.latency_alert_seconds,
            "environment_tag": self.environment_tag,
            "json_type": self.json_type,
            "datetime_type": self.datetime_type,
            "full_load": {"chunk_rows": self.full_load.chunk_rows, "parallelism": self.full_load.parallelism},
            "incremental": {
                "start_date": self.incremental.start_date,
                "settle_seconds": self.incremental.settle_seconds,
                "poll_seconds": self.incremental.poll_seconds,
                "block_rows": self.incremental.block_rows,
            },
            "merge": {"enabled": self.merge.enabled, "replica_name": self.merge.replica_name},
            "accepted_warnings": list(self.accepted_warnings),
        }

    # -- what the operators ask --

    @property
    def destination_tables_must_exist(self) -> bool:
        """Without schema migration nothing creates the destination tables: the precheck must find
        them under their mapped names."""
        return "schema" not in self.migration_types

    @property
    def incremental_start(self) -> Literal["full_load_snapshot", "first_run"] | None:
        if "incremental" not in self.migration_types:
            return None
        return "full_load_snapshot" if "full" in self.migration_types else "first_run"

    @property
    def merge_active(self) -> bool:
        return self.merge.enabled and "incremental" in self.migration_types

    @property
    def heartbeat_database(self) -> str:
        return self.heartbeat.database or self.source.databases[0]

    def existing_tables_required(self, selection: TableSelection) -> tuple[str, ...]:
        """Destination tables the precheck must find for ``selection`` (empty with schema migration)."""
        if not self.destination_tables_must_exist:
            return ()
        required: list[str] = []
        if "full" in self.migration_types or self.merge_active:
            required.append(selection.base_table)
        if "incremental" in self.migration_types:
            required.append(selection.log_table)
        return tuple(required)

    def additional_columns(self) -> tuple[naming.AdditionalColumn, ...]:
        return naming.additional_columns(self.additional_column_rule)

    def partition_columns(self) -> tuple[str, ...]:
        return naming.partition_columns(self.additional_column_rule, self.partition)

    def select_tables(
        self,
        source_tables: Mapping[str, Iterable[str]],
        *,
        missing: Literal["error", "ignore"] = "error",
        databases: Iterable[str] | None = None,
    ) -> list[TableSelection]:
        """The selected tables, in spec order, given the source's tables per database.

        A database or an explicitly listed table absent from ``source_tables`` (or, when given, from
        ``databases``, every database the source has) raises a ``SourceMismatch`` naming every one of
        them (``missing="ignore"`` skips them instead; the precheck uses :meth:`missing_objects` to
        report them).
        """
        problems = self.missing_objects(source_tables, databases=databases)
        if problems and missing == "error":
            raise SourceMismatch(problems, f"migration {self.name}")
        selections: list[TableSelection] = []
        for index, entry in enumerate(self.objects):
            available = list(source_tables.get(entry.database, ()))
            if entry.all_tables:
                for table in available:
                    if self._is_heartbeat_table(entry.database, table):
                        continue  # written by the migration itself, never migrated
                    if _pattern_selects(table, entry.include, entry.exclude):
                        selections.append(self._selection(entry.database, TableSpec(table), f"objects[{index}]"))
            else:
                present = set(available)
                for table_index, table_spec in enumerate(entry.tables):
                    if table_spec.name in present:
                        path = f"objects[{index}].tables[{table_index}]"
                        selections.append(self._selection(entry.database, table_spec, path))
        return selections

    def _is_heartbeat_table(self, database: str, table: str) -> bool:
        return self.heartbeat.enabled and database == self.heartbeat_database and table == self.heartbeat.table

    def missing_objects(
        self, source_tables: Mapping[str, Iterable[str]], databases: Iterable[str] | None = None
    ) -> list[SpecProblem]:
        """Databases and explicitly listed tables of the spec that the source does not have.

        ``source_tables`` maps each database read from the source to its tables. ``databases``, when
        given, is every database the source has (system ones included): a database of
        ``source.databases`` absent from it is reported at ``source.databases[i]`` (with a "did you
        mean" among them), and not again at the ``objects[]`` entry naming it.
        """
        problems: list[SpecProblem] = []
        reported: set[str] = set()
        if databases is not None:
            existing = list(databases)
            present_databases = set(existing)
            candidates = [name for name in existing if name.lower() not in _SYSTEM_DATABASES] or existing
            for index, database in enumerate(self.source.databases):
                if database not in present_databases:
                    hint = _did_you_mean(database, candidates)
                    problems.append(SpecProblem(f"source.databases[{index}]",
                                                f"database {database!r} not found in the source{hint}"))
                    reported.add(database)
        for index, entry in enumerate(self.objects):
            if entry.database in reported:
                continue
            if entry.database not in source_tables:
                hint = _did_you_mean(entry.database, source_tables)
                problems.append(
                    SpecProblem(f"objects[{index}].database", f"database {entry.database!r} not found in the source{hint}")
                )
                continue
            available = list(source_tables[entry.database])
            present = set(available)
            for table_index, table_spec in enumerate(entry.tables):
                if table_spec.name not in present:
                    hint = _did_you_mean(table_spec.name, available)
                    problems.append(
                        SpecProblem(
                            f"objects[{index}].tables[{table_index}]",
                            f"table {entry.database}.{table_spec.name} not found in the source{hint}",
                        )
                    )
        return problems

    def why_nothing_selected(self, source_tables: Mapping[str, Iterable[str]]) -> list[SpecProblem]:
        """Why :meth:`select_tables` selects no table (call it when it does not): per ``objects[]``
        entry, what the source holds and what the patterns did with it."""
        problems: list[SpecProblem] = []
        for index, entry in enumerate(self.objects):
            path = f"objects[{index}]"
            available = [table for table in source_tables.get(entry.database, ())
                         if not self._is_heartbeat_table(entry.database, table)]
            if not entry.all_tables:
                continue  # listed tables are either selected or reported by missing_objects
            if not available:
                problems.append(SpecProblem(f"{path}.database", f"database {entry.database!r} has no tables "
                                                                "(base tables; views are not migrated)"))
                continue
            included = [t for t in available if _pattern_selects(t, entry.include, ())]
            if not included:
                problems.append(SpecProblem(f"{path}.include", f"none of the {len(available)} tables of "
                                            f"{entry.database} ({_sample(available)}) matches {list(entry.include)}"))
            else:
                problems.append(SpecProblem(f"{path}.exclude", f"{list(entry.exclude)} excludes every table of "
                                            f"{entry.database} that include selects ({_sample(included)})"))
        if not problems:
            problems.append(SpecProblem("objects", "selects no table"))
        return problems

    def naming_findings(self, selections: Iterable[TableSelection]) -> list[naming.NamingFinding]:
        """Table-level naming findings (invalid names, collisions) for the selected tables."""
        return naming.find_table_findings(selections)

    def _selection(self, database: str, table: TableSpec, path: str) -> TableSelection:
        destination = naming.destination_table_name(
            table.name, target=table.target, prefix=self.batch_rename.prefix, suffix=self.batch_rename.suffix
        )
        base = naming.base_table_name(destination)
        log = naming.log_table_name(destination)
        replica = naming.replica_table_name(destination, self.merge.replica_name, database)
        owned: list[str] = []
        if "schema" in self.migration_types or "full" in self.migration_types:
            owned.append(base)
        if "incremental" in self.migration_types:
            owned.append(log)
        if self.merge_active:
            owned.append(replica)
        return TableSelection(
            source_database=database,
            source_table=table.name,
            destination_table=destination,
            base_table=base,
            log_table=log,
            replica_table=replica,
            filter=table.filter,
            columns=MappingProxyType({src: naming.stored_name(dst) for src, dst in table.columns.items()}),
            capitalization=self.capitalization,
            destination_names=tuple(owned),
            spec_path=path,
        )


# --- parsing --------------------------------------------------------------------------------------

_MISSING = object()


class _Parser:
    """Walks a document once, collecting every problem with its path; raises once at the end."""

    def __init__(self, source: str | None):
        self.source = source
        self.problems: list[SpecProblem] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(SpecProblem(path, message))

    # -- generic readers; each returns the default (or None) after recording a problem --

    def section(self, document: Any, path: str, allowed: Iterable[str]) -> dict[str, Any]:
        """A mapping with only ``allowed`` keys ({} when absent/None or not a mapping)."""
        if document is None:
            return {}
        if not isinstance(document, Mapping):
            self.problem(path, f"must be a mapping, got {_describe(document)}")
            return {}
        allowed = tuple(allowed)
        for key in document:
            if not isinstance(key, str):
                self.problem(path, f"keys must be strings, got {_describe(key)}")
            elif key not in allowed:
                suggestion = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                hint = f"; did you mean {suggestion[0]!r}?" if suggestion else f"; allowed: {', '.join(allowed)}"
                self.problem(_join(path, key), f"unknown option{hint}")
        return dict(document)

    def string(
        self, section: Mapping[str, Any], key: str, path: str, default: Any = _MISSING,
        pattern: re.Pattern[str] | None = None, pattern_text: str = "",
    ) -> Any:
        value = section.get(key, _MISSING)
        field_path = _join(path, key)
        if value is _MISSING or value is None:
            if default is _MISSING:
                self.problem(field_path, "is required")
                return None
            return default
        if not isinstance(value, str) or not value.strip():
            self.problem(field_path, f"must be a non-empty string, got {_describe(value)}")
            return None if default is _MISSING else default
        if pattern is not None and not pattern.fullmatch(value):
            self.problem(field_path, f"{value!r} {pattern_text}")
        return value

    def choice(self, section: Mapping[str, Any], key: str, path: str, choices: tuple[str, ...], default: str) -> str:
        value = section.get(key, default)
        if value is None:
            return default
        if value not in choices:
            suggestion = difflib.get_close_matches(str(value), choices, n=1, cutoff=0.5)
            hint = f" (did you mean {suggestion[0]!r}?)" if suggestion else ""
            self.problem(_join(path, key), f"must be one of {', '.join(choices)}; got {value!r}{hint}")
            return default
        return value

    def boolean(self, section: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
        value = section.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(_join(path, key), f"must be true or false, got {_describe(value)}")
            return default
        return value

    def integer(self, section: Mapping[str, Any], key: str, path: str, default: int | None) -> int | None:
        """An integer within the field's range in ``RANGES`` (every numeric option has one)."""
        field_path = _join(path, key)
        minimum, maximum = RANGES[field_path]
        value = section.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(field_path, f"{_range_text(minimum, maximum)}, got {_describe(value)}")
            return default
        if not minimum <= value <= maximum:
            self.problem(field_path, f"{_range_text(minimum, maximum)}, got {_number_text(value)}")
            return default
        return value

    def number(self, section: Mapping[str, Any], key: str, path: str) -> float | None:
        """A number (integer or decimal) within the field's range in ``RANGES``; None when absent."""
        field_path = _join(path, key)
        minimum, maximum = RANGES[field_path]
        value = section.get(key)
        if value is None:
            return None
        expected = f"must be a positive number from {_number_text(minimum)} to {_number_text(maximum)}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(field_path, f"{expected}, got {_describe(value)}")
            return None
        if not minimum <= value <= maximum:  # also false for NaN
            self.problem(field_path, f"{expected}, got {_number_text(value)}")
            return None
        return value

    def string_list(self, value: Any, path: str, *, required: bool = False) -> list[tuple[int, str]]:
        """(index, item) of a list of non-empty strings; duplicates are problems."""
        if value is None:
            if required:
                self.problem(path, "is required (a list with at least one entry)")
            return []
        if not isinstance(value, list):
            self.problem(path, f"must be a list, got {_describe(value)}")
            return []
        if required and not value:
            self.problem(path, "must list at least one entry")
        items: list[tuple[int, str]] = []
        seen: set[str] = set()
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.problem(f"{path}[{index}]", f"must be a non-empty string, got {_describe(item)}")
            elif item in seen:
                self.problem(f"{path}[{index}]", f"{item!r} is listed twice")
            else:
                seen.add(item)
                items.append((index, item))
        return items

    # -- the document --

    def parse(self, document: Any) -> MigrationSpec:
        if not isinstance(document, Mapping):
            self.problem("", f"the spec must be a mapping of options, got {_describe(document)}")
            raise SpecError(self.problems, self.source)
        top = self.section(document, "", _TOP_LEVEL_KEYS)

        name = self.string(top, "name", "", pattern=_MIGRATION_NAME,
                           pattern_text="must be 1-64 characters of a-z, 0-9 and _ (it namespaces checkpoints)")
        source = self.parse_source(top.get("source"))
        destination = self.parse_destination(top.get("destination"))
        migration_types = self.parse_migration_types(top.get("migration_types", list(MIGRATION_TYPES)))
        objects = self.parse_objects(top.get("objects"), source.databases)
        batch_rename = self.parse_batch_rename(top.get("batch_rename"))
        merge = self.parse_merge(top.get("merge"))
        retry = self.parse_retry(top.get("retry"))
        heartbeat = self.parse_heartbeat(top.get("heartbeat"))

        spec = MigrationSpec(
            name=name or "",
            source=source,
            destination=destination,
            migration_types=migration_types,
            objects=objects,
            batch_rename=batch_rename,
            additional_column_rule=self.choice(  # type: ignore[arg-type]
                top, "additional_column_rule", "", naming.ADDITIONAL_COLUMN_RULES, "previous"),
            partition=self.parse_partition(top.get("partition", list(DEFAULT_PARTITION))),
            conflict_mode=self.choice(top, "conflict_mode", "", CONFLICT_MODES, "precheck_and_report"),  # type: ignore[arg-type]
            capitalization=self.choice(top, "capitalization", "", naming.CAPITALIZATIONS, "default"),  # type: ignore[arg-type]
            throttle=self.parse_throttle(top.get("throttle")),
            retry=retry,
            heartbeat=heartbeat,
            latency_alert_seconds=self.integer(top, "latency_alert_seconds", "", None),
            environment_tag=self.parse_environment_tag(top),
            json_type=self.choice(top, "json_type", "", JSON_TYPES, "string"),  # type: ignore[arg-type]
            datetime_type=self.choice(top, "datetime_type", "", DATETIME_TYPES, "timestamp_ntz"),  # type: ignore[arg-type]
            full_load=self.parse_full_load(top.get("full_load")),
            incremental=self.parse_incremental(top.get("incremental")),
            merge=merge,
            accepted_warnings=self.parse_accepted_warnings(top.get("accepted_warnings")),
        )
        self.check_cross_field(spec)
        if self.problems:
            raise SpecError(self.problems, self.source)
        return spec

    def parse_source(self, document: Any) -> SourceSpec:
        path = "source"
        if document is None:
            self.problem(path, "is required (conn_id and databases)")
            return SourceSpec()
        section = self.section(document, path, ("conn_id", "databases"))
        conn_id = self.string(section, "conn_id", path, default=SourceSpec.conn_id)
        databases = self.string_list(section.get("databases"), "source.databases", required=True)
        for index, database in databases:
            if len(database) > 64:
                self.problem(f"source.databases[{index}]", "a MySQL database name has at most 64 characters")
        return SourceSpec(conn_id=conn_id, databases=tuple(database for _, database in databases))

    def parse_destination(self, document: Any) -> DestinationSpec:
        path = "destination"
        section = self.section(document, path, ("conn_id", "project"))
        return DestinationSpec(
            conn_id=self.string(section, "conn_id", path, default=DestinationSpec.conn_id),
            project=self.string(section, "project", path, default=None),
        )

    def parse_migration_types(self, value: Any) -> tuple[MigrationType, ...]:
        path = "migration_types"
        items = self.string_list(value, path, required=True)
        chosen: set[str] = set()
        for index, item in items:
            if item not in MIGRATION_TYPES:
                suggestion = difflib.get_close_matches(item, MIGRATION_TYPES, n=1, cutoff=0.5)
                hint = f" (did you mean {suggestion[0]!r}?)" if suggestion else ""
                self.problem(f"{path}[{index}]", f"must be one of {', '.join(MIGRATION_TYPES)}; got {item!r}{hint}")
            else:
                chosen.add(item)
        # Canonical order, so equal sets give equal specs.
        return tuple(kind for kind in MIGRATION_TYPES if kind in chosen)  # type: ignore[misc]

    def parse_objects(self, value: Any, databases: tuple[str, ...]) -> tuple[ObjectSpec, ...]:
        if value is None:
            # Default: every table of every source database.
            return tuple(ObjectSpec(database=database, all_tables=True) for database in databases)
        if not isinstance(value, list):
            self.problem("objects", f"must be a list of databases, got {_describe(value)}")
            return ()
        if not value:
            self.problem("objects", "must list at least one database (or be left out to migrate them all)")
        entries: list[ObjectSpec] = []
        seen: dict[str, int] = {}
        for index, entry in enumerate(value):
            parsed = self.parse_object(entry, f"objects[{index}]", databases)
            if parsed is None:
                continue
            if parsed.database in seen:
                self.problem(f"objects[{index}].database",
                             f"{parsed.database!r} is already listed in objects[{seen[parsed.database]}]; "
                             "list each database once")
                continue
            seen[parsed.database] = index
            entries.append(parsed)
        return tuple(entries)

    def parse_object(self, document: Any, path: str, databases: tuple[str, ...]) -> ObjectSpec | None:
        if not isinstance(document, Mapping):
            self.problem(path, f"must be a mapping with database and tables, got {_describe(document)}")
            return None
        section = self.section(document, path, ("database", "tables", "include", "exclude"))
        database = self.string(section, "database", path)
        if database is not None and databases and database not in databases:
            hint = _did_you_mean(database, databases)
            self.problem(_join(path, "database"), f"{database!r} is not in source.databases{hint}")

        tables_value = section.get("tables", _MISSING)
        include = self.parse_patterns(section.get("include"), _join(path, "include"))
        exclude = self.parse_patterns(section.get("exclude"), _join(path, "exclude"))
        if tables_value is _MISSING or tables_value is None:
            self.problem(_join(path, "tables"), "is required: `all` or a list of tables")
            return None
        if tables_value == "all":
            return ObjectSpec(database=database or "", all_tables=True, include=include, exclude=exclude)
        for key in ("include", "exclude"):
            if section.get(key):
                self.problem(_join(path, key), "is only allowed with `tables: all`")
        if not isinstance(tables_value, list):
            self.problem(_join(path, "tables"), f"must be `all` or a list of tables, got {_describe(tables_value)}")
            return None
        if not tables_value:
            self.problem(_join(path, "tables"), "must list at least one table (or be `all`)")
        tables: list[TableSpec] = []
        seen: dict[str, int] = {}
        for table_index, table_document in enumerate(tables_value):
            table_path = f"{path}.tables[{table_index}]"
            table = self.parse_table(table_document, table_path)
            if table is None:
                continue
            if table.name in seen:
                self.problem(table_path, f"table {table.name!r} is already listed at {path}.tables[{seen[table.name]}]")
                continue
            seen[table.name] = table_index
            tables.append(table)
        return ObjectSpec(database=database or "", all_tables=False, tables=tuple(tables))

    def parse_patterns(self, value: Any, path: str) -> tuple[str, ...]:
        patterns = self.string_list(value, path)
        for index, pattern in patterns:
            problem = _pattern_problem(pattern)
            if problem:
                self.problem(f"{path}[{index}]", problem)
        return tuple(pattern for _, pattern in patterns)

    def parse_table(self, document: Any, path: str) -> TableSpec | None:
        if isinstance(document, str):
            document = {"name": document}
        if not isinstance(document, Mapping):
            self.problem(path, f"must be a table name or a mapping with name, got {_describe(document)}")
            return None
        section = self.section(document, path, ("name", "target", "filter", "columns"))
        name = self.string(section, "name", path, pattern=_MYSQL_TABLE_NAME,
                           pattern_text="is not a MySQL table name (at most 64 characters, no trailing space)")
        target = self.string(section, "target", path, default=None)
        if target is not None:
            self.check_mc_name(target, _join(path, "target"), naming.MAX_TABLE_NAME_LENGTH)
        table_filter = section.get("filter")
        if table_filter is not None:
            problem = filter_problem(table_filter)
            if problem:
                self.problem(_join(path, "filter"), problem)
                table_filter = None
        columns = self.parse_column_map(section.get("columns"), _join(path, "columns"))
        if name is None:
            return None
        return TableSpec(name=name, target=target, filter=table_filter, columns=columns)

    def parse_column_map(self, value: Any, path: str) -> Mapping[str, str]:
        if value is None:
            return _EMPTY_MAP
        if not isinstance(value, Mapping):
            self.problem(path, f"must map source column names to destination names, got {_describe(value)}")
            return _EMPTY_MAP
        result: dict[str, str] = {}
        sources_seen: dict[str, str] = {}
        targets_seen: dict[str, str] = {}
        for source_column, target_column in value.items():
            entry_path = f"{path}.{source_column}"
            if not isinstance(source_column, str) or not source_column.strip():
                self.problem(path, f"source column names must be non-empty strings, got {_describe(source_column)}")
                continue
            if not isinstance(target_column, str):
                self.problem(entry_path, f"must be the destination column name, got {_describe(target_column)}")
                continue
            if not self.check_mc_name(target_column, entry_path, naming.MAX_NAME_LENGTH):
                continue
            # MySQL column names and MaxCompute names are both case-insensitive.
            if source_column.lower() in sources_seen:
                self.problem(entry_path, f"column {sources_seen[source_column.lower()]!r} is already mapped")
                continue
            if target_column.lower() in targets_seen:
                self.problem(entry_path, f"{target_column!r} is already the target of column "
                                         f"{targets_seen[target_column.lower()]!r}")
                continue
            sources_seen[source_column.lower()] = source_column
            targets_seen[target_column.lower()] = source_column
            result[source_column] = target_column
        return MappingProxyType(result)

    def check_mc_name(self, name: str, path: str, max_length: int) -> bool:
        problem = naming.name_problem(name)
        if problem is None and len(name) > max_length:
            problem = f"is longer than {max_length} characters (room is kept for the _base/_log suffix)"
        if problem:
            self.problem(path, f"{name!r} is not a valid MaxCompute name: it {problem}")
            return False
        return True

    def parse_batch_rename(self, document: Any) -> BatchRename:
        path = "batch_rename"
        section = self.section(document, path, ("prefix", "suffix"))
        values: dict[str, str] = {}
        for key, pattern, rule in (("prefix", _PREFIX, "must start with a letter and contain only letters, "
                                    "digits and underscores"),
                                   ("suffix", _SUFFIX, "may contain only letters, digits and underscores")):
            value = section.get(key, "")
            if value is None:
                value = ""
            if not isinstance(value, str):
                self.problem(_join(path, key), f"must be a string, got {_describe(value)}")
                value = ""
            elif not pattern.fullmatch(value):
                self.problem(_join(path, key), f"{value!r} {rule}")
                value = ""
            values[key] = value
        return BatchRename(**values)

    def parse_partition(self, value: Any) -> tuple[str, ...]:
        path = "partition"
        expected = f"must be a non-empty prefix of [{', '.join(naming.PARTITION_LEVELS)}], e.g. [year, month, day]"
        if not isinstance(value, list) or not value:
            self.problem(path, f"{expected}; got {_describe(value)}")
            return DEFAULT_PARTITION
        if tuple(value) != naming.PARTITION_LEVELS[: len(value)]:
            self.problem(path, f"{expected}; got {value}")
            return DEFAULT_PARTITION
        return tuple(value)

    def parse_throttle(self, document: Any) -> ThrottleSpec:
        section = self.section(document, "throttle", ("full", "incremental"))
        full = self.section(section.get("full"), "throttle.full", ("source_qps", "rows_per_s", "mb_per_s"))
        incremental = self.section(section.get("incremental"), "throttle.incremental", ("rows_per_s", "mb_per_s"))
        return ThrottleSpec(
            full=FullThrottle(
                source_qps=self.integer(full, "source_qps", "throttle.full", None),
                rows_per_s=self.integer(full, "rows_per_s", "throttle.full", None),
                mb_per_s=self.number(full, "mb_per_s", "throttle.full"),
            ),
            incremental=IncrementalThrottle(
                rows_per_s=self.integer(incremental, "rows_per_s", "throttle.incremental", None),
                mb_per_s=self.number(incremental, "mb_per_s", "throttle.incremental"),
            ),
        )

    def parse_retry(self, document: Any) -> RetrySpec:
        path = "retry"
        section = self.section(document, path, ("connection_minutes", "other_minutes"))
        connection = self.integer(section, "connection_minutes", path, RetrySpec.connection_minutes)
        other = self.integer(section, "other_minutes", path, RetrySpec.other_minutes)
        if other is not None and connection is not None and other >= connection:
            self.problem("retry.other_minutes",
                         f"must be less than retry.connection_minutes ({connection}), got {other}")
        return RetrySpec(connection_minutes=connection or RetrySpec.connection_minutes,
                         other_minutes=other or RetrySpec.other_minutes)

    def parse_heartbeat(self, document: Any) -> HeartbeatSpec:
        path = "heartbeat"
        section = self.section(document, path, ("enabled", "table", "database", "interval_seconds"))
        database = self.string(section, "database", path, default=None, pattern=_MYSQL_IDENTIFIER,
                               pattern_text="is not a MySQL database name")
        return HeartbeatSpec(
            enabled=self.boolean(section, "enabled", path, HeartbeatSpec.enabled),
            table=self.string(section, "table", path, default=HeartbeatSpec.table, pattern=_MYSQL_IDENTIFIER,
                              pattern_text="must be 1-64 characters of letters, digits, _ and $"),
            database=database,
            interval_seconds=self.integer(section, "interval_seconds", path, HeartbeatSpec.interval_seconds),
        )

    def parse_full_load(self, document: Any) -> FullLoadSpec:
        path = "full_load"
        section = self.section(document, path, ("chunk_rows", "parallelism"))
        return FullLoadSpec(
            chunk_rows=self.integer(section, "chunk_rows", path, FullLoadSpec.chunk_rows),
            parallelism=self.integer(section, "parallelism", path, FullLoadSpec.parallelism),
        )

    def parse_incremental(self, document: Any) -> IncrementalSpec:
        path = "incremental"
        section = self.section(document, path, ("start_date", "settle_seconds", "poll_seconds", "block_rows"))
        start = section.get("start_date")
        if isinstance(start, (dt.date, dt.datetime)):
            start = start.isoformat()
        if start is not None:
            try:
                parsed = dt.datetime.fromisoformat(str(start))
            except ValueError:
                self.problem(f"{path}.start_date", f"{start!r} is not an ISO 8601 date or date-time (e.g. 2026-01-01)")
                start = None
            else:
                if parsed.year < 2000:  # every interval since then would be queued as a catch-up run
                    self.problem(f"{path}.start_date", f"{start!r} is before 2000-01-01; leave it unset to start "
                                                       "at the latest interval when the DAG is deployed")
                    start = None
        return IncrementalSpec(
            start_date=str(start) if start is not None else None,
            settle_seconds=self.integer(section, "settle_seconds", path, IncrementalSpec.settle_seconds),
            poll_seconds=self.integer(section, "poll_seconds", path, IncrementalSpec.poll_seconds),
            block_rows=self.integer(section, "block_rows", path, IncrementalSpec.block_rows),
        )

    def parse_merge(self, document: Any) -> MergeSpec:
        path = "merge"
        section = self.section(document, path, ("enabled", "replica_name"))
        pattern = self.string(section, "replica_name", path, default=MergeSpec.replica_name)
        if pattern is not None and pattern != MergeSpec.replica_name:
            problem = replica_pattern_problem(pattern)
            if problem:
                self.problem("merge.replica_name", problem)
                pattern = MergeSpec.replica_name
        return MergeSpec(enabled=self.boolean(section, "enabled", path, MergeSpec.enabled),
                         replica_name=pattern or MergeSpec.replica_name)

    def parse_environment_tag(self, top: Mapping[str, Any]) -> str | None:
        tag = self.string(top, "environment_tag", "", default=None)
        if tag is None:
            return None
        if len(tag) > ENVIRONMENT_TAG_MAX_LENGTH:
            self.problem("environment_tag", f"is {len(tag)} characters long; at most {ENVIRONMENT_TAG_MAX_LENGTH} "
                                            "(it becomes an Airflow DAG tag, limited to 100 characters)")
            return None
        if not _ENVIRONMENT_TAG.fullmatch(tag):
            self.problem("environment_tag", f"{_short(tag)} may contain only letters, digits and _ . : - and must "
                                            "start with a letter or digit (it becomes a DAG tag and a log prefix)")
            return None
        return tag

    def parse_accepted_warnings(self, value: Any) -> tuple[str, ...]:
        items = self.string_list(value, "accepted_warnings")
        for index, item in items:
            if not _CHECK_ID.fullmatch(item):
                self.problem(f"accepted_warnings[{index}]", f"{item!r} is not a precheck id (letters, digits, _ . : -)")
        return tuple(item for _, item in items)

    def check_cross_field(self, spec: MigrationSpec) -> None:
        if spec.heartbeat.enabled and "incremental" not in spec.migration_types:
            self.problem("heartbeat.enabled", "the heartbeat only serves incremental migration; "
                                              "add incremental to migration_types or disable it")


_TOP_LEVEL_KEYS = (
    "name", "source", "destination", "migration_types", "objects", "batch_rename", "additional_column_rule",
    "partition", "conflict_mode", "capitalization", "throttle", "retry", "heartbeat", "latency_alert_seconds",
    "environment_tag", "json_type", "datetime_type", "full_load", "incremental", "merge", "accepted_warnings",
)
# MySQL allows almost any character in a quoted table name, but not a trailing space, and at most 64.
_MYSQL_TABLE_NAME = re.compile(r"(?s).{0,63}[^ ]")


# --- validation helpers (public: the precheck and the CLI reuse them) ----------------------------


def filter_problem(expression: Any) -> str | None:
    """Why a ``filter`` is not an acceptable SQL WHERE expression, or None.

    No full SQL parse: it must be non-empty, contain no ``;`` and no comment outside quotes (either
    would let the filter end or cut the statement it is embedded in), and have balanced quotes and
    parentheses.
    """
    if not isinstance(expression, str):
        return f"must be a SQL WHERE expression (a string), got {_describe(expression)}"
    if not expression.strip():
        return "must be a non-empty SQL WHERE expression"
    depth = 0
    quote: str | None = None
    index = 0
    while index < len(expression):
        char = expression[index]
        following = expression[index + 1] if index + 1 < len(expression) else ""
        if quote:
            if char == "\\" and quote != "`":
                index += 2  # backslash escape inside a string literal
                continue
            if char == quote:
                if following == quote:  # doubled quote: an escaped quote character
                    index += 2
                    continue
                quote = None
        elif char in "'\"`":
            quote = char
        elif char == ";":
            return "must be a single expression without ';'"
        elif char == "#" or (char == "-" and following == "-") or (char == "/" and following == "*"):
            return "must not contain SQL comments (#, --, /* */)"
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return "has a ')' without a matching '('"
        index += 1
    if quote:
        return f"has an unterminated {quote} quote"
    if depth:
        return f"has {depth} unclosed '('"
    return None


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


def _pattern_problem(pattern: str) -> str | None:
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


def _pattern_selects(table: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    lowered = table.lower()

    def matches(pattern: str) -> bool:
        return fnmatch.fnmatchcase(lowered, pattern.lower())

    if include and not any(matches(pattern) for pattern in include):
        return False
    return not any(matches(pattern) for pattern in exclude)


def _object_to_dict(entry: ObjectSpec) -> dict[str, Any]:
    if entry.all_tables:
        return {"database": entry.database, "tables": "all", "include": list(entry.include),
                "exclude": list(entry.exclude)}
    tables: list[dict[str, Any]] = []
    for table in entry.tables:
        item: dict[str, Any] = {"name": table.name}
        if table.target is not None:
            item["target"] = table.target
        if table.filter is not None:
            item["filter"] = table.filter
        if table.columns:
            item["columns"] = dict(table.columns)
        tables.append(item)
    return {"database": entry.database, "tables": tables}


def _read_yaml_source(path_or_text: str | Path) -> tuple[str, str | None]:
    if isinstance(path_or_text, Path):
        return spec_yaml.read_spec_file(path_or_text), str(path_or_text)
    looks_like_path = "\n" not in path_or_text and path_or_text.endswith((".yaml", ".yml"))
    if looks_like_path:
        path = Path(path_or_text)
        if not path.exists():
            raise SpecError([SpecProblem("", f"spec file {path_or_text} does not exist")], path_or_text)
        return spec_yaml.read_spec_file(path), path_or_text
    return path_or_text, None


def _did_you_mean(value: str, candidates: Iterable[str]) -> str:
    candidates = list(candidates)
    matches = difflib.get_close_matches(value, candidates, n=1, cutoff=0.6)
    if not matches:
        matches = [candidate for candidate in candidates if candidate.lower() == value.lower()]
    return f"; did you mean {matches[0]!r}?" if matches else ""


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _range_text(minimum: float, maximum: float) -> str:
    kind = "a positive integer" if minimum >= 1 else "an integer"
    return f"must be {kind} from {_number_text(minimum)} to {_number_text(maximum)}"


def _number_text(value: float) -> str:
    """1440, 10,000, 0.1, 1e-300: thousands separated from 10,000 on; huge integers summarised."""
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() and abs(value) < 1e15 else repr(value)
    if value.bit_length() > 50:
        return f"a {int(value.bit_length() * 0.30103) + 1}-digit number"
    return f"{value:,}" if abs(value) >= 10_000 else str(value)


# Bounded: a value may be a huge (or deeply nested, or alias-shared) structure.
_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 40


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    text = _REPR.repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _sample(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _short(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:37] + "...")


__all__ = [
    "BatchRename", "DestinationSpec", "FullLoadSpec", "FullThrottle", "HeartbeatSpec", "IncrementalThrottle",
    "MergeSpec", "MigrationSpec", "ObjectSpec", "RetrySpec", "SourceSpec", "TableSelection", "TableSpec",
    "ThrottleSpec", "filter_problem", "replica_pattern_problem",
]
