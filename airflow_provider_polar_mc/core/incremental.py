"""Incremental batches without Airflow: capture an interval's end coordinate, and load its changes into
exactly one `_log` partition per table.

Order of work in a batch (docs/architecture.md: data before bookkeeping): stream the recorded range
(C(i-1), C(i)] into the interval's partition of every selected table's `_log` (one overwrite Tunnel
session each; blocks are uploaded while the next ones are decoded, a bounded number in flight),
extending `_base` and `_log` with columns added inside the range before the first block that has them,
commit every session once, and only then mark the interval done. A crash anywhere repeats idempotent
overwrites; nothing is ever appended twice, and nothing is visible before the commits.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from airflow_provider_polar_mc.core import failpoints, intervals
from airflow_provider_polar_mc.core.binlog.coordinates import capture, verify_readable
from airflow_provider_polar_mc.core.binlog.reader import ChangeSet, stream_changes
from airflow_provider_polar_mc.core.binlog.schema_history import TableSchema
from airflow_provider_polar_mc.core.destination.checkpoint import (
    CheckpointStore,
    MaxComputeCheckpointStore,
    ReadOnceStore,
)
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.destination.schema import apply_plan
from airflow_provider_polar_mc.core.destination.upload import PartitionUploads
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.model import BinlogCoordinate, ColumnPlan, DestColumn
from airflow_provider_polar_mc.core.resync import (
    PENDING,
    ResyncPending,
    request_resync,
    resync_state,
    schema_from,
)
from airflow_provider_polar_mc.core.schema_plan import evolve_columns, plan_table
from airflow_provider_polar_mc.core.selection import select_tables, with_recorded_tables
from airflow_provider_polar_mc.core.source.catalog import list_tables
from airflow_provider_polar_mc.core.throttle import Throttle
from airflow_provider_polar_mc.core.typemap import arrow_type_for
from airflow_provider_polar_mc.exceptions import CheckpointConflict, PolarMcError, UnsupportedDDL
from airflow_provider_polar_mc.spec import MigrationSpec, TableSelection

SCHEMA_KIND = "schema_c0"


def record_snapshot_schemas(store: CheckpointStore, schemas: dict[str, TableSchema]) -> None:
    """The tables' schemas at the snapshot: where the first interval's decoding starts from."""
    for name, schema in schemas.items():
        store.put_once(SCHEMA_KIND, name, schema.to_dict())


# Blocks queued or uploading at once per batch: with the block being decoded, what bounds its memory.
BLOCKS_IN_FLIGHT = 3
UPLOAD_THREADS = 2
# A batch that meets an ADD COLUMN or a widening MODIFY on a table whose session already holds blocks
# (opened with the old columns) starts its read over once MaxCompute has the new ones; each restart
# changes columns, so this bounds a pathological interval (more ALTERs than this on tables with blocks
# written before).
MAX_READ_RESTARTS = 20
PROGRESS_SECONDS = 10.0


class _ColumnsChangedAfterBlocks(Exception):
    """Internal: a table's session was opened before its columns were added or widened; read again."""


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
        self._durable = store
        self.store = store
        self.log = log
        # After run(), for lineage: each _log table's columns as its partition's blocks were written, and
        # each source table's schema at the interval's end.
        self.log_columns: dict[str, list[DestColumn]] = {}
        self.schemas_at_end: dict[str, TableSchema] = {}
        limits = spec.throttle.incremental
        self.throttle = Throttle(rows_per_s=limits.rows_per_s, mb_per_s=limits.mb_per_s)

    def run(self, interval_start: dt.datetime, interval_end: dt.datetime) -> dict[str, Any]:
        spec = self.spec
        started = time.monotonic()
        # One read of the durable store serves this batch's bookkeeping (each read is a Tunnel download).
        durable = self._durable
        self.store = ReadOnceStore(durable) if isinstance(durable, MaxComputeCheckpointStore) else durable
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
            listed = {db: list_tables(conn, db) for db in spec.source.databases}
        # An interval before the chain (a backfill) starts, and ends, at C0: from the snapshot's schemas.
        from_snapshot = first or intervals.precedes_chain(self.store, interval_start)
        # Tables with a recorded schema are read even if they are gone now (dropped or renamed later):
        # their changes up to the DROP or RENAME are in this range.
        listed = with_recorded_tables(listed, self._recorded_names(interval_start, from_snapshot))
        selections = select_tables(spec, listed, missing="ignore")
        schemas = self._schemas_at_start(interval_start, from_snapshot, [s.source_name for s in selections])
        schemas = self._with_resyncs(schemas, end)
        by_name = {s.source_name: s for s in selections if s.source_name in schemas}
        self.log(f"reading binlog ({start}, {end}] for {len(by_name)} tables into partition {partition}")
        changes, uploaded_bytes = self._stream_partition(start, end, schemas, by_name, partition)

        summary: dict[str, Any] = {
            "interval_start": intervals.interval_key(interval_start),
            "interval_end": intervals.interval_key(interval_end),
            "start": start.to_dict(),
            "end": end.to_dict(),
            "partition": partition,
            "tables": {},
            "schemas": {},
        }
        for name, streamed in changes.tables.items():
            selection = by_name[name]
            summary["tables"][name] = {"rows": streamed.rows, "bytes": uploaded_bytes.get(name, 0),
                                       "log_table": selection.log_table, "warnings": dict(streamed.warnings)}
            summary["schemas"][name] = streamed.schema_at_end.to_dict()
            self.schemas_at_end[name] = streamed.schema_at_end
            self.log(f"{name} -> {selection.log_table} [{partition}]: {streamed.rows:,} rows")
            if streamed.schema_at_end.stopped_at is not None:
                summary.setdefault("stopped", {})[name] = streamed.schema_at_end.stopped_reason
            schema_end = streamed.schema_at_end
            if schema_end.awaits_resync and request_resync(self.store, name, schema_end.stopped_reason, schema_end.stopped_at):
                summary.setdefault("resync_requested", []).append(name)
        if summary.get("stopped"):
            self.log(f"WARNING tables no longer migrated (their replicas keep their last state): {summary['stopped']}")
        summary["seconds"] = round(time.monotonic() - started, 3)
        # Latency: how far behind the source this interval's data reaches MaxCompute (the interval's end
        # coordinate is where the source stood at its end, heartbeat or not). A re-run or backfill of an
        # interval older than the chain's newest is late by design: no lag reported, no alert.
        summary["latency_seconds"] = round(time.time() - intervals.utc(interval_end).timestamp(), 1)
        summary["rerun"] = intervals.done(self.store, intervals.next_interval_end(interval_end, spec.partition)) is not None
        alert = spec.latency_alert_seconds
        summary["latency_alert"] = alert is not None and not summary["rerun"] and summary["latency_seconds"] > alert
        if summary["latency_alert"]:
            self.log(
                f"LATENCY ALERT{' [' + spec.environment_tag + ']' if spec.environment_tag else ''}: interval ending "
                f"{summary['interval_end']} reached MaxCompute {summary['latency_seconds']:.0f}s after it closed "
                f"(latency_alert_seconds: {alert})"
            )
        intervals.mark_done(self.store, interval_end, summary)
        return {k: v for k, v in summary.items() if k != "schemas"}

    def _stream_partition(
        self,
        start: BinlogCoordinate,
        end: BinlogCoordinate,
        schemas: dict[str, TableSchema],
        by_name: dict[str, TableSelection],
        partition: str,
    ) -> tuple[ChangeSet, dict[str, int]]:
        """Read (start, end] straight into the partition's upload sessions and commit them all; returns the
        changes and the Arrow bytes uploaded per table."""
        for attempt in range(MAX_READ_RESTARTS + 1):
            uploads = PartitionUploads(
                self.destination, partition, threads=UPLOAD_THREADS, max_in_flight=BLOCKS_IN_FLIGHT,
                before_block=self._throttle_block,
            )  # fmt: skip
            writer = _PartitionWriter(self, uploads, by_name)
            try:
                changes = stream_changes(
                    self.endpoint, start, end, schemas, by_name, self.spec, on_chunk=writer.write,
                    on_columns_changed=writer.columns_changed, on_table_created=writer.table_created,
                    chunk_rows=self.spec.incremental.block_rows, log=self.log,
                )  # fmt: skip
                uploads.commit([by_name[key].log_table for key in changes.tables])
                self.log_columns = writer.log_columns
                return changes, writer.uploaded_bytes
            except _ColumnsChangedAfterBlocks as restart:
                self.log(f"{restart.args[0]}: columns added or widened after blocks were written; reading the interval again "
                         f"(attempt {attempt + 2})")
            finally:
                uploads.close()
        raise UnsupportedDDL(
            f"more than {MAX_READ_RESTARTS} ADD COLUMN or widening MODIFY statements in the interval {start} .. {end} on tables "
            "with changes before them. Fix: use shorter intervals (partition definition) around such schema changes"
        )

    def _throttle_block(self, rows: pa.Table) -> None:
        self.throttle.before_query()
        self.throttle.after_read(rows.num_rows, rows.nbytes)

    def _log_columns(self, table: str) -> list[DestColumn]:
        described = self.destination.describe(table)
        if described is None:
            raise CheckpointConflict(f"destination table {table} does not exist: run the schema migration first")
        return list(described.columns)

    def _recorded_names(self, interval_start: dt.datetime, first: bool) -> list[str]:
        """The tables (``db.table``) whose schema this interval starts from, as recorded."""
        if first:
            return list(self.store.items(SCHEMA_KIND))
        previous = intervals.done(self.store, interval_start)
        return list((previous or {}).get("schemas") or {})

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

    def _with_resyncs(self, schemas: dict[str, TableSchema], end: BinlogCoordinate) -> dict[str, TableSchema]:
        """Tables a resync (core/resync.py) loaded again at a coordinate C_g up to ``end``: read from C_g
        on in the schema described there (their events before C_g are in the new _base)."""
        result = dict(schemas)
        for name, schema in schemas.items():
            state = resync_state(self.store, name)
            if state is None:
                continue
            if state.get("status") == PENDING and float(state.get("pending_at") or 0) <= end.captured_at:
                raise ResyncPending(
                    f"{name} is being resynced and its coordinate is not recorded yet; this interval may end after "
                    "it. Retry in a moment (the task's retries do)"
                )
            recorded = schema_from(state)
            if recorded is None:
                continue
            resynced, coordinate = recorded
            if resynced.generation > schema.generation and coordinate.key() <= end.key():
                self.log(f"{name}: resynced at {coordinate} (generation {resynced.generation}): read from there on")
                result[name] = resynced
        return result

    def _evolve_columns(self, selection: TableSelection, columns: tuple[ColumnPlan, ...]) -> bool:
        """``_base`` and ``_log`` take ``columns`` (added, or widened in place); True when ``_log`` changed."""
        wanted = [DestColumn(selection.spell(c.destination), c.mapped.mc_type.lower(), c.mapped.comment) for c in columns]
        changed = False
        for table in (selection.base_table, selection.log_table):
            evolved = evolve_columns(self.destination, table, wanted)
            if evolved.refused:  # the reader follows only in-place widenings: a table changed by hand
                raise UnsupportedDDL(
                    f"{table} cannot take the source's new column types: {'; '.join(evolved.refused)}. Fix: change "
                    "the MaxCompute column back, or resync the table (the resync DAG)"
                )
            if evolved.added:
                self.log(f"{table}: added columns {list(evolved.added)} (ALTER TABLE ... ADD COLUMN in the source)")
            if evolved.widened:
                self.log(f"{table}: widened {list(evolved.widened)} (ALTER TABLE ... MODIFY in the source)")
            changed = changed or (evolved.changed and table == selection.log_table)
        return changed


