"""One big table loaded by several tasks (key-range shards of one Tunnel session, one commit):
the shard plan, a 4-shard load with one shard killed by SIGKILL and retried, and the setup DAG
mapping a big table's shards beside a small table's group (docs/full-load-shards.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.destination.upload import TableUpload
from airflow_provider_polar_mc.core.full_load import (
    SNAPSHOT_KEY,
    SNAPSHOT_KIND,
    TABLE_KIND,
    FullLoadShard,
    assign_shards,
    shard_count,
)
from airflow_provider_polar_mc.core.incremental import SCHEMA_KIND
from airflow_provider_polar_mc.core.source.chunking import KeyRange
from airflow_provider_polar_mc.operators.full_load import (
    FullLoadCommitOperator,
    FullLoadOperator,
    FullLoadShardOperator,
    full_load_plan,
)
from tests.integration.test_full_load import fill_orders, make_spec, orders_db, read_table, setup_tables  # noqa: F401
from tests.waiting import wait_until

# --- (1) the shard plan, without a server -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("estimated", "shard_rows", "ranges", "expected"),
    [
        (0, 1000, 1, 1),
        (1000, 1000, 5, 1),  # not above shard_rows: one task, grouped
        (1001, 1000, 5, 2),  # just above: at least 2
        (6500, 1000, 30, 7),  # ceil(6500 / 1000)
        (10**9, 1000, 12, 12),  # at most one shard per key range
        (25_000_000, 10_000_000, 500, 3),
    ],
)
def test_shard_count_is_rows_over_shard_rows_capped_by_the_ranges(estimated, shard_rows, ranges, expected):
    assert shard_count(estimated, shard_rows, ranges) == expected


@pytest.mark.parametrize(("ranges", "shards"), [(1, 1), (1, 4), (7, 3), (29, 4), (30, 7), (20000, 1024), (5, 5)])
def test_shards_are_disjoint_contiguous_cover_every_range_and_are_deterministic(ranges, shards):
    runs = assign_shards(ranges, shards)
    assert runs == assign_shards(ranges, shards)  # the same plan on every worker
    assert len(runs) == min(shards, ranges)
    positions = [p for start, stop in runs for p in range(start, stop)]
    assert positions == list(range(ranges))  # each range in exactly one shard, in order
    sizes = [stop - start for start, stop in runs]
    assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1


def test_a_shard_descriptor_round_trips_through_json():
    shard = FullLoadShard("db.orders", 2, 4, 14, 21)
    assert FullLoadShard.from_dict(json.loads(json.dumps(shard.to_dict()))) == shard
    assert shard.name == "db.orders shard 3/4"


# --- (2) four shards in four processes, one killed mid-shard ------------------------------------------------

SHARD_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from airflow_provider_polar_mc.operators.full_load import FullLoadShardOperator
    spec, shard = json.loads(sys.argv[1]), json.loads(sys.argv[2])
    result = FullLoadShardOperator(task_id="full_load_shard", spec=spec, shard=shard, progress_interval=0.2).execute({})
    print("RESULT " + json.dumps(result))
    """
)


def _analyze(server, db: str, table: str) -> int:
    """Refresh the table's statistics (the estimate the shard count is computed from) and return it."""
    server.execute(f"ANALYZE TABLE {db}.{table}")
    return int(server.execute(
        f"SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = '{table}'"
    )[0][0])  # fmt: skip


def _source_rows(server, db: str) -> list[tuple]:
    return sorted(
        (int(i), int(c), s, Decimal(a), d)
        for i, c, s, a, d in server.execute(f"SELECT id, customer, status, amount, created FROM {db}.orders")
    )


def _replica_rows(emulator, base: str) -> list[tuple]:
    return sorted(
        (int(r["id"]), int(r["customer"]), r["status"], Decimal(r["amount"]), _naive(r["created"])) for r in read_table(emulator, base)
    )


def _naive(value):
    value = getattr(value, "to_pydatetime", lambda: value)()
    return value.replace(tzinfo=None) if getattr(value, "tzinfo", None) else value


def _spawn(spec: dict, shard: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SHARD_SCRIPT, json.dumps(spec), json.dumps(shard)],
        env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip


