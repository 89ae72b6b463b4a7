"""Wire formats of the MaxCompute Tunnel, implemented independently of pyodps.

Three formats travel over the tunnel:

* the **record format** (``open_record_writer`` / ``open_record_reader``): protobuf wire encoding,
  one field per non-NULL value (field number = 1-based column position), a CRC32C per record
  written after the ``END_RECORD`` tag, and a footer with the record count and a CRC32C over the
  per-record checksums;
* the **Arrow tunnel format** (``open_arrow_writer`` / ``open_arrow_reader``): a big-endian uint32
  chunk size, then Arrow IPC record-batch messages (no schema message) cut into chunks of that
  size, each full chunk followed by its big-endian CRC32C, and a last big-endian CRC32C over all
  payload bytes;
* a plain **Arrow IPC stream** (table preview).

Decoders verify every checksum and reject malformed input with :class:`TunnelFormatError`, so the
emulator checks what the client sends instead of trusting it. The body may additionally be
compressed as a whole (``Content-Encoding``), see :func:`decompress_body`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation

import pyarrow as pa
import pyarrow.compute as pc

from .catalog import Column
from .types import MCType

# -- CRC32C ---------------------------------------------------------------------------------------
# The tunnel's checksums are CRC32C (Castagnoli). crcmod's C extension (present in the environment
# through the alibabacloud SDK) does ~400 MB/s; without it a table-driven fallback stays correct.
try:
    from crcmod.predefined import mkCrcFun as _mk_crc_fun

    _crc32c_accelerated = _mk_crc_fun("crc-32c")
except ImportError:  # pragma: no cover - depends on the environment
    _crc32c_accelerated = None


def _build_crc32c_table() -> list[int]:
    poly = 0x82F63B78  # reversed Castagnoli polynomial
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ poly if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _build_crc32c_table()


def _crc32c_python(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    table = _CRC32C_TABLE
    crc ^= 0xFFFFFFFF
    for byte in bytes(data):
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c(data: bytes | bytearray | memoryview, crc: int = 0) -> int:
    """CRC32C of ``data``, continuing from a previous result ``crc`` (0 to start)."""
    if _crc32c_accelerated is not None:
        return _crc32c_accelerated(data, crc)
    return _crc32c_python(data, crc)


def _gf2_times(matrix: list[int], vector: int) -> int:
    result = 0
    i = 0
    while vector:
        if vector & 1:
            result ^= matrix[i]
        vector >>= 1
        i += 1
    return result


_ZERO_BYTES_OPERATORS: dict[int, list[int]] = {}


def _zero_bytes_operator(length: int) -> list[int]:
    """The GF(2) matrix that advances a CRC32C register over ``length`` zero bytes (zlib's method)."""
    cached = _ZERO_BYTES_OPERATORS.get(length)
    if cached is not None:
        return cached
    one_bit = [0x82F63B78] + [1 << i for i in range(31)]  # operator for a single zero bit
    square = [_gf2_times(one_bit, one_bit[i]) for i in range(32)]  # two bits
    square = [_gf2_times(square, square[i]) for i in range(32)]  # four bits
    result = [1 << i for i in range(32)]  # identity
    remaining = length
    operator = [_gf2_times(square, square[i]) for i in range(32)]  # one byte
    while remaining:
        if remaining & 1:
            result = [_gf2_times(operator, result[i]) for i in range(32)]
        remaining >>= 1
        if remaining:
            operator = [_gf2_times(operator, operator[i]) for i in range(32)]
    if len(_ZERO_BYTES_OPERATORS) < 64:
        _ZERO_BYTES_OPERATORS[length] = result
    return result


def crc32c_combine(crc_a: int, crc_b: int, length_b: int) -> int:
    """CRC32C of ``a + b`` from the CRCs of ``a`` and ``b``: spares a second pass over the data."""
    if length_b == 0:
        return crc_a
    return _gf2_times(_zero_bytes_operator(length_b), crc_a) ^ crc_b


# -- errors and compression -----------------------------------------------------------------------
class TunnelFormatError(ValueError):
    """The bytes a client sent are not a valid tunnel block (bad framing, checksum, value)."""


class UnsupportedEncoding(TunnelFormatError):
    """A ``Content-Encoding`` the emulator does not implement."""


# pyodps's names for whole-body compression (CompressOption.get_encoding) -> pyarrow codec names.
_ARROW_CODEC_BY_ENCODING = {"zstd": "zstd", "x-lz4-frame": "lz4", "x-odps-lz4-frame": "lz4", "lz4_frame": "lz4"}


class InflatedTooLarge(TunnelFormatError):
    """A compressed body that inflates beyond the allowed size (a decompression bomb, or a huge block)."""

    def __init__(self, limit: int):
        super().__init__(f"the body inflates to more than the emulator's limit of {limit} bytes")
        self.limit = limit


_INFLATE_STEP = 1 << 20  # compressed bytes fed, and inflated bytes taken, per step


def decompress_body(body: bytes, content_encoding: str | None, max_size: int | None = None) -> bytes:
    """Undo the whole-body compression a tunnel client announced in ``Content-Encoding``.

    Inflation is streamed: at most ``max_size`` bytes (no limit when None) are produced before
    :class:`InflatedTooLarge` is raised, so a small compressed body cannot claim unbounded memory.
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    limit = max_size if max_size is not None else 1 << 62
    if encoding == "deflate":  # pyodps's ZLIB: zlib-wrapped deflate
        return _inflate_zlib(body, limit)
    codec = _ARROW_CODEC_BY_ENCODING.get(encoding)
    if codec is None:
        raise UnsupportedEncoding(
            f"Content-Encoding {content_encoding!r} is not supported by the emulator "
            "(supported: deflate, zstd, x-lz4-frame, x-odps-lz4-frame)"
        )
    if not pa.Codec.is_available(codec):  # pragma: no cover - pyarrow wheels ship both
        raise UnsupportedEncoding(f"pyarrow lacks the {codec} codec needed for Content-Encoding {encoding!r}")
    parts: list[bytes] = []
    total = 0
    try:
        stream = pa.CompressedInputStream(pa.BufferReader(body), codec)
        while True:
            piece = stream.read(min(_INFLATE_STEP, limit + 1 - total))
            if not piece:
                break
            total += len(piece)
            if total > limit:
                raise InflatedTooLarge(limit)
            parts.append(piece)
    except (OSError, pa.ArrowException) as exc:
        raise TunnelFormatError(f"body is not valid {encoding} data: {exc}") from exc
    return b"".join(parts)


def _inflate_zlib(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    view = memoryview(body)
    parts: list[bytes] = []
    total = offset = 0
    try:
        while not inflater.eof:
            if inflater.unconsumed_tail:
                data = inflater.unconsumed_tail
            elif offset < len(view):
                data, offset = view[offset : offset + _INFLATE_STEP], offset + _INFLATE_STEP
            else:
                break
            # max_length is never 0 (that would mean "no limit"): total <= limit here
            piece = inflater.decompress(data, min(_INFLATE_STEP, limit + 1 - total))
            total += len(piece)
            if total > limit:
                raise InflatedTooLarge(limit)
            parts.append(piece)
    except zlib.error as exc:
        raise TunnelFormatError(f"body is not valid deflate data: {exc}") from exc
    if not inflater.eof:
        raise TunnelFormatError("body is not valid deflate data: incomplete or truncated stream")
    return b"".join(parts)


# -- record format: constants and value kinds -----------------------------------------------------
WIRETYPE_VARINT = 0
WIRETYPE_FIXED64 = 1
WIRETYPE_LENGTH_DELIMITED = 2
WIRETYPE_FIXED32 = 5

TUNNEL_META_COUNT = 33554430
TUNNEL_META_CHECKSUM = 33554431
TUNNEL_END_RECORD = 33553408
TUNNEL_END_METRICS = 33554176

_INT_RANGES = {
    "TINYINT": (-(1 << 7), (1 << 7) - 1),
    "SMALLINT": (-(1 << 15), (1 << 15) - 1),
    "INT": (-(1 << 31), (1 << 31) - 1),
    "BIGINT": (-(1 << 63), (1 << 63) - 1),
}
_STRING_TYPES = ("STRING", "VARCHAR", "CHAR", "JSON")


def _protobuf_wire_type(mctype: MCType) -> int:
    name = mctype.name
    if name in _INT_RANGES or name in ("BOOLEAN", "DATETIME", "DATE"):
        return WIRETYPE_VARINT
    if name == "FLOAT":
        return WIRETYPE_FIXED32
    if name == "DOUBLE":
        return WIRETYPE_FIXED64
    if name in _STRING_TYPES or name in ("BINARY", "DECIMAL", "TIMESTAMP", "TIMESTAMP_NTZ"):
        return WIRETYPE_LENGTH_DELIMITED
    raise TunnelFormatError(f"type {mctype} is not supported by the emulator's tunnel")


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def _unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_PACK_INT = struct.Struct("<i").pack  # CRC input of field numbers, nanos and record checksums
_PACK_LONG = struct.Struct("<q").pack
_PACK_UINT = struct.Struct("<I").pack
_UNPACK_FLOAT = struct.Struct("<f").unpack
_UNPACK_DOUBLE = struct.Struct("<d").unpack
_PACK_FLOAT = struct.Struct("<f").pack
_PACK_DOUBLE = struct.Struct("<d").pack


def _tag(field_number: int, wire_type: int) -> bytes:
    return _varint((field_number << 3) | wire_type)


_END_RECORD_TAG = _tag(TUNNEL_END_RECORD, WIRETYPE_VARINT)
_META_COUNT_TAG = _tag(TUNNEL_META_COUNT, WIRETYPE_VARINT)
_META_CHECKSUM_TAG = _tag(TUNNEL_META_CHECKSUM, WIRETYPE_VARINT)


# Wide enough for any DECIMAL(38, s) literal; the default context (28 digits) would round.
_DECIMAL_CONTEXT = Context(prec=100, rounding=ROUND_HALF_UP)


def _to_decimal(text: str, mctype: MCType) -> Decimal:
    """Parse a DECIMAL literal and fit it to the column's scale, rejecting overflow as MaxCompute does."""
    try:
        value = Decimal(text)
    except InvalidOperation as exc:
        raise TunnelFormatError(f"invalid DECIMAL literal {text!r}") from exc
    if not value.is_finite():
        raise TunnelFormatError(f"DECIMAL value {text!r} is not finite")
    value = value.quantize(Decimal(1).scaleb(-mctype.scale), context=_DECIMAL_CONTEXT)
    if len(value.as_tuple().digits) > mctype.precision and value != 0:
        raise TunnelFormatError(f"DECIMAL value {text!r} overflows {mctype}")
    return value


# -- record format: decoding ----------------------------------------------------------------------
def decode_record_block(data: bytes, columns: Sequence[Column]) -> pa.Table:
    """Decode one uploaded block in the record format into a table of ``columns``.

    Verifies each record's CRC32C, the footer's record count and the CRC32C over all records.
    Field ``i`` (1-based) is ``columns[i - 1]``.
    """
    n_columns = len(columns)
    types = [c.type for c in columns]
    names = [t.name for t in types]
    wire_types = [_protobuf_wire_type(t) for t in types]
    values: list[list] = [[] for _ in columns]
    end = len(data)
    pos = 0
    n_records = 0
    row: list = [None] * n_columns
    record_crc_input = bytearray()
    record_checksums = bytearray()  # CRC input of the footer checksum: each record's CRC as int32

    def read_varint() -> int:
        nonlocal pos
        result = 0
        shift = 0
        while True:
            if pos >= end:
                raise TunnelFormatError(f"block truncated inside a varint at byte {pos}")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise TunnelFormatError(f"varint longer than 10 bytes at byte {pos}")

    def read_bytes() -> bytes:
        nonlocal pos
        length = read_varint()
        if pos + length > end:
            raise TunnelFormatError(f"length-delimited value runs past the end of the block at byte {pos}")
        chunk = data[pos : pos + length]
        pos += length
        return chunk

    def read_fixed(size: int) -> bytes:
        nonlocal pos
        if pos + size > end:
            raise TunnelFormatError(f"block truncated inside a fixed-size value at byte {pos}")
        chunk = data[pos : pos + size]
        pos += size
        return chunk

    while True:
        if pos >= end:
            raise TunnelFormatError(
                f"block ends without its footer (record count and checksum) after {n_records} records"
            )
        tag = read_varint()
        field, wire_type = tag >> 3, tag & 7
        if field == TUNNEL_END_RECORD:
            # a uint32 on the wire, though pyodps's C writer sign-extends it to 64 bits
            checksum = read_varint() & 0xFFFFFFFF
            expected = crc32c(record_crc_input)
            if checksum != expected:
                raise TunnelFormatError(
                    f"checksum mismatch in record {n_records}: sent {checksum:#010x}, computed {expected:#010x}"
                )
            record_checksums += _PACK_UINT(expected)
            for i in range(n_columns):
                values[i].append(row[i])
            row = [None] * n_columns
            record_crc_input = bytearray()
            n_records += 1
            continue
        if field == TUNNEL_META_COUNT:
            if record_crc_input:
                raise TunnelFormatError(f"footer follows an unterminated record {n_records}")
            count = _unzigzag(read_varint())
            if count != n_records:
                raise TunnelFormatError(f"footer says {count} records, block holds {n_records}")
            if (read_varint() >> 3) != TUNNEL_META_CHECKSUM:
                raise TunnelFormatError("footer record count is not followed by the block checksum")
            checksum = read_varint() & 0xFFFFFFFF
            expected = crc32c(record_checksums)
            if checksum != expected:
                raise TunnelFormatError(
                    f"block checksum mismatch: sent {checksum:#010x}, computed {expected:#010x}"
                )
            if pos != end:
                raise TunnelFormatError(f"{end - pos} unexpected bytes after the block footer")
            break
        if not 1 <= field <= n_columns:
            raise TunnelFormatError(f"field number {field} outside the schema's {n_columns} columns")
        index = field - 1
        if wire_type != wire_types[index]:
            raise TunnelFormatError(
                f"column {columns[index].name} ({types[index]}) sent with wire type {wire_type}"
            )
        record_crc_input += _PACK_INT(field)
        name = names[index]
        if wire_type == WIRETYPE_VARINT:
            raw = read_varint()
            if name == "BOOLEAN":
                if raw > 1:
                    raise TunnelFormatError(f"BOOLEAN value {raw} in column {columns[index].name}")
                record_crc_input.append(raw)
                value = bool(raw)
            else:
                value = _unzigzag(raw)
                record_crc_input += _PACK_LONG(value)
                bounds = _INT_RANGES.get(name)
                if bounds is not None and not bounds[0] <= value <= bounds[1]:
                    raise TunnelFormatError(f"value {value} out of range for {name} column {columns[index].name}")
        elif wire_type == WIRETYPE_FIXED32:
            raw_bytes = read_fixed(4)
            record_crc_input += raw_bytes
            value = _UNPACK_FLOAT(raw_bytes)[0]
        elif wire_type == WIRETYPE_FIXED64:
            raw_bytes = read_fixed(8)
            record_crc_input += raw_bytes
            value = _UNPACK_DOUBLE(raw_bytes)[0]
        elif name in ("TIMESTAMP", "TIMESTAMP_NTZ"):
            # Not length-delimited despite the tag: seconds (sint64) then nanoseconds (sint32).
            seconds = _unzigzag(read_varint())
            nanos = _unzigzag(read_varint())
            record_crc_input += _PACK_LONG(seconds)
            record_crc_input += _PACK_INT(nanos)
            value = _stored_timestamp(seconds, nanos, types[index], columns[index].name)
        else:
            raw_bytes = read_bytes()
            record_crc_input += raw_bytes
            if name == "BINARY":
                value = raw_bytes
            else:
                try:
                    value = raw_bytes.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise TunnelFormatError(f"invalid UTF-8 in column {columns[index].name}: {exc}") from exc
                if name == "DECIMAL":
                    value = _to_decimal(value, types[index])
        row[index] = value

    arrays = [pa.array(values[i], type=types[i].stored_arrow) for i in range(n_columns)]
    table = pa.Table.from_arrays(arrays, names=[c.name for c in columns])
    check_values(table, columns)
    return table


# MaxCompute's TIMESTAMP / TIMESTAMP_NTZ range: 0001-01-01 00:00:00 .. 9999-12-31 23:59:59.999999999.
_MIN_TIMESTAMP_SECONDS = -62135596800
_MAX_TIMESTAMP_SECONDS = 253402300799
_NS_PER_SECOND = 1_000_000_000


def _stored_timestamp(seconds: int, nanos: int, mctype: MCType, column: str) -> int:
    """A record-format timestamp (seconds, nanoseconds) as the integer of the stored Arrow unit.

    The record format carries MaxCompute's whole range; the emulator stores TIMESTAMP_NTZ at
    microseconds (refusing finer digits rather than dropping them) and TIMESTAMP at nanoseconds
    (refusing what falls outside int64 nanoseconds, 1677..2262, rather than wrapping).
    """
    if not 0 <= nanos < _NS_PER_SECOND:
        raise TunnelFormatError(f"nanoseconds {nanos} outside 0..999999999 in column {column}")
    if not _MIN_TIMESTAMP_SECONDS <= seconds <= _MAX_TIMESTAMP_SECONDS:
        raise TunnelFormatError(f"{mctype} value of {seconds} seconds outside 0001..9999 in column {column}")
    if mctype.name == "TIMESTAMP_NTZ":
        if nanos % 1000:
            raise TunnelFormatError(
                f"TIMESTAMP_NTZ value with {nanos} nanoseconds in column {column}: the emulator keeps microseconds"
            )
        return seconds * 1_000_000 + nanos // 1000
    value = seconds * _NS_PER_SECOND + nanos
    if not -(2**63) <= value < 2**63:
        raise TunnelFormatError(
            f"TIMESTAMP value outside 1677-09-21 .. 2262-04-11 in column {column}: the emulator stores "
            "TIMESTAMP as int64 nanoseconds"
        )
    return value


def check_values(table: pa.Table, columns: Sequence[Column]) -> None:
    """Reject values MaxCompute would refuse that the Arrow type alone cannot rule out."""
    for column in columns:
        length = column.type.length
        if column.type.name in ("VARCHAR", "CHAR") and length is not None and table.num_rows:
            longest = pc.max(pc.utf8_length(table.column(column.name))).as_py()
            if longest is not None and longest > length:
                raise TunnelFormatError(
                    f"value of {longest} characters exceeds {column.type} in column {column.name}"
                )


# -- record format: encoding ----------------------------------------------------------------------
def _python_values(array: pa.ChunkedArray | pa.Array, mctype: MCType) -> list:
    """Column values in the shape the record encoder writes (ints for times and dates)."""
    name = mctype.name
    if name in ("TIMESTAMP", "TIMESTAMP_NTZ"):
        # integer nanoseconds in Python ints: TIMESTAMP_NTZ's microseconds reach beyond int64 ns
        per_unit = {"s": 10**9, "ms": 10**6, "us": 1000, "ns": 1}[array.type.unit]
        return [None if v is None else v * per_unit for v in array.cast(pa.int64()).to_pylist()]
    if name == "DATETIME":
        return array.cast(pa.int64()).to_pylist()
    if name == "DATE":
        return array.cast(pa.int32()).to_pylist()
    return array.to_pylist()


def encode_record_stream(
    table: pa.Table, columns: Sequence[Column], rows_per_piece: int = 4096
) -> Iterator[bytes]:
    """Encode ``table`` (conformed to ``columns``, see :func:`conform_table`) in the record format.

    Fields are numbered by position in ``columns``; yields pieces of the body so large responses
    stream.
    """
    tags = [_tag(i + 1, _protobuf_wire_type(c.type)) for i, c in enumerate(columns)]
    field_crc = [_PACK_INT(i + 1) for i in range(len(columns))]
    names = [c.type.name for c in columns]
    record_checksums = bytearray()
    n_records = 0
    for offset in range(0, max(table.num_rows, 1), rows_per_piece):
        piece = table.slice(offset, rows_per_piece)
        value_lists = [_python_values(piece.column(c.name), c.type) for c in columns]
        out = bytearray()
        for r in range(piece.num_rows):
            crc_input = bytearray()
            for i, name in enumerate(names):
                value = value_lists[i][r]
                if value is None:
                    continue
                out += tags[i]
                crc_input += field_crc[i]
                if name == "BOOLEAN":
                    out.append(1 if value else 0)
                    crc_input.append(1 if value else 0)
                elif name in _INT_RANGES or name in ("DATETIME", "DATE"):
                    out += _varint(_zigzag(value))
                    crc_input += _PACK_LONG(value)
                elif name == "FLOAT":
                    raw = _PACK_FLOAT(value)
                    out += raw
                    crc_input += raw
                elif name == "DOUBLE":
                    raw = _PACK_DOUBLE(value)
                    out += raw
                    crc_input += raw
                elif name in ("TIMESTAMP", "TIMESTAMP_NTZ"):
                    seconds, nanos = divmod(value, 1_000_000_000)
                    out += _varint(_zigzag(seconds))
                    out += _varint(_zigzag(nanos))
                    crc_input += _PACK_LONG(seconds)
                    crc_input += _PACK_INT(nanos)
                else:
                    if name == "DECIMAL":
                        raw = format(value, "f").encode()
                    elif name == "BINARY":
                        raw = value
                    else:
                        raw = value.encode("utf-8")
                    out += _varint(len(raw))
                    out += raw
                    crc_input += raw
            checksum = crc32c(crc_input)
            out += _END_RECORD_TAG
            out += _varint(checksum)
            record_checksums += _PACK_UINT(checksum)
            n_records += 1
        if out:
            yield bytes(out)
    yield (
        _META_COUNT_TAG
        + _varint(_zigzag(n_records))
        + _META_CHECKSUM_TAG
        + _varint(crc32c(record_checksums))
    )


# -- Arrow tunnel format --------------------------------------------------------------------------
_PACK_BE_UINT = struct.Struct(">I").pack
_UNPACK_BE_UINT = struct.Struct(">I").unpack
DEFAULT_ARROW_CHUNK_SIZE = 65536  # what pyodps uses (options.chunk_size); any value is legal


def _unframe_arrow_chunks(data: bytes) -> list[memoryview]:
    """Split the chunked CRC framing off an Arrow tunnel body, verifying every checksum."""
    if len(data) < 4:
        raise TunnelFormatError(f"Arrow block of {len(data)} bytes is shorter than its checksum")
    view = memoryview(data)
    if len(data) == 4:  # a writer that wrote no batch sends only the (empty) total checksum
        (total,) = _UNPACK_BE_UINT(view[:4])
        if total != 0:
            raise TunnelFormatError("empty Arrow block with a non-zero checksum")
        return []
    if len(data) < 8:
        raise TunnelFormatError(f"Arrow block of {len(data)} bytes is truncated")
    (chunk_size,) = _UNPACK_BE_UINT(view[:4])
    if chunk_size == 0:
        raise TunnelFormatError("Arrow block announces a chunk size of 0")
    body = view[4:-4]
    (total_sent,) = _UNPACK_BE_UINT(view[-4:])
    stride = chunk_size + 4
    n_full, remainder = divmod(len(body), stride)
    if remainder >= chunk_size:
        raise TunnelFormatError("Arrow block truncated: a full chunk lacks its checksum")
    pieces: list[memoryview] = []
    total = 0
    for i in range(n_full):
        start = i * stride
        chunk = body[start : start + chunk_size]
        (sent,) = _UNPACK_BE_UINT(body[start + chunk_size : start + stride])
        computed = crc32c(chunk)
        if computed != sent:
            raise TunnelFormatError(
                f"checksum mismatch in Arrow chunk {i}: sent {sent:#010x}, computed {computed:#010x}"
            )
        total = crc32c_combine(total, computed, chunk_size)
        pieces.append(chunk)
    tail = body[n_full * stride :]
    total = crc32c_combine(total, crc32c(tail), len(tail))
    if total != total_sent:
        raise TunnelFormatError(
            f"Arrow block checksum mismatch: sent {total_sent:#010x}, computed {total:#010x}"
        )
    if len(tail):
        pieces.append(tail)
    return pieces


def decode_arrow_block(data: bytes, columns: Sequence[Column]) -> pa.Table:
    """Decode one uploaded block in the Arrow tunnel format into a table of ``columns`` (stored types).

    The record batches carry no schema of their own: they are read with the wire types of the
    session's columns (:func:`wire_schema`) and fully validated; a client sending other types or
    malformed buffers is rejected.
    """
    # Uploads are read with the DECLARED types, as the service reads them: pyodps 0.13.2 sends
    # DECIMAL(p,0) rescaled to scale 18 (its bug; the provider patches it to send scale 0), and an
    # unpatched client's scale-0 decimals therefore arrive out of range and are rejected, not stored wrong.
    schema = wire_schema(columns)
    pieces = _unframe_arrow_chunks(data)
    payload = pieces[0] if len(pieces) == 1 else b"".join(pieces)
    batches: list[pa.RecordBatch] = []
    if len(payload):
        messages = pa.ipc.MessageReader.open_stream(pa.BufferReader(payload))
        while True:
            try:
                message = messages.read_next_message()
            except StopIteration:
                break
            except (OSError, pa.ArrowException) as exc:
                raise TunnelFormatError(f"malformed Arrow IPC message: {exc}") from exc
            if message.type != "record batch":
                raise TunnelFormatError(f"unexpected Arrow IPC message of type {message.type!r}")
            try:
                batch = pa.ipc.read_record_batch(message, schema)
                batch.validate(full=True)
            except (OSError, pa.ArrowException) as exc:
                raise TunnelFormatError(f"record batch does not match the session schema: {exc}") from exc
            batches.append(batch)
    return _wire_to_stored(pa.Table.from_batches(batches, schema=schema), columns)


def _wire_to_stored(table: pa.Table, columns: Sequence[Column]) -> pa.Table:
    """An uploaded block at the wire types -> the stored types (TIMESTAMP_NTZ to microseconds)."""
    arrays = []
    for array, column in zip(table.columns, columns, strict=True):
        target = column.type.stored_arrow
        if array.type != target:
            nanos = array.cast(pa.int64())
            # divide() truncates toward zero, so the remainder is 0 exactly for whole microseconds
            remainder = pc.subtract(nanos, pc.multiply(pc.divide(nanos, 1000), 1000))
            if pc.any(pc.fill_null(pc.not_equal(remainder, 0), False)).as_py():
                raise TunnelFormatError(
                    f"{column.type} value with nanoseconds in column {column.name}: the emulator keeps microseconds"
                )
            array = array.cast(target)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=stored_schema(columns))


