"""Uploads through the MaxCompute Tunnel: one session per table (or partition), one block per chunk.

A session's uploaded blocks are kept by the Tunnel service until commit, and the session can be
re-attached by its id from any worker: that is the resume mechanism. The server's block list is the
truth about which chunks are done (a block whose upload completed is listed; one cut off mid-way is
not), and re-uploading a block id replaces it, so a retry after a crash uploads only what is missing
and the single commit publishes every row exactly once.

A block goes in the Arrow format, unless it holds a TIMESTAMP_NTZ value outside the Arrow tunnel's
``timestamp('ns')`` window (1677-09-21 .. 2262-04-11, e.g. MySQL's ``9999-12-31`` and ``1000-01-01``
sentinels): such a block goes in the record (protobuf) format, which carries seconds + nanoseconds
and so MaxCompute's whole 0001..9999 range. Blocks are independent requests of one session, so
the two formats mix freely (docs/lossless-types.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from odps.config import option_context
from odps.errors import ODPSError
from odps.tunnel import TableTunnel
from odps.tunnel.tabletunnel import TableUploadSession

from airflow_provider_polar_mc.core import cancellation, failpoints
from airflow_provider_polar_mc.core.compat import patch_pyodps_decimal_scale, single_pass_checksums
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination

log = logging.getLogger(__name__)

MAX_BLOCK_ID = 19999  # the Tunnel accepts block ids 0..19999 per session
# Rows per Arrow record batch handed to the writer: pyodps copies each batch whole into one bytes
# object before framing it, so a block goes out in slices of a few MB instead of one copy of it all.
WRITE_BATCH_ROWS = 16384
# timestamp('ns'), the Arrow tunnel's TIMESTAMP_NTZ, holds int64 nanoseconds: the microseconds that fit.
_ARROW_WINDOW_MICROS = (-(2**63) // 1000 + 1, (2**63 - 1) // 1000)


def needs_record_format(data: pa.Table) -> bool:
    """True when a microsecond timestamp column (TIMESTAMP_NTZ, see core/typemap.py) holds a value
    the Arrow tunnel's ``timestamp('ns')`` cannot carry."""
    low, high = _ARROW_WINDOW_MICROS
    for column in data.columns:
        if pa.types.is_timestamp(column.type) and column.type.unit == "us" and column.null_count < len(column):
            bounds = pc.min_max(column.cast(pa.int64()))
            if bounds["min"].as_py() < low or bounds["max"].as_py() > high:
                return True
    return False


def _record_values(column: pa.Array) -> list:
    """A column as the Python values pyodps's record writer takes: timestamps as pandas Timestamps
    (at the array's own unit, so year 9999 fits), which its validation accepts without converting."""
    if pa.types.is_timestamp(column.type):
        return [None if value is pd.NaT else value for value in column.to_pandas()]
    return column.to_pylist()


class TableUpload:
    """One Tunnel upload session (create or re-attach), its blocks and its commit."""

    def __init__(
        self,
        destination: MaxComputeDestination,
        table: str,
        *,
        partition: str | None = None,
        overwrite: bool = True,
    ):
        patch_pyodps_decimal_scale()
        self.destination = destination
        self.table = table
        self.partition = partition
        self.overwrite = overwrite
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
            if self.attach(upload_id):
                return True
            log.warning("starting a new upload session of %s instead of %s", self.table, upload_id)
        # Repeated after a lost answer, this leaves a session nobody writes to: it expires unseen.
        self.session = self.destination.call(lambda: self._tunnel.create_upload_session(
            self.table, partition_spec=self.partition, overwrite=self.overwrite, create_partition=self.partition is not None
        ), f"open an upload session of {self.table}")  # fmt: skip
        return False

    def attach(self, upload_id: str) -> bool:
        """Re-attach to ``upload_id`` only (never create a session): False when it is gone or expired.

        For writers that share one session (the shards of a table): a new session of their own would
        hold blocks nobody commits.
        """
        try:
            session = self.destination.call(
                lambda: self._tunnel.create_upload_session(self.table, partition_spec=self.partition, upload_id=upload_id),
                f"re-attach upload session {upload_id} of {self.table}")  # fmt: skip
        except ODPSError as exc:
            log.warning("upload session %s of %s cannot be re-attached (%s)", upload_id, self.table, exc)
            return False
        status = session.status.name.lower()
        if status not in ("normal", "closed"):
            log.warning("upload session %s of %s is %s", upload_id, self.table, status)
            return False
        self.session = session
        return True

    @property
    def committed(self) -> bool:
        assert self.session is not None
        return self.session.status == TableUploadSession.Status.Closed

    def uploaded_blocks(self) -> set[int]:
        session = self.session
        assert session is not None
        return self.destination.call(lambda: {int(b) for b in session.get_block_list()}, f"list the blocks of {self.table}")

    def write_block(self, block_id: int, data: pa.Table) -> None:
        """Upload ``data`` as block ``block_id`` (replacing any earlier upload of it), with retries."""
        assert self.session is not None
        if not 0 <= block_id <= MAX_BLOCK_ID:
            raise ValueError(f"block id {block_id} outside the Tunnel's range 0..{MAX_BLOCK_ID}")
        as_records = needs_record_format(data)
        session = self.session

        def upload() -> None:  # a block id uploaded again replaces the earlier upload: safe to repeat
            if as_records:
                self._write_records(block_id, data)
            else:
                with session.open_arrow_writer(block_id) as writer:
                    single_pass_checksums(writer)
                    for batch in data.to_batches(max_chunksize=WRITE_BATCH_ROWS):
                        writer.write(batch)

        self.destination.call(upload, f"upload block {block_id} of {self.table}")
        failpoints.reached("tunnel.block_written")

    def _write_records(self, block_id: int, data: pa.Table) -> None:
        """``data`` as one record-format block: Python values, several times slower than Arrow, so
        only for blocks the Arrow format cannot carry."""
        assert self.session is not None
        log.info("block %d of %s holds timestamps beyond 2262 or before 1677: sending it as records", block_id, self.table)
        by_name = {name.lower(): i for i, name in enumerate(data.column_names)}
        order = [by_name.get(column.name.lower()) for column in self.session.schema.simple_columns]
        # pyodps refuses pre-1928 values unless told; its guard is about the local zone's LMT
        # offsets, which a TIMESTAMP_NTZ wall clock (written in UTC) does not have.
        with option_context({"allow_antique_date": True}), self.session.open_record_writer(block_id) as writer:
            for batch in data.to_batches(max_chunksize=WRITE_BATCH_ROWS):
                columns = [_record_values(batch.column(i)) if i is not None else [None] * batch.num_rows for i in order]
                for values in zip(*columns, strict=True):
                    writer.write(self.session.new_record(list(values)))

    def commit(self, block_ids: list[int]) -> None:
        """Publish the session's blocks (with overwrite: replace the table or partition) in one step."""
        assert self.session is not None
        cancellation.check()  # a killed task publishes nothing: its retry commits
        failpoints.reached("tunnel.commit")
        session = self.session

        def commit() -> None:
            session.reload()
            if not self.committed:  # else an earlier attempt committed (its answer lost, or it died after)
                session.commit(sorted(block_ids))

        self.destination.call(commit, f"commit the upload of {self.table}")
        failpoints.reached("tunnel.committed")  # data before bookkeeping: the mark is still to write


