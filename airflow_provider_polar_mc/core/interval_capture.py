"""The end of an incremental interval in the binlog: once the source's clock has passed it, derive the
binlog coordinate where the interval's transactions end from the binlog itself, and record it once
(first writer wins).

C(e) is the start of the first transaction after C(prev) whose commit time is >= e, else the end of
binlog when the scan began (core/binlog/boundaries.py, docs/interval-boundaries.md): a function of the
binlog, not of when the sensor ran, so a late run, a catch-up and a backfill record what an on-time run
would have. The BinlogSensor/BinlogTrigger call :func:`capture_interval_end`; the batch then reads the
recorded range (core/incremental.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from airflow_provider_polar_mc.core import intervals, sqltext
from airflow_provider_polar_mc.core.binlog.boundaries import find_interval_end
from airflow_provider_polar_mc.core.binlog.coordinates import capture, verify_readable
from airflow_provider_polar_mc.core.destination.checkpoint import CheckpointStore
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.model import BinlogCoordinate
from airflow_provider_polar_mc.core.retry import RetryPolicy
from airflow_provider_polar_mc.spec import MigrationSpec


def source_clock(conn) -> float:
    with conn.cursor() as cur:
        cur.execute("SELECT UNIX_TIMESTAMP(NOW(6))")
        return float(cur.fetchone()[0])


def write_heartbeat(
    conn, database: str, table: str, interval_seconds: int, *, due_from: dt.datetime | None = None
) -> None:
    """Keep an idle source's binlog moving and make latency measurable: one row, refreshed at most every
    ``interval_seconds`` (each refresh is a binlog transaction, so the recorded coordinates keep
    advancing), and also whenever its last refresh was before ``due_from``: a transaction committed at
    or after an interval's end, so a quiet interval's boundary is found in the binlog."""
    name = sqltext.quote_mysql_table(database, table)
    # beat_at holds UTC (UTC_TIMESTAMP), so the interval end is compared as a UTC literal.
    due = f" OR beat_at < {sqltext.mysql_literal(intervals.utc(due_from))}" if due_from is not None else ""
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {name} (id TINYINT PRIMARY KEY, beat_at DATETIME(6) NOT NULL)")
        cur.execute(f"INSERT IGNORE INTO {name} VALUES (1, UTC_TIMESTAMP(6))")
        cur.execute(
            f"UPDATE {name} SET beat_at = UTC_TIMESTAMP(6) "
            f"WHERE id = 1 AND (beat_at < UTC_TIMESTAMP(6) - INTERVAL {int(interval_seconds)} SECOND{due})"
        )


def capture_interval_end(
    spec: MigrationSpec,
    endpoint: MySqlEndpoint,
    store: CheckpointStore,
    interval_start: dt.datetime,
    interval_end: dt.datetime,
    *,
    settle_seconds: float,
    retry: RetryPolicy | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> BinlogCoordinate | None:
    """C(i) for the interval [``interval_start``, ``interval_end``): the recorded one if any; else, for an
    interval ending at or before the snapshot, C0 (its changes are in the full load); else, once the
    source's clock has passed ``interval_end + settle_seconds``, the boundary derived from the binlog
    between C(i-1) and the current end of binlog (core/binlog/boundaries.py). Recorded, first writer
    wins. None while it is too early (or the setup has not recorded C0 yet).

    Raises :class:`CheckpointConflict` when C(i-1) is not recorded and this is not the chain's first
    interval, and what ``verify_readable`` raises when the binlog from C(i-1) on is gone or another one.
    """
    recorded = intervals.recorded_end(store, interval_end)
    if recorded is not None:
        return recorded
    snapshot = store.get(intervals.SNAPSHOT_KIND, intervals.SNAPSHOT_KEY)
    if snapshot is None:
        log("waiting for the setup (full load) to record the snapshot coordinate")
        return None
    c0 = BinlogCoordinate.from_dict(snapshot)
    end = intervals.utc(interval_end).timestamp()
    if end <= c0.captured_at:
        # Ends before the snapshot: nothing to scan; its changes are in the full load.
        held = intervals.record_end(store, interval_end, c0)
        log(f"interval ending {intervals.interval_key(interval_end)} ends at or before the snapshot "
            f"({dt.datetime.fromtimestamp(c0.captured_at, dt.timezone.utc):%Y-%m-%dT%H:%M:%S}Z): empty, at C0 {held}")
        return held
    if intervals.precedes_chain(store, interval_start):
        # A backfill of an interval before the chain's first one: that one read every change since C0.
        held = intervals.record_end(store, interval_end, c0)
        log(f"interval ending {intervals.interval_key(interval_end)} precedes the chain's first interval, which "
            f"holds every change since the snapshot: empty, at C0 {held}")
        return held
    after, _ = intervals.start_coordinate(store, interval_start)  # C(i-1); fails if the chain has a gap
    retry = retry or RetryPolicy()
    with endpoint.session(retry, log=log) as conn:
        now = source_clock(conn)
    due = end + settle_seconds
    if spec.heartbeat.enabled:  # the one write of the provider, in a session of its own
        with endpoint.session(retry, log=log, writable=True) as conn:
            write_heartbeat(conn, spec.heartbeat_database, spec.heartbeat.table, spec.heartbeat.interval_seconds,
                            due_from=interval_end if now >= due else None)
    if now < due:
        log(f"source clock {dt.datetime.fromtimestamp(now, dt.timezone.utc):%H:%M:%S} UTC; interval ends at "
            f"{intervals.interval_key(interval_end)} (+{settle_seconds:.0f}s settle): {due - now:.0f}s to go")
        return None
    with endpoint.session(retry, log=log) as conn:
        current = capture(conn)
        verify_readable(conn, after, current)  # purged, reset or another server: fail before scanning
    coordinate = retry.call(lambda: find_interval_end(endpoint, after, interval_end, current, log=log), log=log)
    held = intervals.record_end(store, interval_end, coordinate)
    log(f"interval ending {intervals.interval_key(interval_end)} ends at binlog coordinate {held}")
    return held
