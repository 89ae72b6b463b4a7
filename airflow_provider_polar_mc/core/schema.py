"""Schema migration: the MaxCompute tables a source table becomes, and creating them.

``<name>_base`` holds the mapped source columns; ``<name>_log`` holds DTS's additional columns, then
the mapped source columns, partitioned per the spec's partition definition. Column comments carry
the source type; the table comment marks the table as ours (migration and source table), which is how
a re-run tells its own table from a conflicting one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pymysql

from airflow_provider_polar_mc.exceptions import PolarMcError
from airflow_provider_polar_mc.spec import MigrationSpec, TableSelection

from .catalog import SourceColumn, SourceTable, describe_selected, list_tables
from .maxcompute import DestColumn, MaxComputeDestination, TableDDL
from .typemap import MappedType, MappingOptions, SourceColumnType, map_type

OWNER_MARK = "polar-mc"


class SchemaConflict(PolarMcError):
    """A destination table exists with a schema that the migration cannot write into.

    Retrying cannot help: drop or rename the destination table, map the source table to another name
    (``target`` / ``batch_rename``), or make the existing table's columns match.
    """


def source_column_type(column: SourceColumn) -> SourceColumnType:
    return SourceColumnType(
        data_type=column.data_type,
        column_type=column.column_type,
        numeric_precision=column.numeric_precision,
        numeric_scale=column.numeric_scale,
        datetime_precision=column.datetime_precision,
        character_set_name=column.character_set,
    )


@dataclass(frozen=True)
class ColumnPlan:
    source: SourceColumn
    destination: str
    mapped: MappedType


@dataclass(frozen=True)
class TablePlan:
    """What one source table becomes in MaxCompute."""

    selection: TableSelection
    source: SourceTable
    columns: tuple[ColumnPlan, ...]
    base: TableDDL
    log: TableDDL | None

    @property
    def ddls(self) -> tuple[TableDDL, ...]:
        return (self.base,) if self.log is None else (self.base, self.log)


def table_comment(spec: MigrationSpec, selection: TableSelection, role: str) -> str:
    return f"{OWNER_MARK} {spec.name}: {role} of {selection.source_name}"


def mapping_options(spec: MigrationSpec) -> MappingOptions:
    return MappingOptions(json_type=spec.json_type, datetime_type=spec.datetime_type)


def plan_table(spec: MigrationSpec, selection: TableSelection, source: SourceTable) -> TablePlan:
    """Map a described source table; raises ``UnsupportedType`` for a column with no mapping."""
    options = mapping_options(spec)
    columns = tuple(
        ColumnPlan(c, selection.destination_column(c.name), map_type(source_column_type(c), options))
        for c in source.columns
    )
    data_columns = tuple(DestColumn(selection.spell(c.destination), c.mapped.mc_type.lower(), c.mapped.comment) for c in columns)
    base = TableDDL(
        name=selection.spell(selection.base_table),
        columns=data_columns,
        comment=table_comment(spec, selection, "full baseline"),
    )
    log = None
    if "incremental" in spec.migration_types:
        extra = tuple(DestColumn(selection.spell(a.name), a.mc_type.lower(), a.meaning) for a in spec.additional_columns())
        parts = tuple(DestColumn(selection.spell(p), "string", "") for p in spec.partition_columns())
        log = TableDDL(
            name=selection.spell(selection.log_table),
            columns=extra + data_columns,
            partition_columns=parts,
            comment=table_comment(spec, selection, "incremental log"),
        )
    return TablePlan(selection, source, columns, base, log)


def _normalised(ddl: TableDDL) -> tuple:
    def cols(items: Iterable[DestColumn]) -> tuple:
        return tuple((c.name.lower(), c.type.lower().replace(" ", "")) for c in items)

    return cols(ddl.columns), cols(ddl.partition_columns)


def compare(planned: TableDDL, existing: TableDDL) -> list[str]:
    """Differences that stop the migration from writing ``planned`` rows into ``existing``."""
    problems: list[str] = []
    want_cols, want_parts = _normalised(planned)
    have_cols, have_parts = _normalised(existing)
    have = dict(have_cols)
    for name, typ in want_cols:
        if name not in have:
            problems.append(f"column {name} ({typ}) is missing")
        elif have[name] != typ:
            problems.append(f"column {name} is {have[name]}, expected {typ}")
    if want_parts != have_parts:
        problems.append(
            f"partition columns are {[n for n, _ in have_parts] or 'none'}, expected {[n for n, _ in want_parts] or 'none'}"
        )
    return problems


def is_ours(spec: MigrationSpec, selection: TableSelection, existing: TableDDL) -> bool:
    return existing.comment.startswith(f"{OWNER_MARK} {spec.name}:") and selection.source_name in existing.comment


@dataclass(frozen=True)
class TableOutcome:
    table: str
    action: str  # created | exists | kept_existing
    detail: str = ""


def apply_plan(spec: MigrationSpec, plan: TablePlan, destination: MaxComputeDestination) -> list[TableOutcome]:
    """Create the plan's tables; idempotent. An existing table is kept when it is ours with the
    planned schema, or (``ignore_and_proceed``) when it can take every planned column; else
    :class:`SchemaConflict`."""
    outcomes: list[TableOutcome] = []
    for ddl in plan.ddls:
        existing = destination.describe(ddl.name)
        if existing is None:
            destination.create_table(ddl, if_not_exists=True)
            outcomes.append(TableOutcome(ddl.name.lower(), "created"))
            continue
        problems = compare(ddl, existing)
        if is_ours(spec, plan.selection, existing) and not problems:
            outcomes.append(TableOutcome(ddl.name.lower(), "exists", "created by an earlier run"))
        elif spec.conflict_mode == "ignore_and_proceed" and not problems:
            outcomes.append(TableOutcome(ddl.name.lower(), "kept_existing", "conflict_mode: ignore_and_proceed"))
        else:
            reason = "; ".join(problems) if problems else "it was not created by this migration"
            raise SchemaConflict(
                f"destination table {ddl.name.lower()} (for {plan.selection.source_name}) already exists and "
                f"{'cannot take the migrated rows: ' + reason if problems else reason}. Fix: drop or rename it, "
                "map the source table elsewhere (objects[].tables[].target or batch_rename)"
                + ("" if problems else ", or set conflict_mode: ignore_and_proceed to write into it")
            )
    return outcomes


def plan_migration(spec: MigrationSpec, conn: pymysql.Connection) -> list[TablePlan]:
    """Plans of every selected table, read from the source catalog (raises SpecError for missing
    objects and UnsupportedType for unmappable columns: the precheck reports both first)."""
    source_tables = {db: list_tables(conn, db) for db in spec.source.databases}
    selections = spec.select_tables(source_tables)
    described = describe_selected(conn, [(s.source_database, s.source_table) for s in selections])
    return [plan_table(spec, s, described[s.source_name]) for s in selections]


def migrate_schema(
    spec: MigrationSpec,
    plans: Iterable[TablePlan],
    destination: MaxComputeDestination,
    log: Callable[[str], None] = lambda message: None,
) -> list[TableOutcome]:
    outcomes: list[TableOutcome] = []
    for plan in plans:
        for outcome in apply_plan(spec, plan, destination):
            log(f"{plan.selection.source_name} -> {outcome.table}: {outcome.action} {outcome.detail}".rstrip())
            outcomes.append(outcome)
    return outcomes