class PartitionUploads:
    """One partition of many tables written as a stream: an overwrite session per table, opened at its
    first block; blocks uploaded by ``threads`` threads while the caller produces the next ones, with
    at most ``max_in_flight`` blocks queued or uploading (:meth:`write` blocks until one finishes, so
    memory is bounded by the blocks in flight, not by the partition); every session committed once
    by :meth:`commit`. Nothing is visible before :meth:`commit`: an abandoned or killed run leaves the
    old partitions, and a new run's sessions overwrite them."""

    def __init__(
        self,
        destination: MaxComputeDestination,
        partition: str,
        *,
        threads: int = 2,
        max_in_flight: int = 4,
        before_block: Callable[[pa.Table], None] = lambda rows: None,
    ):
        self.destination = destination
        self.partition = partition
        self._before_block = before_block
        self._uploads: dict[str, TableUpload] = {}
        self._blocks: dict[str, list[int]] = {}
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="partition-upload")
        self._slots = threading.BoundedSemaphore(max(1, max_in_flight))
        self._futures: list[Future] = []
        self._failure: BaseException | None = None

    def opened(self, table: str) -> bool:
        """Whether ``table``'s session is open (a block of it was written)."""
        return table in self._uploads

    def write(self, table: str, rows: pa.Table) -> None:
        """Queue ``rows`` as the next block of ``table``'s session (opened at its first block)."""
        self._raise_failure()
        upload = self._uploads.get(table)
        if upload is None:
            upload = self._uploads[table] = TableUpload(
                self.destination, table, partition=self.partition, overwrite=True
            )
            upload.open()
            self._blocks[table] = []
        block_id = len(self._blocks[table])
        if block_id > MAX_BLOCK_ID:
            raise ValueError(
                f"the partition {self.partition} of {table} needs more than {MAX_BLOCK_ID + 1} Tunnel blocks: "
                "raise incremental.block_rows"
            )
        self._blocks[table].append(block_id)
        self._before_block(rows)
        self._slots.acquire()  # back-pressure: wait for a free slot
        try:
            future = self._pool.submit(upload.write_block, block_id, rows)
        except BaseException:
            self._slots.release()
            raise
        future.add_done_callback(self._finished)
        if len(self._futures) >= 64:  # keep only the unfinished ones (a partition may have 20,000 blocks)
            self._futures = [f for f in self._futures if not f.done()]
        self._futures.append(future)

    def _finished(self, future: Future) -> None:
        self._slots.release()
        if future.cancelled():
            return
        if future.exception() is not None and self._failure is None:
            self._failure = future.exception()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _drain(self) -> None:
        for future in self._futures:
            future.exception()  # waits; the failure (if any) is kept by _finished
        self._futures = []

    def commit(self, tables: Sequence[str]) -> None:
        """Wait for every block, then commit every table's session; ``tables`` never written get an
        empty session, so their partition is overwritten (emptied) too."""
        self._drain()
        self._raise_failure()
        for table in tables:
            if table not in self._uploads:
                upload = self._uploads[table] = TableUpload(
                    self.destination, table, partition=self.partition, overwrite=True
                )
                upload.open()
                self._blocks[table] = []
        for table, upload in self._uploads.items():
            upload.commit(self._blocks[table])
        self.close()

    def close(self) -> None:
        """Stop (waiting for blocks in flight) without committing anything."""
        self._pool.shutdown(wait=True, cancel_futures=True)
