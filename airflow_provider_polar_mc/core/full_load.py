"""Full data migration: copy a table into ``<name>_base`` fast, memory-bounded, resumable, exactly once.

Per migration, the snapshot coordinate C0 is recorded (first writer wins) before any table is read;
incremental migration starts there, so base + log converge to the source while writes go on during
the load, without a global read lock (docs/architecture.md: snapshot then stream).

Per table:

1. The key-range plan (:mod:`.source.chunking`) and the Tunnel upload session id are checkpointed
   before the first block is uploaded. A retry re-attaches to the session and asks the Tunnel which
   blocks it already holds; only the missing ranges are read again, each into the same block id.
2. Ranges are read by connectorx (Rust, straight into Arrow) through the typed projection of
   :mod:`.values` (:mod:`.source.snapshot`), converted, and uploaded as one Arrow block each,
   ``parallelism`` at a time. Memory is bounded by ``parallelism x chunk_rows`` rows, whatever the
   table size.
3. One commit (with overwrite) publishes every block; then the table is marked done. A crash
   between the two is harmless: the retry finds the session committed.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from airflow_provider_polar_mc.core import sqltext
from airflow_provider_polar_mc.core.binlog.coordinates import capture
from airflow_provider_polar_mc.core.destination.checkpoint import CheckpointStore
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.destination.upload import TableUpload
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.model import BinlogCoordinate, TablePlan
from airflow_provider_polar_mc.core.source.chunking import KeyRange, plan_ranges, sql_literal
from airflow_provider_polar_mc.core.source.snapshot import connectorx_uri, read_snapshot_range
from airflow_provider_polar_mc.core.throttle import Throttle

SNAPSHOT_KIND = "snapshot"
SNAPSHOT_KEY = "c0"
TABLE_KIND = "full_load"


def record_snapshot_coordinate(store: CheckpointStore, endpoint: MySqlEndpoint) -> BinlogCoordinate:
    """Capture the source's binlog position and record it as C0 unless one is recorded already."""
    with endpoint.session() as conn:
        candidate = capture(conn)
    return BinlogCoordinate.from_dict(store.put_once(SNAPSHOT_KIND, SNAPSHOT_KEY, candidate.to_dict()))


@dataclass
class TableLoadResult:
    source: str
    table: str
    rows: int = 0
    bytes: int = 0
    blocks: int = 0
    blocks_resumed: int = 0
    seconds: float = 0.0
    skipped: bool = False  # already loaded by an earlier run
    warnings: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _libc_malloc_trim() -> Callable[[], None]:
    try:
        libc = ctypes.CDLL("libc.so.6")
        return lambda: libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return lambda: None


_malloc_trim = _libc_malloc_trim()


def release_memory() -> None:
    """Hand freed chunk buffers back to the OS (Arrow's pool and glibc keep them otherwise), so the
    peak stays at ``parallelism x chunk`` whatever the table size."""
    pa.default_memory_pool().release_unused()
    _malloc_trim()


class Progress:
    """Logs rows done of the estimate, rows/s and ETA every ``interval`` seconds (thread-safe)."""

    def __init__(self, name: str, estimated_rows: int, log: Callable[[str], None], interval: float = 5.0):
        self.name = name
        self.estimated = max(estimated_rows, 1)
        self.log = log
        self.interval = interval
        self.rows = 0
        self.started = time.monotonic()
        self._last = self.started
        self._lock = threading.Lock()

    def add(self, rows: int) -> None:
        with self._lock:
            self.rows += rows
            now = time.monotonic()
            if now - self._last < self.interval:
                return
            self._last = now
        self.log(self.line())

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.rows / elapsed
        total = max(self.estimated, self.rows)
        eta = (total - self.rows) / rate if rate else float("inf")
        return (
            f"{self.name}: {self.rows:,} of ~{total:,} rows ({100 * self.rows / total:.0f}%), "
            f"{rate:,.0f} rows/s, ETA {eta:,.0f}s"
        )


