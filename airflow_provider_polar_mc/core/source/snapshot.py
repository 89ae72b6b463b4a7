"""The snapshot reader: one primary-key range of a source table, read and converted to Arrow.

Ranges (:mod:`~airflow_provider_polar_mc.core.source.chunking`) are read by connectorx (Rust, straight
into Arrow) through the typed projection of :mod:`~airflow_provider_polar_mc.core.values`, in a UTC
session, and converted into the destination's Arrow schema: the same values the binlog path produces.
The full load (``core/full_load.py``) decides which ranges to read and uploads them. connectorx
reports every failure as a ``RuntimeError`` with the driver's text; a lost or refused connection is
raised as ``ConnectionError`` so that the retry windows (core/retry.py) apply to it.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import connectorx
import pyarrow as pa

from airflow_provider_polar_mc.core import sqltext
from airflow_provider_polar_mc.core.endpoint import READ_SESSION_STATEMENTS, MySqlEndpoint
from airflow_provider_polar_mc.core.model import TablePlan
from airflow_provider_polar_mc.core.source.chunking import KeyRange, range_predicate
from airflow_provider_polar_mc.core.throttle import Throttle
from airflow_provider_polar_mc.core.values import (
    convert_snapshot_array,
    snapshot_alias,
    snapshot_select_expression,
)

# connectorx's (and its MySQL driver's and pool's) words for a connection that failed, not a statement.
_CONNECTION_FAILURE = re.compile(
    r"connection (refused|reset|closed|aborted)|broken pipe|timed out waiting for connection|unexpected eof|"
    r"lost connection|server has gone away|os error|io ?error|can't connect",
    re.IGNORECASE,
)


def connectorx_uri(endpoint: MySqlEndpoint) -> str:
    user = urllib.parse.quote(endpoint.user, safe="")
    password = urllib.parse.quote(endpoint.password, safe="")
    auth = f"{user}:{password}" if endpoint.password else user
    uri = f"mysql://{auth}@{endpoint.host}:{endpoint.port}/{endpoint.database or ''}"
    if endpoint.ssl:
        uri += "?ssl-mode=required"
    return uri


def read_snapshot_range(
    uri: str, literal: Callable[[Any], str], throttle: Throttle, plan: TablePlan, r: KeyRange
) -> tuple[pa.Table, dict[str, int]]:
    """Read one key range (``uri`` from :func:`connectorx_uri`, ``literal`` from
    :func:`~airflow_provider_polar_mc.core.source.chunking.sql_literal`) and convert it to the
    destination's Arrow schema; returns the table and its conversion warnings per ``kind:column``."""
    sel = plan.selection
    where = range_predicate(plan.source.key_columns, r, literal)
    if sel.filter:
        where = f"({where}) AND {sel.filter_sql}"
    projection = ", ".join(snapshot_select_expression(c) for c in plan.columns)
    sql = f"SELECT {projection} FROM {sqltext.quote_mysql_table(sel.source_database, sel.source_table)} WHERE {where}"
    throttle.before_query()
    try:
        raw = connectorx.read_sql(uri, sql, return_type="arrow", pre_execution_query=list(READ_SESSION_STATEMENTS))
    except RuntimeError as exc:
        if _CONNECTION_FAILURE.search(str(exc)):
            raise ConnectionError(f"reading {sel.source_database}.{sel.source_table}: {exc}") from exc
        raise
    arrays, fields, warnings = [], [], {}
    for c in plan.columns:
        converted = convert_snapshot_array(c, raw.column(snapshot_alias(c)))
        arrays.append(converted.array)
        fields.append(pa.field(c.destination, converted.array.type))
        for k, v in converted.warnings.items():
            name = f"{k}:{c.source.name}"
            warnings[name] = warnings.get(name, 0) + v
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    throttle.after_read(table.num_rows, raw.nbytes)
    return table, warnings