class _PartitionWriter:
    """One attempt at streaming an interval into its partition: the reader's chunk and ADD COLUMN sinks."""

    def __init__(self, loader: IncrementalLoader, uploads: PartitionUploads, by_name: dict[str, TableSelection]):
        self._loader = loader
        self._uploads = uploads
        self._by_name = by_name
        self._block_rows = loader.spec.incremental.block_rows
        self.log_columns: dict[str, list[DestColumn]] = {}  # per _log table: its columns, as its session has them
        self._rows = 0
        self.uploaded_bytes: dict[str, int] = {}  # per table (db.table): Arrow bytes of its blocks
        self._started = self._last_report = time.monotonic()

    def write(self, key: str, rows: pa.Table) -> None:
        failpoints.reached("incremental.chunk")
        table = self._by_name[key].log_table
        if table not in self.log_columns:
            self.log_columns[table] = self._loader._log_columns(table)
        for offset in range(0, rows.num_rows, self._block_rows):
            block = _conform(self.log_columns[table], rows.slice(offset, self._block_rows))
            self.uploaded_bytes[key] = self.uploaded_bytes.get(key, 0) + block.nbytes
            self._uploads.write(table, block)
        self._rows += rows.num_rows
        now = time.monotonic()
        if now - self._last_report >= PROGRESS_SECONDS:  # a long interval shows it is moving
            self._last_report = now
            self._loader.log(f"{self._rows:,} change rows decoded and queued for upload "
                             f"({self._rows / (now - self._started):,.0f} rows/s)")

    def table_created(self, schema: TableSchema) -> TableSelection | None:
        """CREATE TABLE of a table the spec selects (``tables: all``, an include pattern, a listed table
        created late): its ``_base`` (empty: no rows existed) and ``_log`` are created, and it is read from
        here. Not for a policy of ``fail``: then the batch fails naming it."""
        spec = self._loader.spec
        [selection] = select_tables(spec, {schema.database: [schema.table]}, missing="ignore") or [None]
        if selection is None:
            return None
        if spec.schema_changes.create_table == "fail":
            raise UnsupportedDDL(
                f"CREATE TABLE {schema.name}, which the spec selects, and schema_changes.create_table is `fail`. Fix: set "
                "it to `follow`, or re-run the setup for it"
            )
        try:
            plan = plan_table(spec, selection, schema.as_source_table())
            outcomes = apply_plan(spec, plan, self._loader.destination)
        except (ValueError, PolarMcError) as exc:  # a name or type MaxCompute cannot take: the others go on
            self._loader.log(f"WARNING {schema.name} was created but is not migrated: {exc}. Fix it, then re-run the setup for it")
            return None
        self._loader.log(f"{schema.name}: created in MaxCompute ({', '.join(f'{o.table} {o.action}' for o in outcomes)})")
        self._by_name[schema.name] = selection
        return selection

    def columns_changed(self, key: str, columns: tuple[ColumnPlan, ...]) -> None:
        selection = self._by_name[key]
        if self._loader._evolve_columns(selection, columns) and self._uploads.opened(selection.log_table):
            raise _ColumnsChangedAfterBlocks(key)  # the open session has the table's old columns
        self.log_columns.pop(selection.log_table, None)  # described again at the table's first block


