"""The example DAGs under a real Airflow 3 deployment: scheduler, dag-processor, triggerer, API server.

A private MariaDB/MySQL source and the MaxCompute emulator; a minute-partition spec in a temp spec dir;
Airflow parses the repo's dags/ folder. Through the REST API the test triggers the setup DAG twice with
the trigger form's Params (one table, then the other), changes the source (insert, update,
primary-key change, delete, ADD COLUMN), unpauses the incremental DAG (start date: three minutes
before the test began, so catch-up runs those and the minutes that close meanwhile) and waits for the
run of the interval that holds the changes (partitions follow commit times) and for a successful run
whose binlog sensor was DEFERRED to the triggerer. Then every replica table must equal its source
table, row for row; the merge task's LogView link is set; the Asset-scheduled downstream DAG ran. Two
backfills (Airflow 3's backfill API) of the three intervals up to the changes, while the schedule
goes on, leave the `_log` partitions identical. The OpenLineage provider's file transport holds the
tasks' lineage. The runs of the minutes that closed during the setup are a catch-up: the test prints
how fast it went (intervals per minute under the real scheduler).

About 4 minutes, most of it waiting for one-minute intervals to close and for the scheduler.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import urllib.parse
from pathlib import Path

import pytest

from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.intervals import partition_spec, partition_values
from airflow_provider_polar_mc.core.selection import select_tables
from airflow_provider_polar_mc.core.validate import compare_migration
from airflow_provider_polar_mc.sandbox.connections import maxcompute_connection, polardb_connection
from airflow_provider_polar_mc.spec import MigrationSpec
from tests.live.airflow_stack import AirflowStack
from tests.waiting import wait_until as wait_for

pytestmark = [pytest.mark.live, pytest.mark.slow, pytest.mark.timeout(540)]

NAME = "live_shop"
SETUP = f"polar_mc__{NAME}__setup"
INCREMENTAL = f"polar_mc__{NAME}__incremental"
DOWNSTREAM = "polar_mc_example_downstream"
# Long enough that the run of an interval that has just closed finds its sensor early and defers to the
# triggerer: its sensor starts after the previous run's merge (max_active_runs=1) and a task start-up, which
# took 13 s past the interval's end on a busy 2-core runner; short enough to keep the test quick.
SETTLE_SECONDS = 30
# Waiting for a deferred run: the backlog of closed minutes, then up to three minute boundaries to defer at.
DEFERRED_RUN_TIMEOUT = 300
BAD_TI_STATES = {"failed", "up_for_retry", "upstream_failed"}
CATCH_UP_MINUTES = 3


def say(message: str) -> None:
    print(f"[live {dt.datetime.now(dt.timezone.utc):%H:%M:%S}] {message}", flush=True)


def seed(server) -> None:
    server.execute(
        "CREATE DATABASE shop",
        "CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, tier ENUM('basic','gold') NOT NULL,"
        " joined DATE)",
        "CREATE TABLE shop.orders (id BIGINT UNSIGNED PRIMARY KEY, customer_id INT NOT NULL, status VARCHAR(16) NOT NULL,"
        " amount DECIMAL(12,2) NOT NULL, created_at DATETIME(6) NOT NULL, doc JSON)",
        "INSERT INTO shop.customers WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 50)"
        " SELECT n, CONCAT('customer ', n, IF(n % 7 = 0, ' 😀', '')), IF(n % 5 = 0, 'gold', 'basic'),"
        " DATE('2020-01-01') + INTERVAL n DAY FROM s",
        "INSERT INTO shop.orders WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 300)"
        " SELECT n, 1 + n % 50, ELT(1 + n % 3, 'new', 'paid', 'shipped'), n / 4,"
        " TIMESTAMP('2025-01-01') + INTERVAL n SECOND + INTERVAL n MICROSECOND, JSON_OBJECT('n', n) FROM s",
    )


def change_source(server) -> None:
    server.execute(
        "INSERT INTO shop.customers VALUES (51, 'late joiner', 'gold', '2026-01-01')",
        "UPDATE shop.customers SET tier = 'gold', name = CONCAT(name, ' *') WHERE id BETWEEN 1 AND 10",
        "DELETE FROM shop.customers WHERE id BETWEEN 45 AND 47",
        "UPDATE shop.orders SET id = id + 1000 WHERE id BETWEEN 100 AND 104",  # primary-key change
        "DELETE FROM shop.orders WHERE id % 37 = 0",
        "INSERT INTO shop.orders VALUES (5000, 2, 'new', 12.50, UTC_TIMESTAMP(6), JSON_ARRAY(1, 2))",
        "ALTER TABLE shop.orders ADD COLUMN channel VARCHAR(8) NULL AFTER status",
        "UPDATE shop.orders SET channel = 'web', status = 'paid' WHERE id BETWEEN 200 AND 220",
    )


def spec_yaml(start: dt.datetime) -> str:
    return f"""\
