"""Turn a migration spec's connection ids into the core's endpoints (the only place that does).

The source comes from :class:`PolarDBMySqlHook`; MaxCompute from the alibaba provider's
``MaxComputeHook`` (its ``maxcompute`` connection: extras ``access_key_id``, ``access_key_secret``,
``project``, ``endpoint``). Works inside tasks and outside them (``polar-mc`` command line), where
connections come from ``AIRFLOW_CONN_*`` variables or any configured secrets backend.
"""

from __future__ import annotations

import difflib
import json
import os
import re

import pymysql
from airflow.providers.alibaba.cloud.hooks.maxcompute import MaxComputeHook
from airflow.sdk.exceptions import AirflowNotFoundException

from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint, describe_connect_error
from airflow_provider_polar_mc.core.retry import RetryPolicy
from airflow_provider_polar_mc.exceptions import ConnectionNotUsable, SourceUnreachable
from airflow_provider_polar_mc.hooks.polardb import PolarDBMySqlHook
from airflow_provider_polar_mc.spec import MigrationSpec

_ENV_PREFIX = "AIRFLOW_CONN_"
_EXAMPLES = {
    "polardb_mysql": '{"conn_type": "polardb_mysql", "host": "...", "port": 3306, "login": "...", "password": "..."}',
    "maxcompute": '{"conn_type": "maxcompute", "extra": {"access_key_id": "...", "access_key_secret": "...", '
                  '"project": "...", "endpoint": "..."}}',
}


def retry_policy(spec: MigrationSpec) -> RetryPolicy:
    return RetryPolicy(
        connection_seconds=spec.retry.connection_minutes * 60,
        other_seconds=spec.retry.other_minutes * 60,
    )


def source_hook(spec: MigrationSpec) -> PolarDBMySqlHook:
    return PolarDBMySqlHook(polardb_conn_id=spec.source.conn_id, retry=retry_policy(spec))


def source_endpoint(spec: MigrationSpec) -> MySqlEndpoint:
    return source_hook(spec).get_endpoint()


def connect_source(spec: MigrationSpec) -> pymysql.Connection:
    """One attempt at a source session (the command line): answers within the connection's
    ``connect_timeout``; a failure raises ``SourceUnreachable`` naming host:port, account and cause."""
    endpoint = source_endpoint(spec)
    try:
        return endpoint.connect_once()
    except pymysql.err.MySQLError as exc:
        message = f"source connection {spec.source.conn_id!r}: {describe_connect_error(endpoint, exc)}"
        raise SourceUnreachable(message, endpoint.host, endpoint.port) from None


def check_connections(spec: MigrationSpec, *, destination: bool = True) -> None:
    """Look up the spec's connections without connecting, so the command line can say what is wrong
    with them (``ConnectionNotUsable``: not defined, an ``AIRFLOW_CONN_*`` variable that cannot be read,
    a bad extra) instead of a traceback. Operators keep Airflow's own lookup errors (and retries)."""
    checks = [(spec.source.conn_id, "source.conn_id", "polardb_mysql")]
    if destination:
        checks.append((spec.destination.conn_id, "destination.conn_id", "maxcompute"))
    for conn_id, field, conn_type in checks:
        try:
            PolarDBMySqlHook.get_connection(conn_id)
        except AirflowNotFoundException:
            raise connection_lookup_error(conn_id, field, conn_type) from None
    source_endpoint(spec)  # validates the source's extras (ConnectionNotUsable)


def connection_lookup_error(conn_id: str, field: str, conn_type: str) -> ConnectionNotUsable:
    """Why ``conn_id`` could not be looked up, with the fix. Airflow says "isn't defined" even when
    an ``AIRFLOW_CONN_<ID>`` variable exists but cannot be parsed; this says which, and where. The
    variable's value is never shown (it holds the password)."""
    variable = _ENV_PREFIX + conn_id.upper()
    value = os.environ.get(variable)
    if value is not None and value.strip():
        reason = _unparsable_reason(conn_id, value)
        if reason:
            return ConnectionNotUsable(
                f"connection {conn_id!r} ({field} in the spec): the environment variable {variable} is set but "
                f"{reason}. Fix the variable (its value is not shown: it may hold a password); JSON looks like "
                f"{_EXAMPLES[conn_type]}", conn_id)
    similar = difflib.get_close_matches(variable, [name for name in os.environ if name.startswith(_ENV_PREFIX)],
                                        n=1, cutoff=0.8)
    hint = f" (there is a variable {similar[0]}: a typo?)" if similar else ""
    return ConnectionNotUsable(
        f"connection {conn_id!r} ({field} in the spec) is not defined{hint}. Define it: set the environment "
        f"variable {variable} to its JSON, e.g. {_EXAMPLES[conn_type]}, or a URI; or add it to Airflow "
        f"(`airflow connections add {conn_id} ...`) or your secrets backend; or change {field}", conn_id)


def _unparsable_reason(conn_id: str, value: str) -> str | None:
    """What is wrong with a connection variable's value, the way Airflow parses it (JSON when it
    starts with '{', else a URI); None when it parses."""
    from airflow.sdk import Connection

    text = value.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            where = f"line {error.lineno}, column {error.colno}"
            problem = f"{error.msg} {where}" if error.msg.endswith(" at") else f"{error.msg} at {where}"
            return (f"its JSON is invalid: {problem} (character {error.pos + 1} of {len(text)}: truncated or "
                    "badly quoted?)")
        if not isinstance(document, dict):
            return "its JSON is not an object"
        try:
            Connection.from_json(text, conn_id=conn_id)
        except TypeError as error:
            unexpected = re.search(r"unexpected keyword argument '([^']+)'", str(error))
            if unexpected:
                return (f"its JSON has an unknown key {unexpected.group(1)!r} (allowed: conn_type, host, port, "
                        "login, password, schema, extra, description)")
            return f"its JSON is not a connection ({type(error).__name__})"
        except Exception as error:  # noqa: BLE001 - reported, value redacted
            return f"its JSON is not a connection: {str(error).replace(text, '<value>')}"
        return None
    try:
        Connection.from_uri(text, conn_id=conn_id)
    except Exception as error:  # noqa: BLE001 - reported, value redacted
        return (f"its URI is invalid: {str(error).replace(text, '<the URI>')} (expected e.g. "
                "polardb-mysql://login:password@host:3306, with special characters in the password "
                "percent-encoded)")
    return None


def destination(spec: MigrationSpec) -> MaxComputeDestination:
    hook = MaxComputeHook(maxcompute_conn_id=spec.destination.conn_id)
    project = spec.destination.project or hook.project
    client = hook.get_client(project=project, endpoint=hook.endpoint)
    return MaxComputeDestination(client, project, retry_policy(spec))
