"""A faster decoder for the row images of mysql-replication's rows events (same output, ~3x less time).

mysql-replication 1.0.17 decodes every value through several method calls and buffer copies, which
is most of an incremental batch's time. This module reads the event's remaining bytes directly, with
one precompiled function per column (``struct.unpack_from`` at an offset), and produces exactly the
library's row dictionaries (``values`` / ``none_sources``, ``before_values`` ...), so everything
downstream (``values.convert_binlog_values``) is unchanged.

Only full row images (``binlog_row_image=FULL``) of these column types are handled: integers,
FLOAT/DOUBLE, DECIMAL, CHAR/VARCHAR, TEXT/BLOB, DATE, DATETIME2, TIMESTAMP2, YEAR, ENUM and SET.
For any other table (TIME, BIT, JSON, spatial ...) :func:`table_decoder` returns None and the caller
uses the library's own ``event.rows``. tests/integration/test_binlog.py checks both give equal rows.
"""

from __future__ import annotations

import codecs
import datetime as dt
import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pymysqlreplication.constants import FIELD_TYPE
from pymysqlreplication.row_event import RowsEvent, UpdateRowsEvent

from airflow_provider_polar_mc.core.compat import rows_event_buffer

_Decoder = Callable[[bytes, int], tuple[Any, int]]

_NULL = "null"
_NONE_REASON = {
    FIELD_TYPE.DATE: "out of date range",
    FIELD_TYPE.DATETIME2: "out of datetime2 range",
    FIELD_TYPE.SET: "empty set",
}
_EPOCH = dt.datetime(1970, 1, 1)
_COMPRESSED_BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)


def _fixed(fmt: str) -> _Decoder:
    unpack_from = struct.Struct(fmt).unpack_from
    size = struct.calcsize(fmt)

    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        return unpack_from(data, pos)[0], pos + size

    return decode


def _int24(unsigned: bool) -> _Decoder:
    def decode(data: bytes, pos: int) -> tuple[int, int]:
        return int.from_bytes(data[pos : pos + 3], "little", signed=not unsigned), pos + 3

    return decode


def _text(length_size: int, character_set: str | None) -> _Decoder:
    encoding = RowsEvent.charset_to_encoding(character_set) if character_set is not None else "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        encoding = None  # the library keeps the bytes when Python has no such codec (e.g. binary)

    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        end = pos + length_size
        length = int.from_bytes(data[pos:end], "little")
        raw = data[end : end + length]
        return (raw.decode(encoding) if encoding else raw), end + length

    return decode


def _fsp_reader(fsp: int) -> tuple[int, Callable[[bytes, int], int]]:
    """(bytes, reader) of the fractional part the way the library scales it."""
    size = (fsp + 1) // 2
    if size == 0:
        return 0, lambda data, pos: 0
    scale = 10 ** (6 - fsp)
    odd = fsp % 2

    def read(data: bytes, pos: int) -> int:
        value = int.from_bytes(data[pos : pos + size], "big", signed=True)
        if odd:
            value = int(value / 10)
        return value * scale

    return size, read


def _datetime2(fsp: int) -> _Decoder:
    fsp_size, read_fsp = _fsp_reader(fsp)

    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        packed = int.from_bytes(data[pos : pos + 5], "big")
        year_month = (packed >> 22) & 0x1FFFF
        try:
            value = dt.datetime(year_month // 13, year_month % 13, (packed >> 17) & 0x1F, (packed >> 12) & 0x1F,
                                (packed >> 6) & 0x3F, packed & 0x3F)  # fmt: skip
        except ValueError:
            return None, pos + 5 + fsp_size
        micros = read_fsp(data, pos + 5)
        return (value.replace(microsecond=micros) if micros > 0 else value), pos + 5 + fsp_size

    return decode


def _timestamp2(fsp: int) -> _Decoder:
    fsp_size, read_fsp = _fsp_reader(fsp)
    unpack_from = struct.Struct(">i").unpack_from

    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        value = _EPOCH + dt.timedelta(seconds=unpack_from(data, pos)[0])
        micros = read_fsp(data, pos + 4)
        return (value.replace(microsecond=micros) if micros > 0 else value), pos + 4 + fsp_size

    return decode


def _date(data: bytes, pos: int) -> tuple[Any, int]:
    packed = int.from_bytes(data[pos : pos + 3], "little")
    year, month, day = packed >> 9, (packed >> 5) & 0xF, packed & 0x1F
    if not (year and month and day):
        return None, pos + 3
    return dt.date(year, month, day), pos + 3


def _decimal(precision: int, scale: int) -> _Decoder:
    integral = precision - scale
    uncomp_integral, comp_integral = divmod(integral, 9)
    uncomp_fractional, comp_fractional = divmod(scale, 9)
    head = _COMPRESSED_BYTES[comp_integral]
    tail = _COMPRESSED_BYTES[comp_fractional]
    size = head + 4 * (uncomp_integral + uncomp_fractional) + tail

    def decode(data: bytes, pos: int) -> tuple[Decimal, int]:
        raw = bytearray(data[pos : pos + size])
        negative = not raw[0] & 0x80
        raw[0] ^= 0x80
        if negative:
            raw = bytearray(b ^ 0xFF for b in raw)
        parts = ["-" if negative else ""]
        offset = 0
        if head:
            parts.append(str(int.from_bytes(raw[:head], "big")))
            offset = head
        for _ in range(uncomp_integral):
            parts.append(f"{int.from_bytes(raw[offset : offset + 4], 'big'):09d}")
            offset += 4
        parts.append(".")
        for _ in range(uncomp_fractional):
            parts.append(f"{int.from_bytes(raw[offset : offset + 4], 'big'):09d}")
            offset += 4
        if tail:
            parts.append(f"{int.from_bytes(raw[offset : offset + tail], 'big'):0{comp_fractional}d}")
        return Decimal("".join(parts)), pos + size

    return decode


