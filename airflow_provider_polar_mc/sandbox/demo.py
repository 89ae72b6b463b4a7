"""The demo: a whole migration on this machine, end to end, through the real DAGs.

A private MariaDB/MySQL source with a small shop database, the local MaxCompute emulator, and a
throwaway Airflow home. The setup DAG (precheck, schema, full load) runs while writes go on; then
inserts, updates (one changes a primary key), deletes and an ADD COLUMN happen; the incremental DAG
runs its one-minute intervals (binlog sensor, incremental load, merge); finally every replica is
compared with its source table, row for row. Exit status 0 when replica == source.

    python -m airflow_provider_polar_mc.sandbox.demo [--keep] [--orders N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

DEMO_DIR = Path(os.environ.get("POLAR_MC_DEMO_DIR", Path.cwd() / ".demo"))


def say(message: str) -> None:
    print(f"[demo {dt.datetime.now():%H:%M:%S}] {message}", flush=True)


def seed(server, orders: int) -> None:
    server.execute(
        "CREATE DATABASE shop",
        "CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, tier ENUM('basic','gold') NOT NULL,"
        " joined DATE)",
        "CREATE TABLE shop.orders (id BIGINT UNSIGNED PRIMARY KEY, customer_id INT NOT NULL, status VARCHAR(16) NOT NULL,"
        " amount DECIMAL(12,2) NOT NULL, created_at DATETIME(6) NOT NULL, updated_at TIMESTAMP(6) NULL, doc JSON)",
        "SET SESSION max_recursive_iterations = 10000000" if server.is_mariadb else "SET SESSION cte_max_recursion_depth = 10000000",
    )
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SET SESSION max_recursive_iterations = 10000000" if server.is_mariadb else "SET SESSION cte_max_recursion_depth = 10000000")
        cur.execute(
            "INSERT INTO shop.customers WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 500)"
            " SELECT n, CONCAT('customer ', n, IF(n % 7 = 0, ' 😀', '')), IF(n % 5 = 0, 'gold', 'basic'),"
            " DATE('2020-01-01') + INTERVAL n DAY FROM s"
        )
        cur.execute(
            f"INSERT INTO shop.orders WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {orders})"
            " SELECT n, 1 + n % 500, ELT(1 + n % 3, 'new', 'paid', 'shipped'), (n % 100000) / 100,"
            " TIMESTAMP('2025-01-01') + INTERVAL n SECOND + INTERVAL n % 1000000 MICROSECOND,"
            " TIMESTAMP('2025-06-01') + INTERVAL n MINUTE, JSON_OBJECT('n', n, 'tags', JSON_ARRAY('a', 'b')) FROM s"
        )
    conn.close()


def write_while_loading(server, stop: threading.Event) -> None:
    """Writes during the full load: they reach the replica through the binlog."""
    conn = server.connect()
    i = 0
    with conn.cursor() as cur:
        while not stop.is_set():
            i += 1
            cur.execute("UPDATE shop.orders SET status = 'paid', updated_at = UTC_TIMESTAMP(6) WHERE id = %s", (1 + (i * 7919) % 1000,))
            cur.execute(
                "INSERT INTO shop.orders VALUES (%s, 1, 'new', 9.99, UTC_TIMESTAMP(6), NULL, NULL)", (10_000_000 + i,)
            )
            time.sleep(0.02)
    conn.close()


def changes_after_setup(server) -> None:
    server.execute(
        "INSERT INTO shop.customers VALUES (501, 'late joiner', 'gold', '2026-01-01')",
        "UPDATE shop.customers SET tier = 'gold' WHERE id BETWEEN 1 AND 20",
        "DELETE FROM shop.customers WHERE id BETWEEN 490 AND 495",
        "UPDATE shop.orders SET id = id + 20000000 WHERE id BETWEEN 100 AND 109",  # primary-key change
        "DELETE FROM shop.orders WHERE id % 97 = 0 AND id < 5000",
        "ALTER TABLE shop.orders ADD COLUMN channel VARCHAR(8) NULL AFTER status, ADD COLUMN weight DOUBLE NULL",
        "UPDATE shop.orders SET channel = 'web', weight = 1.5 WHERE id BETWEEN 200 AND 400",
        "INSERT INTO shop.orders VALUES (30000000, 2, 'new', 'app', 12.50, UTC_TIMESTAMP(6), NULL, JSON_ARRAY(1, 2), 0.25)",
    )


def spec_yaml(start: dt.datetime) -> str:
    return f"""\
