"""The MaxCompute side, on pyodps: DDL, table descriptions and SQL.

Everything the operators do to the destination goes through :class:`MaxComputeDestination`, which
wraps one ``odps.ODPS`` client (obtained from the alibaba provider's ``MaxComputeHook`` in Airflow, or
built directly in tests and benchmarks). DDL is rendered here as text so that ``polar-mc plan`` shows
exactly what schema migration will run.

Every request goes through :meth:`MaxComputeDestination.call`: a 5xx answer, a timeout or a dropped
connection is repeated within the spec's retry windows (pyodps itself repeats only GETs and PUTs, and
only 502-504), and a SQL statement is submitted with a unique identifier so that repeating a
submission whose answer was lost finds the instance it created instead of running the statement twice.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from odps import ODPS

from airflow_provider_polar_mc.core import cancellation, failpoints, sqltext
from airflow_provider_polar_mc.core.model import DestColumn, TableDDL
from airflow_provider_polar_mc.core.retry import RetryPolicy, is_transient_destination_error, window_spent

log = logging.getLogger(__name__)
T = TypeVar("T")

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

    def __init__(self, odps: ODPS, project: str | None = None, retry: RetryPolicy | None = None):
        self.odps = odps
        self.project = project or odps.project
        self.retry = retry or RetryPolicy()
        # Told of every SQL instance as it starts (the merge task's LogView link); must not raise.
        self.on_instance: Callable[[Any], None] | None = None

    def call(self, fn: Callable[[], T], what: str) -> T:
        """``fn`` (requests to MaxCompute that are safe to repeat), repeated on a transient failure
        within the retry windows; once a window is spent, ``RetryWindowSpent`` naming ``what``."""

        def attempt() -> T:
            cancellation.check()  # a killed task stops retrying
            return fn()

        try:
            return self.retry.call(attempt, retryable_other=is_transient_destination_error, log=log.warning,
                                   what=f"MaxCompute ({what})")  # fmt: skip
        except Exception as exc:
            if is_transient_destination_error(exc):
                raise window_spent(exc, f"MaxCompute project {self.project!r}", what, self.retry) from exc
            raise

    # -- catalog -------------------------------------------------------------------------------
    def table_exists(self, name: str) -> bool:
        return self.call(lambda: self.odps.exist_table(name, project=self.project), f"look up table {name}")

    def get_table(self, name: str) -> Any:
        """A fresh pyodps Table, its metadata loaded."""

        def load() -> Any:
            table = self.odps.get_table(name, project=self.project)
            table.reload()
            return table

        return self.call(load, f"describe table {name}")

    def describe(self, name: str) -> TableDDL | None:
        """The table's columns and partition columns as MaxCompute reports them, or None if absent."""
        if not self.table_exists(name):
            return None
        table = self.get_table(name)
        schema = table.table_schema
        cols = tuple(DestColumn(c.name, str(c.type).lower(), c.comment or "") for c in schema.simple_columns)
        parts = tuple(DestColumn(c.name, str(c.type).lower(), c.comment or "") for c in schema.partitions)
        return TableDDL(name=table.name, columns=cols, partition_columns=parts, comment=table.comment or "")

    def partitions(self, name: str) -> list[dict[str, str]]:
        """The partitions of a partitioned table, each as {column: value}; [] if the table is absent."""
        if not self.table_exists(name):
            return []
        table = self.get_table(name)
        return self.call(lambda: [dict(p.partition_spec.kv) for p in table.iterate_partitions()], f"list partitions of {name}")

    def list_tables(self, prefix: str | None = None) -> list[str]:
        return self.call(lambda: [t.name for t in self.odps.list_tables(project=self.project, prefix=prefix)], "list tables")

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
        # Repeating a submission with the same identifier returns the instance it created, if any.
        guid = uuid.uuid4().hex
        instance = self.call(lambda: self.odps.run_sql(sql, project=self.project, hints=all_hints,
                                                       unique_identifier_id=guid), "submit a SQL statement")  # fmt: skip
        if self.on_instance is not None:
            self.on_instance(instance)
        try:
            with cancellation.stoppable(f"MaxCompute instance {instance.id}", instance.stop):
                self.call(instance.wait_for_success, f"wait for instance {instance.id}")
        except Exception:
            cancellation.check()  # stopped by on_kill: the instance's failure is the stop's
            raise
        failpoints.reached("sql.done")
        return instance

    def query(self, sql: str, hints: Mapping[str, str] | None = None) -> list[tuple]:
        """Run a SELECT and return its rows as tuples (for small results: checks, validation)."""
        instance = self.execute(sql, hints)

        def read() -> list[tuple]:
            with instance.open_reader() as reader:
                return [tuple(record.values) for record in reader]

        return self.call(read, f"read the result of instance {instance.id}")
