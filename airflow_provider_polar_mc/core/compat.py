"""Every patch of, or reach into, a pinned library's internals, in one place, each with its canary.

The provider leans on five private details of its libraries. Each is written here once, guarded so
that a library of another shape is left alone (falling back to the library's own public path), and
watched by a canary in ``tests/unit/test_compat.py`` that fails when the library changes: the canary's
message says whether the patch can go or needs a new look.

* **pyodps DECIMAL(p,0)** (:func:`patch_pyodps_decimal_scale`): a bug fix; canary
  :func:`pyodps_decimal_scale_bug_present`.
* **pyodps Arrow writer checksums** (:func:`single_pass_checksums`): a speed-up (one CRC pass over
  each block instead of two); canary :func:`pyodps_arrow_writer_has_two_checksums`.
* **mysql-replication row images** (:func:`rows_event_buffer`): the fast row decoder reads the
  event's bytes where the library keeps them; canary :func:`mysql_replication_packet_shape_known`.
* **mysql-replication event bodies** (:func:`event_body`): the interval boundary scan reads the commit
  timestamps of MySQL's GTID events, which the library does not parse; canary
  :func:`mysql_replication_event_body_shape_known`.
* **pymysql socket timeouts** (:func:`set_socket_timeouts`): a bounded login, then the session's own
  timeouts; canary :func:`pymysql_timeouts_settable`.
"""

from __future__ import annotations

import functools
import inspect
import operator
import sys
from collections.abc import Callable
from typing import Any

import pyarrow as pa

# --- pyodps: keep DECIMAL(p,0)'s scale ---------------------------------------------------------------

_PATCH_MARK = "_polar_mc_keeps_decimal_scale_0"


def pyodps_decimal_scale_bug_present() -> bool:
    """True while pyodps's own ``odps_type_to_arrow_type`` maps DECIMAL(p,0) to scale 18."""
    from odps import types as odps_types
    from odps.tunnel.io import types as io_types

    original = getattr(io_types.odps_type_to_arrow_type, "__wrapped__", io_types.odps_type_to_arrow_type)
    return original(odps_types.Decimal(20, 0)).scale != 0


def patch_pyodps_decimal_scale() -> bool:
    """Make pyodps map DECIMAL(p,0) to ``decimal128(p,0)``; idempotent. Returns True when it patched.

    pyodps 0.13.2's ``odps_type_to_arrow_type`` computes the scale as ``odps_type.scale or 18``, so
    scale 0 becomes 18 and its Arrow writer (which casts with ``safe=False``) garbles BIGINT UNSIGNED
    and BIT(64) values. The replacement is installed in ``odps.tunnel.io.types`` and in every loaded
    pyodps module that imported the function by name. Remove it once
    :func:`pyodps_decimal_scale_bug_present` turns False (a test watches for that).
    """
    from odps import types as odps_types
    from odps.tunnel.io import types as io_types

    current = io_types.odps_type_to_arrow_type
    if getattr(current, _PATCH_MARK, False):
        return False
    original = current

    def odps_type_to_arrow_type(odps_type: Any) -> pa.DataType:
        if isinstance(odps_type, odps_types.Decimal) and odps_type.precision and odps_type.scale == 0:
            decimal_type = pa.decimal256 if odps_type.precision > 38 else pa.decimal128
            return decimal_type(odps_type.precision, 0)
        return original(odps_type)

    odps_type_to_arrow_type.__wrapped__ = original  # type: ignore[attr-defined]
    setattr(odps_type_to_arrow_type, _PATCH_MARK, True)
    for name, module in list(sys.modules.items()):
        if (name == "odps" or name.startswith("odps.")) and getattr(module, "odps_type_to_arrow_type", None) is original:
            module.odps_type_to_arrow_type = odps_type_to_arrow_type  # type: ignore[attr-defined]
    return True


# --- pyodps: one CRC pass instead of two --------------------------------------------------------------------
# pyodps's Arrow writer (0.13, ``BaseArrowWriter._write_chunk``) runs two CRC32C computations over
# every byte it sends: ``_crc`` (per framing chunk, reset at each chunk boundary) and ``_crccrc``
# (the whole block). Both are functions of the same bytes, so one pass per write suffices: the CRC of
# each piece is computed once and folded into both registers with the standard CRC "combine"
# (advance a register over len(piece) zero bytes, a GF(2) matrix product). Same values on the wire
# (the Tunnel, and the emulator, verify both), about a third less CPU for the writer.

