"""Where an incremental interval ends in the binlog, derived from the binlog itself.

The rule (docs/interval-boundaries.md)
--------------------------------------
C(e), the end coordinate of the interval ending at time e, is the start position of the **first
transaction after C(prev) in binlog order whose commit time is >= e**. If no such transaction exists
up to ``until`` (the source's current end of binlog, captured after the source's clock passed
e + settle_seconds), C(e) is ``until``. C(prev) is the previous interval's recorded end coordinate (C0,
the snapshot coordinate, for the chain's first interval).

* With a monotonic clock this is the transaction boundary after the last transaction committed before e.
* When the clock steps back (an NTP step, transactions replicated from another source), a transaction
  with commit time < e that lies in the binlog after the boundary goes to the next interval(s):
  positions never move back, so every transaction is in exactly one interval.
* Intervals are half-open like Airflow's data intervals: a commit at exactly e belongs to the next one.

Because C(e) depends only on C(prev), e and the binlog (not on when the sensor ran), a late run, a
catch-up and a backfill fix the coordinate an on-time run would have fixed.

Commit time per server
----------------------
* **MySQL 8 / PolarDB**: ``original_commit_timestamp`` (microseconds since the epoch) of the
  transaction's GTID event (type 33) or ANONYMOUS_GTID event (type 34, written when gtid_mode=OFF),
  parsed here (:func:`mysql_gtid_commit_time`): mysql-replication 1.0.17 does not parse it. Servers
  before 8.0.1 write no timestamps there, and tagged GTID events (type 42, MySQL 8.3+) use another
  encoding: for those the event header's timestamp (seconds).
* **MariaDB**: the header timestamp (seconds) of the transaction's GTID event (type 0xA2), which is the
  start time of the COMMIT statement (of the statement itself in autocommit): the commit time truncated
  to seconds, as long as COMMIT itself is quick.
* **No GTID-type events** (MySQL 5.6 without GTIDs): the header timestamp (seconds) of the BEGIN or DDL
  query event that starts the transaction.

The scan asks mysql-replication only for the events that start or end transactions or files (rows
events are not decoded), stops at ``until`` and treats an earlier end of stream as an error, as the
bounded reader does (core/binlog/reader.py).
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from airflow_provider_polar_mc.core import compat
from airflow_provider_polar_mc.core.binlog.coordinates import _gtid_at, choose_replica_server_id
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.model import BinlogCoordinate, binlog_file_index
from airflow_provider_polar_mc.exceptions import BinlogUnavailable, SourceChanged

MYSQL_GTID_EVENT = 0x21
MYSQL_ANONYMOUS_GTID_EVENT = 0x22
MYSQL_GTID_TAGGED_EVENT = 0x2A  # MySQL 8.3+; its own serialisation, no fixed layout to read
MARIADB_GTID_EVENT = 0xA2

# Gtid_event's layout after the common header (MySQL libbinlogevents, control_events.cpp):
# 1 byte flags, 16 bytes SID, 8 bytes GNO [MySQL 5.6 stops here], 1 byte logical-clock type (2),
# 8 bytes last_committed, 8 bytes sequence_number [5.7 stops here], 7 bytes immediate_commit_timestamp,
# and, when its bit 55 is set, 7 bytes original_commit_timestamp (else original == immediate).
_GNO_END = 1 + 16 + 8
_LOGICAL_CLOCK_TYPE = 2
_LOGICAL_CLOCKS_END = _GNO_END + 1 + 8 + 8
_TIMESTAMP_LENGTH = 7
_ORIGINAL_FOLLOWS = 1 << 55

MICROS = 1_000_000


def mysql_gtid_commit_time(body: bytes) -> int | None:
    """The ``original_commit_timestamp`` (microseconds since the epoch) in the body of a MySQL GTID or
    ANONYMOUS_GTID event (the bytes after the 19-byte common header, without the checksum); None when
    the server wrote no timestamps (MySQL before 8.0.1).

    Raises :class:`ValueError` for a body too short for the fields it announces.
    """
    if len(body) < _GNO_END:
        raise ValueError(f"a GTID event body of {len(body)} bytes is shorter than flags, SID and GNO ({_GNO_END})")
    if len(body) == _GNO_END or body[_GNO_END] != _LOGICAL_CLOCK_TYPE:
        return None  # MySQL 5.6, or a logical clock this layout does not describe: no timestamps known
    if len(body) < _LOGICAL_CLOCKS_END:
        raise ValueError(f"a GTID event body of {len(body)} bytes ends inside its logical clocks")
    if len(body) < _LOGICAL_CLOCKS_END + _TIMESTAMP_LENGTH:
        return None  # MySQL 5.7 / 8.0.0: logical clocks only
    immediate = int.from_bytes(body[_LOGICAL_CLOCKS_END : _LOGICAL_CLOCKS_END + _TIMESTAMP_LENGTH], "little")
    if not immediate & _ORIGINAL_FOLLOWS:
        return immediate  # committed first on this server: original == immediate
    start = _LOGICAL_CLOCKS_END + _TIMESTAMP_LENGTH
    if len(body) < start + _TIMESTAMP_LENGTH:
        raise ValueError(f"a GTID event body of {len(body)} bytes announces an original_commit_timestamp it lacks")
    return int.from_bytes(body[start : start + _TIMESTAMP_LENGTH], "little")


# --- the decision, without a server -------------------------------------------------------------------


@dataclass(frozen=True)
class TransactionStart:
    """Where a transaction starts in the binlog and when it committed (microseconds since the epoch;
    whole seconds on MariaDB and on servers without commit timestamps). ``kind`` names the event that
    started it: ``mysql_gtid``, ``mariadb_gtid`` or ``query``."""

    log_file: str
    log_pos: int
    commit_time: int
    kind: str = "mysql_gtid"

    def key(self) -> tuple[int, int]:
        return BinlogCoordinate(self.log_file, self.log_pos).key()


def first_at_or_after(starts: Iterable[TransactionStart], interval_end: int) -> TransactionStart | None:
    """The rule itself: the first transaction (in binlog order) whose commit time is >= ``interval_end``
    (microseconds since the epoch), or None. Consumes ``starts`` only as far as needed."""
    for start in starts:
        if start.commit_time >= interval_end:
            return start
    return None


class TransactionStarts:
    """Recognises the events that start transactions, fed in binlog order.

    On servers that write a GTID-type event before every transaction (MariaDB 10+, MySQL 5.7+ whatever
    its gtid_mode, MySQL 5.6 with GTIDs) only those start transactions. Without them (MySQL 5.6 without
    GTIDs) a transaction starts with its BEGIN query, or is a single DDL/statement query outside one.
    """

    def __init__(self) -> None:
        self._gtid_events = False
        self._in_begin = False

    def file_started(self, server_version: str) -> None:
        """A new binlog file (its format description event), written by ``server_version``."""
        self._in_begin = False
        if "mariadb" in server_version.lower():
            self._gtid_events = True
            return
        try:
            version = tuple(int(part) for part in server_version.split("-")[0].split(".")[:2])
        except ValueError:
            return
        self._gtid_events = self._gtid_events or version >= (5, 7)

    def gtid(self, log_file: str, log_pos: int, commit_time: int, kind: str) -> TransactionStart:
        self._gtid_events = True
        self._in_begin = False
        return TransactionStart(log_file, log_pos, commit_time, kind)

    def query(self, log_file: str, log_pos: int, statement: str, timestamp: int) -> TransactionStart | None:
        if self._gtid_events:
            return None  # BEGIN, DDL, SAVEPOINT ... inside a transaction its GTID event started
        verb = statement.strip().rstrip(";").strip().upper()
        if verb in ("COMMIT", "ROLLBACK"):
            self._in_begin = False
            return None
        if self._in_begin:
            return None  # a statement (statement-based format) inside the open transaction
        self._in_begin = verb == "BEGIN" or verb.startswith("XA START")
        return TransactionStart(log_file, log_pos, timestamp * MICROS, "query")

    def transaction_ended(self) -> None:
        """An Xid (or XA prepare) event: the open transaction committed."""
        self._in_begin = False


# --- the scan ---------------------------------------------------------------------------------------------


def epoch_micros(moment: dt.datetime) -> int:
    """``moment`` (time-zone aware) in microseconds since the epoch, exactly."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: interval ends must be time-zone aware")
    moment = moment.astimezone(dt.timezone.utc)
    return calendar.timegm(moment.utctimetuple()) * MICROS + moment.microsecond


