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

from airflow_provider_polar_mc.core.compat import patch_pyodps_decimal_scale, single_pass_checksums
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination

log = logging.getLogger(__name__)

MAX_BLOCK_ID = 19999  # the Tunnel accepts block ids 0..19999 per session
# Rows per Arrow record batch handed to the writer: pyodps copies each batch whole into one bytes
# object before framing it, so a block goes out in slices of a few MB instead of one copy of it all.
WRITE_BATCH_ROWS = 16384


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
