"""Hostile HTTP at the emulator's door: each case gets a clear MaxCompute-style error, promptly.

One emulator subprocess (module scope) with small limits so the memory cases stay cheap:
REST bodies 1 MiB, Tunnel bodies 16 MiB, inflated Tunnel blocks 16 MiB, body idle timeout 1 s.
Requests are written on raw sockets (the malformed ones cannot be sent by a normal client) and
signed with pyodps's own signer where the case needs to get past authentication. Every case checks
the status and error code, that the answer came quickly, that the server still answers afterwards,
and, for the large-body and decompression-bomb cases, that the server's peak RSS grew by less than
64 MiB.

Each hostile case is marked ``security_case("emulator_http")`` and records itself in :data:`TALLY`
(category, case, outcome, status, code). Failures follow the security summary's convention
(tests/fixtures/security_tally.py): an assertion starting ``SILENT`` when a hostile request was
accepted, ``DAMAGE`` when it changed the warehouse or wrote outside the data dir.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import psutil
import pyarrow as pa
import pytest
import requests
from odps import errors as odps_errors
from odps.accounts import AliyunAccount
from odps.tunnel import TableTunnel
from odps.tunnel.io.stream import CompressOption

from airflow_provider_polar_mc.emulator.auth import authorization_header, canonical_string
from airflow_provider_polar_mc.emulator.door import ADMIN_TOKEN_FILE, ADMIN_TOKEN_HEADER
from airflow_provider_polar_mc.sandbox.emulator import EmulatorProcess

CATEGORY = "emulator_http"
PROJECT = "door_project"
TABLE = "door_t"
MiB = 1 << 20
RSS_GROWTH_LIMIT = 64 * MiB
BIG = 300 * MiB  # the body size the probe found buffered before the 401
PROMPT_S = 3.0  # answers must come well before any socket timeout (body timeout is 1 s here)
LIMIT_ARGS = ["--max-rest-body", "1MiB", "--max-tunnel-body", "16MiB", "--max-inflated-body", "16MiB",
              "--body-timeout", "1"]  # fmt: skip

# (category, case, outcome, status, code) of every hostile case run, for the security summary.
TALLY: list[dict[str, object]] = []


def tally_summary() -> str:
    refused = sum(1 for t in TALLY if t["outcome"] == "refused")
    return f"{CATEGORY}: {refused}/{len(TALLY)} hostile requests refused with a clear error"


# -- the emulator -------------------------------------------------------------------------------------
@dataclass
class Door:
    emu: EmulatorProcess
    upload_id: str
    host: str = "127.0.0.1"
    port: int = 0

    @property
    def pid(self) -> int:
        assert self.emu._proc is not None
        return self.emu._proc.pid


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    emu = EmulatorProcess(tmp_path_factory.mktemp("door") / "data", project=PROJECT, extra_args=LIMIT_ARGS)
    emu.start()
    try:
        o = emu.client()
        o.create_table(TABLE, "id bigint", if_not_exists=True)
        upload_id = TableTunnel(o).create_upload_session(TABLE).id
        yield Door(emu, upload_id, port=emu.port)
    finally:
        emu.stop()


# -- raw HTTP -------------------------------------------------------------------------------------------
def sign(door: Door, method: str, target: str, headers: dict[str, str] | None = None) -> dict[str, str]:
    """``headers`` plus Date (unless given) and Authorization, as pyodps's signer makes them."""
    base = f"http://{door.host}:{door.port}"
    mount = "/tunnel" if target.startswith("/tunnel") else "/api"
    req = SimpleNamespace(method=method, url=base + target, headers=dict(headers or {}))
    AliyunAccount(door.emu.access_id, door.emu.access_key).sign_request(req, base + mount)
    return req.headers


def head(method: str, target: str, headers: dict[str, str] | list[tuple[str, str]] = ()) -> bytes:
    items = headers.items() if isinstance(headers, dict) else headers
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"] + [f"{k}: {v}" for k, v in items]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class Answer:
    status: int
    code: str
    headers: dict[str, str]
    body: bytes
    elapsed: float
    pumped: int = 0  # body bytes the client managed to send

    def pyodps_error(self) -> Exception:
        resp = requests.Response()
        resp.status_code, resp._content = self.status, self.body  # type: ignore[assignment]
        resp.headers.update(self.headers)
        return odps_errors.parse_response(resp)


