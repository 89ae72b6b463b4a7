"""Incremental migration end to end through the operators: full load with concurrent writes, binlog
intervals into `_log` partitions, merge, replica == source; re-runs are byte-identical; unsupported DDL
fails without writing."""

from __future__ import annotations

import datetime as dt
import re
import threading
import uuid

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.validate import compare_migration
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.operators._base import load_spec
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
from airflow_provider_polar_mc.operators.merge import MergeOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from airflow_provider_polar_mc.operators.validate import ValidateOperator
from airflow_provider_polar_mc.sensors.binlog import BinlogSensor
from tests.integration.session_clock import execute_at, snapshot_at
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc
FIRST = dt.datetime(2026, 1, 1, 0, tzinfo=UTC)
HOUR = 3600


def inside(i: int, seconds: float) -> float:
    """A moment (unix seconds) ``seconds`` into interval ``i``: writes in a session whose clock is set
    to it commit "in" that simulated interval (tests/integration/session_clock.py)."""
    return FIRST.timestamp() + i * HOUR + seconds


def interval(i: int) -> dict:
    start = FIRST + dt.timedelta(hours=i)
    return {"data_interval_start": start, "data_interval_end": start + dt.timedelta(hours=1)}


def run_interval(spec: dict, i: int) -> dict:
    context = interval(i)
    coordinate = BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(context)
    assert coordinate["log_file"]
    summary = IncrementalLoadOperator(task_id="load", spec=spec).execute(context)
    MergeOperator(task_id="merge", spec=spec).execute(context)
    return summary


def replica_matches_source(spec: dict) -> list:
    migration = load_spec(spec)
    return compare_migration(migration, resolve.source_endpoint(migration), resolve.destination(migration))


def partition_rows(emulator, table: str, partition: str) -> list:
    from odps.tunnel import TableTunnel

    session = TableTunnel(emulator.client()).create_download_session(table, partition_spec=partition)
    with session.open_record_reader(0, session.count) as reader:
        return [tuple(r.values) for r in reader]


@pytest.fixture
def shop(mysql_server):
    db = f"inc_{uuid.uuid4().hex[:8]}"
    mysql_server.execute(
        f"CREATE DATABASE {db}",
        f"CREATE TABLE {db}.orders (id BIGINT PRIMARY KEY, customer INT NOT NULL, status VARCHAR(12), "
        "amount DECIMAL(12,2), created DATETIME(6), updated TIMESTAMP(6) NULL, doc JSON)",
        f"CREATE TABLE {db}.customers (code VARCHAR(8) NOT NULL, region CHAR(2) NOT NULL, name VARCHAR(40), "
        "UNIQUE KEY (code, region))",
        f"CREATE TABLE {db}.ignored (id INT PRIMARY KEY, v INT)",
    )
    rows = ",".join(
        f"({i}, {i % 17}, '{'paid' if i % 3 else 'new'}', {i}.25, '2025-01-01 00:00:00.{i:06d}', NULL, '{{\"i\": {i}}}')"
        for i in range(1, 3001)
    )
    mysql_server.execute(f"INSERT INTO {db}.orders VALUES {rows}")
    mysql_server.execute(f"INSERT INTO {db}.customers VALUES " + ",".join(f"('c{i}', 'cn', 'name {i} 😀')" for i in range(200)))
    yield db
    mysql_server.execute(f"DROP DATABASE {db}")


def make_spec(connections, db: str) -> dict:
    return {
        "name": f"inc_{uuid.uuid4().hex[:8]}",
        "source": {"conn_id": connections.source, "databases": [db]},
        "destination": {"conn_id": connections.destination},
        "objects": [{"database": db, "tables": "all", "exclude": ["ignored"]}],
        "batch_rename": {"prefix": f"i{uuid.uuid4().hex[:6]}_"},
        "partition": ["year", "month", "day", "hour"],
        "full_load": {"chunk_rows": 500, "parallelism": 2},
        "incremental": {"start_date": FIRST.isoformat(), "settle_seconds": 0},
    }


def writer(server, db: str, stop: threading.Event, rounds: list[int] | None = None, *, at: float | None = None) -> None:
    """Write until ``stop``; ``rounds[0]`` counts the completed (committed) rounds. With ``at`` (unix
    seconds), round i runs in a session clock of ``at`` + i ms, so its transactions commit "at" that time."""
    rounds = rounds if rounds is not None else [0]
    conn = server.connect()
    i = 0
    with conn.cursor() as cur:
        while not stop.is_set():
            i += 1
            if at is not None:
                cur.execute("SET TIMESTAMP = %s", (at + i / 1000,))
            cur.execute(f"UPDATE {db}.orders SET status = 'paid', updated = UTC_TIMESTAMP(6) WHERE id = %s", (1 + (i * 37) % 3000,))
            cur.execute(f"INSERT INTO {db}.orders VALUES (%s, 1, 'new', 1.00, UTC_TIMESTAMP(6), NULL, NULL)", (100_000 + i,))
            cur.execute(f"DELETE FROM {db}.orders WHERE id = %s", (2 + (i * 53) % 3000,))
            cur.execute(f"UPDATE {db}.ignored SET v = v + 1 WHERE id = 1")
            rounds[0] = i
    conn.close()