def encode_arrow_stream(
    batches: Iterable[pa.RecordBatch], chunk_size: int = DEFAULT_ARROW_CHUNK_SIZE
) -> Iterator[bytes]:
    """Frame record batches in the Arrow tunnel format (what ``open_arrow_reader`` expects)."""
    yield _PACK_BE_UINT(chunk_size)
    pending = bytearray()
    total = 0
    for batch in batches:
        pending += batch.serialize()
        if len(pending) < chunk_size:
            continue
        out = bytearray()
        view = memoryview(pending)
        n_full = len(pending) // chunk_size
        for i in range(n_full):
            chunk = view[i * chunk_size : (i + 1) * chunk_size]
            chunk_crc = crc32c(chunk)
            out += chunk
            out += _PACK_BE_UINT(chunk_crc)
            total = crc32c_combine(total, chunk_crc, chunk_size)
        rest = bytes(view[n_full * chunk_size :])
        view.release()
        pending = bytearray(rest)
        yield bytes(out)
    total = crc32c(pending, total)
    yield bytes(pending) + _PACK_BE_UINT(total)


def encode_ipc_stream(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> bytes:
    """A plain Arrow IPC stream (schema, batches, end marker), as the table preview returns."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return sink.getvalue().to_pybytes()


# -- shaping tables for the wire --------------------------------------------------------------------
TIMESTAMP_STRUCT = pa.struct([("sec", pa.int64()), ("nano", pa.int32())])


def wire_schema(columns: Sequence[Column]) -> pa.Schema:
    """The Arrow schema of these columns on the table tunnel's wire (pyodps's types)."""
    return pa.schema([pa.field(c.name, c.type.arrow) for c in columns])


def stored_schema(columns: Sequence[Column]) -> pa.Schema:
    """The Arrow schema the emulator holds these columns in (blocks, snapshots, query results)."""
    return pa.schema([pa.field(c.name, c.type.stored_arrow) for c in columns])


# pyodps 0.13.2 maps DECIMAL(p, 0) to decimal128(p, 18) ("scale or 18") and casts unsafely, which
# garbles large values; the provider patches that (core.compat.patch_pyodps_decimal_scale), so the
# emulator speaks the declared types on the wire, as the service's table schema says.


def cast_to_columns(table: pa.Table, columns: Sequence[Column]) -> pa.Table:
    """Cast a table at the stored types to the table tunnel's wire types of ``columns``, refusing
    any loss of value: a TIMESTAMP_NTZ value outside the wire's nanosecond range (1677-09-21 ..
    2262-04-11) is an error naming the column and the ways that carry it (the record reader, or
    SQL's CAST to STRING), never a wrapped date. The service's own behaviour for such values on
    the Arrow tunnel is not documented; refusing is the emulator's choice (docs/lossless-types.md)."""
    target = wire_schema(columns)
    if table.schema == target:
        return table
    arrays = []
    for array, field in zip(table.columns, target, strict=True):
        if array.type != field.type:
            try:
                array = array.cast(field.type)
            except pa.ArrowInvalid as exc:
                if pa.types.is_timestamp(field.type):
                    raise TunnelFormatError(
                        f"column {field.name} holds a value outside 1677-09-21 .. 2262-04-11, which the Arrow "
                        "tunnel's timestamp(ns) cannot carry; read it with the record reader (open_record_reader) "
                        "or as SQL CAST(... AS STRING)"
                    ) from exc
                raise TunnelFormatError(
                    f"values do not fit the columns' Arrow types ({exc}); note that an unpatched pyodps 0.13 "
                    "sends DECIMAL(p,0) rescaled to scale 18, out of range for the column"
                ) from exc
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=target)


