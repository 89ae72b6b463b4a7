"""The schema plan: what one source table becomes in MaxCompute (columns, types, names, ``_base`` and
``_log`` DDL), as pure rules over a described table and the spec.

Shared by the schema migration (``destination/schema``), the full load, the precheck and the binlog
reader (a table whose schema changed mid-interval is planned again), so it sits below the stages.
``<name>_base`` holds the mapped source columns; ``<name>_log`` holds DTS's additional columns, then
the mapped source columns, partitioned per the spec's partition definition. Column comments carry the
source type; the table comment marks the table as ours (migration and source table).
"""

from __future__ import annotations

from airflow_provider_polar_mc.core.model import (
    ColumnPlan,
    DestColumn,
    SourceColumn,
    SourceTable,
    TableDDL,
    TablePlan,
)
from airflow_provider_polar_mc.core.typemap import MappingOptions, SourceColumnType, map_type
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

