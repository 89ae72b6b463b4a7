"""The source catalog and server facts, read from a real private server."""

from __future__ import annotations

import pytest

from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.source.catalog import describe_tables, list_tables, server_info

pytestmark = pytest.mark.integration


@pytest.fixture
def catalog_db(mysql_server):
    mysql_server.execute(
        "DROP DATABASE IF EXISTS catalog_t",
        "CREATE DATABASE catalog_t",
        "CREATE TABLE catalog_t.with_pk (id BIGINT UNSIGNED PRIMARY KEY, flag TINYINT(1), d DATETIME(6), "
        "  amount DECIMAL(12,2) NOT NULL, note VARCHAR(20) CHARACTER SET utf8mb4)",
        "CREATE TABLE catalog_t.with_unique (a INT NOT NULL, b INT NOT NULL, c INT, UNIQUE KEY ab (a, b), UNIQUE KEY c (c))",
        "CREATE TABLE catalog_t.nullable_unique (a INT, UNIQUE KEY a (a))",
        "CREATE TABLE catalog_t.no_key (a INT, b TEXT)",
        "CREATE TABLE catalog_t.prefix_unique (a VARCHAR(50) NOT NULL, UNIQUE KEY a (a(10)))",
        "CREATE VIEW catalog_t.v AS SELECT * FROM catalog_t.no_key",
    )
    yield MySqlEndpoint(host=mysql_server.host, port=mysql_server.port, user="root")
    mysql_server.execute("DROP DATABASE catalog_t")


def test_tables_columns_and_keys(catalog_db):
    conn = catalog_db.connect()
    assert list_tables(conn, "catalog_t") == ["no_key", "nullable_unique", "prefix_unique", "with_pk", "with_unique"]
    tables = describe_tables(conn, "catalog_t")
    pk = tables["with_pk"]
    assert pk.primary_key == ("id",)
    assert [c.name for c in pk.columns] == ["id", "flag", "d", "amount", "note"]
    assert pk.column("id").unsigned and pk.column("id").data_type == "bigint"
    assert pk.column("flag").column_type.startswith("tinyint(1)")
    assert pk.column("d").datetime_precision == 6
    assert (pk.column("amount").numeric_precision, pk.column("amount").numeric_scale) == (12, 2)
    assert not pk.column("amount").nullable and pk.column("note").character_set == "utf8mb4"
    assert tables["with_unique"].key_columns == ("a", "b")
    assert tables["nullable_unique"].key_columns == ()
    assert tables["no_key"].key_columns == ()
    assert tables["prefix_unique"].key_columns == ()
    assert set(describe_tables(conn, "catalog_t", ["no_key"])) == {"no_key"}
    conn.close()


def test_session_is_utc(catalog_db):
    conn = catalog_db.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@session.time_zone")
        assert cur.fetchone()[0] == "+00:00"
    conn.close()


def test_server_info_reads_binlog_settings(catalog_db, mysql_server):
    info = server_info(catalog_db.connect())
    assert info.log_bin and info.binlog_format == "ROW"
    assert info.binlog_row_image == "FULL" and info.binlog_row_metadata == "FULL"
    assert info.server_id == 1
    assert info.is_mariadb == mysql_server.is_mariadb
    assert info.retention_seconds == 0  # private server: never purged


def test_server_info_on_a_misconfigured_server(mysql_server_factory):
    server = mysql_server_factory(binlog_row_metadata="MINIMAL", binlog_expire_seconds=86400, server_id=7)
    info = server_info(server.connect())
    assert info.binlog_row_metadata == "MINIMAL" and info.retention_seconds == 86400 and info.server_id == 7
    off = mysql_server_factory(log_bin=False)
    assert not server_info(off.connect()).log_bin
