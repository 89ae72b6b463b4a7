"""Time-true interval boundaries against a real MariaDB and the emulator (core/binlog/boundaries.py,
docs/interval-boundaries.md): C(e) is the start of the first transaction after C(prev) committed at or
after e, whenever it is captured.

How the tests write "in the past" without waiting: MariaDB lets a session set its clock
(``SET TIMESTAMP = <unix seconds>``); the binlog events that session writes (its GTID events included)
carry that time, while the server's real clock, which ``capture_interval_end`` checks, is untouched.
The snapshot coordinate C0 is taken the same way (tests/integration/session_clock.py): ``capture()``
reads ``UNIX_TIMESTAMP(NOW(6))`` from its session, so C0 captured in a session whose clock is set to T0
says "snapshot at T0". A C0 taken at the real time would make every interval in the real clock's past
"before the snapshot" (empty at once, by the rule), so the intervals could only be tested by waiting for
them. C0 is recorded before the full load runs, with no write in between, so the full load (which keeps
a recorded C0: first writer wins) copies exactly the state at C0. The simulated one-minute intervals then
lie after T0 and in the past of the real clock, so they can be captured at once, in a catch-up, as after
a scheduler outage.

Commit times on MariaDB are whole seconds (the GTID event's header timestamp: the start of COMMIT, or of
the statement in autocommit); the intervals' ends are whole minutes.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter

import pytest

from airflow_provider_polar_mc.core import intervals
from airflow_provider_polar_mc.core.binlog.boundaries import find_interval_end
from airflow_provider_polar_mc.core.binlog.coordinates import capture
from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.full_load import SNAPSHOT_KEY, SNAPSHOT_KIND
from airflow_provider_polar_mc.core.interval_capture import capture_interval_end
from airflow_provider_polar_mc.core.model import BinlogCoordinate
from airflow_provider_polar_mc.core.retry import RetryPolicy
from airflow_provider_polar_mc.exceptions import BinlogUnavailable
from airflow_provider_polar_mc.sandbox.mysql import free_port
from tests.integration.journal import MINUTE, Setup, at, log_tuples, minute_floor, setup_migration, table_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def cleanup(mysql_server):
    made: list[Setup] = []
    yield made
    for s in made:
        s.journal.close()
        mysql_server.execute(f"DROP DATABASE IF EXISTS {s.db}")


# --- (a) a scheduler outage, then a catch-up ---------------------------------------------------------------


def test_catch_up_after_an_outage_gives_every_interval_exactly_its_transactions(connections, mysql_server, emulator,
                                                                              cleanup):
    """Five one-minute intervals written while "the scheduler was down", captured and loaded later in a
    catch-up: every `_log` partition holds exactly the transactions committed in its interval (the chain's
    first interval also those since the snapshot), and the replica after each merge is the source as it
    was at that interval's end."""
    rng = random.Random(20261202)
    base = minute_floor(time.time()) - 7 * MINUTE  # the first interval's start, in the real clock's past
    t0 = base - 20.5  # the snapshot "at" 20.5 s before it
    s = setup_migration(connections, mysql_server, t0)
    cleanup.append(s)
    journal = s.journal
    ends = [base + MINUTE * (k + 1) for k in range(5)]
    starts = [base + MINUTE * k for k in range(5)]

    journal.write(t0 + 5.2, rng)  # after the snapshot, before the chain's first interval starts
    journal.write(t0 + 12, rng, statements=[t0 + 6, t0 + 9.5])
    expected_state: list[list[tuple]] = []
    for k, start in enumerate(starts):
        if k:  # began at the end of the previous interval, committed at the first second of this one
            journal.write(start + 0.1, rng, statements=[start - 1.9, start - 0.6], ops=["insert", "update"])
        journal.write(start, rng, ops=["insert"])  # exactly at the start: belongs here
        for offset in sorted(rng.uniform(0.5, 58.5) for _ in range(8)):
            if rng.random() < 0.3:
                first = max(start + 0.2, start + offset - rng.uniform(0.5, 6))
                journal.write(start + offset, rng, statements=sorted(rng.uniform(first, start + offset)
                                                                     for _ in range(rng.randint(2, 4))))
            else:
                journal.write(start + offset, rng)
        journal.write(start + 59.9, rng)  # last moment of the interval (second 59)
        # began and committed inside the last second of this interval
        journal.write(start + 59.95, rng, statements=[start + 59.3, start + 59.6], ops=["update", "delete"])
        expected_state.append(journal.source_rows())  # the source at this interval's end

    caught_up = 0.0
    recorded: list[BinlogCoordinate] = []
    for k, (start, end) in enumerate(zip(starts, ends, strict=True)):
        began = time.monotonic()
        coordinate = s.capture(start, end)
        summary = s.load(start, end)
        replica = s.merge(start, end)
        caught_up += time.monotonic() - began
        recorded.append(coordinate)
        assert coordinate.captured_at == end  # the interval's end, not the wall time of the capture
        assert summary["end"] == coordinate.to_dict()

        low = s.c0.captured_at if k == 0 else start  # the chain's first interval starts at C0
        mine = [t for t in journal.transactions if low <= t.commit_second < end]
        assert mine, f"interval {k} has no transactions to check"
        rows = log_tuples(table_rows(emulator, s.log_table, s.partition(start, end)))
        assert Counter(rows) == Counter(row for t in mine for row in t.rows), f"interval {k}"
        # The rows' own times (utc_timestamp, the statement's second): an autocommit transaction's is its
        # commit second, inside the interval; a multi-statement transaction's statements may be stamped
        # before the interval (it began earlier), never after its commit.
        for t in mine:
            for row in t.rows:
                assert row[-1] == t.commit_second if not t.multi else row[-1] <= t.commit_second
        assert all(low <= row[-1] < end for t in mine if not t.multi for row in t.rows)
        if k:
            assert any(row[-1] < start for t in mine if t.multi for row in t.rows)  # the one begun earlier
        replica_rows = sorted((int(r["id"]), int(r["v"]), int(r["tx"])) for r in table_rows(emulator, replica))
        assert replica_rows == expected_state[k], f"replica after interval {k}"

    rate = len(starts) / caught_up * 60
    print(f"\ncatch-up: {len(starts)} one-minute intervals (capture + load + merge) in {caught_up:.1f}s: "
          f"{rate:.1f} intervals per minute")
    # Boundaries are derived from the binlog, not from when they were captured: computed again from
    # scratch (no checkpoint), they are the recorded ones.
    _, endpoint, _, _ = s.parts()
    previous = s.c0
    for end, held in zip(ends, recorded, strict=True):
        with endpoint.session() as conn:
            now = capture(conn)
        assert find_interval_end(endpoint, previous, at(end), now) == held
        previous = held
    assert all(a.key() <= b.key() for a, b in zip(recorded, recorded[1:], strict=False))


