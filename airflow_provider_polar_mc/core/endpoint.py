"""How the core reaches the source database, without Airflow.

:class:`MySqlEndpoint` is everything needed to open a session: the hook builds it from an Airflow
connection, tests and benchmarks build it directly. Every session runs in UTC so TIMESTAMP values read
by the full load match what the binary log carries (docs/architecture.md: same values on both paths),
with the provider's own ``sql_mode`` so that no server or account default (``ANSI_QUOTES``,
``NO_BACKSLASH_ESCAPES``, ``PIPES_AS_CONCAT``, ``PAD_CHAR_TO_FULL_LENGTH``...) changes how its SQL is
read or what values come back, and read-only: only the heartbeat asks for a writable session.
The same endpoint feeds pymysql, mysql-replication and the command-line client, so no caller needs to
know driver details.
"""

from __future__ import annotations

import contextlib
import functools
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pymysql

from airflow_provider_polar_mc.core.compat import set_socket_timeouts

if TYPE_CHECKING:
    from airflow_provider_polar_mc.core.retry import RetryPolicy

# The endpoint's fields that pymysql.connect and mysql-replication's settings take under the same name.
_LOGIN_FIELDS = ("host", "port", "user", "password", "charset")
_PYMYSQL_FIELDS = (*_LOGIN_FIELDS, "database", "connect_timeout", "read_timeout", "write_timeout")


# Seconds a binlog stream may stay silent when the connection sets no read_timeout.
STREAM_READ_TIMEOUT = 120.0

SESSION_SETUP = "SET time_zone = '+00:00', sql_mode = 'NO_ENGINE_SUBSTITUTION'"
READ_ONLY = "SET SESSION TRANSACTION READ ONLY"
# What every reading session runs first (pymysql sessions here; connectorx's through pre_execution_query).
READ_SESSION_STATEMENTS = (SESSION_SETUP, READ_ONLY)


@dataclass(frozen=True)
class MySqlEndpoint:
    host: str
    port: int = 3306
    user: str = "root"
    password: str = field(default="", repr=False)
    database: str | None = None
    ssl: dict[str, str] | None = None  # pymysql ssl dict: ca, cert, key, check_hostname
    connect_timeout: float = 10.0
    read_timeout: float | None = None
    write_timeout: float | None = None
    charset: str = "utf8mb4"

    def pymysql_kwargs(self, **overrides: Any) -> dict[str, Any]:
        kwargs: dict[str, Any] = {name: getattr(self, name) for name in _PYMYSQL_FIELDS}
        kwargs.update(autocommit=True, init_command=SESSION_SETUP)
        if self.ssl:
            kwargs["ssl"] = dict(self.ssl)
        kwargs.update(overrides)
        return kwargs

    def connect(self, *, writable: bool = False, **overrides: Any) -> pymysql.Connection:
        """A new read-only session in UTC (``writable`` for the heartbeat writer only)."""
        conn = pymysql.connect(**self.pymysql_kwargs(**overrides))
        return conn if writable else _read_only(conn)

    @contextlib.contextmanager
    def session(
        self, retry: RetryPolicy | None = None, *, log: Callable[[str], None] | None = None, writable: bool = False
    ) -> Iterator[pymysql.Connection]:
        """A new read-only UTC session (``writable`` for the heartbeat) for a ``with`` block, closed at
        its end; opened within ``retry``'s connection window when one is given (inside tasks), else in
        one attempt."""
        connect = functools.partial(self.connect, writable=writable)
        conn = retry.call(connect, log=log) if retry is not None else connect()
        try:
            yield conn
        finally:
            conn.close()

    def connect_once(self, timeout: float | None = None) -> pymysql.Connection:
        """One attempt at a new session in UTC that answers within ``timeout`` seconds (default
        ``connect_timeout``), for the command line, the precheck and the connection form's Test button.

        pymysql bounds only the TCP connect by ``connect_timeout``; the server's greeting and the login
        wait up to ``read_timeout`` (by default forever), so a wrong port where something else listens
        and stays silent would hang. Here the TCP connect gets ``timeout`` and the greeting, login and
        session setup what is left of it; the session then uses the endpoint's own read/write timeouts.
        Raises the driver's ``OperationalError`` (see :func:`describe_connect_error`).
        """
        budget = self.connect_timeout if timeout is None else timeout
        deadline = time.monotonic() + budget
        try:
            sock = socket.create_connection((self.host, self.port), budget)
        except OSError as exc:  # the same error pymysql raises for a failed TCP connect
            raise pymysql.err.OperationalError(2003, f"Can't connect to MySQL server on {self.host!r} ({exc})") from exc
        remaining = max(0.05, deadline - time.monotonic())
        conn = pymysql.connect(**self.pymysql_kwargs(read_timeout=remaining, write_timeout=remaining, defer_connect=True))
        try:
            conn.connect(sock)
        except BaseException:
            sock.close()
            raise
        set_socket_timeouts(conn, self.read_timeout, self.write_timeout)
        return _read_only(conn)

    def replication_settings(self) -> dict[str, Any]:
        """Connection settings in the form mysql-replication's BinLogStreamReader takes."""
        settings: dict[str, Any] = {name: getattr(self, name) for name in _LOGIN_FIELDS}
        # A stalled or half-open stream ends in a lost connection (retried, resumed) rather than a task
        # that waits forever: a non-blocking dump never goes quiet for long, so the stream gets a read
        # timeout even when the connection sets none.
        settings.update({name: getattr(self, name) for name in ("connect_timeout", "write_timeout")
                         if getattr(self, name) is not None})  # fmt: skip
        settings["read_timeout"] = self.read_timeout or STREAM_READ_TIMEOUT
        if self.ssl:
            settings["ssl"] = dict(self.ssl)
        return settings


