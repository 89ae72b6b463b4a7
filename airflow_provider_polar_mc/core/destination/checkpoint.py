"""Durable migration state, kept in MaxCompute next to the data.

Why MaxCompute and not Airflow's metadata database or XCom: the state must survive retries, cleared task
instances, workers on other machines and a rebuilt Airflow metadata database (docs/architecture.md: the
checkpoint store); the destination project is the one store every run of the migration already depends
on. Losing it would mean losing the coordinate that ties the base to the log, so it lives where the data
lives.

The store is one table (default ``polar_mc_state``) partitioned by migration name. Every write appends
one row through its own Tunnel upload session, and a Tunnel commit is atomic, so a row is either
entirely there or not at all. A key is resolved on read:

- :meth:`put` / :meth:`get`: the newest row wins (progress such as "interval done");
- :meth:`put_once`: the first row wins (coordinates that must never change once used, such as the end
  coordinate of an interval). Rows are ordered by (written_at, writer nonce), the same on every reader.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from odps.models import Record

from airflow_provider_polar_mc.core import failpoints, sqltext
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.model import DestColumn, TableDDL

STATE_TABLE_DDL_COLUMNS = (
    DestColumn("kind", "string", "what the key names: full_load, interval, ..."),
    DestColumn("key", "string", "the item within its kind"),
    DestColumn("value", "string", "JSON document"),
    DestColumn("written_at_us", "bigint", "writer's clock, microseconds since epoch"),
    DestColumn("writer", "string", "random nonce of the writing process, breaks ties"),
)


class CheckpointStore(Protocol):
    def get(self, kind: str, key: str) -> dict[str, Any] | None: ...

    def put(self, kind: str, key: str, value: Mapping[str, Any]) -> None: ...

    def put_once(self, kind: str, key: str, value: Mapping[str, Any]) -> dict[str, Any]: ...

    def items(self, kind: str) -> dict[str, dict[str, Any]]: ...


@dataclass(frozen=True)
class _Row:
    kind: str
    key: str
    value: dict[str, Any]
    written_at_us: int
    writer: str

    @property
    def order(self) -> tuple[int, str]:
        return (self.written_at_us, self.writer)


def _newest(rows: list[_Row], kind: str, key: str) -> dict[str, Any] | None:
    matching = [r for r in rows if r.kind == kind and r.key == key]
    return max(matching, key=lambda r: r.order).value if matching else None


def _oldest(rows: list[_Row], kind: str, key: str) -> dict[str, Any] | None:
    matching = [r for r in rows if r.kind == kind and r.key == key]
    return min(matching, key=lambda r: r.order).value if matching else None


def _newest_per_key(rows: list[_Row], kind: str) -> dict[str, dict[str, Any]]:
    latest: dict[str, _Row] = {}
    for r in rows:
        if r.kind == kind and (r.key not in latest or r.order > latest[r.key].order):
            latest[r.key] = r
    return {k: r.value for k, r in latest.items()}


class MaxComputeCheckpointStore:
    """A :class:`CheckpointStore` in a MaxCompute table, one partition per migration."""

    def __init__(self, destination: MaxComputeDestination, migration: str, table: str = "polar_mc_state"):
        self.destination = destination
        self.migration = migration
        self.table = table
        self._writer_id = uuid.uuid4().hex
        self._ensured = False

    # -- public API ----------------------------------------------------------------------------
    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return _newest(self._read(), kind, key)

    def put(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        self._append(kind, key, value)

    def put_once(self, kind: str, key: str, value: Mapping[str, Any]) -> dict[str, Any]:
        """Record ``value`` unless the key already has one; return the value that holds (first writer wins)."""
        existing = self._first(kind, key)
        if existing is not None:
            return existing
        self._append(kind, key, value)
        winner = self._first(kind, key)
        assert winner is not None  # we just committed a row for this key
        return winner

    def items(self, kind: str) -> dict[str, dict[str, Any]]:
        return _newest_per_key(self._read(), kind)

    # -- internals -----------------------------------------------------------------------------
    def _first(self, kind: str, key: str) -> dict[str, Any] | None:
        return _oldest(self._read(), kind, key)

    def _ensure_table(self) -> None:
        if self._ensured:
            return
        # A REST lookup first: CREATE TABLE IF NOT EXISTS is a SQL instance, polled until it ends.
        if self.destination.table_exists(self.table):
            self._ensured = True
            return
        self.destination.create_table(
            TableDDL(
                name=self.table,
                columns=STATE_TABLE_DDL_COLUMNS,
                partition_columns=(DestColumn("migration", "string", "migration name from the spec"),),
                comment="airflow-provider-polar-mc durable migration state (do not edit)",
            ),
            if_not_exists=True,
        )
        self._ensured = True

    def _partition(self) -> str:
        return f"migration={sqltext.mc_string(self.migration)}"

    def _state_table(self) -> Any:
        """A fresh pyodps Table each time: a kept one answers exist_partition from its first lookup, so a
        store would not see the partition another process created since."""
        self._ensure_table()
        return self.destination.get_table(self.table)

    def _append(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        table = self._state_table()
        record = Record(schema=table.table_schema)
        record["kind"] = kind
        record["key"] = key
        record["value"] = json.dumps(value, sort_keys=True, separators=(",", ":"))
        record["written_at_us"] = time.time_ns() // 1000
        record["writer"] = self._writer_id
        # A new upload session per write: its commit appends exactly this row, atomically. Repeated
        # after a lost answer, it may append the row twice: the same value, which readers take as one.
        failpoints.reached("checkpoint.write")

        def write() -> None:  # reopen: never the session of a failed attempt (pyodps keeps its id), maybe committed
            with table.open_writer(partition=self._partition(), create_partition=True, reopen=True) as writer:
                writer.write([record])

        self.destination.call(write, f"write checkpoint {kind}/{key}")
        failpoints.reached("checkpoint.written")

    def _read(self) -> list[_Row]:
        table = self._state_table()

        def read() -> list[_Row]:
            if not table.exist_partition(self._partition()):
                return []
            with table.open_reader(partition=self._partition()) as reader:
                return [_Row(rec["kind"], rec["key"], json.loads(rec["value"]), int(rec["written_at_us"]), rec["writer"])
                        for rec in reader]  # fmt: skip

        return self.destination.call(read, "read the checkpoints")


class ReadOnceStore:
    """A :class:`CheckpointStore` view that reads the store once and answers :meth:`get` and
    :meth:`items` from that read, for one task's bookkeeping (each read of the MaxCompute store is a
    Tunnel download). Writes go to the store and into the view; :meth:`put_once` always asks the store,
    so first-writer-wins holds against concurrent writers. Only for values that cannot change under
    the task: recorded coordinates (written once) and earlier intervals' progress."""

    def __init__(self, store: MaxComputeCheckpointStore):
        self._store = store
        self._rows: list[_Row] | None = None

    def _latest(self) -> list[_Row]:
        if self._rows is None:
            self._rows = self._store._read()
        return self._rows

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        return _newest(self._latest(), kind, key)

    def items(self, kind: str) -> dict[str, dict[str, Any]]:
        return _newest_per_key(self._latest(), kind)

    def put(self, kind: str, key: str, value: Mapping[str, Any]) -> None:
        self._store.put(kind, key, value)
        self._rows = None  # read again if asked

    def put_once(self, kind: str, key: str, value: Mapping[str, Any]) -> dict[str, Any]:
        existing = _oldest(self._latest(), kind, key)
        if existing is not None:  # written once, never changed
            return existing
        winner = self._store.put_once(kind, key, value)
        self._rows = None
        return winner