# --- (b) the same coordinate now or later -------------------------------------------------------------------


def test_capturing_an_interval_again_from_scratch_gives_the_same_coordinate(connections, mysql_server, emulator,
                                                                          cleanup):
    """Capture, then write more (transactions "in" this interval arriving late, in later intervals, and
    heartbeats), then derive the boundary again from scratch, directly and against a fresh checkpoint
    store: the same coordinate."""
    rng = random.Random(7)
    base = minute_floor(time.time()) - 4 * MINUTE
    s = setup_migration(connections, mysql_server, base - 30, heartbeat=True)
    cleanup.append(s)
    journal = s.journal
    journal.write(base + 10, rng)
    journal.write(base + 30, rng, statements=[base + 20, base + 25])
    boundary_tx = journal.write(base + MINUTE + 10, rng)  # the first transaction of the next interval
    first = s.capture(base, base + MINUTE)
    assert first.key() > s.c0.key() and first.captured_at == base + MINUTE

    journal.write(base + 40, rng)  # stamped inside the interval but written after its boundary
    journal.write(base + 2 * MINUTE + 5, rng)
    migration, endpoint, destination, store = s.parts()
    from airflow_provider_polar_mc.core.interval_capture import write_heartbeat
    with endpoint.session(writable=True) as conn:
        write_heartbeat(conn, s.db, migration.heartbeat.table, 1, due_from=at(time.time()))
    with endpoint.session() as conn:
        now = capture(conn)
    assert now.key() > first.key()

    again = find_interval_end(endpoint, s.c0, at(base + MINUTE), now)
    assert again == first
    fresh = MaxComputeCheckpointStore(destination, f"{migration.name}_fresh")
    fresh.put_once(SNAPSHOT_KIND, SNAPSHOT_KEY, s.c0.to_dict())
    assert capture_interval_end(migration, endpoint, fresh, at(base), at(base + MINUTE), settle_seconds=0) == first
    assert s.capture(base, base + MINUTE) == first  # and the recorded one wins

    # The interval holds what committed before its end and was written before its boundary; the late
    # transaction went to the next interval.
    s.load(base, base + MINUTE)
    rows = log_tuples(table_rows(emulator, s.log_table, s.partition(base, base + MINUTE)))
    assert Counter(rows) == Counter(row for t in journal.transactions[:2] for row in t.rows)
    assert boundary_tx.tx == 3


