"""The reliability suite's scenario: a migration brought up to a stage, the stage run in a worker the suite
can kill, the rest of the migration, and the checks every case ends with (replica == source, value for
value; no change row twice in the `_log` partition)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from airflow_provider_polar_mc.core import intervals
from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.selection import select_tables
from airflow_provider_polar_mc.core.validate import compare_migration
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.operators._base import load_spec
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator, full_load_plan
from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
from airflow_provider_polar_mc.operators.merge import MergeOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from airflow_provider_polar_mc.sensors.binlog import BinlogSensor
from tests.integration.session_clock import execute_at, snapshot_at
from tests.integration.test_incremental import FIRST, inside, interval, make_spec
from tests.reliability.worker import run_stage

REPO = Path(__file__).resolve().parents[2]


def reliability_spec(connections, db: str, stage: str) -> dict:
    spec = make_spec(connections, db)
    # 30 ranges of orders and 2 of customers, two at a time (sharded: orders in shards of ~1000 rows,
    # customers grouped); the batch's change rows in 1000-row blocks.
    spec["full_load"] = {"chunk_rows": 100, "parallelism": 2}
    if stage == "sharded_full_load":
        spec["full_load"]["shard_rows"] = 1000
    spec["incremental"]["block_rows"] = 1000
    return spec


def prepare(stage: str, connections, server, db: str, *, more_changes=None) -> tuple[dict, dict]:
    """A fresh migration brought up to just before ``stage``; returns its spec and the stage's context.
    ``more_changes(server, db)`` adds to interval 0's changes (incremental_load and merge only)."""
    spec = reliability_spec(connections, db, stage)
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    migration = load_spec(spec)
    snapshot_at(MaxComputeCheckpointStore(resolve.destination(migration), migration.name), server, FIRST.timestamp() - 1)
    if stage == "full_load":
        return spec, {}
    if stage == "sharded_full_load":
        plan = full_load_plan(spec)  # the setup's planning task: C0, the big table's plan, session and shards
        assert len(plan["shards"]) >= 2 and plan["groups"], plan
        return spec, {}
    FullLoadOperator(task_id="full_load", spec=spec).execute({})
    change_source(server, db)
    if more_changes is not None:
        more_changes(server, db)
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
               # REPLACE: a case run alone (-k) prepares twice on one database; the first time it inserts
               f"REPLACE INTO {db}.orders (id, customer, status, amount) VALUES (90001, 1, 'new', 1.5), (90002, 2, 'new', 2.5)",
               f"UPDATE {db}.customers SET name = CONCAT(name, ' *') WHERE code LIKE 'c1%'",
               f"DELETE FROM {db}.customers WHERE code = 'c7'")  # fmt: skip


class Workers:
    """The fork server (tests/reliability/worker.py): a worker process per stage run, without paying
    the provider's imports each time."""

    def __init__(self) -> None:
        self.server = subprocess.Popen([sys.executable, "-m", "tests.reliability.worker", "serve"], cwd=REPO,
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip

    def run(self, stage: str, spec: dict, context: dict, settings: str, output: Path, **options: Any) -> tuple[int, str]:
        """Run ``stage`` in a fresh worker with the failpoint ``settings``; its exit code and output."""
        [(code, text)] = self.run_together(stage, spec, context, output, settings=settings, **options)
        return code, text

    def run_together(
        self, stage: str, spec: dict, context: dict, output: Path, *, copies: int = 1, settings: str = "",
        env: dict[str, str] | None = None, odps_options: dict[str, Any] | None = None,
    ) -> list[tuple[int, str]]:
        """Run ``stage`` in ``copies`` workers at once; each one's exit code and output. ``env``
        replaces variables of the worker's environment (a connection through the proxy);
        ``odps_options`` sets pyodps options in the worker (shorter timeouts)."""
        worker_env = {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW_CONN_")}  # this test's connections
        worker_env.update(env or {})
        request = {"stage": stage, "spec": spec, "context": {k: v.isoformat() for k, v in context.items()},
                   "env": worker_env, "odps_options": odps_options or {}, "failpoints": settings, "output": str(output),
                   "copies": copies}  # fmt: skip
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server.stdin.write(json.dumps(request) + "\n")
        self.server.stdin.flush()
        answer = self.server.stdout.readline()
        assert answer, f"the fork server exited with {self.server.wait()}"
        outputs = [output] + [Path(f"{output}.{i}") for i in range(1, copies)]
        return [(code, path.read_text() if path.exists() else "") for code, path in zip(json.loads(answer)["returncodes"], outputs, strict=True)]

    def close(self) -> None:
        if self.server.stdin is not None:
            self.server.stdin.close()
        self.server.wait(30)


def run_interrupted(workers: Workers, stage: str, spec: dict, context: dict, tmp_path: Path, point: str, count: int,
                    interrupt, **options: Any) -> tuple[int, str]:
    """Run ``stage`` in a worker (warped retry clock) and call ``interrupt()`` once it passed failpoint
    ``point`` ``count`` times (a restart under it); the worker's exit code and output."""
    import threading
    import time

    trace = tmp_path / "points"
    outcome: list[tuple[int, str]] = []
    worker = threading.Thread(target=lambda: outcome.append(
        workers.run(stage, spec, context, f"trace={trace},warp", tmp_path / "worker.log", **options)))  # fmt: skip
    worker.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and worker.is_alive():
        if trace.exists() and trace.read_text().count(point) >= count:
            break
        time.sleep(0.01)
    assert worker.is_alive(), f"the {stage} ended before the interruption"
    interrupt()
    worker.join(120)
    [(code, out)] = outcome
    return code, out


def retry(stage: str, spec: dict, context: dict) -> None:
    """Airflow's retry of the killed task, and the tasks after it (in this process: no failpoints)."""
    run_stage(stage, spec, context)


def finish(stage: str, spec: dict, server, db: str) -> None:
    """The rest of the migration after ``stage``: interval 0's batch and merge."""
    if stage in ("full_load", "sharded_full_load"):
        change_source(server, db)
        BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(interval(0))
        IncrementalLoadOperator(task_id="incremental_load", spec=spec).execute(interval(0))
    if stage != "merge":
        MergeOperator(task_id="merge", spec=spec).execute(interval(0))


def duplicated_log_rows(emulator, spec: dict) -> int:
    """Rows of interval 0's `_log` partitions whose (record_id, before_flag) another row has too."""
    from odps.tunnel import TableTunnel

    migration = load_spec(spec)
    window = interval(0)
    partition = intervals.partition_spec(migration.partition_columns(), intervals.partition_values(
        window["data_interval_start"], window["data_interval_end"], migration.partition))  # fmt: skip
    tunnel = TableTunnel(emulator.client())
    duplicates = 0
    for selection in select_tables(migration, {spec["source"]["databases"][0]: ["orders", "customers"]}):
        session = tunnel.create_download_session(selection.log_table, partition_spec=partition)
        with session.open_record_reader(0, session.count) as reader:
            seen = Counter((r["record_id"], r["before_flag"]) for r in reader)
        duplicates += sum(n - 1 for n in seen.values())
    return duplicates


def destination_rows(spec: dict) -> dict[str, int]:
    """Rows of each `_base` and replica table (0 for one not created yet)."""
    migration = load_spec(spec)
    destination = resolve.destination(migration)
    counts = {}
    for selection in select_tables(migration, {spec["source"]["databases"][0]: ["orders", "customers"]}):
        for table in (selection.base_table, selection.replica_table):
            exists = destination.table_exists(table)
            counts[table] = destination.query(f"SELECT COUNT(*) FROM {table}")[0][0] if exists else 0
    return counts


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
