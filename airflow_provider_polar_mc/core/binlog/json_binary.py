"""MySQL's binary JSON (the JSON column's stored form, also in row-based binlog events) -> Python.

MySQL 8 and PolarDB for MySQL log a JSON column's value in this format (``sql/json_binary.h``);
MariaDB logs JSON as text, so docs/mysql-binary-json.md says how this decoder is tested without a
MySQL 8 server. The result is the document MySQL's ``CAST(col AS CHAR)`` shows, as Python values:

* objects -> ``dict`` (``str`` keys, in stored order), arrays -> ``list``, strings -> ``str``,
  ``true`` / ``false`` / ``null`` -> ``True`` / ``False`` / ``None``, integers -> ``int``,
  doubles -> ``float``;
* opaque DECIMAL -> ``Decimal`` (exactly the stored digits and scale);
  DATE -> ``'YYYY-MM-DD'``, DATETIME / TIMESTAMP -> ``'YYYY-MM-DD HH:MM:SS.ffffff'``,
  TIME -> ``'[-]HH:MM:SS.ffffff'`` (MySQL prints these with six fractional digits);
  any other opaque value -> ``'base64:type<field type>:<base64>'`` (MySQL's text form, with its
  newline after every 76 base64 characters);
* an empty value (length 0) -> ``None``: MySQL reads it as JSON null.

Layout (offsets are relative to the start of the enclosing object or array, after its type byte)::

    value   ::= type(uint8) body
    object  ::= count size key-entry* value-entry* key* value*     (small: uint16 fields, large: uint32)
    array   ::= count size value-entry* value*
    key-entry   ::= key-offset(uint16|uint32) key-length(uint16)
    value-entry ::= type(uint8) offset-or-inlined-value(uint16|uint32)
    string  ::= length(7 bits a byte, high bit = more) utf8mb4-bytes
    opaque  ::= field-type(uint8) length(as for strings) bytes

Literals and (u)int16 are inlined in value entries of both forms, (u)int32 in large forms only.
Malformed input raises ``ValueError`` naming the offset.
"""

from __future__ import annotations

import base64
import struct
from decimal import Decimal
from typing import Any

__all__ = ["decode_binary_json"]

SMALL_OBJECT, LARGE_OBJECT, SMALL_ARRAY, LARGE_ARRAY, LITERAL = 0x00, 0x01, 0x02, 0x03, 0x04
INT16, UINT16, INT32, UINT32, INT64, UINT64, DOUBLE, STRING = 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C
OPAQUE = 0x0F
LITERAL_NULL, LITERAL_TRUE, LITERAL_FALSE = 0x00, 0x01, 0x02

# enum_field_types of the opaque payloads MySQL writes for its own scalar types.
FIELD_TIMESTAMP, FIELD_DATE, FIELD_TIME, FIELD_DATETIME, FIELD_NEWDECIMAL = 7, 10, 11, 12, 246

_SCALARS = {
    INT16: struct.Struct("<h"),
    UINT16: struct.Struct("<H"),
    INT32: struct.Struct("<i"),
    UINT32: struct.Struct("<I"),
    INT64: struct.Struct("<q"),
    UINT64: struct.Struct("<Q"),
    DOUBLE: struct.Struct("<d"),
}
_INLINE_SMALL = frozenset({LITERAL, INT16, UINT16})
_INLINE_LARGE = frozenset({LITERAL, INT16, UINT16, INT32, UINT32})
_SMALL = (2, struct.Struct("<HH"), struct.Struct("<HH"), struct.Struct("<BH"))
_LARGE = (4, struct.Struct("<II"), struct.Struct("<IH"), struct.Struct("<BI"))
_INT64 = struct.Struct("<q")
_DECIMAL_BYTES = (0, 1, 1, 2, 2, 3, 3, 4, 4, 4)  # bytes of a leftover group of 0..8 digits


