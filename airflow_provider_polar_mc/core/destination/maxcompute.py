"""The MaxCompute side, on pyodps: DDL, table descriptions and SQL.

Everything the operators do to the destination goes through :class:`MaxComputeDestination`, which
wraps one ``odps.ODPS`` client (obtained from the alibaba provider's ``MaxComputeHook`` in Airflow, or
built directly in tests and benchmarks). DDL is rendered here as text so that ``polar-mc plan`` shows
exactly what schema migration will run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from odps import ODPS

from airflow_provider_polar_mc.core import cancellation, failpoints, sqltext
from airflow_provider_polar_mc.core.model import DestColumn, TableDDL

# MaxCompute 2.0 types (TINYINT, SMALLINT, INT, FLOAT, VARCHAR, TIMESTAMP, BINARY, DECIMAL(p,s) ...)
# need the 2.0 type system switched on for the statement; harmless where it already is.
TYPE_SYSTEM_HINTS: dict[str, str] = {
    "odps.sql.type.system.odps2": "true",
    "odps.sql.decimal.odps2": "true",
}


def render_create_table(ddl: TableDDL, *, if_not_exists: bool = True) -> str:
    def col(c: DestColumn) -> str:
        text = f"  {sqltext.quote_mc_name(c.name)} {c.type}"
        return text + (f" COMMENT {sqltext.mc_string(c.comment)}" if c.comment else "")

    lines = [f"CREATE TABLE {'IF NOT EXISTS ' if if_not_exists else ''}{sqltext.quote_mc_name(ddl.name)} ("]
    lines.append(",\n".join(col(c) for c in ddl.columns))
    lines.append(")")
    if ddl.comment:
        lines.append(f"COMMENT {sqltext.mc_string(ddl.comment)}")
    if ddl.partition_columns:
        lines.append("PARTITIONED BY (" + ", ".join(col(c).strip() for c in ddl.partition_columns) + ")")
    if ddl.lifecycle:
        lines.append(f"LIFECYCLE {int(ddl.lifecycle)}")
    return "\n".join(lines) + ";"


def render_add_columns(table: str, columns: Sequence[DestColumn]) -> str:
    cols = ", ".join(
        f"{sqltext.quote_mc_name(c.name)} {c.type}" + (f" COMMENT {sqltext.mc_string(c.comment)}" if c.comment else "")
        for c in columns
    )
    return f"ALTER TABLE {sqltext.quote_mc_name(table)} ADD COLUMNS ({cols});"


class MaxComputeDestination:
    """One MaxCompute project reached through a pyodps client."""

    def __init__(self, odps: ODPS, project: str | None = None):
        self.odps = odps
        self.project = project or odps.project
        # Told of every SQL instance as it starts (the merge task's LogView link); must not raise.
        self.on_instance: Callable[[Any], None] | None = None

    # -- catalog -------------------------------------------------------------------------------
    def table_exists(self, name: str) -> bool:
        return self.odps.exist_table(name, project=self.project)

    def describe(self, name: str) -> TableDDL | None:
        """The table's columns and partition columns as MaxCompute reports them, or None if absent."""
        if not self.table_exists(name):
            return None
        table = self.odps.get_table(name, project=self.project)
        schema = table.table_schema
        cols = tuple(DestColumn(c.name, str(c.type).lower(), c.comment or "") for c in schema.simple_columns)
        parts = tuple(DestColumn(c.name, str(c.type).lower(), c.comment or "") for c in schema.partitions)
        return TableDDL(name=table.name, columns=cols, partition_columns=parts, comment=table.comment or "")

    def partitions(self, name: str) -> list[dict[str, str]]:
        """The partitions of a partitioned table, each as {column: value}; [] if the table is absent."""
        if not self.table_exists(name):
            return []
        table = self.odps.get_table(name, project=self.project)
        return [dict(p.partition_spec.kv) for p in table.iterate_partitions()]

    def list_tables(self, prefix: str | None = None) -> list[str]:
        return [t.name for t in self.odps.list_tables(project=self.project, prefix=prefix)]

    # -- DDL -----------------------------------------------------------------------------------
    def create_table(self, ddl: TableDDL, *, if_not_exists: bool = True) -> None:
        self.execute(render_create_table(ddl, if_not_exists=if_not_exists))

    def add_columns(self, table: str, columns: Sequence[DestColumn]) -> None:
        if columns:
            self.execute(render_add_columns(table, columns))

    def widen_column(self, table: str, column: str, mc_type: str) -> None:
        """``ALTER TABLE t CHANGE COLUMN c c <type>``: MaxCompute's in-place type change, for a widening
        (a wider integer, FLOAT -> DOUBLE, a DECIMAL with more digits) that keeps every stored value."""
        if not re.fullmatch(r"[A-Za-z_]+(\(\d+(,\s*\d+)?\))?", mc_type):
            raise ValueError(f"not a MaxCompute type: {mc_type!r}")
        name = sqltext.quote_mc_name(column)
        self.execute(f"ALTER TABLE {sqltext.quote_mc_name(table)} CHANGE COLUMN {name} {name} {mc_type};")

    def drop_table(self, name: str, *, if_exists: bool = True) -> None:
        self.execute(f"DROP TABLE {'IF EXISTS ' if if_exists else ''}{sqltext.quote_mc_name(name)};")

    # -- SQL -----------------------------------------------------------------------------------
    def execute(self, sql: str, hints: Mapping[str, str] | None = None):
        """Run a SQL script and wait for it; raises pyodps's ODPSError on failure. While it runs, the
        task's ``on_kill`` stops the instance in MaxCompute (core/cancellation.py)."""
        all_hints = dict(TYPE_SYSTEM_HINTS)
        all_hints.update(hints or {})
        failpoints.reached("sql.submit")
        instance = self.odps.run_sql(sql, project=self.project, hints=all_hints)
        if self.on_instance is not None:
            self.on_instance(instance)
        try:
            with cancellation.stoppable(f"MaxCompute instance {instance.id}", instance.stop):
                instance.wait_for_success()
        except Exception:
            cancellation.check()  # stopped by on_kill: the instance's failure is the stop's
            raise
        failpoints.reached("sql.done")
        return instance

    def query(self, sql: str, hints: Mapping[str, str] | None = None) -> list[tuple]:
        """Run a SELECT and return its rows as tuples (for small results: checks, validation)."""
        instance = self.execute(sql, hints)
        with instance.open_reader() as reader:
            return [tuple(record.values) for record in reader]
