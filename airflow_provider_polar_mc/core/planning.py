"""Planning from the live source: the source catalog (``source/``) read through the schema plan
(:mod:`~airflow_provider_polar_mc.core.schema_plan`) and into the binlog's schema history.

An orchestrator: it combines the source stage with the shared plan and the binlog stage, which the
stages themselves may not import from one another (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import pymysql

from airflow_provider_polar_mc.core.binlog.schema_history import TableSchema
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.model import TablePlan
from airflow_provider_polar_mc.core.retry import RetryPolicy
from airflow_provider_polar_mc.core.schema_plan import plan_table
from airflow_provider_polar_mc.core.selection import select_tables
from airflow_provider_polar_mc.core.source.catalog import (
    column_collations,
    describe_selected,
    describe_tables,
    list_tables,
)
from airflow_provider_polar_mc.exceptions import ConfigError
from airflow_provider_polar_mc.spec import MigrationSpec


def plan_migration(spec: MigrationSpec, conn: pymysql.Connection) -> list[TablePlan]:
    """Plans of every selected table, read from the source catalog (raises SpecError for missing
    objects and UnsupportedType for unmappable columns: the precheck reports both first)."""
    source_tables = {db: list_tables(conn, db) for db in spec.source.databases}
    selections = select_tables(spec, source_tables)
    described = describe_selected(conn, [(s.source_database, s.source_table) for s in selections])
    return [plan_table(spec, s, described[s.source_name]) for s in selections]


def plan_selected(
    spec: MigrationSpec,
    endpoint: MySqlEndpoint,
    *,
    tables: Collection[str] | None = None,
    retry: RetryPolicy | None = None,
    log: Callable[[str], None] | None = None,
) -> list[TablePlan]:
    """Plans of the selected tables (only those in ``tables``, see :func:`only_tables`), read in one
    source session opened within ``retry``'s window."""
    with endpoint.session(retry, log=log) as conn:
        return only_tables(spec, plan_migration(spec, conn), tables)


def only_tables(spec: MigrationSpec, plans: list[TablePlan], tables: Collection[str] | None) -> list[TablePlan]:
    """``plans`` of the tables named ``db.table`` in ``tables`` (all when None); a ConfigError names any
    the spec does not select, so a typo does not pass as "nothing to do"."""
    if tables is None:
        return plans
    wanted = set(tables)
    unknown = wanted - {p.selection.source_name for p in plans}
    if unknown:
        raise ConfigError(f"tables {sorted(unknown)} are not selected by migration {spec.name} (selected: "
                          f"{sorted(p.selection.source_name for p in plans)[:20]})")
    return [p for p in plans if p.selection.source_name in wanted]


def describe_table_schema(conn: pymysql.Connection, database: str, table: str) -> TableSchema:
    """The table's schema now, with collations, as the start of its schema history (call it at the
    coordinate the schema belongs to: the full load's snapshot)."""
    described = describe_tables(conn, database, [table])
    if table not in described:
        raise ValueError(f"table {database}.{table} not found in the source")
    return TableSchema.from_source_table(described[table], column_collations(conn, database, table))