# The emulator has its own CRC code on purpose (emulator/tunnel_codec.py): it must check what the
# client sends independently, so a shared bug could not pass both sides unnoticed.
_CRC32C_POLY = 0x82F63B78  # reflected Castagnoli polynomial


def _gf2_times(matrix: list[int], vector: int) -> int:
    """The GF(2) product of a 32x32 bit matrix (its columns as ints) and a 32-bit vector."""
    return functools.reduce(operator.xor, (column for i, column in enumerate(matrix) if vector >> i & 1), 0)


def _zero_byte_powers() -> list[list[int]]:
    """Operators advancing a CRC register over 2**k zero bytes, k = 0..63."""
    op = [_CRC32C_POLY] + [1 << i for i in range(31)]  # one zero bit
    for _ in range(3):  # 2, 4, 8 bits: one byte
        op = [_gf2_times(op, op[i]) for i in range(32)]
    powers = [op]
    for _ in range(63):
        op = [_gf2_times(op, op[i]) for i in range(32)]
        powers.append(op)
    return powers


_ZERO_BYTE_POWERS = _zero_byte_powers()


def crc32c_combine(crc_a: int, crc_b: int, length_b: int) -> int:
    """CRC32C of ``a + b`` from the CRCs of ``a`` and ``b`` and the length of ``b``."""
    k = 0
    while length_b:
        if length_b & 1:
            crc_a = _gf2_times(_ZERO_BYTE_POWERS[k], crc_a)
        length_b >>= 1
        k += 1
    return crc_a ^ crc_b


def _crc32c_function() -> Callable[[bytes], int]:
    from odps.tunnel.checksum import Checksum

    def crc32c(data: bytes) -> int:
        checksum = Checksum()
        checksum.update(data)
        return checksum.getvalue()

    return crc32c


class _CombinedCrc:
    """Stands in for one of the writer's two ``Checksum`` objects (``update``/``getvalue``/``reset``).

    The chunk register computes each piece's CRC once and feeds it to its partner, the block
    register, whose own ``update`` is then a no-op (the writer always updates both with the same bytes).
    """

    def __init__(self, crc32c: Callable[[bytes], int], partner: _CombinedCrc | None = None):
        self._crc32c = crc32c
        self._partner = partner
        self._value = 0

    def update(self, data: bytes) -> None:
        if self._partner is None:
            return  # the block register: fed by its partner
        piece = self._crc32c(data)
        self._value = crc32c_combine(self._value, piece, len(data))
        self._partner._value = crc32c_combine(self._partner._value, piece, len(data))

    def getvalue(self) -> int:
        return self._value

    def reset(self) -> None:
        self._value = 0


def single_pass_checksums(writer: object) -> bool:
    """Make a fresh pyodps Arrow block writer compute its two checksums in one pass; True if done.

    Leaves writers of other shapes (other pyodps versions) alone.
    """
    from odps.tunnel.checksum import Checksum

    crc, crccrc = getattr(writer, "_crc", None), getattr(writer, "_crccrc", None)
    if not (isinstance(crc, Checksum) and isinstance(crccrc, Checksum) and hasattr(writer, "_write_chunk")):
        return False
    if crc.getvalue() != 0 or crccrc.getvalue() != 0:
        return False  # already written to
    block = _CombinedCrc(_CRC32C)
    writer._crccrc = block  # type: ignore[attr-defined]
    writer._crc = _CombinedCrc(_CRC32C, partner=block)  # type: ignore[attr-defined]
    return True


_CRC32C = _crc32c_function()


def pyodps_arrow_writer_has_two_checksums() -> bool:
    """True while pyodps's Arrow block writer keeps the two ``Checksum`` registers (``_crc``,
    ``_crccrc``) that :func:`single_pass_checksums` replaces."""
    from odps.tunnel.io.writer import BaseArrowWriter

    init, write_chunk = inspect.getsource(BaseArrowWriter.__init__), inspect.getsource(BaseArrowWriter._write_chunk)
    return all(f"self.{name} = Checksum()" in init and f"self.{name}.update(buf)" in write_chunk
               for name in ("_crc", "_crccrc"))


# --- mysql-replication: the row images' bytes ---------------------------------------------------
# The library decodes row images value by value in Python; core.binlog.rows_decoder decodes the same
# bytes faster. It needs the packet's byte string and read position, which the library keeps private.


