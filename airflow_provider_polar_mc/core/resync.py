"""Resynchronising one table: its ``_base`` loaded again at a new binlog coordinate (a new generation)
while the other tables' batches go on (docs/schema-changes.md, "Resync").

A batch stops a table at a change it cannot follow (``schema_changes.unfollowable: resync``, or a
kind's policy ``resync``) and records a request here; a user can request one by hand too. A resync
of table T runs, each step recorded before the next (kind :data:`RESYNC_KIND`, key ``db.table``), so a
retry resumes where the last attempt died:

1. ``pending`` (generation g): from here, a batch whose interval ends after this moment waits for step 2
   rather than load T with the schema it would not know.
2. The coordinate C_g is captured, T described at it, its MaxCompute tables made to take the new
   schema, and ``loading`` recorded with both. From here the batches read T again: the interval
   holding C_g starts T at C_g in the new schema (its events before C_g are in the new ``_base``), the
   later ones as usual. So the other tables never wait for the copy, and neither does T's ``_log``.
3. T is full-loaded into ``_base`` (overwrite, one Tunnel session of its own, resumable like any full
   load); ``done`` records the session. The merge of an interval ending after C_g waits for this
   (it skips T until then); the first merge after rebuilds T's replica from the new ``_base`` plus
   the ``_log`` rows after C_g, then goes on incrementally.

Convergence is the full load's: C_g is captured before the copy reads a row, every change after C_g
is in ``_log``, and per key the newest change wins over the copied row.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from airflow_provider_polar_mc.core import intervals
from airflow_provider_polar_mc.core.binlog.coordinates import capture
from airflow_provider_polar_mc.core.binlog.schema_history import TableSchema
from airflow_provider_polar_mc.core.destination.checkpoint import CheckpointStore
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.full_load import FullLoader, TableLoadResult, base_load_id
from airflow_provider_polar_mc.core.model import BinlogCoordinate, TablePlan
from airflow_provider_polar_mc.core.planning import describe_table_schema, only_tables, plan_migration
from airflow_provider_polar_mc.core.retry import RetryPolicy
from airflow_provider_polar_mc.core.schema_plan import EvolvedColumns, evolve_columns
from airflow_provider_polar_mc.exceptions import ResyncError, ResyncPending

__all__ = ["ResyncError", "ResyncPending", "TableResync", "merge_base", "reloads", "request_resync"]
from airflow_provider_polar_mc.spec import MigrationSpec

RESYNC_KIND = "resync"
REQUESTED, PENDING, LOADING, DONE = "requested", "pending", "loading", "done"


def request_resync(store: CheckpointStore, table: str, reason: str, stopped_at: int) -> bool:
    """Record that ``table`` (``db.table``), stopped at record_id ``stopped_at``, needs a resync; False when
    one is requested or running already, or a resync at or after the stop exists (a re-run of an
    interval before it stops the table again, and must not ask for another)."""
    state = store.get(RESYNC_KIND, table) or {}
    if state.get("status") in (REQUESTED, PENDING, LOADING):
        return False
    if state.get("coordinate") and BinlogCoordinate.from_dict(state["coordinate"]).record_id() >= stopped_at:
        return False
    store.put(RESYNC_KIND, table, {**state, "status": REQUESTED, "reason": reason, "requested_at": time.time()})
    return True


def requested_resyncs(store: CheckpointStore) -> list[str]:
    """The tables with a resync requested or unfinished."""
    return sorted(name for name, state in store.items(RESYNC_KIND).items() if state.get("status") != DONE)


def resync_state(store: CheckpointStore, table: str) -> dict[str, Any] | None:
    return store.get(RESYNC_KIND, table)


def schema_from(state: Mapping[str, Any] | None) -> tuple[TableSchema, BinlogCoordinate] | None:
    """The (schema, coordinate) a resync recorded (from ``loading`` on), or None."""
    if not state or state.get("status") not in (LOADING, DONE):
        return None
    return TableSchema.from_dict(state["schema"]), BinlogCoordinate.from_dict(state["coordinate"])


class TableResync:
    """Resyncs tables of one migration, one at a time (each resumable; see the module docstring)."""

    def __init__(
        self,
        spec: MigrationSpec,
        endpoint: MySqlEndpoint,
        destination: MaxComputeDestination,
        store: CheckpointStore,
        *,
        retry: RetryPolicy | None = None,
        log: Callable[[str], None] = lambda message: None,
    ):
        self.spec = spec
        self.endpoint = endpoint
        self.destination = destination
        self.store = store
        self.retry = retry
        self.log = log

    def run(self, tables: Iterable[str], reason: str = "requested by hand") -> list[dict[str, Any]]:
        """Resync ``tables`` (``db.table``): those requested or unfinished resume, the others start a new
        generation. Returns one summary per table."""
        names = list(dict.fromkeys(tables))
        with self.endpoint.session(self.retry, log=self.log) as conn:
            plans = {p.selection.source_name: p for p in only_tables(self.spec, plan_migration(self.spec, conn), names)}
        return [self._one(plans[name], reason) for name in names]

    def _one(self, plan: TablePlan, reason: str) -> dict[str, Any]:
        name = plan.selection.source_name
        state = self.store.get(RESYNC_KIND, name) or {}
        status = state.get("status")
        if status in (None, DONE):  # a new generation, asked for by hand
            state = {"reason": reason, "generation": int(state.get("generation") or 0) + 1}
        elif status == REQUESTED:
            state = {**state, "generation": int(state.get("generation") or 0) + 1}
        generation = int(state["generation"])
        if status != LOADING:
            state = {**state, "status": PENDING, "pending_at": time.time()}
            self.store.put(RESYNC_KIND, name, state)
            state = self._start(plan, state, generation)
        coordinate = BinlogCoordinate.from_dict(state["coordinate"])
        self.log(f"{name}: resync generation {generation} at {coordinate}: loading {plan.selection.base_table} again "
                 f"({state.get('reason', reason)})")
        loader = FullLoader.for_spec(self.spec, self.endpoint, self.destination, self.store, log=self.log)
        result: TableLoadResult = loader.load_table(plan, generation=f"resync{generation}")
        state = {**state, "status": DONE, "base_load": result.upload_id, "rows": result.rows}
        self.store.put(RESYNC_KIND, name, state)
        self.log(f"{name}: resynced: {result.rows:,} rows in {plan.selection.base_table} as of {coordinate}")
        return {"table": name, "generation": generation, "coordinate": coordinate.to_dict(), "rows": result.rows,
                "base_table": plan.selection.base_table}  # fmt: skip

    def _start(self, plan: TablePlan, state: dict[str, Any], generation: int) -> dict[str, Any]:
        """Capture C_g, describe the table there, make its tables take the schema, record ``loading``."""
        selection = plan.selection
        with self.endpoint.session(self.retry, log=self.log) as conn:
            coordinate = capture(conn)
            schema = describe_table_schema(conn, selection.source_database, selection.source_table)
        self._ensure_tables(plan)
        # A fresh generation: the columns as described now (renames and drops before C_g are in the new
        # _base), no fills or truncations before it (the merge never applies them past C_g).
        schema = replace(schema, generation=generation, resumes_after=coordinate.record_id())
        state = {**state, "status": LOADING, "coordinate": coordinate.to_dict(), "schema": schema.to_dict()}
        self.store.put(RESYNC_KIND, selection.source_name, state)
        return state

    def _ensure_tables(self, plan: TablePlan) -> None:
        """The table's MaxCompute tables take its new schema. ``_base`` is created anew from it (the
        generation is loaded into it anyway) and the replica dropped (the next merge creates it from
        the new ``_base``); ``_log`` (and the snapshot table) get the missing columns and keep their
        older ones (older partitions hold them). A narrower type is taken by the wider column; a wider
        one widens the column in place (MaxCompute's CHANGE COLUMN); any other type change stops the
        resync, naming the column."""
        selection = plan.selection
        for ddl in plan.ddls:
            existing = self.destination.describe(ddl.name)
            if ddl.name.lower() == selection.base_table.lower():
                if existing is not None:
                    self.destination.drop_table(ddl.name)
                self.destination.create_table(ddl, if_not_exists=True)
                self.destination.drop_table(selection.replica_table)
                self.log(f"{ddl.name}: created anew for the resync; {selection.replica_table} is rebuilt by the next merge")
                continue
            if existing is None:
                self.destination.create_table(ddl, if_not_exists=True)
                continue
            evolved = evolve_columns(self.destination, ddl.name, ddl.columns)
            if selection.snapshot_table and self.destination.describe(selection.snapshot_table) is not None:
                snapshot = evolve_columns(self.destination, selection.snapshot_table, ddl.columns)
                evolved = replace(evolved, refused=evolved.refused + snapshot.refused)
                self._report(selection.snapshot_table, snapshot)
            self._report(ddl.name, evolved)
            if evolved.refused:
                raise ResyncError(
                    f"{ddl.name} cannot take {selection.source_name}'s new schema: {'; '.join(evolved.refused)}. Its "
                    "older partitions hold the old type. Fix: map the table to a new target (objects[].tables[]."
                    "target) and run the setup for it, or change the column back in the source"
                )

    def _report(self, table: str, evolved: EvolvedColumns) -> None:
        if evolved.widened:
            self.log(f"{table}: widened for the resync: {list(evolved.widened)}")
        if evolved.added:
            self.log(f"{table}: added columns {list(evolved.added)} for the resync")


def reloads(spec: MigrationSpec, store: CheckpointStore, plans: Iterable[TablePlan]) -> tuple[list[TablePlan], list[str]]:
    """Split tables chosen to be (re)loaded by a setup run into those the full load loads and those that
    need a resync (``db.table``): with incremental migration, a table whose ``_base`` was loaded
    already (its reload), and every table once the interval chain has started (written partitions
    lack its changes since C0, so it must start at a new coordinate). Without incremental migration
    nothing needs a resync."""
    plans = list(plans)
    if "incremental" not in spec.migration_types:
        return plans, []
    started = store.get(intervals.CHAIN_KIND, intervals.FIRST_INTERVAL_KEY) is not None
    resync = {p.selection.source_name for p in plans if started or base_load_id(store, p.selection) is not None}
    return [p for p in plans if p.selection.source_name not in resync], sorted(resync)


def merge_base(state: Mapping[str, Any] | None, end_record_id: int) -> tuple[str | None, int | None, str | None]:
    """What the merge of an interval ending at ``end_record_id`` uses for a table with resync record
    ``state``: (why it waits, or None; the resync's record_id; the new _base's upload session). No
    record, or a resync whose coordinate lies after the interval and is not finished: (None, None,
    None), the setup's _base as before."""
    if not state or state.get("status") == REQUESTED:
        return None, None, None
    status = state.get("status")
    coordinate = BinlogCoordinate.from_dict(state["coordinate"]) if state.get("coordinate") else None
    if status == DONE:
        assert coordinate is not None
        resynced = coordinate.record_id()
        if end_record_id < resynced:
            return (f"the interval ends before the table's resync at {coordinate}: its _base now holds a later "
                    "state, so the replica of then cannot be rebuilt (snapshots up to then are kept)"), None, None
        return None, resynced, str(state["base_load"])
    if coordinate is None or coordinate.record_id() <= end_record_id:
        return "waiting for its resync to load _base (the first merge after it rebuilds the replica)", None, None
    return None, None, None
