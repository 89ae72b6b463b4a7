"""The emulator's HTTP server: transport, mounts, authentication, fault injection and error rendering.

Mounts (paths as sent by the client):

- ``/api/...`` (and, for clients configured without ``/api``, ``/projects/...``): the REST API;
- ``/tunnel/...``: the Tunnel API, discovered by pyodps through ``GET /api/projects/{p}/tunnel?service``;
- ``/_emulator/...``: administration (health, fault injection, the SQL instance queue), not signed; everything but
  ``GET /_emulator/health`` needs the admin token (``x-polar-mc-emulator-admin-token``), a random
  secret made at start (or given with ``--admin-token``) and written to ``DATA_DIR/admin-token``
  (mode 0600). It is not derived from the access id, which every signed request carries.

HTTP/1.1 with keep-alive; request bodies may be chunked (pyodps streams tunnel uploads that way).
Each request passes the door (:mod:`.door`) first: framing, then authentication, project name and size
limit from the headers alone, then a bounded body read, then Content-MD5. One log line per request:
method, path (secrets redacted), status and milliseconds.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from . import render
from .auth import Authenticator, verify_content_md5
from .door import (
    ADMIN_TOKEN_HEADER,
    DISCARD_LIMIT,
    LINGER_BYTES,
    LINGER_SECONDS,
    PROJECT_NAME,
    DoorLimits,
    Framing,
    RequestTooLarge,
    body_framing,
    check_project,
    check_segments,
    new_admin_token,
    read_body,
    write_admin_token,
)
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
        limits: DoorLimits | None = None,
        admin_token: str | None = None,
    ):
        projects = tuple(projects)
        bad = [p for p in projects if not PROJECT_NAME.match(p)]
        if bad:
            raise ValueError(
                f"invalid project name(s) {bad}: use letters, digits and '_', start with a letter, <= 128 chars"
            )
        admin_token = admin_token or new_admin_token()
        if len(admin_token) < 16 or admin_token in (access_id, access_key):
            raise ValueError("the admin token must have 16 characters or more and differ from the access id and key")
        self.storage = storage
        self.data_dir = Path(data_dir)
        self.access_id = access_id
        self.limits = limits or DoorLimits()
        self.admin_token = admin_token
        self.auth = Authenticator(access_id, access_key, max_clock_skew=self.limits.max_clock_skew)
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
                    self._tunnel = TunnelService(
                        self.storage, self.data_dir, self.instances.query_result, self.limits.max_inflated_body
                    )
            if self._tunnel is None:
                raise EmulatorError(501, "NotImplemented", self._tunnel_error or "no tunnel")
            return self._tunnel

    # -- the door ---------------------------------------------------------------------------
    def body_limit(self, mount: str) -> int:
        if mount == ADMIN_MOUNT:
            return self.limits.max_admin_body
        return self.limits.max_tunnel_body if mount == TUNNEL_MOUNT else self.limits.max_rest_body

    def admit(self, req: Request, mount: str, framing: Framing) -> int:
        """Checks on the request line and headers alone (no body byte read yet); returns the body limit.

        Raises the EmulatorError to answer: bad credentials, signature or Date, a bad admin token, a
        project name that is not served, or a body announced larger than the mount allows.
        """
        if mount == ADMIN_MOUNT:
            if not (req.path == "/health" and req.method == "GET"):
                given = (req.headers.get(ADMIN_TOKEN_HEADER) or "").encode()
                if not hmac.compare_digest(given, self.admin_token.encode()):
                    raise EmulatorError(
                        403,
                        "AccessDenied",
                        f"admin calls need the {ADMIN_TOKEN_HEADER} header with the token in the data dir's admin-token file",
                    )
        else:
            relative = req.raw_path + (f"?{req.raw_query}" if req.raw_query else "")
            self.auth.verify(req.method, relative, req.headers)
            check_project(req.raw_path, self.rest.config.projects)
            check_segments(req.raw_path)
        limit = self.body_limit(mount)
        if framing.length > limit:
            raise RequestTooLarge(f"the request body ({framing.length} bytes)", limit)
        return limit

    # -- request handling --------------------------------------------------------------------
    def handle(self, req: Request, mount: str, admitted: bool = False) -> Response:
        """Check and dispatch a request whose path is relative to ``mount``; errors become responses.

        ``admitted``: :meth:`admit` already passed (the server calls it before reading the body).
        """
        request_id = secrets.token_hex(12)
        try:
            if not admitted:
                self.admit(req, mount, Framing(length=len(req.body)))
            verify_content_md5(req.headers, req.body)
            if mount == ADMIN_MOUNT:
                resp = self._admin(req)
            else:
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
        if req.path == "/instances":
            return self._admin_instances(req)
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

    def _admin_instances(self, req: Request) -> Response:
        """``POST {"queue_seconds": s}``: new SQL instances wait that long before they run, as in
        MaxCompute's queue for quota (a stop meanwhile cancels them); ``GET`` reads the setting."""
        if req.method == "POST":
            try:
                seconds = float(json.loads(req.body or b"{}").get("queue_seconds", 0))
                if not 0 <= seconds <= 600:
                    raise ValueError("queue_seconds must be within [0, 600]")
            except (ValueError, TypeError, AttributeError) as exc:
                raise EmulatorError(400, "InvalidArgument", str(exc)) from None
            self.instances.queue_seconds = seconds
        elif req.method != "GET":
            raise EmulatorError(405, "MethodNotAllowed", "use GET or POST on /_emulator/instances")
        return render.json_response({"queue_seconds": self.instances.queue_seconds})

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

    def setup(self) -> None:
        super().setup()
        self._expect_continue = False

    def handle_expect_100(self) -> bool:
        """``Expect: 100-continue`` is answered only once the request is admitted (see ``_serve``)."""
        self._expect_continue = True
        return True

    # Codes for the errors the stdlib's request-line and header parser reports through send_error.
    _PARSE_ERROR_CODES = {
        400: "InvalidRequest",
        408: "RequestTimeout",
        414: "RequestURITooLong",
        431: "RequestHeaderFieldsTooLarge",
        501: "NotImplemented",
        505: "HTTPVersionNotSupported",
    }

    def parse_request(self) -> bool:
        if len(self.raw_requestline.split()) == 2:
            # HTTP/0.9 ("GET /path"): no version, no headers, so no signature either. The stdlib would
            # wait for headers such a client never sends; answer at once instead.
            self.command, self.request_version, self.path = None, "HTTP/1.1", ""
            self.requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
            self.send_error(400, "HTTP/0.9 requests are not supported")
            return False
        return super().parse_request()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """A malformed request line or header block, answered in MaxCompute's error shape (and closed)."""
        reason = message or self.responses.get(code, ("error",))[0]
        if getattr(self, "request_version", "") == "HTTP/0.9":  # the default before the line is parsed
            self.request_version = "HTTP/1.1"  # else the stdlib writes no status line and no headers
        target = getattr(self, "path", None)  # unset when the request line itself is unreadable
        path = target.partition("?")[0] if isinstance(target, str) else ""
        mount = split_mount(path)[0] or REST_MOUNT
        err = EmulatorError(code, self._PARSE_ERROR_CODES.get(code, "InvalidRequest"), f"malformed request: {reason}")
        resp = EmulatorApp.error_response(err, mount, secrets.token_hex(12))
        resp.headers["Connection"] = "close"
        logger.info("%s %s %s (malformed request: %s)", self.command or "-", redact_target(path), code, reason)
        try:
            self._send(resp)
        except OSError:
            pass
        self.close_connection = True
        self._linger()  # the rest of an over-long line or header block is still unread

    def _refuse(self, app: EmulatorApp, err: EmulatorError, mount: str, framing: Framing | None) -> int:
        """Answer a request whose body was not (entirely) read.

        ``framing`` None: the stream position is unknown (bad framing, body cut short): close. A small
        announced body is read and discarded after the answer so the connection stays usable; a larger
        or chunked one is not read: the answer says ``Connection: close`` and the socket is drained
        briefly (bounded), then closed.
        """
        resp = app.error_response(err, mount, secrets.token_hex(12))
        keep = (
            framing is not None
            and not framing.chunked
            and framing.length <= DISCARD_LIMIT
            and not (self._expect_continue and framing.length)
        )
        if not keep:
            resp.headers["Connection"] = "close"
        self._send(resp)
        if keep and framing is not None and framing.length:
            try:
                self.connection.settimeout(app.limits.body_timeout)
                keep = len(self.rfile.read(framing.length)) == framing.length
            except OSError:
                keep = False
            finally:
                self._restore_timeout()
        if not keep:
            self.close_connection = True
            self._linger()
        return resp.status

    def _restore_timeout(self) -> None:
        try:
            self.connection.settimeout(self.timeout)
        except OSError:
            pass

    def _linger(self) -> None:
        """Half-close and discard what the client still sends, for a bounded time and size, so the
        answer is not lost to a TCP reset (closing with unread data resets the connection)."""
        try:
            self.connection.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            drained = 0
            while drained < LINGER_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.connection.settimeout(remaining)
                data = self.connection.recv(65536)
                if not data:
                    break
                drained += len(data)
        except OSError:
            pass

    def _serve(self) -> None:
        started = time.perf_counter()
        status: int | str = "-"
        body_ms = 0.0
        app = self.server.app
        with self.server.track_request():
            try:
                try:
                    split = urlsplit(self.path)
                    query = dict(parse_qsl(split.query, keep_blank_values=True))
                except ValueError as exc:
                    err = EmulatorError(400, "InvalidRequest", f"malformed request target: {exc}")
                    status = self._refuse(app, err, REST_MOUNT, None)
                    return
                mount, relative = split_mount(split.path)
                error_mount = mount or REST_MOUNT
                req = Request(
                    method=self.command,
                    path=unquote(relative),
                    raw_path=relative,
                    query=query,
                    headers=Headers(self.headers.items()),
                    raw_query=split.query,
                )
                # 1. framing, 2. admission: from the request line and headers alone
                try:
                    framing = body_framing(
                        self.headers.get_all("Content-Length") or [], self.headers.get_all("Transfer-Encoding") or []
                    )
                except EmulatorError as err:
                    status = self._refuse(app, err, error_mount, None)
                    return
                try:
                    if not relative:
                        raise EmulatorError(404, "NoSuchObject", f"no such resource: {split.path}")
                    limit = app.admit(req, mount, framing)
                except EmulatorError as err:
                    status = self._refuse(app, err, error_mount, framing)
                    return
                # 3. the body, bounded in size and idle time
                if self._expect_continue and framing.has_body:
                    self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                try:
                    self.connection.settimeout(app.limits.body_timeout)
                    req.body = read_body(self.rfile, framing, limit)
                except EmulatorError as err:
                    status = self._refuse(app, err, error_mount, None)
                    return
                finally:
                    self._restore_timeout()
                body_ms = (time.perf_counter() - started) * 1000
                fault = app.faults.pick(self.command, split.path) if mount != ADMIN_MOUNT else None
                if fault is not None and fault.kind == "drop":
                    status = "dropped"
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault is not None and fault.kind == "timeout":
                    time.sleep(fault.delay)
                if fault is not None and fault.kind in ("500", "503"):
                    code = "InternalServerError" if fault.kind == "500" else "ServiceUnavailable"
                    err = EmulatorError(int(fault.kind), code, f"injected fault ({fault.kind})")
                    resp = app.error_response(err, mount, secrets.token_hex(12))
                else:
                    # 4. Content-MD5, then the handlers
                    resp = app.handle(req, mount, admitted=True)
                status = resp.status
                self._send(resp)
            except (ConnectionError, TimeoutError, OSError) as exc:
                status = f"disconnected ({type(exc).__name__})"
                self.close_connection = True
            except Exception:  # a streamed body failing after the headers went out
                logger.exception("cannot complete %s %s", self.command, redact_target(self.path))
                status = "aborted"
                self.close_connection = True
            finally:
                self._expect_continue = False
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
                self.send_header(name, value)  # send_response wrote Server and Date already
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
    *,
    limits: DoorLimits | None = None,
    admin_token: str | None = None,
) -> tuple[EmulatorHTTPServer, Storage]:
    """Open the storage in ``data_dir`` and bind a server (not yet serving) on host:port (0: any free port).

    ``admin_token`` (None: a random one) is written to ``data_dir/admin-token`` (mode 0600) for the
    tools that drive fault injection; ``server.app.admin_token`` has it too.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    storage = Storage(data_dir / "emulator.duckdb")
    try:
        app = EmulatorApp(
            storage, data_dir, projects, access_id, access_key, FaultInjector(faults),
            limits=limits, admin_token=admin_token,
        )  # fmt: skip
        write_admin_token(data_dir, app.admin_token)
        return EmulatorHTTPServer((host, port), app), storage
    except BaseException:
        storage.close()
        raise


def shutdown(server: EmulatorHTTPServer, storage: Storage, grace_s: float = 10.0) -> None:
    """Stop accepting, let in-flight requests and SQL instances finish, then close DuckDB."""
    server.shutdown()
    server.server_close()
    server.wait_idle(grace_s)
    server.app.close()
    storage.close()