def decode_binary_json(data: bytes, start: int = 0, end: int | None = None) -> Any:
    """The document stored in ``data[start:end]`` (the whole of ``data`` by default): one binary JSON
    value as it follows the length prefix in a row image. Raises ValueError on malformed data."""
    end = len(data) if end is None else end
    if not 0 <= start <= end <= len(data):
        raise ValueError(f"binary JSON: bounds {start}..{end} outside the {len(data)} bytes given")
    if start == end:
        return None  # an empty value: MySQL's JSON null
    try:
        return _value(data, data[start], start + 1, end)
    except struct.error as error:  # a read past the buffer that the bound checks did not foresee
        raise ValueError(f"binary JSON: truncated value ({error})") from None


def _value(data: bytes, kind: int, pos: int, end: int) -> Any:
    """The value of type ``kind`` whose body starts at ``pos``; nothing of it lies at or after ``end``."""
    if kind <= LARGE_ARRAY:
        return _container(data, pos, end, kind & 1 == 1, kind <= LARGE_OBJECT)
    if kind == STRING:
        length, pos = _length(data, pos, end)
        return _utf8(data, pos, length, end)
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        _need(pos, scalar.size, end, "number")
        return scalar.unpack_from(data, pos)[0]
    if kind == LITERAL:
        _need(pos, 1, end, "literal")
        return _literal(data[pos], pos)
    if kind == OPAQUE:
        _need(pos, 1, end, "opaque value")
        field_type = data[pos]
        length, at = _length(data, pos + 1, end)
        _need(at, length, end, "opaque value")
        return _opaque(field_type, data, at, length)
    raise ValueError(f"binary JSON: unknown value type 0x{kind:02x} before offset {pos}")


def _container(data: bytes, base: int, end: int, large: bool, is_object: bool) -> Any:
    offset_size, header, key_entry, value_entry = _LARGE if large else _SMALL
    what = "object" if is_object else "array"
    _need(base, 2 * offset_size, end, what)
    count, size = header.unpack_from(data, base)
    stop = base + size
    if stop > end:
        raise ValueError(f"binary JSON: {what} at offset {base} claims {size} bytes, {end - base} remain")
    keys_at = base + 2 * offset_size
    values_at = keys_at + (count * key_entry.size if is_object else 0)
    if values_at + count * value_entry.size > stop:
        raise ValueError(f"binary JSON: {what} at offset {base}: {count} entries do not fit in {size} bytes")
    inline = _INLINE_LARGE if large else _INLINE_SMALL
    items: list[Any] = []
    for index in range(count):
        at = values_at + index * value_entry.size
        kind, offset = value_entry.unpack_from(data, at)
        if kind in inline:
            items.append(_inline(data, kind, at + 1))
        elif offset >= size:
            raise ValueError(
                f"binary JSON: value offset {offset} outside the {what} at offset {base} (entry {at})"
            )
        else:
            items.append(_value(data, kind, base + offset, stop))
    if not is_object:
        return items
    document: dict[str, Any] = {}
    for index, item in enumerate(items):
        at = keys_at + index * key_entry.size
        offset, length = key_entry.unpack_from(data, at)
        document[_utf8(data, base + offset, length, stop)] = item
    return document


def _inline(data: bytes, kind: int, pos: int) -> Any:
    if kind == LITERAL:
        return _literal(data[pos], pos)
    return _SCALARS[kind].unpack_from(data, pos)[0]


def _literal(byte: int, pos: int) -> bool | None:
    if byte == LITERAL_NULL:
        return None
    if byte == LITERAL_TRUE:
        return True
    if byte == LITERAL_FALSE:
        return False
    raise ValueError(f"binary JSON: unknown literal 0x{byte:02x} at offset {pos}")


