"""Binlog coordinates: where in the source's change history a snapshot or an interval ends.

A coordinate is (binlog file, position) at a transaction boundary, with the GTID state where the server
has one and the server's identity, so that a coordinate taken on one server is never silently applied
to another (a RESET MASTER or a failover to a server with other binlogs must fail loudly, not read as
"no changes"). Coordinates order changes; clocks do not (docs/architecture.md: coordinates, not clocks).

MySQL and MariaDB differ here, and both are handled:

- status command: ``SHOW MASTER STATUS`` (MariaDB, MySQL <= 8.3) or ``SHOW BINARY LOG STATUS`` (MySQL >= 8.2,
  the only one in 8.4+);
- GTIDs: MySQL/PolarDB report ``Executed_Gtid_Set`` (``uuid:1-100``); MariaDB keeps ``@@gtid_binlog_pos``
  (``domain-server-seq``);
- identity: MySQL/PolarDB have ``@@server_uuid``; MariaDB has none, so its identity is the ``server_id``
  plus the GTID position (which a RESET MASTER rewinds).
"""

from __future__ import annotations

import random
from typing import Any

import pymysql

from airflow_provider_polar_mc.core.model import BinlogCoordinate
from airflow_provider_polar_mc.exceptions import BinlogUnavailable, SourceChanged


def _status_row(cur: pymysql.cursors.Cursor) -> dict[str, Any]:
    for statement in ("SHOW MASTER STATUS", "SHOW BINARY LOG STATUS"):
        try:
            cur.execute(statement)
        except pymysql.err.ProgrammingError as exc:
            if exc.args and exc.args[0] == 1064:  # syntax error: the other spelling
                continue
            raise
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] in (1227, 1044, 1045):
                raise BinlogUnavailable(
                    f"cannot read the binlog position: {exc.args[-1]}. Fix: GRANT REPLICATION CLIENT "
                    "(MariaDB: BINLOG MONITOR) ON *.* to the source account"
                ) from exc
            raise
        row = cur.fetchone()
        if row is None:
            raise BinlogUnavailable(
                "the source has binary logging off (empty binlog status). Fix: enable log_bin "
                "(PolarDB: loose_polar_log_bin=ON) with binlog_format=ROW and restart"
            )
        names = [d[0] for d in cur.description]
        return dict(zip(names, row, strict=False))
    raise BinlogUnavailable("the source understands neither SHOW MASTER STATUS nor SHOW BINARY LOG STATUS")


def capture(conn: pymysql.Connection) -> BinlogCoordinate:
    """The source's current end of binlog: every transaction committed so far lies before it."""
    with conn.cursor() as cur:
        status = _status_row(cur)
        cur.execute("SELECT @@server_id, UNIX_TIMESTAMP(NOW(6))")
        server_id, now = cur.fetchone()
        server_uuid = ""
        try:
            cur.execute("SELECT @@server_uuid")
            server_uuid = cur.fetchone()[0] or ""
        except pymysql.err.MySQLError:
            pass  # MariaDB has no server_uuid
        gtid = (status.get("Executed_Gtid_Set") or "").replace("\n", "")
        if not server_uuid:
            # MariaDB: the GTID state exactly at (File, Position), not @@gtid_binlog_pos a moment later, so
            # that verify_readable can check the coordinate still means the same place in the history.
            gtid = _gtid_at(cur, status["File"], int(status["Position"]))
            if gtid is None:
                try:
                    cur.execute("SELECT @@gtid_binlog_pos")
                    gtid = cur.fetchone()[0] or ""
                except pymysql.err.MySQLError:
                    gtid = ""
    return BinlogCoordinate(
        log_file=status["File"],
        log_pos=int(status["Position"]),
        gtid=gtid,
        server_id=int(server_id),
        server_uuid=server_uuid,
        captured_at=float(now),
    )


def _gtid_at(cur: pymysql.cursors.Cursor, log_file: str, log_pos: int) -> str | None:
    """MariaDB's GTID state at an event boundary of its binlog (``BINLOG_GTID_POS``); None when the
    position is no event boundary of that file (or the server has no such function: MySQL)."""
    try:
        cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (log_file, log_pos))
    except pymysql.err.MySQLError:
        return None
    row = cur.fetchone()
    return None if row is None or row[0] is None else str(row[0])


