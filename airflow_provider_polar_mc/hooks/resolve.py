"""Turn a migration spec's connection ids into the core's endpoints (the only place that does).

The source comes from :class:`PolarDBMySqlHook`; MaxCompute from the alibaba provider's
``MaxComputeHook`` (its ``maxcompute`` connection: extras ``access_key_id``, ``access_key_secret``,
``project``, ``endpoint``). Works inside tasks and outside them (``polar-mc`` command line), where
connections come from ``AIRFLOW_CONN_*`` variables or any configured secrets backend.
"""

from __future__ import annotations

from airflow.providers.alibaba.cloud.hooks.maxcompute import MaxComputeHook

from airflow_provider_polar_mc.core.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.source import MySqlEndpoint, RetryPolicy
from airflow_provider_polar_mc.hooks.polardb import PolarDBMySqlHook
from airflow_provider_polar_mc.spec import MigrationSpec


def retry_policy(spec: MigrationSpec) -> RetryPolicy:
    return RetryPolicy(
        connection_seconds=spec.retry.connection_minutes * 60,
        other_seconds=spec.retry.other_minutes * 60,
    )


def source_hook(spec: MigrationSpec) -> PolarDBMySqlHook:
    return PolarDBMySqlHook(polardb_conn_id=spec.source.conn_id, retry=retry_policy(spec))


def source_endpoint(spec: MigrationSpec) -> MySqlEndpoint:
    return source_hook(spec).get_endpoint()


def destination(spec: MigrationSpec) -> MaxComputeDestination:
    hook = MaxComputeHook(maxcompute_conn_id=spec.destination.conn_id)
    project = spec.destination.project or hook.project
    client = hook.get_client(project=project, endpoint=hook.endpoint)
    return MaxComputeDestination(client, project)
