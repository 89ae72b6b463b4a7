"""A test-side encoder of MySQL's binary JSON, written from the format's documentation
(``sql/json_binary.h``; docs/mysql-binary-json.md), so the decoders can be tested without MySQL 8.

``encode_binary_json(doc)`` takes a Python document: ``dict`` (``str`` keys), ``list``, ``str``,
``None`` / ``True`` / ``False``, ``int``, ``float``, and the wrappers below: :class:`Int` (an integer
stored with a chosen type, e.g. unsigned as MySQL does for unsigned columns) and :class:`Opaque`
(MySQL's custom data: DECIMAL and temporal values through :func:`decimal_opaque`,
:func:`datetime_opaque`, :func:`timestamp_opaque`, :func:`date_opaque`, :func:`time_opaque`).
:func:`expected_document` gives the plain document MySQL's ``CAST(doc AS CHAR)`` text parses to.

As MySQL's serializer does: object keys sorted by length, then by their UTF-8 bytes; literals and
(u)int16 inlined in value entries, (u)int32 too in large containers; an integer in the narrowest
signed type (an ``int`` beyond int64 as uint64); each object / array small (16-bit offsets and size)
when it fits in 64 KiB, else large. ``large=True`` forces the large form on every container,
``large=False`` the small form (ValueError when it does not fit).
"""

from __future__ import annotations

import datetime as dt
import json
import struct
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from typing import Any

SMALL_OBJECT, LARGE_OBJECT, SMALL_ARRAY, LARGE_ARRAY, LITERAL = 0x00, 0x01, 0x02, 0x03, 0x04
INT16, UINT16, INT32, UINT32, INT64, UINT64, DOUBLE, STRING, OPAQUE = 5, 6, 7, 8, 9, 10, 11, 12, 15
FIELD_TIMESTAMP, FIELD_DATE, FIELD_TIME, FIELD_DATETIME, FIELD_NEWDECIMAL = 7, 10, 11, 12, 246

_INT_FORMATS = {INT16: "<h", UINT16: "<H", INT32: "<i", UINT32: "<I", INT64: "<q", UINT64: "<Q"}
_DECIMAL_BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)
_EXACT = Context(prec=100)  # DECIMAL has up to 65 digits


@dataclass(frozen=True)
class Int:
    """An integer stored as ``kind`` (INT16 ... UINT64)."""

    value: int
    kind: int


@dataclass(frozen=True)
class Opaque:
    """MySQL custom data: ``field_type`` (enum_field_types) and its payload; ``expected`` is the
    value in the document MySQL's text form parses to (None: ``base64:type<N>:...``)."""

    field_type: int
    payload: bytes
    expected: Any = None


def unsigned(value: int) -> Int:
    """A non-negative integer the way MySQL stores an unsigned one: UINT16, UINT32 or UINT64."""
    kind = UINT16 if value <= 0xFFFF else UINT32 if value <= 0xFFFFFFFF else UINT64
    return Int(value, kind)


# --- opaque payloads --------------------------------------------------------------------------------


