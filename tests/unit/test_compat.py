"""Canaries for every patch of a library's internals (core/compat.py): when one fails, the library
changed; its message says whether the patch can go or needs a new look. And each patch's effect."""

from __future__ import annotations

import io

import pyarrow as pa
import pymysql

from airflow_provider_polar_mc.core import compat


def test_pyodps_still_has_the_decimal_scale_bug():
    """Canary: when this fails, pyodps maps DECIMAL(p,0) correctly; delete patch_pyodps_decimal_scale."""
    assert compat.pyodps_decimal_scale_bug_present(), "pyodps fixed DECIMAL(p,0): remove patch_pyodps_decimal_scale()"


def test_pyodps_arrow_writer_still_has_two_checksum_registers():
    """Canary: when this fails, pyodps's Arrow writer changed; single_pass_checksums leaves it alone
    (no speed-up): check whether it still computes two CRC passes, then adapt or delete the patch."""
    assert compat.pyodps_arrow_writer_has_two_checksums(), "pyodps's Arrow writer changed: revisit single_pass_checksums"


def _arrow_block(patched: bool) -> bytes:
    from odps.models import TableSchema
    from odps.tunnel.io.writer import BaseArrowWriter

    out = io.BytesIO()
    writer = BaseArrowWriter(TableSchema.from_lists(["k", "v"], ["bigint", "string"]), out=out, chunk_size=4096)
    if patched:
        assert compat.single_pass_checksums(writer)
    batch = pa.record_batch([pa.array(range(5000), pa.int64()), pa.array([f"value {i}" * 3 for i in range(5000)])],
                            names=["k", "v"])
    for _ in range(3):
        writer.write(batch)
    writer.close()
    return out.getvalue()


def test_single_pass_checksums_send_the_same_bytes():
    """The patched writer's block (chunk CRCs and the block CRC included) is byte for byte pyodps's own."""
    assert _arrow_block(patched=True) == _arrow_block(patched=False)


def test_single_pass_checksums_leave_other_writers_alone():
    class Other:
        pass

    assert compat.single_pass_checksums(Other()) is False


def test_mysql_replication_packet_still_has_the_attributes_the_fast_decoder_reads():
    """Canary: when this fails, mysql-replication or pymysql renamed the packet's internals; the fast
    row decoder then falls back to the library's own (slower) decoding: adapt rows_event_buffer."""
    assert compat.mysql_replication_packet_shape_known(), "packet internals changed: revisit rows_event_buffer"


def test_rows_event_buffer_declines_a_partly_buffered_packet():
    class Wrapper:
        _BinLogPacketWrapper__data_buffer = b"\x01"

    class Event:
        packet = Wrapper()
        event_size = 10

    assert compat.rows_event_buffer(Event()) is None


def test_mysql_replication_still_hands_out_event_bodies_where_event_body_reads_them():
    """Canary: when this fails, mysql-replication or pymysql changed how an event's bytes are kept:
    event_body returns None and MySQL commit times fall back to the header's seconds: adapt event_body."""
    assert compat.mysql_replication_event_body_shape_known(), "packet layout changed: revisit event_body"


def test_event_body_declines_a_packet_of_another_shape():
    class Event:
        packet = object()
        event_size = 10

    assert compat.event_body(Event()) is None


def test_pymysql_still_reapplies_its_timeout_attributes():
    """Canary: when this fails, pymysql stores its socket timeouts elsewhere; connect_once's login
    bound would then also bound the session: adapt set_socket_timeouts."""
    assert compat.pymysql_timeouts_settable(), "pymysql's timeouts moved: revisit set_socket_timeouts"


def test_set_socket_timeouts_sets_an_unopened_connection():
    conn = pymysql.connect(host="127.0.0.1", read_timeout=1, write_timeout=1, defer_connect=True)
    assert compat.set_socket_timeouts(conn, None, 30.0)
    assert (conn._read_timeout, conn._write_timeout) == (None, 30.0)
