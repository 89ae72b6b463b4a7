"""The interval boundary rule without a server (core/binlog/boundaries.py): MySQL's GTID event bodies
built from the documented layout, the decision over synthetic (position, commit time) sequences, and
which events start transactions. The scan against a real server is tested in
tests/integration/test_interval_boundaries.py."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from airflow_provider_polar_mc.core.binlog.boundaries import (
    MICROS,
    TransactionStart,
    TransactionStarts,
    epoch_micros,
    first_at_or_after,
    mysql_gtid_commit_time,
)

UTC = dt.timezone.utc


# --- MySQL's Gtid_event body ------------------------------------------------------------------------
# After the 19-byte common header (MySQL libbinlogevents control_events.cpp, Gtid_event; the
# mysql::binlog::event::Gtid_event page of the MySQL source documentation): 1 byte flags, 16 bytes SID,
# 8 bytes GNO (LE), 1 byte logical clock type (2), 8 bytes last_committed, 8 bytes sequence_number,
# 7 bytes immediate_commit_timestamp (LE); when its bit 55 is set, 7 more bytes original_commit_timestamp.
# Then (ignored here) the transaction length (packed integer) and the server versions.

SID = bytes.fromhex("3e11fa4771ca11e19e33c80aa9429562")


def gtid_body(*, immediate: int | None = None, original: int | None = None, gno: int = 23, sid: bytes = SID,
              clocks: bool = True, tail: bool = True) -> bytes:
    body = b"\x00" + sid + gno.to_bytes(8, "little")
    if not clocks:
        return body  # MySQL 5.6
    body += bytes([2]) + (7).to_bytes(8, "little") + (8).to_bytes(8, "little")
    if immediate is None:
        return body  # MySQL 5.7
    if original is not None and original != immediate:
        body += (immediate | 1 << 55).to_bytes(7, "little") + original.to_bytes(7, "little")
    else:
        body += immediate.to_bytes(7, "little")
    if tail:
        body += bytes([0xFC]) + (1234).to_bytes(2, "little")  # transaction length, as a packed integer
        body += (80036).to_bytes(4, "little")  # immediate_server_version (original == immediate)
    return body


COMMITTED = 1_767_225_600_123_456  # 2026-01-01T00:00:00.123456Z in microseconds


def test_commit_timestamp_of_a_transaction_that_originated_here():
    """Bit 55 clear: only the immediate timestamp is written, and it is the original one."""
    assert mysql_gtid_commit_time(gtid_body(immediate=COMMITTED)) == COMMITTED
    assert mysql_gtid_commit_time(gtid_body(immediate=COMMITTED, tail=False)) == COMMITTED


def test_original_commit_timestamp_of_a_replicated_transaction():
    """Bit 55 set: it is cleared from the immediate timestamp and the original one follows; the
    original (the commit on the server where the transaction was first committed) is the one used."""
    original, immediate = COMMITTED, COMMITTED + 2_500_000
    assert mysql_gtid_commit_time(gtid_body(immediate=immediate, original=original)) == original


def test_anonymous_gtid_event_has_the_same_layout():
    """ANONYMOUS_GTID (gtid_mode=OFF): zero SID, GNO 0, same fields."""
    body = gtid_body(immediate=COMMITTED, sid=bytes(16), gno=0)
    assert mysql_gtid_commit_time(body) == COMMITTED


@pytest.mark.parametrize("body", [gtid_body(clocks=False), gtid_body()], ids=["mysql-5.6", "mysql-5.7"])
def test_servers_without_commit_timestamps_give_none(body):
    assert mysql_gtid_commit_time(body) is None  # the scan then uses the header's seconds


def test_an_unknown_logical_clock_type_gives_none():
    body = bytearray(gtid_body(immediate=COMMITTED))
    body[25] = 3
    assert mysql_gtid_commit_time(bytes(body)) is None


@pytest.mark.parametrize(("body", "match"), [
    (gtid_body(clocks=False)[:20], "shorter than flags, SID and GNO"),
    (gtid_body()[:30], "inside its logical clocks"),
    (gtid_body(immediate=COMMITTED + 1, original=COMMITTED, tail=False)[:-3], "original_commit_timestamp"),
], ids=["no-gno", "cut-clocks", "cut-original"])
def test_a_too_short_body_is_an_error(body, match):
    with pytest.raises(ValueError, match=match):
        mysql_gtid_commit_time(body)


# --- the rule on synthetic sequences -------------------------------------------------------------------

def starts(*commit_seconds: float, file: str = "mysql-bin.000001") -> list[TransactionStart]:
    return [TransactionStart(file, 1000 + 100 * i, int(round(t * MICROS))) for i, t in enumerate(commit_seconds)]


def boundary(sequence: list[TransactionStart], after: int, end: float, until: int) -> int:
    """C(e) as a position: the first start at or after ``after`` committed at or after ``end``, else ``until``."""
    found = first_at_or_after((s for s in sequence if s.log_pos >= after), int(round(end * MICROS)))
    return found.log_pos if found is not None else until


def chain(sequence: list[TransactionStart], c0: int, ends: list[float], until: int) -> list[int]:
    out, previous = [], c0
    for end in ends:
        previous = boundary(sequence, previous, end, until)
        out.append(previous)
    return out


def test_monotonic_clock_boundary_follows_the_last_transaction_before_the_end():
    sequence = starts(10, 20, 59.999999, 60, 61, 125)
    until = 1000 + 100 * len(sequence)
    assert chain(sequence, 1000, [60, 120, 180], until) == [1300, 1500, until]  # 60 itself: the next interval


def test_a_commit_at_exactly_the_end_belongs_to_the_next_interval():
    sequence = starts(60)
    assert boundary(sequence, 1000, 60, 1100) == 1000  # [0, 60) is empty; the commit at 60 opens [60, 120)


def test_no_transaction_at_or_after_the_end_gives_the_end_of_binlog():
    assert boundary(starts(1, 2, 3), 1000, 60, 1300) == 1300
    assert first_at_or_after([], 0) is None


def test_a_clock_step_back_sends_the_late_transaction_to_the_next_interval():
    """The clock steps back after 61: the transaction stamped 50 lies after C(60) and belongs to [60, 120);
    positions never move back."""
    sequence = starts(10, 61, 50, 70, 130)
    assert chain(sequence, 1000, [60, 120], 1500) == [1100, 1400]


def assign(sequence: list[TransactionStart], bounds: list[int]) -> list[int]:
    """The interval index of every transaction: interval i holds [bounds[i-1], bounds[i])."""
    return [next((i for i, b in enumerate(bounds) if s.log_pos < b), len(bounds)) for s in sequence]


@pytest.mark.parametrize("seed", range(30))
def test_every_transaction_lands_in_exactly_one_interval_whatever_the_clock(seed):
    rng = random.Random(seed)
    clock, times = 1000.0, []
    for _ in range(rng.randint(0, 60)):
        clock += rng.choice([0, 0.4, 1, 3, 17]) if rng.random() > 0.15 else -rng.choice([1, 5, 40])  # steps back too
        times.append(clock)
    sequence = starts(*times)
    until = 1000 + 100 * len(sequence)
    ends = [960 + 60 * k for k in range(1, 12)]
    bounds = chain(sequence, 1000, ends, until)
    assert bounds == sorted(bounds)  # positions never move back
    intervals = assign(sequence, bounds)
    assert intervals == sorted(intervals)  # each in one interval, in binlog order
    by_position = {start.log_pos: start for start in sequence}
    for start, index in zip(sequence, intervals, strict=True):
        if index < len(ends):  # interval i holds only transactions committed before its end ...
            assert start.commit_time < ends[index] * MICROS
    for end, bound in zip(ends, bounds, strict=True):  # ... and ends where one committed at or after it
        assert bound == until or by_position[bound].commit_time >= end * MICROS
    if times == sorted(times):  # a monotonic clock: exactly the transactions committed in [e(i-1), e(i))
        for start, index in zip(sequence, intervals, strict=True):
            low = ends[index - 1] if index else float("-inf")
            high = ends[index] if index < len(ends) else float("inf")
            assert low * MICROS <= start.commit_time < high * MICROS


@pytest.mark.parametrize("seed", range(10))
def test_scanning_from_an_earlier_boundary_gives_the_same_coordinate(seed):
    """C(e2) computed from C0 equals C(e2) computed from C(e1): every transaction between them committed
    before e1 < e2, so a lost or re-captured checkpoint yields the same chain."""
    rng = random.Random(seed)
    times = [1000 + rng.uniform(-30, 300) for _ in range(40)]
    sequence = starts(*times)
    until = 1000 + 100 * len(sequence)
    c1 = boundary(sequence, 1000, 1060, until)
    assert boundary(sequence, c1, 1120, until) == boundary(sequence, 1000, 1120, until)


# --- which events start transactions ----------------------------------------------------------------------


def test_on_servers_with_gtid_events_only_they_start_transactions():
    for version in ("10.11.19-MariaDB-0+deb12u1-log", "8.0.36", "5.7.44-log"):
        detector = TransactionStarts()
        detector.file_started(version)
        assert detector.query("f.000001", 200, "BEGIN", 5) is None
        assert detector.query("f.000001", 300, "ALTER TABLE t ADD c INT", 5) is None
        start = detector.gtid("f.000001", 400, 7 * MICROS, "mariadb_gtid")
        assert (start.log_pos, start.commit_time, start.kind) == (400, 7 * MICROS, "mariadb_gtid")


def test_without_gtid_events_begin_and_standalone_statements_start_transactions():
    """MySQL 5.6 without GTIDs: BEGIN opens (statements inside do not start anything, SAVEPOINT
    included), COMMIT / Xid close, a DDL outside a transaction is one."""
    detector = TransactionStarts()
    detector.file_started("5.6.51-log")
    begin = detector.query("f.000001", 120, "BEGIN", 10)
    assert begin == TransactionStart("f.000001", 120, 10 * MICROS, "query")
    assert detector.query("f.000001", 200, "SAVEPOINT `a`", 11) is None
    assert detector.query("f.000001", 260, "INSERT INTO t VALUES (1)", 11) is None  # statement format
    detector.transaction_ended()  # Xid
    ddl = detector.query("f.000001", 400, "CREATE TABLE t2 (id INT)", 12)
    assert ddl is not None and ddl.log_pos == 400
    assert detector.query("f.000001", 500, "BEGIN", 13).log_pos == 500
    assert detector.query("f.000001", 600, "COMMIT", 14) is None  # a non-transactional engine's COMMIT query
    assert detector.query("f.000001", 700, "DROP TABLE t2", 15).log_pos == 700


def test_a_mysql_56_server_with_gtids_switches_to_gtid_events():
    detector = TransactionStarts()
    detector.file_started("5.6.51-log")
    detector.gtid("f.000001", 120, 10 * MICROS, "mysql_gtid")
    assert detector.query("f.000001", 190, "BEGIN", 10) is None


def test_epoch_micros_is_exact_and_refuses_naive_times():
    assert epoch_micros(dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)) == COMMITTED
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert epoch_micros(dt.datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=shanghai)) == COMMITTED
    with pytest.raises(ValueError, match="naive"):
        epoch_micros(dt.datetime(2026, 1, 1))
