"""ValidateOperator: compare source tables with their MaxCompute replicas (or bases), row for row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from airflow_provider_polar_mc.exceptions import ReplicaDiffers
from airflow_provider_polar_mc.operators._base import MigrationOperator


class ValidateOperator(MigrationOperator):
    """Compares ``tables`` (default: all selected) with their ``replica`` (or ``base``) in MaxCompute,
    key by key and value by value, through the full load's own reader so both sides are compared in
    the destination's representation. Fails listing the first differences when any table differs.

    Meant for a quiescent source (after a final incremental run and merge) or small tables: both sides
    are read into memory.
    """

    template_fields: Sequence[str] = ("spec", "spec_overrides", "tables")
    ui_color = "#f4ffe4"

    def __init__(
        self, *, tables: Sequence[str] | None = None, target: Literal["replica", "base"] = "replica", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.tables = list(tables) if tables is not None else None
        self.target = target

    def execute_migration(self, context: Any) -> list[dict[str, Any]]:
        from airflow_provider_polar_mc.core.validate import compare_migration
        from airflow_provider_polar_mc.hooks import resolve

        spec = self.migration_spec()
        results = compare_migration(
            spec, resolve.source_endpoint(spec), resolve.destination(spec), target=self.target, tables=self.tables
        )
        summaries = []
        for result in results:
            summaries.append(result.summary())
            self.log.info(
                "%s vs %s: %d / %d rows, %s", result.source, result.destination, result.source_rows,
                result.destination_rows, "identical" if result.equal else f"DIFFERENT {result.summary()['counts']}",
            )
        different = [s for s in summaries if not s["equal"]]
        if different:
            raise ReplicaDiffers(f"{len(different)} table(s) differ from the source: {different}", different)
        return summaries
