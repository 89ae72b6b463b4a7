"""OpenLineage datasets of what a task read and wrote.

The operators record, while they run, plain :class:`LineageDataset` values (no OpenLineage import: the
provider works without Airflow's OpenLineage provider); :meth:`MigrationOperator.get_openlineage_facets_on_complete`
turns them into the provider's ``OperatorLineage`` when it asks (docs/lineage.md).

Naming: a source table is namespace ``mysql://<host>:<port>``, name ``<db>.<table>`` (OpenLineage's
MySQL naming); a MaxCompute table is namespace ``maxcompute://<project>``, name ``<table>``, so that
namespace + "/" + name is the table's Asset URI (:mod:`~airflow_provider_polar_mc.assets`), and
:func:`convert_asset_to_openlineage` (provider info ``to_openlineage_converter``) maps one to the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_polar_mc.assets import SCHEME, source_namespace
from airflow_provider_polar_mc.core.model import DestColumn, SourceColumn, TableDDL, TablePlan


@dataclass(frozen=True)
class LineageDataset:
    """One table a task read or wrote: its OpenLineage name, its columns (name, type) when known, and
    for an output what the task wrote into it (rows, bytes) when known."""

    namespace: str
    name: str
    fields: tuple[tuple[str, str], ...] = ()
    rows: int | None = None
    bytes: int | None = None


@dataclass
class TaskLineage:
    """What one task run read (``inputs``) and wrote (``outputs``), in the order it did."""

    inputs: list[LineageDataset] = field(default_factory=list)
    outputs: list[LineageDataset] = field(default_factory=list)

    def read(self, dataset: LineageDataset) -> None:
        if dataset not in self.inputs:
            self.inputs.append(dataset)

    def wrote(self, dataset: LineageDataset) -> None:
        self.outputs.append(dataset)


def mysql_dataset(host: str, port: int, database: str, table: str, columns: Iterable[SourceColumn] = ()) -> LineageDataset:
    # The full column type ("bigint(20) unsigned"); MariaDB's JSON is a LONGTEXT the catalog recognises.
    types = tuple((c.name, "json" if c.data_type == "json" else c.column_type) for c in columns)
    return LineageDataset(source_namespace(host, port), f"{database}.{table}", types)


def maxcompute_dataset(
    project: str, table: str, columns: Iterable[DestColumn] = (), *, rows: int | None = None, size: int | None = None
) -> LineageDataset:
    return LineageDataset(f"{SCHEME}://{project.lower()}", table.lower(), tuple((c.name, c.type) for c in columns), rows, size)


def _ddl_columns(ddl: TableDDL) -> tuple[DestColumn, ...]:
    return (*ddl.columns, *ddl.partition_columns)


def source_dataset(host: str, port: int, plan: TablePlan) -> LineageDataset:
    return mysql_dataset(host, port, plan.selection.source_database, plan.selection.source_table, plan.source.columns)


def record_loads(
    lineage: TaskLineage, host: str, port: int, project: str, plans: Iterable[TablePlan], results: Iterable[dict[str, Any]]
) -> None:
    """Full loads: each table read (its columns) and the ``_base`` it filled (columns, rows, bytes).
    A table an earlier run had loaded already (``skipped``) was neither read nor written."""
    by_source = {p.selection.source_name: p for p in plans}
    for result in results:
        plan = by_source.get(result["source"])
        if plan is None or result.get("skipped"):
            continue
        lineage.read(source_dataset(host, port, plan))
        lineage.wrote(maxcompute_dataset(project, plan.base.name, _ddl_columns(plan.base), rows=result["rows"],
                                         size=result["bytes"]))  # fmt: skip


def record_schemas(lineage: TaskLineage, host: str, port: int, project: str, plans: Iterable[TablePlan]) -> None:
    """Schema migration: each table described and the ``_base`` / ``_log`` tables made for it."""
    for plan in plans:
        lineage.read(source_dataset(host, port, plan))
        for ddl in plan.ddls:
            lineage.wrote(maxcompute_dataset(project, ddl.name, _ddl_columns(ddl)))


def to_operator_lineage(lineage: TaskLineage) -> Any:
    """The OpenLineage provider's ``OperatorLineage``: schema facets where the columns are known, output
    statistics (row count, bytes) where the task counted them. Imported here: only that provider calls it."""
    from airflow.providers.common.compat.openlineage.facet import (
        InputDataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    def facets(dataset: LineageDataset) -> dict[str, Any]:
        if not dataset.fields:
            return {}
        return {"schema": SchemaDatasetFacet(fields=[SchemaDatasetFacetFields(name=n, type=t) for n, t in dataset.fields])}

    def statistics(dataset: LineageDataset) -> dict[str, Any]:
        if dataset.rows is None:
            return {}
        return {"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=dataset.rows, size=dataset.bytes)}

    return OperatorLineage(
        inputs=[InputDataset(namespace=d.namespace, name=d.name, facets=facets(d)) for d in lineage.inputs],
        outputs=[OutputDataset(namespace=d.namespace, name=d.name, facets=facets(d), outputFacets=statistics(d))
                 for d in lineage.outputs],
    )


def convert_asset_to_openlineage(asset: Any, lineage_context: Any) -> Any:
    """``maxcompute://<project>/<table>`` as an OpenLineage dataset (provider info ``asset-uris``)."""
    from urllib.parse import urlsplit

    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(asset.uri)
    return Dataset(namespace=f"{parts.scheme}://{parts.netloc}", name=parts.path.strip("/"))
