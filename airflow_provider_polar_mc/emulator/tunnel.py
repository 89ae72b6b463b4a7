"""The emulator's Tunnel service: upload and download sessions as pyodps's tunnel client uses them.

Routes (paths start at ``/projects/{project}``; the server strips its tunnel prefix and checks auth):

=======  =========================================  =============================================
method   path and query                             what
=======  =========================================  =============================================
POST     ``.../tables/{t}?uploads[&partition=]``    create an upload session (``overwrite=true``,
                                                    ``create_partition=true`` optional)
GET      ``.../tables/{t}?uploadid=``               upload session status with its block list
PUT      ``.../tables/{t}?uploadid=&blockid=``      upload a block: record format, or Arrow
                                                    format with ``arrow``
POST     ``.../tables/{t}?uploadid=``               commit every uploaded block, atomically
POST     ``.../tables/{t}?downloads[&partition=]``  create a download session (a snapshot)
GET      ``.../tables/{t}?downloadid=``             download session status
GET      ``.../tables/{t}?data&downloadid=&rowrange=(start,count)[&columns=][&arrow]``  rows
GET      ``.../tables/{t}/preview?limit=``          first rows as a plain Arrow IPC stream
POST     ``.../instances/{id}?downloads``           download session over a SQL result
GET      ``.../instances/{id}?downloadid=[&data&rowrange=...]``  status / rows
=======  =========================================  =============================================

``.../tables/{t}`` may also be ``.../schemas/{s}/tables/{t}`` (pyodps adds the schema for
three-tier projects and for preview); the schema is ignored.

Upload sessions live on disk under ``data_dir/tunnel/<upload_id>/``: ``session.json`` and one Arrow
IPC file per block, each written to a temporary file and renamed, so sessions and blocks survive an
emulator restart and a client may re-attach with ``create_upload_session(upload_id=...)``.
Re-uploading a block id replaces it. A block that fails to decode (bad checksum, truncated, wrong
types) is rejected and leaves the session as it was.

Commit follows MaxCompute: the request names no blocks (pyodps checks its block list against the
server's before committing); every uploaded block is written in one ``Storage.write`` transaction
in block-id order, honouring the session's overwrite flag, and the session becomes CLOSED.

Session ids come from the request (``uploadid`` / ``downloadid``) and name directories, so only ids of
the exact shape this service generates (:data:`SESSION_ID`) are looked up; anything else (``..``,
``/``, other lengths) is a session that does not exist (404), before any path is built. A compressed
block is inflated up to ``max_inflated_body`` bytes; beyond that it is refused with 413.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from email.utils import formatdate
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from .catalog import Column, InvalidName, PartitionSpec, TableMeta, parse_partition_spec
from .errors import EmulatorError
from .http import Request, Response
from .storage import Storage, StorageError
from .tunnel_codec import (
    InflatedTooLarge,
    TunnelFormatError,
    UnsupportedEncoding,
    cast_to_columns,
    conform_table,
    decode_arrow_block,
    decode_record_block,
    decompress_body,
    encode_arrow_stream,
    encode_ipc_stream,
    encode_record_stream,
    timestamps_as_struct,
)
from .types import UnsupportedType, parse_type

_S = TypeVar("_S")


class QueryResult(Protocol):
    """What ``instance_results`` returns: the result of a finished SQL instance."""

    columns: list[Column]
    table: pa.Table


InstanceResults = Callable[[str, str], QueryResult]

_TABLE_PATH = re.compile(
    r"^/projects/(?P<project>[^/]+)(?:/schemas/(?P<schema>[^/]+))?/tables/(?P<table>[^/]+)(?P<preview>/preview)?/?$"
)
_INSTANCE_PATH = re.compile(r"^/projects/(?P<project>[^/]+)/instances/(?P<instance>[^/]+)/?$")
# What _new_session_id makes: a UTC timestamp (14 digits) and 18 lower-case hex digits.
SESSION_ID = re.compile(r"^[0-9]{14}[0-9a-f]{18}$")
# Instance ids are only looked up in memory; still, nothing outside this alphabet is one.
_INSTANCE_ID = re.compile(r"^[0-9A-Za-z_-]{1,64}$")
_ROW_RANGE = re.compile(r"^\(\s*(\d+)\s*,\s*(\d+)\s*\)$")

MAX_BLOCK_ID = 20000  # MaxCompute accepts block ids 0..19999 in one upload session
MAX_FIELD_SIZE = 8 * 1024 * 1024  # reported to pyodps as the session's MaxFieldSize
INSTANCE_TUNNEL_LIMIT = 10000  # rows a limited instance tunnel returns (instance_tunnel_limit_enabled)

STATUS_NORMAL = "normal"
STATUS_CLOSED = "closed"

_JSON = "application/json"
_OCTETS = "application/octet-stream"


# -- helpers ----------------------------------------------------------------------------------------
def _new_session_id() -> str:
    # MaxCompute ids look like a UTC timestamp followed by hex digits.
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + uuid.uuid4().hex[:18]


def _check_session_id(value: str, code: str, what: str) -> str:
    """The id if it has the shape this service generates, else the 404 of a session that does not exist."""
    if not SESSION_ID.match(value or ""):
        raise EmulatorError(404, code, f"{what} session {value[:80]!r} does not exist")
    return value


def _json_response(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(status, {"Content-Type": _JSON}, json.dumps(payload).encode())


def _columns_to_json(columns: Sequence[Column]) -> list[dict[str, str]]:
    return [{"name": c.name, "type": str(c.type), "comment": c.comment} for c in columns]


def _columns_from_json(items: Sequence[dict[str, str]]) -> list[Column]:
    return [Column(d["name"], parse_type(d["type"]), d.get("comment", "")) for d in items]


def _schema_json(columns: Sequence[Column], partition_columns: Sequence[Column] = ()) -> dict[str, Any]:
    """The ``Schema`` node pyodps parses into a TableSchema (``columns`` and ``partitionKeys``)."""

    def column(c: Column) -> dict[str, Any]:
        return {
            "name": c.name,
            "type": str(c.type),
            "comment": c.comment,
            "isNullable": c.nullable,
            "nullable": c.nullable,
        }

    return {
        "IsVirtualView": False,
        "columns": [column(c) for c in columns],
        "partitionKeys": [column(c) for c in partition_columns],
    }


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_table_atomically(path: Path, table: pa.Table) -> None:
    """Write an Arrow IPC file under a temporary name, fsync it, then rename it into place."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _read_table(path: Path) -> pa.Table:
    """An Arrow IPC file, memory-mapped (no copy)."""
    with pa.memory_map(str(path), "r") as source:
        return pa.ipc.open_file(source).read_all()


