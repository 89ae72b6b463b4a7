"""Every allowed filter function, as the provider renders it, runs on the real server (a function the
grammar allows but MariaDB or MySQL does not know, or renders differently, fails here)."""

from __future__ import annotations

import uuid

import pytest

from airflow_provider_polar_mc.core import sqltext
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.filters import ALLOWED_FUNCTIONS, parse_filter

pytestmark = pytest.mark.integration

SPECIAL_ARGUMENTS = {
    "DATE_ADD": "d, INTERVAL 1 DAY", "DATE_SUB": "d, INTERVAL 1 DAY", "JSON_CONTAINS": "j, j",
    "JSON_CONTAINS_PATH": "j, 'one', '$.a'", "JSON_EXTRACT": "j, '$.a'", "JSON_LENGTH": "j", "JSON_TYPE": "j",
    "JSON_UNQUOTE": "s", "JSON_VALID": "s", "STR_TO_DATE": "s, '%Y'", "DATE_FORMAT": "d, '%Y'",
    "TIME_FORMAT": "d, '%H'", "CONV": "n, 10, 2",
}


def call(name: str) -> str:
    if name in SPECIAL_ARGUMENTS:
        return f"{name}({SPECIAL_ARGUMENTS[name]})"
    fewest = ALLOWED_FUNCTIONS[name][0]
    return f"{name}({', '.join(['n'] * fewest)})"


def test_every_allowed_function_runs_as_rendered(mysql_server):
    db = f"fn_{uuid.uuid4().hex[:6]}"
    mysql_server.execute(f"CREATE DATABASE {db}",
                         f"CREATE TABLE {db}.t (n INT PRIMARY KEY, s VARCHAR(20), d DATETIME, j JSON)",
                         f"INSERT INTO {db}.t VALUES (3, '{{\"a\": 1}}', '2024-05-06 07:08:09', '{{\"a\": 1}}')")
    endpoint = MySqlEndpoint(host=mysql_server.host, port=mysql_server.port, user=mysql_server.user,
                             password=mysql_server.password)
    failures = {}
    try:
        with endpoint.session() as conn, conn.cursor() as cur:
            for name in sorted(ALLOWED_FUNCTIONS):
                condition = parse_filter(f"{call(name)} IS NULL OR n > 0").sql
                try:
                    cur.execute(f"SELECT COUNT(*) FROM {sqltext.quote_mysql_table(db, 't')} WHERE {condition}")
                    assert cur.fetchone()[0] == 1
                except Exception as error:  # noqa: BLE001 - collected, reported together
                    failures[name] = f"{condition}: {error}"
    finally:
        mysql_server.execute(f"DROP DATABASE {db}")
    assert not failures, failures
