"""FullLoadOperator against the private server and the emulator: values, resume after kill -9, filters,
mappings, throttling and the snapshot coordinate."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from decimal import Decimal

import pytest

from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
from airflow_provider_polar_mc.core.full_load import SNAPSHOT_KEY, SNAPSHOT_KIND, TABLE_KIND, group_tables
from airflow_provider_polar_mc.core.values import wall_clock_from_text
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from tests.integration.test_values import (  # noqa: F401
    DATABASE,
    TABLE,
    _as_record_value,
    _normalise_read_value,
    every_type,
    read_snapshot,
)
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def make_spec(connections, databases, **overrides) -> dict:
    spec = {
        "name": f"fl_{uuid.uuid4().hex[:8]}",
        "source": {"conn_id": connections.source, "databases": list(databases)},
        "destination": {"conn_id": connections.destination},
        "batch_rename": {"prefix": f"f{uuid.uuid4().hex[:6]}_"},
    }
    spec.update(overrides)
    return spec


def setup_tables(spec: dict) -> None:
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})


def read_table(emulator, name: str) -> list[dict]:
    """Every row of ``name`` through SQL, TIMESTAMP_NTZ as its text (pyodps's readers end in 2262)."""
    odps = emulator.client()
    columns = odps.get_table(name).table_schema.simple_columns
    wall_clocks = {c.name for c in columns if str(c.type).lower() == "timestamp_ntz"}
    select = ", ".join(f"CAST(`{c.name}` AS STRING) AS `{c.name}`" if c.name in wall_clocks else f"`{c.name}`"
                       for c in columns)  # fmt: skip
    with odps.execute_sql(f"SELECT {select} FROM {name}").open_reader(tunnel=True, limit=False) as reader:
        rows = [dict(zip([c.name for c in r._columns], r.values, strict=True)) for r in reader]
    return [{k: wall_clock_from_text(v) if k in wall_clocks else v for k, v in row.items()} for row in rows]


@pytest.fixture
def orders_db(mysql_server):
    db = f"fl_{uuid.uuid4().hex[:8]}"
    mysql_server.execute(
        f"CREATE DATABASE {db}",
        f"CREATE TABLE {db}.orders (id BIGINT PRIMARY KEY, customer INT, status VARCHAR(10), amount DECIMAL(12,2),"
        " created DATETIME(3))",
        "SET SESSION max_recursive_iterations = 1000000" if mysql_server.is_mariadb else "SET SESSION cte_max_recursion_depth = 1000000",
    )
    yield db
    mysql_server.execute(f"DROP DATABASE {db}")


def fill_orders(server, db: str, rows: int) -> None:
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SET SESSION max_recursive_iterations = 1000000" if server.is_mariadb else "SET SESSION cte_max_recursion_depth = 1000000")
        cur.execute(
            f"INSERT INTO {db}.orders WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {rows}) "
            "SELECT n * 3, n % 100, IF(n % 10 = 0, 'test', 'paid'), n / 100, "
            "TIMESTAMP('2024-01-01') + INTERVAL n SECOND + INTERVAL (n % 1000) * 1000 MICROSECOND FROM s"
        )
    conn.close()


def source_totals(server, db: str, where: str = "TRUE") -> tuple[int, Decimal]:
    return server.execute(f"SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM {db}.orders WHERE {where}")[0]


def test_every_type_round_trips_exactly(connections, mysql_server, emulator, every_type):  # noqa: F811
    spec = make_spec(connections, [DATABASE], objects=[{"database": DATABASE, "tables": [TABLE]}], full_load={"chunk_rows": 3, "parallelism": 2})
    setup_tables(spec)
    results = FullLoadOperator(task_id="full", spec=spec).execute({})
    base = spec["batch_rename"]["prefix"] + TABLE + "_base"
    count = mysql_server.execute(f"SELECT COUNT(*) FROM `{DATABASE}`.`{TABLE}`")[0][0]
    assert [(r["table"], r["rows"], r["blocks"]) for r in results] == [(base, count, count // 3 + 1)]
    assert results[0]["warnings"]  # zero dates etc. are counted per column
    reference = read_snapshot(mysql_server, every_type["plans"])
    rows = sorted(read_table(emulator, base), key=lambda r: r["id"])
    for plan in every_type["plans"]:
        want = [_as_record_value(v, plan) for v in reference[plan.destination].array.to_pylist()]
        got = [_normalise_read_value(r[plan.destination.lower()], plan) for r in rows]
        assert got == want, plan.destination


def test_filter_mapping_snapshot_coordinate_and_rerun(connections, mysql_server, emulator, orders_db):
    fill_orders(mysql_server, orders_db, 5000)
    target = f"o{uuid.uuid4().hex[:6]}"
    spec = make_spec(
        connections,
        [orders_db],
        objects=[{"database": orders_db, "tables": [{"name": "orders", "target": target, "filter": "status <> 'test'", "columns": {"amount": "total"}}]}],
        full_load={"chunk_rows": 700, "parallelism": 3},
    )
    setup_tables(spec)
    results = FullLoadOperator(task_id="full", spec=spec).execute({})
    count, amount = source_totals(mysql_server, orders_db, "status <> 'test'")
    assert results[0]["rows"] == count == 4500 and results[0]["blocks"] == 5000 // 700 + 1  # ranges split all keys
    rows = read_table(emulator, f"{target}_base")
    assert len(rows) == count and {r["status"] for r in rows} == {"paid"}
    assert sum(r["total"] for r in rows) == amount and "amount" not in rows[0]

    store = MaxComputeCheckpointStore(MaxComputeDestination(emulator.client()), spec["name"])
    c0 = store.get(SNAPSHOT_KIND, SNAPSHOT_KEY)
    assert c0["log_file"].startswith("mysql-bin.") and c0["log_pos"] > 0
    # A re-run skips the loaded table and keeps C0.
    again = FullLoadOperator(task_id="full", spec=spec).execute({})
    assert again[0]["skipped"] and again[0]["rows"] == count
    assert store.get(SNAPSHOT_KIND, SNAPSHOT_KEY) == c0


KILL_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
    spec = json.loads(sys.argv[1])
    FullLoadOperator(task_id="full", spec=spec, progress_interval=0.2).execute({})
    """
)


def test_kill_9_mid_load_then_retry_gives_every_row_exactly_once(connections, mysql_server, emulator, orders_db):
    fill_orders(mysql_server, orders_db, 60000)
    spec = make_spec(
        connections,
        [orders_db],
        full_load={"chunk_rows": 2000, "parallelism": 2},
        throttle={"full": {"rows_per_s": 12000}},  # slow enough to be killed half-way
    )
    setup_tables(spec)
    env = {**os.environ}
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, json.dumps(spec)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    store = MaxComputeCheckpointStore(MaxComputeDestination(emulator.client()), spec["name"])
    base = spec["batch_rename"]["prefix"] + "orders_base"
    from odps.tunnel import TableTunnel

    tunnel = TableTunnel(emulator.client())

    def blocks_uploaded() -> int:
        state = store.items(TABLE_KIND)
        upload_id = next(iter(state.values())).get("upload_id") if state else None
        return len(tunnel.create_upload_session(base, upload_id=upload_id).get_block_list()) if upload_id else 0

    try:
        # Kill once some blocks are uploaded (the throttle makes the whole load take ~5 s), not after a guess.
        wait_until(lambda: proc.poll() is not None or blocks_uploaded() >= 2, timeout=120, interval=0.1,
                   what="the child to upload its first blocks")  # fmt: skip
        assert proc.poll() is None, f"the load finished before it was killed:\n{proc.communicate()[0].decode()}"
    finally:
        proc.send_signal(signal.SIGKILL)
    out = proc.communicate()[0].decode()
    assert proc.returncode == -signal.SIGKILL, out
    upload_id = next(iter(store.items(TABLE_KIND).values()))["upload_id"]

    assert len(read_table(emulator, base)) == 0  # nothing committed before the kill

    spec_fast = {**spec, "throttle": {}}
    results = FullLoadOperator(task_id="full", spec=spec_fast).execute({})
    assert 0 < results[0]["blocks_resumed"] < results[0]["blocks"] == 31, results
    assert store.get(TABLE_KIND, next(iter(store.items(TABLE_KIND))))["upload_id"] == upload_id
    rows = read_table(emulator, base)
    ids = [r["id"] for r in rows]
    count, amount = source_totals(mysql_server, orders_db)
    assert len(ids) == len(set(ids)) == count == results[0]["rows"] == 60000
    assert sum(r["amount"] for r in rows) == amount


def test_rows_per_second_limit_holds(connections, mysql_server, orders_db):
    fill_orders(mysql_server, orders_db, 40000)
    spec = make_spec(connections, [orders_db], full_load={"chunk_rows": 2000, "parallelism": 2}, throttle={"full": {"rows_per_s": 4000}})
    setup_tables(spec)
    started = time.monotonic()
    results = FullLoadOperator(task_id="full", spec=spec).execute({})
    elapsed = time.monotonic() - started
    rate = results[0]["rows"] / elapsed
    assert 4000 * 0.8 <= rate <= 4000 * 1.2, (rate, elapsed)


def test_three_thousand_tables_fit_in_the_map_length():
    sizes = {f"db.t{i}": (i * 7919) % 10**6 for i in range(3000)}
    groups = group_tables(sizes, 1024)
    assert len(groups) == 1024
    assert sorted(t for g in groups for t in g) == sorted(sizes)
    weights = [sum(sizes[t] for t in g) for g in groups]
    assert max(weights) <= 2 * (sum(weights) / len(weights)) + max(sizes.values())