# --- (c) the clock steps back ------------------------------------------------------------------------------


def test_a_transaction_stamped_before_the_boundary_but_written_after_it_goes_to_the_next_interval(
        connections, mysql_server, emulator, cleanup):
    rng = random.Random(3)
    base = minute_floor(time.time()) - 5 * MINUTE
    s = setup_migration(connections, mysql_server, base - 10)
    cleanup.append(s)
    journal = s.journal
    journal.write(base + 10, rng)  # 1: interval 0
    journal.write(base + MINUTE + 10, rng)  # 2: interval 1, ends interval 0
    journal.write(base + 40, rng, ops=["insert"])  # 3: the clock stepped back: stamped in interval 0
    journal.write(base + MINUTE + 20, rng)  # 4: interval 1
    journal.write(base + 30, rng, statements=[base + 25, base + 28])  # 5: stepped back again, multi-statement
    journal.write(base + 2 * MINUTE + 1, rng)  # 6: interval 2, ends interval 1

    seen: list[list[tuple]] = []
    for k in range(3):
        start, end = base + k * MINUTE, base + (k + 1) * MINUTE
        s.capture(start, end)
        s.load(start, end)
        replica = s.merge(start, end)
        seen.append(log_tuples(table_rows(emulator, s.log_table, s.partition(start, end))))
    transactions = {t.tx: t for t in journal.transactions}
    for rows, txs in zip(seen, ([1], [2, 3, 4, 5], [6]), strict=True):
        assert Counter(rows) == Counter(row for tx in txs for row in transactions[tx].rows), txs
    everything = Counter(row for rows in seen for row in rows)
    assert everything == Counter(row for t in journal.transactions for row in t.rows)  # none lost, none twice
    late = [row for row in seen[1] if row[5] == 3]
    assert late and all(row[-1] == base + 40 < base + MINUTE for row in late)  # its own time: interval 0's
    replica_rows = sorted((int(r["id"]), int(r["v"]), int(r["tx"])) for r in table_rows(emulator, replica))
    assert replica_rows == journal.source_rows()


# --- (d) before the snapshot ---------------------------------------------------------------------------------