def conform_table(table: pa.Table, columns: Sequence[Column]) -> pa.Table:
    """Select ``columns`` from ``table`` (by name) and cast them to the stored Arrow types.

    Storage and queries return DuckDB's types (e.g. microsecond timestamps from a DATETIME
    expression); DATETIME has millisecond precision in MaxCompute, so finer digits a SQL
    expression may have produced are truncated, not rejected.
    """
    by_name = {name.lower(): i for i, name in enumerate(table.column_names)}
    arrays = []
    for column in columns:
        if column.name.lower() not in by_name:
            raise KeyError(f"column {column.name!r} missing from the result")
        array = table.column(by_name[column.name.lower()])
        target = column.type.stored_arrow
        if array.type != target:
            truncating = pa.types.is_timestamp(target) and target.unit == "ms"
            array = array.cast(target, safe=not truncating)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, schema=stored_schema(columns))


def timestamps_as_struct(table: pa.Table) -> pa.Table:
    """Replace TIMESTAMP / TIMESTAMP_NTZ columns (nanoseconds, or microseconds as TIMESTAMP_NTZ is
    stored) with ``struct<sec, nano>``, the instance tunnel's and preview's wire form, which carries
    the whole 0001..9999 range. DATETIME (milliseconds) keeps its own form."""
    arrays = []
    fields = []
    for field, array in zip(table.schema, table.columns, strict=True):
        if pa.types.is_timestamp(field.type) and field.type.unit in ("ns", "us"):
            flat = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
            ticks = flat.cast(pa.int64())
            per_second = 1_000_000_000 if field.type.unit == "ns" else 1_000_000
            # floor division in integers: divide() truncates toward zero, so fix negative remainders
            seconds = pc.divide(ticks, per_second)
            remainder = pc.subtract(ticks, pc.multiply(seconds, per_second))
            negative = pc.less(remainder, 0)
            seconds = pc.subtract(seconds, pc.if_else(negative, 1, 0).cast(pa.int64()))
            remainder = pc.add(remainder, pc.if_else(negative, per_second, 0).cast(pa.int64()))
            remainder = pc.multiply(remainder, 1_000_000_000 // per_second)
            array = pa.StructArray.from_arrays(
                [seconds, remainder.cast(pa.int32())], fields=list(TIMESTAMP_STRUCT), mask=flat.is_null()
            )
            field = pa.field(field.name, TIMESTAMP_STRUCT)
        arrays.append(array)
        fields.append(field)
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))
