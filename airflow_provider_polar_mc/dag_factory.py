"""Turn a migration spec into Airflow DAGs (the thin translation; no migration logic here).

Two DAGs per spec:

- ``polar_mc__<name>__setup`` (triggered by hand): precheck >> schema migration >> full load, the full
  load mapped over groups of tables (at most Airflow's ``max_map_length`` groups).
- ``polar_mc__<name>__incremental`` (scheduled, one run per ``_log`` partition, catch-up on, runs in
  order): wait_for_binlog (deferrable) >> incremental_load >> merge. Backfill it like any DAG; a re-run
  of an interval rebuilds the identical partition.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable

from airflow_provider_polar_mc.operators.full_load import DEFAULT_MAX_GROUPS, FullLoadOperator
from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
from airflow_provider_polar_mc.operators.merge import MergeOperator
from airflow_provider_polar_mc.operators.precheck import PrecheckOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from airflow_provider_polar_mc.sensors.binlog import BinlogSensor
from airflow_provider_polar_mc.spec import MigrationSpec

# One run per partition unit. Data-interval timetables on purpose: Airflow 3 turns plain cron strings into
# trigger timetables whose data interval is empty, and a run's interval is what names its partition.
SCHEDULES = {"year": "0 0 1 1 *", "month": "0 0 1 * *", "day": "0 0 * * *", "hour": "0 * * * *", "minute": "* * * * *"}


def setup_dag(spec_path: str | Path, spec: MigrationSpec, max_groups: int = DEFAULT_MAX_GROUPS, **dag_kwargs: Any) -> DAG:
    path = str(spec_path)
    with DAG(
        dag_id=f"polar_mc__{spec.name}__setup",
        schedule=None,
        start_date=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
        catchup=False,
        max_active_runs=1,
        tags=["polar-mc", spec.name] + ([spec.environment_tag] if spec.environment_tag else []),
        doc_md=f"Setup of migration `{spec.name}` ({path}): precheck, schema migration, full load.",
        **dag_kwargs,
    ) as dag:
        precheck = PrecheckOperator(task_id="precheck", spec=path)
        previous = precheck
        if "schema" in spec.migration_types:
            schema = SchemaMigrateOperator(task_id="schema_migration", spec=path)
            previous >> schema
            previous = schema

        @task(task_id="plan_full_load_groups")
        def plan_groups() -> list[list[str]]:
            from airflow_provider_polar_mc.operators.full_load import full_load_groups

            return full_load_groups(path, max_groups)

        groups = plan_groups()
        previous >> groups
        FullLoadOperator.partial(task_id="full_load", spec=path).expand(tables=groups)
    return dag


def incremental_dag(spec_path: str | Path, spec: MigrationSpec, **dag_kwargs: Any) -> DAG | None:
    if "incremental" not in spec.migration_types:
        return None
    path = str(spec_path)
    if not spec.incremental.start_date:
        raise ValueError(f"{path}: incremental.start_date is required for incremental migration (ISO date, UTC)")
    start = dt.datetime.fromisoformat(spec.incremental.start_date)
    if start.tzinfo is None:
        start = start.replace(tzinfo=dt.timezone.utc)
    with DAG(
        dag_id=f"polar_mc__{spec.name}__incremental",
        schedule=CronDataIntervalTimetable(SCHEDULES[spec.partition[-1]], timezone="UTC"),
        start_date=start,
        catchup=True,
        max_active_runs=1,
        default_args={"depends_on_past": True, "retries": 2, "retry_delay": dt.timedelta(seconds=30)},
        tags=["polar-mc", spec.name] + ([spec.environment_tag] if spec.environment_tag else []),
        doc_md=f"Incremental batches of migration `{spec.name}` ({path}): one run per `_log` partition.",
        **dag_kwargs,
    ) as dag:
        wait = BinlogSensor(task_id="wait_for_binlog", spec=path, timeout=6 * 3600, poke_interval=spec.incremental.poll_seconds)
        load = IncrementalLoadOperator(task_id="incremental_load", spec=path)
        wait >> load
        if spec.merge_active:
            load >> MergeOperator(task_id="merge", spec=path)
    return dag


def dags_for_spec(spec_path: str | Path, **dag_kwargs: Any) -> list[DAG]:
    spec = MigrationSpec.from_yaml(spec_path)
    dags = [setup_dag(spec_path, spec, **dag_kwargs)]
    incremental = incremental_dag(spec_path, spec, **dag_kwargs)
    if incremental is not None:
        dags.append(incremental)
    return dags
