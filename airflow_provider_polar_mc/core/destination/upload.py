"""Arrow uploads through the MaxCompute Tunnel: one session per table (or partition), one block per chunk.

A session's uploaded blocks are kept by the Tunnel service until commit, and the session can be
re-attached by its id from any worker: that is the resume mechanism. The server's block list is the
truth about which chunks are done (a block whose upload completed is listed; one cut off mid-way is
not), and re-uploading a block id replaces it, so a retry after a crash uploads only what is missing
and the single commit publishes every row exactly once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pyarrow as pa
from odps.errors import ODPSError
from odps.tunnel import TableTunnel
from odps.tunnel.tabletunnel import TableUploadSession

from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.values import patch_pyodps_decimal_scale

log = logging.getLogger(__name__)

MAX_BLOCK_ID = 19999  # the Tunnel accepts block ids 0..19999 per session
# Rows per Arrow record batch handed to the writer: pyodps copies each batch whole into one bytes
# object before framing it, so a block goes out in slices of a few MB instead of one copy of it all.
WRITE_BATCH_ROWS = 16384


class SessionGone(Exception):
    """The recorded upload session no longer exists or can no longer take blocks (expired, cancelled)."""


class TableUpload:
    """One Tunnel upload session (create or re-attach), its blocks and its commit."""

    def __init__(
        self,
        destination: MaxComputeDestination,
        table: str,
        *,
        partition: str | None = None,
        overwrite: bool = True,
        block_retries: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ):
        patch_pyodps_decimal_scale()
        self.destination = destination
        self.table = table
        self.partition = partition
        self.overwrite = overwrite
        self.block_retries = block_retries
        self._sleep = sleep
        self._tunnel = TableTunnel(destination.odps, project=destination.project)
        self.session: TableUploadSession | None = None

    @property
    def upload_id(self) -> str:
        assert self.session is not None
        return self.session.id

    def open(self, upload_id: str | None = None) -> bool:
        """Re-attach to ``upload_id`` when it is still open, else create a new session.

        Returns True when re-attached (blocks already uploaded are kept), False for a new session.
        """
        if upload_id:
            try:
                session = self._tunnel.create_upload_session(
                    self.table, partition_spec=self.partition, upload_id=upload_id
                )
                status = session.status.name.lower()
                if status in ("normal", "closed"):
                    self.session = session
                    return True
                log.warning("upload session %s of %s is %s; starting a new one", upload_id, self.table, status)
            except ODPSError as exc:
                log.warning("upload session %s of %s cannot be re-attached (%s); starting a new one", upload_id, self.table, exc)
        self.session = self._tunnel.create_upload_session(
            self.table, partition_spec=self.partition, overwrite=self.overwrite, create_partition=self.partition is not None
        )
        return False

    @property
    def committed(self) -> bool:
        assert self.session is not None
        return self.session.status == TableUploadSession.Status.Closed

    def uploaded_blocks(self) -> set[int]:
        assert self.session is not None
        return {int(b) for b in self.session.get_block_list()}

    def write_block(self, block_id: int, data: pa.Table) -> None:
        """Upload ``data`` as block ``block_id`` (replacing any earlier upload of it), with retries."""
        assert self.session is not None
        if not 0 <= block_id <= MAX_BLOCK_ID:
            raise ValueError(f"block id {block_id} outside the Tunnel's range 0..{MAX_BLOCK_ID}")
        for attempt in range(self.block_retries + 1):
            try:
                with self.session.open_arrow_writer(block_id) as writer:
                    single_pass_checksums(writer)
                    for batch in data.to_batches(max_chunksize=WRITE_BATCH_ROWS):
                        writer.write(batch)
                return
            except (ODPSError, OSError) as exc:
                if attempt == self.block_retries:
                    raise
                delay = min(30.0, 0.5 * 2**attempt)
                log.warning("block %d of %s failed (%s); retry %d in %.1fs", block_id, self.table, exc, attempt + 1, delay)
                self._sleep(delay)

    def commit(self, block_ids: list[int]) -> None:
        """Publish the session's blocks (with overwrite: replace the table or partition) in one step."""
        assert self.session is not None
        self.session.reload()
        if self.committed:
            return  # an earlier attempt committed, then died before recording it
        self.session.commit(sorted(block_ids))


# -- one CRC pass instead of two ---------------------------------------------------------------------
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
    result = 0
    i = 0
    while vector:
        if vector & 1:
            result ^= matrix[i]
        vector >>= 1
        i += 1
    return result


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