def _storage_error(exc: StorageError) -> EmulatorError:
    status = 404 if exc.code in ("NoSuchObject", "NoSuchPartition") else 400
    return EmulatorError(status, exc.code, str(exc))


def _parse_partition(query: dict[str, str]) -> PartitionSpec | None:
    text = query.get("partition", "")
    return parse_partition_spec(text) or None


def _parse_row_range(query: dict[str, str], record_count: int) -> tuple[int, int]:
    match = _ROW_RANGE.match(query.get("rowrange", ""))
    if not match:
        raise EmulatorError(400, "InvalidArgument", f"invalid rowrange {query.get('rowrange')!r}: use (start,count)")
    start, count = int(match.group(1)), int(match.group(2))
    if start + count > record_count:
        raise EmulatorError(
            400, "InvalidArgument", f"rowrange ({start},{count}) exceeds the session's {record_count} records"
        )
    return start, count


# -- sessions ---------------------------------------------------------------------------------------
_COLUMN_LISTS = ("columns", "partition_columns")


def _session_to_json(session: Any) -> dict[str, Any]:
    """A session's fields as stored in its session.json (column lists as JSON objects)."""
    document = {f.name: getattr(session, f.name) for f in fields(session)}
    for name in _COLUMN_LISTS:
        document[name] = _columns_to_json(document[name])
    return document


def _session_from_json(cls: type[_S], document: dict[str, Any]) -> _S:
    """The session stored by :func:`_session_to_json`; fields missing from an older file get their defaults."""
    values = {f.name: document[f.name] for f in fields(cls) if f.name in document}
    for name in _COLUMN_LISTS:
        values[name] = _columns_from_json(values[name])
    return cls(**values)