def _read_only(conn: pymysql.Connection) -> pymysql.Connection:
    """Make ``conn``'s transactions (autocommit statements included) read-only: a write fails with
    MySQL error 1792 whatever the account may do."""
    try:
        with conn.cursor() as cur:
            cur.execute(READ_ONLY)
    except BaseException:
        conn.close()
        raise
    return conn


def describe_connect_error(endpoint: MySqlEndpoint, exc: BaseException, timeout: float | None = None) -> str:
    """Why connecting to ``endpoint`` failed, naming host:port, the account, the cause and the fix
    (never the password)."""
    where = f"cannot connect to {endpoint.host}:{endpoint.port} as {endpoint.user}"
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
    text = str(exc.args[-1]) if exc.args else str(exc)
    lowered = text.lower()
    seconds = f"{endpoint.connect_timeout if timeout is None else timeout:g}"
    if code == 1045:
        cause = ("access denied: wrong login or password (or the account may not connect from this machine); "
                 "check the connection's login and password")
    elif code == 1044 or code == 1049:
        cause = f"{text}; check the connection's schema (database) field"
    elif code == 1130:
        cause = (f"{text}: the account may not connect from this machine's address; create the account for "
                 "this host, or add the address to the PolarDB whitelist")
    elif "timed out" in lowered and code == 2003:
        cause = (f"no answer within {seconds} s (connect_timeout): the host is unreachable, or a firewall / "
                 "the PolarDB whitelist drops this machine's packets")
    elif "timed out" in lowered:
        cause = (f"the server accepted the connection but sent no MySQL greeting within {seconds} s "
                 "(connect_timeout): is this the MySQL port, and is the server overloaded?")
    elif "refused" in lowered:
        cause = "connection refused: nothing listens on that port (wrong port, or the server is down)"
    elif "name or service not known" in lowered or "nodename nor servname" in lowered or "errno -2" in lowered \
            or "errno -3" in lowered or "getaddrinfo" in lowered:
        cause = f"host name {endpoint.host!r} cannot be resolved (DNS); check the connection's host"
    elif "ssl" in lowered or "certificate" in lowered:
        cause = f"TLS failed: {text}; check the ssl extras (ca, cert, key) of the connection"
    else:
        cause = text
    return f"{where}: {cause}" + (f" (MySQL error {code})" if code else "")
