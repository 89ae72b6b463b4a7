"""The emulator's door, piece by piece: framing, bounded bodies, Date window, Content-MD5, names, limits."""

from __future__ import annotations

import base64
import hashlib
import io
import time
import zlib
from email.utils import formatdate

import pyarrow as pa
import pytest
import requests
from odps.accounts import AliyunAccount

from airflow_provider_polar_mc.emulator.auth import Authenticator, verify_content_md5
from airflow_provider_polar_mc.emulator.cli import build_parser
from airflow_provider_polar_mc.emulator.door import (
    DoorLimits,
    Framing,
    body_framing,
    check_project,
    check_segments,
    parse_size,
    read_admin_token,
    read_body,
    write_admin_token,
)
from airflow_provider_polar_mc.emulator.errors import EmulatorError
from airflow_provider_polar_mc.emulator.http import Headers
from airflow_provider_polar_mc.emulator.server import serve
from airflow_provider_polar_mc.emulator.tunnel_codec import InflatedTooLarge, decompress_body

ENDPOINT = "http://127.0.0.1:9/api"


def _code(fn, *args) -> tuple[int, str]:
    with pytest.raises(EmulatorError) as err:
        fn(*args)
    return err.value.status, err.value.code


# -- framing ----------------------------------------------------------------------------------------------
def test_body_framing_accepts_the_ordinary_forms():
    assert body_framing([], []) == Framing()
    assert body_framing(["12"], []) == Framing(length=12)
    assert body_framing(["12", "12"], []) == Framing(length=12)  # repeats that agree
    assert body_framing([], ["chunked"]) == Framing(chunked=True)
    assert body_framing([], ["Chunked"]).has_body and not Framing().has_body


@pytest.mark.parametrize(
    "cl,te,expected",
    [
        (["x"], [], (400, "InvalidRequest")),
        (["-1"], [], (400, "InvalidRequest")),
        ([" "], [], (400, "InvalidRequest")),
        (["1" * 25], [], (400, "InvalidRequest")),
        (["1", "2"], [], (400, "InvalidRequest")),
        (["3"], ["chunked"], (400, "InvalidRequest")),
        ([], ["gzip"], (501, "NotImplemented")),
        ([], ["chunked, chunked"], (501, "NotImplemented")),
        ([], [" "], (400, "InvalidRequest")),
    ],
)
def test_body_framing_refuses_ambiguous_or_invalid_headers(cl, te, expected):
    assert _code(body_framing, cl, te) == expected


def test_read_body_chunked_with_extensions_and_trailers():
    raw = b"3;name=v\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\nNEXT"
    stream = io.BytesIO(raw)
    assert read_body(stream, Framing(chunked=True), 100) == b"abcde"
    assert stream.read() == b"NEXT"  # stops exactly at the end of the body


@pytest.mark.parametrize(
    "raw,framing,limit,expected",
    [
        (b"abc", Framing(length=5), 10, (400, "IncompleteBody")),
        (b"abcdef", Framing(length=6), 5, (413, "RequestEntityTooLarge")),
        (b"6\r\nabcdef\r\n0\r\n\r\n", Framing(chunked=True), 5, (413, "RequestEntityTooLarge")),
        (b"3\r\nab", Framing(chunked=True), 10, (400, "IncompleteBody")),
        (b"3\r\nabc", Framing(chunked=True), 10, (400, "IncompleteBody")),
        (b"3\r\nabc\r\n", Framing(chunked=True), 10, (400, "IncompleteBody")),
        (b"3\r\nabcX\r\n", Framing(chunked=True), 10, (400, "InvalidRequest")),
        (b"g\r\n", Framing(chunked=True), 10, (400, "InvalidRequest")),
        (b"3\nabc\n", Framing(chunked=True), 10, (400, "InvalidRequest")),
    ],
)
def test_read_body_errors(raw, framing, limit, expected):
    assert _code(read_body, io.BytesIO(raw), framing, limit) == expected


def test_read_body_reports_a_stall_as_incomplete():
    class Stalling(io.BytesIO):
        def read(self, n=-1):
            raise TimeoutError("timed out")

    assert _code(read_body, Stalling(), Framing(length=3), 10) == (400, "IncompleteBody")


# -- sizes and limits -------------------------------------------------------------------------------------
def test_parse_size():
    assert parse_size("16MiB") == 16 << 20 and parse_size("1g") == 1 << 30 and parse_size("512") == 512
    assert parse_size("64 KiB") == 64 << 10
    for bad in ("", "1.5G", "-1", "ten"):
        with pytest.raises(ValueError):
            parse_size(bad)


def test_door_limits_defaults_and_validation():
    d = DoorLimits()
    assert (d.max_rest_body, d.max_tunnel_body, d.max_inflated_body) == (16 << 20, 1 << 30, 1 << 30)
    assert (d.max_clock_skew, d.body_timeout) == (900.0, 60.0)
    for bad in ({"max_tunnel_body": 0}, {"body_timeout": 0}, {"max_clock_skew": -1}):
        with pytest.raises(ValueError):
            DoorLimits(**bad)


