"""Full load operators: copy selected tables into `<name>_base`, resumably and exactly once.

Small tables are loaded by :class:`FullLoadOperator` mapped over groups; a table above
``full_load.shard_rows`` by :class:`FullLoadShardOperator` mapped over its shards, then
:class:`FullLoadCommitOperator` (docs/full-load-shards.md). :func:`full_load_plan` decides which is
which. The logic is in ``core/full_load.py``; these only read the spec, resolve connections and log.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_polar_mc.operators._base import (
    MigrationOperator,
    fail_unless_retryable,
    load_spec,
    resume_after_lost_connections,
)

# Airflow's default [core] max_map_length.
DEFAULT_MAX_GROUPS = 1024


class FullLoadOperator(MigrationOperator):
    """Full data migration of ``tables`` (``["db.table", ...]``; all selected tables when None).

    Before reading anything it records the source's binlog coordinate (once per migration) where the
    incremental migration will start. Each table is split into key ranges read in parallel
    (``full_load.parallelism``) and uploaded through one Tunnel session with overwrite; a retry
    resumes the session and uploads only the missing ranges. Progress is logged every few seconds;
    the return value lists rows, bytes and warnings per table.

    For many tables, map it over :func:`full_load_groups`::

        FullLoadOperator.partial(task_id="full_load", spec=SPEC).expand(tables=full_load_groups(SPEC))
    """

    template_fields: Sequence[str] = ("spec", "spec_overrides", "tables")
    ui_color = "#e4ffe9"

    def __init__(self, *, tables: Sequence[str] | None = None, progress_interval: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tables = list(tables) if tables is not None else None
        self.progress_interval = progress_interval

    def execute_migration(self, context: Any) -> list[dict[str, Any]]:
        from airflow_provider_polar_mc import lineage, metrics
        from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
        from airflow_provider_polar_mc.core.full_load import FullLoader, record_snapshot_coordinate
        from airflow_provider_polar_mc.core.incremental import record_snapshot_schemas
        from airflow_provider_polar_mc.core.planning import describe_table_schema, only_tables, plan_migration
        from airflow_provider_polar_mc.hooks import resolve

        spec = self.migration_spec()
        if not {"full", "incremental"} & set(spec.migration_types):
            self.log.info("neither full nor incremental migration is selected in migration %s; nothing to do", spec.name)
            return []
        endpoint = resolve.source_endpoint(spec)
        destination = resolve.destination(spec)
        store = MaxComputeCheckpointStore(destination, spec.name)
        retry = resolve.retry_policy(spec)
        incremental = "incremental" in spec.migration_types
        if incremental:
            c0 = retry.call(lambda: record_snapshot_coordinate(store, endpoint), log=self.log.warning)
            self.log.info("incremental migration starts at the snapshot coordinate %s", c0)
        with endpoint.session(retry, log=self.log.warning) as conn:
            plans = only_tables(spec, plan_migration(spec, conn), self.tables)
            if incremental:
                # The schemas the first interval's binlog decoding starts from (taken before any read).
                record_snapshot_schemas(
                    store,
                    {
                        p.selection.source_name: describe_table_schema(conn, p.selection.source_database, p.selection.source_table)
                        for p in plans
                    },
                )
        if "full" not in spec.migration_types:
            self.log.info("full data migration is not selected: recorded where incremental migration starts")
            return []
        loader = FullLoader.for_spec(spec, endpoint, destination, store, log=self.log.info, progress_interval=self.progress_interval)
        self.log.info("loading %d tables", len(plans))
        results = [loader.load_table(plan).to_dict() for plan in plans]
        metrics.full_load(spec.name, results)
        _emit_bases(context, self.outlets, spec, endpoint, destination, results)
        lineage.record_loads(self.lineage, endpoint.host, endpoint.port, destination.project, plans, results)
        return results


class FullLoadShardOperator(MigrationOperator):
    """Loads one shard of a big table (a descriptor from :func:`full_load_plan`'s ``shards``): uploads
    the blocks of its key ranges that the table's one Tunnel session lacks, without committing. A
    retry after a crash re-attaches and uploads only the missing ones; a table already done is
    skipped. Map it over the shards::

        FullLoadShardOperator.partial(task_id="full_load_shard", spec=SPEC).expand(shard=shards)
    """

    template_fields: Sequence[str] = ("spec", "spec_overrides", "shard")
    ui_color = "#c9f2d3"

    def __init__(self, *, shard: Mapping[str, Any], progress_interval: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shard = shard
        self.progress_interval = progress_interval

    def execute_migration(self, context: Any) -> dict[str, Any]:
        from airflow_provider_polar_mc import lineage, metrics
        from airflow_provider_polar_mc.core.full_load import FullLoadShard

        shard = FullLoadShard.from_dict(dict(self.shard))
        spec = self.migration_spec()
        loader, (plan,) = _loader_and_plans(spec, [shard.table], self.log, self.progress_interval)
        result = loader.load_shard(plan, shard).to_dict()
        metrics.full_load(spec.name, [result])  # the rows and bytes this shard uploaded
        if not result.get("skipped"):  # uploaded, not committed: the commit task reports the rows
            self.lineage.read(lineage.source_dataset(loader.endpoint.host, loader.endpoint.port, plan))
            self.lineage.wrote(lineage.maxcompute_dataset(loader.destination.project, plan.base.name, plan.base.columns))
        return result


class FullLoadCommitOperator(MigrationOperator):
    """Commits the upload session of every table that ``shards`` belong to, once, then marks each table
    done; fails naming the shards and ranges whose blocks are missing. Nothing to do without shards.
    Runs after every shard task (trigger rule ``none_failed``: an empty shard list leaves the shard
    task skipped, and the commit then succeeds doing nothing)."""

    template_fields: Sequence[str] = ("spec", "spec_overrides", "shards")
    ui_color = "#a6e3b6"

    def __init__(self, *, shards: Sequence[Mapping[str, Any]] | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "none_failed")
        super().__init__(**kwargs)
        self.shards = shards

    def execute_migration(self, context: Any) -> list[dict[str, Any]]:
        from airflow_provider_polar_mc import lineage

        tables = sorted({str(s["table"]) for s in self.shards or []})
        if not tables:
            self.log.info("no table is sharded: nothing to commit")
            return []
        spec = self.migration_spec()
        loader, plans = _loader_and_plans(spec, tables, self.log)
        results = [loader.commit_sharded(plan).to_dict() for plan in plans]
        _emit_bases(context, self.outlets, spec, loader.endpoint, loader.destination, results)
        lineage.record_loads(self.lineage, loader.endpoint.host, loader.endpoint.port, loader.destination.project, plans,
                             results)  # fmt: skip
        return results


def _emit_bases(context: Any, outlets: Any, spec: Any, endpoint: Any, destination: Any, results: list[dict[str, Any]]) -> None:
    """Asset events for the ``_base`` tables this task completed (README "Assets")."""
    from airflow_provider_polar_mc import assets

    assets.emit(context, outlets, spec.name, "base", destination.project, (
        (r["table"], {"source": assets.source_uri(endpoint.host, endpoint.port, r["source"]), "rows": r["rows"]})
        for r in results if not r.get("skipped")))  # fmt: skip


def _loader_and_plans(spec: Any, tables: list[str], log: Any, progress_interval: float = 5.0) -> tuple[Any, list[Any]]:
    """A loader for the spec and the plans of ``tables`` (``db.table``), read from the source."""
    from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
    from airflow_provider_polar_mc.core.full_load import FullLoader
    from airflow_provider_polar_mc.core.planning import plan_selected
    from airflow_provider_polar_mc.hooks import resolve

    endpoint = resolve.source_endpoint(spec)
    destination = resolve.destination(spec)
    plans = plan_selected(spec, endpoint, tables=tables, retry=resolve.retry_policy(spec), log=log.warning)
    store = MaxComputeCheckpointStore(destination, spec.name)
    return FullLoader.for_spec(spec, endpoint, destination, store, log=log.info, progress_interval=progress_interval), plans


def full_load_plan(
    spec: Any, max_groups: int = DEFAULT_MAX_GROUPS, log: Any = None, tables: Sequence[str] | None = None
) -> dict[str, list[Any]]:
    """Who loads what, for the setup DAG's mapped tasks: ``groups`` (lists of ``db.table``, for
    :class:`FullLoadOperator`'s ``expand(tables=...)``), ``shards`` (descriptors, for
    :class:`FullLoadShardOperator`'s ``expand(shard=...)``) and ``resync`` (``db.table``, for the
    resync DAG). Big tables' plans, sessions and shards are recorded here, after C0, before any shard
    runs (:func:`core.full_load.plan_full_load`). With ``tables`` (the trigger form's choice) only
    those: a table already loaded, or any once the incremental chain has started, is reloaded through
    the resync instead (:func:`core.resync.reloads`), so its ``_base`` is replaced exactly once and
    the chain stays correct."""
    import logging

    from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
    from airflow_provider_polar_mc.exceptions import PolarMcError
    from airflow_provider_polar_mc.hooks import resolve

    logger = log or logging.getLogger(__name__)
    try:
        migration = load_spec(spec)
        destination = resolve.destination(migration)
        endpoint = resolve.source_endpoint(migration)
        store = MaxComputeCheckpointStore(destination, migration.name)
        retry = resolve.retry_policy(migration)
        return resume_after_lost_connections(lambda: _plan(migration, endpoint, destination, store, retry, tables,
                                                           max_groups, logger), migration, "task full_load_plan",
                                             logger.warning)  # fmt: skip
    except PolarMcError as exc:
        fail_unless_retryable(exc)
        raise  # not reached: fail_unless_retryable always raises


def _plan(migration, endpoint, destination, store, retry, tables, max_groups, logger) -> dict[str, Any]:
    """:func:`full_load_plan`'s work (may run again after a lost connection: every step is recorded)."""
    from airflow_provider_polar_mc.core.full_load import forget_loads, plan_full_load
    from airflow_provider_polar_mc.core.planning import only_tables, plan_selected
    from airflow_provider_polar_mc.core.resync import reloads

    plans, resync = None, []
    if tables:
        plans, resync = reloads(migration, store, only_tables(migration, plan_selected(
            migration, endpoint, retry=retry, log=logger.warning), tables))  # fmt: skip
        # Without incremental migration nothing is resynced: a loaded table is loaded again.
        again = forget_loads(store, plans) if "incremental" not in migration.migration_types else []
        logger.info("this run loads %s%s%s", [p.selection.source_name for p in plans] or "no table",
                    f" (again: {again})" if again else "",
                    f"; reloads through the resync: {resync}" if resync else "")  # fmt: skip
    plan = plan_full_load(migration, endpoint, destination, store, max_groups=max_groups, plans=plans, retry=retry,
                          log=logger.info)  # fmt: skip
    return {"groups": plan.groups, "shards": [s.to_dict() for s in plan.shards], "resync": resync}


def full_load_groups(spec: Any, max_groups: int = DEFAULT_MAX_GROUPS) -> list[list[str]]:
    """The selected tables in at most ``max_groups`` groups balanced by size, for ``expand(tables=...)``
    (every table in a group, none sharded; the setup DAG uses :func:`full_load_plan`)."""
    from airflow_provider_polar_mc.core.full_load import group_tables
    from airflow_provider_polar_mc.core.planning import plan_selected
    from airflow_provider_polar_mc.hooks import resolve

    migration = load_spec(spec)
    plans = plan_selected(migration, resolve.source_endpoint(migration), retry=resolve.retry_policy(migration))
    return group_tables({p.selection.source_name: p.source.data_bytes for p in plans}, max_groups)