def _read_answer(f, started: float, skip_continue: bool = True) -> Answer:
    status_line = f.readline(65537)
    if not status_line:
        raise ConnectionError("connection closed without an answer")
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while (line := f.readline(65537)) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = f.read(int(headers.get("content-length", "0")))
    if status == 100 and skip_continue:
        return _read_answer(f, started)
    match = re.search(rb"<Code>(.*?)</Code>", body)
    if match:
        code = match.group(1).decode()
    else:
        try:
            code = json.loads(body).get("Code", "")
        except ValueError:
            code = ""
    return Answer(status, code, headers, body, time.perf_counter() - started)


@dataclass
class _Pump:
    """Sends ``total`` body bytes in the background (raw, or as 1 MiB chunks) until the server hangs up."""

    sock: socket.socket
    total: int
    chunked: bool = False
    sent: int = 0
    thread: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        piece = b"\0" * MiB
        framed = b"100000\r\n" + piece + b"\r\n"
        try:
            while self.sent < self.total:
                self.sock.sendall(framed if self.chunked else piece)
                self.sent += MiB
        except OSError:
            pass


def exchange(
    door: Door,
    data: bytes,
    *,
    pump: int = 0,
    chunked_pump: bool = False,
    half_close: bool = False,
    answers: int = 1,
    timeout: float = 10.0,
) -> list[Answer]:
    """Send ``data`` (then ``pump`` more body bytes in the background) and read ``answers`` answers."""
    sock = socket.create_connection((door.host, door.port), timeout=timeout)
    try:
        started = time.perf_counter()
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        pumper = _Pump(sock, pump, chunked_pump) if pump else None
        f = sock.makefile("rb")
        result = [_read_answer(f, started) for _ in range(answers)]
        if pumper is not None:
            sock.close()  # the client gives up on its body once answered
            pumper.thread.join(10)
            result[-1].pumped = pumper.sent
        return result
    finally:
        sock.close()


def one(door: Door, data: bytes, **kw) -> Answer:
    return exchange(door, data, **kw)[0]


