"""TunnelService driven with the requests pyodps sends (paths, query parameters, headers, bodies).

Bodies come from pyodps's own writers; responses are read with pyodps's own readers. The last
test runs the real pyodps TableTunnel/InstanceTunnel against ``handle`` through an in-process
requests transport, so every URL, parameter and JSON field is the client's own.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

import pyarrow as pa
import pytest
import requests
import urllib3
from odps.tunnel.io.stream import CompressOption
from requests.structures import CaseInsensitiveDict

from airflow_provider_polar_mc.emulator.catalog import Column
from airflow_provider_polar_mc.emulator.errors import EmulatorError
from airflow_provider_polar_mc.emulator.http import Headers, Request, Response
from airflow_provider_polar_mc.emulator.storage import Storage
from airflow_provider_polar_mc.emulator.tunnel import TunnelService
from airflow_provider_polar_mc.emulator.types import parse_type

from .test_tunnel_codec import (
    pyodps_arrow_block,
    pyodps_arrow_reader,
    pyodps_record_block,
    pyodps_record_reader,
)

TYPES = {"id": "bigint", "name": "string", "amount": "decimal(20,4)", "ts": "timestamp"}
TABLE_PATH = "/projects/p/tables/t"
PART_PATH = "/projects/p/tables/pt"
COMMON_HEADERS = {"odps-tunnel-date-transform": "v1", "x-odps-tunnel-version": "6"}


@pytest.fixture(autouse=True)
def _pyodps_in_utc():
    from odps import options

    saved = options.local_timezone
    options.local_timezone = False
    yield
    options.local_timezone = saved


@dataclass
class _QueryResult:
    columns: list[Column]
    table: pa.Table


QUERY_RESULT = _QueryResult(
    [Column("x", parse_type("bigint")), Column("ts", parse_type("timestamp"))],
    pa.table({"x": [1, 2, 3], "ts": pa.array([1_000_000_005, None, -1], pa.timestamp("ns"))}),
)


def _instance_results(project: str, instance_id: str) -> _QueryResult:
    if instance_id != "inst1":
        raise EmulatorError(404, "NoSuchObject", f"instance {instance_id} not found")
    return QUERY_RESULT


def _make_storage(path: Path) -> Storage:
    storage = Storage(path / "db.duckdb")
    if storage.get_table("p", "t") is None:
        storage.create_table("p", "t", [Column(n, parse_type(t)) for n, t in TYPES.items()])
        storage.create_table(
            "p", "pt", [Column("a", parse_type("bigint"))], [Column("ds", parse_type("string"))]
        )
    return storage


@pytest.fixture
def storage(tmp_path: Path):
    storage = _make_storage(tmp_path)
    yield storage
    storage.close()


@pytest.fixture
def svc(storage: Storage, tmp_path: Path) -> TunnelService:
    return TunnelService(storage, tmp_path, _instance_results)


def call(
    svc: TunnelService, method: str, path: str, query: dict[str, str], body: bytes = b"", headers=None
) -> Response:
    req = Request(method, path, path, dict(query), Headers({**COMMON_HEADERS, **(headers or {})}), body)
    return svc.handle(req)


def as_json(resp: Response) -> dict:
    assert resp.headers["Content-Type"] == "application/json"
    return json.loads(resp.body)


def body_bytes(resp: Response) -> bytes:
    return resp.body if isinstance(resp.body, bytes) else b"".join(resp.body)


def rows(n: int, start: int = 0) -> list[dict]:
    return [
        {"id": i, "name": f"n{i} 😀", "amount": Decimal(i) / 4, "ts": None if i % 3 else time_value(i)}
        for i in range(start, start + n)
    ]


def time_value(i: int):
    import pandas as pd

    return pd.Timestamp(1_700_000_000_000_000_000 + i, unit="ns")


def create_upload(svc: TunnelService, path: str = TABLE_PATH, **params: str) -> str:
    resp = call(svc, "POST", path, {"uploads": "1", "reload": "False", **params})
    assert resp.status == 201
    return as_json(resp)["UploadID"]


def put_block(svc: TunnelService, upload_id: str, block_id: int, body: bytes, arrow: bool = False, path=TABLE_PATH):
    query = {"uploadid": upload_id, "blockid": str(block_id)}
    if arrow:
        query["arrow"] = ""
    return call(svc, "PUT", path, query, body, {"Content-Type": "application/octet-stream"})


def commit(svc: TunnelService, upload_id: str, path: str = TABLE_PATH) -> dict:
    return as_json(call(svc, "POST", path, {"uploadid": upload_id}))


def block_ids(svc: TunnelService, upload_id: str, path: str = TABLE_PATH) -> list[int]:
    status = as_json(call(svc, "GET", path, {"uploadid": upload_id, "reload": "True"}))
    return [b["BlockID"] for b in status["UploadedBlockList"]]


def ids_in_table(storage: Storage, name: str = "t") -> list[int]:
    return sorted(storage.read("p", name).column(0).to_pylist())


# -- upload sessions ----------------------------------------------------------------------------
def test_create_upload_session_answers_what_pyodps_parses(svc: TunnelService):
    resp = call(svc, "POST", TABLE_PATH, {"uploads": "1", "reload": "False"})
    status = as_json(resp)
    assert status["Status"] == "normal"
    assert status["UploadedBlockList"] == []
    assert status["MaxFieldSize"] > 0
    assert [(c["name"], c["type"]) for c in status["Schema"]["columns"]] == list(TYPES.items())
    assert status["Schema"]["partitionKeys"] == []

    from odps.models import TableSchema

    schema = TableSchema().deserial(json.dumps(status["Schema"]))  # how pyodps reads a JSON schema
    assert [(c.name, str(c.type).lower()) for c in schema.columns] == list(TYPES.items())


def test_blocks_in_both_formats_are_committed_together(svc: TunnelService, storage: Storage):
    upload_id = create_upload(svc)
    assert put_block(svc, upload_id, 0, pyodps_record_block(TYPES, rows(5))).status == 201
    table = pa.table({"id": pa.array(range(5, 10), pa.int64()), "name": ["x"] * 5,
                      "amount": pa.array([Decimal("1.5")] * 5, pa.decimal128(20, 4)),
                      "ts": pa.array([0] * 5, pa.int64()).cast(pa.timestamp("ns"))})
    assert put_block(svc, upload_id, 1, pyodps_arrow_block(TYPES, table), arrow=True).status == 201
    assert block_ids(svc, upload_id) == [0, 1]
    status = commit(svc, upload_id)
    assert status["Status"] == "closed"
    assert ids_in_table(storage) == list(range(10))
    stored = storage.read("p", "t").sort_by("id").to_pylist()
    assert stored[1]["amount"] == Decimal("0.2500")
    assert stored[3]["ts"].value == time_value(3).value  # nanoseconds kept


def test_reuploading_a_block_replaces_it(svc: TunnelService, storage: Storage):
    upload_id = create_upload(svc)
    put_block(svc, upload_id, 7, pyodps_record_block(TYPES, rows(3)))
    put_block(svc, upload_id, 7, pyodps_record_block(TYPES, rows(2, start=100)))
    assert block_ids(svc, upload_id) == [7]
    commit(svc, upload_id)
    assert ids_in_table(storage) == [100, 101]


def test_commit_takes_exactly_the_uploaded_blocks(svc: TunnelService, storage: Storage):
    upload_id = create_upload(svc)
    for block_id in (3, 1, 2):
        put_block(svc, upload_id, block_id, pyodps_record_block(TYPES, rows(1, start=block_id)))
    status = commit(svc, upload_id)
    assert [b["BlockID"] for b in status["UploadedBlockList"]] == [1, 2, 3]
    assert [b["RecordCount"] for b in status["UploadedBlockList"]] == [1, 1, 1]
    assert ids_in_table(storage) == [1, 2, 3]


def test_corrupt_block_is_rejected_and_the_session_stays_usable(svc: TunnelService, storage: Storage):
    upload_id = create_upload(svc)
    put_block(svc, upload_id, 0, pyodps_record_block(TYPES, rows(2)))
    good = pyodps_record_block(TYPES, rows(2, start=10))
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    with pytest.raises(EmulatorError) as err:
        put_block(svc, upload_id, 1, bytes(bad))
    assert (err.value.status, err.value.code) == (400, "MalformedDataStream")
    corrupt_arrow = bytearray(pyodps_arrow_block(TYPES, pa.table({"id": [1], "name": ["a"],
                              "amount": pa.array([Decimal(1)], pa.decimal128(20, 4)),
                              "ts": pa.array([1], pa.timestamp("ns"))})))
    corrupt_arrow[10] ^= 0x01
    with pytest.raises(EmulatorError):
        put_block(svc, upload_id, 0, bytes(corrupt_arrow), arrow=True)  # must not replace block 0
    assert block_ids(svc, upload_id) == [0]
    put_block(svc, upload_id, 1, good)
    commit(svc, upload_id)
    assert ids_in_table(storage) == [0, 1, 10, 11]


def test_deflate_compressed_block(svc: TunnelService, storage: Storage):
    option = CompressOption(CompressOption.CompressAlgorithm.ODPS_ZLIB)
    upload_id = create_upload(svc)
    body = pyodps_record_block(TYPES, rows(4), compress_option=option)
    query = {"uploadid": upload_id, "blockid": "0"}
    call(svc, "PUT", TABLE_PATH, query, body, {"Content-Encoding": "deflate"})
    commit(svc, upload_id)
    assert ids_in_table(storage) == [0, 1, 2, 3]


def test_unsupported_compression_fails_loudly(svc: TunnelService):
    upload_id = create_upload(svc)
    with pytest.raises(EmulatorError, match="x-snappy-framed"):
        call(svc, "PUT", TABLE_PATH, {"uploadid": upload_id, "blockid": "0"}, b"x",
             {"Content-Encoding": "x-snappy-framed"})


def test_session_and_blocks_survive_a_restart(tmp_path: Path):
    storage = _make_storage(tmp_path)
    first = TunnelService(storage, tmp_path, _instance_results)
    upload_id = create_upload(first)
    put_block(first, upload_id, 0, pyodps_record_block(TYPES, rows(3)))
    storage.close()
    del first

    storage = _make_storage(tmp_path)
    second = TunnelService(storage, tmp_path, _instance_results)
    assert block_ids(second, upload_id) == [0]
    put_block(second, upload_id, 1, pyodps_record_block(TYPES, rows(2, start=3)))
    commit(second, upload_id)
    assert ids_in_table(storage) == [0, 1, 2, 3, 4]
    storage.close()


def test_committing_twice_or_writing_after_commit_is_refused(svc: TunnelService, storage: Storage):
    upload_id = create_upload(svc)
    put_block(svc, upload_id, 0, pyodps_record_block(TYPES, rows(1)))
    commit(svc, upload_id)
    with pytest.raises(EmulatorError) as err:
        commit(svc, upload_id)
    assert err.value.status == 409
    with pytest.raises(EmulatorError):
        put_block(svc, upload_id, 1, pyodps_record_block(TYPES, rows(1)))
    assert ids_in_table(storage) == [0]
    assert as_json(call(svc, "GET", TABLE_PATH, {"uploadid": upload_id}))["Status"] == "closed"


def test_unknown_upload_id_and_bad_block_ids(svc: TunnelService):
    with pytest.raises(EmulatorError) as err:
        call(svc, "GET", TABLE_PATH, {"uploadid": "20240101000000deadbeef"})
    assert err.value.status == 404
    with pytest.raises(EmulatorError):
        call(svc, "GET", TABLE_PATH, {"uploadid": "../../etc"})
    upload_id = create_upload(svc)
    for block_id in ("-1", "20000", "x"):
        with pytest.raises(EmulatorError):
            put_block_raw = {"uploadid": upload_id, "blockid": block_id}
            call(svc, "PUT", TABLE_PATH, put_block_raw, pyodps_record_block(TYPES, rows(1)))


def test_overwrite_replaces_the_table_and_append_adds(svc: TunnelService, storage: Storage):
    for start in (0, 10):
        upload_id = create_upload(svc)
        put_block(svc, upload_id, 0, pyodps_record_block(TYPES, rows(2, start=start)))
        commit(svc, upload_id)
    assert ids_in_table(storage) == [0, 1, 10, 11]
    upload_id = create_upload(svc, overwrite="true")
    put_block(svc, upload_id, 0, pyodps_record_block(TYPES, rows(1, start=50)))
    commit(svc, upload_id)
    assert ids_in_table(storage) == [50]


def test_partition_overwrite_replaces_only_that_partition(svc: TunnelService, storage: Storage):
    types = {"a": "bigint"}
    for ds, values in (("1", [1, 2]), ("2", [3])):
        upload_id = create_upload(svc, PART_PATH, partition=f"ds={ds}", create_partition="true")
        put_block(svc, upload_id, 0, pyodps_record_block(types, [{"a": v} for v in values]), path=PART_PATH)
        commit(svc, upload_id, PART_PATH)
    upload_id = create_upload(svc, PART_PATH, partition="ds=1", overwrite="true")
    put_block(svc, upload_id, 0, pyodps_record_block(types, [{"a": 9}]), path=PART_PATH)
    commit(svc, upload_id, PART_PATH)
    assert storage.read("p", "pt", partition={"ds": "1"}).column("a").to_pylist() == [9]
    assert storage.read("p", "pt", partition={"ds": "2"}).column("a").to_pylist() == [3]


def test_partition_must_exist_unless_created(svc: TunnelService, storage: Storage):
    with pytest.raises(EmulatorError) as err:
        create_upload(svc, PART_PATH, partition="ds=new")
    assert (err.value.status, err.value.code) == (404, "NoSuchPartition")
    with pytest.raises(EmulatorError):
        create_upload(svc, PART_PATH)  # partitioned table without a partition
    create_upload(svc, PART_PATH, partition="ds=new", create_partition="true")
    assert storage.partition_exists("p", "pt", {"ds": "new"})


def test_empty_overwrite_commit_empties_the_table(svc: TunnelService, storage: Storage):
    upload_id = create_upload(svc)
    put_block(svc, upload_id, 0, pyodps_record_block(TYPES, rows(2)))
    commit(svc, upload_id)
    commit(svc, create_upload(svc, overwrite="true"))
    assert storage.count("p", "t") == 0


class _FailingStorage(Storage):
    """Fails in the middle of a commit, after some rows went into the transaction."""

    def write(self, project, name, batches, **kw):
        def failing():
            for i, batch in enumerate(batches):
                if i == 1:
                    raise OSError("disk full")
                yield batch

        return super().write(project, name, failing(), **kw)


def test_failed_commit_writes_nothing_and_can_be_retried(tmp_path: Path):
    _make_storage(tmp_path).close()
    failing = _FailingStorage(tmp_path / "db.duckdb")
    svc = TunnelService(failing, tmp_path, _instance_results)
    upload_id = create_upload(svc, overwrite="true")
    put_block(svc, upload_id, 0, pyodps_record_block(TYPES, rows(2)))
    put_block(svc, upload_id, 1, pyodps_record_block(TYPES, rows(2, start=2)))
    with pytest.raises(OSError):
        commit(svc, upload_id)
    assert failing.count("p", "t") == 0
    assert as_json(call(svc, "GET", TABLE_PATH, {"uploadid": upload_id}))["Status"] == "normal"
    failing.close()

    storage = _make_storage(tmp_path)
    retry = TunnelService(storage, tmp_path, _instance_results)
    commit(retry, upload_id)
    assert ids_in_table(storage) == [0, 1, 2, 3]
    storage.close()


@pytest.mark.slow
def test_arrow_upload_of_a_million_rows_is_fast(svc: TunnelService, storage: Storage):
    n = 1_000_000
    types = {f"i{k}": "bigint" for k in range(5)} | {f"s{k}": "string" for k in range(5)}
    storage.create_table("p", "big", [Column(name, parse_type(t)) for name, t in types.items()])
    ints = pa.array(range(n), pa.int64())
    strings = pa.array([f"value-{i}" for i in range(n)])
    source = pa.table({name: ints if t == "bigint" else strings for name, t in types.items()})
    body = pyodps_arrow_block(types, source)
    upload_id = create_upload(svc, "/projects/p/tables/big")
    started = time.monotonic()
    put_block(svc, upload_id, 0, body, arrow=True, path="/projects/p/tables/big")
    decoded = time.monotonic() - started
    commit(svc, upload_id, "/projects/p/tables/big")
    assert storage.count("p", "big") == n
    assert decoded < 5.0, f"decoding 1M rows took {decoded:.1f}s"


# -- download sessions --------------------------------------------------------------------------
def _loaded(svc: TunnelService, n: int = 10) -> None:
    upload_id = create_upload(svc)
    put_block(svc, upload_id, 0, pyodps_record_block(TYPES, rows(n)))
    commit(svc, upload_id)


def test_download_in_record_and_arrow_format(svc: TunnelService):
    _loaded(svc)
    created = as_json(call(svc, "POST", TABLE_PATH, {"downloads": "", "asyncmode": "true"}))
    download_id = created["DownloadID"]
    assert (created["Status"], created["RecordCount"]) == ("normal", 10)
    status = as_json(call(svc, "GET", TABLE_PATH, {"downloadid": download_id}))
    assert status["RecordCount"] == 10

    resp = call(svc, "GET", TABLE_PATH, {"data": "", "downloadid": download_id, "rowrange": "(2,5)"})
    assert resp.headers["Content-Type"] == "application/octet-stream"
    assert "Content-Encoding" not in resp.headers
    records = pyodps_record_reader(TYPES, body_bytes(resp))
    assert [r[0] for r in records] == [2, 3, 4, 5, 6]
    assert records[1][3].value == time_value(3).value

    query = {"data": "", "arrow": "", "downloadid": download_id, "rowrange": "(0,10)", "columns": "name,id"}
    table = pyodps_arrow_reader({"id": "bigint", "name": "string"}, body_bytes(call(svc, "GET", TABLE_PATH, query)))
    assert table.column("id").to_pylist() == list(range(10))

    query = {"data": "", "downloadid": download_id, "rowrange": "(0,2)", "columns": "name,id"}
    picked = pyodps_record_reader(TYPES, body_bytes(call(svc, "GET", TABLE_PATH, query)), columns=["name", "id"])
    assert picked == [["n0 😀", 0], ["n1 😀", 1]]

    with pytest.raises(EmulatorError):
        call(svc, "GET", TABLE_PATH, {"data": "", "downloadid": download_id, "rowrange": "(5,6)"})


def test_download_is_a_snapshot(svc: TunnelService):
    _loaded(svc, 3)
    download_id = as_json(call(svc, "POST", TABLE_PATH, {"downloads": ""}))["DownloadID"]
    _loaded(svc, 3)  # appends three more rows after the session was created
    body = body_bytes(call(svc, "GET", TABLE_PATH, {"data": "", "downloadid": download_id, "rowrange": "(0,3)"}))
    assert len(pyodps_record_reader(TYPES, body)) == 3


def test_instance_download(svc: TunnelService):
    path = "/projects/p/instances/inst1"
    created = as_json(call(svc, "POST", path, {"downloads": ""}))
    assert created["RecordCount"] == 3
    download_id = created["DownloadID"]
    types = {"x": "bigint", "ts": "timestamp"}
    body = body_bytes(call(svc, "GET", path, {"data": "", "downloadid": download_id, "rowrange": "(0,3)"}))
    assert [r[0] for r in pyodps_record_reader(types, body)] == [1, 2, 3]
    query = {"data": "", "arrow": "", "downloadid": download_id, "rowrange": "(0,3)"}
    table = pyodps_arrow_reader(types, body_bytes(call(svc, "GET", path, query)), timestamp_as_struct=True)
    assert table.column("ts").cast(pa.int64()).to_pylist() == [1_000_000_005, None, -1]
    limited = as_json(call(svc, "POST", path, {"downloads": "", "instance_tunnel_limit_enabled": ""}))
    assert limited["RecordCount"] == 3
    with pytest.raises(EmulatorError) as err:
        call(svc, "POST", "/projects/p/instances/nope", {"downloads": ""})
    assert err.value.status == 404
    with pytest.raises(EmulatorError):  # a download id is bound to its instance
        call(svc, "GET", "/projects/p/instances/other", {"downloadid": download_id})


# -- the real pyodps client, in-process -----------------------------------------------------------
@pytest.fixture
def pyodps_against(svc: TunnelService, monkeypatch: pytest.MonkeyPatch):
    """Route every requests call of pyodps to ``svc.handle`` (paths under /api)."""

    def send(adapter, request, **kwargs):
        url = urlsplit(request.url)
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        elif not isinstance(body, (bytes, bytearray)):
            body = b"".join(body)  # chunked upload
        path = unquote(url.path).removeprefix("/api")
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            resp = svc.handle(Request(request.method, path, url.path, query, Headers(request.headers), bytes(body)))
            status, headers, content = resp.status, resp.headers, body_bytes(resp)
        except EmulatorError as err:
            status, headers = err.status, {"Content-Type": "application/json"}
            content = json.dumps({"Code": err.code, "Message": err.message}).encode()
        response = requests.Response()
        response.status_code = status
        response.headers = CaseInsensitiveDict(headers)
        response.raw = urllib3.HTTPResponse(
            body=io.BytesIO(content), preload_content=False, headers=headers, status=status
        )
        response.url = request.url
        response.request = request
        return response

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    from odps import ODPS

    return ODPS("access-id", "secret", project="p", endpoint="http://emulator/api")


def test_real_pyodps_tunnel_client(pyodps_against, storage: Storage):
    from odps.tunnel import InstanceTunnel, TableTunnel

    odps = pyodps_against
    tunnel = TableTunnel(odps, project="p", endpoint="http://emulator/api")
    session = tunnel.create_upload_session("t", overwrite=True)
    with session.open_record_writer(0) as writer:
        writer.write(session.new_record([1, "rec 😀", Decimal("1.2345"), time_value(1)]))
    with session.open_arrow_writer() as writer:
        writer.write(pa.table({"id": [2, 3], "name": ["a", None], "amount": [Decimal("2"), None],
                               "ts": pa.array([5, None], pa.timestamp("ns"))}))
        arrow_blocks = writer.get_blocks_written()
    assert arrow_blocks == [0]  # BufferedArrowWriter counts from 0: it replaced the record block
    with session.open_arrow_writer(1, compress=True) as writer:
        writer.write(pa.table({"id": [4], "name": ["z"], "amount": [Decimal("4")],
                               "ts": pa.array([6], pa.timestamp("ns"))}))
    reattached = tunnel.create_upload_session("t", upload_id=session.id)
    assert sorted(int(b) for b in reattached.blocks) == [0, 1]
    reattached.commit([0, 1])
    assert ids_in_table(storage) == [2, 3, 4]

    download = tunnel.create_download_session("t")
    with download.open_record_reader(0, download.count) as reader:
        assert [r.values[:2] for r in reader] == [[2, "a"], [3, None], [4, "z"]]
    with download.open_arrow_reader(0, download.count, columns=["ts", "id"]) as reader:
        assert reader.read().column("id").to_pylist() == [2, 3, 4]

    part = tunnel.create_upload_session("pt", partition_spec="ds='2024-01-01'", create_partition=True)
    with part.open_record_writer() as writer:
        for a in range(100):
            writer.write(part.new_record([a]))
        blocks = writer.get_blocks_written()
    part.commit(blocks)
    download = tunnel.create_download_session("pt", partition_spec="ds='2024-01-01'")
    with download.open_record_reader(0, download.count) as reader:
        values = [r.values for r in reader]
    assert values[:2] == [[0, "2024-01-01"], [1, "2024-01-01"]] and len(values) == 100

    instance = InstanceTunnel(odps, project="p", endpoint="http://emulator/api").create_download_session("inst1")
    with instance.open_arrow_reader(0, instance.count) as reader:
        assert reader.read().column("x").to_pylist() == [1, 2, 3]
