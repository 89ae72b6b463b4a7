"""kill -9 of the worker at random points of a full load, an incremental batch and a merge, then the
retry: nothing lost, nothing duplicated.

Each stage runs in a worker process of its own (tests/reliability/worker.py) with ``POLAR_MC_FAILPOINTS``
(core/failpoints.py). The first case of a stage runs it whole with ``trace=``, counting the points it
passes (every range read, Tunnel block, commit, SQL statement, checkpoint write, decoded binlog
chunk); each further case draws one of them from the session's seed and SIGKILLs the worker there.
The retry runs the stage again; every case then finishes the migration (batch and merge) and ends
with replica == source, value for value, and no ``(record_id, before_flag)`` twice in the `_log`
partition.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from airflow_provider_polar_mc.core import failpoints
from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.selection import select_tables
from airflow_provider_polar_mc.core.validate import compare_migration
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.operators._base import load_spec
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
from airflow_provider_polar_mc.operators.merge import MergeOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from airflow_provider_polar_mc.sensors.binlog import BinlogSensor
from tests.integration.session_clock import execute_at, snapshot_at
from tests.integration.test_incremental import FIRST, inside, interval, make_spec, shop  # noqa: F401 - the fixture

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
# Kill cases per stage, after the traced run: 24 random kill points per CI run.
KILLS = {"full_load": 8, "incremental_load": 10, "merge": 6}
_points: dict[str, int] = {}  # stage -> points its traced run passed


def reliability_spec(connections, db: str) -> dict:
    spec = make_spec(connections, db)
    # 30 ranges of orders and 2 of customers, two at a time; the batch's change rows in 500-row blocks.
    spec["full_load"] = {"chunk_rows": 100, "parallelism": 2}
    spec["incremental"]["block_rows"] = 500
    return spec


def prepare(stage: str, connections, server, db: str) -> tuple[dict, dict]:
    """A fresh migration brought up to just before ``stage``; returns its spec and the stage's context."""
    spec = reliability_spec(connections, db)
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    migration = load_spec(spec)
    snapshot_at(MaxComputeCheckpointStore(resolve.destination(migration), migration.name), server, FIRST.timestamp() - 1)
    if stage == "full_load":
        return spec, {}
    FullLoadOperator(task_id="full_load", spec=spec).execute({})
    change_source(server, db)
    BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(interval(0))
    if stage == "incremental_load":
        return spec, interval(0)
    IncrementalLoadOperator(task_id="incremental_load", spec=spec).execute(interval(0))
    return spec, interval(0)


def change_source(server, db: str) -> None:
    """Inserts, updates (twice for some rows), a primary-key change and deletes, in interval 0."""
    execute_at(server, inside(0, 10),
               f"UPDATE {db}.orders SET amount = amount + 1, status = 'paid' WHERE id % 3 = 0",
               f"UPDATE {db}.orders SET amount = amount * 2 WHERE id % 9 = 0",
               f"UPDATE {db}.orders SET id = id + 100000 WHERE id BETWEEN 10 AND 14",
               f"DELETE FROM {db}.orders WHERE id % 31 = 0",
               f"INSERT INTO {db}.orders (id, customer, status, amount) VALUES (90001, 1, 'new', 1.5), (90002, 2, 'new', 2.5)",
               f"UPDATE {db}.customers SET name = CONCAT(name, ' *') WHERE code LIKE 'c1%'",
               f"DELETE FROM {db}.customers WHERE code = 'c7'")  # fmt: skip


def run_worker(stage: str, spec: dict, context: dict, settings: str) -> subprocess.CompletedProcess:
    env = {**os.environ, failpoints.ENV_VAR: settings}
    args = [sys.executable, "-m", "tests.reliability.worker", stage, json.dumps(spec),
            json.dumps({k: v.isoformat() for k, v in context.items()})]  # fmt: skip
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


def retry(stage: str, spec: dict, context: dict) -> None:
    """Airflow's retry of the killed task (in this process: no failpoints)."""
    operator = {"full_load": FullLoadOperator, "incremental_load": IncrementalLoadOperator, "merge": MergeOperator}[stage]
    operator(task_id=stage, spec=spec).execute(context)


