"""The schema plan: what one source table becomes in MaxCompute (columns, types, names, ``_base`` and
``_log`` DDL), as pure rules over a described table and the spec.

Shared by the schema migration (``destination/schema``), the full load, the precheck and the binlog
reader (a table whose schema changed mid-interval is planned again), so it sits below the stages.
``<name>_base`` holds the mapped source columns; ``<name>_log`` holds DTS's additional columns, then
the mapped source columns, partitioned per the spec's partition definition. Column comments carry the
source type; the table comment marks the table as ours (migration and source table).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from airflow_provider_polar_mc.core.model import (
    ColumnPlan,
    DestColumn,
    SourceColumn,
    SourceTable,
    SqlDestination,
    TableDDL,
    TablePlan,
)
from airflow_provider_polar_mc.core.typemap import (
    MappingOptions,
    SourceColumnType,
    holds,
    map_type,
    widens_in_place,
)
from airflow_provider_polar_mc.spec import MigrationSpec, TableSelection

OWNER_MARK = "polar-mc"


def source_column_type(column: SourceColumn) -> SourceColumnType:
    """What the type mapping needs of a catalog column (its type, precision and character set)."""
    return SourceColumnType(
        data_type=column.data_type, column_type=column.column_type, numeric_precision=column.numeric_precision,
        numeric_scale=column.numeric_scale, datetime_precision=column.datetime_precision,
        character_set_name=column.character_set,
    )


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


# --- an existing table taking a newer schema ------------------------------------------------------


@dataclass(frozen=True)
class EvolvedColumns:
    """What :func:`evolve_columns` did to one table: columns added, widened (``c: int -> bigint``), and
    those it could not change (their type neither holds the new one nor widens to it in place)."""

    added: tuple[str, ...] = ()
    widened: tuple[str, ...] = ()
    refused: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.widened)


def evolve_columns(destination: SqlDestination, table: str, columns: Iterable[DestColumn]) -> EvolvedColumns:
    """Make existing ``table`` take ``columns``: a missing one is added (older rows NULL), a narrower one
    widened in place (MaxCompute's CHANGE COLUMN), a wider or equal one kept (it holds every new value).
    Idempotent, so a retried batch or merge runs it again safely. The one place the batch, the merge and
    the resync change a table's columns."""
    existing = destination.describe(table)
    if existing is None:
        raise LookupError(f"destination table {table} does not exist: run the schema migration first")
    have = {c.name.lower(): c.type for c in (*existing.columns, *existing.partition_columns)}
    missing: list[DestColumn] = []
    widened: list[str] = []
    refused: list[str] = []
    for column in columns:
        old = have.get(column.name.lower())
        if old is None:
            missing.append(DestColumn(column.name, column.type, column.comment))
        elif holds(old, column.type):
            continue
        elif widens_in_place(old, column.type):
            destination.widen_column(table, column.name, column.type)
            widened.append(f"{column.name}: {old} -> {column.type}")
        else:
            refused.append(f"column {column.name} is {old}, the new schema needs {column.type}")
    if missing:
        destination.add_columns(table, missing)
    return EvolvedColumns(tuple(c.name for c in missing), tuple(widened), tuple(refused))
