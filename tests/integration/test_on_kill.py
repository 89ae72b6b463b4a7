"""on_kill: a killed task stops what it runs (a MaxCompute instance in the service, a binlog dump on the
source), fails with TaskStopped instead of running on until the process is killed outright, writes
nothing, and its retry completes."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from odps.tunnel import TableTunnel

from airflow_provider_polar_mc.core import cancellation
from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.exceptions import TaskStopped
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.operators._base import load_spec
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from airflow_provider_polar_mc.sensors.binlog import BinlogSensor
from tests.integration.session_clock import execute_at, snapshot_at
from tests.integration.test_incremental import FIRST, inside, interval, make_spec, shop  # noqa: F401 - the fixture
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def start(operator: Any, context: dict) -> tuple[threading.Thread, dict]:
    """Run ``operator.execute`` in a thread (the test then plays Airflow's SIGTERM handler)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = operator.execute(context)
        except BaseException as exc:  # noqa: BLE001 - the outcome is asserted
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def test_on_kill_stops_a_queued_maxcompute_instance_and_the_retry_creates_the_tables(connections, emulator, shop):  # noqa: F811
    spec = make_spec(connections, shop)
    prefix = spec["batch_rename"]["prefix"]
    emulator.set_instance_queue(120)  # MaxCompute queues instances for quota; this one would wait 2 min
    try:
        operator = SchemaMigrateOperator(task_id="schema", spec=spec)
        thread, outcome = start(operator, {})
        waiting = wait_until(lambda: [w for w in cancellation.running() if w.startswith("MaxCompute instance")],
                             timeout=60, what="the schema migration's first SQL instance")  # fmt: skip
        operator.on_kill()
        thread.join(20)
        assert not thread.is_alive(), "execute went on after on_kill"
        assert isinstance(outcome.get("error"), TaskStopped), outcome
        instance = emulator.client().get_instance(waiting[0].split()[-1])
        assert instance.status.value == "Terminated" and not instance.is_successful()
    finally:
        emulator.set_instance_queue(0)
    assert not any(t.name.startswith(prefix) for t in emulator.client().list_tables())  # nothing created

    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})  # the retry
    assert emulator.client().exist_table(f"{prefix}orders_base")


def test_on_kill_stops_the_binlog_read_and_the_partition_is_written_by_the_retry(connections, emulator, mysql_server, shop):  # noqa: F811
    spec = make_spec(connections, shop)
    spec["incremental"]["block_rows"] = 1000
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    migration = load_spec(spec)
    snapshot_at(MaxComputeCheckpointStore(resolve.destination(migration), migration.name), mysql_server, FIRST.timestamp() - 1)
    FullLoadOperator(task_id="full", spec=spec).execute({})
    execute_at(mysql_server, inside(0, 10), *[f"UPDATE {shop}.orders SET amount = amount + 1 WHERE id % 7 = {i}" for i in range(7)])
    BinlogSensor(task_id="wait", spec=spec, settle_seconds=0).execute(interval(0))
    # Throttled to ~60 s for the interval's 6,000 change rows (a block of 1,000 each 10 s).
    slow = {**spec, "throttle": {"incremental": {"rows_per_s": 100}}}
    operator = IncrementalLoadOperator(task_id="load", spec=slow)
    thread, outcome = start(operator, interval(0))
    wait_until(lambda: any(w.startswith("binlog read") for w in cancellation.running()), timeout=60, what="the binlog read")
    operator.on_kill()
    thread.join(30)  # the read stops at its next event, within one throttled block
    assert not thread.is_alive(), "execute went on after on_kill"
    assert isinstance(outcome.get("error"), TaskStopped), outcome
    assert not cancellation.running()
    log_table = emulator.client().get_table(f"{spec['batch_rename']['prefix']}orders_log")
    hour0 = "modifytime_year='2026',modifytime_month='01',modifytime_day='01',modifytime_hour='00'"
    assert not log_table.exist_partition(hour0)  # nothing committed

    summary = IncrementalLoadOperator(task_id="load", spec=spec).execute(interval(0))  # the retry
    assert summary["tables"][f"{shop}.orders"]["rows"] > 0 and log_table.exist_partition(hour0)


def test_on_kill_stops_a_full_load_between_blocks_and_the_retry_resumes_them(connections, emulator, mysql_server, shop):  # noqa: F811
    from airflow_provider_polar_mc.core.full_load import TABLE_KIND

    spec = make_spec(connections, shop)
    spec["objects"] = [{"database": shop, "tables": ["orders"]}]
    spec["full_load"] = {"chunk_rows": 100, "parallelism": 2}
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    migration = load_spec(spec)
    store = MaxComputeCheckpointStore(resolve.destination(migration), migration.name)
    snapshot_at(store, mysql_server, FIRST.timestamp() - 1)
    # Throttled to ~15 s for 3,000 rows in 30 ranges of 100 (a range each half second).
    slow = {**spec, "throttle": {"full": {"rows_per_s": 200}}}
    operator = FullLoadOperator(task_id="full", spec=slow)
    thread, outcome = start(operator, {})
    [upload_id] = wait_until(lambda: [s["upload_id"] for s in store.items(TABLE_KIND).values() if s.get("upload_id")],
                             timeout=60, what="the full load's upload session")  # fmt: skip
    base = f"{spec['batch_rename']['prefix']}orders_base"
    session = TableTunnel(emulator.client()).create_upload_session(base, upload_id=upload_id)
    wait_until(lambda: session.get_block_list(), timeout=30, interval=0.2, what="the first uploaded block")
    operator.on_kill()
    thread.join(10)  # the ranges being read finish (half a second each), no further one starts
    assert not thread.is_alive(), "execute went on after on_kill"
    assert isinstance(outcome.get("error"), TaskStopped), outcome
    assert len(session.get_block_list()) < 30  # stopped before the last range
    assert TableTunnel(emulator.client()).create_download_session(base).count == 0  # nothing committed

    [result] = FullLoadOperator(task_id="full", spec=spec).execute({})  # the retry
    assert result["rows"] == 3000 and result["blocks_resumed"] > 0
