"""Validation: compare a source table with its MaxCompute replica (or base), row for row.

The source is read through the full load's own reader and value conversion, so both sides are in the
destination's representation and compare exactly; rows are matched by primary key. Meant for a
quiescent source (or a replica built up to "now"), for tests, the demo and spot checks: it holds
both tables in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from odps import options as odps_options

from airflow_provider_polar_mc.core import intervals, sqltext, values
from airflow_provider_polar_mc.core.binlog.schema_history import TableSchema
from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.full_load import FullLoader
from airflow_provider_polar_mc.core.model import TablePlan
from airflow_provider_polar_mc.core.planning import plan_selected
from airflow_provider_polar_mc.core.source.chunking import KeyRange
from airflow_provider_polar_mc.spec import MigrationSpec


def _normalise(value: Any) -> Any:
    if hasattr(value, "to_pydatetime"):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    if isinstance(value, bytearray):
        value = bytes(value)
    return value


@dataclass
class TableComparison:
    source: str
    destination: str
    source_rows: int = 0
    destination_rows: int = 0
    missing: list[Any] = field(default_factory=list)  # keys in the source, not in the destination
    unexpected: list[Any] = field(default_factory=list)  # keys in the destination, not in the source
    different: list[dict[str, Any]] = field(default_factory=list)  # {key, column, source, destination}
    # source columns the destination table lacks (a table stopped for a resync before an ADD COLUMN),
    # or all of them when the destination table does not exist
    missing_columns: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.missing or self.unexpected or self.different or self.missing_columns)

    def summary(self, limit: int = 5) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "equal": self.equal,
            "source_rows": self.source_rows,
            "destination_rows": self.destination_rows,
            "missing": [repr(k) for k in self.missing[:limit]],
            "unexpected": [repr(k) for k in self.unexpected[:limit]],
            "different": [{k: repr(v) for k, v in d.items()} for d in self.different[:limit]],
            "missing_columns": self.missing_columns,
            "counts": {"missing": len(self.missing), "unexpected": len(self.unexpected), "different": len(self.different),
                       "missing_columns": len(self.missing_columns)},
        }


def compare_table(loader: FullLoader, plan: TablePlan, destination_table: str) -> TableComparison:
    """Compare ``plan``'s source table with ``destination_table`` row for row. A destination table that
    does not exist, or lacks a source column, is reported (``missing_columns``), never raised: the
    columns both have are still compared."""
    key = [plan.selection.destination_column(k) for k in plan.source.key_columns]
    source_table, _ = loader.read_range(plan, KeyRange(0, None, None))
    source_columns = [c.destination for c in plan.columns]
    source_rows = {
        tuple(_normalise(row[k]) for k in key): {c: _normalise(row[c]) for c in source_columns}
        for row in source_table.to_pylist()
    }
    existing = loader.destination.describe(destination_table)
    have = {c.name.lower() for c in existing.columns} if existing is not None else set()
    columns = [c for c in source_columns if c.lower() in have]
    result = TableComparison(plan.selection.source_name, destination_table, len(source_rows))
    result.missing_columns = [c for c in source_columns if c.lower() not in have]
    if any(k.lower() not in have for k in key):  # no table, or no key to match rows by
        result.missing = sorted(source_rows, key=repr)
        return result
    # pyodps refuses to read timestamps before 1928 unless told (DatetimeOverflowError); DATETIME
    # values from year 1 on are valid data here, so reading them back must not fail.
    odps_options.allow_antique_date = True
    # TIMESTAMP_NTZ is read as its text: pyodps's readers turn it into pandas nanosecond Timestamps,
    # which cannot hold MySQL's 1000..1677 and 2262..9999 (README "Reading the replica").
    wall_clocks = {c.destination for c in plan.columns if c.mapped.mc_type.upper() == "TIMESTAMP_NTZ"}
    select = ", ".join(
        f"CAST({sqltext.quote_mc_name(c)} AS STRING) AS {sqltext.quote_mc_name(c)}" if c in wall_clocks
        else sqltext.quote_mc_name(c)
        for c in columns
    )  # fmt: skip
    instance = loader.destination.execute(f"SELECT {select} FROM {sqltext.quote_mc_name(destination_table)}")

    def read() -> dict[tuple, dict[str, Any]]:
        rows: dict[tuple, dict[str, Any]] = {}
        with instance.open_reader(tunnel=True, limit=False) as reader:
            for record in reader:
                row = {c: values.wall_clock_from_text(record[c]) if c in wall_clocks else _normalise(record[c]) for c in columns}
                rows[tuple(row[k] for k in key)] = row
        return rows

    dest_rows = loader.destination.call(read, f"read {destination_table}")
    result.destination_rows = len(dest_rows)
    result.missing = sorted((k for k in source_rows if k not in dest_rows), key=repr)
    result.unexpected = sorted((k for k in dest_rows if k not in source_rows), key=repr)
    for k, row in source_rows.items():
        other = dest_rows.get(k)
        if other is None:
            continue
        for c in columns:
            if row[c] != other[c]:
                result.different.append({"key": k, "column": c, "source": row[c], "destination": other[c]})
    return result


def compare_migration(
    spec: MigrationSpec,
    endpoint: MySqlEndpoint,
    destination: MaxComputeDestination,
    *,
    target: Literal["replica", "base"] = "replica",
    tables: Collection[str] | None = None,
) -> list[TableComparison]:
    """Compare every selected table (or those named ``db.table`` in ``tables``) with its replica or base;
    with incremental migration, those it follows (a full load recorded their schema)."""
    store = MaxComputeCheckpointStore(destination, spec.name)
    loader = FullLoader(endpoint, destination, store)
    schemas = intervals.newest_schemas(store) if "incremental" in spec.migration_types else {}
    plans = [_with_renames(p, schemas.get(p.selection.source_name)) for p in plan_selected(spec, endpoint, tables=tables)]
    if schemas:  # the incremental migration follows only tables a full load recorded (not one created since)
        plans = [p for p in plans if p.selection.source_name in schemas]
    return [
        compare_table(loader, p, p.selection.replica_table if target == "replica" else p.selection.base_table)
        for p in plans
    ]


def _with_renames(plan: TablePlan, schema: TableSchema | None) -> TablePlan:
    """A plan whose renamed columns (RENAME COLUMN followed by the incremental migration) point at the
    MaxCompute columns they kept."""
    if schema is None or not schema.renamed:
        return plan
    selection = schema.destination_selection(plan.selection)
    columns = tuple(replace(c, destination=selection.destination_column(c.source.name)) for c in plan.columns)
    return replace(plan, columns=columns)