name: demo_shop
source:
  conn_id: polardb_default
  databases: [shop]
destination:
  conn_id: maxcompute_default
partition: [year, month, day, hour, minute]
full_load:
  chunk_rows: 20000
  parallelism: 2
incremental:
  start_date: "{start.isoformat()}"
  settle_seconds: 2
  poll_seconds: 1
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--keep", action="store_true", help="leave the server and emulator running at the end")
    args = parser.parse_args(argv)

    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    DEMO_DIR.mkdir(parents=True)
    (DEMO_DIR / "specs").mkdir()
    os.environ.update(
        AIRFLOW_HOME=str(DEMO_DIR / "airflow"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{DEMO_DIR / 'airflow' / 'airflow.db'}",
        AIRFLOW__CORE__DAGS_FOLDER=str(Path(__file__).resolve().parents[2] / "dags"),
        POLAR_MC_SPEC_DIR=str(DEMO_DIR / "specs"),
    )
    from airflow_provider_polar_mc.sandbox.connections import maxcompute_connection, polardb_connection
    from airflow_provider_polar_mc.sandbox.emulator import EmulatorProcess
    from airflow_provider_polar_mc.sandbox.mysql import PrivateMySqlServer

    say("starting a private MariaDB/MySQL source (binlog ROW/FULL/FULL) and the MaxCompute emulator")
    server = PrivateMySqlServer(base_dir=DEMO_DIR / "mysql").start()
    emulator = EmulatorProcess(DEMO_DIR / "emulator", project="demo").start()
    try:
        os.environ["AIRFLOW_CONN_POLARDB_DEFAULT"] = polardb_connection(server)
        os.environ["AIRFLOW_CONN_MAXCOMPUTE_DEFAULT"] = maxcompute_connection(emulator)
        say(f"seeding shop.orders ({args.orders:,} rows) and shop.customers (500 rows)")
        seed(server, args.orders)
        start = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
        spec_path = DEMO_DIR / "specs" / "demo_shop.yaml"
        spec_path.write_text(spec_yaml(start))
        say("initialising the Airflow metadata database")
        subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], check=True, capture_output=True)

        from airflow_provider_polar_mc.dag_factory import dags_for_spec

        setup, incremental = dags_for_spec(spec_path)
        stop = threading.Event()
        writer = threading.Thread(target=write_while_loading, args=(server, stop), daemon=True)
        writer.start()
        say(f"running DAG {setup.dag_id} (precheck, schema migration, full load) while writes continue")
        run = setup.test()
        stop.set()
        writer.join()
        if run.state != "success":
            say(f"setup DAG ended {run.state}")
            return 1
        say("changing the source: inserts, updates (one changes primary keys), deletes, ADD COLUMN")
        changes_after_setup(server)
        last_end = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        wait = (last_end - dt.datetime.now(dt.timezone.utc)).total_seconds() + 3
        say(f"waiting {wait:.0f}s for the current one-minute interval to close")
        time.sleep(max(wait, 0))
        interval = start
        while interval < last_end:
            say(f"running DAG {incremental.dag_id} for the interval starting {interval:%H:%M} UTC")
            # A manual run's data interval is the one that ends at its logical date.
            run = incremental.test(logical_date=interval + dt.timedelta(minutes=1))
            if run.state != "success":
                say(f"incremental run ended {run.state}")
                return 1
            interval += dt.timedelta(minutes=1)
        return validate(spec_path)
    finally:
        if args.keep:
            say(f"left running: source 127.0.0.1:{server.port} (root), emulator {emulator.endpoint}; Ctrl-C to stop")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        emulator.stop()
        server.stop()


def validate(spec_path: Path) -> int:
    from airflow_provider_polar_mc.core.validate import compare_migration
    from airflow_provider_polar_mc.hooks import resolve
    from airflow_provider_polar_mc.spec import MigrationSpec

    spec = MigrationSpec.from_yaml(spec_path)
    results = compare_migration(spec, resolve.source_endpoint(spec), resolve.destination(spec))
    for result in results:
        say(f"{result.source} vs replica {result.destination}: {result.source_rows:,} / {result.destination_rows:,} rows, "
            + ("IDENTICAL" if result.equal else f"DIFFERENT {json.dumps(result.summary())}"))
    ok = bool(results) and all(r.equal for r in results)
    say("replica == source" if ok else "replica differs from source")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
