"""The example DAGs load into a DagBag without import errors, with the expected shape."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def test_example_spec_gives_setup_and_incremental_dags(dagbag):
    setup = dagbag.get_dag("polar_mc__example_shop__setup")
    incremental = dagbag.get_dag("polar_mc__example_shop__incremental")
    assert setup is not None and incremental is not None
    assert set(setup.task_ids) == {
        "precheck", "schema_migration", "plan_full_load_groups", "full_load",
        "plan_full_load_shards", "full_load_shard", "full_load_commit",
    }  # fmt: skip
    assert set(incremental.task_ids) == {"wait_for_binlog", "incremental_load", "merge", "resync_requested", "start_resync"}
    assert incremental.max_active_runs == 1
    assert all(t.depends_on_past for t in incremental.tasks)
    assert incremental.timetable.summary == "0 * * * *"
    run = incremental.timetable.infer_manual_data_interval(run_after=__import__("pendulum").datetime(2026, 5, 1, 10, 30))
    assert (run.end - run.start).total_seconds() == 3600  # a real interval: it names the run's partition


def test_a_batch_that_stops_a_table_for_a_resync_starts_the_resync_dag_whose_param_takes_tables(dagbag):
    incremental = dagbag.get_dag("polar_mc__example_shop__incremental")
    resync = dagbag.get_dag("polar_mc__example_shop__resync")
    assert resync is not None and resync.task_ids == ["resync"] and resync.schedule is None
    assert resync.params["tables"] == [] and resync.render_template_as_native_obj
    gate, trigger = incremental.get_task("resync_requested"), incremental.get_task("start_resync")
    assert gate.upstream_task_ids == {"incremental_load"} and trigger.upstream_task_ids == {"resync_requested"}
    assert trigger.trigger_dag_id == "polar_mc__example_shop__resync"
    assert not gate.python_callable({"rows": 1}) and gate.python_callable({"resync_requested": ["shop.orders"]})


def test_setup_dag_maps_shards_of_big_tables_and_commits_them_after_every_shard(dagbag):
    """Groups of small tables and shards of big ones are mapped from the one planning task; the commit
    runs after every shard, and also when there is no shard (none_failed: the skipped empty mapping)."""
    setup = dagbag.get_dag("polar_mc__example_shop__setup")
    plan, relay = setup.get_task("plan_full_load_groups"), setup.get_task("plan_full_load_shards")
    groups, shards, commit = setup.get_task("full_load"), setup.get_task("full_load_shard"), setup.get_task("full_load_commit")
    assert plan.upstream_task_ids == {"schema_migration"}
    assert groups.upstream_task_ids == {"plan_full_load_groups"} and relay.upstream_task_ids == {"plan_full_load_groups"}
    assert shards.upstream_task_ids == {"plan_full_load_shards"}
    assert commit.upstream_task_ids == {"full_load_shard", "plan_full_load_shards"}
    assert type(groups).__name__ == type(shards).__name__ == "MappedOperator"
    assert commit.trigger_rule == "none_failed"
    assert type(commit).__name__ == "FullLoadCommitOperator"
