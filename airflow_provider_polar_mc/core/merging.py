"""Which merge steps an interval's merge runs, from which state, and the bookkeeping that makes any
order of re-runs safe (docs/merge.md).

The latest replica always reflects the newest interval merged into it (its *marker*, in the checkpoint
store, kind ``replica_state``): an interval's merge never moves it back in time. With
``merge.snapshots`` every interval ending on a day (hour) boundary also writes the replica as of that
moment into the snapshot table's partition ``ds``. Per interval i (ending e_i; the marker says e_m):

- **next in line** (e_m < e_i, the normal case): the replica plus the `_log` partitions (e_m, e_i]: one
  statement reading the replica and the new partition(s), however long the migration has run (plus one
  snapshot step per day/hour boundary passed);
- **an interval the replica is past** (e_i <= e_m: a retry, a clear, a backfill): rebuild forward from the
  nearest correct state, the newest snapshot as of e_i's start or earlier (else ``_base``): its own
  snapshot and every existing snapshot up to e_m again, then the replica as of e_m, each step from the
  one before. Cost: one step per snapshot rebuilt, each reading a state plus one day (hour) of `_log`;
  without snapshots, a full rebuild;
- **first merge**, replica missing, ``_base`` loaded again, or ``merge.mode: full``: from ``_base``.

The marker is written after the replica, so a merge that dies in between runs again from the old
marker and re-applies partitions the replica already holds, which changes nothing (core/replica/merge.py).
Two merges of one table at once are not supported: the incremental DAG runs one run at a time.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_provider_polar_mc.core import intervals
from airflow_provider_polar_mc.core.binlog.schema_history import TableSchema
from airflow_provider_polar_mc.core.destination.checkpoint import CheckpointStore
from airflow_provider_polar_mc.core.model import BinlogCoordinate, SqlDestination
from airflow_provider_polar_mc.core.naming import SNAPSHOT_PARTITION_COLUMN
from airflow_provider_polar_mc.core.replica.merge import (
    BASE,
    REPLICA,
    LogRange,
    MergeFill,
    MergeTarget,
    ReplicaState,
    ensure_replica,
    run_step,
    snapshot,
)
from airflow_provider_polar_mc.core.schema_plan import plan_table
from airflow_provider_polar_mc.core.selection import TableSelection
from airflow_provider_polar_mc.core.values import existing_rows_literal
from airflow_provider_polar_mc.exceptions import IntervalNotReady
from airflow_provider_polar_mc.spec import MigrationSpec

REPLICA_STATE_KIND = "replica_state"

_DS_FORMATS = {"day": "%Y%m%d", "hour": "%Y%m%d%H"}
_DS_LENGTHS = {"day": 8, "hour": 10}
_UNIT_STEP = {"day": dt.timedelta(days=1), "hour": dt.timedelta(hours=1)}


# --- snapshot points ---------------------------------------------------------------------------------


def snapshot_ds(moment: dt.datetime, unit: str) -> str | None:
    """The ``ds`` of the snapshot as of ``moment`` when it is a day (hour) boundary in UTC, else None:
    the day (hour) that ends there, ``20261130`` (``2026113023``) for 2026-12-01T00:00Z."""
    moment = intervals.utc(moment)
    aligned = moment.replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        aligned = aligned.replace(hour=0)
    if aligned != moment:
        return None
    return (moment - _UNIT_STEP[unit]).strftime(_DS_FORMATS[unit])


def snapshot_as_of(ds: str, unit: str) -> dt.datetime | None:
    """The moment a snapshot partition ``ds`` holds the replica as of (the end of its day or hour); None
    for a value that is not a ``unit`` snapshot (another unit's, or written by someone else)."""
    if len(ds) != _DS_LENGTHS[unit] or not ds.isdigit():
        return None
    try:
        begins = dt.datetime.strptime(ds, _DS_FORMATS[unit]).replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return None
    return begins + _UNIT_STEP[unit]


def snapshot_points(after: dt.datetime, through: dt.datetime, unit: str) -> list[dt.datetime]:
    """Every day (hour) boundary in (after, through]."""
    step = _UNIT_STEP[unit]
    moment = intervals.utc(after).replace(minute=0, second=0, microsecond=0)
    if unit == "day":
        moment = moment.replace(hour=0)
    points = []
    while moment <= through:
        if moment > after:
            points.append(moment)
        moment += step
    return points


# --- the plan ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MergeStep:
    """``into`` := ``start`` (as of ``start_at``; None for ``_base``) merged with the `_log` partitions
    of the intervals in (start_at, through]."""

    start: ReplicaState
    start_at: dt.datetime | None
    into: ReplicaState
    through: dt.datetime

    @property
    def copies(self) -> bool:
        return self.start_at == self.through


@dataclass
class MergePlan:
    steps: list[MergeStep]
    through: dt.datetime  # the replica's time after the plan
    reason: str


def plan_merge(
    interval_end: dt.datetime,
    levels: Sequence[str],
    *,
    marker: dt.datetime | None,
    full: bool = False,
    unit: str | None = None,
    snapshots: Sequence[str] = (),
) -> MergePlan:
    """The steps of one interval's merge (a pure function of the recorded facts).

    ``marker``: the interval end the replica reflects (None: no usable replica). ``unit``: the snapshot
    unit (None: no snapshots); ``snapshots``: the ``ds`` values the snapshot table holds."""
    start_i, end_i = intervals.interval_of_end(interval_end, levels)
    held: dict[dt.datetime, str] = {}
    for ds in snapshots if unit else ():
        at = snapshot_as_of(ds, unit)
        if at is not None:
            held[at] = ds
    own = end_i if unit and snapshot_ds(end_i, unit) else None
    through = max(end_i, marker) if marker is not None else end_i

    def rebuilt_points() -> list[dt.datetime]:
        existing = {at for at in held if end_i <= at <= through and intervals.is_interval_end(at, levels)}
        return sorted(existing | ({own} if own else set()))

    if full or marker is None:
        start, start_at, points = BASE, None, rebuilt_points()
        reason = "merge.mode full: rebuilt from the base" if full else "first merge: built from the base"
    elif marker < end_i:
        start, start_at = REPLICA, marker
        # Boundaries that end an interval (all of them unless the partitions are coarser than the unit).
        points = [p for p in snapshot_points(marker, end_i, unit) if intervals.is_interval_end(p, levels)] if unit else []
        reason = f"the replica as of {intervals.interval_key(marker)} plus the new partitions"
    else:
        earlier = [at for at in held if at <= start_i]
        if earlier:
            start_at = max(earlier)
            start = snapshot(held[start_at])
            reason = f"re-run of an interval the replica is past: rebuilt forward from snapshot {held[start_at]}"
        else:
            start, start_at = BASE, None
            reason = "re-run of an interval the replica is past: rebuilt forward from the base (no earlier snapshot)"
        points = rebuilt_points()
    steps: list[MergeStep] = []
    for point in points:  # points only with a unit, each a boundary of it
        steps.append(MergeStep(start, start_at, snapshot(str(snapshot_ds(point, str(unit)))), point))
        start, start_at = steps[-1].into, point
    steps.append(MergeStep(start, start_at, REPLICA, through))
    return MergePlan(steps, through, reason)


# --- running it --------------------------------------------------------------------------------------


@dataclass
class MergeResult:
    table: str
    as_of: str  # the interval end the replica reflects now
    reason: str
    steps: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)  # ds partitions written
    seconds: float = 0.0
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ReplicaMerger:
    """Runs the merges of one migration's tables (one instance per task)."""

    def __init__(
        self,
        destination: SqlDestination,
        store: CheckpointStore,
        levels: Sequence[str],
        *,
        full: bool = False,
        unit: str | None = None,
        snapshot_lifecycle_days: int | None = None,
        log: Callable[[str], None] = lambda message: None,
    ):
        self.destination = destination
        self.store = store
        self.levels = tuple(levels)
        self.full = full
        self.unit = unit
        self.lifecycle = snapshot_lifecycle_days
        self.log = log
        self._done: dict[str, dict[str, Any]] | None = None

    def merge(self, target: MergeTarget, interval_end: dt.datetime, *, comment: str, base_load: str | None = None) -> MergeResult:
        """Merge interval ``interval_end`` into ``target``'s replica (and snapshots). ``base_load``
        identifies the full load of ``_base`` (its upload session): a different one than the replica was
        built from means the base was loaded again, so the replica is rebuilt from it."""
        started = time.monotonic()
        end = intervals.utc(interval_end)
        key = intervals.interval_key(end)
        first = self.store.get(intervals.CHAIN_KIND, intervals.FIRST_INTERVAL_KEY)
        if first is not None and end <= intervals.parse_interval_key(first["start"]):
            # Before the chain's first interval nothing was recorded: there is no state of that time to show.
            self.log(f"{target.replica_table}: the interval ending {key} precedes the migration's first interval; nothing to merge")
            return MergeResult(target.replica_table, key, "before the first interval", skipped=True)
        existed = self.destination.table_exists(target.replica_table)
        if target.base_record_id is not None:
            target = replace(target, casts=self._narrowed_columns(target))
        columns = ensure_replica(self.destination, target, comment, snapshot_lifecycle_days=self.lifecycle)
        state = self.store.get(REPLICA_STATE_KIND, target.replica_table)
        marker = None
        if existed and state is not None and state.get("base_load") == base_load:
            marker = intervals.parse_interval_key(state["through"])
        # The snapshots held matter only when the merge rebuilds (the next interval in line never reads
        # them): listed only then, sparing every ordinary merge a round trip.
        rebuilds = self.full or marker is None or marker >= end
        held = (
            [p[SNAPSHOT_PARTITION_COLUMN] for p in self.destination.partitions(target.snapshot_table)]
            if rebuilds and self.unit and target.snapshot_table
            else []
        )
        plan = plan_merge(end, self.levels, marker=marker, full=self.full, unit=self.unit if target.snapshot_table else None, snapshots=held)
        self._check_done(plan, first)
        result = MergeResult(target.replica_table, intervals.interval_key(plan.through), plan.reason)
        self.log(f"{target.replica_table}: merging the interval ending {key}: {plan.reason} ({len(plan.steps)} steps)")
        for step in plan.steps:
            began = time.monotonic()
            fills, truncated, log_from, start = [], None, None, step.start
            resynced = target.base_record_id
            if target.fills or target.truncated_at or resynced is not None:  # which of them lie inside this step
                low, high = self._record_ids(step)
                if resynced is not None and not step.copies and low <= resynced < high:
                    # The resynced _base is the table as of then: start there, take the log from there on.
                    start, log_from, low = BASE, resynced, resynced
                elif resynced is not None and start.kind == "base":
                    raise IntervalNotReady(
                        f"{target.replica_table}: the step through {intervals.interval_key(step.through)} lies before "
                        f"{target.base_table}'s resync, so it cannot start from the resynced _base"
                    )
                fills = [f for f in target.fills if low <= f.record_id < high]
                truncated = max((r for r in target.truncated_at if low <= r < high), default=None)
            run_step(self.destination, target, columns, start, self._log_range(step), step.into, fills, truncated, log_from)
            text = self._describe(target, step)
            result.steps.append(text)
            if step.into.kind == "snapshot":
                result.snapshots.append(step.into.ds)
            self.log(f"{target.replica_table}: {text} in {time.monotonic() - began:.1f}s")
        if marker is None or plan.through > marker:
            self.store.put(REPLICA_STATE_KIND, target.replica_table, {"through": result.as_of, "base_load": base_load})
        result.seconds = time.monotonic() - started
        return result

    def _narrowed_columns(self, target: MergeTarget) -> dict[str, str]:
        """Columns a resync narrowed: ``_base`` (created anew) has the new type, ``_log`` kept the wider one."""
        base, log = self.destination.describe(target.base_table), self.destination.describe(target.log_table)
        if base is None or log is None:
            return {}
        logged = {c.name.lower(): c.type.lower() for c in log.columns}
        return {c.name: c.type for c in base.columns if logged.get(c.name.lower(), c.type.lower()) != c.type.lower()}

    def _record_ids(self, step: MergeStep) -> tuple[int, int]:
        """[low, high): the record_ids of the changes between the step's start state and its end; a DDL
        there (a fill, a TRUNCATE) applies to this step."""
        if step.start_at is None:
            c0 = self.store.get(intervals.SNAPSHOT_KIND, intervals.SNAPSHOT_KEY)
            low = BinlogCoordinate.from_dict(c0).record_id() if c0 else 0
        else:
            low = self._end_record_id(step.start_at)
        return low, self._end_record_id(step.through)

    def _end_record_id(self, moment: dt.datetime) -> int:
        coordinate = intervals.recorded_end(self.store, moment)
        if coordinate is None:  # every interval a step reads is done (checked), so its end is recorded
            raise IntervalNotReady(f"no end coordinate is recorded for the interval ending {intervals.interval_key(moment)}")
        return coordinate.record_id()

    def _log_range(self, step: MergeStep) -> LogRange | None:
        if step.copies:
            return None
        last = intervals.interval_of_end(step.through, self.levels)
        first = None
        if step.start_at is not None:
            first_interval = (step.start_at, intervals.next_interval_end(step.start_at, self.levels))
            first = tuple(intervals.partition_values(*first_interval, self.levels))
        return LogRange(first, tuple(intervals.partition_values(*last, self.levels)))

    def _describe(self, target: MergeTarget, step: MergeStep) -> str:
        source = step.start.describe(target)
        if step.copies:
            return f"{step.into.describe(target)} := {source}"
        since = "" if step.start_at is None else f" after {intervals.interval_key(step.start_at)}"
        return (
            f"{step.into.describe(target)} := {source} + {target.log_table} partitions{since} through "
            f"{intervals.interval_key(step.through)}"
        )

    def _check_done(self, plan: MergePlan, first: dict[str, Any] | None) -> None:
        """Every interval whose partition a step reads must be loaded (marked done)."""
        if first is None:
            raise IntervalNotReady(
                "no incremental interval has run for this migration yet: run the incremental load of the interval first"
            )
        if self._done is None:
            self._done = self.store.items(intervals.INTERVAL_DONE_KIND)
        chain_start = intervals.parse_interval_key(first["start"])
        low = plan.steps[0].start_at  # the steps chain: the first one starts where the reading starts
        moment = intervals.next_interval_end(max(low, chain_start) if low is not None else chain_start, self.levels)
        missing = []
        while moment <= plan.through:
            if intervals.interval_key(moment) not in self._done:
                missing.append(intervals.interval_key(moment))
            moment = intervals.next_interval_end(moment, self.levels)
        if missing:
            raise IntervalNotReady(
                f"the incremental load of the interval ending {missing[0]} is not done"
                + (f" (nor of {len(missing) - 1} more up to {missing[-1]})" if len(missing) > 1 else "")
                + ": run it first (the merge reads its _log partition)"
            )


