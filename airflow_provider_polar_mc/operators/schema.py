"""SchemaMigrateOperator: create `<name>_base` and `<name>_log` in MaxCompute for every selected table."""

from __future__ import annotations

from typing import Any

from airflow_provider_polar_mc.operators._base import MigrationOperator


class SchemaMigrateOperator(MigrationOperator):
    """Maps each selected source table (types, names, capitalization) and creates its MaxCompute tables
    through the alibaba provider's MaxComputeHook. Idempotent: tables an earlier run created with the
    same schema are left as they are. Conflicting tables fail the task per ``conflict_mode``.

    Returns ``[{"table": ..., "action": "created" | "exists" | "kept_existing", "detail": ...}]``.
    """

    ui_color = "#e4f0ff"

    def execute_migration(self, context: Any) -> list[dict[str, str]]:
        from airflow_provider_polar_mc import lineage
        from airflow_provider_polar_mc.core.destination.schema import migrate_schema
        from airflow_provider_polar_mc.core.planning import plan_selected
        from airflow_provider_polar_mc.hooks import resolve
        spec = self.migration_spec()
        if "schema" not in spec.migration_types:
            self.log.info("schema migration is not selected in migration %s; nothing to do", spec.name)
            return []
        endpoint = resolve.source_endpoint(spec)
        destination = resolve.destination(spec)
        plans = plan_selected(spec, endpoint, retry=resolve.retry_policy(spec), log=self.log.warning)
        self.log.info("migrating the schema of %d tables", len(plans))
        outcomes = migrate_schema(spec, plans, destination, log=self.log.info)
        lineage.record_schemas(self.lineage, endpoint.host, endpoint.port, destination.project, plans)
        return [{"table": o.table, "action": o.action, "detail": o.detail} for o in outcomes]