def rows_event_buffer(event: Any) -> tuple[bytes, int, int] | None:
    """``(data, position, end)`` of a rows event's row images inside the packet the library read, or
    None when the library has buffered part of it (then only its own decoder can go on)."""
    wrapper = event.packet
    if getattr(wrapper, "_BinLogPacketWrapper__data_buffer", b"x"):
        return None
    packet = getattr(wrapper, "packet", None)
    data, position = getattr(packet, "_data", None), getattr(packet, "_position", None)
    if not isinstance(data, (bytes, bytearray)) or not isinstance(position, int):
        return None
    return data, position, position + (event.event_size - wrapper.read_bytes)


def mysql_replication_packet_shape_known() -> bool:
    """True while mysql-replication's packet wrapper and pymysql's packet keep the attributes
    :func:`rows_event_buffer` reads."""
    from pymysql.protocol import MysqlPacket
    from pymysqlreplication.packet import BinLogPacketWrapper

    source = inspect.getsource(BinLogPacketWrapper.__init__)
    packet = MysqlPacket(b"\x00abc", "utf8")
    packet.read(1)
    return ("self.__data_buffer = " in source and "self.read_bytes = 0" in source and "self.packet = " in source
            and packet._data == b"\x00abc" and packet._position == 1)


# --- mysql-replication: an event's own bytes -------------------------------------------------------
# MySQL's GTID and ANONYMOUS_GTID events carry the transaction's commit timestamps after the fields
# mysql-replication 1.0.17 parses (it maps ANONYMOUS_GTID to NotImplementedEvent and parses nothing);
# core.binlog.boundaries reads them from the event's bytes, which the library keeps private.

# The packet pymysql read starts with the OK byte, then the event's 19-byte common header; the
# library's ``event.event_size`` is the size of what follows, without the checksum.
_EVENT_BODY_OFFSET = 1 + 19


def event_body(event: Any) -> bytes | None:
    """The body of a binlog event as the server sent it: the bytes after its common header, without
    the checksum; None when the library's packet is of another shape (then the caller falls back to
    what the library parsed)."""
    wrapper = getattr(event, "packet", None)
    data = getattr(getattr(wrapper, "packet", None), "_data", None)
    size = getattr(event, "event_size", None)
    if not isinstance(data, (bytes, bytearray)) or not isinstance(size, int) or size < 0:
        return None
    if len(data) < _EVENT_BODY_OFFSET + size:
        return None
    return bytes(data[_EVENT_BODY_OFFSET : _EVENT_BODY_OFFSET + size])


def mysql_replication_event_body_shape_known() -> bool:
    """True while mysql-replication reads the OK byte and the common header (20 bytes) off the front of
    pymysql's packet and gives each event the size of its body without the checksum, as
    :func:`event_body` assumes."""
    from pymysql.protocol import MysqlPacket
    from pymysqlreplication.event import BinLogEvent
    from pymysqlreplication.packet import BinLogPacketWrapper

    wrapper = inspect.getsource(BinLogPacketWrapper.__init__)
    base = inspect.getsource(BinLogEvent.__init__)
    packet = MysqlPacket(b"\x00" + bytes(range(30)), "utf8")
    return ('struct.unpack("<cIBIIIH", self.packet.read(20))' in wrapper
            and "event_size_without_header = self.event_size - 23" in wrapper
            and "event_size_without_header = self.event_size - 19" in wrapper
            and "event_size_without_header," in wrapper
            and "self.packet = from_packet" in wrapper and "self.packet = from_packet" in base
            and "self.event_size = event_size" in base
            and packet._data[_EVENT_BODY_OFFSET] == 19)


# --- pymysql: set the socket timeouts of an open session ------------------------------------------


def set_socket_timeouts(conn: Any, read_timeout: float | None, write_timeout: float | None) -> bool:
    """Give an open pymysql session new read/write timeouts; True when done. pymysql has no public
    setter; it re-applies these attributes before each read and write."""
    if not pymysql_timeouts_settable(conn):
        return False
    conn._read_timeout = read_timeout
    conn._write_timeout = write_timeout
    return True


def pymysql_timeouts_settable(conn: Any = None) -> bool:
    """True while pymysql's connection keeps its timeouts in ``_read_timeout`` / ``_write_timeout``
    and re-applies them on each read and write."""
    import pymysql.connections

    if conn is not None:
        return hasattr(conn, "_read_timeout") and hasattr(conn, "_write_timeout")
    source = inspect.getsource(pymysql.connections.Connection)
    return "sock.settimeout(self._read_timeout)" in source and "settimeout(self._write_timeout)" in source