@pytest.mark.integration
def test_four_shards_one_killed_mid_shard_then_retried_give_every_row_exactly_once(connections, mysql_server, emulator, orders_db):  # noqa: F811
    from airflow.sdk.exceptions import AirflowFailException
    from odps.tunnel import TableTunnel

    fill_orders(mysql_server, orders_db, 7000)
    estimated = _analyze(mysql_server, orders_db, "orders")
    # chunk_rows 250: 28 full ranges + the open-ended last one; shard_rows 2000: ceil(~7000 / 2000) = 4 shards.
    spec = make_spec(connections, [orders_db], full_load={"chunk_rows": 250, "parallelism": 1, "shard_rows": 2000})
    setup_tables(spec)
    store = MaxComputeCheckpointStore(MaxComputeDestination(emulator.client()), spec["name"])
    base = spec["batch_rename"]["prefix"] + "orders_base"

    plan = full_load_plan(spec)
    assert plan["groups"] == []  # the only table is big
    shards = plan["shards"]
    assert len(shards) == shard_count(estimated, 2000, 29) == 4, (estimated, shards)
    # C0 and the snapshot schema are recorded by the planning, before any shard reads a row.
    assert store.get(SNAPSHOT_KIND, SNAPSHOT_KEY) is not None
    assert store.get(SCHEMA_KIND, f"{orders_db}.orders") is not None
    state = store.get(TABLE_KIND, f"{orders_db}.orders->{base}")
    ranges = [KeyRange.from_dict(r) for r in state["ranges"]]
    assert len(ranges) == 29 and state["shards"] == [[s["first_range"], s["stop_range"]] for s in shards]
    assert full_load_plan(spec)["shards"] == shards  # planned once: a second planning finds the same plan
    assert store.get(TABLE_KIND, f"{orders_db}.orders->{base}")["upload_id"] == state["upload_id"]

    victim = shards[1]
    victim_blocks = set(range(victim["first_range"], victim["stop_range"]))
    tunnel = TableTunnel(emulator.client())

    def uploaded() -> set[int]:
        return {int(b) for b in tunnel.create_upload_session(base, upload_id=state["upload_id"]).get_block_list()}

    # The victim is throttled (500 rows/s: a block of 250 rows every 0.5 s) so it can be killed half-way.
    slow = {**spec, "throttle": {"full": {"rows_per_s": 500}}}
    others = [_spawn(spec, s) for s in shards if s is not victim]
    proc = _spawn(slow, victim)
    try:
        wait_until(lambda: proc.poll() is not None or len(uploaded() & victim_blocks) >= 2, timeout=60, interval=0.1,
                   what="the throttled shard to upload its first blocks")  # fmt: skip
        assert proc.poll() is None, f"the shard finished before it was killed:\n{proc.communicate()[0].decode()}"
    finally:
        proc.send_signal(signal.SIGKILL)
    out = proc.communicate()[0].decode()
    assert proc.returncode == -signal.SIGKILL, out
    for other in others:
        text = other.communicate(timeout=60)[0].decode()
        assert other.returncode == 0, text
        assert json.loads(text.split("RESULT ", 1)[1])["blocks_resumed"] == 0
    held = uploaded()
    assert held & victim_blocks != victim_blocks  # the kill left blocks of the victim missing
    assert held - victim_blocks == set(range(29)) - victim_blocks  # every other shard's blocks are there
    assert read_table(emulator, base) == []  # nothing visible before the commit

    # The commit refuses, naming the shard and its missing ranges.
    with pytest.raises(AirflowFailException, match=r"shard 2/4 \(map index 1\) lacks ranges \d"):
        FullLoadCommitOperator(task_id="full_load_commit", spec=spec, shards=shards).execute({})

    # The retry re-attaches and uploads only the victim's missing blocks, into the same session.
    retried = FullLoadShardOperator(task_id="full_load_shard", spec=spec, shard=victim).execute({})
    assert retried["shard"] == 1 and retried["blocks"] == len(victim_blocks)
    assert 0 < retried["blocks_resumed"] < retried["blocks"], retried  # it resumed: fewer blocks than the shard has
    assert uploaded() == set(range(29))
    again = FullLoadShardOperator(task_id="full_load_shard", spec=spec, shard=shards[0]).execute({})
    assert again["blocks_resumed"] == again["blocks"] and again["rows"] == 0  # a finished shard uploads nothing

    # A crash between the commit and marking the table done: the commit task only marks it.
    upload = TableUpload(MaxComputeDestination(emulator.client()), base)
    assert upload.attach(state["upload_id"])
    upload.commit(list(range(29)))
    committed = FullLoadCommitOperator(task_id="full_load_commit", spec=spec, shards=shards).execute({})
    assert [(r["table"], r["rows"], r["blocks"], r["skipped"]) for r in committed] == [(base, 7000, 29, False)]

    rows = _replica_rows(emulator, base)
    assert len(rows) == len({r[0] for r in rows}) == 7000
    assert rows == _source_rows(mysql_server, orders_db)  # every source row exactly once, every value

    # Re-runs are harmless: the table is done, so the shard, the commit and the planning skip it.
    assert FullLoadShardOperator(task_id="s", spec=spec, shard=victim).execute({})["skipped"]
    assert FullLoadCommitOperator(task_id="c", spec=spec, shards=shards).execute({})[0]["skipped"]
    assert full_load_plan(spec) == {"groups": [], "shards": [], "resync": []}
    assert len(read_table(emulator, base)) == 7000


