"""The source catalog: tables, columns, keys and server settings, read from information_schema.

Queries are batched per database (one for columns, one for keys) so that describing thousands of
tables costs a handful of round trips. Behaviour shared by MySQL 8, PolarDB for MySQL and MariaDB
is used; where they differ (server identity, binlog variables, retention) both spellings are read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import pymysql

from airflow_provider_polar_mc.core.model import ServerInfo, SourceColumn, SourceTable


def _rows(conn: pymysql.Connection, sql: str, args: Sequence[Any] | None = None) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def list_databases(conn: pymysql.Connection, include_system: bool = False) -> list[str]:
    """Databases the account can see (information_schema hides the others), in name order."""
    system = () if include_system else ("information_schema", "mysql", "performance_schema", "sys")
    rows = _rows(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
    return [r[0] for r in rows if r[0] not in system]


def list_tables(conn: pymysql.Connection, database: str) -> list[str]:
    """Base tables of a database (views are not migrated), in name order."""
    return [
        r[0]
        for r in _rows(
            conn,
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'"
            " ORDER BY TABLE_NAME",
            (database,),
        )
    ]


def describe_tables(
    conn: pymysql.Connection, database: str, names: Iterable[str] | None = None
) -> dict[str, SourceTable]:
    """Describe the named base tables of ``database`` (all when ``names`` is None), keyed by table name."""
    wanted = None if names is None else set(names)
    table_rows = _rows(
        conn,
        "SELECT TABLE_NAME, ENGINE, COALESCE(TABLE_ROWS, 0), COALESCE(DATA_LENGTH, 0), TABLE_COLLATION"
        " FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_TYPE = 'BASE TABLE'",
        (database,),
    )
    column_rows = _rows(
        conn,
        "SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, LOWER(DATA_TYPE), COLUMN_TYPE, IS_NULLABLE,"
        " NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, CHARACTER_SET_NAME, EXTRA"
        " FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION",
        (database,),
    )
    key_rows = _rows(
        conn,
        "SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, NULLABLE, SUB_PART"
        " FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        (database,),
    )
    json_columns = _mariadb_json_columns(conn, database)
    columns: dict[str, list[SourceColumn]] = {}
    for t, name, pos, dtype, ctype, nullable, prec, scale, dprec, charset, extra in column_rows:
        if (t, name.lower()) in json_columns:
            dtype = "json"
        columns.setdefault(t, []).append(
            SourceColumn(
                name=name,
                ordinal=int(pos),
                data_type=dtype,
                column_type=ctype,
                nullable=nullable == "YES",
                numeric_precision=int(prec) if prec is not None else None,
                numeric_scale=int(scale) if scale is not None else None,
                datetime_precision=int(dprec) if dprec is not None else None,
                character_set=charset,
                generated="GENERATED" in (extra or "").upper(),
            )
        )
    indexes: dict[str, dict[str, list[tuple[str, bool, bool]]]] = {}
    for t, index, non_unique, _seq, col, nullable, sub_part in key_rows:
        if int(non_unique) == 0:
            # A prefix index (SUB_PART) does not make the whole column unique.
            indexes.setdefault(t, {}).setdefault(index, []).append((col, nullable == "YES", sub_part is not None))
    result: dict[str, SourceTable] = {}
    for t, engine, est_rows, data_len, collation in table_rows:
        if wanted is not None and t not in wanted:
            continue
        pk: tuple[str, ...] = ()
        uniques: list[tuple[str, ...]] = []
        for index, cols in sorted(indexes.get(t, {}).items()):
            if any(partial for _, _, partial in cols):
                continue
            names_ = tuple(c for c, _, _ in cols)
            if index == "PRIMARY":
                pk = names_
            elif not any(nullable for _, nullable, _ in cols):
                uniques.append(names_)
        result[t] = SourceTable(
            database=database,
            name=t,
            columns=tuple(columns.get(t, [])),
            primary_key=pk,
            not_null_unique_keys=tuple(sorted(uniques, key=len)),
            engine=engine,
            estimated_rows=int(est_rows),
            data_bytes=int(data_len),
            charset=(collation or "").split("_")[0] or None,
        )
    return result


def _mariadb_json_columns(conn: pymysql.Connection, database: str) -> set[tuple[str, str]]:
    """MariaDB's JSON is LONGTEXT with a ``json_valid(col)`` check constraint: find those columns so they
    map (and convert) as JSON. MySQL reports JSON as its own DATA_TYPE and has no TABLE_NAME here."""
    try:
        rows = _rows(
            conn,
            "SELECT TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = %s",
            (database,),
        )
    except pymysql.err.MySQLError:
        return set()
    found: set[tuple[str, str]] = set()
    for table, clause in rows:
        m = re.fullmatch(r"\s*json_valid\(`?([^`()]+)`?\)\s*", clause or "", re.IGNORECASE)
        if m:
            found.add((table, m.group(1).lower()))
    return found


def _variables(conn: pymysql.Connection, names: Iterable[str]) -> dict[str, Any]:
    names = list(names)
    marks = ", ".join(["%s"] * len(names))
    rows = _rows(conn, f"SHOW GLOBAL VARIABLES WHERE Variable_name IN ({marks})", names)
    return {r[0].lower(): r[1] for r in rows}


def server_info(conn: pymysql.Connection) -> ServerInfo:
    v = _variables(
        conn,
        [
            "version",
            "version_comment",
            "server_id",
            "server_uuid",
            "log_bin",
            "binlog_format",
            "binlog_row_image",
            "binlog_row_metadata",
            "binlog_row_value_options",
            "binlog_expire_logs_seconds",
            "expire_logs_days",
            "gtid_mode",
            "loose_polar_log_bin",
            "polar_version",
        ],
    )
    version = str(v.get("version", ""))
    comment = str(v.get("version_comment", ""))
    is_mariadb = "mariadb" in version.lower() or "mariadb" in comment.lower()
    is_polardb = "polar" in comment.lower() or "polar_version" in v
    retention: int | None = None
    seconds = v.get("binlog_expire_logs_seconds")
    days = v.get("expire_logs_days")
    # MySQL 8 reports both; binlog_expire_logs_seconds wins when non-zero. MariaDB >= 10.6 has both too.
    if seconds not in (None, "") and int(float(seconds)) > 0:
        retention = int(float(seconds))
    elif days not in (None, "") and float(days) > 0:
        retention = int(float(days) * 86400)
    elif seconds is not None or days is not None:
        retention = 0
    return ServerInfo(
        version=version,
        is_mariadb=is_mariadb,
        is_polardb=is_polardb,
        server_id=int(v.get("server_id") or 0),
        server_uuid=v.get("server_uuid") or None,
        log_bin=str(v.get("log_bin", "OFF")).upper() in ("ON", "1"),
        binlog_format=v.get("binlog_format"),
        binlog_row_image=v.get("binlog_row_image"),
        binlog_row_metadata=v.get("binlog_row_metadata"),
        retention_seconds=retention,
        gtid_mode=v.get("gtid_mode"),
        variables=v,
    )


def describe_selected(conn: pymysql.Connection, tables: Iterable[tuple[str, str]]) -> dict[str, SourceTable]:
    """Describe ``(database, table)`` pairs with one catalog round trip per database; keyed ``db.table``.
    Tables that do not exist (or the account cannot see) are absent from the result."""
    by_database: dict[str, list[str]] = {}
    for database, table in tables:
        by_database.setdefault(database, []).append(table)
    described: dict[str, SourceTable] = {}
    for database, names in by_database.items():
        described.update({f"{database}.{n}": t for n, t in describe_tables(conn, database, names).items()})
    return described


def column_collations(conn: pymysql.Connection, database: str, table: str) -> dict[str, str]:
    """Column name -> collation for the table's columns that have one."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS"
            " WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND COLLATION_NAME IS NOT NULL",
            (database, table),
        )
        return {name: collation for name, collation in cur.fetchall()}