# -- the server's memory ------------------------------------------------------------------------------
class PeakRss:
    """Peak RSS growth of a process over a block: the kernel's high-water mark (reset on entry through
    /proc/PID/clear_refs) where allowed, plus sampling every 2 ms."""

    def __init__(self, pid: int):
        self.pid = pid
        self.proc = psutil.Process(pid)
        self.growth = 0

    def _hwm(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def __enter__(self) -> PeakRss:
        self.base = self.proc.memory_info().rss
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            self._use_hwm = True
        except OSError:
            self._use_hwm = False
        self.peak = self.base
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._sampler.join(5)
        hwm = self._hwm() if self._use_hwm else None
        self.growth = max(self.peak, hwm or 0) - self.base


# -- outcome records ----------------------------------------------------------------------------------
class Case:
    def __init__(self, door: Door, name: str):
        self.door = door
        self.name = name
        self.recorded = False

    def refused(self, answer: Answer, status: int, code: str, *, prompt: float = PROMPT_S) -> Answer:
        """Assert the clear error, the promptness and that the server still serves; record the outcome."""
        assert answer.status >= 400, f"SILENT: {self.name} was accepted with {answer.status}: {answer.body[:300]!r}"
        assert (answer.status, answer.code) == (status, code), answer.body[:400]
        assert answer.elapsed < prompt, f"answered after {answer.elapsed:.1f}s"
        assert_responsive(self.door)
        TALLY.append({"category": CATEGORY, "case": self.name, "outcome": "refused",
                      "status": answer.status, "code": answer.code})  # fmt: skip
        self.recorded = True
        return answer


@pytest.fixture
def case(door: Door, request: pytest.FixtureRequest) -> Iterator[Case]:
    c = Case(door, request.node.name)
    yield c
    if not c.recorded:
        TALLY.append({"category": CATEGORY, "case": c.name, "outcome": "failed", "status": None, "code": None})


def assert_responsive(door: Door) -> None:
    health = one(door, head("GET", "/_emulator/health"), timeout=5)
    assert health.status == 200 and json.loads(health.body) == {"status": "ok"}
    target = f"/api/projects/{PROJECT}"
    signed = one(door, head("GET", target, sign(door, "GET", target)), timeout=5)
    assert signed.status == 200, signed.body[:300]


def _ago(seconds: float) -> str:
    return formatdate(time.time() - seconds, usegmt=True)


def _sql_job(sql: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><Instance><Job><Priority>9</Priority><Tasks><SQL>'
        f"<Name>AnonymousSQLTask</Name><Query><![CDATA[{sql}]]></Query></SQL></Tasks></Job></Instance>"
    ).encode()


INSTANCES = f"/api/projects/{PROJECT}/instances"
security_case = pytest.mark.security_case(CATEGORY)


def _block_target(door: Door, block_id: int = 0) -> str:
    return f"/tunnel/projects/{PROJECT}/tables/{TABLE}?uploadid={door.upload_id}&blockid={block_id}"


def _post_signed(door: Door, target: str, body: bytes, extra: dict[str, str] | None = None) -> bytes:
    headers = sign(door, "POST", target, {"Content-Type": "application/xml", **(extra or {})})
    return head("POST", target, {**headers, "Content-Length": str(len(body))}) + body


# -- 1. the body belongs to the signature: Content-MD5 ------------------------------------------------------
@security_case
@pytest.mark.parametrize("form", ["base64", "hex"])
def test_swapped_body_under_a_signed_content_md5_is_refused(door, case, form):
    signed_for = _sql_job("create table md5_signed (id bigint);")
    swapped = _sql_job("create table md5_swapped (id bigint);")
    digest = hashlib.md5(signed_for).digest()
    md5 = base64.b64encode(digest).decode() if form == "base64" else digest.hex()
    answer = one(door, _post_signed(door, INSTANCES, swapped, {"Content-MD5": md5}))
    case.refused(answer, 400, "InvalidDigest")
    o = door.emu.client()
    assert not o.exist_table("md5_swapped"), "DAMAGE: the swapped body was run"
    assert not o.exist_table("md5_signed")


@security_case
def test_swapped_tunnel_block_under_a_signed_content_md5_is_refused(door, case):
    target = _block_target(door, 7)
    md5 = base64.b64encode(hashlib.md5(b"the block that was signed").digest()).decode()
    headers = sign(door, "PUT", target, {"Content-Type": "application/octet-stream", "Content-MD5": md5})
    body = b"another block"
    answer = one(door, head("PUT", target, {**headers, "Content-Length": str(len(body))}) + body)
    case.refused(answer, 400, "InvalidDigest")
    assert answer.headers["content-type"] == "application/json"


@security_case
@pytest.mark.parametrize("md5", ["not-base64!", base64.b64encode(b"short").decode(), "0" * 31])
def test_malformed_content_md5_is_refused(door, case, md5):
    body = _sql_job("select 1;")
    case.refused(one(door, _post_signed(door, INSTANCES, body, {"Content-MD5": md5})), 400, "InvalidDigest")


# -- 2. the Date window ---------------------------------------------------------------------------------
@security_case
@pytest.mark.parametrize("offset", [20 * 60, -20 * 60, 3 * 86400], ids=["20min-old", "20min-ahead", "3days-old"])
def test_request_dated_outside_the_window_is_refused(door, case, offset):
    """A captured request replayed later (or pre-dated) is refused although its signature is valid."""
    target = f"/api/projects/{PROJECT}"
    answer = one(door, head("GET", target, sign(door, "GET", target, {"Date": _ago(offset)})))
    case.refused(answer, 403, "RequestTimeTooSkewed")
    exc = answer.pyodps_error()
    assert isinstance(exc, odps_errors.RequestTimeTooSkewed) and exc.max_interval_date == 900_000


@security_case
@pytest.mark.parametrize("date", [None, "yesterday", "Mon, 99 Foo 2024 25:61:61 GMT"], ids=["missing", "word", "nonsense"])
def test_request_without_a_usable_date_is_refused(door, case, date):
    target = f"/api/projects/{PROJECT}"
    headers = {"Date": date} if date is not None else {}
    canonical = canonical_string("GET", f"/projects/{PROJECT}", headers)  # signed as sent, valid
    headers["Authorization"] = authorization_header(door.emu.access_id, door.emu.access_key, canonical)
    case.refused(one(door, head("GET", target, headers)), 403, "AccessDenied")


# -- 3. authentication before the body ----------------------------------------------------------------------
@security_case
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_unauthenticated_huge_body_is_answered_without_reading_it(door, case, chunked):
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(BIG)}
    request = head("POST", INSTANCES, {"Content-Type": "application/xml", **framing})
    with PeakRss(door.pid) as rss:
        answer = one(door, request, pump=BIG, chunked_pump=chunked)
    case.refused(answer, 401, "Unauthorized")
    assert answer.headers.get("connection") == "close"
    assert rss.growth < RSS_GROWTH_LIMIT, f"server RSS grew by {rss.growth / MiB:.0f} MiB"
    assert answer.pumped < BIG  # the server hung up instead of reading it all


