"""Connection to the PolarDB for MySQL / MySQL source.

Connection type ``polardb_mysql``, default id ``polardb_default``. Extras (all optional):
``ssl`` (dict with ``ca``, ``cert``, ``key``, ``check_hostname``) or the flat ``ssl_ca``/``ssl_cert``/
``ssl_key``; ``connect_timeout``, ``read_timeout``, ``write_timeout`` (seconds); ``charset``
(default utf8mb4). Every session runs with ``time_zone='+00:00'``.

The connection form's fields for these extras and its labels are declared in the provider info
(``conn-fields``, ``ui-field-behaviour``), which Airflow 3 reads without importing this hook.

``test_connection`` (the connection form's Test button) makes one attempt that answers within the
connection's ``connect_timeout``; it never enters the retry window.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pymysql
from airflow.providers.common.sql.hooks.sql import DbApiHook

from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint, describe_connect_error
from airflow_provider_polar_mc.core.retry import RetryPolicy
from airflow_provider_polar_mc.exceptions import ConnectionNotUsable


class PolarDBMySqlHook(DbApiHook):
    conn_name_attr = "polardb_conn_id"
    default_conn_name = "polardb_default"
    conn_type = "polardb_mysql"
    hook_name = "PolarDB for MySQL"
    supports_autocommit = True

    def __init__(self, *args: Any, retry: RetryPolicy | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.database: str | None = kwargs.get("schema")
        self.retry = retry or RetryPolicy()

    def get_endpoint(self, database: str | None = None) -> MySqlEndpoint:
        """The source endpoint described by the Airflow connection (looked up lazily)."""
        conn_id = self.get_conn_id()
        conn = self.get_connection(conn_id)
        extra = conn.extra_dejson
        ssl = extra.get("ssl")
        if isinstance(ssl, str):
            try:
                ssl = json.loads(ssl)
            except ValueError:
                raise ConnectionNotUsable(
                    f"connection {conn_id!r}: extra ssl must be a JSON object like "
                    '{"ca": "/path/to/ca.pem"}, and its text is not valid JSON', conn_id) from None
        if ssl is not None and not isinstance(ssl, dict):
            raise ConnectionNotUsable(f"connection {conn_id!r}: extra ssl must be an object with ca, cert, key; "
                                      f"got {type(ssl).__name__}", conn_id)
        if not ssl:
            flat = {k[4:]: extra[k] for k in ("ssl_ca", "ssl_cert", "ssl_key") if extra.get(k)}
            ssl = flat or None

        def _seconds(name: str, default: float | None) -> float | None:
            value = extra.get(name, default)
            if value is None or value == "":
                return default
            try:
                seconds = float(value)
            except (TypeError, ValueError):
                seconds = math.nan
            if isinstance(value, bool) or not 0 < seconds <= 31_536_000:  # pymysql's own upper bound
                raise ConnectionNotUsable(
                    f"connection {conn_id!r}: extra {name} must be a number of seconds greater than 0, "
                    f"got {value!r}", conn_id)
            return seconds

        return MySqlEndpoint(
            host=conn.host or "localhost",
            port=int(conn.port or 3306),
            user=conn.login or "root",
            password=conn.password or "",
            database=database or self.database or conn.schema or None,
            ssl=ssl,
            connect_timeout=_seconds("connect_timeout", 10.0) or 10.0,
            read_timeout=_seconds("read_timeout", None),
            write_timeout=_seconds("write_timeout", None),
            charset=extra.get("charset", "utf8mb4"),
        )

    def test_connection(self) -> tuple[bool, str]:
        """The connection form's Test button: one attempt, answered within the connection's
        ``connect_timeout`` (TCP connect, greeting and login together), never the retry window.
        Returns (False, message naming host:port, the account and the cause) on failure."""
        try:
            endpoint = self.get_endpoint()
        except Exception as exc:  # noqa: BLE001 - the form shows the reason instead of a traceback
            return False, str(exc)
        try:
            conn = endpoint.connect_once()
        except pymysql.err.MySQLError as exc:
            return False, describe_connect_error(endpoint, exc)
        version = conn.get_server_info()  # from the server's greeting: no query that could hang
        conn.close()
        if version.startswith("5.5.5-") and "mariadb" in version.lower():
            version = version[len("5.5.5-"):]  # MariaDB's replication-compatibility prefix
        return True, f"connected to {endpoint.host}:{endpoint.port} as {endpoint.user} (server {version})"

    def get_conn(self) -> Any:
        """A pymysql connection in UTC; connection failures retried within the connection window."""
        endpoint = self.get_endpoint()
        return self.retry.call(endpoint.connect, log=self.log.warning)

    def get_uri(self) -> str:
        e = self.get_endpoint()
        from urllib.parse import quote_plus

        return f"mysql://{quote_plus(e.user)}:{quote_plus(e.password)}@{e.host}:{e.port}/{e.database or ''}"