def binary_logs(conn: pymysql.Connection) -> list[tuple[str, int]]:
    """(file, size) of every binlog the server still has, oldest first."""
    with conn.cursor() as cur:
        cur.execute("SHOW BINARY LOGS")
        return [(r[0], int(r[1])) for r in cur.fetchall()]


def _mariadb_seq(gtid: str) -> dict[tuple[int, int], int]:
    out: dict[tuple[int, int], int] = {}
    for part in filter(None, (p.strip() for p in gtid.split(","))):
        domain, server, seq = (int(x) for x in part.split("-"))
        out[(domain, server)] = seq
    return out


def verify_readable(conn: pymysql.Connection, start: BinlogCoordinate, current: BinlogCoordinate) -> None:
    """Fail loudly unless the binlog from ``start`` on is still on this same server.

    Raises :class:`SourceChanged` when the server is another one (different uuid / server_id), or its
    history was reset (GTID rewound, or ``start`` lies beyond the server's end), and
    :class:`BinlogUnavailable` when the file holding ``start`` was purged.
    """
    if start.server_uuid and current.server_uuid and start.server_uuid != current.server_uuid:
        raise SourceChanged(
            f"the source is another server (server_uuid {current.server_uuid}, recorded {start.server_uuid}): "
            "its binlog does not continue the recorded coordinate. Fix: point the connection back at the "
            "original server, or re-run the setup (full load) for this migration",
            expected=start.server_uuid,
            actual=current.server_uuid,
        )
    if start.server_id and current.server_id and start.server_id != current.server_id:
        raise SourceChanged(
            f"the source's server_id changed ({start.server_id} -> {current.server_id}). Fix: point the connection "
            "back at the original server, or re-run the setup (full load) for this migration",
            expected=start.server_id,
            actual=current.server_id,
        )
    if start.gtid and current.gtid and not start.server_uuid:
        before, now = _mariadb_seq(start.gtid), _mariadb_seq(current.gtid)
        rewound = [k for k, seq in before.items() if k in now and now[k] < seq]
        if rewound or (before and not set(before) & set(now)):
            raise SourceChanged(
                f"the source's GTID position went back ({start.gtid} -> {current.gtid}): its binary log was reset "
                "(RESET MASTER) or this is another server. Fix: re-run the setup (full load) for this migration",
                expected=start.gtid,
                actual=current.gtid,
            )
    if current.key() < start.key():
        raise SourceChanged(
            f"the recorded coordinate {start} lies beyond the source's end of binlog {current}: the binary log was "
            "reset or this is another server. Fix: re-run the setup (full load) for this migration",
            expected=str(start),
            actual=str(current),
        )
    files = dict(binary_logs(conn))
    if start.log_file not in files:
        oldest = min(files, default="(none)")
        raise BinlogUnavailable(
            f"binlog file {start.log_file} (recorded coordinate {start}) is no longer on the source; the oldest is "
            f"{oldest}. Changes after the coordinate are lost to the migration. Fix: re-run the setup (full load) "
            "for the affected tables, and keep binlogs longer (binlog_expire_logs_seconds >= 7 days)",
            missing_file=start.log_file,
        )
    if start.log_pos > files[start.log_file] and start.log_file != current.log_file:
        raise SourceChanged(
            f"recorded coordinate {start} lies beyond the end of {start.log_file} ({files[start.log_file]} bytes): "
            "the binary log was rewritten. Fix: re-run the setup (full load) for this migration",
        )
    if start.gtid and not start.server_uuid and not current.server_uuid:
        # MariaDB after RESET MASTER and enough new writes: same file name, a position and GTIDs past the
        # recorded ones, yet another history. The GTID state at the recorded position tells them apart.
        with conn.cursor() as cur:
            at = _gtid_at(cur, start.log_file, start.log_pos)
        if at is None or _mariadb_seq(at) != _mariadb_seq(start.gtid):
            raise SourceChanged(
                f"the binlog at the recorded coordinate {start} is another history now (GTID state there: "
                f"{at if at is not None else 'not an event boundary'}): the binary log was reset (RESET MASTER) "
                "or rewritten. Fix: re-run the setup (full load) for this migration",
                expected=start.gtid,
                actual=at or "",
            )


def choose_replica_server_id(requested: int | None, source_server_id: int) -> int:
    """The server id a binlog dump presents: ``requested``, or a random one (so parallel readers never
    evict each other); never the source's own."""
    server_id = requested
    while server_id is None or server_id == source_server_id:
        server_id = random.randint(1 << 30, (1 << 32) - 1)
    return server_id