def test_full_load_plus_intervals_converge_and_reruns_are_identical(connections, mysql_server, emulator, shop):
    spec = make_spec(connections, shop)
    mysql_server.execute(f"INSERT INTO {shop}.ignored VALUES (1, 0)")
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    migration = load_spec(spec)
    # The snapshot "at" 1 s before interval 0 (C0 recorded now; the full load keeps it), and every write
    # meant for interval i committed "in" interval i (tests/integration/session_clock.py).
    snapshot_at(MaxComputeCheckpointStore(resolve.destination(migration), migration.name), mysql_server,
                FIRST.timestamp() - 1)
    stop = threading.Event()
    rounds = [0]
    thread = threading.Thread(target=writer, args=(mysql_server, shop, stop, rounds), kwargs={"at": inside(0, 5)})
    thread.start()
    try:
        FullLoadOperator(task_id="full", spec=spec).execute({})
        after_load = rounds[0]
        # Writes after the load too (not just during it), however fast or slow the load was.
        wait_until(lambda: rounds[0] >= after_load + 20 or not thread.is_alive(),
                   what=lambda: f"20 writer rounds after the load ({rounds[0] - after_load})")  # fmt: skip
        assert thread.is_alive(), "the writer thread died"
    finally:
        stop.set()
        thread.join()

    # Interval 0: everything written during and after the load, a primary-key change, a multi-table
    # transaction, and unique-key (no primary key) updates.
    conn = mysql_server.connect(autocommit=False)
    with conn.cursor() as cur:
        cur.execute("SET TIMESTAMP = %s", (inside(0, 30 * 60),))
        cur.execute(f"UPDATE {shop}.orders SET id = id + 500000 WHERE id BETWEEN 10 AND 14")
        cur.execute(f"UPDATE {shop}.customers SET region = 'sg', name = 'moved' WHERE code = 'c5'")
        cur.execute(f"DELETE FROM {shop}.customers WHERE code = 'c6'")
        cur.execute(f"INSERT INTO {shop}.customers VALUES ('c6', 'us', 'again')")
    conn.commit()
    conn.close()
    first = run_interval(spec, 0)
    assert first["tables"][f"{shop}.orders"]["rows"] > 0
    assert all(r.equal for r in replica_matches_source(spec)), [r.summary() for r in replica_matches_source(spec)]

    # Interval 1: ADD COLUMN (two at once, one FIRST... AFTER) and rows carrying it.
    execute_at(
        mysql_server,
        inside(1, 10),
        f"ALTER TABLE {shop}.orders ADD COLUMN channel VARCHAR(8) AFTER status, ADD COLUMN weight DOUBLE",
        f"UPDATE {shop}.orders SET channel = 'web', weight = 2.5 WHERE id BETWEEN 100 AND 130",
        f"INSERT INTO {shop}.orders (id, customer, status, channel, amount, created, weight) VALUES (900000, 3, 'new', 'app', 5.50, '2026-01-01', 0.5)",
    )
    run_interval(spec, 1)
    results = replica_matches_source(spec)
    assert all(r.equal for r in results), [r.summary() for r in results]
    prefix = spec["batch_rename"]["prefix"]
    assert {"channel", "weight"} <= {c.name for c in emulator.client().get_table(f"{prefix}orders_base").table_schema.simple_columns}

    summaries = ValidateOperator(task_id="validate", spec=spec).execute({})
    assert [s["equal"] for s in summaries] == [True, True]
    execute_at(mysql_server, inside(2, 10), f"UPDATE {shop}.customers SET name = 'drifted' WHERE code = 'c7'")
    with pytest.raises(AirflowFailException, match="differ from the source"):
        ValidateOperator(task_id="validate", spec=spec).execute({})
    # A source column the replica lacks (its ADD COLUMN not merged yet) is reported by name; no MaxCompute error.
    execute_at(mysql_server, inside(2, 11), f"ALTER TABLE {shop}.customers ADD COLUMN note INT")
    with pytest.raises(AirflowFailException, match=re.escape("'missing_columns': ['note']")):
        ValidateOperator(task_id="validate", spec=spec).execute({})

    # Re-running (retry / clear / backfill) an interval rebuilds the identical partition.
    log_table = f"{prefix}orders_log"
    p0 = "modifytime_year='2026',modifytime_month='01',modifytime_day='01',modifytime_hour='00'"
    p1 = "modifytime_year='2026',modifytime_month='01',modifytime_day='01',modifytime_hour='01'"
    before0, before1 = partition_rows(emulator, log_table, p0), partition_rows(emulator, log_table, p1)
    execute_at(mysql_server, inside(2, 20), f"INSERT INTO {shop}.orders (id, customer) VALUES (999999, 1)")  # after C(1): not in 0 or 1
    again = run_interval(spec, 0)
    assert again["end"] == first["end"]
    run_interval(spec, 1)
    assert partition_rows(emulator, log_table, p0) == before0
    assert partition_rows(emulator, log_table, p1) == before1
    ids0 = [r[0] for r in before0]
    ids1 = [r[0] for r in before1]
    assert ids0 == sorted(ids0) and ids1 == sorted(ids1) and ids0[-1] < ids1[0]  # record_ids increase across intervals

    # Interval 2: a DDL the batch cannot follow, under schema_changes.unfollowable: fail, fails the
    # batch without writing its partition (the default, resync, is tested in test_replica_property).
    execute_at(mysql_server, inside(2, 30), f"ALTER TABLE {shop}.orders MODIFY weight FLOAT")
    context = interval(2)
    BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(context)
    failing = {**spec, "schema_changes": {"unfollowable": "fail"}}
    with pytest.raises(AirflowFailException, match=r"(?i)modify.*orders|orders.*modify"):
        IncrementalLoadOperator(task_id="load", spec=failing).execute(context)
    assert not emulator.client().get_table(log_table).exist_partition(
        "modifytime_year='2026',modifytime_month='01',modifytime_day='01',modifytime_hour='02'"
    )


