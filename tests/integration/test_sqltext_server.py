"""What the SQL-text layer writes means the same on a real server whatever its sql_mode: hostile names
create and find the right objects, literals come back as the values they were made from."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest

from airflow_provider_polar_mc.core import sqltext
from tests.unit.test_sqltext import HOSTILE_NAMES

pytestmark = pytest.mark.integration

SQL_MODES = ["", "NO_BACKSLASH_ESCAPES", "ANSI_QUOTES", "ANSI", "NO_BACKSLASH_ESCAPES,ANSI_QUOTES,PIPES_AS_CONCAT"]


@pytest.mark.parametrize("sql_mode", SQL_MODES)
def test_names_and_literals_round_trip(mysql_server, sql_mode):
    conn = mysql_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = %s", (sql_mode,))
            database = "sqltext `db` #1"
            cur.execute(f"DROP DATABASE IF EXISTS {sqltext.quote_mysql_name(database)}")
            cur.execute(f"CREATE DATABASE {sqltext.quote_mysql_name(database)}")
            for name in HOSTILE_NAMES:
                table = sqltext.quote_mysql_table(database, name)
                cur.execute(f"CREATE TABLE {table} ({sqltext.quote_mysql_name(name)} VARCHAR(200) PRIMARY KEY)")
                value = f"{name} ' \\' OR 1=1 -- #"
                cur.execute(f"INSERT INTO {table} VALUES ({sqltext.mysql_literal(value)})")
                cur.execute(f"SELECT {sqltext.quote_mysql_name(name)} FROM {table}")
                assert cur.fetchall() == ((value,),)
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (database,))
            assert sorted(row[0] for row in cur.fetchall()) == sorted(HOSTILE_NAMES)
            values = [None, 0, -(2**63), 2**64 - 1, decimal.Decimal("-12345678901234567890.123456789"), 1.5e-300,
                      b"\x00\x01'\\", "", "名前 é \U0001F600", dt.date(1000, 1, 1),
                      dt.datetime(9999, 12, 31, 23, 59, 59, 999999), dt.timedelta(hours=-838, minutes=-59)]
            for value in values:
                cur.execute(f"SELECT {sqltext.mysql_literal(value)}")
                back = cur.fetchone()[0]
                if isinstance(value, dt.timedelta):
                    assert back == value
                elif isinstance(value, (bytes, str)):
                    assert (back.decode("utf-8") if isinstance(back, bytes) and isinstance(value, str) else back) == value
                else:
                    assert back == value, (value, back)
            cur.execute(f"DROP DATABASE {sqltext.quote_mysql_name(database)}")
    finally:
        conn.close()
