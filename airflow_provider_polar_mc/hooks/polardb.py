"""Connection to the PolarDB for MySQL / MySQL source.

Connection type ``polardb_mysql``, default id ``polardb_default``. Extras (all optional):
``ssl`` (dict with ``ca``, ``cert``, ``key``, ``check_hostname``) or the flat ``ssl_ca``/``ssl_cert``/
``ssl_key``; ``connect_timeout``, ``read_timeout``, ``write_timeout`` (seconds); ``charset``
(default utf8mb4). Every session runs with ``time_zone='+00:00'``.
"""

from __future__ import annotations

import json
from typing import Any

from airflow.providers.common.sql.hooks.sql import DbApiHook

from airflow_provider_polar_mc.core.source import MySqlEndpoint, RetryPolicy


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

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": [],
            "relabeling": {"schema": "Database"},
            "placeholders": {
                "extra": json.dumps({"ssl": {"ca": "/path/to/ca.pem"}, "connect_timeout": 10}),
                "host": "pc-xxxx.rwlb.rds.aliyuncs.com",
                "port": "3306",
            },
        }

    def get_endpoint(self, database: str | None = None) -> MySqlEndpoint:
        """The source endpoint described by the Airflow connection (looked up lazily)."""
        conn = self.get_connection(self.get_conn_id())
        extra = conn.extra_dejson
        ssl = extra.get("ssl")
        if isinstance(ssl, str):
            ssl = json.loads(ssl)
        if not ssl:
            flat = {k[4:]: extra[k] for k in ("ssl_ca", "ssl_cert", "ssl_key") if extra.get(k)}
            ssl = flat or None

        def _seconds(name: str, default: float | None) -> float | None:
            value = extra.get(name, default)
            return float(value) if value is not None else None

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

    def get_conn(self) -> Any:
        """A pymysql connection in UTC; connection failures retried within the connection window."""
        endpoint = self.get_endpoint()
        return self.retry.call(endpoint.connect, log=self.log.warning)

    def get_uri(self) -> str:
        e = self.get_endpoint()
        from urllib.parse import quote_plus

        return f"mysql://{quote_plus(e.user)}:{quote_plus(e.password)}@{e.host}:{e.port}/{e.database or ''}"
