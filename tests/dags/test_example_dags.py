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
        "plan_full_load_shards", "full_load_shard", "full_load_commit", "reload_requested", "start_reload",
    }  # fmt: skip
    assert set(incremental.task_ids) == {"wait_for_binlog", "incremental_load", "merge", "resync_requested", "start_resync"}
    assert incremental.max_active_runs == 1
    assert all(t.depends_on_past for t in incremental.tasks)
    # One merge at a time across scheduled and backfill runs (each kind has its own max_active_runs).
    assert incremental.get_task("merge").max_active_tis_per_dag == 1
    assert [link.name for link in incremental.get_task("merge").operator_extra_links] == ["MaxCompute Log View"]
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


def test_tasks_that_write_tables_declare_their_asset_alias_and_the_downstream_example_schedules_on_a_replica(dagbag):
    """Which tables a spec selects is known at run time, so the outlets are one AssetAlias per kind; the
    tasks attach the concrete maxcompute://<project>/<table> events to it (tests/live: a real run)."""
    from airflow.sdk import Asset, AssetAlias

    setup = dagbag.get_dag("polar_mc__example_shop__setup")
    incremental = dagbag.get_dag("polar_mc__example_shop__incremental")
    outlets = {t: [o.name for o in dag.get_task(t).outlets if isinstance(o, AssetAlias)]
               for dag, tasks in ((setup, ("full_load", "full_load_commit")), (incremental, ("incremental_load", "merge")))
               for t in tasks}  # fmt: skip
    assert outlets == {"full_load": ["polar_mc__example_shop__base"], "full_load_commit": ["polar_mc__example_shop__base"],
                       "incremental_load": ["polar_mc__example_shop__log"], "merge": ["polar_mc__example_shop__replica"]}
    downstream = dagbag.get_dag("polar_mc_example_downstream")
    assert downstream is not None
    assert downstream.get_task("report_fresh_replica").inlets == [Asset("maxcompute://demo/ods_orders")]
    assert "maxcompute://demo/ods_orders" in repr(downstream.timetable.asset_condition)


def test_the_setup_trigger_form_chooses_tables_conflicts_and_accepted_warnings(dagbag):
    """The Params are a JSON Schema form in the UI; the precheck and schema tasks take this run's
    choices over the spec's, and tables already loaded go to the resync DAG."""
    setup = dagbag.get_dag("polar_mc__example_shop__setup")
    params = setup.params
    assert params["tables"] == [] and params["conflict_mode"] == "precheck_and_report"
    assert params["accepted_warnings"] == ["binlog_retention"]  # the spec's, as the form's default
    schema = {name: params.get_param(name).schema for name in ("tables", "conflict_mode", "accepted_warnings")}
    assert schema["conflict_mode"]["enum"] == ["precheck_and_report", "ignore_and_proceed"]
    assert schema["tables"]["type"] == "array" and schema["accepted_warnings"]["uniqueItems"]
    with pytest.raises(Exception, match="not one of"):
        params.get_param("conflict_mode").resolve("overwrite")  # the form refuses what the spec would
    assert setup.render_template_as_native_obj
    for task_id in ("precheck", "schema_migration"):
        assert setup.get_task(task_id).spec_overrides == {
            "conflict_mode": "{{ params.conflict_mode }}", "accepted_warnings": "{{ params.accepted_warnings }}"}
    gate, trigger = setup.get_task("reload_requested"), setup.get_task("start_reload")
    assert gate.upstream_task_ids == {"plan_full_load_groups"} and trigger.trigger_dag_id == "polar_mc__example_shop__resync"
    assert not gate.python_callable([]) and gate.python_callable(["shop.orders"])


def test_run_choices_are_checked_like_the_spec():
    from airflow_provider_polar_mc.exceptions import SpecError
    from airflow_provider_polar_mc.spec import MigrationSpec

    spec = MigrationSpec.from_yaml(DAGS / "migrations" / "example_shop.yaml")
    chosen = spec.with_run_overrides({"conflict_mode": "ignore_and_proceed", "accepted_warnings": ["precision_loss"]})
    assert (chosen.conflict_mode, chosen.accepted_warnings) == ("ignore_and_proceed", ("precision_loss",))
    assert spec.with_run_overrides({"conflict_mode": "", "accepted_warnings": None}) is spec  # empty: the spec's
    with pytest.raises(SpecError, match="accepted_warnings"):
        spec.with_run_overrides({"accepted_warnings": ["not a check id!"]})
    with pytest.raises(SpecError, match="cannot be chosen per run"):
        spec.with_run_overrides({"objects": []})