@dataclass(frozen=True)
class RowEffects:
    """What DDL did to a table's rows without row events: values ADD COLUMN gave existing rows, and
    TRUNCATE TABLE positions."""

    fills: tuple[MergeFill, ...] = ()
    truncated_at: tuple[int, ...] = ()


def recorded_row_effects(
    spec: MigrationSpec, schemas: Mapping[str, TableSchema], selections: Sequence[TableSelection]
) -> dict[str, RowEffects]:
    """Per table (``db.table``), what DDL did to its rows without row events, as the newest loaded
    interval's schema history records it (``intervals.newest_schemas``; it only accumulates, and a
    step applies what lies in its range)."""
    result: dict[str, RowEffects] = {}
    for selection in selections:
        schema = schemas.get(selection.source_name)
        if schema is None or not (schema.fills or schema.truncated_at):
            continue
        # Dropped columns too: a fill stays true for the rows older than its DDL.
        every = replace(schema.as_source_table(), columns=(*schema.columns, *schema.dropped))
        plans = {c.source.name.lower(): c for c in plan_table(spec, schema.destination_selection(selection), every).columns}
        fills = tuple(
            MergeFill(selection.spell(plans[f.column.lower()].destination), f.record_id,
                      existing_rows_literal(plans[f.column.lower()], f.text))
            for f in schema.fills
        )  # fmt: skip
        result[selection.source_name] = RowEffects(fills, schema.truncated_at)
    return result
