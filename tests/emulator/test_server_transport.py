"""The emulator's HTTP transport, in-process: chunked bodies, keep-alive, admin, faults, logging."""

from __future__ import annotations

import http.client
import json
import logging
import threading
from collections.abc import Iterator

import pytest
import requests
from odps.accounts import AliyunAccount

from airflow_provider_polar_mc.emulator.door import read_admin_token
from airflow_provider_polar_mc.emulator.server import ADMIN_TOKEN_HEADER, EmulatorHTTPServer, serve, shutdown

ACCESS_ID, ACCESS_KEY = "ak-transport", "very-secret-key-123"


@pytest.fixture
def server(tmp_path) -> Iterator[EmulatorHTTPServer]:
    srv, storage = serve("127.0.0.1", 0, tmp_path / "data", ["proj"], ACCESS_ID, ACCESS_KEY)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield srv
    shutdown(srv, storage)
    thread.join(5)


def _conn(srv: EmulatorHTTPServer, timeout: float = 10) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(*srv.server_address[:2], timeout=timeout)


def _admin_headers(srv: EmulatorHTTPServer) -> dict[str, str]:
    return {ADMIN_TOKEN_HEADER: srv.app.admin_token, "Content-Type": "application/json"}


def test_chunked_request_body_and_keep_alive(server):
    conn = _conn(server)
    payload = json.dumps({"rate": 0.25, "kinds": ["drop"], "paths": ["/tunnel"], "seed": 4}).encode()
    chunks = [payload[i : i + 7] for i in range(0, len(payload), 7)]
    conn.request("POST", "/_emulator/faults", body=iter(chunks), headers=_admin_headers(server), encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    assert json.loads(resp.read())["rate"] == 0.25
    # same connection, next request
    conn.request("GET", "/_emulator/faults", headers=_admin_headers(server))
    resp = conn.getresponse()
    assert json.loads(resp.read())["kinds"] == ["drop"]
    conn.request("DELETE", "/_emulator/faults", headers=_admin_headers(server))
    assert json.loads(conn.getresponse().read())["rate"] == 0.0


def test_admin_needs_the_admin_token_not_the_access_id(server, tmp_path):
    for headers in ({}, {"x-polar-mc-emulator-access-id": ACCESS_ID}, {ADMIN_TOKEN_HEADER: ACCESS_ID}):
        conn = _conn(server)
        conn.request("POST", "/_emulator/faults", body=b'{"rate": 1}', headers=headers)
        resp = conn.getresponse()
        assert resp.status == 403
        assert json.loads(resp.read())["Code"] == "AccessDenied"
    assert server.app.faults.config.rate == 0.0
    # the token is in the data dir, readable by the owner only, and not derived from the access id
    token_file = tmp_path / "data" / "admin-token"
    assert read_admin_token(tmp_path / "data") == server.app.admin_token
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert ACCESS_ID not in server.app.admin_token and ACCESS_KEY not in server.app.admin_token


def test_unknown_route_is_404_xml(server):
    conn = _conn(server)
    conn.request("GET", "/nothing-here")
    resp = conn.getresponse()
    assert resp.status == 404 and b"<Code>NoSuchObject</Code>" in resp.read()


def _signed_get(srv: EmulatorHTTPServer, path: str, key: str = ACCESS_KEY, timeout: float = 5) -> requests.Response:
    endpoint = f"http://{srv.server_address[0]}:{srv.server_address[1]}/api"
    prepared = requests.Request("GET", endpoint + path, params={"curr_project": "proj"}).prepare()
    AliyunAccount(ACCESS_ID, key).sign_request(prepared, endpoint)
    with requests.Session() as s:
        return s.send(prepared, timeout=timeout)


def test_signed_rest_call_and_method_not_allowed(server):
    resp = _signed_get(server, "/projects/proj")
    assert resp.status_code == 200 and resp.headers["x-odps-owner"]
    assert _signed_get(server, "/projects/proj", key="nope").status_code == 403
    assert _signed_get(server, "/projects/other").status_code == 404


def test_injected_errors_drops_and_timeouts(server):
    conn = _conn(server)
    conn.request("POST", "/_emulator/faults", body=json.dumps({"rate": 1, "kinds": ["503"], "limit": 1}),
                 headers=_admin_headers(server))  # fmt: skip
    conn.getresponse().read()
    assert _signed_get(server, "/projects/proj").status_code == 503
    assert _signed_get(server, "/projects/proj").status_code == 200  # limit reached

    conn.request("POST", "/_emulator/faults", body=json.dumps({"rate": 1, "kinds": ["drop"]}), headers=_admin_headers(server))
    conn.getresponse().read()
    with pytest.raises(requests.ConnectionError):
        _signed_get(server, "/projects/proj")

    conn.request("POST", "/_emulator/faults", body=json.dumps({"rate": 1, "kinds": ["timeout"], "delay": 1.0}),
                 headers=_admin_headers(server))  # fmt: skip
    conn.getresponse().read()
    with pytest.raises(requests.Timeout):  # faults apply to admitted (signed) requests
        _signed_get(server, "/projects/proj", timeout=0.3)
    conn.request("DELETE", "/_emulator/faults", headers=_admin_headers(server))
    assert json.loads(conn.getresponse().read())["injected"] == 0


def test_request_log_has_no_secrets(server, caplog):
    with caplog.at_level(logging.INFO, logger="polar_mc_emulator"):
        _signed_get(server, "/projects/proj")
        _signed_get(server, "/projects/proj", key="nope")
    lines = [r.getMessage() for r in caplog.records if r.name == "polar_mc_emulator"]
    assert any(line.startswith("GET /api/projects/proj") and " 200 " in line for line in lines)
    text = "\n".join(lines)
    assert ACCESS_KEY not in text and "ODPS " not in text and "Authorization" not in text