def decimal_payload(value: Decimal, precision: int | None = None, scale: int | None = None) -> bytes:
    """precision, scale, then MySQL's ``decimal2bin`` of ``value`` (at ``scale`` digits, ``precision``
    digits in all; by default exactly the value's own)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    scale = max(-exponent, 0) if scale is None else scale
    with localcontext(_EXACT):
        unscaled = int(value.scaleb(scale).to_integral_value())
        assert Decimal(unscaled).scaleb(-scale) == value, "the value has more digits than the scale"
    magnitude = str(abs(unscaled)).rjust(scale + 1, "0")
    integral, fraction = magnitude[: len(magnitude) - scale].lstrip("0"), magnitude[len(magnitude) - scale :]
    precision = max(len(integral) + scale, 1) if precision is None else precision
    if len(integral) > precision - scale:
        raise ValueError(f"{value} does not fit DECIMAL({precision},{scale})")
    integral = integral.rjust(precision - scale, "0")
    groups: list[tuple[str, int]] = []
    head = len(integral) % 9
    if head:
        groups.append((integral[:head], _DECIMAL_BYTES[head]))
    groups += [(integral[i : i + 9], 4) for i in range(head, len(integral), 9)]
    groups += [(fraction[i : i + 9], 4) for i in range(0, len(fraction) - len(fraction) % 9, 9)]
    tail = len(fraction) % 9
    if tail:
        groups.append((fraction[len(fraction) - tail :], _DECIMAL_BYTES[tail]))
    raw = bytearray(b"".join(int(text).to_bytes(size, "big") for text, size in groups))
    if unscaled < 0:
        raw = bytearray(byte ^ 0xFF for byte in raw)
    raw[0] ^= 0x80
    return bytes([precision, scale]) + bytes(raw)


def decimal_opaque(value: Decimal, precision: int | None = None, scale: int | None = None) -> Opaque:
    scale = max(-int(value.as_tuple().exponent), 0) if scale is None else scale
    with localcontext(_EXACT):
        text = format(value.quantize(Decimal(1).scaleb(-scale)), "f")
    return Opaque(FIELD_NEWDECIMAL, decimal_payload(value, precision, scale), json.loads(text))


def _packed(whole: int, fraction: int, negative: bool = False) -> bytes:
    packed = (whole << 24) + fraction
    return struct.pack("<q", -packed if negative else packed)


def _datetime_whole(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    # TIME_to_longlong_datetime_packed: ((year * 13 + month) << 5 | day) << 17 | hour << 12 | minute << 6 | second
    return (((year * 13 + month) << 5) | day) << 17 | (hour << 12) | (minute << 6) | second


def datetime_fields_opaque(year: int, month: int, day: int, hour: int, minute: int, second: int,
                           micro: int, field_type: int = FIELD_DATETIME) -> Opaque:  # fmt: skip
    """A DATETIME (or TIMESTAMP) from its fields, zero dates included."""
    text = f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}.{micro:06d}"
    return Opaque(field_type, _packed(_datetime_whole(year, month, day, hour, minute, second), micro), text)


def datetime_opaque(value: dt.datetime) -> Opaque:
    return datetime_fields_opaque(value.year, value.month, value.day, value.hour, value.minute, value.second,
                                  value.microsecond)  # fmt: skip


def timestamp_opaque(value: dt.datetime) -> Opaque:
    """MySQL stores a TIMESTAMP in JSON packed like a DATETIME (the session time zone's wall clock)."""
    return datetime_fields_opaque(value.year, value.month, value.day, value.hour, value.minute, value.second,
                                  value.microsecond, FIELD_TIMESTAMP)  # fmt: skip


def date_opaque(value: dt.date) -> Opaque:
    text = f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
    return Opaque(FIELD_DATE, _packed(_datetime_whole(value.year, value.month, value.day), 0), text)


def time_opaque(value: dt.timedelta) -> Opaque:
    """A TIME (-838:59:59.999999 .. 838:59:59.999999): hours beyond 23 stay in the hour field."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    negative = micros < 0
    seconds, fraction = divmod(abs(micros), 1_000_000)
    hour, rest = divmod(seconds, 3600)
    minute, second = divmod(rest, 60)
    text = f"{'-' if negative else ''}{hour:02d}:{minute:02d}:{second:02d}.{fraction:06d}"
    # TIME_to_longlong_time_packed: (hour << 12 | minute << 6 | second) << 24 + fraction, negated
    return Opaque(FIELD_TIME, _packed((hour << 12) | (minute << 6) | second, fraction, negative), text)


# --- the document -----------------------------------------------------------------------------------


def expected_document(doc: Any) -> Any:
    """The plain document of MySQL's text form of ``doc`` (wrappers replaced by what MySQL shows)."""
    if isinstance(doc, dict):
        return {key: expected_document(value) for key, value in doc.items()}
    if isinstance(doc, list):
        return [expected_document(value) for value in doc]
    if isinstance(doc, Int):
        return doc.value
    if isinstance(doc, Opaque):
        if doc.expected is not None:
            return doc.expected
        return opaque_text(doc.field_type, doc.payload)
    return doc


def opaque_text(field_type: int, payload: bytes) -> str:
    """MySQL's text of any other opaque value: ``base64:type<N>:`` and the payload in base64 with a
    newline after every 76 characters (mysys ``base64_encode``)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    out: list[str] = []
    for index in range(0, len(payload), 3):
        if index and index % 57 == 0:
            out.append("\n")
        chunk = payload[index : index + 3]
        bits = int.from_bytes(chunk.ljust(3, b"\x00"), "big")
        quad = [alphabet[(bits >> shift) & 0x3F] for shift in (18, 12, 6, 0)]
        out.append("".join(quad[: len(chunk) + 1]) + "=" * (3 - len(chunk)))
    return f"base64:type{field_type}:{''.join(out)}"


def variable_length(length: int) -> bytes:
    """A string's / opaque value's length: 7 bits a byte, low bits first, high bit set when more follow."""
    out = bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        if length:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_binary_json(doc: Any, *, large: bool | None = None) -> bytes:
    """``doc`` as MySQL stores it: the type byte, then the value."""
    kind, body = _encode(doc, large)
    return bytes([kind]) + body


def _integer(value: int) -> Int:
    if -(2**15) <= value < 2**15:
        return Int(value, INT16)
    if -(2**31) <= value < 2**31:
        return Int(value, INT32)
    if -(2**63) <= value < 2**63:
        return Int(value, INT64)
    if value < 2**64:
        return Int(value, UINT64)
    raise ValueError(f"{value} does not fit a JSON integer")


def _encode(doc: Any, large: bool | None) -> tuple[int, bytes]:
    if doc is None:
        return LITERAL, b"\x00"
    if doc is True:
        return LITERAL, b"\x01"
    if doc is False:
        return LITERAL, b"\x02"
    if isinstance(doc, int):
        doc = _integer(doc)
    if isinstance(doc, Int):
        return doc.kind, struct.pack(_INT_FORMATS[doc.kind], doc.value)
    if isinstance(doc, float):
        return DOUBLE, struct.pack("<d", doc)
    if isinstance(doc, str):
        data = doc.encode("utf-8")
        return STRING, variable_length(len(data)) + data
    if isinstance(doc, Opaque):
        return OPAQUE, bytes([doc.field_type]) + variable_length(len(doc.payload)) + doc.payload
    if isinstance(doc, dict):
        keys = sorted((key.encode("utf-8") for key in doc), key=lambda key: (len(key), key))
        values = [doc[key.decode("utf-8")] for key in keys]
        return _container(keys, [_encode(v, large) for v in values], large)
    if isinstance(doc, list):
        return _container(None, [_encode(v, large) for v in doc], large)
    raise TypeError(f"no binary JSON form for {type(doc).__name__}")


def _inlined(kind: int, large: bool) -> bool:
    return kind in (LITERAL, INT16, UINT16) or (large and kind in (INT32, UINT32))


def _container(
    keys: list[bytes] | None, values: list[tuple[int, bytes]], large: bool | None
) -> tuple[int, bytes]:
    for use_large in (False, True) if large is None else (large,):
        encoded = _layout(keys, values, use_large)
        if encoded is not None:
            return encoded
    raise ValueError("the container does not fit the small form")


def _layout(
    keys: list[bytes] | None, values: list[tuple[int, bytes]], large: bool
) -> tuple[int, bytes] | None:
    offset_format, limit = ("<I", 2**32 - 1) if large else ("<H", 0xFFFF)
    offset_size = struct.calcsize(offset_format)
    count = len(values)
    position = 2 * offset_size + count * (1 + offset_size)
    if keys is not None:
        position += count * (offset_size + 2)
    key_entries, value_entries, tail = bytearray(), bytearray(), bytearray()
    for key in keys or ():
        if len(key) > 0xFFFF:
            raise ValueError("an object key is longer than 64 KiB")
        if position > limit:
            return None
        key_entries += struct.pack(offset_format + "H", position, len(key))
        tail += key
        position += len(key)
    for kind, body in values:
        if _inlined(kind, large):
            value_entries += bytes([kind]) + body.ljust(offset_size, b"\x00")
            continue
        if position > limit:
            return None
        value_entries += bytes([kind]) + struct.pack(offset_format, position)
        tail += body
        position += len(body)
    if position > limit:
        return None
    head = struct.pack(offset_format + offset_format[1], count, position)
    kind = (
        (LARGE_OBJECT if large else SMALL_OBJECT)
        if keys is not None
        else (LARGE_ARRAY if large else SMALL_ARRAY)
    )
    return kind, head + bytes(key_entries) + bytes(value_entries) + bytes(tail)