def _length(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """A string's or opaque value's length (7 bits a byte, low bits first) -> (length, data start)."""
    length = 0
    for shift in range(0, 35, 7):
        if pos >= end:
            break
        byte = data[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length, pos
    raise ValueError(f"binary JSON: unterminated length before offset {pos}")


def _utf8(data: bytes, pos: int, length: int, end: int) -> str:
    _need(pos, length, end, "string")
    try:
        return str(data[pos : pos + length], "utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"binary JSON: invalid UTF-8 in the string at offset {pos}: {error.reason}"
        ) from None


def _need(pos: int, size: int, end: int, what: str) -> None:
    if pos + size > end:
        raise ValueError(
            f"binary JSON: {what} at offset {pos} needs {size} bytes, {max(end - pos, 0)} remain"
        )


# --- opaque values --------------------------------------------------------------------------------


def _opaque(field_type: int, data: bytes, pos: int, length: int) -> Any:
    if field_type == FIELD_NEWDECIMAL:
        return _decimal(data, pos, length)
    if field_type in (FIELD_DATE, FIELD_DATETIME, FIELD_TIMESTAMP, FIELD_TIME):
        if length != 8:
            raise ValueError(f"binary JSON: temporal value at offset {pos} has {length} bytes, not 8")
        return _temporal_text(field_type, _INT64.unpack_from(data, pos)[0])
    encoded = base64.b64encode(data[pos : pos + length]).decode("ascii")
    lines = "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))  # MySQL's base64_encode
    return f"base64:type{field_type}:{lines}"


def _temporal_text(field_type: int, packed: int) -> str:
    """MySQL's packed temporal integer (``TIME_to_longlong_*_packed``) as ``my_TIME_to_str(t, 6)``."""
    sign = "-" if packed < 0 else ""
    packed = abs(packed)
    fraction, whole = packed & 0xFFFFFF, packed >> 24
    if field_type == FIELD_TIME:
        hour, minute, second = (whole >> 12) & 0x3FF, (whole >> 6) & 0x3F, whole & 0x3F
        return f"{sign}{hour:02d}:{minute:02d}:{second:02d}.{fraction:06d}"
    year_month, day = whole >> 22, (whole >> 17) & 0x1F
    date = f"{sign}{year_month // 13:04d}-{year_month % 13:02d}-{day:02d}"
    if field_type == FIELD_DATE:
        return date
    hour, minute, second = (whole >> 12) & 0x1F, (whole >> 6) & 0x3F, whole & 0x3F
    return f"{date} {hour:02d}:{minute:02d}:{second:02d}.{fraction:06d}"


def _decimal(data: bytes, pos: int, length: int) -> Decimal:
    """precision(uint8) scale(uint8) then MySQL's ``decimal2bin`` form: big-endian groups of 9 digits
    in 4 bytes (a leftover group in fewer), all bytes inverted for negatives, the first bit flipped."""
    if length < 2:
        raise ValueError(f"binary JSON: DECIMAL at offset {pos} has no precision and scale")
    precision, scale = data[pos], data[pos + 1]
    if not (0 < precision <= 65 and scale <= 30 and scale <= precision):
        raise ValueError(f"binary JSON: DECIMAL at offset {pos} has precision {precision}, scale {scale}")
    full_integral, left_integral = divmod(precision - scale, 9)
    full_fraction, left_fraction = divmod(scale, 9)
    sizes = [(_DECIMAL_BYTES[left_integral], left_integral)] + [(4, 9)] * (full_integral + full_fraction)
    sizes.append((_DECIMAL_BYTES[left_fraction], left_fraction))
    if length != 2 + sum(size for size, _ in sizes):
        raise ValueError(
            f"binary JSON: DECIMAL({precision},{scale}) at offset {pos} has {length - 2} digit bytes"
        )
    raw = bytearray(data[pos + 2 : pos + length])
    negative = not raw[0] & 0x80
    raw[0] ^= 0x80
    if negative:
        raw = bytearray(byte ^ 0xFF for byte in raw)
    digits: list[str] = []
    at = 0
    for size, count in sizes:
        if size:
            group = int.from_bytes(raw[at : at + size], "big")
            if group >= 10**count:
                raise ValueError(
                    f"binary JSON: DECIMAL at offset {pos} holds a group {group} of {count} digits"
                )
            digits.append(f"{group:0{count}d}")
            at += size
    text = "".join(digits)
    integral, fraction = text[: len(text) - scale] or "0", text[len(text) - scale :]
    return Decimal(f"{'-' if negative else ''}{integral}{'.' if scale else ''}{fraction}")
