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

A table estimated above ``full_load.shard_rows`` is loaded by several tasks instead (docs/full-load-shards.md):
:func:`plan_full_load` records its plan, its one upload session and its shards (disjoint runs of its
key ranges) before any shard runs; :meth:`FullLoader.load_shard` uploads one shard's missing blocks
into that session; :meth:`FullLoader.commit_sharded` commits it once and marks the table done. Both
paths share the steps above (:meth:`FullLoader._open_table`, :meth:`FullLoader._upload_missing`).
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

from airflow_provider_polar_mc.core import cancellation, failpoints, sqltext
from airflow_provider_polar_mc.core.binlog.coordinates import capture
from airflow_provider_polar_mc.core.destination.checkpoint import CheckpointStore
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.destination.upload import TableUpload
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.model import BinlogCoordinate, TablePlan
from airflow_provider_polar_mc.core.planning import describe_table_schema, plan_migration
from airflow_provider_polar_mc.core.retry import RetryPolicy
from airflow_provider_polar_mc.core.selection import TableSelection
from airflow_provider_polar_mc.core.source.chunking import KeyRange, plan_ranges, sql_literal
from airflow_provider_polar_mc.core.source.snapshot import connectorx_uri, read_snapshot_range
from airflow_provider_polar_mc.core.throttle import Throttle
from airflow_provider_polar_mc.exceptions import ConfigError, PolarMcError
from airflow_provider_polar_mc.spec import MigrationSpec

SNAPSHOT_KIND = "snapshot"
SNAPSHOT_KEY = "c0"
TABLE_KIND = "full_load"
# One record per shard (key "<table key>#<shard>"): each shard writes only its own key, never racing another.
SHARD_KIND = "full_load_shard"


class ShardedLoadError(PolarMcError):
    """A sharded table's recorded plan does not allow the step asked for: no shard plan, a session
    that can no longer be attached, a shard that does not match the plan, blocks missing at the
    commit. The message names the table, the shards and ranges, and the task to run again; retrying
    the same task cannot help."""


def table_key(plan: TablePlan) -> str:
    """The checkpoint key of a table's full load (kind :data:`TABLE_KIND`)."""
    return selection_key(plan.selection)


def selection_key(selection: TableSelection) -> str:
    return f"{selection.source_name}->{selection.base_table}"


def base_load_id(store: CheckpointStore, selection: TableSelection) -> str | None:
    """The upload session that loaded the table's ``_base`` (None before a full load, or without one):
    it changes when the base is loaded again."""
    state = store.get(TABLE_KIND, selection_key(selection)) or {}
    return state.get("upload_id") if state.get("status") == "done" else None


def forget_loads(store: CheckpointStore, plans: list[TablePlan]) -> list[str]:
    """Make the next full load of ``plans`` load them again (a reload chosen in the setup's trigger form,
    without incremental migration): a table marked done loses the mark, so a new overwrite session
    replaces its ``_base`` in one commit. Returns the tables (``db.table``) that were loaded."""
    forgotten = []
    for plan in plans:
        previous = base_load_id(store, plan.selection)
        if previous is not None:
            store.put(TABLE_KIND, table_key(plan), {"status": "reload", "previous_upload_id": previous})
            forgotten.append(plan.selection.source_name)
    return forgotten


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
    shard: int | None = None  # the shard's index when one shard of a sharded table was loaded
    upload_id: str = ""  # the Tunnel session that holds (or committed) the table's rows

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class FullLoadShard:
    """One shard of a sharded table, as handed to a mapped task (JSON-safe through :meth:`to_dict`):
    the recorded ranges ``ranges[first_range:stop_range]`` of table ``table`` (``db.table``). The
    store's plan is the truth; this descriptor only says which shard to run and lets it check that
    the plan it finds is the one it was planned with."""

    table: str
    index: int
    count: int
    first_range: int
    stop_range: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FullLoadShard:
        return cls(str(data["table"]), int(data["index"]), int(data["count"]), int(data["first_range"]), int(data["stop_range"]))

    @property
    def name(self) -> str:
        return f"{self.table} shard {self.index + 1}/{self.count}"


@dataclass
class FullLoadPlan:
    """Who loads what: ``groups`` of small tables (one task each, :meth:`FullLoader.load_table`),
    ``shards`` of big tables (one task each, :meth:`FullLoader.load_shard`), and ``sharded`` tables
    (committed by one final task, :meth:`FullLoader.commit_sharded`)."""

    groups: list[list[str]]
    shards: list[FullLoadShard]

    @property
    def sharded(self) -> list[str]:
        return sorted({s.table for s in self.shards})