def _conform(columns: list[DestColumn], rows: pa.Table) -> pa.Table:
    """``rows`` in the layout of the ``_log`` table's columns: by name, in the table's order. Columns the
    rows lack (read before a later ADD COLUMN: a re-run, a backfill, or a chunk from before the ALTER
    inside this interval) are NULL, as the source had no value for them yet; columns read before a
    widening MODIFY are cast to the widened type (every value is kept: the reader follows only those)."""
    present = {name.lower(): index for index, name in enumerate(rows.column_names)}
    arrays = []
    for column in columns:
        index = present.get(column.name.lower())
        if index is None:
            arrays.append(pa.nulls(rows.num_rows, arrow_type_for(column.type)))
            continue
        arrays.append(_widened(rows.column(index), column.type))
    return pa.table(arrays, names=[c.name for c in columns])


def _widened(array: pa.ChunkedArray, mc_type: str) -> pa.ChunkedArray:
    """``array`` (an integer, decimal or floating column) cast to ``mc_type`` when that is a wider one."""
    have = array.type
    for same_kind in (pa.types.is_integer, pa.types.is_decimal, pa.types.is_floating):
        if same_kind(have):
            wanted = arrow_type_for(mc_type)
            return array.cast(wanted) if same_kind(wanted) and wanted != have else array
    return array
