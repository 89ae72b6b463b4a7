"""IncrementalLoadOperator: one run's binlog range into one `_log` partition per table, exactly once."""

from __future__ import annotations

from typing import Any

from airflow_provider_polar_mc.operators._base import MigrationOperator


class IncrementalLoadOperator(MigrationOperator):
    """Reads the binlog from the previous interval's end coordinate (the full load's snapshot coordinate
    for the first interval) to this interval's recorded end coordinate, and overwrites this interval's
    partition of every selected table's ``_log`` with DTS change rows. Re-runs, retries and backfills
    rebuild the identical partition. Schema changes are followed or the table resynced (docs/schema-changes.md);
    a purged binlog or a changed source server fail the task without writing anything, naming the way
    out. Sends the batch's metrics (README "Metrics") and, over ``latency_alert_seconds``, the latency
    alert to the spec's notifiers.
    """

    ui_color = "#e4fff6"

    def execute_migration(self, context: Any) -> dict[str, Any]:
        from airflow_provider_polar_mc import alerts, assets, lineage, metrics
        from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
        from airflow_provider_polar_mc.core.incremental import IncrementalLoader
        from airflow_provider_polar_mc.hooks import resolve

        spec = self.migration_spec()
        destination = resolve.destination(spec)
        endpoint = resolve.source_endpoint(spec)
        loader = IncrementalLoader(
            spec,
            endpoint,
            destination,
            MaxComputeCheckpointStore(destination, spec.name),
            log=self.log.info,
        )
        summary = loader.run(context["data_interval_start"], context["data_interval_end"])
        assets.emit(context, self.outlets, spec.name, "log", destination.project, (
            (t["log_table"], {"source": assets.source_uri(endpoint.host, endpoint.port, name), "rows": t["rows"],
                              "partition": summary["partition"], "interval_end": summary["interval_end"]})
            for name, t in summary["tables"].items()))  # fmt: skip
        for name, table in summary["tables"].items():
            schema = loader.schemas_at_end[name]
            self.lineage.read(lineage.mysql_dataset(endpoint.host, endpoint.port, schema.database, schema.table, schema.columns))
            self.lineage.wrote(lineage.maxcompute_dataset(destination.project, table["log_table"],
                                                          loader.log_columns.get(table["log_table"], ()), rows=table["rows"],
                                                          size=table["bytes"]))  # fmt: skip
        metrics.incremental(spec.name, summary)
        if alerts.latency_alert(spec, summary, context):
            self.log.warning("latency alert sent to %d notifier(s)", len(spec.alerts.notifiers))
        return summary