def find_interval_end(
    endpoint: MySqlEndpoint,
    after: BinlogCoordinate,
    interval_end: dt.datetime,
    until: BinlogCoordinate,
    *,
    replica_server_id: int | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> BinlogCoordinate:
    """C(e) for ``interval_end`` by the module's rule: the start of the first transaction starting at or
    after ``after`` (and before ``until``) committed at or after ``interval_end``, else ``until``.

    ``after`` is C(prev); ``until`` the source's end of binlog, captured once its clock passed
    ``interval_end`` + settle_seconds. Check both with ``coordinates.verify_readable`` first. The
    result carries the server identity of ``until``, MariaDB's GTID state at its position (what
    ``verify_readable`` later compares) and ``captured_at`` = ``interval_end``: every transaction before
    it committed before that time (but for a clock that stepped back).
    """
    end_us = epoch_micros(interval_end)
    if until.key() < after.key():
        raise SourceChanged(
            f"the end of binlog {until} lies before the previous interval's end {after}: the binary log was reset "
            "or this is another server. Fix: re-run the setup (full load) for this migration",
            expected=str(after),
            actual=str(until),
        )
    started = time.monotonic()
    found, events = (None, 0) if until.key() == after.key() else _scan(endpoint, after, until, end_us, replica_server_id)
    moment = end_us / MICROS
    if found is None:
        log(f"no transaction committed at or after {interval_end.isoformat()} in ({after}, {until}) "
            f"({events:,} events, {time.monotonic() - started:.1f}s): the interval ends at the end of binlog")
        return replace(until, captured_at=moment)
    gtid = ""
    if found.kind == "mariadb_gtid":
        # The GTID state at the boundary, which verify_readable compares when the next interval starts here.
        with endpoint.session() as conn, conn.cursor() as cur:
            at = _gtid_at(cur, found.log_file, found.log_pos)
        if at is None:
            raise BinlogUnavailable(
                f"the source does not report a GTID state at {found.log_file}:{found.log_pos}, where a transaction "
                "starts: the binlog changed while it was scanned. Fix: retry; if it persists check the source's "
                "binlog files (SHOW BINARY LOGS)",
                missing_file=found.log_file,
            )
        gtid = at
    log(f"first transaction committed at or after {interval_end.isoformat()} starts at {found.log_file}:"
        f"{found.log_pos} (commit time {found.commit_time / MICROS:.6f}; {events:,} events, "
        f"{time.monotonic() - started:.1f}s)")
    return BinlogCoordinate(
        log_file=found.log_file,
        log_pos=found.log_pos,
        gtid=gtid,
        server_id=until.server_id,
        server_uuid=until.server_uuid,
        captured_at=moment,
    )


def _stream(endpoint: MySqlEndpoint, after: BinlogCoordinate, server_id: int) -> tuple[Any, dict[str, type]]:
    from pymysqlreplication import BinLogStreamReader
    from pymysqlreplication.event import (
        FormatDescriptionEvent,
        GtidEvent,
        MariadbGtidEvent,
        NotImplementedEvent,
        QueryEvent,
        RotateEvent,
        XAPrepareEvent,
        XidEvent,
    )

    classes = {
        "rotate": RotateEvent,
        "format": FormatDescriptionEvent,
        "query": QueryEvent,
        "xid": XidEvent,
        "xa_prepare": XAPrepareEvent,
    }
    stream = BinLogStreamReader(
        connection_settings=endpoint.replication_settings(),
        server_id=server_id,
        resume_stream=True,
        blocking=False,
        log_file=after.log_file,
        log_pos=after.log_pos,
        # What starts or ends a transaction or a file; ANONYMOUS_GTID (and tagged GTID) events arrive as
        # NotImplementedEvent, which only skips their bytes. Rows events are not decoded at all.
        only_events=[*classes.values(), GtidEvent, MariadbGtidEvent, NotImplementedEvent],
        filter_non_implemented_events=False,
        # The classic dump honours log_file/log_pos on MariaDB too (core/binlog/reader.py).
        is_mariadb=False,
        enable_logging=False,
    )
    return stream, classes


def _commit_time(event: Any, event_type: int) -> tuple[int, str]:
    if event_type == MARIADB_GTID_EVENT:
        return event.packet.timestamp * MICROS, "mariadb_gtid"
    if event_type in (MYSQL_GTID_EVENT, MYSQL_ANONYMOUS_GTID_EVENT):
        body = compat.event_body(event)
        if body is not None:
            try:
                commit = mysql_gtid_commit_time(body)
            except ValueError as exc:
                raise BinlogUnavailable(
                    f"cannot read the GTID event at {event.packet.log_pos - event.packet.event_size}: {exc}. Fix: "
                    "check the source's binlog (mysqlbinlog) and its server version"
                ) from exc
            if commit is not None:
                return commit, "mysql_gtid"
    return event.packet.timestamp * MICROS, "mysql_gtid"  # no timestamps in the event: its header's seconds



def _scan(
    endpoint: MySqlEndpoint,
    after: BinlogCoordinate,
    until: BinlogCoordinate,
    end_us: int,
    replica_server_id: int | None,
) -> tuple[TransactionStart | None, int]:
    """(the first transaction start in [after, until) committed at or after ``end_us``, or None; events seen)."""
    server_id = choose_replica_server_id(replica_server_id, until.server_id)
    stream, classes = _stream(endpoint, after, server_id)
    seen = [0]
    try:
        with contextlib.closing(_transaction_starts(stream, classes, after, until, seen)) as starts:
            return first_at_or_after(starts, end_us), seen[0]
    finally:
        stream.close()


def _transaction_starts(
    stream: Any, classes: dict[str, type], after: BinlogCoordinate, until: BinlogCoordinate, seen: list[int]
) -> Iterator[TransactionStart]:
    """The transactions starting in [after, until), in binlog order, read from ``stream`` (a dump from
    ``after``); ends at ``until``, never at the end of the stream (an earlier end is an error)."""
    rotate, format_description, query = classes["rotate"], classes["format"], classes["query"]
    ends = (classes["xid"], classes["xa_prepare"])
    gtid_types = (MYSQL_GTID_EVENT, MYSQL_ANONYMOUS_GTID_EVENT, MYSQL_GTID_TAGGED_EVENT, MARIADB_GTID_EVENT)
    until_key, until_index, after_index = until.key(), until.file_index, after.file_index
    starts = TransactionStarts()
    current_file: str | None = None
    file_index = -1
    last_start = (-1, -1)
    for event in stream:
        seen[0] += 1
        cls, packet = event.__class__, event.packet
        if cls is rotate:
            if current_file is None and event.next_binlog != after.log_file:
                raise BinlogUnavailable(
                    f"the binlog scan started in {event.next_binlog}, not at the requested {after}: the start "
                    "position was not honoured. Fix: retry; if it persists check the source's binlog files"
                )
            current_file = event.next_binlog
            file_index = binlog_file_index(current_file)
            if file_index > until_index:
                return  # ``until`` was the end of the previous file
            continue
        if cls is format_description:
            # At the dump's start (artificial) and at the head of every file; never inside a transaction.
            starts.file_started(event.mysql_version_str)
            continue
        next_position = packet.log_pos
        if next_position == 0:
            continue  # an artificial event the server sends when a dump starts (no place in the log)
        event_start = next_position - packet.event_size
        here = (file_index, event_start)
        if event_start < 0 or here <= last_start:
            raise BinlogUnavailable(f"binlog position went backwards at {current_file}:{next_position} while scanning")
        last_start = here
        if file_index == after_index and event_start < after.log_pos:
            raise BinlogUnavailable(
                f"the binlog scan returned an event at {current_file}:{event_start}, before the start {after}: "
                "the start position was not honoured"
            )
        if here >= until_key:
            # At or past ``until`` (a server status position, so an event boundary): the events in between,
            # if any, were of kinds the scan does not ask for (MariaDB's Binlog_checkpoint, Gtid_list ...).
            return
        if (file_index, next_position) > until_key:
            raise BinlogUnavailable(
                f"the end of binlog {until} captured before the scan is not at an event boundary of "
                f"{until.log_file}. Fix: retry"
            )
        if packet.event_type in gtid_types:
            commit, kind = _commit_time(event, packet.event_type)
            yield starts.gtid(current_file or "", event_start, commit, kind)
        elif cls is query:
            start = starts.query(current_file or "", event_start, event.query, packet.timestamp)
            if start is not None:
                yield start
        elif cls in ends:
            starts.transaction_ended()
        if (file_index, next_position) == until_key:
            return
    if stream.log_file and (binlog_file_index(stream.log_file), stream.log_pos) >= until_key:
        return  # the stream's last events (not asked for, but counted by the library) reached ``until``
    raise BinlogUnavailable(
        f"the binlog stream ended at {stream.log_file}:{stream.log_pos} before the end of binlog {until} captured "
        "before the scan. Fix: retry, and if it persists check the source's binlog files (SHOW BINARY LOGS)"
    )