# --- (3) the setup DAG: a big table's shards as mapped task instances, a small table grouped -----------------


def _spec_yaml(name: str, connections, db: str, prefix: str) -> str:
    return textwrap.dedent(
        f"""\
        name: {name}
        source: {{conn_id: {connections.source}, databases: [{db}]}}
        destination: {{conn_id: {connections.destination}}}
        batch_rename: {{prefix: {prefix}}}
        full_load: {{chunk_rows: 300, parallelism: 2, shard_rows: 1000}}
        """
    )


@pytest.mark.integration
def test_setup_dag_maps_a_big_tables_shards_and_groups_the_small_one(
    tmp_path: Path, monkeypatch, airflow_db, connections, mysql_server, emulator, orders_db  # noqa: F811
):
    from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
    from airflow_provider_polar_mc.core.full_load import base_load_id
    from airflow_provider_polar_mc.core.planning import plan_selected
    from airflow_provider_polar_mc.core.resync import resync_state
    from airflow_provider_polar_mc.dag_factory import resync_dag, setup_dag
    from airflow_provider_polar_mc.hooks import resolve
    from airflow_provider_polar_mc.operators._base import load_spec
    from airflow_provider_polar_mc.spec import MigrationSpec

    fill_orders(mysql_server, orders_db, 3000)
    mysql_server.execute(
        f"CREATE TABLE {orders_db}.customers (id INT PRIMARY KEY, name VARCHAR(20))",
        f"INSERT INTO {orders_db}.customers VALUES " + ", ".join(f"({i}, 'c{i}')" for i in range(1, 51)),
    )
    estimated = _analyze(mysql_server, orders_db, "orders")
    _analyze(mysql_server, orders_db, "customers")
    name, prefix = f"sh_{uuid.uuid4().hex[:8]}", f"s{uuid.uuid4().hex[:6]}_"
    path = tmp_path / f"{name}.yaml"
    path.write_text(_spec_yaml(name, connections, orders_db, prefix))
    # DAG.test() writes the DAG to the metadata database from the DAGs folder's DAG file, which finds
    # the spec here.
    monkeypatch.setenv("AIRFLOW__POLAR_MC__SPEC_DIR", str(tmp_path))
    dag = setup_dag(path, MigrationSpec.from_yaml(path))

    run = dag.test()
    states = {(ti.task_id, ti.map_index): ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    shard_tis = sorted(i for (t, i) in states if t == "full_load_shard")
    assert shard_tis == list(range(shard_count(estimated, 1000, 11))) and len(shard_tis) >= 2, states
    assert [i for (t, i) in states if t == "full_load"] == [0]  # the small table, in one group
    assert states[("full_load_commit", -1)] == "success"

    orders = [r["id"] for r in read_table(emulator, f"{prefix}orders_base")]
    assert len(orders) == len(set(orders)) == 3000 and set(orders) == {3 * n for n in range(1, 3001)}
    assert sorted(r["id"] for r in read_table(emulator, f"{prefix}customers_base")) == list(range(1, 51))
    # Each loaded _base is an Asset event, attached by the task that completed it to the migration's alias.
    events = {uri: (task, extra) for uri, task, extra in _asset_events(f"maxcompute://{emulator.project}/{prefix}")}
    source = f"mysql://{mysql_server.host}:{mysql_server.port}/{orders_db}"
    assert events == {
        f"maxcompute://{emulator.project}/{prefix}orders_base": ("full_load_commit", {"source": f"{source}.orders", "rows": 3000}),
        f"maxcompute://{emulator.project}/{prefix}customers_base": ("full_load", {"source": f"{source}.customers", "rows": 50}),
    }

    # Run again: every table is done, the shard list is empty (the shard task skipped, the commit still
    # succeeds) and nothing is loaded twice.
    again = dag.test()
    states = {(ti.task_id, ti.map_index): ti.state for ti in again.get_task_instances()}
    assert again.state == "success", states
    assert states.get(("full_load_commit", -1)) == "success", states
    assert states[("full_load_shard", -1)] == "skipped", states  # mapped over an empty list
    assert len(read_table(emulator, f"{prefix}orders_base")) == 3000

    # The trigger form: reload one table. It was loaded, so it goes to the resync DAG (a new _base
    # generation at a new coordinate), the full load loads nothing, the other table is untouched.
    store = MaxComputeCheckpointStore(resolve.destination(load_spec(str(path))), name)
    [customers] = [p.selection for p in plan_selected(load_spec(str(path)), resolve.source_endpoint(load_spec(str(path))),
                                                       tables=[f"{orders_db}.customers"])]  # fmt: skip
    first_load = base_load_id(store, customers)
    mysql_server.execute(f"UPDATE {orders_db}.customers SET name = 'renamed' WHERE id <= 5")
    chosen = dag.test(run_conf={"tables": [f"{orders_db}.customers"], "conflict_mode": "ignore_and_proceed"})
    states = {(ti.task_id, ti.map_index): ti.state for ti in chosen.get_task_instances()}
    assert chosen.state == "success", states
    assert states[("full_load", -1)] == "skipped" and states[("start_reload", -1)] == "success", states
    [requested] = _dag_runs(f"polar_mc__{name}__resync")
    assert requested["conf"] == {"tables": [f"{orders_db}.customers"]}
    migration = MigrationSpec.from_yaml(path)
    reloaded = resync_dag(path, migration).test(run_conf=requested["conf"])
    assert reloaded.state == "success"
    state = resync_state(store, f"{orders_db}.customers")
    assert state["status"] == "done" and state["base_load"] not in (None, first_load)  # replaced once, by a new load
    names = {r["id"]: r["name"] for r in read_table(emulator, f"{prefix}customers_base")}
    assert len(names) == 50 and all(names[i] == "renamed" for i in range(1, 6))
    assert len(read_table(emulator, f"{prefix}orders_base")) == 3000


def _asset_events(uri_prefix: str) -> list[tuple[str, str, dict]]:
    """(asset URI, source task, extra) of the Asset events in the metadata database under ``uri_prefix``."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.uri, AssetEvent.source_task_id, AssetEvent.extra)
            .join(AssetEvent, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri.startswith(uri_prefix))
        ).all()
    return [(uri, task, dict(extra or {})) for uri, task, extra in rows]


def _dag_runs(dag_id: str) -> list[dict]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [{"run_id": r.run_id, "conf": dict(r.conf or {})} for r in session.scalars(select(DagRun).where(DagRun.dag_id == dag_id))]


@pytest.mark.integration
def test_a_full_only_migration_reloads_a_chosen_table_in_one_new_overwrite(connections, mysql_server, emulator, orders_db):  # noqa: F811
    """The trigger form's tables without incremental migration: no chain to keep, so a loaded table is
    simply loaded again; its _base is replaced by one new commit (the source's rows now, once each)."""
    fill_orders(mysql_server, orders_db, 500)
    spec = make_spec(connections, [orders_db], migration_types=["schema", "full"])
    setup_tables(spec)
    [first] = FullLoadOperator(task_id="full", spec=spec).execute({})
    mysql_server.execute(f"DELETE FROM {orders_db}.orders WHERE id <= 30", f"UPDATE {orders_db}.orders SET status = 'x' WHERE id = 33")
    plan = full_load_plan(spec, tables=[f"{orders_db}.orders"])
    assert plan == {"groups": [[f"{orders_db}.orders"]], "shards": [], "resync": []}
    [again] = FullLoadOperator(task_id="full", spec=spec, tables=plan["groups"][0]).execute({})
    assert not again["skipped"] and again["upload_id"] != first["upload_id"]
    rows = read_table(emulator, f"{spec['batch_rename']['prefix']}orders_base")
    assert len(rows) == len({r["id"] for r in rows}) == 490 and {r["id"]: r["status"] for r in rows}[33] == "x"
    [done] = FullLoadOperator(task_id="full", spec=spec).execute({})  # without a choice: loaded, not again
    assert done["skipped"] and done["upload_id"] == again["upload_id"]