def finish(stage: str, spec: dict, server, db: str) -> None:
    """The rest of the migration after ``stage``: interval 0's batch and merge."""
    if stage == "full_load":
        change_source(server, db)
        BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(interval(0))
        IncrementalLoadOperator(task_id="incremental_load", spec=spec).execute(interval(0))
    if stage in ("full_load", "incremental_load"):
        MergeOperator(task_id="merge", spec=spec).execute(interval(0))


def duplicated_log_rows(emulator, spec: dict) -> int:
    """Rows of interval 0's `_log` partitions whose (record_id, before_flag) another row has too."""
    from odps.tunnel import TableTunnel

    migration = load_spec(spec)
    partition = "modifytime_year='2026',modifytime_month='01',modifytime_day='01',modifytime_hour='00'"
    tunnel = TableTunnel(emulator.client())
    duplicates = 0
    for selection in select_tables(migration, {spec["source"]["databases"][0]: ["orders", "customers"]}):
        session = tunnel.create_download_session(selection.log_table, partition_spec=partition)
        with session.open_record_reader(0, session.count) as reader:
            seen = Counter((r["record_id"], r["before_flag"]) for r in reader)
        duplicates += sum(n - 1 for n in seen.values())
    return duplicates


def check(spec: dict, emulator, fault_tally) -> None:
    migration = load_spec(spec)
    results = compare_migration(migration, resolve.source_endpoint(migration), resolve.destination(migration))
    assert len(results) == 2
    lost = sum(len(r.missing) + len(r.different) + len(r.missing_columns) for r in results)
    # Rows beyond the source's (a key twice, a deleted row back), and change rows written twice.
    duplicated = sum(r.destination_rows - (r.source_rows - len(r.missing)) for r in results)
    duplicated += duplicated_log_rows(emulator, spec)
    fault_tally.found(lost, duplicated)
    assert (lost, duplicated) == (0, 0), [r.summary() for r in results if not r.equal]


@pytest.mark.parametrize("stage,case", [(stage, case) for stage, kills in KILLS.items() for case in range(kills + 1)])
def test_kill_9_at_a_random_point_then_retry(stage, case, connections, mysql_server, emulator, shop, fault_tally, tmp_path):  # noqa: F811
    trace = tmp_path / "points"
    if case and stage not in _points:  # run alone (-k): trace the stage first
        spec, context = prepare(stage, connections, mysql_server, shop)
        traced = run_worker(stage, spec, context, f"trace={trace}")
        assert traced.returncode == 0, traced.stderr[-3000:]
        _points[stage] = len(trace.read_text().splitlines())
        trace.unlink()
        spec, context = prepare(stage, connections, mysql_server, shop)  # a fresh migration for the kill
    else:
        spec, context = prepare(stage, connections, mysql_server, shop)
    if case == 0:
        traced = run_worker(stage, spec, context, f"trace={trace}")
        assert traced.returncode == 0, traced.stderr[-3000:]
        _points[stage] = len(trace.read_text().splitlines())
        print(f"{stage}: {_points[stage]} points traced", flush=True)
    else:
        kill_at = fault_tally.rng(stage, case).randint(1, _points[stage])
        killed = run_worker(stage, spec, context, f"trace={trace},kill_at={kill_at}")
        passed = trace.read_text().splitlines() if trace.exists() else []
        if killed.returncode == -signal.SIGKILL:
            fault_tally.injected()
            print(f"{stage}: killed at point {kill_at}/{_points[stage]} ({passed[-1]})", flush=True)
        else:  # this run passed fewer points than the traced one (threads' order): it completed
            assert killed.returncode == 0, killed.stderr[-3000:]
            print(f"{stage}: completed after {len(passed)} points, before point {kill_at}", flush=True)
        retry(stage, spec, context)
    finish(stage, spec, mysql_server, shop)
    check(spec, emulator, fault_tally)
