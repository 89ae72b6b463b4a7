"""FullLoadOperator: copy selected tables into `<name>_base`, resumably and exactly once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_polar_mc.operators._base import MigrationOperator, load_spec

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

    template_fields: Sequence[str] = ("spec", "tables")
    ui_color = "#e4ffe9"

    def __init__(self, *, tables: Sequence[str] | None = None, progress_interval: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tables = list(tables) if tables is not None else None
        self.progress_interval = progress_interval

    def execute_migration(self, context: Any) -> list[dict[str, Any]]:
        from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
        from airflow_provider_polar_mc.core.full_load import FullLoader, record_snapshot_coordinate
        from airflow_provider_polar_mc.core.incremental import record_snapshot_schemas
        from airflow_provider_polar_mc.core.planning import describe_table_schema, only_tables, plan_migration
        from airflow_provider_polar_mc.core.throttle import Throttle
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
        throttle = Throttle(
            rows_per_s=spec.throttle.full.rows_per_s,
            mb_per_s=spec.throttle.full.mb_per_s,
            queries_per_s=spec.throttle.full.source_qps,
        )
        loader = FullLoader(
            endpoint,
            destination,
            store,
            chunk_rows=spec.full_load.chunk_rows,
            parallelism=spec.full_load.parallelism,
            throttle=throttle,
            log=self.log.info,
            progress_interval=self.progress_interval,
        )
        self.log.info("loading %d tables", len(plans))
        return [loader.load_table(plan).to_dict() for plan in plans]


def full_load_groups(spec: Any, max_groups: int = DEFAULT_MAX_GROUPS) -> list[list[str]]:
    """The selected tables in at most ``max_groups`` groups balanced by size, for ``expand(tables=...)``."""
    from airflow_provider_polar_mc.core.full_load import group_tables
    from airflow_provider_polar_mc.core.planning import plan_selected
    from airflow_provider_polar_mc.hooks import resolve

    migration = load_spec(spec)
    plans = plan_selected(migration, resolve.source_endpoint(migration), retry=resolve.retry_policy(migration))
    return group_tables({p.selection.source_name: p.source.data_bytes for p in plans}, max_groups)
