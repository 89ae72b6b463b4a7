"""OpenLineage: each operator's ``get_openlineage_facets_on_complete`` after a real run (a private MariaDB
source, the emulator), turned into OpenLineage events by the OpenLineage provider's own adapter and
serialised by the OpenLineage client, as its listener does. The live test checks the listener's file
transport end to end."""

from __future__ import annotations

import pytest

from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.selection import select_tables
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.operators._base import load_spec
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
from airflow_provider_polar_mc.operators.merge import MergeOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from airflow_provider_polar_mc.sensors.binlog import BinlogSensor
from tests.integration.session_clock import execute_at, snapshot_at
from tests.integration.test_incremental import FIRST, inside, interval, make_spec, shop  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def as_event_json(lineage) -> dict:
    """The datasets as the OpenLineage client serialises them into a COMPLETE event."""
    from openlineage.client.serde import Serde

    return {
        "inputs": [Serde.to_dict(d) for d in lineage.inputs],
        "outputs": [Serde.to_dict(d) for d in lineage.outputs],
    }


def named(datasets: list[dict], namespace: str, name: str) -> dict:
    [found] = [d for d in datasets if d["namespace"] == namespace and d["name"] == name]
    return found


def fields(dataset: dict) -> dict[str, str]:
    return {f["name"]: f["type"] for f in dataset["facets"]["schema"]["fields"]}


def test_each_operator_reports_what_it_read_and_wrote(connections, mysql_server, emulator, shop):  # noqa: F811
    spec = make_spec(connections, shop)
    migration = load_spec(spec)
    orders, = (s for s in select_tables(migration, {shop: ["orders"]}))
    source_ns = f"mysql://{mysql_server.host}:{mysql_server.port}"
    mc_ns = f"maxcompute://{emulator.project}"

    schema = SchemaMigrateOperator(task_id="schema", spec=spec)
    schema.execute({})
    made = as_event_json(schema.get_openlineage_facets_on_complete(None))
    assert fields(named(made["inputs"], source_ns, f"{shop}.orders"))["amount"] == "decimal(12,2)"
    log = named(made["outputs"], mc_ns, orders.log_table)
    assert list(fields(log))[:5] == ["record_id", "operation_flag", "utc_timestamp", "before_flag", "after_flag"]
    assert fields(log)["modifytime_hour"] == "string"  # the partition columns, last
    assert fields(named(made["outputs"], mc_ns, orders.base_table))["amount"] == "decimal(12,2)"

    snapshot_at(MaxComputeCheckpointStore(resolve.destination(migration), migration.name), mysql_server, FIRST.timestamp() - 1)
    full = FullLoadOperator(task_id="full", spec=spec)
    full.execute({})
    loaded = as_event_json(full.get_openlineage_facets_on_complete(None))
    assert {(d["namespace"], d["name"]) for d in loaded["inputs"]} == {(source_ns, f"{shop}.orders"), (source_ns, f"{shop}.customers")}
    base = named(loaded["outputs"], mc_ns, orders.base_table)
    assert base["outputFacets"]["outputStatistics"]["rowCount"] == 3000
    assert base["outputFacets"]["outputStatistics"]["size"] > 0
    assert "id" in fields(base) and "record_id" not in fields(base)

    execute_at(mysql_server, inside(0, 10), f"UPDATE {shop}.orders SET amount = amount + 1 WHERE id <= 40")
    context = interval(0)
    BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(context)
    batch = IncrementalLoadOperator(task_id="load", spec=spec)
    batch.execute(context)
    read = as_event_json(batch.get_openlineage_facets_on_complete(None))
    assert fields(named(read["inputs"], source_ns, f"{shop}.orders"))["doc"] == "json"
    changes = named(read["outputs"], mc_ns, orders.log_table)
    assert changes["outputFacets"]["outputStatistics"]["rowCount"] == 80  # 40 updates: before and after images
    assert "record_id" in fields(changes)

    merge = MergeOperator(task_id="merge", spec=spec)
    merge.execute(context)
    merged = as_event_json(merge.get_openlineage_facets_on_complete(None))
    assert {(d["namespace"], d["name"]) for d in merged["inputs"]} >= {(mc_ns, orders.base_table), (mc_ns, orders.log_table)}
    assert (mc_ns, orders.replica_table) in {(d["namespace"], d["name"]) for d in merged["outputs"]}

