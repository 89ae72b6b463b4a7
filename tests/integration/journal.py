"""A journal of transactions written "in the past" on MariaDB (session clocks) and a one-table migration
whose snapshot is "at" a chosen time, for tests of intervals and merges (see test_interval_boundaries.py's
docstring for why the clock is set per session)."""

from __future__ import annotations

import datetime as dt
import math
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_polar_mc.core import intervals
from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.full_load import SNAPSHOT_KEY, SNAPSHOT_KIND
from airflow_provider_polar_mc.core.incremental import IncrementalLoader
from airflow_provider_polar_mc.core.interval_capture import capture_interval_end
from airflow_provider_polar_mc.core.model import BinlogCoordinate
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.operators._base import load_spec
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
from airflow_provider_polar_mc.operators.merge import MergeOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from tests.integration.session_clock import snapshot_at

UTC = dt.timezone.utc
MINUTE = 60
SEED_ROWS = 20


def at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, UTC)


# --- the test's own record of what it wrote ----------------------------------------------------------


@dataclass
class Transaction:
    tx: int
    commit: float  # the session clock at COMMIT (or at the statement, in autocommit)
    rows: list[tuple] = field(default_factory=list)  # expected _log rows (see Journal)
    multi: bool = False  # BEGIN ... COMMIT (else autocommit)

    @property
    def commit_second(self) -> int:
        return math.floor(self.commit)


class Journal:
    """Writes transactions with a chosen session clock and records the `_log` rows each must produce:
    (operation_flag, before_flag, after_flag, id, v, tx, utc_timestamp)."""

    def __init__(self, server, db: str):
        self.conn = server.connect(db)
        self.db = db
        self.state: dict[int, tuple[int, int]] = {i: (i, 0) for i in range(1, SEED_ROWS + 1)}
        self.transactions: list[Transaction] = []
        self.next_id = 1000

    def close(self) -> None:
        self.conn.close()

    def _clock(self, cur, moment: float) -> None:
        cur.execute("SET TIMESTAMP = %s", (moment,))

    def _apply(self, cur, t: Transaction, moment: float, op: str, rng: random.Random) -> None:
        second = math.floor(moment)
        if op == "insert" or not self.state:
            key, value = self.next_id, rng.randint(0, 999)
            self.next_id += 1
            cur.execute("INSERT INTO t VALUES (%s, %s, %s)", (key, value, t.tx))
            self.state[key] = (value, t.tx)
            t.rows.append(("I", "N", "Y", key, value, t.tx, second))
        elif op == "update":
            key = rng.choice(sorted(self.state))
            old, value = self.state[key], rng.randint(0, 999)
            cur.execute("UPDATE t SET v = %s, tx = %s WHERE id = %s", (value, t.tx, key))
            self.state[key] = (value, t.tx)
            t.rows += [("U", "Y", "N", key, *old, second), ("U", "N", "Y", key, value, t.tx, second)]
        else:
            key = rng.choice(sorted(self.state))
            old = self.state.pop(key)
            cur.execute("DELETE FROM t WHERE id = %s", (key,))
            t.rows.append(("D", "Y", "N", key, *old, second))

    def write(self, commit: float, rng: random.Random, *, statements: list[float] | None = None,
              ops: list[str] | None = None) -> Transaction:
        """One transaction committed "at" ``commit``: autocommit when ``statements`` is None, else
        BEGIN, one statement at each of those times, COMMIT at ``commit``."""
        t = Transaction(len(self.transactions) + 1, commit, multi=statements is not None)
        with self.conn.cursor() as cur:
            if statements is None:
                self._clock(cur, commit)
                self._apply(cur, t, commit, (ops or [rng.choice(["insert", "update", "delete"])])[0], rng)
            else:
                self._clock(cur, statements[0])
                cur.execute("BEGIN")
                for i, moment in enumerate(statements):
                    self._clock(cur, moment)
                    self._apply(cur, t, moment, ops[i] if ops else rng.choice(["insert", "update", "delete"]), rng)
                self._clock(cur, commit)
                cur.execute("COMMIT")
            cur.execute("SET TIMESTAMP = DEFAULT")
        self.transactions.append(t)
        return t

    def source_rows(self) -> list[tuple[int, int, int]]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT id, v, tx FROM t ORDER BY id")
            rows = [tuple(int(x) for x in r) for r in cur.fetchall()]
        assert rows == sorted((k, *v) for k, v in self.state.items()), "the journal lost track of the source"
        return rows


