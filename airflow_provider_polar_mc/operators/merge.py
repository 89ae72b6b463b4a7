"""MergeOperator: bring each table's replica (and its point-in-time snapshots) up to the run's interval."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.providers.alibaba.cloud.links.maxcompute import MaxComputeLogViewLink

from airflow_provider_polar_mc.exceptions import IntervalNotReady
from airflow_provider_polar_mc.operators._base import MigrationOperator


class MergeOperator(MigrationOperator):
    """Merges this run's interval into ``merge.replica_name`` (default ``<name>``) for ``tables``
    (``["db.table"]``, default all selected) by the DTS merge rule (latest change per primary key by
    record_id; deleted keys disappear), in MaxCompute SQL. Incremental by default: the replica's previous
    state plus the new `_log` partition(s); a re-run of an older interval rebuilds its snapshot and then
    forward, never moving the replica back in time (``core/merging.py``, docs/merge.md). The interval's
    incremental load must be done. Returns per table the interval the replica reflects and the steps run."""

    template_fields: Sequence[str] = ("spec", "spec_overrides", "tables")
    ui_color = "#ffe4f0"
    # The alibaba provider's link: the LogView of the merge's latest MaxCompute instance (the failing
    # one when the merge failed); every instance's LogView is in the task log.
    operator_extra_links = (MaxComputeLogViewLink(),)

    def __init__(self, *, tables: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tables = list(tables) if tables is not None else None

    def execute_migration(self, context: Any) -> list[dict[str, Any]]:
        from airflow_provider_polar_mc import assets, lineage, metrics
        from airflow_provider_polar_mc.core import intervals
        from airflow_provider_polar_mc.core.destination.checkpoint import (
            MaxComputeCheckpointStore,
            ReadOnceStore,
        )
        from airflow_provider_polar_mc.core.full_load import base_load_id
        from airflow_provider_polar_mc.core.merging import ReplicaMerger, RowEffects, recorded_row_effects
        from airflow_provider_polar_mc.core.replica.merge import MergeTarget
        from airflow_provider_polar_mc.core.resync import merge_base, resync_state
        from airflow_provider_polar_mc.core.selection import select_tables, with_recorded_tables
        from airflow_provider_polar_mc.core.source.catalog import list_tables
        from airflow_provider_polar_mc.hooks import resolve

        spec = self.migration_spec()
        if not spec.merge_active:
            self.log.info("merge is not active for migration %s (needs incremental and merge.enabled)", spec.name)
            return []
        start, end = context["data_interval_start"], context["data_interval_end"]
        intervals.partition_values(start, end, spec.partition)  # one partition unit, or a ConfigError naming the fix
        destination = resolve.destination(spec)
        destination.on_instance = lambda instance: self._show_log_view(context, instance)
        # One read of the store serves every table's bookkeeping (each read is a Tunnel download).
        store = ReadOnceStore(MaxComputeCheckpointStore(destination, spec.name))
        if intervals.done(store, end) is None:
            raise IntervalNotReady(
                f"the incremental load of the interval ending {intervals.interval_key(end)} is not done: run it first"
            )
        # The recorded schema history knows every migrated table, also one dropped or renamed since (its
        # last changes are still to merge), and its key.
        recorded = intervals.newest_schemas(store)
        endpoint = resolve.source_endpoint(spec)
        with endpoint.session(resolve.retry_policy(spec), log=self.log.warning) as conn:
            listed = with_recorded_tables({db: list_tables(conn, db) for db in spec.source.databases}, recorded)
            selections = select_tables(spec, listed, missing="ignore")
            if self.tables is not None:
                selections = [s for s in selections if s.source_name in set(self.tables)]
        # As the incremental load: only tables it migrates (a schema recorded by a full load), e.g. not a
        # table created (or renamed into the selection) since the setup.
        skipped = sorted(s.source_name for s in selections if s.source_name not in recorded)
        if skipped:
            self.log.warning("not merged (no full load recorded their schema; re-run the setup for them): %s", skipped)
        selections = [s for s in selections if s.source_name in recorded]
        keys = {name: schema.key_columns for name, schema in recorded.items()}
        extra = {a.role: a.name for a in spec.additional_columns()}
        merger = ReplicaMerger(
            destination,
            store,
            spec.partition,
            full=spec.merge.mode == "full",
            unit=None if spec.merge.snapshots == "none" else spec.merge.snapshots,
            snapshot_lifecycle_days=spec.merge.snapshot_lifecycle_days,
            log=self.log.info,
        )
        done = []
        effects = recorded_row_effects(spec, recorded, selections)
        end_coordinate = intervals.recorded_end(store, end)
        assert end_coordinate is not None  # the interval is done (checked above)
        for s in selections:
            waits, resynced, resync_load = merge_base(resync_state(store, s.source_name), end_coordinate.record_id())
            if waits:
                self.log.warning("%s: not merged for the interval ending %s: %s", s.source_name, intervals.interval_key(end), waits)
                done.append({"table": s.replica_table, "skipped": True, "reason": waits})
                continue
            target = MergeTarget(
                base_table=s.base_table,
                log_table=s.log_table,
                replica_table=s.replica_table,
                key_columns=tuple(s.destination_column(k) for k in keys[s.source_name]),
                record_id=extra["record_id"],
                after_flag=extra["after_flag"],
                partition_columns=spec.partition_columns(),
                snapshot_table=s.snapshot_table,
                fills=effects.get(s.source_name, RowEffects()).fills,
                truncated_at=effects.get(s.source_name, RowEffects()).truncated_at,
                base_record_id=resynced,
            )
            result = merger.merge(
                target, end, comment=f"polar-mc {spec.name}: replica of {s.source_name}",
                base_load=resync_load or base_load_id(store, s),
            )
            self.log.info(
                "%s: replica %s as of %s (%d steps, %.1fs)", s.source_name, s.replica_table, result.as_of,
                len(result.steps), result.seconds,
            )
            done.append(result.to_dict())
        merged = {s.replica_table: s for s in selections}
        sources = {table: s.source_name for table, s in merged.items()}
        for r in done:
            if not r.get("skipped"):
                s = merged[r["table"]]
                self.lineage.read(lineage.maxcompute_dataset(destination.project, s.base_table))
                self.lineage.read(lineage.maxcompute_dataset(destination.project, s.log_table))
                self.lineage.wrote(lineage.maxcompute_dataset(destination.project, s.replica_table))
                if r["snapshots"]:
                    self.lineage.wrote(lineage.maxcompute_dataset(destination.project, s.snapshot_table))
        metrics.merge(spec.name, sources, done)
        assets.emit(context, self.outlets, spec.name, "replica", destination.project, (
            (r["table"], {"source": assets.source_uri(endpoint.host, endpoint.port, sources[r["table"]]), "as_of": r["as_of"],
                          "snapshots": r["snapshots"]})
            for r in done if not r.get("skipped")))  # fmt: skip
        return done

    def _show_log_view(self, context: Any, instance: Any) -> None:
        """Log the instance's LogView address and keep it for the task's "MaxCompute Log View" link.
        The address carries a token that reads this one instance (MaxCompute's design, as the alibaba
        provider logs it too). Never fails the merge."""
        try:
            url = instance.get_logview_address()
            self.log.info("MaxCompute instance %s: LogView %s", instance.id, url)
            if context.get("task_instance") is not None:
                MaxComputeLogViewLink.persist(context, url)
        except Exception as exc:  # no LogView (a private endpoint, no permission), no XCom: the merge goes on
            self.log.info("MaxCompute instance %s: no LogView link (%s)", instance.id, exc)