name: {NAME}
source:
  conn_id: polardb_live
  databases: [shop]
destination:
  conn_id: maxcompute_live
partition: [year, month, day, hour, minute]
full_load:
  chunk_rows: 100
  parallelism: 2
incremental:
  start_date: "{start.isoformat()}"
  settle_seconds: {SETTLE_SECONDS}
  poll_seconds: 1
"""


def compare_replicas(spec_path: Path, server, emulator) -> list[str]:
    """Every selected table against its replica (the emulator read through its own pyodps client)."""
    spec = MigrationSpec.from_yaml(spec_path)
    endpoint = MySqlEndpoint(host=server.host, port=server.port, user="root")
    destination = MaxComputeDestination(emulator.client(), emulator.project)
    results = compare_migration(spec, endpoint, destination)
    assert results, "no table selected"
    problems = []
    for result in results:
        say(
            f"{result.source} vs {result.destination}: {result.source_rows} / {result.destination_rows} rows, "
            + ("identical" if result.equal else "DIFFERENT")
        )
        if not result.equal:
            problems.append(f"{result.source}: {json.dumps(result.summary(), default=str)}")
    return problems


def base_rows(emulator, tables: dict) -> dict[str, int]:
    from odps.tunnel import TableTunnel

    tunnel = TableTunnel(emulator.client())
    return {name: tunnel.create_download_session(s.base_table).count for name, s in tables.items()}


def log_partitions(emulator, migration: MigrationSpec, tables: dict, dates: list[dt.datetime]) -> dict[str, list[tuple]]:
    """Every row of the minute partitions starting at ``dates``, per ``_log`` table and partition."""
    from odps.tunnel import TableTunnel

    client = emulator.client()
    tunnel = TableTunnel(client)
    result = {}
    for s in tables.values():
        for d in dates:
            spec = partition_spec(migration.partition_columns(),
                                  partition_values(d, d + dt.timedelta(minutes=1), migration.partition))  # fmt: skip
            if not client.get_table(s.log_table).exist_partition(spec):
                result[f"{s.log_table}/{spec}"] = []
                continue
            session = tunnel.create_download_session(s.log_table, partition_spec=spec)
            with session.open_record_reader(0, session.count) as reader:
                result[f"{s.log_table}/{spec}"] = sorted(tuple(r.values) for r in reader)
    return result


def run_state(stack: AirflowStack, logical_date: dt.datetime) -> str | None:
    for run in stack.dag_runs(INCREMENTAL):
        if run["logical_date"] and dt.datetime.fromisoformat(run["logical_date"].replace("Z", "+00:00")) == logical_date:
            return run["state"]
    return None


class Backfills:
    """Two backfills (Airflow 3's backfill API, reprocessing completed runs one at a time) of the same
    three intervals, one after the other; after each, the `_log` partitions are the ones the scheduled
    runs wrote, row for row."""

    def __init__(self, stack: AirflowStack, emulator, migration: MigrationSpec, tables: dict):
        self.stack, self.emulator, self.migration, self.tables = stack, emulator, migration, tables
        self.attempt = 0
        self.done = False
        self.dates: list[dt.datetime] = []
        self.before: dict[str, list[tuple]] = {}
        self._current: dict | None = None
        self._created = 0.0

    @property
    def started(self) -> bool:
        return self.attempt > 0

    def start(self, dates: list[dt.datetime]) -> None:
        self.dates = dates
        states = {f"{d:%H:%M}": run_state(self.stack, d) for d in dates}
        assert set(states.values()) == {"success"}, states
        self.before = log_partitions(self.emulator, self.migration, self.tables, dates)
        assert sum(len(rows) for rows in self.before.values()) > 0, "no change rows in the backfilled intervals"
        self._create()

    def _create(self) -> None:
        self.attempt += 1
        self._created = time.monotonic()
        self._current = self.stack.backfill(INCREMENTAL, self.dates[0].isoformat(), self.dates[-1].isoformat(),
                                            reprocess_behavior="completed", max_active_runs=1)  # fmt: skip
        say(f"backfill {self.attempt} (id {self._current['id']}) of {[f'{d:%H:%M}' for d in self.dates]} created")

    def advance(self) -> None:
        if self._current is None or self.done or not self.stack.get_backfill(self._current["id"])["completed_at"]:
            return
        states = {f"{d:%H:%M}": run_state(self.stack, d) for d in self.dates}
        assert set(states.values()) == {"success"}, f"backfill {self.attempt}: {states}"
        after = log_partitions(self.emulator, self.migration, self.tables, self.dates)
        assert after == self.before, f"backfill {self.attempt} changed the _log partitions"
        say(f"backfill {self.attempt} completed in {time.monotonic() - self._created:.0f}s: "
            f"{sum(len(r) for r in after.values())} change rows in {len(after)} partitions, identical")  # fmt: skip
        if self.attempt == 2:
            self.done = True
        else:
            self._create()


def check_deferred_run(stack: AirflowStack, recorder: TransitionRecorder, run_id: str) -> None:
    """The run whose binlog sensor deferred: its states, and the sensor's log through the API (the
    worker deferring, the triggerer polling and firing, the worker resuming with the coordinate)."""
    sensor_states = recorder.states[(run_id, "wait_for_binlog")]
    say(f"{run_id} wait_for_binlog went {' -> '.join(sensor_states)}")
    assert sensor_states.index("deferred") < sensor_states.index("success")
    run = recorder.runs[run_id]
    say(f"{run_id}: data interval {run['data_interval_start']} .. {run['data_interval_end']}")
    sensor = next(ti for ti in stack.task_instances(INCREMENTAL, run_id) if ti["task_id"] == "wait_for_binlog")
    log = stack.task_log(INCREMENTAL, run_id, "wait_for_binlog", sensor["try_number"])
    print("\n".join(line[:160] for line in log.splitlines() if "Tunnel session" not in line), flush=True)
    assert "Pausing task as DEFERRED" in log, log[-3000:]
    assert "Trigger fired event" in log, log[-3000:]
    assert "end coordinate of the interval" in log, log[-3000:]
    final = {task: states[-1] for (r, task), states in recorder.states.items() if r == run_id}
    # No table was stopped for a resync, so the resync gate skips its trigger; everything else succeeded.
    assert final.pop("start_resync", "skipped") == "skipped", final
    assert final and all(state == "success" for state in final.values()), final


def check_lineage(stack: AirflowStack, server, emulator, tables: dict) -> None:
    """The OpenLineage provider's listener asked each task for its lineage; its file transport wrote
    the COMPLETE events: MySQL inputs, MaxCompute outputs, schemas, row counts."""
    source_ns, mc_ns = f"mysql://{server.host}:{server.port}", f"maxcompute://{emulator.project}"
    complete = [e for e in stack.lineage_events() if e.get("eventType") == "COMPLETE"]

    def outputs(job: str) -> list[dict]:
        return [o for e in complete if e["job"]["name"] == job for o in e["outputs"]]

    def inputs(job: str) -> list[dict]:
        return [i for e in complete if e["job"]["name"] == job for i in e["inputs"]]

    loads = {o["name"]: o for o in outputs(f"{SETUP}.full_load")}
    base = loads[tables["orders"].base_table]
    assert base["namespace"] == mc_ns and base["outputFacets"]["outputStatistics"]["rowCount"] == 300, base
    assert "amount" in {f["name"] for f in base["facets"]["schema"]["fields"]}
    assert {(i["namespace"], i["name"]) for i in inputs(f"{SETUP}.full_load")} == {(source_ns, "shop.orders"), (source_ns, "shop.customers")}
    logged = [o for o in outputs(f"{INCREMENTAL}.incremental_load") if o["name"] == tables["orders"].log_table]
    assert any(o["outputFacets"]["outputStatistics"]["rowCount"] > 0 for o in logged), logged
    assert (mc_ns, tables["orders"].replica_table) in {(o["namespace"], o["name"]) for o in outputs(f"{INCREMENTAL}.merge")}
    say(f"OpenLineage: {len(complete)} COMPLETE events; full_load, incremental_load and merge report their datasets")


def _end(run: dict) -> float:
    return dt.datetime.fromisoformat(run["data_interval_end"].replace("Z", "+00:00")).timestamp()


def wait_setup(stack: AirflowStack, run_id: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        run = next(r for r in stack.dag_runs(SETUP) if r["dag_run_id"] == run_id)
        if run["state"] == "success":
            return
        bad = [ti for ti in stack.task_instances(SETUP, run_id) if ti["state"] in BAD_TI_STATES]
        if run["state"] == "failed" or bad:
            raise AssertionError(
                f"setup run {run_id} {run['state']}; task instances: "
                f"{[(ti['task_id'], ti['map_index'], ti['state']) for ti in bad]}"
            )
        time.sleep(1)
    raise TimeoutError(f"setup run {run_id} not done in {timeout}s")


class TransitionRecorder:
    """Polls the incremental DAG's task instances and keeps each one's sequence of observed states."""

    def __init__(self, stack: AirflowStack):
        self.stack = stack
        self.states: dict[tuple[str, str], list[str]] = {}
        self.runs: dict[str, dict] = {}

    def poll(self) -> None:
        for run in self.stack.dag_runs(INCREMENTAL):
            self.runs[run["dag_run_id"]] = run
            if run["state"] == "failed":
                raise AssertionError(f"incremental run {run['dag_run_id']} failed: {self.describe()}")
            for ti in self.stack.task_instances(INCREMENTAL, run["dag_run_id"]):
                seen = self.states.setdefault((run["dag_run_id"], ti["task_id"]), [])
                state = ti["state"] or "none"
                if not seen or seen[-1] != state:
                    seen.append(state)
                    say(f"{run['dag_run_id']} {ti['task_id']}: {state}")
                if state in BAD_TI_STATES:
                    raise AssertionError(f"{run['dag_run_id']} {ti['task_id']} is {state}: {self.describe()}")

    def succeeded(self) -> list[str]:
        return [run_id for run_id, run in self.runs.items() if run["state"] == "success"]

    def deferred_and_succeeded(self) -> list[str]:
        return [r for r in self.succeeded() if "deferred" in self.states.get((r, "wait_for_binlog"), [])]

    def describe(self) -> str:
        return json.dumps({f"{r} {t}": s for (r, t), s in self.states.items()}, indent=1)


def test_setup_and_incremental_dags_under_real_scheduler_and_triggerer(
    tmp_path, mysql_server_factory, private_emulator, request
):
    began = time.monotonic()
    # The incremental DAG starts CATCH_UP_MINUTES before the test: those intervals end before the snapshot
    # (empty at once) and, with the minutes that close during the setup, are a catch-up backlog.
    start = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) - dt.timedelta(minutes=CATCH_UP_MINUTES)
    server = mysql_server_factory()
    seed(server)
    spec_dir = tmp_path / "specs"
    spec_dir.mkdir()
    spec_path = spec_dir / f"{NAME}.yaml"
    spec_path.write_text(spec_yaml(start))

    migration = MigrationSpec.from_yaml(spec_path)
    tables = {s.source_table: s for s in select_tables(migration, {"shop": ["orders", "customers"]})}
    orders = tables["orders"]
    replica_asset = f"maxcompute://{private_emulator.project}/{orders.replica_table}"
    stack = AirflowStack(
        tmp_path / "airflow",
        spec_dir,
        {
            "AIRFLOW_CONN_POLARDB_LIVE": polardb_connection(server),
            "AIRFLOW_CONN_MAXCOMPUTE_LIVE": maxcompute_connection(private_emulator),
            # dags/polar_mc_downstream_example.py: scheduled on this replica's Asset
            "POLAR_MC_EXAMPLE_REPLICA_ASSET": replica_asset,
        },
    )
    passed = False
    try:
        stack.start()
        say(f"Airflow starting on {stack.url} (AIRFLOW_HOME {stack.home})")
        health = stack.wait_healthy(timeout=150)
        say(f"healthy after {time.monotonic() - began:.0f}s: {json.dumps(health)}")
        stack.login()
        stack.wait_for_dag(SETUP, timeout=60)
        stack.wait_for_dag(INCREMENTAL, timeout=30)
        stack.wait_for_dag(DOWNSTREAM, timeout=30)
        stack.unpause(DOWNSTREAM)

        stack.unpause(SETUP)
        # The trigger form's Params through the REST API: orders first, then customers (the re-run of a
        # setup whose tables exist accepts them: conflict_mode).
        run_id = stack.trigger(SETUP, {"tables": ["shop.orders"]})
        say(f"triggered {SETUP} for shop.orders: {run_id}")
        wait_setup(stack, run_id, timeout=150)
        assert base_rows(private_emulator, tables) == {"orders": 300, "customers": 0}
        run_id = stack.trigger(SETUP, {"tables": ["shop.customers"], "conflict_mode": "ignore_and_proceed"})
        say(f"triggered {SETUP} for shop.customers: {run_id}")
        wait_setup(stack, run_id, timeout=150)
        assert base_rows(private_emulator, tables) == {"orders": 300, "customers": 50}
        setup_tis = stack.task_instances(SETUP, run_id)
        assert {ti["task_id"] for ti in setup_tis} == {
            "precheck",
            "schema_migration",
            "plan_full_load_groups",
            "full_load",
            "plan_full_load_shards",
            "full_load_shard",
            "full_load_commit",
            "reload_requested",
            "start_reload",
        }
        say(f"setup succeeded after {time.monotonic() - began:.0f}s")

        change_source(server)
        changed_at = time.time()  # the server runs on this machine: its clock is this clock
        say("source changed; unpausing the incremental DAG")
        stack.unpause(INCREMENTAL)
        unpaused = time.monotonic()
        # Catch-up: every minute that closed (plus the settle delay) before the unpause is a run whose
        # sensor finds the source clock already past, so it records its coordinate without waiting.
        backlog_end = dt.datetime.fromtimestamp(time.time() - SETTLE_SECONDS, dt.timezone.utc)
        backlog = max(0, int((backlog_end - start).total_seconds() // 60))
        caught_up = backlog == 0

        recorder = TransitionRecorder(stack)
        backfills = Backfills(stack, private_emulator, migration, tables)
        validated = False
        deferred_run = None
        deadline = time.monotonic() + DEFERRED_RUN_TIMEOUT
        while time.monotonic() < deadline:
            stack.check_alive()
            recorder.poll()
            if not caught_up and len(recorder.succeeded()) >= backlog:
                seconds = time.monotonic() - unpaused
                say(f"caught up {backlog} closed intervals in {seconds:.0f}s ({60 * backlog / seconds:.1f} intervals/min)")
                caught_up = True
            # The partitions follow commit times: the changes above are in the interval holding changed_at.
            done = sorted((r for r in recorder.succeeded() if _end(recorder.runs[r]) > changed_at), key=lambda r: _end(recorder.runs[r]))
            if not validated and done:
                say(f"run {done[0]} (interval holding the changes) succeeded after {time.monotonic() - began:.0f}s; "
                    "comparing replicas")
                problems = compare_replicas(spec_path, server, private_emulator)
                assert not problems, f"replica differs from source: {problems}"
                validated = True
            if validated and deferred_run is None and recorder.deferred_and_succeeded():
                # Checked at once: a backfill may run it again (a new try, without the deferral).
                deferred_run = recorder.deferred_and_succeeded()[0]
                check_deferred_run(stack, recorder, deferred_run)
            if validated and not backfills.started:
                # The three intervals up to the one holding the changes, backfilled twice while the schedule
                # (and the wait for a deferred run) goes on.
                last = dt.datetime.fromisoformat(recorder.runs[done[0]]["logical_date"].replace("Z", "+00:00"))
                backfills.start([last - dt.timedelta(minutes=2 - i) for i in range(3)])
            backfills.advance()
            if deferred_run is not None and backfills.done:
                break
            time.sleep(0.5)
        else:
            raise TimeoutError(
                f"no successful incremental run with a deferred sensor, or the backfills not done, in time "
                f"(backfill {backfills.attempt}, done: {backfills.done}): {recorder.describe()}"
            )

        links = stack.request("GET", f"/api/v2/dags/{INCREMENTAL}/dagRuns/{urllib.parse.quote(deferred_run, safe='')}"
                                     "/taskInstances/merge/links")["extra_links"]  # fmt: skip
        assert "/logview/?h=" in (links.get("MaxCompute Log View") or ""), links
        say(f"merge's MaxCompute Log View link: {links['MaxCompute Log View'].split('&token=')[0]}&token=...")
        # Every merge that updated the orders replica is an event of its Asset: the downstream DAG ran.
        downstream = wait_for(lambda: [r for r in stack.dag_runs(DOWNSTREAM) if r["state"] == "success"], timeout=90,
                              what=f"a successful run of {DOWNSTREAM} (scheduled on {replica_asset})")  # fmt: skip
        say(f"{DOWNSTREAM} ran {len(downstream)} time(s) on {replica_asset}")
        problems = compare_replicas(spec_path, server, private_emulator)
        assert not problems, f"replica differs from source after the backfills: {problems}"
        check_lineage(stack, server, private_emulator, tables)
        say(f"done after {time.monotonic() - began:.0f}s")
        passed = True
    finally:
        if not passed:
            print(stack.log_tails(), flush=True)
        stack.stop()