def test_an_interval_ending_before_the_snapshot_is_empty_at_once(connections, mysql_server, emulator, cleanup):
    """C0 at once, recorded, without touching the source (here: an endpoint where no server listens)."""
    base = minute_floor(time.time()) - 3 * MINUTE
    s = setup_migration(connections, mysql_server, base + 30)
    cleanup.append(s)
    s.journal.write(base + 40, random.Random(1))
    migration, _, _, store = s.parts()
    nowhere = MySqlEndpoint("127.0.0.1", free_port(), connect_timeout=1)
    quick = RetryPolicy(connection_seconds=0, other_seconds=0)
    for start in (base - 2 * MINUTE, base - MINUTE):  # ends at or before the snapshot at base + 30
        held = capture_interval_end(migration, nowhere, store, at(start), at(start + MINUTE), settle_seconds=0,
                                    retry=quick)
        assert held == s.c0
        assert intervals.recorded_end(store, at(start + MINUTE)) == s.c0
    # The interval holding the snapshot starts at C0 (its predecessor's end) and holds the write after it.
    assert s.capture(base, base + MINUTE).key() > s.c0.key()
    s.load(base - 2 * MINUTE, base - MINUTE)
    assert table_rows(emulator, s.log_table, s.partition(base - 2 * MINUTE, base - MINUTE)) == []


# --- (e) a purged binlog ------------------------------------------------------------------------------------


def test_an_interval_whose_binlog_was_purged_fails_clearly(connections, mysql_server_factory, emulator):
    server = mysql_server_factory(max_binlog_size=4096)
    connections.set_source(server)
    base = minute_floor(time.time()) - 3 * MINUTE
    s = setup_migration(connections, server, base - 10)
    try:
        rng = random.Random(5)
        for i in range(40):
            s.journal.write(base + i, rng, ops=["insert"])
        server.execute("FLUSH BINARY LOGS")
        newest = server.execute("SHOW MASTER STATUS")[0][0]
        assert s.c0.log_file not in server.purge_binary_logs_to(newest)
        with pytest.raises(BinlogUnavailable) as caught:
            s.capture(base, base + MINUTE)
        message = str(caught.value)
        assert s.c0.log_file in message and "re-run the setup" in message, message
        _, _, _, store = s.parts()
        assert intervals.recorded_end(store, at(base + MINUTE)) is None  # nothing recorded
    finally:
        s.journal.close()


# --- the library's bytes where compat.event_body reads them -------------------------------------------------


def test_event_body_is_the_body_the_library_parsed(mysql_server):
    """On real MariaDB GTID events: the body event_body returns starts with the sequence number and the
    domain id mysql-replication parsed (so the offsets and sizes event_body assumes are right)."""
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.event import MariadbGtidEvent

    from airflow_provider_polar_mc.core import compat

    db = f"ib_{uuid.uuid4().hex[:8]}"
    conn = mysql_server.connect()
    try:
        start = capture(conn)
        mysql_server.execute(f"CREATE DATABASE {db}", f"CREATE TABLE {db}.t (id INT PRIMARY KEY)",
                             f"INSERT INTO {db}.t VALUES (1)")
        until = capture(conn)
    finally:
        conn.close()
        mysql_server.execute(f"DROP DATABASE {db}")
    settings = {"host": mysql_server.host, "port": mysql_server.port, "user": "root", "password": ""}
    stream = BinLogStreamReader(connection_settings=settings, server_id=(1 << 30) + 7, resume_stream=True,
                                blocking=False, log_file=start.log_file, log_pos=start.log_pos,
                                only_events=[MariadbGtidEvent], is_mariadb=False)
    bodies = []
    try:
        for event in stream:
            if event.packet.log_pos >= until.log_pos or len(bodies) == 3:
                break
            body = compat.event_body(event)
            assert body is not None and len(body) == event.packet.event_size - 19 - 4  # CRC32 checksums on
            assert int.from_bytes(body[:8], "little") == event.gtid_seq_no
            assert int.from_bytes(body[8:12], "little") == event.domain_id
            bodies.append(body)
    finally:
        stream.close()
    assert len(bodies) == 3
