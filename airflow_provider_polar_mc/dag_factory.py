"""Turn a migration spec into Airflow DAGs (the thin translation; no migration logic here).

Two DAGs per spec:

- ``polar_mc__<name>__setup`` (triggered by hand): precheck >> schema migration >> full load, the full
  load mapped over groups of tables (at most Airflow's ``max_map_length`` groups), and each table
  estimated above ``full_load.shard_rows`` mapped over its key-range shards (``full_load_shard``)
  followed by one ``full_load_commit`` (docs/full-load-shards.md).
- ``polar_mc__<name>__incremental`` (scheduled, one run per ``_log`` partition from the latest closed
  interval at deployment, no interval skipped after that, runs in order): wait_for_binlog (deferrable) >> incremental_load >> merge. Backfill it like any DAG; a re-run
  of an interval rebuilds the identical partition. When a batch stopped a table at a change it cannot
  follow, ``start_resync`` triggers the resync DAG.
- ``polar_mc__<name>__resync`` (triggered, by that task or by hand with the ``tables`` Param): loads the
  tables' ``_base`` again at a new coordinate while the other tables' batches go on (core/resync.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
from pathlib import Path
from typing import Any, get_args

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG, Param, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_polar_mc.alerts import failure_callback
from airflow_provider_polar_mc.assets import alias
from airflow_provider_polar_mc.exceptions import ConfigError
from airflow_provider_polar_mc.operators.full_load import (
    DEFAULT_MAX_GROUPS,
    FullLoadCommitOperator,
    FullLoadOperator,
    FullLoadShardOperator,
)
from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
from airflow_provider_polar_mc.operators.merge import MergeOperator
from airflow_provider_polar_mc.operators.precheck import PrecheckOperator
from airflow_provider_polar_mc.operators.resync import ResyncOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from airflow_provider_polar_mc.sensors.binlog import BinlogSensor
from airflow_provider_polar_mc.spec import MigrationSpec
from airflow_provider_polar_mc.spec.fields import ConflictMode
from airflow_provider_polar_mc.timetables import ContinuousDataIntervalTimetable

# One run per partition unit. Data-interval timetables on purpose: Airflow 3 turns plain cron strings into
# trigger timetables whose data interval is empty, and a run's interval is what names its partition.
SCHEDULES = {"year": "0 0 1 1 *", "month": "0 0 1 * *", "day": "0 0 * * *", "hour": "0 * * * *", "minute": "* * * * *"}


log = logging.getLogger(__name__)

# A start date in the past that no interval of a migration precedes; with ContinuousDataIntervalTimetable
# it only bounds manual runs, it never queues runs.
_EARLIEST_START = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def _migration_dag_args(
    spec: MigrationSpec, kind: str, doc_md: str, dag_kwargs: dict[str, Any], default_args: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What the DAGs of a migration share: the id, one run at a time, tags, docs, the alerts' failure
    callback (``alerts.on_failure``); ``dag_kwargs`` win."""
    defaults = dict(default_args or {})
    on_failure = failure_callback(spec)
    if on_failure is not None:
        defaults.setdefault("on_failure_callback", on_failure)
    return {
        "dag_id": f"polar_mc__{spec.name}__{kind}",
        "max_active_runs": 1,
        "tags": ["polar-mc", spec.name] + ([spec.environment_tag] if spec.environment_tag else []),
        "doc_md": doc_md,
        "default_args": defaults,
        **dag_kwargs,
    }


def setup_params(spec: MigrationSpec) -> dict[str, Param]:
    """The setup DAG's trigger form: which tables, and this run's conflict handling and accepted
    warnings (validated by the UI's JSON Schema form, then by the spec's own checks)."""
    return {
        "tables": Param(
            [], type="array", items={"type": "string"}, title="Tables to load or reload",
            description="db.table names; empty: every selected table not loaded yet. A table already loaded "
                        "(or any table once incremental batches ran) is reloaded through the resync DAG: its _base "
                        "replaced once at a new binlog coordinate, the incremental chain kept. Without incremental migration "
                        "a loaded table is loaded again (one new overwrite of its _base).",
        ),
        "conflict_mode": Param(
            spec.conflict_mode, type="string", enum=list(get_args(ConflictMode)), title="Destination conflicts",
            description="precheck_and_report: fail on existing destination tables; ignore_and_proceed: accept them "
                        "when their schema matches. Default: the spec's.",
        ),
        "accepted_warnings": Param(
            list(spec.accepted_warnings), type="array", items={"type": "string"}, uniqueItems=True,
            title="Precheck warnings to accept",
            description="Check ids from the precheck report (e.g. precision_loss, reserved_word); default: the spec's.",
        ),
    }  # fmt: skip