def test_an_interval_that_does_not_match_the_partition_is_rejected(connections, mysql_server, shop):
    spec = make_spec(connections, shop)
    start = FIRST
    with pytest.raises(AirflowFailException, match="@hourly|0 \\* \\* \\* \\*|schedule"):
        IncrementalLoadOperator(task_id="load", spec=spec).execute(
            {"data_interval_start": start, "data_interval_end": start + dt.timedelta(days=1)}
        )


def test_capture_waits_for_the_interval_writes_heartbeats_and_is_recorded_once(connections, mysql_server, emulator, shop):
    """Before C0 nothing is captured; an interval ending before the snapshot is empty at once (C0); a
    future one is too early; one ending after the snapshot waits for the source's clock, writes the
    heartbeat (a transaction committed after the interval's end, so the boundary is found in the binlog)
    and records the derived coordinate once."""
    from airflow_provider_polar_mc.core.full_load import record_snapshot_coordinate
    from airflow_provider_polar_mc.core.interval_capture import capture_interval_end, source_clock

    spec_doc = make_spec(connections, shop)
    spec_doc["heartbeat"] = {"enabled": True, "interval_seconds": 3600}
    spec = load_spec(spec_doc)
    endpoint, destination = resolve.source_endpoint(spec), resolve.destination(spec)
    store = MaxComputeCheckpointStore(destination, spec.name)
    past = FIRST, FIRST + dt.timedelta(hours=1)
    # Before the setup recorded C0 there is nothing to capture against.
    assert capture_interval_end(spec, endpoint, store, *past, settle_seconds=0) is None
    c0 = record_snapshot_coordinate(store, endpoint)
    assert capture_interval_end(spec, endpoint, store, *past, settle_seconds=0) == c0  # before the snapshot: empty
    soon = dt.datetime.fromtimestamp(int(c0.captured_at) + 2, UTC)  # after the snapshot, a whole second
    future_end = dt.datetime.now(UTC) + dt.timedelta(hours=1)
    assert capture_interval_end(spec, endpoint, store, soon, future_end, settle_seconds=0) is None  # too early
    mysql_server.execute(f"INSERT INTO {shop}.orders (id, customer) VALUES (777776, 1)")  # before `soon`
    with endpoint.session() as conn:
        wait_until(lambda: source_clock(conn) >= soon.timestamp(), timeout=10, what="the source clock to pass the end")
    first = capture_interval_end(spec, endpoint, store, soon - dt.timedelta(minutes=1), soon, settle_seconds=0)
    assert first is not None and first.key() > c0.key() and first.captured_at == soon.timestamp()
    beat = mysql_server.execute(f"SELECT COUNT(*), MAX(beat_at) FROM {shop}.polar_mc_heartbeat")[0]
    assert beat[0] == 1 and beat[1] >= soon.replace(tzinfo=None)  # refreshed after the interval's end
    mysql_server.execute(f"INSERT INTO {shop}.orders (id, customer) VALUES (777777, 1)")
    again = capture_interval_end(spec, endpoint, store, soon - dt.timedelta(minutes=1), soon, settle_seconds=0)
    assert again == first  # recorded once; re-runs reuse it
