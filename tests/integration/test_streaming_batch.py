"""The streaming batch: the reader hands out bounded chunks in binlog order while it decodes, the
partition is uploaded block by block as they come and committed once, an ADD COLUMN after a table's
first block makes the batch read the interval again (nothing half-old, half-new), and Tunnel faults
during the stream are retried without losing or doubling a row.

The recorded range is set by the test itself (snapshot coordinate C0 from the full load, end coordinate
recorded for the chain's first interval), so these tests do not depend on how the sensor chooses an
interval's end.
"""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from airflow_provider_polar_mc.core import intervals
from airflow_provider_polar_mc.core.binlog.coordinates import capture
from airflow_provider_polar_mc.core.binlog.reader import read_changes, stream_changes
from airflow_provider_polar_mc.core.destination import upload
from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.planning import describe_table_schema
from airflow_provider_polar_mc.core.selection import select_tables
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.operators._base import load_spec
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from airflow_provider_polar_mc.spec import MigrationSpec

pytestmark = pytest.mark.integration

UTC = dt.timezone.utc
FIRST = dt.datetime(2026, 1, 1, tzinfo=UTC)
INTERVAL = {"data_interval_start": FIRST, "data_interval_end": FIRST + dt.timedelta(hours=1)}


def endpoint_of(server) -> MySqlEndpoint:
    return MySqlEndpoint(host=server.host, port=server.port, user=server.user, password=server.password)


def now_coordinate(server):
    conn = endpoint_of(server).connect()
    try:
        return capture(conn)
    finally:
        conn.close()


@pytest.fixture
def db(mysql_server):
    name = f"stream_{uuid.uuid4().hex[:8]}"
    mysql_server.execute(
        f"CREATE DATABASE {name}",
        f"CREATE TABLE {name}.a (id INT PRIMARY KEY, v VARCHAR(20), n BIGINT)",
        f"CREATE TABLE {name}.b (id INT PRIMARY KEY, d DECIMAL(10,2), t DATETIME(6))",
    )
    yield name
    mysql_server.execute(f"DROP DATABASE {name}")


def interleaved_writes(server, db: str, rounds: int) -> None:
    """Each transaction changes both tables: inserts of 25 rows each, then updates and a delete."""
    conn = server.connect()
    with conn.cursor() as cur:
        for r in range(rounds):
            ids = range(r * 25, r * 25 + 25)
            cur.execute(f"INSERT INTO {db}.a VALUES " + ",".join(f"({i}, 'a{i}', {i * 7})" for i in ids))
            cur.execute(f"INSERT INTO {db}.b VALUES " + ",".join(f"({i}, {i}.25, '2026-01-01 00:00:00.{i:06d}')" for i in ids))
            cur.execute(f"UPDATE {db}.a SET n = n + 1 WHERE id BETWEEN %s AND %s", (r * 25, r * 25 + 9))
            cur.execute(f"DELETE FROM {db}.b WHERE id = %s", (r * 25 + 3,))
            conn.commit()
    conn.close()


def test_chunks_are_bounded_in_binlog_order_and_add_up_to_the_whole(mysql_server, db):
    spec = MigrationSpec.from_dict({"name": "s", "source": {"databases": [db]}, "objects": [{"database": db, "tables": ["a", "b"]}]})
    selections = {s.source_name: s for s in select_tables(spec, {db: ["a", "b"]})}
    conn = endpoint_of(mysql_server).connect()
    schemas = {f"{db}.{t}": describe_table_schema(conn, db, t) for t in ("a", "b")}
    conn.close()
    start = now_coordinate(mysql_server)
    interleaved_writes(mysql_server, db, 40)  # a: 1000 I + 400 U (800 rows); b: 1000 I + 40 D
    mysql_server.execute(f"ALTER TABLE {db}.a ADD COLUMN extra INT NULL")
    mysql_server.execute(f"UPDATE {db}.a SET extra = id WHERE id < 300")  # 300 U -> 600 rows with extra
    end = now_coordinate(mysql_server)

    events: list[tuple[str, object]] = []
    stream = stream_changes(
        endpoint_of(mysql_server), start, end, schemas, selections, spec, chunk_rows=300, buffered_rows=450,
        on_chunk=lambda key, rows: events.append(("chunk", (key, rows))),
        on_columns_changed=lambda key, added: events.append(("added", (key, [c.destination for c in added]))),
    )  # fmt: skip
    whole = read_changes(endpoint_of(mysql_server), start, end, schemas, selections, spec)

    chunks = [payload for kind, payload in events if kind == "chunk"]
    assert all(rows.num_rows <= 300 for _, rows in chunks)
    assert len(chunks) > (1800 + 600 + 1040) // 300  # the total cap split chunks before they were full
    added_at = next(i for i, (kind, _) in enumerate(events) if kind == "added")
    assert events[added_at][1] == (f"{db}.a", ["extra"])
    # Every chunk of `a` before the ALTER lacks the column; every one after it has it.
    for index, (kind, payload) in enumerate(events):
        if kind == "chunk" and payload[0] == f"{db}.a" and payload[1].num_rows:
            assert ("extra" in payload[1].column_names) == (index > added_at)
    for table in ("a", "b"):
        key = f"{db}.{table}"
        ids = [r for k, rows in chunks if k == key for r in rows["record_id"].to_pylist()]
        assert ids == sorted(ids)  # binlog order across chunks
        assert stream.tables[key].rows == whole.tables[key].rows.num_rows == len(ids)
        full = whole.tables[key].rows
        assert full["record_id"].to_pylist() == ids
        if table == "a":
            assert "extra" in full.column_names and full.num_rows == 1800 + 600
            assert full["extra"].null_count == 1800 + 300  # the rows from before the ALTER, and the before-images
    assert stream.tables[f"{db}.b"].rows == 1040


