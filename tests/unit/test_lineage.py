"""Lineage datasets to the OpenLineage provider's OperatorLineage and events, and Asset conversion."""

from __future__ import annotations

from openlineage.client.serde import Serde

from airflow_provider_polar_mc.core.model import DestColumn, SourceColumn
from airflow_provider_polar_mc.lineage import (
    TaskLineage,
    maxcompute_dataset,
    mysql_dataset,
    to_operator_lineage,
)


def column(name: str, data_type: str, column_type: str) -> SourceColumn:
    return SourceColumn(name=name, ordinal=1, data_type=data_type, column_type=column_type, nullable=True)


def test_inputs_and_outputs_carry_schemas_and_output_statistics():
    lineage = TaskLineage()
    source = mysql_dataset("db.example", 3306, "shop", "orders",
                           [column("id", "bigint", "bigint(20) unsigned"), column("doc", "json", "longtext")])  # fmt: skip
    lineage.read(source)
    lineage.read(source)  # read twice (two shards): one input
    lineage.wrote(maxcompute_dataset("Analytics", "ODS_Orders_base", [DestColumn("id", "decimal(20,0)")], rows=7, size=512))
    lineage.wrote(maxcompute_dataset("analytics", "ods_orders"))

    operator_lineage = to_operator_lineage(lineage)
    [read] = [Serde.to_dict(d) for d in operator_lineage.inputs]
    assert (read["namespace"], read["name"]) == ("mysql://db.example:3306", "shop.orders")
    assert [(f["name"], f["type"]) for f in read["facets"]["schema"]["fields"]] == [("id", "bigint(20) unsigned"), ("doc", "json")]
    base, replica = (Serde.to_dict(d) for d in operator_lineage.outputs)
    assert (base["namespace"], base["name"]) == ("maxcompute://analytics", "ods_orders_base")
    assert base["outputFacets"]["outputStatistics"] == {
        "_producer": base["outputFacets"]["outputStatistics"]["_producer"],
        "_schemaURL": base["outputFacets"]["outputStatistics"]["_schemaURL"],
        "rowCount": 7,
        "size": 512,
    }
    assert "facets" not in replica or "schema" not in replica["facets"]  # columns unknown: no schema facet
    assert "outputStatistics" not in (replica.get("outputFacets") or {})


def test_a_task_that_recorded_nothing_reports_no_datasets():
    empty = to_operator_lineage(TaskLineage())
    assert (empty.inputs, empty.outputs) == ([], [])


def test_a_maxcompute_asset_converts_to_the_datasets_namespace_and_name():
    """Airflow's OpenLineage provider finds the converter through the provider info (``asset-uris``)."""
    from airflow.providers.openlineage.utils.utils import translate_airflow_asset
    from airflow.sdk import Asset

    dataset = translate_airflow_asset(Asset("maxcompute://Demo/ODS_Orders"), None)
    assert (dataset.namespace, dataset.name) == ("maxcompute://demo", "ods_orders")