def shard_count(estimated_rows: int, shard_rows: int, range_count: int) -> int:
    """How many shards a table gets: ceil(estimated_rows / shard_rows), at most one per key range; 1
    unless the estimate exceeds ``shard_rows``."""
    if shard_rows < 1:
        raise ValueError("shard_rows must be at least 1")
    if estimated_rows <= shard_rows:
        return 1
    return max(1, min(range_count, -(-estimated_rows // shard_rows)))


def assign_shards(range_count: int, shards: int) -> list[tuple[int, int]]:
    """Split ``range_count`` key ranges into ``shards`` contiguous runs ``[start, stop)`` of positions,
    sizes differing by at most one (ranges hold about ``chunk_rows`` rows each when planned). The same
    arguments always give the same runs; together they cover every range once."""
    if range_count < 1:
        raise ValueError("a table has at least one key range")
    shards = max(1, min(shards, range_count))
    return [(range_count * i // shards, range_count * (i + 1) // shards) for i in range(shards)]


def _valid_bounds(bounds: Any, range_count: int) -> bool:
    """Whether a recorded shard assignment covers ``range_count`` ranges with contiguous non-empty runs."""
    if not isinstance(bounds, list) or not bounds:
        return False
    position = 0
    for run in bounds:
        if not (isinstance(run, list) and len(run) == 2 and run[0] == position and run[1] > run[0]):
            return False
        position = run[1]
    return position == range_count


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


@dataclass
class _OpenTable:
    """A table being loaded: its checkpoint key and state, recorded ranges, open session."""

    key: str
    state: dict[str, Any]
    ranges: list[KeyRange]
    upload: TableUpload
    resumed: bool


def _ranges_text(indexes: list[int]) -> str:
    """``[3, 4, 5, 9]`` as ``3-5, 9`` (a shard's missing ranges are usually one run)."""
    runs: list[list[int]] = []
    for i in sorted(indexes):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)


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

    @classmethod
    def for_spec(
        cls,
        spec: MigrationSpec,
        endpoint: MySqlEndpoint,
        destination: MaxComputeDestination,
        store: CheckpointStore,
        *,
        log: Callable[[str], None] = lambda message: None,
        progress_interval: float = 5.0,
    ) -> FullLoader:
        """A loader with the spec's chunk size, parallelism and ``throttle.full`` limits (per task)."""
        throttle = Throttle(
            rows_per_s=spec.throttle.full.rows_per_s,
            mb_per_s=spec.throttle.full.mb_per_s,
            queries_per_s=spec.throttle.full.source_qps,
        )
        return cls(
            endpoint,
            destination,
            store,
            chunk_rows=spec.full_load.chunk_rows,
            parallelism=spec.full_load.parallelism,
            throttle=throttle,
            log=log,
            progress_interval=progress_interval,
        )

    # -- one table, one task -----------------------------------------------------------------------
    def load_table(self, plan: TablePlan, *, generation: str | None = None) -> TableLoadResult:
        """Load one table into ``_base`` (overwrite). ``generation`` names a later load of the same table
        (a resync, core/resync.py): its own checkpoint, so it is not taken for the setup's load."""
        sel = plan.selection
        result = TableLoadResult(sel.source_name, sel.base_table)
        started = time.monotonic()
        table = self._open_table(plan, result, started, generation)
        if table is None:
            return result
        self._upload_missing(plan, table.upload, table.ranges, table.resumed, result, sel.source_name, plan.source.estimated_rows)
        table.upload.commit([r.index for r in table.ranges])
        self._mark_done(table.key, table.state, result, started, table.upload)
        self._log_loaded(result)
        return result

    def _open_table(
        self, plan: TablePlan, result: TableLoadResult, started: float, generation: str | None = None
    ) -> _OpenTable | None:
        """The table's key ranges and its upload session, both recorded before any block is uploaded
        (creating them on the first call, re-attaching later); None when nothing is left to upload:
        loaded by an earlier run (``result.skipped``), or committed by an attempt that died before
        recording it (marked done now)."""
        sel = plan.selection
        key = table_key(plan) + (f"#{generation}" if generation else "")
        state = self.store.get(TABLE_KIND, key) or {}
        if state.get("status") == "done":
            self._skip(result, state)
            return None
        ranges = self._ranges(plan, key, state)
        upload = TableUpload(self.destination, sel.base_table, overwrite=True)
        resumed = upload.open(state.get("upload_id"))
        if not resumed or state.get("upload_id") != upload.upload_id:
            state = {**state, "upload_id": upload.upload_id, "status": "loading"}
            self.store.put(TABLE_KIND, key, state)
        if upload.committed:
            # An earlier attempt committed and died before recording it.
            self._mark_done(key, state, result, started, upload)
            return None
        return _OpenTable(key, state, ranges, upload, resumed)

    def _skip(self, result: TableLoadResult, state: dict[str, Any]) -> None:
        self.log(f"{result.source}: already loaded into {result.table} ({state.get('rows', 0):,} rows); skipping")
        result.skipped, result.rows, result.upload_id = True, int(state.get("rows", 0)), str(state.get("upload_id", ""))

    def _upload_missing(
        self,
        plan: TablePlan,
        upload: TableUpload,
        ranges: list[KeyRange],
        resumed: bool,
        result: TableLoadResult,
        name: str,
        estimated_rows: int,
    ) -> None:
        """Upload the blocks of ``ranges`` the session does not hold yet (all of them in a new session),
        each into its range's block id; the Tunnel's block list is the truth about what is done."""
        done = upload.uploaded_blocks() if resumed else set()
        todo = [r for r in ranges if r.index not in done]
        result.blocks, result.blocks_resumed = len(ranges), len(ranges) - len(todo)
        if result.blocks_resumed:
            self.log(f"{name}: resuming upload {upload.upload_id}: {result.blocks_resumed} of {len(ranges)} blocks already uploaded")
        progress = Progress(name, estimated_rows, self.log, self.progress_interval)
        self._copy_ranges(plan, todo, upload, result, progress)

    def _log_loaded(self, result: TableLoadResult, name: str | None = None) -> None:
        self.log(
            f"{name or result.source} -> {result.table}: {result.rows:,} rows, {result.bytes / 1e6:,.1f} MB in "
            f"{result.seconds:,.1f}s ({result.rows / max(result.seconds, 1e-9):,.0f} rows/s)"
            + (f"; warnings {result.warnings}" if result.warnings else "")
        )

    # -- one table, several tasks (shards) -------------------------------------------------------------
    def plan_shards(self, plan: TablePlan, shard_rows: int) -> list[FullLoadShard]:
        """Record the table's plan for a sharded load: key ranges, the one upload session and the
        shards' runs of ranges, before any shard uploads (run it once, before the shards: shards never
        plan). A plan recorded earlier is kept, so every shard and every retry sees the same one.
        Returns the shards to run; [] when the table is loaded (or committed) already."""
        sel = plan.selection
        result = TableLoadResult(sel.source_name, sel.base_table)
        table = self._open_table(plan, result, time.monotonic())
        if table is None:
            return []
        bounds = table.state.get("shards")
        if not _valid_bounds(bounds, len(table.ranges)):
            wanted = shard_count(plan.source.estimated_rows, shard_rows, len(table.ranges))
            bounds = [list(run) for run in assign_shards(len(table.ranges), wanted)]
            table.state = {**table.state, "shards": bounds}
            self.store.put(TABLE_KIND, table.key, table.state)
        self.log(
            f"{sel.source_name}: ~{plan.source.estimated_rows:,} rows in {len(table.ranges)} key ranges, loaded by "
            f"{len(bounds)} shards into upload session {table.upload.upload_id}"
        )
        return [FullLoadShard(sel.source_name, i, len(bounds), a, b) for i, (a, b) in enumerate(bounds)]

    def load_shard(self, plan: TablePlan, shard: FullLoadShard) -> TableLoadResult:
        """Upload the blocks of one shard's ranges that the table's session lacks (a retry after a
        crash re-attaches and uploads only those, into the same block ids); never commits and never
        touches another shard's blocks. Skipped when the table is done or its session committed."""
        sel = plan.selection
        key = table_key(plan)
        result = TableLoadResult(sel.source_name, sel.base_table, shard=shard.index)
        started = time.monotonic()
        state = self.store.get(TABLE_KIND, key) or {}
        if state.get("status") == "done":
            self._skip(result, state)
            return result
        ranges, upload = self._attach_sharded(plan, state, shard.name)
        bounds = state["shards"]
        if shard.count != len(bounds) or not 0 <= shard.index < len(bounds) or bounds[shard.index] != [shard.first_range, shard.stop_range]:
            raise ShardedLoadError(
                f"{shard.name} (ranges {shard.first_range}..{shard.stop_range - 1}) does not match the recorded plan "
                f"of {len(bounds)} shards {bounds}: the shards were planned again after this task was created. Clear "
                "the setup DAG's plan_full_load_groups task with its downstream tasks, so the shards are mapped anew"
            )
        if upload.committed:
            self.log(f"{shard.name}: the upload session {upload.upload_id} is committed already; the commit marks the table done")
            result.skipped = True
            return result
        start, stop = bounds[shard.index]
        mine = ranges[start:stop]
        estimated = plan.source.estimated_rows * len(mine) // max(len(ranges), 1)
        self._upload_missing(plan, upload, mine, True, result, shard.name, estimated)
        result.seconds = time.monotonic() - started
        self._record_shard(key, shard, upload.upload_id, result)
        self._log_loaded(result, shard.name)
        return result

    def commit_sharded(self, plan: TablePlan) -> TableLoadResult:
        """Commit a sharded table's one upload session with every range's block, then mark it done.
        Fails naming the shards and ranges whose blocks are missing; after a crash between the commit
        and the mark, a re-run finds the session committed and only marks it."""
        sel = plan.selection
        key = table_key(plan)
        result = TableLoadResult(sel.source_name, sel.base_table)
        started = time.monotonic()
        state = self.store.get(TABLE_KIND, key) or {}
        if state.get("status") == "done":
            self._skip(result, state)
            return result
        ranges, upload = self._attach_sharded(plan, state, f"the commit of {sel.source_name}")
        bounds = state["shards"]
        if not upload.committed:
            held = upload.uploaded_blocks()
            missing = {
                i: [r.index for r in ranges[a:b] if r.index not in held]
                for i, (a, b) in enumerate(bounds)
            }
            missing = {i: blocks for i, blocks in missing.items() if blocks}
            if missing:
                listed = "; ".join(
                    f"shard {i + 1}/{len(bounds)} (map index {i}) lacks ranges {_ranges_text(blocks)}"
                    for i, blocks in missing.items()
                )
                raise ShardedLoadError(
                    f"{sel.source_name}: cannot commit upload session {upload.upload_id} of {sel.base_table}: {listed}. "
                    "Run those full_load_shard task instances again (clear them; each uploads only its missing "
                    "blocks), then this commit"
                )
            upload.commit([r.index for r in ranges])
        # Every block was uploaded by the shards: count the committed rows in MaxCompute.
        result.blocks = result.blocks_resumed = len(ranges)
        result.warnings = self._shard_warnings(key, upload.upload_id, len(bounds))
        self._mark_done(key, state, result, started, upload)
        self._log_loaded(result)
        return result

    def _attach_sharded(self, plan: TablePlan, state: dict[str, Any], who: str) -> tuple[list[KeyRange], TableUpload]:
        """The recorded ranges and the table's one session, re-attached; never a new session (blocks
        written into a session of one's own would never be committed)."""
        sel = plan.selection
        if not (state.get("ranges") and state.get("upload_id") and _valid_bounds(state.get("shards"), len(state["ranges"]))):
            raise ShardedLoadError(
                f"{who}: no shard plan is recorded for {sel.source_name}: the shards of a table are planned (key ranges, "
                "upload session, shards) before they run, by the setup DAG's task plan_full_load_groups "
                "(core: plan_full_load). Run the setup DAG (or clear plan_full_load_groups with its downstream tasks)"
            )
        upload = TableUpload(self.destination, sel.base_table, overwrite=True)
        if not upload.attach(state["upload_id"]):
            raise ShardedLoadError(
                f"{who}: the upload session {state['upload_id']} of {sel.base_table} can no longer be attached (expired "
                "or removed), so the blocks uploaded into it are gone. Clear the setup DAG's plan_full_load_groups task "
                "with its downstream tasks: the planning opens a new session and every shard uploads again"
            )
        return [KeyRange.from_dict(r) for r in state["ranges"]], upload

    def _record_shard(self, key: str, shard: FullLoadShard, upload_id: str, result: TableLoadResult) -> None:
        """This shard's warnings (added to what a completed earlier attempt of it recorded for the same
        session), for the commit to report; under the shard's own key."""
        shard_key = f"{key}#{shard.index}"
        warnings = dict(result.warnings)
        earlier = self.store.get(SHARD_KIND, shard_key) if result.blocks_resumed else None
        if earlier and earlier.get("upload_id") == upload_id:
            for k, v in earlier.get("warnings", {}).items():
                warnings[k] = warnings.get(k, 0) + int(v)
        self.store.put(SHARD_KIND, shard_key, {"upload_id": upload_id, "blocks": result.blocks, "warnings": warnings})

    def _shard_warnings(self, key: str, upload_id: str, shards: int) -> dict[str, int]:
        records = self.store.items(SHARD_KIND)
        warnings: dict[str, int] = {}
        for i in range(shards):
            record = records.get(f"{key}#{i}")
            if record and record.get("upload_id") == upload_id:
                for k, v in record.get("warnings", {}).items():
                    warnings[k] = warnings.get(k, 0) + int(v)
        return warnings

    # -- shared bookkeeping ------------------------------------------------------------------------------
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
        result.upload_id = upload.upload_id
        self.store.put(
            TABLE_KIND,
            key,
            {**state, "status": "done", "rows": result.rows, "upload_id": upload.upload_id, "warnings": result.warnings},
        )

    # -- ranges, in parallel ----------------------------------------------------------------------
    def _copy_ranges(self, plan: TablePlan, ranges: list[KeyRange], upload: TableUpload, result: TableLoadResult, progress: Progress) -> None:
        lock = threading.Lock()

        def copy(r: KeyRange) -> None:
            cancellation.check()  # killed (on_kill): no further range is read or uploaded
            failpoints.reached("full_load.range")
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


def plan_full_load(
    spec: MigrationSpec,
    endpoint: MySqlEndpoint,
    destination: MaxComputeDestination,
    store: CheckpointStore,
    *,
    max_groups: int,
    plans: list[TablePlan] | None = None,
    retry: RetryPolicy | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> FullLoadPlan:
    """Decide who loads each selected table (``plans``: read from the source when None).

    Tables estimated above ``full_load.shard_rows`` are sharded: C0 and their snapshot schemas are
    recorded first (with incremental migration; a shard reads rows, so both must hold before it
    runs), then each table's plan, session and shards (:meth:`FullLoader.plan_shards`). The other
    tables are grouped as always (:func:`group_tables`); their tasks record C0 themselves.
    """
    if plans is None:
        with endpoint.session(retry, log=log) as conn:
            plans = plan_migration(spec, conn)
    shard_rows = spec.full_load.shard_rows
    # Without full migration nothing is loaded: the group tasks only record where incremental starts.
    big = [p for p in plans if "full" in spec.migration_types and p.source.estimated_rows > shard_rows]
    small = [p for p in plans if p.source.estimated_rows <= shard_rows or "full" not in spec.migration_types]
    # Checked before anything is recorded (a recorded plan is kept): ceil(rows / shard_rows) bounds each table.
    most = sum(shard_count(p.source.estimated_rows, shard_rows, p.source.estimated_rows) for p in big)
    if most > max_groups:
        total = sum(p.source.estimated_rows for p in big)
        raise ConfigError(
            f"the tables above full_load.shard_rows ({shard_rows:,} rows) need up to {most} shards, more than the "
            f"{max_groups} mapped tasks allowed (Airflow's max_map_length): raise full_load.shard_rows to at least "
            f"{-(-total // max_groups):,}"
        )
    shards: list[FullLoadShard] = []
    if big:
        # Imported here: core.incremental imports core.intervals, which imports this module.
        from airflow_provider_polar_mc.core.incremental import record_snapshot_schemas

        if "incremental" in spec.migration_types:
            c0 = retry.call(lambda: record_snapshot_coordinate(store, endpoint), log=log) if retry else record_snapshot_coordinate(store, endpoint)
            log(f"incremental migration starts at the snapshot coordinate {c0}")
            with endpoint.session(retry, log=log) as conn:
                schemas = {
                    p.selection.source_name: describe_table_schema(conn, p.selection.source_database, p.selection.source_table)
                    for p in big
                }
            record_snapshot_schemas(store, schemas)
        loader = FullLoader.for_spec(spec, endpoint, destination, store, log=log)
        for p in big:
            shards += loader.plan_shards(p, shard_rows)
    groups = group_tables({p.selection.source_name: p.source.data_bytes for p in small}, max_groups) if small else []
    log(f"full load: {len(small)} tables in {len(groups)} groups, {len({s.table for s in shards})} tables in {len(shards)} shards")
    return FullLoadPlan(groups, shards)


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