def make_spec(connections, db: str, **incremental) -> dict:
    return {
        "name": f"st_{uuid.uuid4().hex[:8]}",
        "source": {"conn_id": connections.source, "databases": [db]},
        "destination": {"conn_id": connections.destination},
        "objects": [{"database": db, "tables": ["a", "b"]}],
        "batch_rename": {"prefix": f"s{uuid.uuid4().hex[:6]}_"},
        "partition": ["year", "month", "day", "hour"],
        "merge": {"enabled": False},
        "incremental": {"start_date": FIRST.isoformat(), "settle_seconds": 0, "block_rows": 1000, **incremental},
    }


def setup_and_record(spec: dict, server, write) -> MaxComputeCheckpointStore:
    """Schema, full load (C0), the writes, then the current end of binlog recorded as the end of the
    chain's first interval."""
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    FullLoadOperator(task_id="full", spec=spec).execute({})
    write()
    migration = load_spec(spec)
    store = MaxComputeCheckpointStore(resolve.destination(migration), migration.name)
    intervals.record_end(store, INTERVAL["data_interval_end"], now_coordinate(server))
    return store


def log_rows(emulator, table: str) -> list[dict]:
    from odps.tunnel import TableTunnel

    session = TableTunnel(emulator.client()).create_download_session(table, partition_spec="modifytime_year='2026',modifytime_month='01',modifytime_day='01',modifytime_hour='00'")
    with session.open_record_reader(0, session.count) as reader:
        return [dict(zip([c.name for c in session.schema.columns], r.values, strict=False)) for r in reader]


def test_add_column_after_blocks_were_written_reads_the_interval_again(connections, mysql_server, emulator, db, monkeypatch):
    spec = make_spec(connections, db)
    attempts: list[str] = []
    original_init = upload.PartitionUploads.__init__

    def counting_init(self, destination, partition, **kwargs):
        attempts.append(partition)
        original_init(self, destination, partition, **kwargs)

    monkeypatch.setattr(upload.PartitionUploads, "__init__", counting_init)

    def write():
        interleaved_writes(mysql_server, db, 100)  # a: 2500 I + 1000 U: several blocks before the ALTER
        mysql_server.execute(
            f"ALTER TABLE {db}.a ADD COLUMN extra VARCHAR(10) NULL",
            f"UPDATE {db}.a SET extra = CONCAT('x', id) WHERE id < 400",
        )

    setup_and_record(spec, mysql_server, write)
    summary = IncrementalLoadOperator(task_id="load", spec=spec).execute(INTERVAL)
    assert len(attempts) == 2  # the first read stopped at the ALTER, the second went through
    prefix = spec["batch_rename"]["prefix"]
    rows = log_rows(emulator, f"{prefix}a_log")
    assert summary["tables"][f"{db}.a"]["rows"] == len(rows) == 2500 + 2 * 1000 + 2 * 400
    record_ids = [(r["record_id"], r["before_flag"]) for r in rows]
    assert len(set(record_ids)) == len(record_ids)
    with_extra = [r for r in rows if r["extra"] is not None]
    assert len(with_extra) == 400 and all(r["extra"] == f"x{r['id']}" for r in with_extra)
    base = emulator.client().get_table(f"{prefix}a_base").table_schema
    assert "extra" in [c.name for c in base.simple_columns]
    # A re-run (the columns exist now) reads once and writes the identical partition.
    IncrementalLoadOperator(task_id="load", spec=spec).execute(INTERVAL)
    assert len(attempts) == 3
    assert log_rows(emulator, f"{prefix}a_log") == rows


def test_tunnel_faults_during_the_stream_are_retried_exactly_once(connections, mysql_server, emulator, db):
    spec = make_spec(connections, db)
    setup_and_record(spec, mysql_server, lambda: interleaved_writes(mysql_server, db, 120))
    emulator.set_faults(rate=0.3, kinds=["503", "drop"], paths=["/tunnel"], methods=["PUT"], seed=11, limit=4)
    try:
        summary = IncrementalLoadOperator(task_id="load", spec=spec).execute(INTERVAL)
        injected = emulator.faults()
    finally:
        emulator.clear_faults()
    assert injected.get("injected", 0) >= 1, injected
    prefix = spec["batch_rename"]["prefix"]
    a, b = log_rows(emulator, f"{prefix}a_log"), log_rows(emulator, f"{prefix}b_log")
    assert len(a) == summary["tables"][f"{db}.a"]["rows"] == 3000 + 2 * 1200
    assert len(b) == summary["tables"][f"{db}.b"]["rows"] == 3000 + 120
    for rows in (a, b):
        keys = [(r["record_id"], r["before_flag"]) for r in rows]
        assert len(set(keys)) == len(keys)


def test_read_once_store_answers_from_one_read_and_keeps_first_writer_wins(emulator):
    from airflow_provider_polar_mc.core.destination.checkpoint import ReadOnceStore
    from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination

    destination = MaxComputeDestination(emulator.client(), emulator.project)
    name = f"ro_{uuid.uuid4().hex[:8]}"
    store, other = MaxComputeCheckpointStore(destination, name), MaxComputeCheckpointStore(destination, name)
    store.put("progress", "k", {"n": 1})
    view = ReadOnceStore(store)
    assert view.get("progress", "k") == {"n": 1}
    other.put_once("end", "e1", {"by": "other"})  # written after the view read the store
    assert view.get("end", "e1") is None  # answered from the one read
    assert view.put_once("end", "e1", {"by": "view"}) == {"by": "other"}  # but put_once asks the store
    view.put("progress", "k", {"n": 2})
    assert view.get("progress", "k") == {"n": 2} == store.get("progress", "k")
    assert view.items("end") == {"e1": {"by": "other"}}
