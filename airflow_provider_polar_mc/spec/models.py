"""The migration spec as frozen pydantic models: every option of a DTS migration task.

Build it with :meth:`MigrationSpec.from_yaml` (a path or YAML text) or :meth:`MigrationSpec.from_dict`.
Pydantic checks the whole document in one pass; :mod:`.errors` turns its ``ValidationError`` into ONE
:class:`~airflow_provider_polar_mc.exceptions.SpecError` listing every problem with its field path
(``objects[3].filter: ...``); unknown keys are errors with a "did you mean". ``to_dict()`` gives back a
plain document (defaults filled in) that ``from_dict`` accepts unchanged.

Conventions of every model: a key whose value is empty (``project:`` with nothing after it, YAML's
null) means its default; numbers are strict (``true`` or ``"5"`` is not a number). Fields are declared
in the order their problems are reported. Checks against an earlier field (an ``objects[]`` database
must be in ``source.databases``; the heartbeat needs incremental migration) are field validators reading
it, so they are reported with every other problem; checks within one section are model validators.

docs/spec.md is the reference of every option; the field docstrings become the JSON Schema's
descriptions (``polar-mc spec-schema``). This module imports nothing from Airflow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import annotated_types
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    field_serializer,
    field_validator,
    model_validator,
)

from airflow_provider_polar_mc import spec_yaml
from airflow_provider_polar_mc.core import naming
from airflow_provider_polar_mc.core.selection import did_you_mean
from airflow_provider_polar_mc.exceptions import SpecError, SpecProblem
from airflow_provider_polar_mc.spec import fields as f
from airflow_provider_polar_mc.spec.errors import Says, describe, fail, problems_from

if TYPE_CHECKING:
    from airflow_provider_polar_mc.core.selection import TableSelection


class _Section(BaseModel):
    """Frozen, no unknown keys, empty values mean the default."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    @model_validator(mode="before")
    @classmethod
    def _empty_means_default(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            return {key: value for key, value in data.items() if value is not None}
        return data

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot assign {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")


class SourceSpec(_Section):
    """Where to read: an Airflow connection to PolarDB for MySQL / MySQL 8 / MariaDB."""

    conn_id: f.NonEmpty = "polardb_default"
    """Airflow connection to PolarDB for MySQL / MySQL 8 / MariaDB."""
    databases: f.unique_list(f.DatabaseName, min_items=True, says=Says(missing=" (a list with at least one entry)"))
    """Source databases (at least one)."""


class DestinationSpec(_Section):
    """Where to write: a ``maxcompute`` Airflow connection."""

    conn_id: f.NonEmpty = "maxcompute_default"
    """Airflow ``maxcompute`` connection."""
    project: f.NonEmpty | None = None
    """MaxCompute project to write to; empty: the connection's."""


def _table_shorthand(value: Any) -> Any:
    if isinstance(value, str):
        return {"name": value}
    if not isinstance(value, Mapping):
        raise fail(f"must be a table name or a mapping with name, got {describe(value)}")
    return value


class TableSpec(_Section):
    """One explicitly listed table; a plain string is short for ``{name: <string>}``."""

    name: f.TableName
    """Source table name."""
    target: f.TargetTableName | None = None
    """Destination name in MaxCompute (batch_rename is then not applied)."""
    filter: f.Filter | None = None
    """SQL WHERE expression applied to the full load and to incremental changes."""
    columns: f.ColumnMap = Field(default={}, validate_default=True)  # read-only once validated
    """Column renames, source -> destination."""


TableEntry = Annotated[TableSpec, BeforeValidator(_table_shorthand, json_schema_input_type=f.TableName | TableSpec)]


class AllTables(tuple):
    """``tables: all``: no listed table, every table of the database (narrowed by include/exclude)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'all'"


ALL_TABLES = AllTables()


def _all_or_listed(value: Any, listed: Any) -> Any:
    if value == "all" or isinstance(value, AllTables):
        return ALL_TABLES
    if not isinstance(value, (list, tuple)):
        raise fail(f"must be `all` or a list of tables, got {describe(value)}")
    if not value:
        raise fail("must list at least one table (or be `all`)")
    return listed(value)


class ObjectSpec(_Section):
    """One database's selection: every table (``tables: all``, narrowed by fnmatch ``include`` and
    ``exclude`` patterns, matched case-insensitively) or the listed tables."""

    database: f.NonEmpty
    """A database of source.databases."""
    tables: Annotated[
        tuple[TableEntry, ...],
        WrapValidator(_all_or_listed, json_schema_input_type=Literal["all"] | Annotated[list[TableEntry],
                                                                                         Field(min_length=1)]),
        Says(missing=": `all` or a list of tables"),
    ]
    """`all`, or the tables to migrate (a name, or a mapping with name, target, filter, columns)."""
    # Built: the listed TableSpecs, or ALL_TABLES (empty, so iterating listed tables needs no check).
    include: f.TablePatterns = ()
    """With `tables: all`: only tables matching one of these fnmatch patterns (default: all)."""
    exclude: f.TablePatterns = ()
    """With `tables: all`: no table matching one of these fnmatch patterns."""

    @property
    def all_tables(self) -> bool:
        return isinstance(self.tables, AllTables)

    @model_validator(mode="after")
    def _patterns_need_all(self) -> ObjectSpec:
        if not self.all_tables:
            misplaced = [((key,), "is only allowed with `tables: all`") for key in ("include", "exclude")
                         if getattr(self, key)]
            if misplaced:
                raise fail(*misplaced)
        return self

    @field_serializer("tables")
    def _tables_as_written(self, tables: tuple[TableSpec, ...]) -> Any:
        return "all" if isinstance(tables, AllTables) else [table.model_dump(mode="json") for table in tables]


class BatchRename(_Section):
    """Added around the name of every table without an explicit ``target``."""

    prefix: f.Prefix = ""
    """Added before every table name without an explicit target (starts with a letter)."""
    suffix: f.Suffix = ""
    """Added after every table name without an explicit target."""


class FullThrottle(_Section):
    """Rate limits of the full load; empty means unlimited."""

    source_qps: int | None = f.bounded(None, 1, 100_000)
    """Queries per second the full load sends to the source."""
    rows_per_s: int | None = f.bounded(None, 1, 100_000_000)
    """Rows per second of the full load."""
    mb_per_s: float | None = f.bounded(None, 0.1, 10_000)
    """MB per second of the full load (below 0.1 a chunk would wait for minutes)."""


class IncrementalThrottle(_Section):
    """Rate limits of the incremental load; empty means unlimited."""

    rows_per_s: int | None = f.bounded(None, 1, 100_000_000)
    """Rows per second written by the incremental load (block by block, so it holds on average)."""
    mb_per_s: float | None = f.bounded(None, 0.1, 10_000)
    """MB per second written by the incremental load."""


class ThrottleSpec(_Section):
    """Rate limits; empty means unlimited."""

    full: FullThrottle = FullThrottle()
    """Rate limits of the full load."""
    incremental: IncrementalThrottle = IncrementalThrottle()
    """Rate limits of the incremental load."""


class RetrySpec(_Section):
    """How long to keep retrying: ``connection_minutes`` after losing a connection to the source or
    the destination, ``other_minutes`` after other retryable errors (MaxCompute's 5xx answers); then
    the task fails with ``RetryWindowSpent`` (core/retry.py)."""

    connection_minutes: int = f.bounded(720, 10, 1440)
    """How long to keep retrying after losing a connection, in minutes."""
    other_minutes: int = f.bounded(10, 1, 1440)
    """How long to keep retrying other retryable errors, in minutes (less than connection_minutes)."""

    @model_validator(mode="after")
    def _other_below_connection(self) -> RetrySpec:
        if self.other_minutes >= self.connection_minutes:
            raise fail((("other_minutes",), f"must be less than retry.connection_minutes ({self.connection_minutes}), "
                                            f"got {self.other_minutes}"))
        return self


class HeartbeatSpec(_Section):
    """A source table written every ``interval_seconds`` so the binlog position advances even when no
    selected table changes."""

    enabled: bool = Field(False, strict=True)
    """The binlog sensor writes a heartbeat row to the source. Needs incremental migration."""
    table: f.MySqlIdentifier = "polar_mc_heartbeat"
    """Heartbeat table (MySQL identifier)."""
    database: f.HeartbeatDatabase | None = None
    """Database holding the heartbeat table; empty: the first of source.databases."""
    interval_seconds: int = f.bounded(60, 1, 3600)
    """Seconds between heartbeat writes."""


_CLASSPATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def _classpath(value: str) -> str:
    if len(value) > 300 or not _CLASSPATH.fullmatch(value):
        raise ValueError(
            f"{value[:80]!r} is not an import path of a class (package.module.Class), e.g. "
            "airflow.providers.smtp.notifications.smtp.SmtpNotifier"
        )
    return value


def _json_value(value: Any) -> Any:
    """Notifier arguments travel in the spec document (trigger arguments, XCom): JSON values only."""
    import json

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"must hold JSON values only (strings, numbers, booleans, lists, mappings): {exc}; quote dates and times"
        ) from None
    return value


class NotifierSpec(_Section):
    """One Airflow notifier: a ``BaseNotifier`` subclass and its keyword arguments (templated by the
    notifier with the task's context plus ``polar_mc_alert``). Name connections here, not secrets."""

    classpath: Annotated[str, AfterValidator(_classpath)]
    """Import path of the notifier class, e.g. `airflow.providers.smtp.notifications.smtp.SmtpNotifier`."""
    arguments: Annotated[dict[str, Any], BeforeValidator(_json_value)] = Field(default_factory=dict)
    """Keyword arguments of the notifier class (for SmtpNotifier: to, from_email, subject, smtp_conn_id, ...)."""


class AlertsSpec(_Section):
    """Who hears about trouble, as DTS's monitoring and alerting: the notifiers are sent a latency alert
    (``latency_alert_seconds``) and, with ``on_failure``, every failed task of the migration's DAGs."""

    notifiers: tuple[NotifierSpec, ...] = ()
    """Airflow notifiers (any `BaseNotifier` subclass: SMTP, Slack, ... providers' or your own)."""
    on_failure: bool = Field(True, strict=True)
    """Also notify when a task of the migration's DAGs fails (its last try)."""


class IncrementalSpec(_Section):
    """How incremental batches are scheduled: one Airflow run (and one ``_log`` partition) per
    partition unit, from ``start_date`` (UTC, ISO 8601); each run waits until the source's clock has
    passed the interval's end by ``settle_seconds`` before it captures the end coordinate."""

    start_date: f.StartDate | None = None
    """ISO 8601 (UTC if no zone, from 2000-01-01): one run per _log partition unit from that date. Empty:
    the first run is the latest closed interval when the DAG is deployed."""
    settle_seconds: int = f.bounded(30, 0, 3600)
    """How long after an interval's end (source clock) its end coordinate is captured."""
    poll_seconds: int = f.bounded(10, 1, 600)
    """Poll interval of the binlog sensor/trigger."""
    block_rows: int = f.bounded(50_000, 1000, 1_000_000)
    """Rows per Tunnel block and per decoded chunk when writing a _log partition; a batch's memory grows
    with it, not with the interval."""


class FullLoadSpec(_Section):
    """How the full load reads: primary-key range chunks, several at once per table."""

    chunk_rows: int = f.bounded(50_000, 1, 10_000_000)
    """Rows per primary-key range chunk, one Tunnel block each."""
    parallelism: int = f.bounded(2, 1, 64)
    """Chunks read and uploaded at once per table."""
    shard_rows: int = f.bounded(10_000_000, 1000, 1_000_000_000_000)
    """A table estimated above this many rows is loaded by several mapped tasks (key-range shards of
    about this many rows each, one Tunnel session committed once by a final task); smaller tables stay
    grouped."""


class MergeSpec(_Section):
    """The replica built in MaxCompute from ``_base`` and ``_log`` (runs only with incremental
    migration)."""

    enabled: bool = Field(True, strict=True)
    """Build the replica from _base + _log in MaxCompute SQL (only with incremental)."""
    replica_name: f.ReplicaPattern = naming.DEFAULT_REPLICA_PATTERN
    """Replica name pattern; must contain {table} (the mapped name), may contain {database}."""
    mode: f.MergeMode = "incremental"
    """`incremental`: each merge reads the replica's previous state and the new _log partition(s) only;
    `full`: rebuild from _base and every _log partition (for repair)."""
    snapshots: f.SnapshotUnit = "day"
    """`day` / `hour`: keep the replica as of the end of each day (hour, UTC) as a `ds` partition of
    <replica>_snapshot; `none`: no snapshots."""
    snapshot_lifecycle_days: int = f.bounded(7, 1, 36_500)
    """Lifecycle (days) of the snapshot table: MaxCompute drops partitions not modified for that long."""


class SchemaChangesSpec(_Section):
    """What an incremental batch does with each kind of DDL on a migrated table (docs/spec.md,
    "Schema changes"): `follow` it, `resync` the table (stop it there and load its _base again at a new
    coordinate, core/resync.py, while the other tables go on), or `fail` the batch naming the statement."""

    add_column: f.ChangePolicy = "follow"
    """ADD COLUMN: `follow` adds the column to _base and _log (older rows NULL) and the merge gives
    existing rows the DDL's value (a constant DEFAULT, NOT NULL's implicit default); `fail`."""
    drop_column: f.ChangePolicy = "follow"
    """DROP COLUMN: `follow` keeps the MaxCompute column (rows changed later carry NULL there, older replica
    rows keep their last value); `fail`."""
    modify_column: f.ChangePolicy = "follow"
    """MODIFY / CHANGE COLUMN with a new definition: `follow` when it keeps every existing value and the
    MaxCompute type (a longer VARCHAR, VARCHAR -> TEXT, more fractional digits, ENUM/SET members appended,
    NOT NULL -> NULL); anything else fails the batch naming why; `fail`: fail on every one."""
    rename_column: f.ChangePolicy = "follow"
    """RENAME COLUMN (or CHANGE with a new name and the same definition): `follow` keeps the column's
    MaxCompute name, so old and new events land in one column; `fail`."""
    drop_table: f.ChangePolicy = "follow"
    """DROP TABLE: `follow` stops that table (its replica keeps its last state, the other tables go on, the
    batch reports it); `fail`."""
    rename_table: f.ChangePolicy = "follow"
    """RENAME TABLE to a name outside the migration: `follow` stops that table like DROP TABLE; `fail`.
    (Another table renamed onto a migrated table's name always fails: its rows were never read.)"""
    create_table: f.CreateTablePolicy = "follow"
    """CREATE TABLE of a new table the spec selects (`tables: all`, an include pattern): `follow` creates its
    _base (empty) and _log and migrates it from its first event (CREATE ... SELECT / LIKE, or without a
    primary key: not followed, logged; re-run the setup for it); `fail`."""
    truncate: f.ChangePolicy = "follow"
    """TRUNCATE TABLE: `follow` empties the replica from that change on (_base and _log keep their rows);
    `fail`."""
    unfollowable: f.UnfollowablePolicy = "resync"
    """A change on a migrated table that no row event lets the batch follow (a narrowing MODIFY, a type
    change MaxCompute cannot take, a primary-key change, ADD COLUMN whose value only the server knows
    such as AUTO_INCREMENT or a non-constant DEFAULT, a statement the parser does not understand):
    `resync` stops that table at the change and records a resync request (the incremental DAG starts
    it; the other tables go on); `fail` fails the batch naming the statement."""


def _not_listed_twice(objects: tuple[ObjectSpec, ...]) -> list[tuple[tuple[Any, ...], str]]:
    problems: list[tuple[tuple[Any, ...], str]] = []
    databases: dict[str, int] = {}
    for index, entry in enumerate(objects):
        if entry.database in databases:
            problems.append(((index, "database"), f"{entry.database!r} is already listed in "
                                                  f"objects[{databases[entry.database]}]; list each database once"))
        databases.setdefault(entry.database, index)
        tables: dict[str, int] = {}
        for table_index, table in enumerate(entry.tables):
            if table.name in tables:
                problems.append(((index, "tables", table_index),
                                 f"table {table.name!r} is already listed at objects[{index}].tables[{tables[table.name]}]"))
            tables.setdefault(table.name, table_index)
    return problems


# What a run of the setup DAG may choose in its trigger form instead of the spec (dag_factory's Params).
RUN_OVERRIDABLE = ("conflict_mode", "accepted_warnings")


class MigrationSpec(_Section):
    """A polar-mc migration: PolarDB for MySQL / MySQL 8 / MariaDB into MaxCompute (docs/spec.md).

    Built only through ``from_dict`` / ``from_yaml`` (which validate), never half-valid.
    ``migration_types`` is any non-empty combination of ``schema``, ``full`` and ``incremental`` (DTS
    accepts each of the seven). Consequences the operators and the precheck rely on:

    * without ``schema`` the destination tables must already exist under their mapped names
      (``destination_tables_must_exist``; ``existing_tables_required`` lists them per table);
    * without ``full`` the incremental migration starts at the coordinate captured when the migration
      first runs (``incremental_start == "first_run"``), so the replica holds only what ``_base``
      already had plus later changes; with ``full`` it starts at the full load's snapshot coordinate;
    * the merge runs only when ``incremental`` is selected (``merge_active``).
    """

    model_config = ConfigDict(title="polar-mc migration spec")

    name: f.MigrationName
    """Migration id, 1-64 characters of a-z, 0-9, _. Namespaces checkpoints: changing it starts over."""
    source: Annotated[SourceSpec, Says(missing=" (conn_id and databases)")]
    """The source: an Airflow connection and its databases to migrate."""
    destination: DestinationSpec = DestinationSpec()
    """The destination: a maxcompute Airflow connection and the project."""
    migration_types: f.MigrationTypes = ("schema", "full", "incremental")
    """Any non-empty combination of schema, full, incremental."""
    objects: f.non_empty_list(ObjectSpec, "must list at least one database (or be left out to migrate them all)",
                              default=None) = ()
    """What to migrate, one entry per database; default: every table of every source database."""
    batch_rename: BatchRename = BatchRename()
    """Prefix and suffix added to every table name without an explicit target."""
    merge: MergeSpec = MergeSpec()
    """The replica built from _base + _log in MaxCompute SQL."""
    schema_changes: SchemaChangesSpec = SchemaChangesSpec()
    """What incremental batches do with each kind of DDL on migrated tables."""
    retry: RetrySpec = RetrySpec()
    """How long to keep retrying after errors."""
    heartbeat: HeartbeatSpec = HeartbeatSpec()
    """A heartbeat row written to the source so the binlog position advances when nothing changes."""
    additional_column_rule: naming.AdditionalColumnRule = "previous"
    """Names of DTS's _log columns: `previous` = record_id, operation_flag, ...; `new` = the same prefixed
    with new_dts_sync_."""
    partition: f.Partition = f.DEFAULT_PARTITION
    """Partition columns of <table>_log: a non-empty prefix of [year, month, day, hour, minute]."""
    conflict_mode: f.ConflictMode = "precheck_and_report"
    """`precheck_and_report`: the precheck fails when destination tables already exist; `ignore_and_proceed`:
    skip that check."""
    capitalization: naming.Capitalization = "default"
    """Spelling of object names in generated DDL (MaxCompute stores lower case whatever is chosen)."""
    throttle: ThrottleSpec = ThrottleSpec()
    """Rate limits of the full and the incremental load; unlimited by default."""
    latency_alert_seconds: int | None = f.bounded(None, 1, 604_800)
    """Log a LATENCY ALERT, and send it to `alerts.notifiers`, when an interval reaches MaxCompute more than
    this many seconds after it closed (re-runs and backfills of older intervals excepted)."""
    alerts: AlertsSpec = AlertsSpec()
    """Notifiers for latency alerts and task failures."""
    environment_tag: f.EnvironmentTag | None = None
    """A label (dev, prod, team-a:prod) added to logs, alerts and DAG tags."""
    json_type: f.JsonType = "string"
    """`string`: JSON columns become STRING holding the JSON text; `json`: MaxCompute JSON type."""
    datetime_type: f.DatetimeType = "timestamp_ntz"
    """`timestamp_ntz`: DATETIME becomes TIMESTAMP_NTZ (microseconds); `datetime`: MaxCompute DATETIME like DTS
    (milliseconds)."""
    full_load: FullLoadSpec = FullLoadSpec()
    """How the full load reads: chunk size and parallelism."""
    incremental: IncrementalSpec = IncrementalSpec()
    """How incremental runs are scheduled and written."""
    accepted_warnings: f.unique_list(f.CheckId) = ()
    """Precheck check ids whose warnings you accept (the precheck then passes with them)."""

    # -- validation across fields --

    @model_validator(mode="before")
    @classmethod
    def _default_objects(cls, data: Any) -> Any:
        """Without ``objects``: every table of every source database (as far as they are readable)."""
        if not isinstance(data, Mapping) or data.get("objects") is not None:
            return data
        source = data.get("source")
        databases = source.get("databases") if isinstance(source, Mapping) else None
        if not isinstance(databases, list):
            return data
        named = dict.fromkeys(db for db in databases if isinstance(db, str) and db.strip())
        if not named:  # source.databases is reported; an empty objects list would be reported too
            return data
        return {**data, "objects": [{"database": database, "tables": "all"} for database in named]}

    @field_validator("objects")
    @classmethod
    def _objects_name_source_databases(cls, objects: tuple[ObjectSpec, ...], info: ValidationInfo) -> Any:
        problems = _not_listed_twice(objects)
        source = info.data.get("source")  # absent when source itself is invalid
        databases = source.databases if source is not None else ()
        for index, entry in enumerate(objects):
            if databases and entry.database not in databases:
                problems.append(((index, "database"),
                                 f"{entry.database!r} is not in source.databases{did_you_mean(entry.database, databases)}"))
        if problems:
            raise fail(*problems)
        return objects

    @field_validator("heartbeat")
    @classmethod
    def _heartbeat_needs_incremental(cls, heartbeat: HeartbeatSpec, info: ValidationInfo) -> HeartbeatSpec:
        types = info.data.get("migration_types")
        if heartbeat.enabled and types is not None and "incremental" not in types:
            raise fail((("enabled",), "the heartbeat only serves incremental migration; add incremental to "
                                      "migration_types or disable it"))
        return heartbeat

    # -- building --

    @classmethod
    def from_dict(cls, document: Any, source: str | None = None) -> MigrationSpec:
        """Validate ``document`` (parsed YAML/JSON) and build the spec, or raise one ``SpecError``."""
        try:
            return cls.model_validate(document)
        except ValidationError as error:
            raise SpecError(problems_from(error, cls), source) from None

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
        """The spec as a plain JSON-safe document, every default explicit; ``from_dict`` round-trips it."""
        return self.model_dump(mode="json")

    def with_run_overrides(self, overrides: Mapping[str, Any] | None) -> MigrationSpec:
        """The spec with one run's choices from the setup DAG's trigger form (:data:`RUN_OVERRIDABLE`;
        None or an empty string keeps the spec's, an empty list is a choice), checked like the spec."""
        chosen = {k: v for k, v in (overrides or {}).items() if v not in (None, "")}
        unknown = sorted(set(chosen) - set(RUN_OVERRIDABLE))
        if unknown:
            raise SpecError([SpecProblem(k, f"cannot be chosen per run (only {', '.join(RUN_OVERRIDABLE)})") for k in unknown])
        if not chosen:
            return self
        return MigrationSpec.from_dict({**self.to_dict(), **chosen})

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

    def naming_findings(self, selections: Iterable[TableSelection]) -> list[naming.NamingFinding]:
        """Table-level naming findings (invalid names, collisions) for the selected tables."""
        return naming.find_table_findings(selections)


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


def _numeric_ranges(model: type[BaseModel], prefix: str = "") -> dict[str, tuple[float, float]]:
    """Every bounded number of ``model`` and its sections: dotted path -> (minimum, maximum)."""
    ranges: dict[str, tuple[float, float]] = {}
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            ranges.update(_numeric_ranges(field.annotation, f"{path}."))
            continue
        low = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
        high = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
        if low is not None and high is not None:
            ranges[path] = (low, high)
    return ranges


# Numeric options: (minimum, maximum), inclusive, from the declarations above; docs/spec.md lists them.
RANGES: dict[str, tuple[float, float]] = _numeric_ranges(MigrationSpec)


__all__ = [
    "ALL_TABLES", "RANGES", "AllTables", "BatchRename", "DestinationSpec", "FullLoadSpec", "FullThrottle",
    "HeartbeatSpec", "IncrementalSpec", "IncrementalThrottle", "MergeSpec", "MigrationSpec", "ObjectSpec",
    "RetrySpec", "SourceSpec", "TableSpec", "ThrottleSpec",
]
