"""Key-range planning on a real server, coordinates, and the checkpoint store in the emulator."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest

from airflow_provider_polar_mc.core.binlog.coordinates import capture, verify_readable
from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.model import BinlogCoordinate
from airflow_provider_polar_mc.core.source.chunking import (
    KeyRange,
    decode_key,
    encode_key,
    plan_ranges,
    range_predicate,
    sql_literal,
)
from airflow_provider_polar_mc.exceptions import BinlogUnavailable, SourceChanged

pytestmark = pytest.mark.integration


@pytest.fixture
def db(mysql_server):
    name = f"chunk_{uuid.uuid4().hex[:8]}"
    mysql_server.execute(f"CREATE DATABASE {name}")
    yield name
    mysql_server.execute(f"DROP DATABASE {name}")


def _count(conn, db, table, key, r):
    with conn.cursor() as cur:
        cur.execute(f"SELECT COUNT(*) FROM `{db}`.`{table}` WHERE {range_predicate(key, r, sql_literal())}")
        return cur.fetchone()[0]


def test_sparse_integer_key_ranges_cover_every_row_once(mysql_server, db):
    ids = [1, 2, 3, 10**6, 10**6 + 1] + list(range(10**12, 10**12 + 95))
    mysql_server.execute(f"CREATE TABLE {db}.t (id BIGINT PRIMARY KEY)", f"INSERT INTO {db}.t VALUES " + ",".join(f"({i})" for i in ids))
    conn = mysql_server.connect()
    ranges = plan_ranges(conn, db, "t", ("id",), chunk_rows=7)
    counts = [_count(conn, db, "t", ("id",), r) for r in ranges]
    assert sum(counts) == len(ids) and max(counts) == 7
    assert [r.index for r in ranges] == list(range(len(ranges)))
    assert ranges[0].lower is None and ranges[-1].upper is None
    # Rows inserted beyond the last key after planning still land in the last, open-ended range.
    mysql_server.execute(f"INSERT INTO {db}.t VALUES ({10**13})")
    assert _count(conn, db, "t", ("id",), ranges[-1]) == counts[-1] + 1


def test_composite_string_key_ranges(mysql_server, db):
    mysql_server.execute(
        f"CREATE TABLE {db}.t (region VARCHAR(8), code VARBINARY(4), d DATE, PRIMARY KEY (region, code, d))",
        f"INSERT INTO {db}.t VALUES " + ",".join(f"('r{i % 3}', X'{i:04x}', '2024-01-{1 + i % 28:02d}')" for i in range(50)),
    )
    conn = mysql_server.connect()
    key = ("region", "code", "d")
    ranges = plan_ranges(conn, db, "t", key, chunk_rows=8)
    counts = [_count(conn, db, "t", key, r) for r in ranges]
    assert sum(counts) == 50 and max(counts) <= 8
    # Ranges survive the JSON round trip of the checkpoint.
    for r in ranges:
        assert KeyRange.from_dict(r.to_dict()) == r


def test_key_encoding_round_trips():
    values = (1, "x", b"\x00\xff", decimal.Decimal("12.30"), dt.datetime(2024, 1, 2, 3, 4, 5, 6), dt.date(2024, 1, 2), 1.5, None)
    assert decode_key(encode_key(values)) == values


def test_coordinates_capture_order_and_reset_detection(mysql_server_factory):
    server = mysql_server_factory(max_binlog_size=4096)
    conn = server.connect()
    first = capture(conn)
    server.execute("CREATE DATABASE c", "CREATE TABLE c.t (id INT PRIMARY KEY, v VARCHAR(200))")
    for i in range(40):
        server.execute(f"INSERT INTO c.t VALUES ({i}, REPEAT('x', 200))")
    later = capture(conn)
    assert later.key() > first.key() and later.file_index > first.file_index  # rotated
    assert BinlogCoordinate.from_dict(later.to_dict()) == later
    verify_readable(conn, first, later)
    server.purge_binary_logs_to(later.log_file)  # waits until MariaDB has really removed the older files
    with pytest.raises(BinlogUnavailable, match=first.log_file):
        verify_readable(conn, first, capture(conn))
    server.execute("RESET MASTER")
    with pytest.raises(SourceChanged, match="re-run the setup"):
        verify_readable(conn, later, capture(conn))
    other = BinlogCoordinate(later.log_file, later.log_pos, server_id=99)
    with pytest.raises(SourceChanged, match="server_id"):
        verify_readable(conn, other, capture(conn))


def test_checkpoint_store_latest_and_first_writer_wins(emulator):
    destination = MaxComputeDestination(emulator.client())
    migration = f"m_{uuid.uuid4().hex[:8]}"
    a = MaxComputeCheckpointStore(destination, migration)
    b = MaxComputeCheckpointStore(destination, migration)
    assert a.get("interval", "2026-01-01") is None
    a.put("progress", "t1", {"blocks": 1})
    b.put("progress", "t1", {"blocks": 2})
    assert a.get("progress", "t1") == {"blocks": 2}
    first = a.put_once("interval", "2026-01-01", {"pos": 100})
    second = b.put_once("interval", "2026-01-01", {"pos": 200})
    assert first == second == {"pos": 100}
    assert b.items("progress") == {"t1": {"blocks": 2}}
    # Another migration's state is separate.
    assert MaxComputeCheckpointStore(destination, migration + "_x").get("progress", "t1") is None
