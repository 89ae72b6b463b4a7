"""PolarDBMySqlHook: connection extras, UTC sessions and the retry windows, against a real server."""

from __future__ import annotations

import json
import time

import pymysql
import pytest

from airflow_provider_polar_mc.core.retry import RetryPolicy
from airflow_provider_polar_mc.hooks.polardb import PolarDBMySqlHook

pytestmark = pytest.mark.integration


def _conn_env(monkeypatch, conn_id: str, port: int, extra: dict | None = None) -> None:
    uri = {"conn_type": "polardb_mysql", "host": "127.0.0.1", "port": port, "login": "root", "schema": "mysql"}
    if extra:
        uri["extra"] = extra
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(uri))


def test_hook_connects_in_utc_with_extras(monkeypatch, mysql_server):
    _conn_env(monkeypatch, "polar_test", mysql_server.port, {"connect_timeout": 3, "read_timeout": 30})
    hook = PolarDBMySqlHook(polardb_conn_id="polar_test")
    endpoint = hook.get_endpoint()
    assert (endpoint.host, endpoint.port, endpoint.database) == ("127.0.0.1", mysql_server.port, "mysql")
    assert endpoint.connect_timeout == 3 and endpoint.read_timeout == 30
    assert hook.get_first("SELECT @@session.time_zone, DATABASE()") == ("+00:00", "mysql")


def test_ssl_extras_are_read(monkeypatch):
    _conn_env(monkeypatch, "polar_ssl", 3306, {"ssl_ca": "/etc/ca.pem", "ssl_cert": "/etc/c.pem"})
    endpoint = PolarDBMySqlHook(polardb_conn_id="polar_ssl").get_endpoint()
    assert endpoint.ssl == {"ca": "/etc/ca.pem", "cert": "/etc/c.pem"}
    assert endpoint.pymysql_kwargs()["ssl"] == {"ca": "/etc/ca.pem", "cert": "/etc/c.pem"}


def test_connection_errors_are_retried_within_the_window_then_raised(monkeypatch):
    from airflow_provider_polar_mc.sandbox.mysql import free_port

    _conn_env(monkeypatch, "polar_down", free_port())
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    policy = RetryPolicy(connection_seconds=0.5, other_seconds=0.1, initial_backoff=0.05, max_backoff=0.1)
    hook = PolarDBMySqlHook(polardb_conn_id="polar_down", retry=policy)
    started = time.monotonic()
    with pytest.raises(pymysql.err.OperationalError):
        policy.call(hook.get_endpoint().connect, sleep=sleep)
    assert len(sleeps) >= 2 and 0.4 <= time.monotonic() - started < 5


def test_statement_errors_are_not_retried(mysql_server):
    calls = []

    def bad():
        calls.append(1)
        return mysql_server.execute("SELECT * FROM no_such_db.no_such_table")

    with pytest.raises(pymysql.err.ProgrammingError):
        RetryPolicy().call(bad)
    assert calls == [1]
