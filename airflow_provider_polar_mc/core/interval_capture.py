"""The end of an incremental interval in the binlog: wait for the source's clock to pass it, then fix
the binlog coordinate where the interval's transactions end, once (first writer wins).

The BinlogSensor/BinlogTrigger call :func:`capture_interval_end`; the batch then reads the recorded
range (core/incremental.py).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from airflow_provider_polar_mc.core import intervals, sqltext
from airflow_provider_polar_mc.core.binlog.coordinates import capture
from airflow_provider_polar_mc.core.destination.checkpoint import CheckpointStore
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.model import BinlogCoordinate
from airflow_provider_polar_mc.core.retry import RetryPolicy
from airflow_provider_polar_mc.spec import MigrationSpec


def source_clock(conn) -> float:
    with conn.cursor() as cur:
        cur.execute("SELECT UNIX_TIMESTAMP(NOW(6))")
        return float(cur.fetchone()[0])


def write_heartbeat(conn, database: str, table: str, interval_seconds: int) -> None:
    """Keep an idle source's binlog moving and make latency measurable: one row, refreshed at most every
    ``interval_seconds`` (each refresh is a binlog event, so the recorded coordinates keep advancing)."""
    name = sqltext.quote_mysql_table(database, table)
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE IF NOT EXISTS {name} (id TINYINT PRIMARY KEY, beat_at DATETIME(6) NOT NULL)")
        cur.execute(f"INSERT IGNORE INTO {name} VALUES (1, UTC_TIMESTAMP(6))")
        cur.execute(
            f"UPDATE {name} SET beat_at = UTC_TIMESTAMP(6) "
            f"WHERE id = 1 AND beat_at < UTC_TIMESTAMP(6) - INTERVAL {int(interval_seconds)} SECOND"
        )


def capture_interval_end(
    spec: MigrationSpec,
    endpoint: MySqlEndpoint,
    store: CheckpointStore,
    interval_end: dt.datetime,
    *,
    settle_seconds: float,
    retry: RetryPolicy | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> BinlogCoordinate | None:
    """C(i) for the interval ending at ``interval_end``: the recorded one if any; else, once the
    source's clock has passed ``interval_end + settle_seconds``, the current end of binlog, recorded
    (first writer wins). None while it is too early (or the setup has not recorded C0 yet)."""
    recorded = intervals.recorded_end(store, interval_end)
    if recorded is not None:
        return recorded
    if store.get(intervals.SNAPSHOT_KIND, intervals.SNAPSHOT_KEY) is None:
        log("waiting for the setup (full load) to record the snapshot coordinate")
        return None
    retry = retry or RetryPolicy()
    if spec.heartbeat.enabled:  # the one write of the provider, in a session of its own
        with endpoint.session(retry, log=log, writable=True) as conn:
            write_heartbeat(conn, spec.heartbeat_database, spec.heartbeat.table, spec.heartbeat.interval_seconds)
    with endpoint.session(retry, log=log) as conn:
        now = source_clock(conn)
        due = intervals.utc(interval_end).timestamp() + settle_seconds
        if now < due:
            log(f"source clock {dt.datetime.fromtimestamp(now, dt.timezone.utc):%H:%M:%S} UTC; interval ends at "
                f"{intervals.interval_key(interval_end)} (+{settle_seconds:.0f}s settle): {due - now:.0f}s to go")
            return None
        coordinate = capture(conn)
    held = intervals.record_end(store, interval_end, coordinate)
    log(f"interval ending {intervals.interval_key(interval_end)} ends at binlog coordinate {held}")
    return held