# --- a migration whose snapshot is "at" a chosen time -------------------------------------------------


@dataclass
class Setup:
    spec: dict
    db: str
    journal: Journal
    c0: BinlogCoordinate

    @property
    def migration(self):
        return load_spec(self.spec)

    def parts(self):
        migration = self.migration
        destination = resolve.destination(migration)
        return migration, resolve.source_endpoint(migration), destination, MaxComputeCheckpointStore(destination, migration.name)

    def capture(self, start: float, end: float) -> BinlogCoordinate:
        migration, endpoint, _, store = self.parts()
        coordinate = capture_interval_end(migration, endpoint, store, at(start), at(end), settle_seconds=0)
        assert coordinate is not None
        return coordinate

    def load(self, start: float, end: float) -> dict:
        migration, endpoint, destination, store = self.parts()
        return IncrementalLoader(migration, endpoint, destination, store).run(at(start), at(end))

    def merge(self, start: float, end: float) -> str:
        return self.merge_result(start, end)["table"]

    def merge_result(self, start: float, end: float) -> dict[str, Any]:
        [done] = MergeOperator(task_id="merge", spec=self.spec).execute(
            {"data_interval_start": at(start), "data_interval_end": at(end)}
        )
        return done

    def partition(self, start: float, end: float) -> str:
        migration = self.migration
        values = intervals.partition_values(at(start), at(end), migration.partition)
        return intervals.partition_spec(migration.partition_columns(), values)

    @property
    def log_table(self) -> str:
        return f"{self.spec['batch_rename']['prefix']}t_log"


def table_rows(emulator, table: str, partition: str | None = None) -> list[dict]:
    from odps.tunnel import TableTunnel

    tunnel = TableTunnel(emulator.client())
    session = (tunnel.create_download_session(table, partition_spec=partition) if partition
               else tunnel.create_download_session(table))
    with session.open_record_reader(0, session.count) as reader:
        return [dict(zip([c.name for c in r._columns], r.values, strict=True)) for r in reader]


def log_tuples(rows: list[dict]) -> list[tuple]:
    return [(r["operation_flag"], r["before_flag"], r["after_flag"], int(r["id"]), int(r["v"]), int(r["tx"]),
             int(r["utc_timestamp"])) for r in rows]


def setup_migration(connections, server, c0_at: float, *, heartbeat: bool = False,
                    merge: dict[str, Any] | None = None) -> Setup:
    """A table of SEED_ROWS rows, its schema and full load, with C0 captured "at" ``c0_at``."""
    db = f"ib_{uuid.uuid4().hex[:8]}"
    server.execute(
        f"CREATE DATABASE {db}",
        f"CREATE TABLE {db}.t (id INT PRIMARY KEY, v INT NOT NULL, tx INT NOT NULL)",
        f"INSERT INTO {db}.t VALUES " + ",".join(f"({i}, {i}, 0)" for i in range(1, SEED_ROWS + 1)),
    )
    spec = {
        "name": f"ib_{uuid.uuid4().hex[:8]}",
        "source": {"conn_id": connections.source, "databases": [db]},
        "destination": {"conn_id": connections.destination},
        "objects": [{"database": db, "tables": ["t"]}],  # the heartbeat table is not migrated
        "batch_rename": {"prefix": f"b{uuid.uuid4().hex[:6]}_"},
        "partition": ["year", "month", "day", "hour", "minute"],
        "incremental": {"settle_seconds": 0},
        "heartbeat": {"enabled": heartbeat, "interval_seconds": 3600},
        "merge": merge or {},
    }
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    migration = load_spec(spec)
    store = MaxComputeCheckpointStore(resolve.destination(migration), migration.name)
    c0 = snapshot_at(store, server, c0_at)  # "the snapshot at c0_at": its captured_at is the session's clock
    FullLoadOperator(task_id="full", spec=spec).execute({})  # keeps the recorded C0; nothing written since
    assert BinlogCoordinate.from_dict(store.get(SNAPSHOT_KIND, SNAPSHOT_KEY)) == c0
    return Setup(spec, db, Journal(server, db), c0)


def minute_floor(seconds: float) -> int:
    return int(seconds // MINUTE * MINUTE)
