"""MergeOperator: rebuild each table's replica in MaxCompute as of the run's interval."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_polar_mc.exceptions import IntervalNotReady
from airflow_provider_polar_mc.operators._base import MigrationOperator


class MergeOperator(MigrationOperator):
    """Builds ``merge.replica_name`` (default ``<name>``) for ``tables`` (``["db.table"]``, default all
    selected) from ``_base`` and the ``_log`` partitions up to this run's interval, by the DTS merge rule
    (latest change per primary key by record_id; deleted keys disappear). The SQL runs in MaxCompute.
    The interval's incremental load must be done."""

    template_fields: Sequence[str] = ("spec", "tables")
    ui_color = "#ffe4f0"

    def __init__(self, *, tables: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tables = list(tables) if tables is not None else None

    def execute_migration(self, context: Any) -> list[dict[str, str]]:
        from airflow_provider_polar_mc.core import intervals
        from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
        from airflow_provider_polar_mc.core.replica.merge import MergeTarget, build_replica
        from airflow_provider_polar_mc.core.selection import select_tables
        from airflow_provider_polar_mc.core.source.catalog import describe_selected, list_tables
        from airflow_provider_polar_mc.hooks import resolve
        spec = self.migration_spec()
        if not spec.merge_active:
            self.log.info("merge is not active for migration %s (needs incremental and merge.enabled)", spec.name)
            return []
        start, end = context["data_interval_start"], context["data_interval_end"]
        values = intervals.partition_values(start, end, spec.partition)
        destination = resolve.destination(spec)
        store = MaxComputeCheckpointStore(destination, spec.name)
        if intervals.done(store, end) is None:
            raise IntervalNotReady(
                f"the incremental load of the interval ending {intervals.interval_key(end)} is not done: run it first"
            )
        with resolve.source_endpoint(spec).session(resolve.retry_policy(spec), log=self.log.warning) as conn:
            selections = select_tables(spec, {db: list_tables(conn, db) for db in spec.source.databases}, missing="ignore")
            if self.tables is not None:
                selections = [s for s in selections if s.source_name in set(self.tables)]
            described = describe_selected(conn, [(s.source_database, s.source_table) for s in selections])
        extra = {a.role: a.name for a in spec.additional_columns()}
        done = []
        for s in selections:
            table = described[s.source_name]
            target = MergeTarget(
                base_table=s.base_table,
                log_table=s.log_table,
                replica_table=s.replica_table,
                key_columns=tuple(s.destination_column(k) for k in table.key_columns),
                record_id=extra["record_id"],
                after_flag=extra["after_flag"],
                partition_columns=spec.partition_columns(),
            )
            build_replica(destination, target, values, comment=f"polar-mc {spec.name}: replica of {s.source_name}")
            self.log.info("%s: replica %s rebuilt as of %s", s.source_name, s.replica_table, intervals.interval_key(end))
            done.append({"table": s.replica_table, "as_of": intervals.interval_key(end)})
        return done