@dataclass
class UploadSession:
    upload_id: str
    project: str
    table: str
    partition: PartitionSpec | None
    overwrite: bool
    create_partition: bool
    columns: list[Column]
    partition_columns: list[Column]
    status: str = STATUS_NORMAL
    created_at: float = field(default_factory=time.time)
    committed_blocks: list[dict[str, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return _session_to_json(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> UploadSession:
        return _session_from_json(cls, d)


@dataclass
class DownloadSession:
    """A snapshot of rows taken when the session was created (table, partition or SQL result)."""

    download_id: str
    kind: str  # "table" or "instance"
    owner: str  # project.table or project/instance id, to refuse a session used on another object
    columns: list[Column]
    partition_columns: list[Column]
    record_count: int
    status: str = STATUS_NORMAL

    def to_json(self) -> dict[str, Any]:
        return _session_to_json(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DownloadSession:
        return _session_from_json(cls, d)


# -- the service ------------------------------------------------------------------------------------
class TunnelService:
    """Serves pyodps's TableTunnel and InstanceTunnel requests against :class:`Storage`."""

    def __init__(
        self,
        storage: Storage,
        data_dir: Path,
        instance_results: InstanceResults,
        max_inflated_body: int | None = None,
    ):
        self._storage = storage
        self._max_inflated_body = max_inflated_body
        self._uploads_dir = Path(data_dir) / "tunnel"
        self._downloads_dir = self._uploads_dir / "downloads"
        self._downloads_dir.mkdir(parents=True, exist_ok=True)
        self._instance_results = instance_results
        self._locks_guard = threading.Lock()
        self._session_locks: dict[str, threading.Lock] = {}
        self._download_rows: dict[str, pa.Table] = {}

    def close(self) -> None:
        """Drop cached download snapshots (memory maps); sessions stay on disk."""
        with self._locks_guard:
            self._download_rows.clear()

    # -- dispatch ---------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        """Answer one tunnel request; failures raise :class:`EmulatorError`."""
        try:
            return self._dispatch(req)
        except StorageError as exc:
            raise _storage_error(exc) from exc
        except UnsupportedEncoding as exc:
            raise EmulatorError(400, "InvalidArgument", str(exc)) from exc
        except InflatedTooLarge as exc:
            raise EmulatorError(413, "RequestEntityTooLarge", str(exc)) from exc
        except TunnelFormatError as exc:
            raise EmulatorError(400, "MalformedDataStream", str(exc)) from exc
        except (InvalidName, UnsupportedType) as exc:
            raise EmulatorError(400, "InvalidArgument", str(exc)) from exc

    def _dispatch(self, req: Request) -> Response:
        q = req.query
        match = _TABLE_PATH.match(req.path)
        if match:
            project, table = match.group("project"), match.group("table")
            if match.group("preview"):
                if req.method == "GET":
                    return self._preview(project, table, q)
            elif req.method == "POST" and "uploads" in q:
                return self._create_upload(project, table, q)
            elif req.method == "POST" and "downloads" in q:
                return self._create_table_download(project, table, q)
            elif "uploadid" in q:
                upload_id = _check_session_id(q["uploadid"], "NoSuchUpload", "upload")
                if req.method == "GET":
                    return self._upload_status(upload_id)
                if req.method == "PUT":
                    return self._upload_block(upload_id, req)
                if req.method == "POST":
                    return self._commit(upload_id)
            elif "downloadid" in q and req.method == "GET":
                session = self._download_session(q["downloadid"], f"{project}.{table}".lower())
                if "data" in q:
                    return self._read_rows(session, q, timestamps_as_structs=False)
                return self._download_status(session)
        match = _INSTANCE_PATH.match(req.path)
        if match:
            project, instance_id = match.group("project"), match.group("instance")
            if not _INSTANCE_ID.match(instance_id):
                raise EmulatorError(404, "NoSuchObject", f"Instance not found - {instance_id[:80]!r}")
            if req.method == "POST" and "downloads" in q:
                return self._create_instance_download(project, instance_id, q)
            if req.method == "GET" and "downloadid" in q:
                session = self._download_session(q["downloadid"], f"{project}/{instance_id}".lower())
                if "data" in q:
                    # pyodps reads instance results in Arrow with TIMESTAMP as struct<sec, nano>
                    return self._read_rows(session, q, timestamps_as_structs=True)
                return self._download_status(session)
        raise EmulatorError(
            405, "MethodNotAllowed", f"the emulator's tunnel does not serve {req.method} {req.path} {sorted(q)}"
        )

    def _session_lock(self, session_id: str) -> threading.Lock:
        with self._locks_guard:
            lock = self._session_locks.get(session_id)
            if lock is None:
                lock = self._session_locks[session_id] = threading.Lock()
            return lock

    # -- upload sessions --------------------------------------------------------------------------
    def _upload_dir(self, upload_id: str) -> Path:
        return self._uploads_dir / _check_session_id(upload_id, "NoSuchUpload", "upload")

    def _save_upload(self, session: UploadSession) -> None:
        _write_atomically(self._upload_dir(session.upload_id) / "session.json", json.dumps(session.to_json()).encode())

    def _load_upload(self, upload_id: str) -> UploadSession:
        path = self._upload_dir(upload_id) / "session.json"
        try:
            return UploadSession.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise EmulatorError(404, "NoSuchUpload", f"upload session {upload_id} does not exist") from None

    def _block_path(self, upload_id: str, block_id: int) -> Path:
        return self._upload_dir(upload_id) / f"block-{block_id:05d}.arrow"

    def _uploaded_blocks(self, upload_id: str) -> list[int]:
        ids = []
        for path in self._upload_dir(upload_id).glob("block-*.arrow"):
            ids.append(int(path.stem.split("-", 1)[1]))
        return sorted(ids)

    def _require_partition(self, meta: TableMeta, partition: PartitionSpec | None) -> PartitionSpec | None:
        """A partitioned table needs a full partition spec; an unpartitioned one refuses any."""
        if meta.is_partitioned:
            if not partition:
                raise EmulatorError(
                    400, "InvalidArgument", f"table {meta.name} is partitioned: a partition spec is required"
                )
            return self._storage.canonical_spec(meta, partition)
        if partition:
            raise EmulatorError(400, "InvalidArgument", f"table {meta.name} is not partitioned")
        return None

    def _create_upload(self, project: str, table: str, q: dict[str, str]) -> Response:
        meta = self._storage.require_table(project, table)
        partition = self._require_partition(meta, _parse_partition(q))
        create_partition = q.get("create_partition", "").lower() == "true"
        if partition is not None:
            if create_partition:
                # MaxCompute creates the partition with the session, before anything is committed.
                self._storage.create_partition(project, table, partition, if_not_exists=True)
            elif not self._storage.partition_exists(project, table, partition):
                raise EmulatorError(
                    404, "NoSuchPartition", f"partition {partition} of table {meta.project}.{meta.name} does not exist"
                )
        session = UploadSession(
            upload_id=_new_session_id(),
            project=meta.project,
            table=meta.name,
            partition=partition,
            overwrite=q.get("overwrite", "").lower() == "true",
            create_partition=create_partition,
            columns=list(meta.columns),
            partition_columns=list(meta.partition_columns),
        )
        self._upload_dir(session.upload_id).mkdir(parents=True)
        self._save_upload(session)
        return _json_response(self._upload_status_json(session), status=201)

    def _upload_status_json(self, session: UploadSession) -> dict[str, Any]:
        if session.status == STATUS_NORMAL:
            blocks = []
            for block_id in self._uploaded_blocks(session.upload_id):
                path = self._block_path(session.upload_id, block_id)
                try:
                    rows = _read_table(path).num_rows
                    created = path.stat().st_mtime
                except FileNotFoundError:  # replaced or committed meanwhile
                    continue
                blocks.append({"BlockID": block_id, "RecordCount": rows, "CreateTime": int(created)})
        else:
            blocks = list(session.committed_blocks)
        return {
            "UploadID": session.upload_id,
            "Status": session.status,
            "Owner": "",
            "Initiated": formatdate(session.created_at, usegmt=True),
            "IsOverwrite": session.overwrite,
            "Schema": _schema_json(session.columns, session.partition_columns),
            "UploadedBlockList": [
                {"BlockID": b["BlockID"], "RecordCount": b["RecordCount"], "CreateTime": b["CreateTime"], "Version": 0}
                for b in blocks
            ],
            "MaxFieldSize": MAX_FIELD_SIZE,
            "QuotaName": "",
        }

    def _upload_status(self, upload_id: str) -> Response:
        return _json_response(self._upload_status_json(self._load_upload(upload_id)))

    def _upload_block(self, upload_id: str, req: Request) -> Response:
        session = self._load_upload(upload_id)
        try:
            block_id = int(req.query.get("blockid", ""))
        except ValueError:
            raise EmulatorError(400, "InvalidArgument", f"invalid blockid {req.query.get('blockid')!r}") from None
        if not 0 <= block_id < MAX_BLOCK_ID:
            raise EmulatorError(400, "InvalidArgument", f"blockid {block_id} outside 0..{MAX_BLOCK_ID - 1}")
        if session.status != STATUS_NORMAL:
            raise EmulatorError(409, "StatusConflict", f"upload session {upload_id} is {session.status}")
        data = decompress_body(req.body, req.headers.get("Content-Encoding"), self._max_inflated_body)
        if "arrow" in req.query:
            table = decode_arrow_block(data, session.columns)
        else:
            table = decode_record_block(data, session.columns)
        path = self._block_path(upload_id, block_id)
        with self._session_lock(upload_id):
            # re-check under the lock: a commit may have closed the session while we decoded
            current = self._load_upload(upload_id)
            if current.status != STATUS_NORMAL:
                raise EmulatorError(409, "StatusConflict", f"upload session {upload_id} is {current.status}")
            _write_table_atomically(path, table)
        return Response(201, {"Content-Length": "0"}, b"")

    def _commit(self, upload_id: str) -> Response:
        with self._session_lock(upload_id):
            session = self._load_upload(upload_id)
            if session.status != STATUS_NORMAL:
                raise EmulatorError(
                    409, "StatusConflict", f"upload session {upload_id} is {session.status}: it cannot be committed again"
                )
            block_ids = self._uploaded_blocks(upload_id)
            paths = [self._block_path(upload_id, b) for b in block_ids]
            tables = [_read_table(p) for p in paths]
            self._storage.write(
                session.project,
                session.table,
                tables,
                partition=session.partition,
                overwrite=session.overwrite,
                create_partition=session.create_partition or session.partition is None,
            )
            now = int(time.time())
            session.status = STATUS_CLOSED
            session.committed_blocks = [
                {"BlockID": b, "RecordCount": t.num_rows, "CreateTime": now}
                for b, t in zip(block_ids, tables, strict=True)
            ]
            self._save_upload(session)
            del tables
            for path in paths:  # committed rows live in storage now
                path.unlink(missing_ok=True)
        return _json_response(self._upload_status_json(session))

    # -- download sessions ------------------------------------------------------------------------
    def _download_dir(self, download_id: str) -> Path:
        return self._downloads_dir / _check_session_id(download_id, "NoSuchDownload", "download")

    def _create_download(
        self, kind: str, owner: str, columns: list[Column], partition_columns: list[Column], rows: pa.Table
    ) -> DownloadSession:
        session = DownloadSession(
            download_id=_new_session_id(), kind=kind, owner=owner,
            columns=columns, partition_columns=partition_columns, record_count=rows.num_rows,
        )
        directory = self._download_dir(session.download_id)
        directory.mkdir(parents=True)
        _write_table_atomically(directory / "rows.arrow", rows)
        _write_atomically(directory / "session.json", json.dumps(session.to_json()).encode())
        return session

    def _create_table_download(self, project: str, table: str, q: dict[str, str]) -> Response:
        meta = self._storage.require_table(project, table)
        partition = self._require_partition(meta, _parse_partition(q))
        if partition is not None and not self._storage.partition_exists(project, table, partition):
            raise EmulatorError(
                404, "NoSuchPartition", f"partition {partition} of table {meta.project}.{meta.name} does not exist"
            )
        columns = list(meta.columns)
        rows = conform_table(self._storage.read(project, table, partition=partition), columns)
        session = self._create_download(
            "table", f"{meta.project}.{meta.name}", columns, list(meta.partition_columns), rows
        )
        return _json_response(self._download_status_json(session), status=201)

    def _create_instance_download(self, project: str, instance_id: str, q: dict[str, str]) -> Response:
        result = self._instance_results(project, instance_id)
        columns = list(result.columns)
        rows = conform_table(result.table, columns)
        if "instance_tunnel_limit_enabled" in q:
            rows = rows.slice(0, INSTANCE_TUNNEL_LIMIT)
        session = self._create_download("instance", f"{project}/{instance_id}".lower(), columns, [], rows)
        return _json_response(self._download_status_json(session), status=201)

    def _download_session(self, download_id: str, owner: str) -> DownloadSession:
        _check_session_id(download_id, "NoSuchDownload", "download")
        try:
            text = (self._download_dir(download_id) / "session.json").read_text()
        except FileNotFoundError:
            raise EmulatorError(404, "NoSuchDownload", f"download session {download_id} does not exist") from None
        session = DownloadSession.from_json(json.loads(text))
        if session.owner != owner:
            raise EmulatorError(
                404, "NoSuchDownload", f"download session {download_id} does not belong to {owner}"
            )
        return session

    def _download_status_json(self, session: DownloadSession) -> dict[str, Any]:
        return {
            "DownloadID": session.download_id,
            "Status": session.status,
            "RecordCount": session.record_count,
            "Schema": _schema_json(session.columns, session.partition_columns),
            "QuotaName": "",
            "SupportReadByRawSize": False,
        }

    def _download_status(self, session: DownloadSession) -> Response:
        return _json_response(self._download_status_json(session))

    def _snapshot(self, session: DownloadSession) -> pa.Table:
        rows = self._download_rows.get(session.download_id)
        if rows is None:
            rows = _read_table(self._download_dir(session.download_id) / "rows.arrow")
            with self._locks_guard:
                self._download_rows[session.download_id] = rows
        return rows

    def _read_rows(self, session: DownloadSession, q: dict[str, str], *, timestamps_as_structs: bool) -> Response:
        start, count = _parse_row_range(q, session.record_count)
        by_name = {c.name: c for c in session.columns}
        if q.get("columns"):
            requested = [name.strip().lower() for name in q["columns"].split(",") if name.strip()]
            unknown = [name for name in requested if name not in by_name]
            if unknown:
                raise EmulatorError(400, "InvalidArgument", f"unknown column(s) {unknown} in columns={q['columns']!r}")
        else:
            requested = [c.name for c in session.columns]
        rows = self._snapshot(session).slice(start, count)
        if "arrow" in q:
            # pyodps's Arrow reader lays the selected columns out in table order, whatever the request order
            wanted = set(requested)
            columns = [c for c in session.columns if c.name in wanted]
            piece = rows.select([c.name for c in columns])
            # the instance tunnel's struct<sec, nano> carries every stored timestamp; the table
            # tunnel's timestamp(ns) does not (cast_to_columns refuses what it cannot carry)
            piece = timestamps_as_struct(piece) if timestamps_as_structs else cast_to_columns(piece, columns)
            body: Iterator[bytes] = encode_arrow_stream(piece.to_batches(max_chunksize=65536))
        else:
            # the record reader numbers fields by position in the requested column list
            columns = [by_name[name] for name in requested]
            body = encode_record_stream(rows, columns)
        return Response(200, {"Content-Type": _OCTETS}, body)

    # -- preview ----------------------------------------------------------------------------------
    def _preview(self, project: str, table: str, q: dict[str, str]) -> Response:
        """``TableTunnel.open_preview_reader``: a plain Arrow IPC stream, TIMESTAMP as struct<sec, nano>."""
        meta = self._storage.require_table(project, table)
        partition = _parse_partition(q)
        if partition and not meta.is_partitioned:
            raise EmulatorError(400, "InvalidArgument", f"table {meta.name} is not partitioned")
        try:
            limit = int(q.get("limit", "-1"))
        except ValueError:
            raise EmulatorError(400, "InvalidArgument", f"invalid limit {q.get('limit')!r}") from None
        columns = list(meta.columns)
        if q.get("columns"):
            wanted = {name.strip().lower() for name in q["columns"].split(",")}
            columns = [c for c in columns if c.name in wanted]
        rows = conform_table(
            self._storage.read(project, table, partition=partition, columns=[c.name for c in columns]), columns
        )
        if limit >= 0:
            rows = rows.slice(0, limit)
        rows = timestamps_as_struct(rows)
        return Response(200, {"Content-Type": _OCTETS}, encode_ipc_stream(rows.to_batches(), rows.schema))