def test_cli_flags_reach_the_limits():
    args = build_parser().parse_args(
        ["--data-dir", "/tmp/x", "--project", "p", "--access-id", "a", "--max-tunnel-body", "64MiB",
         "--max-inflated-body", "2GiB", "--max-rest-body", "1m", "--body-timeout", "5", "--max-clock-skew", "60",
         "--admin-token", "t" * 20]
    )  # fmt: skip
    assert (args.max_tunnel_body, args.max_inflated_body, args.max_rest_body) == (64 << 20, 2 << 30, 1 << 20)
    assert (args.body_timeout, args.max_clock_skew, args.admin_token) == (5.0, 60.0, "t" * 20)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--data-dir", "x", "--project", "p", "--access-id", "a", "--max-rest-body", "lots"])


# -- bounded inflation --------------------------------------------------------------------------------------
def _compressed(encoding: str, raw: bytes) -> bytes:
    if encoding == "deflate":
        return zlib.compress(raw)
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd" if encoding == "zstd" else "lz4") as out:
        out.write(raw)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("encoding", ["deflate", "zstd", "x-lz4-frame"])
def test_decompress_body_stops_at_the_limit(encoding):
    raw = bytes(range(256)) * 40_000  # ~10 MB, inflated in several steps
    body = _compressed(encoding, raw)
    assert decompress_body(body, encoding, max_size=len(raw)) == raw  # exactly the limit passes
    with pytest.raises(InflatedTooLarge):
        decompress_body(body, encoding, max_size=len(raw) - 1)
    assert decompress_body(body, encoding) == raw  # no limit given: as before


def test_decompress_body_keeps_rejecting_truncated_deflate():
    from airflow_provider_polar_mc.emulator.tunnel_codec import TunnelFormatError

    with pytest.raises(TunnelFormatError):
        decompress_body(zlib.compress(b"x" * 1000)[:-8], "deflate", max_size=10_000)


# -- Date window and Content-MD5 ------------------------------------------------------------------------------
def _signed(date: float, key: str = "secret"):
    prepared = requests.Request("GET", ENDPOINT + "/projects/p", headers={"Date": formatdate(date, usegmt=True)})
    prepared = prepared.prepare()
    AliyunAccount("ak", key).sign_request(prepared, ENDPOINT)
    return prepared.url[len(ENDPOINT) :], Headers(prepared.headers.items())


def test_date_window_default_and_configurable():
    now = 1_800_000_000.0
    auth = Authenticator("ak", "secret", clock=lambda: now)
    auth.verify("GET", *_signed(now - 899))
    auth.verify("GET", *_signed(now + 899))
    assert _code(auth.verify, "GET", *_signed(now - 901)) == (403, "RequestTimeTooSkewed")
    strict = Authenticator("ak", "secret", max_clock_skew=60, clock=lambda: now)
    assert _code(strict.verify, "GET", *_signed(now - 61)) == (403, "RequestTimeTooSkewed")
    # a bad signature is reported as such, whatever the date
    assert _code(auth.verify, "GET", *_signed(now - 5000, key="wrong")) == (403, "SignatureNotMatch")


def test_skew_message_parses_into_pyodps_fields():
    from odps.errors import RequestTimeTooSkewed

    now = time.time()
    with pytest.raises(EmulatorError) as err:
        Authenticator("ak", "secret").verify("GET", *_signed(now - 3600))
    exc = RequestTimeTooSkewed(err.value.message)
    assert exc.max_interval_date == 900_000 and exc.now_date is not None and exc.expire_date < exc.now_date


def test_content_md5_forms():
    body = b"payload"
    digest = hashlib.md5(body).digest()
    verify_content_md5(Headers(), body)  # not sent: nothing to check
    verify_content_md5(Headers({"Content-MD5": base64.b64encode(digest).decode()}), body)
    verify_content_md5(Headers({"Content-MD5": digest.hex().upper()}), body)
    for value in (base64.b64encode(hashlib.md5(b"other").digest()).decode(), "zz", "", digest.hex()[:-1]):
        assert _code(verify_content_md5, Headers({"Content-MD5": value}), body) == (400, "InvalidDigest")


# -- names in paths, admin token --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/projects/p", "/projects/P/tables/t", "/projects", "/tenants", "/logview/host"])
def test_served_or_absent_project_passes(path):
    check_project(path, ("p",))
    check_segments(path)


@pytest.mark.parametrize("segment", ["q", "..", "a%2Fb", "x%3B%20drop", "1p", "p%00", "_p", "p" * 129])
def test_other_project_names_are_no_such_project(segment):
    assert _code(check_project, f"/projects/{segment}/tables", ("p",)) == (404, "NoSuchProject")


@pytest.mark.parametrize("path", ["/projects/p/tables/a%2Fb", "/projects/p/instances/..", "/projects/p/tables/%00"])
def test_segments_hiding_separators_name_nothing(path):
    assert _code(check_segments, path) == (404, "NoSuchObject")


def test_admin_token_file_is_owner_only(tmp_path):
    path = write_admin_token(tmp_path, "token-" * 5)
    assert path.stat().st_mode & 0o777 == 0o600 and read_admin_token(tmp_path) == "token-" * 5
    write_admin_token(tmp_path, "second-token-value")  # replaced, still private
    assert read_admin_token(tmp_path) == "second-token-value" and path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "kw",
    [{"projects": ["../x"]}, {"projects": ["a;b"]}, {"admin_token": "short"}, {"admin_token": "the-secret-key-123"}],
)
def test_serve_refuses_bad_projects_and_weak_admin_tokens(tmp_path, kw):
    projects = kw.pop("projects", ["p"])
    with pytest.raises(ValueError):
        serve("127.0.0.1", 0, tmp_path, projects, "ak", "the-secret-key-123", **kw)
