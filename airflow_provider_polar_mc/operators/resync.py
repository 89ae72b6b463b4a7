"""ResyncOperator: load tables' ``_base`` again at a new binlog coordinate while the other tables go on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_polar_mc.exceptions import ConfigError
from airflow_provider_polar_mc.operators._base import MigrationOperator


class ResyncOperator(MigrationOperator):
    """Resynchronises ``tables`` (``["db.table"]``; empty: every table whose resync an incremental batch
    requested, or that an earlier attempt left unfinished): each is described again, its MaxCompute
    tables made to take the new schema, and its ``_base`` loaded again (a new generation) at a new
    coordinate; the incremental batches read it from there and the next merge rebuilds its replica
    (``core/resync.py``, docs/schema-changes.md). Resumable: a retry goes on where the last attempt
    stopped. Returns one summary per table (generation, coordinate, rows)."""

    template_fields: Sequence[str] = ("spec", "spec_overrides", "tables")
    ui_color = "#fff4d6"

    def __init__(self, *, tables: Sequence[str] | str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # A list, or a template rendering to one (the resync DAG renders its Param natively).
        self.tables = tables

    def execute_migration(self, context: Any) -> list[dict[str, Any]]:
        from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
        from airflow_provider_polar_mc.core.resync import TableResync, requested_resyncs
        from airflow_provider_polar_mc.hooks import resolve

        spec = self.migration_spec()
        destination = resolve.destination(spec)
        store = MaxComputeCheckpointStore(destination, spec.name)
        if isinstance(self.tables, str):
            raise ConfigError(f"tables must be a list of db.table names, got the text {self.tables!r}")
        tables = [t for t in (self.tables or []) if t] or requested_resyncs(store)
        if not tables:
            self.log.info("no table of migration %s awaits a resync", spec.name)
            return []
        self.log.info("resyncing %s", tables)
        resync = TableResync(
            spec, resolve.source_endpoint(spec), destination, store, retry=resolve.retry_policy(spec), log=self.log.info
        )
        return resync.run(tables)