class FullLoader:
    """Loads tables of one migration. Thread-safe per table; one instance per task."""

    def __init__(
        self,
        endpoint: MySqlEndpoint,
        destination: MaxComputeDestination,
        store: CheckpointStore,
        *,
        chunk_rows: int = 100_000,
        parallelism: int = 4,
        throttle: Throttle | None = None,
        log: Callable[[str], None] = lambda message: None,
        progress_interval: float = 5.0,
    ):
        self.endpoint = endpoint
        self.destination = destination
        self.store = store
        self.throttle = throttle or Throttle()
        self.chunk_rows = chunk_rows
        self.parallelism = max(1, parallelism)
        self.log = log
        self.progress_interval = progress_interval
        self._uri = connectorx_uri(endpoint)
        self._literal = sql_literal(endpoint.charset)

    # -- one table ---------------------------------------------------------------------------------
    def load_table(self, plan: TablePlan) -> TableLoadResult:
        sel = plan.selection
        key = f"{sel.source_name}->{sel.base_table}"
        result = TableLoadResult(sel.source_name, sel.base_table)
        started = time.monotonic()
        state = self.store.get(TABLE_KIND, key) or {}
        if state.get("status") == "done":
            self.log(f"{sel.source_name}: already loaded into {sel.base_table} ({state.get('rows', 0):,} rows); skipping")
            result.skipped, result.rows = True, int(state.get("rows", 0))
            return result

        ranges = self._ranges(plan, key, state)
        upload = TableUpload(self.destination, sel.base_table, overwrite=True)
        resumed = upload.open(state.get("upload_id"))
        if not resumed or state.get("upload_id") != upload.upload_id:
            state = {**state, "upload_id": upload.upload_id, "status": "loading"}
            self.store.put(TABLE_KIND, key, state)
        if upload.committed:
            # An earlier attempt committed and died before recording it.
            self._mark_done(key, state, result, started, upload)
            return result
        done = upload.uploaded_blocks() if resumed else set()
        todo = [r for r in ranges if r.index not in done]
        result.blocks, result.blocks_resumed = len(ranges), len(ranges) - len(todo)
        if done:
            self.log(f"{sel.source_name}: resuming upload {upload.upload_id}: {len(done)} of {len(ranges)} blocks already uploaded")
        progress = Progress(sel.source_name, plan.source.estimated_rows, self.log, self.progress_interval)
        self._copy_ranges(plan, todo, upload, result, progress)
        upload.commit([r.index for r in ranges])
        self._mark_done(key, state, result, started, upload)
        self.log(
            f"{sel.source_name} -> {sel.base_table}: {result.rows:,} rows, {result.bytes / 1e6:,.1f} MB in "
            f"{result.seconds:,.1f}s ({result.rows / max(result.seconds, 1e-9):,.0f} rows/s)"
            + (f"; warnings {result.warnings}" if result.warnings else "")
        )
        return result

    def _ranges(self, plan: TablePlan, key: str, state: dict[str, Any]) -> list[KeyRange]:
        if state.get("ranges"):
            return [KeyRange.from_dict(r) for r in state["ranges"]]
        sel = plan.selection
        with self.endpoint.session() as conn:
            ranges = plan_ranges(conn, sel.source_database, sel.source_table, plan.source.key_columns, self.chunk_rows)
        # The plan is recorded before any block is uploaded: a retry must reuse the same boundaries.
        state.update(ranges=[r.to_dict() for r in ranges], status="planned")
        self.store.put(TABLE_KIND, key, state)
        self.log(f"{sel.source_name}: {len(ranges)} key ranges of up to {self.chunk_rows:,} rows")
        return ranges

    def _mark_done(self, key: str, state: dict[str, Any], result: TableLoadResult, started: float, upload: TableUpload) -> None:
        if result.blocks_resumed or result.blocks == 0:
            # Rows of blocks uploaded by an earlier attempt were not counted here: count what was committed.
            result.rows = int(self.destination.query(f"SELECT COUNT(*) FROM {sqltext.quote_mc_name(result.table)}")[0][0])
        result.seconds = time.monotonic() - started
        self.store.put(
            TABLE_KIND,
            key,
            {**state, "status": "done", "rows": result.rows, "upload_id": upload.upload_id, "warnings": result.warnings},
        )

    # -- ranges, in parallel ----------------------------------------------------------------------
    def _copy_ranges(self, plan: TablePlan, ranges: list[KeyRange], upload: TableUpload, result: TableLoadResult, progress: Progress) -> None:
        lock = threading.Lock()

        def copy(r: KeyRange) -> None:
            table, warnings = self.read_range(plan, r)
            upload.write_block(r.index, table)
            with lock:
                result.rows += table.num_rows
                result.bytes += table.nbytes
                for k, v in warnings.items():
                    result.warnings[k] = result.warnings.get(k, 0) + v
            progress.add(table.num_rows)
            del table
            release_memory()

        if self.parallelism == 1:
            for r in ranges:
                copy(r)
            return
        with ThreadPoolExecutor(self.parallelism, thread_name_prefix="full-load") as pool:
            pending: set[Future] = set()
            queue = iter(ranges)
            for r in queue:
                pending.add(pool.submit(copy, r))
                if len(pending) >= self.parallelism:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in finished:
                        f.result()  # re-raise the first failure, leaving the rest to the retry
            for f in pending:
                f.result()

    def read_range(self, plan: TablePlan, r: KeyRange) -> tuple[pa.Table, dict[str, int]]:
        """Read one key range and convert it to the destination's Arrow schema."""
        return read_snapshot_range(self._uri, self._literal, self.throttle, plan, r)


def group_tables(sizes: dict[str, int], max_groups: int) -> list[list[str]]:
    """Split tables into at most ``max_groups`` groups of similar total size (largest first, each to the
    lightest group), so a migration of thousands of tables maps onto Airflow's ``max_map_length``."""
    if max_groups < 1:
        raise ValueError("max_groups must be at least 1")
    groups: list[list[str]] = [[] for _ in range(min(max_groups, len(sizes)))]
    weights = [0] * len(groups)
    for name, size in sorted(sizes.items(), key=lambda item: (-item[1], item[0])):
        i = weights.index(min(weights))
        groups[i].append(name)
        weights[i] += max(size, 1)
    return [g for g in groups if g]