_RUN_CHOICES = {"conflict_mode": "{{ params.conflict_mode }}", "accepted_warnings": "{{ params.accepted_warnings }}"}


def setup_dag(spec_path: str | Path, spec: MigrationSpec, max_groups: int = DEFAULT_MAX_GROUPS, **dag_kwargs: Any) -> DAG:
    path = str(spec_path)
    with DAG(
        **_migration_dag_args(spec, "setup", f"Setup of migration `{spec.name}` ({path}): precheck, schema migration, "
                              "full load. Trigger it with the form to choose tables, conflict handling and accepted "
                              "warnings.", dag_kwargs),
        schedule=None,
        start_date=_EARLIEST_START,
        catchup=False,
        params=setup_params(spec),
        render_template_as_native_obj=True,  # the Params reach the operators as lists
    ) as dag:
        precheck = PrecheckOperator(task_id="precheck", spec=path, spec_overrides=_RUN_CHOICES)
        previous = precheck
        if "schema" in spec.migration_types:
            schema = SchemaMigrateOperator(task_id="schema_migration", spec=path, spec_overrides=_RUN_CHOICES)
            previous >> schema
            previous = schema

        @task(task_id="plan_full_load_groups")
        def plan_groups(**context: Any) -> list[list[str]]:
            from airflow_provider_polar_mc.operators.full_load import full_load_plan

            # Decides once per run which tables are grouped and which sharded (big tables' plans and
            # sessions are recorded here, before any shard runs); the shards go out under their own key,
            # the tables to reload through the resync under theirs.
            chosen = [t for t in (context["params"].get("tables") or []) if t]
            plan = full_load_plan(path, max_groups, log=log, tables=chosen or None)
            context["ti"].xcom_push(key="shards", value=plan["shards"])
            context["ti"].xcom_push(key="resync", value=plan["resync"])
            return plan["groups"]

        @task(task_id="plan_full_load_shards")
        def plan_shards(shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
            return shards  # relayed as a return value: Airflow maps only over a task's return value

        groups = plan_groups()
        previous >> groups
        bases = [alias(spec.name, "base")]
        FullLoadOperator.partial(task_id="full_load", spec=path, outlets=bases).expand(tables=groups)
        shards = plan_shards(groups["shards"])
        loaded = FullLoadShardOperator.partial(task_id="full_load_shard", spec=path).expand(shard=shards)
        # none_failed: with no big table the shard task has no instance (skipped) and the commit still
        # succeeds, doing nothing; a failed shard leaves it upstream_failed.
        loaded >> FullLoadCommitOperator(task_id="full_load_commit", spec=path, shards=shards, trigger_rule="none_failed",
                                         outlets=bases)  # fmt: skip
        if "incremental" in spec.migration_types:

            @task.short_circuit(task_id="reload_requested", ignore_downstream_trigger_rules=False)
            def reload_requested(tables: list[str] | None) -> bool:
                return bool(tables)

            reload_requested(groups["resync"]) >> TriggerDagRunOperator(
                task_id="start_reload", trigger_dag_id=resync_dag_id(spec), wait_for_completion=False,
                conf={"tables": "{{ ti.xcom_pull(task_ids='plan_full_load_groups', key='resync') }}"},
            )  # fmt: skip
    return dag


def incremental_dag(spec_path: str | Path, spec: MigrationSpec, **dag_kwargs: Any) -> DAG | None:
    """The scheduled DAG of incremental batches, or None without incremental migration.

    Without ``incremental.start_date`` the first run is the latest closed interval and every interval
    after it runs, none skipped (:class:`ContinuousDataIntervalTimetable`): a deployment queues one
    run, whenever it happens. With ``start_date`` every interval from then is queued (Airflow's
    catch-up), for users who want partitions from a chosen date.
    """
    if "incremental" not in spec.migration_types:
        return None
    path = str(spec_path)
    expression = SCHEDULES[spec.partition[-1]]
    if spec.incremental.start_date:
        start = dt.datetime.fromisoformat(spec.incremental.start_date)
        if start.tzinfo is None:
            start = start.replace(tzinfo=dt.timezone.utc)
        timetable: CronDataIntervalTimetable = CronDataIntervalTimetable(expression, timezone="UTC")
        catchup = True
    else:
        start = _EARLIEST_START
        timetable = ContinuousDataIntervalTimetable(expression, timezone="UTC")
        catchup = False  # governs the first run only; ContinuousDataIntervalTimetable never skips after it
    with DAG(
        **_migration_dag_args(spec, "incremental", f"Incremental batches of migration `{spec.name}` ({path}): one run "
                              "per `_log` partition.", dag_kwargs,
                              {"depends_on_past": True, "retries": 2, "retry_delay": dt.timedelta(seconds=30)}),
        schedule=timetable,
        start_date=start,
        catchup=catchup,
    ) as dag:
        wait = BinlogSensor(task_id="wait_for_binlog", spec=path, timeout=6 * 3600, poke_interval=spec.incremental.poll_seconds)
        load = IncrementalLoadOperator(task_id="incremental_load", spec=path, outlets=[alias(spec.name, "log")])
        wait >> load
        if spec.merge_active:
            # One merge at a time across scheduled and backfill runs (max_active_runs bounds each kind
            # alone): two merges of a table must not interleave their steps (docs/merge.md).
            load >> MergeOperator(task_id="merge", spec=path, outlets=[alias(spec.name, "replica")], max_active_tis_per_dag=1)

        @task.short_circuit(task_id="resync_requested", ignore_downstream_trigger_rules=False)
        def resync_requested(summary: dict[str, Any] | None) -> bool:
            return bool((summary or {}).get("resync_requested"))

        trigger = TriggerDagRunOperator(
            task_id="start_resync", trigger_dag_id=resync_dag_id(spec), conf={"tables": []}, wait_for_completion=False
        )
        resync_requested(load.output) >> trigger
    return dag


def resync_dag_id(spec: MigrationSpec) -> str:
    return f"polar_mc__{spec.name}__resync"


def resync_dag(spec_path: str | Path, spec: MigrationSpec, **dag_kwargs: Any) -> DAG | None:
    """The DAG that resyncs tables, or None without incremental migration (a full-only migration re-runs
    its setup instead)."""
    if "incremental" not in spec.migration_types:
        return None
    path = str(spec_path)
    with DAG(
        **_migration_dag_args(spec, "resync", f"Resync of tables of migration `{spec.name}` ({path}): their `_base` "
                              "loaded again at a new coordinate while the other tables go on. Started by the "
                              "incremental DAG when a batch stops a table at a change it cannot follow, or by hand.",
                              dag_kwargs),
        schedule=None,
        start_date=_EARLIEST_START,
        catchup=False,
        render_template_as_native_obj=True,  # the tables Param reaches the operator as a list
        params={
            "tables": Param(
                [], type="array", items={"type": "string"}, title="Tables to resync",
                description="db.table names; empty: every table an incremental batch stopped for a resync.",
            )
        },
    ) as dag:
        ResyncOperator(task_id="resync", spec=path, tables="{{ params.tables }}", retries=2,
                       retry_delay=dt.timedelta(seconds=30))  # fmt: skip
    return dag


def dags_for_spec(spec_path: str | Path, **dag_kwargs: Any) -> list[DAG]:
    return build_dags(spec_path, MigrationSpec.from_yaml(spec_path), **dag_kwargs)


def build_dags(spec_path: str | Path, spec: MigrationSpec, **dag_kwargs: Any) -> list[DAG]:
    """The setup DAG, and with incremental migration the incremental and resync DAGs."""
    dags = [setup_dag(spec_path, spec, **dag_kwargs)]
    for build in (incremental_dag, resync_dag):
        dag = build(spec_path, spec, **dag_kwargs)
        if dag is not None:
            dags.append(dag)
    return dags


# --- the DAG file's entry point --------------------------------------------------------------------

SPEC_DIR_ENV = "POLAR_MC_SPEC_DIR"
_DAG_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def spec_folder(dag_file: str | Path) -> Path:
    """Where the migration specs are: ``[polar_mc] spec_dir`` (``AIRFLOW__POLAR_MC__SPEC_DIR``), else
    ``$POLAR_MC_SPEC_DIR``, else ``migrations/`` beside the DAG file."""
    from airflow.configuration import conf

    configured = conf.get("polar_mc", "spec_dir", fallback="") or os.environ.get(SPEC_DIR_ENV, "")
    return Path(configured).expanduser() if configured.strip() else Path(dag_file).resolve().parent / "migrations"


def migration_dags(dag_file: str | Path, spec_dir: str | Path | None = None) -> dict[str, DAG]:
    """Every DAG of every spec in the spec folder, by dag_id, for a DAG file's ``globals()``.

    One broken spec never hides the others: it gets a placeholder DAG ``polar_mc__spec_error__<file>``
    whose description and docs list its errors (so they show in the Airflow UI) and whose only task fails
    with them. A missing or empty folder logs a warning naming the folder and how to set it.
    """
    folder = Path(spec_dir) if spec_dir is not None else spec_folder(dag_file)
    if not folder.is_dir():
        log.warning(
            "polar-mc: spec folder %s does not exist, so no migration DAGs are defined. Put migration specs "
            "(*.yaml) there, or point [polar_mc] spec_dir (AIRFLOW__POLAR_MC__SPEC_DIR) at their folder", folder
        )
        return {}
    paths = sorted(path for pattern in ("*.yaml", "*.yml") for path in folder.glob(pattern))
    if not paths:
        log.warning("polar-mc: no migration spec (*.yaml) in %s, so no migration DAGs are defined", folder)
        return {}
    dags: dict[str, DAG] = {}
    owners: dict[str, Path] = {}  # migration name -> spec file
    for path in paths:
        try:
            spec = MigrationSpec.from_yaml(path)
            if spec.name in owners:
                raise ConfigError(
                    f"migration name {spec.name!r} is already used by {owners[spec.name]}: each spec needs its own "
                    "name (it names the DAGs and the checkpoints)"
                )
            built = build_dags(path, spec)
        except Exception as error:  # any spec's failure stays that spec's: the others still load
            if isinstance(error, ConfigError):
                log.error("polar-mc: %s", error)
            else:
                log.exception("polar-mc: the DAGs of %s could not be built", path)
            placeholder = spec_error_dag(path, error)
            dags[placeholder.dag_id] = placeholder
            continue
        owners[spec.name] = path
        for dag in built:
            dags[dag.dag_id] = dag
    return dags


def spec_error_dag(spec_path: Path, error: BaseException) -> DAG:
    """A DAG standing in for a spec that cannot be loaded: its errors in the UI, a task that fails with them."""
    message = str(error) if isinstance(error, ConfigError) else f"{type(error).__name__}: {error}"
    dag_id = f"polar_mc__spec_error__{_DAG_ID_UNSAFE.sub('_', spec_path.stem)[:200]}"
    first_line = message.strip().splitlines()[0] if message.strip() else type(error).__name__
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=_EARLIEST_START,
        catchup=False,
        tags=["polar-mc", "spec-error"],
        description=f"Spec {spec_path.name} has errors: {first_line}"[:500],
        doc_md=f"## The migration spec `{spec_path}` cannot be loaded\n\nFix the spec; this DAG then "
        f"becomes the migration's DAGs.\n\n```\n{message}\n```\n",
    ) as dag:

        @task(task_id="spec_error")
        def report(text: str) -> None:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(text)

        report(f"{spec_path}: {message}")
    return dag
