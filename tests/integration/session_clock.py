"""Writing "in the past" on MariaDB without waiting, for tests of time-true interval boundaries
(docs/interval-boundaries.md).

``SET TIMESTAMP = <unix seconds>`` sets one session's clock: the binlog events it writes (GTID events
included, whose timestamp is the commit time the boundaries use) carry that time, and ``NOW()`` returns
it, while the server's real clock (which the binlog sensor waits on) is untouched.

* :func:`snapshot_at` records C0 as if the snapshot had been taken at ``moment``: ``capture()`` reads
  ``UNIX_TIMESTAMP(NOW(6))`` from its session. Record it before the full load runs (the full load keeps
  a recorded C0: first writer wins), with no write in between or only writes meant to be after C0.
* :func:`execute_at` runs statements in a session whose clock is ``moment`` (each statement then
  commits "at" ``moment`` in autocommit).
"""

from __future__ import annotations

from airflow_provider_polar_mc.core.binlog.coordinates import capture
from airflow_provider_polar_mc.core.destination.checkpoint import CheckpointStore
from airflow_provider_polar_mc.core.full_load import SNAPSHOT_KEY, SNAPSHOT_KIND
from airflow_provider_polar_mc.core.model import BinlogCoordinate


def snapshot_at(store: CheckpointStore, server, moment: float) -> BinlogCoordinate:
    """Capture the end of binlog as C0 "at" ``moment`` (unix seconds) and record it (first writer wins)."""
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute("SET TIMESTAMP = %s", (moment,))
        c0 = capture(conn)
    finally:
        conn.close()
    assert abs(c0.captured_at - moment) < 1e-3, "the session clock did not take: is this MariaDB/MySQL?"
    return BinlogCoordinate.from_dict(store.put_once(SNAPSHOT_KIND, SNAPSHOT_KEY, c0.to_dict()))


def execute_at(server, moment: float, *statements: str, database: str | None = None) -> list[tuple]:
    """Run ``statements`` (autocommit) in a session whose clock is ``moment``; returns the last one's rows."""
    return server.execute(f"SET TIMESTAMP = {float(moment):.6f}", *statements, database=database)