@security_case
def test_wrongly_signed_huge_tunnel_body_is_answered_without_reading_it(door, case):
    target = _block_target(door, 1)
    headers = sign(door, "PUT", target, {"Content-Type": "application/octet-stream"})
    headers["Authorization"] = headers["Authorization"][:-6] + "AAAAA="
    with PeakRss(door.pid) as rss:
        answer = one(door, head("PUT", target, {**headers, "Content-Length": str(BIG)}), pump=BIG)
    case.refused(answer, 403, "SignatureNotMatch")
    assert rss.growth < RSS_GROWTH_LIMIT, f"server RSS grew by {rss.growth / MiB:.0f} MiB"


@security_case
def test_unknown_access_id_is_refused(door, case):
    target = f"/api/projects/{PROJECT}"
    headers = sign(door, "GET", target)
    headers["Authorization"] = headers["Authorization"].replace(door.emu.access_id, "someone-else", 1)
    case.refused(one(door, head("GET", target, headers)), 401, "Unauthorized")


@security_case
def test_unauthenticated_expect_100_continue_gets_no_continue(door, case):
    request = head("PUT", _block_target(door), {"Content-Length": str(BIG), "Expect": "100-continue"})
    sock = socket.create_connection((door.host, door.port), timeout=5)
    try:
        started = time.perf_counter()
        sock.sendall(request)
        # the first answer is the final one, not "100 Continue": the body is never invited
        answer = _read_answer(sock.makefile("rb"), started, skip_continue=False)
    finally:
        sock.close()
    case.refused(answer, 401, "Unauthorized")


# -- 4. size limits -----------------------------------------------------------------------------------------
@security_case
@pytest.mark.parametrize("mount", ["rest", "tunnel"])
def test_announced_body_over_the_limit_is_refused_before_reading(door, case, mount):
    target = INSTANCES if mount == "rest" else _block_target(door, 2)
    method = "POST" if mount == "rest" else "PUT"
    headers = sign(door, method, target, {"Content-Type": "application/octet-stream"})
    size = 2 * MiB if mount == "rest" else BIG
    with PeakRss(door.pid) as rss:
        answer = one(door, head(method, target, {**headers, "Content-Length": str(size)}), pump=size)
    case.refused(answer, 413, "RequestEntityTooLarge")
    assert rss.growth < RSS_GROWTH_LIMIT, f"server RSS grew by {rss.growth / MiB:.0f} MiB"


@security_case
def test_chunked_body_growing_over_the_limit_is_cut_off(door, case):
    target = _block_target(door, 3)
    headers = sign(door, "PUT", target, {"Content-Type": "application/octet-stream", "Transfer-Encoding": "chunked"})
    with PeakRss(door.pid) as rss:
        answer = one(door, head("PUT", target, headers), pump=BIG, chunked_pump=True)
    case.refused(answer, 413, "RequestEntityTooLarge")
    assert rss.growth < RSS_GROWTH_LIMIT, f"server RSS grew by {rss.growth / MiB:.0f} MiB"
    assert answer.pumped < BIG


