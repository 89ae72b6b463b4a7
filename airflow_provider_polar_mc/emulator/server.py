"""The emulator's HTTP server: transport, mounts, authentication, fault injection and error rendering.

Mounts (paths as sent by the client):

- ``/api/...`` (and, for clients configured without ``/api``, ``/projects/...``): the REST API;
- ``/tunnel/...``: the Tunnel API, discovered by pyodps through ``GET /api/projects/{p}/tunnel?service``;
- ``/_emulator/...``: administration (health, fault injection), not signed, guarded by the access id.

HTTP/1.1 with keep-alive; request bodies may be chunked (pyodps streams tunnel uploads that way).
One log line per request: method, path (secrets redacted), status and milliseconds.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import render
from .auth import Authenticator
from .errors import EmulatorError
from .faults import FaultConfig, FaultConfigError, FaultInjector
from .http import Headers, Request, Response
from .instances import InstanceManager
from .rest import RestApi, RestConfig
from .storage import Storage

logger = logging.getLogger("polar_mc_emulator")

REST_MOUNT = "/api"
TUNNEL_MOUNT = "/tunnel"
ADMIN_MOUNT = "/_emulator"
ADMIN_ACCESS_HEADER = "x-polar-mc-emulator-access-id"

_SECRET_PARAM = re.compile(r"(signature|token|secret|password|accesskey|authorization)", re.IGNORECASE)


def redact_target(target: str) -> str:
    """The request target for logs, with values of secret-looking parameters removed."""
    path, sep, query = target.partition("?")
    if not sep:
        return path
    parts = []
    for item in query.split("&"):
        key, eq, _ = item.partition("=")
        parts.append(f"{key}=***" if eq and _SECRET_PARAM.search(unquote(key)) else item)
    return path + "?" + "&".join(parts)


def split_mount(path: str) -> tuple[str, str]:
    """(mount, path relative to it) for a raw request path; mount "" means no known mount."""
    for mount in (TUNNEL_MOUNT, REST_MOUNT, ADMIN_MOUNT):
        if path == mount or path.startswith(mount + "/"):
            return mount, path[len(mount) :] or "/"
    if path.startswith("/projects") or path in ("/tenants", "/logview/host"):
        return "", path  # a REST client configured with the bare host as endpoint
    return "", ""


class EmulatorApp:
    """Everything behind the socket, transport-neutral except for the fault decision."""

    def __init__(
        self,
        storage: Storage,
        data_dir: Path,
        projects: Iterable[str],
        access_id: str,
        access_key: str,
        faults: FaultInjector | None = None,
        run_sql: Callable[..., Any] | None = None,
    ):
        self.storage = storage
        self.data_dir = Path(data_dir)
        self.access_id = access_id
        self.auth = Authenticator(access_id, access_key)
        self.faults = faults or FaultInjector()
        self.instances = InstanceManager(storage, run_sql=run_sql)
        config = RestConfig(
            projects=tuple(p.lower() for p in projects),
            owner=f"ALIYUN${access_id}",
            tunnel_mount=TUNNEL_MOUNT,
            created_at=time.time(),
        )
        self.rest = RestApi(storage, self.instances, config)
        self._tunnel: Any = None
        self._tunnel_error: str | None = None
        self._tunnel_lock = threading.Lock()

    # -- tunnel (implemented in tunnel.py, loaded on first use) --------------------------------
    def _tunnel_service(self) -> Any:
        with self._tunnel_lock:
            if self._tunnel is None and self._tunnel_error is None:
                try:
                    from .tunnel import TunnelService
                except ImportError as exc:
                    self._tunnel_error = f"the Tunnel service is not available: {exc}"
                else:
                    # TunnelService keeps its files under data_dir/tunnel itself.
                    self._tunnel = TunnelService(self.storage, self.data_dir, self.instances.query_result)
            if self._tunnel is None:
                raise EmulatorError(501, "NotImplemented", self._tunnel_error or "no tunnel")
            return self._tunnel

    # -- request handling --------------------------------------------------------------------
    def handle(self, req: Request, mount: str) -> Response:
        """Authenticate and dispatch a request whose path is relative to ``mount``; errors become responses."""
        request_id = secrets.token_hex(12)
        try:
            if mount == ADMIN_MOUNT:
                resp = self._admin(req)
            else:
                relative = req.raw_path + (f"?{req.raw_query}" if req.raw_query else "")
                self.auth.verify(req.method, relative, req.headers)
                if mount == TUNNEL_MOUNT:
                    resp = self._tunnel_service().handle(req)
                else:
                    resp = self.rest.handle(req)
        except EmulatorError as err:
            resp = self.error_response(err, mount, request_id)
        except Exception as exc:  # a bug: report it like MaxCompute's internal errors, keep serving
            logger.exception("internal error on %s %s", req.method, req.path)
            err = EmulatorError(500, "InternalServerError", f"ODPS-0010000:System internal error - {exc}")
            resp = self.error_response(err, mount, request_id)
        resp.headers.setdefault("x-odps-request-id", request_id)
        return resp

    @staticmethod
    def error_response(err: EmulatorError, mount: str, request_id: str) -> Response:
        if mount in (TUNNEL_MOUNT, ADMIN_MOUNT):
            resp = render.json_error(err, request_id)
        else:
            resp = render.xml_error(err, request_id)
        resp.headers["x-odps-request-id"] = request_id
        return resp

    def _admin(self, req: Request) -> Response:
        if req.path == "/health" and req.method == "GET":
            return render.json_response({"status": "ok"})
        if req.headers.get(ADMIN_ACCESS_HEADER) != self.access_id:
            raise EmulatorError(403, "AccessDenied", f"admin calls need the {ADMIN_ACCESS_HEADER} header")
        if req.path != "/faults":
            raise EmulatorError(404, "NoSuchObject", f"no such admin resource: {req.path}")
        if req.method == "POST":
            try:
                self.faults.configure(FaultConfig.from_mapping(json.loads(req.body or b"{}")))
            except (ValueError, FaultConfigError) as exc:
                raise EmulatorError(400, "InvalidArgument", str(exc)) from None
        elif req.method == "DELETE":
            self.faults.clear()
        elif req.method != "GET":
            raise EmulatorError(405, "MethodNotAllowed", "use GET, POST or DELETE on /_emulator/faults")
        return render.json_response({**self.faults.config.to_json(), "injected": self.faults.injected})

    def close(self) -> None:
        self.instances.shutdown()
        close_tunnel = getattr(self._tunnel, "close", None)
        if callable(close_tunnel):
            close_tunnel()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "polar-mc-emulator"
    sys_version = ""
    rbufsize = 1 << 20  # large reads for multi-MB tunnel bodies
    disable_nagle_algorithm = True  # headers and body go out in separate writes; don't wait for ACKs
    timeout = 300  # idle keep-alive connections are closed after this many seconds
    server: EmulatorHTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # one structured line per request is logged in _serve instead

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("connection closed inside a chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                chunk = self.rfile.read(size)
                if len(chunk) != size:
                    raise ConnectionError("connection closed inside a chunk")
                parts.append(chunk)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) != length:
            raise ConnectionError("connection closed before the end of the body")
        return body

    def _serve(self) -> None:
        started = time.perf_counter()
        status: int | str = "-"
        body_ms = 0.0
        app = self.server.app
        with self.server.track_request():
            try:
                split = urlsplit(self.path)
                body = self._read_body()
                body_ms = (time.perf_counter() - started) * 1000
                mount, relative = split_mount(split.path)
                fault = app.faults.pick(self.command, split.path) if mount != ADMIN_MOUNT else None
                if fault is not None and fault.kind == "drop":
                    status = "dropped"
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault is not None and fault.kind == "timeout":
                    time.sleep(fault.delay)
                req = Request(
                    method=self.command,
                    path=unquote(relative),
                    raw_path=relative,
                    query=dict(parse_qsl(split.query, keep_blank_values=True)),
                    headers=Headers(self.headers.items()),
                    body=body,
                    raw_query=split.query,
                )
                if fault is not None and fault.kind in ("500", "503"):
                    code = "InternalServerError" if fault.kind == "500" else "ServiceUnavailable"
                    err = EmulatorError(int(fault.kind), code, f"injected fault ({fault.kind})")
                    resp = app.error_response(err, mount, secrets.token_hex(12))
                elif not relative:
                    err = EmulatorError(404, "NoSuchObject", f"no such resource: {split.path}")
                    resp = app.error_response(err, REST_MOUNT, secrets.token_hex(12))
                else:
                    resp = app.handle(req, mount)
                status = resp.status
                self._send(resp)
            except (ConnectionError, TimeoutError, OSError) as exc:
                status = f"disconnected ({type(exc).__name__})"
                self.close_connection = True
            except Exception:  # malformed framing, or a streamed body failing after the headers went out
                logger.exception("cannot complete %s %s", self.command, redact_target(self.path))
                status = "aborted"
                self.close_connection = True
            finally:
                ms = (time.perf_counter() - started) * 1000
                # body_ms: time spent receiving the request body (client upload speed, not ours)
                logger.info(
                    "%s %s %s %.1fms (body %.1fms)", self.command, redact_target(self.path), status, ms, body_ms
                )

    def _send(self, resp: Response) -> None:
        self.send_response(resp.status)
        headers = {k.lower(): (k, v) for k, v in resp.headers.items()}
        for key, (name, value) in headers.items():
            if key not in ("content-length", "transfer-encoding", "date", "server"):
                self.send_header(name, value)
        self.send_header("Date", formatdate(usegmt=True))
        body = resp.body
        if isinstance(body, (bytes, bytearray, memoryview)):
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD" and body:
                self.wfile.write(body)
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in body:
            if chunk:
                self.wfile.write(b"%x\r\n" % len(chunk) + bytes(chunk) + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _serve


class EmulatorHTTPServer(ThreadingHTTPServer):
    """A threaded server that knows its app and how many requests are in flight (for clean shutdown)."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: EmulatorApp):
        super().__init__(address, _Handler)
        self.app = app
        self._in_flight = 0
        self._idle = threading.Condition()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up between requests are normal (pyodps drops pooled connections)."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            logger.debug("connection from %s ended: %r", client_address, exc)
            return
        logger.exception("error on connection from %s", client_address)

    def track_request(self) -> _InFlight:
        return _InFlight(self)

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _InFlight:
    def __init__(self, server: EmulatorHTTPServer):
        self._server = server

    def __enter__(self) -> None:
        with self._server._idle:
            self._server._in_flight += 1

    def __exit__(self, *exc: object) -> None:
        with self._server._idle:
            self._server._in_flight -= 1
            self._server._idle.notify_all()


def serve(
    host: str,
    port: int,
    data_dir: Path,
    projects: Iterable[str],
    access_id: str,
    access_key: str,
    faults: FaultConfig | None = None,
) -> tuple[EmulatorHTTPServer, Storage]:
    """Open the storage in ``data_dir`` and bind a server (not yet serving) on host:port (0: any free port)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    storage = Storage(data_dir / "emulator.duckdb")
    app = EmulatorApp(storage, data_dir, projects, access_id, access_key, FaultInjector(faults))
    return EmulatorHTTPServer((host, port), app), storage


def shutdown(server: EmulatorHTTPServer, storage: Storage, grace_s: float = 10.0) -> None:
    """Stop accepting, let in-flight requests and SQL instances finish, then close DuckDB."""
    server.shutdown()
    server.server_close()
    server.wait_idle(grace_s)
    server.app.close()
    storage.close()
