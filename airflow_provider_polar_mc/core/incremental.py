"""Incremental batches without Airflow: capture an interval's end coordinate, and load its changes into
exactly one `_log` partition per table.

Order of work in a batch (docs/architecture.md: data before bookkeeping): read the recorded range
(C(i-1), C(i)], extend `_base` and `_log` with columns added inside the range, overwrite the interval's
partition of every selected table's `_log` (one Tunnel session each, committed once), and only then mark
the interval done. A crash anywhere repeats idempotent overwrites; nothing is ever appended twice.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from airflow_provider_polar_mc.core import intervals
from airflow_provider_polar_mc.core.binlog.coordinates import capture, verify_readable
from airflow_provider_polar_mc.core.binlog.reader import read_changes
from airflow_provider_polar_mc.core.binlog.schema_history import TableSchema
from airflow_provider_polar_mc.core.destination.checkpoint import CheckpointStore
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.destination.upload import TableUpload
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.model import DestColumn
from airflow_provider_polar_mc.core.selection import select_tables
from airflow_provider_polar_mc.core.source.catalog import list_tables
from airflow_provider_polar_mc.core.throttle import Throttle
from airflow_provider_polar_mc.core.typemap import arrow_type_for
from airflow_provider_polar_mc.exceptions import CheckpointConflict
from airflow_provider_polar_mc.spec import MigrationSpec

SCHEMA_KIND = "schema_c0"


def record_snapshot_schemas(store: CheckpointStore, schemas: dict[str, TableSchema]) -> None:
    """The tables' schemas at the snapshot: where the first interval's decoding starts from."""
    for name, schema in schemas.items():
        store.put_once(SCHEMA_KIND, name, schema.to_dict())


def _chunks(table: pa.Table, rows: int):
    for offset in range(0, max(table.num_rows, 1), rows):
        yield offset // rows, table.slice(offset, rows)


class IncrementalLoader:
    def __init__(
        self,
        spec: MigrationSpec,
        endpoint: MySqlEndpoint,
        destination: MaxComputeDestination,
        store: CheckpointStore,
        *,
        log: Callable[[str], None] = lambda message: None,
    ):
        self.spec = spec
        self.endpoint = endpoint
        self.destination = destination
        self.store = store
        self.log = log
        limits = spec.throttle.incremental
        self.throttle = Throttle(rows_per_s=limits.rows_per_s, mb_per_s=limits.mb_per_s)

    def run(self, interval_start: dt.datetime, interval_end: dt.datetime) -> dict[str, Any]:
        spec = self.spec
        started = time.monotonic()
        values = intervals.partition_values(interval_start, interval_end, spec.partition)
        partition = intervals.partition_spec(spec.partition_columns(), values)
        start, first = intervals.start_coordinate(self.store, interval_start)
        if first:
            claimed = intervals.claim_first_interval(self.store, interval_start)
            if claimed != intervals.interval_key(interval_start):
                raise CheckpointConflict(f"the interval chain already starts at {claimed}; run the intervals in order")
        end = intervals.recorded_end(self.store, interval_end)
        if end is None:
            raise CheckpointConflict(
                f"no end coordinate recorded for the interval ending {intervals.interval_key(interval_end)}: "
                "the binlog sensor captures it. Fix: run (or clear) the wait_for_binlog task of this run"
            )
        with self.endpoint.session() as conn:
            # First: a reset or replaced source explains an end before the start, and names the way out.
            verify_readable(conn, start, capture(conn))
            if end.key() < start.key():
                raise CheckpointConflict(f"recorded end coordinate {end} lies before the start {start}")
            selections = select_tables(spec, {db: list_tables(conn, db) for db in spec.source.databases}, missing="ignore")
        schemas = self._schemas_at_start(interval_start, first, [s.source_name for s in selections])
        by_name = {s.source_name: s for s in selections if s.source_name in schemas}
        self.log(f"reading binlog ({start}, {end}] for {len(by_name)} tables into partition {partition}")
        changes = read_changes(self.endpoint, start, end, schemas, by_name, spec, log=self.log)

        summary: dict[str, Any] = {
            "interval_start": intervals.interval_key(interval_start),
            "interval_end": intervals.interval_key(interval_end),
            "start": start.to_dict(),
            "end": end.to_dict(),
            "partition": partition,
            "tables": {},
            "schemas": {},
        }
        for name, table_changes in changes.tables.items():
            selection = by_name[name]
            if table_changes.added_columns:
                self._add_columns(selection, table_changes.added_columns)
            self._write_partition(selection.log_table, partition, table_changes.rows)
            summary["tables"][name] = {"rows": table_changes.rows.num_rows, "warnings": dict(table_changes.warnings)}
            summary["schemas"][name] = table_changes.schema_at_end.to_dict()
            self.log(f"{name} -> {selection.log_table} [{partition}]: {table_changes.rows.num_rows:,} rows")
        summary["seconds"] = round(time.monotonic() - started, 3)
        # Latency: how far behind the source this interval's data reaches MaxCompute.
        summary["latency_seconds"] = round(time.time() - intervals.utc(interval_end).timestamp(), 1)
        alert = spec.latency_alert_seconds
        if alert is not None and summary["latency_seconds"] > alert:
            self.log(
                f"LATENCY ALERT{' [' + spec.environment_tag + ']' if spec.environment_tag else ''}: interval ending "
                f"{summary['interval_end']} reached MaxCompute {summary['latency_seconds']:.0f}s after it closed "
                f"(latency_alert_seconds: {alert})"
            )
        intervals.mark_done(self.store, interval_end, summary)
        return {k: v for k, v in summary.items() if k != "schemas"}

    def _conform(self, table: str, rows: pa.Table) -> pa.Table:
        """Rows of an interval read before a later ADD COLUMN (a re-run, a backfill) lack columns the
        `_log` table has by now: they are NULL there, as the source had no value for them yet."""
        described = self.destination.describe(table)
        if described is None:
            raise CheckpointConflict(f"destination table {table} does not exist: run the schema migration first")
        present = {name.lower() for name in rows.column_names}
        for column in described.columns:
            if column.name.lower() not in present:
                rows = rows.append_column(column.name, pa.nulls(rows.num_rows, arrow_type_for(column.type)))
        return rows

    def _schemas_at_start(self, interval_start: dt.datetime, first: bool, names: list[str]) -> dict[str, TableSchema]:
        if first:
            recorded = {n: self.store.get(SCHEMA_KIND, n) for n in names}
        else:
            previous = intervals.done(self.store, interval_start)
            if previous is None:
                raise CheckpointConflict(
                    f"the interval ending {intervals.interval_key(interval_start)} is not done, so this one cannot "
                    "know the table schemas it starts from. Fix: run the earlier intervals first"
                )
            recorded = {n: previous["schemas"].get(n) for n in names}
        missing = sorted(n for n, v in recorded.items() if v is None)
        if missing:
            self.log(f"tables without a recorded snapshot schema are skipped until their full load ran: {missing}")
        return {n: TableSchema.from_dict(v) for n, v in recorded.items() if v is not None}

    def _add_columns(self, selection, added) -> None:
        columns = [DestColumn(selection.spell(c.destination), c.mapped.mc_type.lower(), c.mapped.comment) for c in added]
        for table in (selection.base_table, selection.log_table):
            existing = self.destination.describe(table)
            have = {c.name.lower() for c in existing.columns} if existing else set()
            new = [c for c in columns if c.name.lower() not in have]
            if new:
                self.destination.add_columns(table, new)
                self.log(f"{table}: added columns {[c.name for c in new]} (ALTER TABLE ... ADD COLUMN in the source)")

    def _write_partition(self, table: str, partition: str, rows: pa.Table) -> None:
        rows = self._conform(table, rows)
        upload = TableUpload(self.destination, table, partition=partition, overwrite=True)
        upload.open()
        blocks = []
        for block_id, chunk in _chunks(rows, self.spec.incremental.block_rows):
            self.throttle.before_query()
            upload.write_block(block_id, chunk)
            self.throttle.after_read(chunk.num_rows, chunk.nbytes)
            blocks.append(block_id)
        upload.commit(blocks)