def _bomb(encoding: str, inflated: int = 256 * MiB) -> bytes:
    zeros = b"\0" * MiB
    if encoding == "deflate":
        z = zlib.compressobj(1)
        return b"".join([z.compress(zeros) for _ in range(inflated // MiB)] + [z.flush()])
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd" if encoding == "zstd" else "lz4") as out:
        for _ in range(inflated // MiB):
            out.write(zeros)
    return sink.getvalue().to_pybytes()


@security_case
@pytest.mark.parametrize("encoding", ["deflate", "zstd", "x-odps-lz4-frame"])
def test_decompression_bomb_is_refused_without_inflating_it(door, case, encoding):
    body = _bomb(encoding)  # 256 MiB of zeros in a small body
    target = _block_target(door, 4)
    headers = sign(door, "PUT", target, {"Content-Type": "application/octet-stream"})
    request = head("PUT", target, {**headers, "Content-Encoding": encoding, "Content-Length": str(len(body))})
    with PeakRss(door.pid) as rss:
        answer = one(door, request + body)
    case.refused(answer, 413, "RequestEntityTooLarge")
    assert rss.growth < RSS_GROWTH_LIMIT, f"server RSS grew by {rss.growth / MiB:.0f} MiB"


@security_case
def test_admin_body_over_the_limit_is_refused(door, case):
    headers = {ADMIN_TOKEN_HEADER: door.emu.admin_token, "Content-Length": str(MiB)}
    case.refused(one(door, head("POST", "/_emulator/faults", headers), pump=MiB), 413, "RequestEntityTooLarge")


# -- 5. framing -----------------------------------------------------------------------------------------------
BAD_FRAMING_HEADERS = {
    "content-length-word": ([("Content-Length", "abc")], 400, "InvalidRequest"),
    "content-length-negative": ([("Content-Length", "-1")], 400, "InvalidRequest"),
    "content-length-plus": ([("Content-Length", "+5")], 400, "InvalidRequest"),
    "content-length-conflict": ([("Content-Length", "5"), ("Content-Length", "6")], 400, "InvalidRequest"),
    "content-length-and-chunked": ([("Content-Length", "5"), ("Transfer-Encoding", "chunked")], 400, "InvalidRequest"),
    "transfer-encoding-gzip": ([("Transfer-Encoding", "gzip, chunked")], 501, "NotImplemented"),
}


@security_case
@pytest.mark.parametrize("name", list(BAD_FRAMING_HEADERS))
def test_ambiguous_or_invalid_body_framing_is_answered_400(door, case, name):
    headers, status, code = BAD_FRAMING_HEADERS[name]
    answer = one(door, head("POST", INSTANCES, headers) + b"hello")
    case.refused(answer, status, code)
    assert answer.headers.get("connection") == "close"


BAD_CHUNKS = {
    "size-not-hex": b"zz\r\nabc\r\n0\r\n\r\n",
    "size-negative": b"-5\r\nabc\r\n0\r\n\r\n",
    "size-empty-line": b"\r\nabc\r\n0\r\n\r\n",
    "size-0x-prefix": b"0x3\r\nabc\r\n0\r\n\r\n",
    "size-line-too-long": b"0" * 5000 + b"3\r\nabc\r\n0\r\n\r\n",
    "size-too-many-digits": b"1" + b"0" * 20 + b"\r\n",
    "data-longer-than-size": b"3\r\nabcdef\r\n0\r\n\r\n",
    "bare-lf": b"3\nabc\n0\n\n",
    "too-many-trailers": b"3\r\nabc\r\n0\r\n" + b"X-T: 1\r\n" * 100 + b"\r\n",
}


@security_case
@pytest.mark.parametrize("name", list(BAD_CHUNKS))
def test_bad_chunked_framing_is_answered_400(door, case, name):
    headers = sign(door, "POST", INSTANCES, {"Content-Type": "application/xml"})
    answer = one(door, head("POST", INSTANCES, {**headers, "Transfer-Encoding": "chunked"}) + BAD_CHUNKS[name])
    case.refused(answer, 400, "InvalidRequest")


@security_case
@pytest.mark.parametrize("how", ["stall", "half-close"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_shorter_than_announced_is_answered_400_promptly(door, case, how, framing):
    headers = sign(door, "POST", INSTANCES, {"Content-Type": "application/xml"})
    if framing == "chunked":
        request = head("POST", INSTANCES, {**headers, "Transfer-Encoding": "chunked"}) + b"100\r\nonly a little"
    else:
        request = head("POST", INSTANCES, {**headers, "Content-Length": "1000"}) + b"only a little"
    answer = one(door, request, half_close=how == "half-close")
    case.refused(answer, 400, "IncompleteBody")  # within the 1 s body timeout, not the 300 s socket timeout


@security_case
def test_body_longer_than_content_length_is_not_a_second_request(door, case):
    """The bytes after the announced body are parsed as the next request: garbage, answered 400."""
    request = head("POST", INSTANCES, {"Content-Length": "2"}) + b"{}SMUGGLED /api/projects HTTP/1.1 x y\r\n\r\n"
    first, second = exchange(door, request, answers=2)
    assert (first.status, first.code) == (401, "Unauthorized")
    case.refused(second, 400, "InvalidRequest")


MALFORMED_REQUESTS = {
    "garbage-line": (b"GARBAGE\r\n\r\n", 400, "InvalidRequest"),
    "http-0.9": (b"GET /api/projects\r\n", 400, "InvalidRequest"),
    "http-version-9.9": (b"GET /api/projects HTTP/9.9\r\nHost: x\r\n\r\n", 505, "HTTPVersionNotSupported"),
    "unknown-method": (b"BREW /api/projects HTTP/1.1\r\nHost: x\r\n\r\n", 501, "NotImplemented"),
    "request-line-too-long": (b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n", 414, "RequestURITooLong"),
    "header-line-too-long": (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", 431,
                             "RequestHeaderFieldsTooLarge"),
    "too-many-headers": (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431,
                         "RequestHeaderFieldsTooLarge"),
}  # fmt: skip


@security_case
@pytest.mark.parametrize("name", list(MALFORMED_REQUESTS))
def test_malformed_request_is_answered_in_maxcompute_shape(door, case, name):
    data, status, code = MALFORMED_REQUESTS[name]
    answer = one(door, data)
    case.refused(answer, status, code)
    assert answer.headers.get("connection") == "close"


# -- 6. names and ids in paths --------------------------------------------------------------------------------
BAD_PROJECTS = ["../../x; drop", "a/b", "x;drop", "..", "a b", "1abc", "p" * 129, "door_project\x00", "проект",
                "door_project%2F..", "door-project"]  # fmt: skip


@security_case
@pytest.mark.parametrize("name", BAD_PROJECTS, ids=[f"project-{i}" for i in range(len(BAD_PROJECTS))])
def test_malformed_project_name_is_no_such_project(door, case, name):
    target = f"/api/projects/{quote(name, safe='')}/tables"
    answer = one(door, head("GET", target, sign(door, "GET", target)))
    case.refused(answer, 404, "NoSuchProject")
    assert isinstance(answer.pyodps_error(), odps_errors.NoSuchProject)


@security_case
def test_dot_segment_as_project_is_no_such_project(door, case):
    target = "/api/projects/../../etc/tables"
    case.refused(one(door, head("GET", target, sign(door, "GET", target))), 404, "NoSuchProject")


@security_case
def test_malformed_project_on_the_tunnel_is_no_such_project(door, case):
    target = f"/tunnel/projects/{quote('../../tmp', safe='')}/tables/{TABLE}?uploads"
    answer = one(door, head("POST", target, {**sign(door, "POST", target), "Content-Length": "0"}))
    case.refused(answer, 404, "NoSuchProject")
    assert answer.headers["content-type"] == "application/json"


@security_case
def test_pyodps_sees_no_such_project_for_a_hostile_name(door, case):
    from odps import ODPS

    o = ODPS(door.emu.access_id, door.emu.access_key, "../../x; drop", endpoint=door.emu.endpoint)
    started = time.perf_counter()
    with pytest.raises(odps_errors.NoSuchProject):
        o.get_project().reload()
    answer = Answer(404, "NoSuchProject", {}, b"", time.perf_counter() - started)
    case.refused(answer, 404, "NoSuchProject")


BAD_SESSION_IDS = {
    "upload-traversal": ("uploadid", "../../etc", "NoSuchUpload"),
    "upload-encoded-traversal": ("uploadid", quote("../downloads", safe=""), "NoSuchUpload"),
    "upload-names-the-downloads-dir": ("uploadid", "downloads", "NoSuchUpload"),
    "upload-wrong-shape": ("uploadid", "20240101000000deadbeef", "NoSuchUpload"),
    "upload-absolute": ("uploadid", quote("/etc/passwd", safe=""), "NoSuchUpload"),
    "download-traversal": ("downloadid", quote("../../tunnel", safe=""), "NoSuchDownload"),
    "download-upper-hex": ("downloadid", "20240101000000ABCDEFABCDEFABCDEF", "NoSuchDownload"),
}


@security_case
@pytest.mark.parametrize("name", list(BAD_SESSION_IDS))
def test_session_id_not_made_by_the_emulator_names_no_session(door, case, name):
    param, value, code = BAD_SESSION_IDS[name]
    target = f"/tunnel/projects/{PROJECT}/tables/{TABLE}?{param}={value}"
    answer = one(door, head("GET", target, sign(door, "GET", target)))
    case.refused(answer, 404, code)
    outside = [p for p in door.emu.data_dir.parent.iterdir() if p.name not in (door.emu.data_dir.name, door.emu.log_path.name)]
    assert not outside, f"DAMAGE: files written outside the data dir: {outside}"


@security_case
def test_instance_id_with_a_path_names_no_instance(door, case):
    target = f"/tunnel/projects/{PROJECT}/instances/{quote('../../x', safe='')}?downloads"
    answer = one(door, head("POST", target, {**sign(door, "POST", target), "Content-Length": "0"}))
    case.refused(answer, 404, "NoSuchObject")


# -- 7. the admin door --------------------------------------------------------------------------------------
@security_case
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-polar-mc-emulator-access-id": "emulator-ak"},  # the old door: the access id every request carries
        {ADMIN_TOKEN_HEADER: "emulator-ak"},
        {ADMIN_TOKEN_HEADER: "wrong-token-wrong-token-wrong"},
        {"Authorization": "ODPS emulator-ak:whatever"},
    ],
    ids=["no-token", "access-id-header", "access-id-as-token", "wrong-token", "signature-instead"],
)
@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
def test_admin_calls_need_the_admin_token(door, case, headers, method):
    body = json.dumps({"rate": 1.0, "kinds": ["drop"]}).encode()
    sent = {**headers, "Content-Type": "application/json", "Content-Length": str(len(body) if method == "POST" else 0)}
    answer = one(door, head(method, "/_emulator/faults", sent) + (body if method == "POST" else b""))
    case.refused(answer, 403, "AccessDenied")
    assert door.emu.faults()["rate"] == 0.0, "DAMAGE: fault injection was turned on without the admin token"


@security_case
def test_unauthenticated_huge_admin_body_is_answered_without_reading_it(door, case):
    with PeakRss(door.pid) as rss:
        answer = one(door, head("POST", "/_emulator/faults", {"Content-Length": str(BIG)}), pump=BIG)
    case.refused(answer, 403, "AccessDenied")
    assert rss.growth < RSS_GROWTH_LIMIT, f"server RSS grew by {rss.growth / MiB:.0f} MiB"


# -- what still works (not hostile: no security_case mark) ------------------------------------------------------
def test_request_dated_within_the_window_is_served(door):
    target = f"/api/projects/{PROJECT}"
    assert one(door, head("GET", target, sign(door, "GET", target, {"Date": _ago(14 * 60)}))).status == 200


@pytest.mark.parametrize("form", ["base64", "hex"])
def test_matching_content_md5_is_served(door, form):
    body = _sql_job(f"create table md5_ok_{form} (id bigint);")
    digest = hashlib.md5(body).digest()
    md5 = base64.b64encode(digest).decode() if form == "base64" else digest.hex()
    assert one(door, _post_signed(door, INSTANCES, body, {"Content-MD5": md5})).status == 201


def test_small_refused_body_keeps_the_connection(door):
    """A refused request with a small body is answered, its body discarded, and the connection reused."""
    target = f"/api/projects/{PROJECT}"
    request = head("POST", INSTANCES, {"Content-Length": "5"}) + b"hello" + head("GET", target, sign(door, "GET", target))
    first, second = exchange(door, request, answers=2)
    assert (first.status, second.status) == (401, 200)


def test_compressed_upload_within_the_limit_is_accepted(door):
    o = door.emu.client()
    o.create_table("door_zlib", "id bigint", if_not_exists=True)
    option = CompressOption(CompressOption.CompressAlgorithm.ODPS_ZLIB)
    session = TableTunnel(o).create_upload_session("door_zlib", compress_option=option)
    with session.open_record_writer(0) as writer:
        for i in range(1000):
            writer.write(session.new_record([i]))
    session.commit([0])
    with o.execute_sql("SELECT count(*) FROM door_zlib").open_reader() as reader:
        assert [r[0] for r in reader] == [1000]


def test_admin_token_file_is_private_and_unrelated_to_the_credentials(door):
    path = door.emu.data_dir / ADMIN_TOKEN_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    token = path.read_text().strip()
    assert token == door.emu.admin_token and len(token) >= 32
    assert door.emu.access_id not in token and door.emu.access_key not in token
    assert door.emu.set_faults(rate=0.0, kinds=["503"])["kinds"] == ["503"]
    assert door.emu.clear_faults()["rate"] == 0.0

