"""How the core reaches the source database, without Airflow.

:class:`MySqlEndpoint` is everything needed to open a session: the hook builds it from an Airflow
connection, tests and benchmarks build it directly. Every session runs in UTC so TIMESTAMP values read
by the full load match what the binary log carries (docs/architecture.md: same values on both paths).
The same endpoint feeds pymysql, mysql-replication and the command-line client, so no caller needs to
know driver details.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pymysql

T = TypeVar("T")

# pymysql error codes that mean "the connection, not the statement, failed": retrying may help.
CONNECTION_ERROR_CODES = frozenset({2002, 2003, 2006, 2013, 2055, 1040, 1053, 1205, 1213})


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
        kwargs: dict[str, Any] = dict(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=self.database,
            charset=self.charset,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            write_timeout=self.write_timeout,
            autocommit=True,
            init_command="SET time_zone = '+00:00'",
        )
        if self.ssl:
            kwargs["ssl"] = dict(self.ssl)
        kwargs.update(overrides)
        return kwargs

    def connect(self, **overrides: Any) -> pymysql.Connection:
        """A new session in UTC."""
        return pymysql.connect(**self.pymysql_kwargs(**overrides))

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
        # pymysql has no public setter; it re-applies these before each read/write.
        if hasattr(conn, "_read_timeout") and hasattr(conn, "_write_timeout"):
            conn._read_timeout = self.read_timeout
            conn._write_timeout = self.write_timeout
        return conn

    def replication_settings(self) -> dict[str, Any]:
        """Connection settings in the form mysql-replication's BinLogStreamReader takes."""
        settings: dict[str, Any] = dict(
            host=self.host, port=self.port, user=self.user, password=self.password, charset=self.charset
        )
        if self.ssl:
            settings["ssl"] = dict(self.ssl)
        return settings


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


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError)):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        return code is None or code in CONNECTION_ERROR_CODES
    return isinstance(exc, (ConnectionError, TimeoutError))


@dataclass(frozen=True)
class RetryPolicy:
    """DTS's two retry windows: failed connections (long) and other transient errors (short)."""

    connection_seconds: float = 720 * 60
    other_seconds: float = 10 * 60
    initial_backoff: float = 1.0
    max_backoff: float = 60.0

    def call(
        self,
        fn: Callable[[], T],
        *,
        retryable_other: Callable[[BaseException], bool] = lambda exc: False,
        log: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """Call ``fn``; retry connection errors within the connection window and errors that
        ``retryable_other`` accepts within the other window, with jittered exponential backoff."""
        started = time.monotonic()
        attempt = 0
        while True:
            try:
                return fn()
            except Exception as exc:  # noqa: BLE001 - classified below, re-raised when not retryable
                if is_connection_error(exc):
                    window = self.connection_seconds
                elif retryable_other(exc):
                    window = self.other_seconds
                else:
                    raise
                elapsed = time.monotonic() - started
                if elapsed >= window:
                    raise
                delay = min(self.max_backoff, self.initial_backoff * 2**attempt) * (0.5 + random.random() / 2)
                delay = min(delay, max(0.0, window - elapsed))
                attempt += 1
                if log:
                    log(f"source error ({exc}); retry {attempt} in {delay:.1f}s, {window - elapsed:.0f}s left in window")
                sleep(delay)