def _enum(size: int, members: list[str] | None) -> _Decoder:
    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        index = int.from_bytes(data[pos : pos + size], "little")
        return (members[index] if members else None), pos + size

    return decode


def _set(size: int, members: list[str] | None) -> _Decoder:
    def decode(data: bytes, pos: int) -> tuple[Any, int]:
        mask = int.from_bytes(data[pos : pos + size], "little")
        chosen = {m for i, m in enumerate(members or ()) if mask & (1 << i)}
        return (chosen or None), pos + size

    return decode


def _column_decoder(column: Any) -> _Decoder | None:
    t, unsigned = column.type, column.unsigned
    if t == FIELD_TYPE.TINY:
        return _fixed("<B" if unsigned else "<b")
    if t == FIELD_TYPE.SHORT:
        return _fixed("<H" if unsigned else "<h")
    if t == FIELD_TYPE.INT24:
        return _int24(unsigned)
    if t == FIELD_TYPE.LONG:
        return _fixed("<I" if unsigned else "<i")
    if t == FIELD_TYPE.LONGLONG:
        return _fixed("<Q" if unsigned else "<q")
    if t == FIELD_TYPE.FLOAT:
        return _fixed("<f")
    if t == FIELD_TYPE.DOUBLE:
        return _fixed("<d")
    if t in (FIELD_TYPE.VARCHAR, FIELD_TYPE.STRING):
        return _text(2 if column.max_length > 255 else 1, column.character_set_name)
    if t == FIELD_TYPE.BLOB:
        return _text(column.length_size, column.character_set_name)
    if t == FIELD_TYPE.NEWDECIMAL:
        return _decimal(column.precision, column.decimals)
    if t == FIELD_TYPE.DATETIME2:
        return _datetime2(column.fsp)
    if t == FIELD_TYPE.TIMESTAMP2:
        return _timestamp2(column.fsp)
    if t == FIELD_TYPE.DATE:
        return _date
    if t == FIELD_TYPE.YEAR:
        return lambda data, pos: (data[pos] + 1900, pos + 1)
    if t == FIELD_TYPE.ENUM:
        return _enum(column.size, column.enum_values)
    if t == FIELD_TYPE.SET:
        return _set(column.size, column.set_values)
    return None


class TableDecoder:
    """Decodes the row images of one table map's rows events."""

    def __init__(self, names: list[str], decoders: list[_Decoder], reasons: list[str]):
        self.columns = list(zip(names, decoders, reasons, strict=True))
        self.count = len(names)
        self.null_bytes = (self.count + 7) // 8
        self.all_present = (1 << self.count) - 1

    def _image(self, data: bytes, pos: int) -> tuple[dict, dict, int]:
        nulls = int.from_bytes(data[pos : pos + self.null_bytes], "little")
        pos += self.null_bytes
        values: dict[str, Any] = {}
        none_sources: dict[str, str] = {}
        for index, (name, decode, reason) in enumerate(self.columns):
            if nulls >> index & 1:
                values[name] = None
                none_sources[name] = _NULL
                continue
            value, pos = decode(data, pos)
            values[name] = value
            if value is None:
                none_sources[name] = reason
        return values, none_sources, pos

    def rows(self, event: Any) -> list[dict] | None:
        """The event's rows as the library would return them, or None when this decoder cannot
        (partial row images, data the library already buffered)."""
        buffer = rows_event_buffer(event)
        if buffer is None:
            return None
        bitmaps = [event.columns_present_bitmap]
        if isinstance(event, UpdateRowsEvent):
            bitmaps.append(event.columns_present_bitmap2)
        if event.number_of_columns != self.count or any(
            int.from_bytes(b, "little") != self.all_present for b in bitmaps
        ):
            return None
        data, pos, end = buffer
        rows: list[dict] = []
        if len(bitmaps) == 2:
            while pos < end:
                before, before_none, pos = self._image(data, pos)
                after, after_none, pos = self._image(data, pos)
                rows.append({"before_values": before, "before_none_sources": before_none,
                             "after_values": after, "after_none_sources": after_none})  # fmt: skip
        else:
            while pos < end:
                values, none_sources, pos = self._image(data, pos)
                rows.append({"values": values, "none_sources": none_sources})
        if pos != end:
            raise ValueError(f"row images overran the event by {pos - end} bytes")
        return rows


def table_decoder(table: Any) -> TableDecoder | None:
    """A decoder for the library's table-map entry, or None if a column type is not handled."""
    decoders: list[_Decoder] = []
    for column in table.columns:
        decoder = _column_decoder(column)
        if decoder is None or column.name is None:
            return None
        decoders.append(decoder)
    reasons = [_NONE_REASON.get(c.type, _NULL) for c in table.columns]
    return TableDecoder([c.name for c in table.columns], decoders, reasons)
