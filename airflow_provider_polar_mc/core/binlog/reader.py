"""The bounded binlog reader: the changes between two coordinates as DTS change rows, per table.

:func:`stream_changes` reads exactly the events in ``(start, end]`` (docs/architecture.md: bounded
reads) and hands each table's change rows, in the ``_log`` layout, to a callback in chunks of at most
``chunk_rows`` rows as they are decoded, so memory is bounded by a chunk per table, not by the
interval. It returns, for every requested table, its row count, warnings and schema at ``end``.
:func:`read_changes` collects the chunks into one table per table (tests, small ranges).

How it stays exact
------------------
* **Positions honoured.** mysql-replication 1.0.17 with ``is_mariadb=True`` and no GTID sends
  MariaDB a dump request without file or position, so the server streams from its first binlog
  (and, non-blocking, the library reconnects and re-reads forever). The classic ``COM_BINLOG_DUMP``
  (``is_mariadb=False``) carries file and position and MariaDB honours it, so that is the path used
  on every server. Every event's start is also checked against ``start``: an event before it means
  the reader did not honour the position, and the read fails instead of duplicating changes.
* **Bounded.** The reader stops at the first event ending at ``end`` (or beyond it, or in a later
  file); it never relies on the server's end of stream. Reaching the end of stream before ``end``
  is an error, not a short success.
* **Restarts and rotation.** Files are followed through rotate events; the table-id map is cleared
  at every file boundary because table ids are reused after a server restart.
* **Schema history.** Rows are decoded by the column names the table-map events carry
  (``binlog_row_metadata=FULL``) and checked against the schema tracked from the start coordinate
  (:class:`TableSchema`), never against today's ``information_schema``. ``ALTER TABLE ... ADD
  COLUMN`` extends the tracked schema; other DDL on a selected table raises :class:`UnsupportedDDL`.

record_id
---------
``record_id = (file_index << 32) | (event_start + row_index)``: the binlog file's numeric suffix in
the high 31 bits, the event's start position plus the row's index inside the event in the low 32.
A rows event holding n rows is more than n bytes long, so ``event_start + row_index`` stays below the
next event's start: ids are unique, increase in binlog order (also across files and intervals) and
are identical on every re-read. The two rows of an UPDATE share one id (before-image, then
after-image). Limits, checked (a violation raises instead of producing colliding ids): file index
< 2**31, positions < 2**32 (the binlog header's 4-byte position; files past 4 GiB wrap it, which is
detected as a position going backwards).
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pymysql

from airflow_provider_polar_mc.core import cancellation
from airflow_provider_polar_mc.core.binlog.change_filter import matching_images
from airflow_provider_polar_mc.core.binlog.coordinates import (
    capture,
    choose_replica_server_id,
    verify_readable,
)
from airflow_provider_polar_mc.core.binlog.ddl import AddedColumn, TableDDL, parse_ddl
from airflow_provider_polar_mc.core.binlog.rows_decoder import (
    ColumnarDecoder,
    ImageColumns,
    TableDecoder,
    columnar_decoder,
    table_decoder,
)
from airflow_provider_polar_mc.core.binlog.schema_history import RESYNC_REASON, TableSchema
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.model import BinlogCoordinate, ColumnPlan, SourceColumn, binlog_file_index
from airflow_provider_polar_mc.core.schema_plan import mapping_options, plan_table, source_column_type
from airflow_provider_polar_mc.core.typemap import map_type, widens_in_place
from airflow_provider_polar_mc.core.values import (
    convert_binlog_values,
    destination_arrow_type,
    existing_rows_literal,
    set_members,
)
from airflow_provider_polar_mc.exceptions import BinlogUnavailable, UnsupportedDDL, UnsupportedType
from airflow_provider_polar_mc.spec import MigrationSpec, TableSelection

MAX_FILE_INDEX = 2**31 - 1
MAX_POSITION = 2**32 - 1
CONVERSION_BATCH_ROWS = 65_536

# Image kinds while collecting; the flags and operation follow from the kind.
_INSERT, _DELETE, _UPDATE_BEFORE, _UPDATE_AFTER = 0, 1, 2, 3
_OPERATION = pa.array(["I", "D", "U", "U"], pa.string())
_BEFORE_FLAG = pa.array(["N", "Y", "Y", "N"], pa.string())
_AFTER_FLAG = pa.array(["Y", "N", "N", "Y"], pa.string())
_DDL_VERBS = ("ALTER", "RENAME", "DROP", "TRUNCATE", "CREATE")


class ReaderError(BinlogUnavailable):
    """The binlog stream did not behave as a bounded read requires (start position not honoured, end
    of stream before the end coordinate, positions out of the record_id's range). Retrying the same
    read may help only if the cause was transient; the message says which."""


# --- results ----------------------------------------------------------------------------------------


@dataclass
class TableChanges:
    """One table's changes in an interval.

    ``rows``: the ``_log`` layout (additional columns, then the mapped data columns of
    ``schema_at_end``), in binlog order. ``added_columns``: columns added by ADD COLUMN inside the
    interval, mapped with the spec's type options; add them to ``_base`` and ``_log`` before writing
    ``rows``. ``warnings``: destination column -> {warning key (values.py) -> rows}.
    """

    table: str
    rows: pa.Table
    schema_at_end: TableSchema
    added_columns: tuple[ColumnPlan, ...] = ()
    warnings: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class TableStream:
    """What :func:`stream_changes` tells of one table once the range is read: rows handed out,
    schema at ``end``, columns added inside the range (see :class:`TableChanges`), warnings."""

    table: str
    rows: int
    schema_at_end: TableSchema
    layout: pa.Schema  # the _log layout of schema_at_end
    added_columns: tuple[ColumnPlan, ...] = ()
    warnings: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass
class ChangeSet:
    """Everything read in ``(start, end]``: ``tables`` has an entry for every requested table;
    ``events`` counts the selected tables' row events, ``rows`` the change rows produced."""

    start: BinlogCoordinate
    end: BinlogCoordinate
    tables: dict[str, Any]  # TableChanges (read_changes) or TableStream (stream_changes)
    events: int = 0
    rows: int = 0
    seconds: float = 0.0


# Receives (table key, change rows) in binlog order per table; may block (back-pressure).
ChunkSink = Callable[[str, pa.Table], None]
# Told (table key, mapped columns) at an ADD COLUMN or a widening MODIFY inside the range, before any
# chunk that has them: the consumer adds or widens the MaxCompute columns.
ColumnsChangedSink = Callable[[str, tuple[ColumnPlan, ...]], None]
# A CREATE TABLE of a table not migrated yet: the consumer returns its selection (after creating its
# MaxCompute tables) when the spec selects it, else None.
TableCreatedSink = Callable[[TableSchema], "TableSelection | None"]


# --- collecting -------------------------------------------------------------------------------------


class _TableCollector:
    """One table's pending row images in binlog order, with their record ids, kinds and event times;
    :meth:`take` hands them out (a chunk) and starts over."""

    def __init__(self, schema: TableSchema):
        self.schema = schema
        self.added: list[AddedColumn] = []
        self.rows = 0  # change rows handed out so far
        self.warnings: dict[str, dict[str, int]] = {}
        self._plan: tuple[TableSchema, tuple[ColumnPlan, ...]] | None = None
        self._reset()

    def _reset(self) -> None:
        # Pending images are either dicts (images / none_sources) or one columnar buffer, never both.
        self.buffer: ImageColumns | None = None
        self.record_ids: list[int] = []
        self.kinds: list[int] = []
        self.timestamps: list[int] = []
        self.images: list[dict[str, Any]] = []
        self.none_sources: list[dict[str, str]] = []

    def __len__(self) -> int:
        return len(self.kinds)

    def skips(self, record_id: int) -> bool:
        """The table's events at ``record_id`` are not migrated: it stopped, or they lie before the
        coordinate its resynced _base was loaded at (that _base holds their effect)."""
        schema = self.schema
        return schema.stopped_at is not None or (schema.resumes_after is not None and record_id < schema.resumes_after)

    def add_columnar(self, kind: int, images: int, base_id: int, timestamp: int) -> None:
        """The bookkeeping of ``images`` images just decoded into :attr:`buffer`."""
        if kind == _INSERT or kind == _DELETE:
            self.record_ids.extend(range(base_id, base_id + images))
            self.kinds.extend([kind] * images)
        else:
            ids = range(base_id, base_id + images // 2)
            self.record_ids.extend(itertools.chain.from_iterable(zip(ids, ids, strict=True)))  # both images share the id
            self.kinds.extend([_UPDATE_BEFORE, _UPDATE_AFTER] * (images // 2))
        self.timestamps.extend([timestamp] * images)

    def add_rows(self, kind: int, rows: list[dict], base_id: int, timestamp: int) -> None:
        n = len(rows)
        if kind == _INSERT or kind == _DELETE:
            self.record_ids.extend(range(base_id, base_id + n))
            self.kinds.extend([kind] * n)
            self.timestamps.extend([timestamp] * n)
            self.images.extend([row["values"] for row in rows])
            self.none_sources.extend([row["none_sources"] for row in rows])
            return
        for index, row in enumerate(rows):
            record_id = base_id + index
            self.record_ids += (record_id, record_id)
            self.images += (row["before_values"], row["after_values"])
            self.none_sources += (row["before_none_sources"], row["after_none_sources"])
        self.kinds.extend([_UPDATE_BEFORE, _UPDATE_AFTER] * n)
        self.timestamps.extend([timestamp] * (2 * n))

    def columns(self, spec: MigrationSpec, selection: TableSelection, key: str) -> tuple[ColumnPlan, ...]:
        """The mapped columns of the current schema (planned once per schema)."""
        if self._plan is None or self._plan[0] is not self.schema:
            try:
                plan = plan_table(spec, self.schema.destination_selection(selection), self.schema.as_source_table())
            except UnsupportedType as exc:
                raise UnsupportedDDL(f"{key}: a column added in the interval has no MaxCompute mapping: {exc}") from exc
            self._plan = (self.schema, tuple(plan.columns))
        return self._plan[1]

    def take(
        self, key: str, selection: TableSelection, spec: MigrationSpec, conn: pymysql.Connection
    ) -> pa.Table:
        """The pending images as ``_log`` rows (filter applied); the collector is empty afterwards."""
        kinds = np.asarray(self.kinds, dtype=np.int8)
        if self.buffer is not None and len(self.buffer):
            rows, warnings = _columnar_to_arrow(spec, self.columns(spec, selection, key), self, kinds)
        else:
            keep: np.ndarray | None = None
            if selection.filter and len(kinds):
                kinds, keep = _apply_filter(conn, selection.filter, self.schema, self.images, kinds)
            rows, warnings = _to_arrow(spec, self.columns(spec, selection, key), self, kinds, keep)
        for column, counts in warnings.items():
            bucket = self.warnings.setdefault(column, {})
            for warning, count in counts.items():
                bucket[warning] = bucket.get(warning, 0) + count
        self.rows += rows.num_rows
        self._reset()
        return rows


# --- the reader -------------------------------------------------------------------------------------


def read_changes(
    endpoint: MySqlEndpoint,
    start: BinlogCoordinate,
    end: BinlogCoordinate,
    tables: Mapping[str, TableSchema],
    selections: Mapping[str, TableSelection],
    spec: MigrationSpec,
    **kwargs: Any,
) -> ChangeSet:
    """:func:`stream_changes` with every table's chunks collected into one :class:`TableChanges`
    (memory grows with the range: for tests and small ranges; batches stream)."""
    chunks: dict[str, list[pa.Table]] = {key: [] for key in tables}
    result = stream_changes(
        endpoint, start, end, tables, selections, spec, on_chunk=lambda key, rows: chunks[key].append(rows), **kwargs
    )
    for key, streamed in result.tables.items():
        parts = chunks[key]
        rows = pa.concat_tables(parts, promote_options="default") if len(parts) > 1 else parts[0]
        if rows.schema != streamed.layout:  # chunks from before an ADD COLUMN lack the column
            rows = pa.table(
                {f.name: rows[f.name] if f.name in rows.column_names else pa.nulls(rows.num_rows, f.type)
                 for f in streamed.layout}  # fmt: skip
            ).cast(streamed.layout)
        result.tables[key] = TableChanges(key, rows, streamed.schema_at_end, streamed.added_columns, streamed.warnings)
    return result


def stream_changes(
    endpoint: MySqlEndpoint,
    start: BinlogCoordinate,
    end: BinlogCoordinate,
    tables: Mapping[str, TableSchema],
    selections: Mapping[str, TableSelection],
    spec: MigrationSpec,
    *,
    on_chunk: ChunkSink,
    on_columns_changed: ColumnsChangedSink | None = None,
    on_table_created: TableCreatedSink | None = None,
    chunk_rows: int = CONVERSION_BATCH_ROWS,
    buffered_rows: int | None = None,
    replica_server_id: int | None = None,
    fast_decode: bool = True,
    log: Callable[[str], None] = lambda message: None,
) -> ChangeSet:
    """The changes of ``tables`` (key ``"db.table"``, schema at ``start``) in ``(start, end]``, handed
    to ``on_chunk(key, rows)`` as they are decoded.

    A table's pending images become a chunk when it holds ``chunk_rows`` images, at an ADD COLUMN on
    it or a widening MODIFY (after which ``on_columns_changed`` is told, before any chunk with the new
    columns), and at the
    end; when all tables together hold ``buffered_rows`` images (default ``chunk_rows``) the
    largest becomes a chunk. Every table gets at least one chunk (possibly empty: the ``_log``
    layout), so a consumer sees every table's columns. Chunks of one table arrive in binlog order.

    Raises :class:`SourceChanged` / :class:`BinlogUnavailable` (before reading anything) when the
    range is not on the source any more, :class:`UnsupportedDDL` for DDL on a selected table that
    the migration cannot follow, and :class:`ReaderError` when the stream misbehaves.
    ``replica_server_id`` must differ from every other replica of the source (a random one is used
    by default, so parallel readers never evict each other). ``fast_decode`` decodes row images with
    :mod:`.rows_decoder` (same values as the library's decoder, faster); False uses the library's.
    """
    started = time.monotonic()
    missing = [key for key in tables if key not in selections]
    if missing:
        raise ValueError(f"no selection for {missing}")
    if start.key() > end.key():
        raise ValueError(f"start {start} lies after end {end}")
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be positive")
    for coordinate in (start, end):
        if coordinate.file_index > MAX_FILE_INDEX or coordinate.log_pos > MAX_POSITION:
            raise ReaderError(
                f"coordinate {coordinate} is beyond the record_id bit budget (file index < 2**31, "
                "position < 2**32)"
            )

    with endpoint.session() as conn:
        current = capture(conn)
        verify_readable(conn, start, current)
        verify_readable(conn, end, current)
        chunks = _Chunker(
            {key: _TableCollector(schema) for key, schema in tables.items()},
            dict(selections), spec, conn, on_chunk, on_columns_changed, chunk_rows, buffered_rows or chunk_rows,
            on_table_created,
        )
        events = 0
        if start.key() < end.key():
            events = _read_events(endpoint, start, end, chunks, replica_server_id, current.server_id, fast_decode, log)
        chunks.finish()
        result = ChangeSet(start=start, end=end, tables={}, events=events)
        for key, collector in chunks.collectors.items():
            added_names = {a.column.name.lower() for a in collector.added}
            columns = collector.columns(spec, selections[key], key)
            added = tuple(c for c in columns if c.source.name.lower() in added_names)
            layout = collector.take(key, selections[key], spec, conn).schema  # nothing pending: the empty layout
            result.tables[key] = TableStream(key, collector.rows, collector.schema, layout, added, collector.warnings)
            result.rows += collector.rows
    result.seconds = time.monotonic() - started
    log(f"read {start} .. {end}: {events} row events, {result.rows} change rows in {result.seconds:.1f}s")
    return result


class _Chunker:
    """Turns the collectors' pending images into chunks by the rules of :func:`stream_changes`."""

    def __init__(
        self,
        collectors: dict[str, _TableCollector],
        selections: Mapping[str, TableSelection],
        spec: MigrationSpec,
        conn: pymysql.Connection,
        on_chunk: ChunkSink,
        on_columns_changed: ColumnsChangedSink | None,
        chunk_rows: int,
        buffered_rows: int,
        on_table_created: TableCreatedSink | None = None,
    ):
        self.collectors = collectors
        self.on_table_created = on_table_created
        self._selections = selections
        self._spec = spec
        self._conn = conn
        self._on_chunk = on_chunk
        self._on_columns_changed = on_columns_changed
        self.chunk_rows = chunk_rows
        self._buffered_rows = buffered_rows
        self._pending = 0
        self._chunked: set[str] = set()

    @property
    def spec(self) -> MigrationSpec:
        return self._spec

    def database_charset(self, database: str) -> str:
        """The database's default character set (a CREATE TABLE without its own takes it)."""
        with self._conn.cursor() as cur:
            cur.execute("SELECT DEFAULT_CHARACTER_SET_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (database,))
            row = cur.fetchone()
        return str(row[0]).lower() if row and row[0] else "utf8mb4"

    def table_created(self, schema: TableSchema) -> str | None:
        """A new table (CREATE TABLE) starts being migrated here when the spec selects it: its collector
        key, or None."""
        if self.on_table_created is None:
            return None
        selection = self.on_table_created(schema)
        if selection is None:
            return None
        self._selections[schema.name] = selection
        self.collectors[schema.name] = _TableCollector(schema)
        return schema.name

    def policy(self, action: str) -> str | None:
        """The spec's policy (``schema_changes``) for a DDL action, None for actions it has none for."""
        field = _POLICY_FIELDS.get(action)
        return getattr(self._spec.schema_changes, field) if field else None

    def added(self, key: str, images: int) -> None:
        """``images`` images were added to ``key``'s collector."""
        self._pending += images
        if len(self.collectors[key]) >= self.chunk_rows:
            self.flush(key)
        elif self._pending >= self._buffered_rows:
            self.flush(max(self.collectors, key=lambda k: len(self.collectors[k])))

    def flush(self, key: str) -> None:
        collector = self.collectors[key]
        if not len(collector):
            return
        self._pending -= len(collector)
        self._hand_out(key, collector.take(key, self._selections[key], self._spec, self._conn))

    def _hand_out(self, key: str, rows: pa.Table) -> None:
        # One rows event can carry many rows, so a collector may pass chunk_rows by a few before it is taken.
        self._chunked.add(key)
        if rows.num_rows <= self.chunk_rows:
            self._on_chunk(key, rows)
            return
        for offset in range(0, rows.num_rows, self.chunk_rows):
            self._on_chunk(key, rows.slice(offset, self.chunk_rows))

    def decoders(self, key: str, table_map: Any, fast: bool) -> tuple[TableDecoder | None, ColumnarDecoder | None]:
        """The row decoders for a table map of ``key``: the dict decoder (None: the library's), and the
        columnar one (None: not for this table: unsupported types, or a filter, which needs dicts)."""
        if not fast:
            return None, None
        columnar = None
        if not self._selections[key].filter:
            columnar = columnar_decoder(table_map, self.collectors[key].columns(self._spec, self._selections[key], key))
        return table_decoder(table_map), columnar

    def columns_added(self, key: str, added: list[AddedColumn]) -> None:
        """An ADD COLUMN on ``key`` (already applied to its collector's schema): the images before it
        were flushed by the caller; tell the consumer the mapped new columns."""
        if not added:
            return
        names = {a.column.name.lower() for a in added}
        columns = self.collectors[key].columns(self._spec, self._selections[key], key)
        by_name = {c.source.name.lower(): c for c in columns}
        for fill in self.collectors[key].schema.fills:
            if fill.column.lower() in names:
                try:  # the merge spells it for the replica's older rows: it must be spellable now
                    existing_rows_literal(by_name[fill.column.lower()], fill.text)
                except (ValueError, ArithmeticError) as exc:
                    raise UnsupportedDDL(
                        f"{key}: ADD COLUMN {fill.column} gives existing rows {fill.text!r}, which the replica "
                        f"cannot show ({exc}). Fix: add the column as NULL and fill it with UPDATE, or re-run the setup "
                        "(full load) for the table"
                    ) from exc
        self.columns_changed(key, names)

    def columns_changed(self, key: str, names: set[str]) -> None:
        """Columns ``names`` (lower case) of ``key`` were added or widened (already in its collector's
        schema, the images before flushed by the caller): tell the consumer their mapped columns."""
        if self._on_columns_changed is None or not names:
            return
        columns = self.collectors[key].columns(self._spec, self._selections[key], key)
        self._on_columns_changed(key, tuple(c for c in columns if c.source.name.lower() in names))

    def finish(self) -> None:
        for key, collector in self.collectors.items():
            if len(collector) or key not in self._chunked:
                self._pending -= len(collector)
                self._hand_out(key, collector.take(key, self._selections[key], self._spec, self._conn))


def _stream(endpoint: MySqlEndpoint, start: BinlogCoordinate, server_id: int, collectors: Mapping[str, Any], *,
            every_table: bool = False, also: Sequence[str] = ()):
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.event import QueryEvent, RotateEvent, XidEvent
    from pymysqlreplication.row_event import DeleteRowsEvent, TableMapEvent, UpdateRowsEvent, WriteRowsEvent

    databases = sorted({key.split(".", 1)[0] for key in collectors})
    names = sorted({key.split(".", 1)[1] for key in collectors} | set(also))
    return BinLogStreamReader(
        connection_settings=endpoint.replication_settings(),
        server_id=server_id,
        resume_stream=True,
        blocking=False,
        log_file=start.log_file,
        log_pos=start.log_pos,
        # Name filters apply to table-map and rows events only; QueryEvents (DDL) always come through.
        only_schemas=databases or None,
        # Following CREATE TABLE under `tables: all`: every table's events (a new one's come after its
        # CREATE); the reader skips the others' rows without decoding them. Listed tables not created
        # yet are in ``also``.
        only_tables=None if every_table else names or None,
        # Every event that can end a transaction or a file is needed to see the end coordinate.
        only_events=None,
        filter_non_implemented_events=False,
        # The classic dump honours log_file/log_pos on MariaDB too (module docstring).
        is_mariadb=False,
        enable_logging=False,
    ), (QueryEvent, RotateEvent, XidEvent, TableMapEvent, WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent)



def _read_events(
    endpoint: MySqlEndpoint,
    start: BinlogCoordinate,
    end: BinlogCoordinate,
    chunks: _Chunker,
    replica_server_id: int | None,
    source_server_id: int,
    fast_decode: bool,
    log: Callable[[str], None],
) -> int:
    server_id = choose_replica_server_id(replica_server_id, source_server_id)
    collectors = chunks.collectors
    spec = chunks.spec
    follows_creates = chunks.on_table_created is not None and spec.schema_changes.create_table == "follow"
    every_table = follows_creates and any(o.all_tables for o in spec.objects)
    listed = [t.name for o in spec.objects if not o.all_tables for t in o.tables] if follows_creates else []
    stream, classes = _stream(endpoint, start, server_id, collectors, every_table=every_table, also=listed)
    query_event, rotate_event, _xid, table_map_event, write_event, update_event, delete_event = classes
    kinds = {write_event: _INSERT, delete_event: _DELETE, update_event: _UPDATE_BEFORE}
    by_name = {tuple(key.split(".", 1)): (key, c) for key, c in collectors.items()}
    by_lower_name = {(db.lower(), t.lower()): key for key, c in collectors.items() for db, t in [key.split(".", 1)]}
    end_index, start_index = end.file_index, start.file_index
    end_key = end.key()  # once: file_index parses the file name
    current_file: str | None = None
    file_index = -1
    last_start = (-1, -1)
    decoders: dict[int, TableDecoder | None] = {}  # by table id, for the checked selected tables
    row_events = 0
    reached_end = False
    # on_kill closes the stream (a blocked read returns) and the loop stops at the next event: a closed
    # stream would reconnect by itself.
    stop = cancellation.register(f"binlog read from {start}", stream.close)
    stopped = cancellation.stopped
    try:
        for event in stream:
            if stopped():
                break
            cls = event.__class__
            packet = event.packet
            if cls is rotate_event:
                if current_file is None and event.next_binlog != start.log_file:
                    raise ReaderError(
                        f"the binlog reader started in {event.next_binlog}, not at the requested {start}: "
                        "the start position was not honoured"
                    )
                current_file = event.next_binlog
                file_index = binlog_file_index(current_file)
                stream.table_map.clear()  # table ids are reused after a restart
                decoders.clear()
                if file_index > end_index:
                    reached_end = True
                    break
                continue
            next_position = packet.log_pos
            if next_position == 0:
                continue  # an artificial event the server sends when a dump starts (no place in the log)
            event_start = next_position - packet.event_size
            event_key = (file_index, event_start)
            if event_start < 0 or event_key <= last_start:
                raise ReaderError(
                    f"binlog position went backwards at {current_file}:{next_position}: a binlog file beyond "
                    "4 GiB (positions wrap) is outside the record_id bit budget"
                )
            last_start = event_key
            if file_index == start_index and event_start < start.log_pos:
                raise ReaderError(
                    f"the binlog reader returned an event at {current_file}:{event_start}, before the start "
                    f"coordinate {start}: the start position was not honoured"
                )
            if (file_index, next_position) > end_key:
                if file_index == end_index and event_start != end.log_pos:
                    raise ReaderError(f"the end coordinate {end} is not at an event boundary")
                reached_end = True
                break
            if cls in kinds:
                found = by_name.get((event.schema, event.table))
                if found is not None and not found[1].skips((file_index << 32) | event_start):
                    key, collector = found
                    if event.table_id not in decoders:
                        table = stream.table_map[event.table_id]
                        _check_columns(collector, table, current_file, event_start)
                        decoders[event.table_id] = chunks.decoders(key, table, fast_decode)
                    dict_decoder, columnar = decoders[event.table_id]
                    kind, base_id = kinds[cls], (file_index << 32) | event_start
                    images = None
                    if columnar is not None:
                        if collector.images or (collector.buffer is not None and not columnar.accepts(collector.buffer)):
                            chunks.flush(key)  # a chunk is all dicts or all one columnar layout
                        if collector.buffer is None:
                            collector.buffer = columnar.new_buffer()
                        images = columnar.decode(event, collector.buffer)
                        if images is not None:
                            if event_start + (images // 2 if kind == _UPDATE_BEFORE else images) > MAX_POSITION:
                                raise ReaderError(f"event at {current_file}:{event_start} exceeds the record_id bit budget")
                            collector.add_columnar(kind, images, base_id, event.timestamp)
                        elif len(collector.buffer):
                            chunks.flush(key)
                    if images is None:
                        collector.buffer = None  # empty (flushed above, or never used): dicts from here
                        rows = dict_decoder.rows(event) if dict_decoder is not None else None
                        if rows is None:
                            rows = event.rows
                        if event_start + len(rows) > MAX_POSITION:
                            raise ReaderError(f"event at {current_file}:{event_start} exceeds the record_id bit budget")
                        images = len(collector)
                        collector.add_rows(kind, rows, base_id, event.timestamp)
                        images = len(collector) - images
                    chunks.added(key, images)
                    row_events += 1
            elif cls is query_event:
                statement = event.query
                if statement.lstrip()[:9].upper().startswith(_DDL_VERBS):
                    coordinate = replace(end, log_file=current_file or "", log_pos=event_start, gtid="", captured_at=0.0)
                    default_db = event.schema.decode("utf-8", "replace") if event.schema else None
                    _apply_ddl(statement, default_db, by_lower_name, chunks, coordinate, log, by_name)
            elif cls is table_map_event:
                found = by_name.get((event.schema, event.table))
                if found is not None and not found[1].skips((file_index << 32) | event_start) and _columns_match(
                    chunks, found[0], event, current_file, (file_index << 32) | event_start, log
                ):
                    if event.table_id not in decoders:
                        # A table id keeps its definition within a file (DDL gives the table a new id):
                        # every transaction repeats the table map, the decoders are built at the first.
                        decoders[event.table_id] = chunks.decoders(found[0], event.get_table(), fast_decode)
            if (file_index, next_position) == end_key:
                reached_end = True
                break
    except Exception:
        cancellation.check()  # a stop closed the stream under the read: say so, do not retry it
        raise
    finally:
        cancellation.unregister(stop)
        stream.close()
    cancellation.check()  # a stop ends the stream early: say so rather than blame the binlog
    if not reached_end:
        raise ReaderError(
            f"the binlog stream ended at {stream.log_file}:{stream.log_pos} before the end coordinate {end}; "
            "retry, and if it persists check the source's binlog files (SHOW BINARY LOGS)"
        )
    return row_events


def _columns_match(chunks: _Chunker, key: str, table_map: Any, log_file: str | None, record_id: int,
                   log: Callable[[str], None]) -> bool:
    """:func:`_check_columns`, with a mismatch (a schema change the binlog did not show) stopping the
    table for a resync under ``schema_changes.unfollowable: resync``; False when it stopped."""
    try:
        _check_columns(chunks.collectors[key], table_map, log_file, record_id & 0xFFFFFFFF)
    except UnsupportedDDL as exc:
        if chunks.spec.schema_changes.unfollowable != "resync":
            raise
        _stop_for_resync(chunks, key, str(exc), record_id, log)
        return False
    return True


def _check_columns(collector: _TableCollector, table_map: Any, log_file: str | None, position: int) -> None:
    """The binlog's column names for the table must be the tracked schema's (binlog_row_metadata=FULL)."""
    names = tuple(column.name for column in table_map.columns)
    if names == collector.schema.column_names:
        return
    if any(name is None for name in names):
        raise UnsupportedDDL(
            f"the binlog at {log_file}:{position} carries no column names for {collector.schema.name}: set "
            "binlog_row_metadata=FULL on the source (the precheck requires it)",
            coordinate=f"{log_file}:{position}",
        )
    raise UnsupportedDDL(
        f"the binlog's columns for {collector.schema.name} at {log_file}:{position} are {list(names)}, but the "
        f"schema tracked from the start coordinate has {list(collector.schema.column_names)}: a schema change "
        "was not seen in the binlog. Fix: apply the change to the MaxCompute tables by hand and re-run the "
        "setup (full load) for this table",
        coordinate=f"{log_file}:{position}",
    )


def _apply_ddl(
    statement: str,
    default_db: str | None,
    by_lower_name: Mapping[tuple[str, str], str],
    chunks: _Chunker,
    coordinate: BinlogCoordinate,
    log: Callable[[str], None],
    by_name: dict[tuple[str, str], tuple[str, _TableCollector]] | None = None,
) -> None:
    collectors = chunks.collectors
    try:
        parsed = parse_ddl(statement)
    except ValueError as exc:
        touched = [key for key in collectors if key.split(".", 1)[1].lower() in statement.lower()]
        if not touched:
            return  # a statement we cannot read that does not even mention a selected table
        why = f"cannot parse DDL that may change {', '.join(touched)} at {coordinate}: {exc}. Statement: {statement}"
        if chunks.spec.schema_changes.unfollowable != "resync":
            raise UnsupportedDDL(why, statement=statement, coordinate=coordinate) from exc
        for key in touched:
            _stop_for_resync(chunks, key, why, coordinate.record_id(), log)
        return
    for change in parsed.tables:
        database = change.database or default_db or ""
        key = by_lower_name.get((database.lower(), change.table.lower()))
        if change.action == "create_table":
            if key is None:
                _follow_created_table(database, change, chunks, coordinate, log, by_lower_name, by_name)
                continue
            if change.if_not_exists and collectors[key].schema.stopped_at is None:
                continue  # IF NOT EXISTS on a migrated table that exists: a no-op
            change = replace(change, action="unsupported", reason="CREATE TABLE of a migrated table's name (re-created)")
        if key is None or change.action == "ignored" and change.default_charset is None:
            continue
        collector = collectors[key]
        if collector.skips(coordinate.record_id()) and change.action != "unsupported":
            continue  # the table left the migration (or its resynced _base holds the change); only a table taking its name is an error
        kinds = [change.action]
        if change.action == "rename_columns":  # MODIFY / CHANGE with a definition, and/or a new name
            kinds = ["modify_columns"] * any(r.definition is not None for r in change.renamed)
            kinds += ["rename_columns"] * any(r.new.lower() != r.old.lower() for r in change.renamed)
        resync_kind = next((kind for kind in kinds if chunks.policy(kind) == "resync"), None)
        for kind in kinds:
            if chunks.policy(kind) == "fail":
                raise UnsupportedDDL(
                    f"{_DDL_KINDS[kind]} on migrated table {key} at {coordinate}, and schema_changes."
                    f"{_POLICY_FIELDS[kind]} is `fail`: nothing after the previous interval was written. Fix: set it "
                    f"to `follow`, or apply the change in MaxCompute by hand and re-run the setup (full load) for {key}. "
                    f"Statement: {statement.strip()}",
                    statement,
                    coordinate,
                )
        if resync_kind is not None:
            _stop_for_resync(chunks, key, f"{_DDL_KINDS[resync_kind]} at {coordinate} (schema_changes."
                             f"{_POLICY_FIELDS[resync_kind]} is `resync`): {statement.strip()}", coordinate.record_id(), log)
            continue
        try:
            _apply_change(key, change, statement, chunks, coordinate, log)
        except UnsupportedDDL as exc:
            if chunks.spec.schema_changes.unfollowable != "resync":
                raise
            _stop_for_resync(chunks, key, str(exc), coordinate.record_id(), log)


def _stop_for_resync(chunks: _Chunker, key: str, why: str, record_id: int, log: Callable[[str], None]) -> None:
    """``key`` stops at a change the batch does not follow (``schema_changes.unfollowable: resync``, or a
    kind's policy `resync`): the images before it are written, the later ones skipped until a resync
    (core/resync.py) loads the table's _base again. The other tables go on."""
    collector = chunks.collectors[key]
    if collector.schema.awaits_resync:
        return
    if collector.schema.stopped_at is not None:
        # Dropped or renamed away, and now a table takes its name (CREATE after DROP, an online schema
        # change's cut-over RENAME): the stop stays where it was, a resync loads the new table.
        collector.schema = collector.schema.with_stop(collector.schema.stopped_at, RESYNC_REASON + why)
        return
    chunks.flush(key)
    collector.schema = collector.schema.with_stop(record_id, RESYNC_REASON + why)
    log(f"WARNING {key}: stopped for a resync: {why}. The other tables go on; the incremental DAG starts the "
        "resync (or trigger it by hand: the setup DAG's resync_tables)")


def _apply_change(
    key: str,
    change: Any,
    statement: str,
    chunks: _Chunker,
    coordinate: BinlogCoordinate,
    log: Callable[[str], None],
) -> None:
    """Follow one parsed change of migrated table ``key``, or raise UnsupportedDDL naming why not."""
    collector = chunks.collectors[key]
    # Each change is checked in full before the images before it are flushed: a DDL the batch refuses
    # must leave nothing written (a flush opens the partition's upload).
    if change.action == "drop_columns":
        schema = collector.schema
        for dropped in change.dropped:
            if schema.column(dropped.name) is None and dropped.if_exists:
                continue
            try:
                schema = schema.without_column(dropped.name)
            except ValueError as exc:
                message = _unsupported_message(key, replace(change, reason=str(exc)), statement, coordinate)
                raise UnsupportedDDL(message, statement, coordinate) from exc
            log(f"{key}: column {dropped.name} dropped at {coordinate}; its MaxCompute column stays, later rows NULL")
        chunks.flush(key)  # the images before it, in the schema they were written in
        collector.schema = schema
        return
    if change.action == "rename_columns":
        schema = collector.schema
        widened: set[str] = set()
        for renamed in change.renamed:
            column = schema.column(renamed.old)
            problem = None if column is None else _changed_definition(chunks.spec, schema, column, renamed.definition)
            try:
                if problem:
                    raise ValueError(f"{renamed.old}: {problem}")
                if renamed.definition is not None and column is not None:
                    schema = schema.with_column_definition(renamed.old, renamed.definition.column)
                    if _widened_type(chunks.spec, column, renamed.definition.column):
                        widened.add(renamed.new.lower())
                if renamed.new != renamed.old:
                    schema = schema.with_renamed_column(renamed.old, renamed.new)
            except ValueError as exc:
                message = _unsupported_message(key, replace(change, reason=str(exc)), statement, coordinate)
                raise UnsupportedDDL(message, statement, coordinate) from exc
            log(f"{key}: column {renamed.old} {'renamed to ' + renamed.new if renamed.new != renamed.old else 'redefined'} "
                f"at {coordinate}; it stays in the same MaxCompute column"
                f"{', widened in place' if renamed.new.lower() in widened else ''}")
        chunks.flush(key)  # the images before it, under the old definition
        collector.schema = schema
        chunks.columns_changed(key, widened)
        return
    if change.action in ("drop_table", "rename_table"):
        chunks.flush(key)  # the images before it
        collector.schema = collector.schema.with_stop(coordinate.record_id(), change.reason)
        log(f"WARNING {key}: {change.reason} at {coordinate}: the table leaves the migration (its replica keeps "
            "its state as of then; the other tables go on). To migrate it again, re-run the setup for it")
        return
    if change.action == "truncate":
        chunks.flush(key)  # the images before it
        collector.schema = collector.schema.with_truncate(coordinate.record_id())
        log(f"{key}: TRUNCATE TABLE at {coordinate}: the replica is empty from there on")
        return
    if change.action == "unsupported":
        raise UnsupportedDDL(_unsupported_message(key, change, statement, coordinate), statement, coordinate)
    added_here: list[AddedColumn] = []
    schema = collector.schema
    if change.default_charset:
        schema = replace(schema, default_charset=change.default_charset)
    for added in change.added:
        if added.existing_rows is not None and not added.existing_rows.known:
            raise UnsupportedDDL(
                f"ADD COLUMN {added.column.name} on {key} at {coordinate} gives the existing rows a value through "
                f"{added.fills_existing_rows} that only the server knows (no row event carries it), so the replica "
                "could not show it. Fix: add such columns as NULL (or with a constant DEFAULT) and fill them with "
                "UPDATE (the updates are migrated), or add the column in MaxCompute by hand and re-run the setup "
                f"(full load) for the table. Statement: {statement}",
                statement,
                coordinate,
            )
        if schema.column(added.column.name) is not None:
            if added.if_not_exists:
                continue
            raise UnsupportedDDL(
                f"ADD COLUMN {added.column.name} on {key} at {coordinate}, but the tracked schema already has "
                f"that column. Statement: {statement}",
                statement,
                coordinate,
            )
        try:
            schema = schema.with_added_column(added, coordinate.record_id())
        except ValueError as exc:
            raise UnsupportedDDL(f"{exc} (at {coordinate}). Statement: {statement}", statement, coordinate) from exc
        added_here.append(added)
        log(f"{key}: column {added.column.name} {added.column.column_type} added at {coordinate}")
    chunks.flush(key)  # the images before the DDL, in the schema they were written in
    collector.added.extend(added_here)
    collector.schema = schema
    chunks.columns_added(key, added_here)


_DDL_KINDS = {"add_columns": "ADD COLUMN", "drop_columns": "DROP COLUMN", "rename_columns": "RENAME COLUMN",
              "modify_columns": "MODIFY/CHANGE COLUMN", "truncate": "TRUNCATE TABLE", "drop_table": "DROP TABLE",
              "rename_table": "RENAME TABLE"}  # fmt: skip
# The spec field (schema_changes.<field>) of each kind of DDL that has a policy.
_POLICY_FIELDS = {"add_columns": "add_column", "drop_columns": "drop_column", "rename_columns": "rename_column",
                  "modify_columns": "modify_column", "truncate": "truncate", "drop_table": "drop_table",
                  "rename_table": "rename_table"}  # fmt: skip


def _changed_definition(spec: MigrationSpec, schema: TableSchema, column: SourceColumn,
                        definition: AddedColumn | None) -> str | None:
    """Why a new definition of ``column`` (CHANGE / MODIFY) cannot be followed, or None: it keeps every
    existing value and the MaxCompute type (a longer VARCHAR, more fractional digits, ENUM/SET members
    appended, NOT NULL -> NULL ...)."""
    if definition is None:
        return None
    new = definition.column
    if definition.first or definition.after:
        return "moves the column"
    if column.nullable and not new.nullable:
        return "makes the column NOT NULL (existing NULLs would change without row events)"
    options = mapping_options(spec)
    before, after = map_type(source_column_type(column), options), map_type(source_column_type(new), options)
    if before.mc_type != after.mc_type:
        if _widened_type(spec, column, new):
            return None
        return f"changes the MaxCompute type ({column.column_type} -> {new.column_type}: {before.mc_type} -> {after.mc_type})"
    if column.data_type != new.data_type and {column.data_type, new.data_type} - _SAME_VALUES_TEXT \
            and not _integer_holds(column, new):
        return f"changes the type ({column.column_type} -> {new.column_type})"
    charset = new.character_set or schema.default_charset
    if column.character_set and charset and charset.lower() != column.character_set.lower():
        return f"changes the character set ({column.character_set} -> {charset}), re-encoding existing values"
    if _length(new) < _length(column) or (new.datetime_precision or 0) < (column.datetime_precision or 0):
        return f"narrows the column ({column.column_type} -> {new.column_type}): existing values may change"
    if (new.numeric_scale, new.numeric_precision) != (column.numeric_scale, column.numeric_precision) and \
            column.data_type in ("decimal", "float", "double"):
        return f"changes the precision ({column.column_type} -> {new.column_type})"
    if column.data_type in ("enum", "set"):
        old_members, new_members = set_members(column.column_type), set_members(new.column_type)
        if new_members[: len(old_members)] != old_members:
            return f"changes existing {column.data_type.upper()} members ({column.column_type} -> {new.column_type})"
    if column.data_type in ("char", "binary") and _length(new) != _length(column):
        return f"changes a fixed-length column's length ({column.column_type} -> {new.column_type})"
    return None


def _widened_type(spec: MigrationSpec, column: SourceColumn, new: SourceColumn) -> bool:
    """Whether ``column`` -> ``new`` keeps every source value and its MaxCompute type widens in place
    (INT -> BIGINT, DECIMAL(10,2) -> DECIMAL(14,4)): the batch widens ``_base`` and ``_log`` and the
    merge the replica, with no resync. FLOAT -> DOUBLE and anything into DECIMAL from an integer are
    resynced: MySQL rewrites such values, or MaxCompute cannot change the column in place."""
    options = mapping_options(spec)
    before, after = map_type(source_column_type(column), options), map_type(source_column_type(new), options)
    if before.mc_type == after.mc_type or not widens_in_place(before.mc_type.lower(), after.mc_type.lower()):
        return False
    if column.data_type in _INTEGER_RANGES and new.data_type in _INTEGER_RANGES:
        return _integer_holds(column, new)
    if column.data_type == new.data_type == "decimal":
        p, s = column.numeric_precision or 10, column.numeric_scale or 0
        new_p, new_s = new.numeric_precision or 10, new.numeric_scale or 0
        return new_s >= s and new_p - new_s >= p - s
    return False


# Bits of each MySQL integer type.
_INTEGER_RANGES = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32, "bigint": 64}


def _integer_holds(column: SourceColumn, new: SourceColumn) -> bool:
    """Whether integer type ``new`` holds every value of integer ``column`` (INT UNSIGNED -> BIGINT)."""
    if column.data_type not in _INTEGER_RANGES or new.data_type not in _INTEGER_RANGES:
        return False
    low, high = _integer_range(column)
    new_low, new_high = _integer_range(new)
    return new_low <= low and high <= new_high


def _integer_range(column: SourceColumn) -> tuple[int, int]:
    bits = _INTEGER_RANGES[column.data_type]
    if column.unsigned:
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


# Text types whose values read the same whichever of them holds them (VARCHAR -> TEXT and back).
_SAME_VALUES_TEXT = frozenset({"varchar", "tinytext", "text", "mediumtext", "longtext"})


def _length(column: SourceColumn) -> int:
    """The declared length of a string column (``varchar(20)``: 20; TEXT types: their longest), 0 for
    other types (an integer's display width is no length)."""
    fixed = {"tinytext": 255, "text": 65_535, "mediumtext": 16_777_215, "longtext": 4_294_967_295}
    if column.data_type in fixed:
        return fixed[column.data_type]
    if column.data_type not in ("char", "varchar", "binary", "varbinary"):
        return 0
    match = re.match(r"\w+\((\d+)\)", column.column_type)
    return int(match.group(1)) if match else 0


def _follow_created_table(
    database: str,
    change: TableDDL,
    chunks: _Chunker,
    coordinate: BinlogCoordinate,
    log: Callable[[str], None],
    by_lower_name: dict[tuple[str, str], str],
    by_name: dict[tuple[str, str], tuple[str, _TableCollector]] | None,
) -> None:
    """CREATE TABLE of a table not migrated yet: when the spec selects it, it is migrated from here (no
    snapshot: it starts empty); a definition the parser cannot follow is logged, not guessed."""
    if chunks.on_table_created is None or by_name is None:
        return
    created = change.created
    if created is None:
        log(f"WARNING CREATE TABLE {database}.{change.table} at {coordinate} is not followed ({change.reason}); if the "
            "spec selects it, re-run the setup for it")
        return
    charset = created.charset or chunks.database_charset(database)
    schema = TableSchema(database, change.table, (), key_columns=created.primary_key, default_charset=charset)
    try:
        for added in created.columns:
            schema = schema.with_added_column(replace(added, first=False, after=None))  # no rows exist: no fills
    except ValueError as exc:
        log(f"WARNING CREATE TABLE {database}.{change.table} at {coordinate} is not followed ({exc})")
        return
    key = chunks.table_created(schema)
    if key is None:
        return
    by_lower_name[(database.lower(), change.table.lower())] = key
    by_name[(database, change.table)] = (key, chunks.collectors[key])
    log(f"{key}: created at {coordinate}; migrated from its first event")


def _unsupported_message(key: str, change: TableDDL, statement: str, coordinate: BinlogCoordinate) -> str:
    return (
        f"DDL on migrated table {key} at {coordinate} cannot be replayed in MaxCompute ({change.reason}): "
        f"{statement.strip()}. Nothing after the previous interval was written. Fix: apply the change to the "
        f"MaxCompute tables by hand (or drop them) and re-run the setup (full load) for {key}; the incremental "
        "migration can then continue from the new snapshot"
    )


# --- building the _log rows ----------------------------------------------------------------------------


def _apply_filter(
    conn: pymysql.Connection, expression: str, schema: TableSchema, images: Sequence[dict], kinds: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Filter semantics for changes. INSERT/DELETE: kept when the image matches. UPDATE: both images
    match -> the U pair; only the before-image -> a DELETE of it (the row left the filtered set);
    only the after-image -> an INSERT of it (the row entered it); neither -> dropped."""
    matched_indexes = matching_images(conn, expression, schema.columns, images, schema.collations)
    matched = np.zeros(len(kinds), dtype=bool)
    if matched_indexes:
        matched[np.fromiter(matched_indexes, dtype=np.int64)] = True
    kinds = kinds.copy()
    keep = matched.copy()
    before = np.flatnonzero(kinds == _UPDATE_BEFORE)
    after = before + 1
    before_ok, after_ok = matched[before], matched[after]
    left = before_ok & ~after_ok
    entered = ~before_ok & after_ok
    kinds[before[left]] = _DELETE
    kinds[after[entered]] = _INSERT
    keep[before] = before_ok
    keep[after] = after_ok
    return kinds, keep


def _additional_arrays(
    spec: MigrationSpec, record_ids: np.ndarray, kinds: np.ndarray, timestamps: np.ndarray
) -> dict[str, pa.Array | pa.ChunkedArray]:
    """DTS's additional columns, in their order: record_id, operation_flag, utc_timestamp, before/after_flag."""
    additional = {a.role: a.name for a in spec.additional_columns()}
    kind_array = pa.array(kinds, pa.int8())
    return {
        additional["record_id"]: pa.array(record_ids, pa.int64()),
        additional["operation_flag"]: _OPERATION.take(kind_array),
        additional["utc_timestamp"]: pa.array(timestamps, pa.int64()),
        additional["before_flag"]: _BEFORE_FLAG.take(kind_array),
        additional["after_flag"]: _AFTER_FLAG.take(kind_array),
    }


def _columnar_to_arrow(
    spec: MigrationSpec, columns: Sequence[ColumnPlan], collector: _TableCollector, kinds: np.ndarray
) -> tuple[pa.Table, dict[str, dict[str, int]]]:
    """The columnar buffer's images as ``_log`` rows (no filter: those tables take the dict path)."""
    assert collector.buffer is not None
    converted, warnings = collector.buffer.to_arrow()
    arrays = _additional_arrays(
        spec, np.asarray(collector.record_ids, dtype=np.int64), kinds, np.asarray(collector.timestamps, dtype=np.int64)
    )
    count = len(kinds)
    for plan in columns:
        array = converted.get(plan.destination)
        arrays[plan.destination] = array if array is not None else pa.nulls(count, destination_arrow_type(plan))
    return pa.table(arrays), warnings


def _to_arrow(
    spec: MigrationSpec,
    columns: Sequence[ColumnPlan],
    collector: _TableCollector,
    kinds: np.ndarray,
    keep: np.ndarray | None,
) -> tuple[pa.Table, dict[str, dict[str, int]]]:
    indexes = np.flatnonzero(keep) if keep is not None else None
    images = collector.images
    none_sources = collector.none_sources
    if indexes is not None and len(indexes) != len(images):
        images = [images[i] for i in indexes]
        none_sources = [none_sources[i] for i in indexes]
        kinds = kinds[indexes]
        record_ids = np.asarray(collector.record_ids, dtype=np.int64)[indexes]
        timestamps = np.asarray(collector.timestamps, dtype=np.int64)[indexes]
    else:
        record_ids = np.asarray(collector.record_ids, dtype=np.int64)
        timestamps = np.asarray(collector.timestamps, dtype=np.int64)
    arrays = _additional_arrays(spec, record_ids, kinds, timestamps)
    warnings: dict[str, dict[str, int]] = {}
    for plan in columns:
        name = plan.source.name
        chunks: list[pa.Array] = []
        for offset in range(0, len(images), CONVERSION_BATCH_ROWS):
            batch = images[offset : offset + CONVERSION_BATCH_ROWS]
            sources = none_sources[offset : offset + CONVERSION_BATCH_ROWS]
            converted = convert_binlog_values(plan, [image.get(name) for image in batch], [s.get(name) for s in sources])
            chunks.append(converted.array)
            for warning, count in converted.warnings.items():
                bucket = warnings.setdefault(plan.destination, {})
                bucket[warning] = bucket.get(warning, 0) + count
        target = destination_arrow_type(plan)
        arrays[plan.destination] = pa.chunked_array(chunks, type=target) if chunks else pa.array([], type=target)
    return pa.table(arrays), warnings

