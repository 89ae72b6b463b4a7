"""The demo's Airflow side: seeding the source, running the DAGs, validating the replicas.

Runs in the worker subprocess that :mod:`airflow_provider_polar_mc.sandbox.demo` starts (``--worker``),
in its own process group, so Airflow's task runner can replace signal handlers here without touching
the demo process, which owns the lock and the servers. Airflow is imported only inside functions.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

# How the demo process tells the worker where the source is and who its parent is.
SOURCE_ENV = "POLAR_MC_DEMO_SOURCE"
PARENT_ENV = "POLAR_MC_DEMO_PARENT"


def say(message: str) -> None:
    print(f"[demo {dt.datetime.now():%H:%M:%S}] {message}", flush=True)


class Source:
    """The worker's handle on the demo's source server (host, port, user, password from the demo)."""

    def __init__(self, host: str, port: int, user: str, password: str, is_mariadb: bool):
        self.host, self.port, self.user, self.password, self.is_mariadb = host, port, user, password, is_mariadb

    def connect(self):
        import pymysql

        return pymysql.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, autocommit=True
        )

    def execute(self, *statements: str) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()


def seed(server, orders: int) -> None:
    server.execute(
        "CREATE DATABASE shop",
        "CREATE TABLE shop.customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, tier ENUM('basic','gold') NOT NULL,"
        " joined DATE)",
        "CREATE TABLE shop.orders (id BIGINT UNSIGNED PRIMARY KEY, customer_id INT NOT NULL, status VARCHAR(16) NOT NULL,"
        " amount DECIMAL(12,2) NOT NULL, created_at DATETIME(6) NOT NULL, updated_at TIMESTAMP(6) NULL, doc JSON)",
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


def _die_with_parent() -> None:
    """The worker gets SIGKILL if the demo process dies, even by kill -9 (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    parent = os.environ.get(PARENT_ENV)
    if parent and os.getppid() != int(parent):
        os._exit(1)  # the demo is already gone


def _task_summary(run) -> str:
    """'precheck success, full_load[0] success, ...' for a finished DAG run."""
    try:
        tis = sorted(run.get_task_instances(), key=lambda ti: (ti.start_date or dt.datetime.max.replace(tzinfo=dt.timezone.utc), ti.map_index))
    except Exception:  # noqa: BLE001 - a summary only
        return ""
    return ", ".join(
        f"{ti.task_id}{f'[{ti.map_index}]' if ti.map_index >= 0 else ''} {getattr(ti.state, 'value', ti.state)}" for ti in tis
    )


def _report_run(what: str, run, started: float) -> bool:
    ok = run.state == "success"
    summary = _task_summary(run)
    say(f"{what}: {run.state} in {time.monotonic() - started:.0f}s" + (f" ({summary})" if summary else ""))
    if not ok and not os.environ.get("POLAR_MC_DEMO_VERBOSE"):
        say("the task logs above show Airflow's warnings and errors; run again with --verbose for all of them")
    return ok


def worker_main(args: argparse.Namespace) -> int:
    """The Airflow side of the demo; runs in its own process (see the module docstring)."""
    _die_with_parent()
    if not args.verbose:
        import warnings

        # Dependencies' deprecation notices (e.g. starlette's about httpx) are noise for a demo user.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient` is deprecated")
    server = Source(**json.loads(os.environ[SOURCE_ENV]))
    spec_dir = Path(os.environ["POLAR_MC_SPEC_DIR"])

    say(f"seeding shop.orders ({args.orders:,} rows) and shop.customers (500 rows)")
    seed(server, args.orders)
    start = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)
    spec_path = spec_dir / "demo_shop.yaml"
    spec_path.write_text(spec_yaml(start))
    say("initialising the Airflow metadata database")
    migrate = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        capture_output=not args.verbose, text=True, check=False,
    )  # fmt: skip
    if migrate.returncode != 0:
        say(f"`airflow db migrate` failed with exit status {migrate.returncode}:\n{migrate.stdout or ''}{migrate.stderr or ''}")
        return 1

    from airflow_provider_polar_mc.dag_factory import dags_for_spec

    # The setup and incremental DAGs (the resync DAG is not needed: the demo's schema change is followed).
    setup, incremental = dags_for_spec(spec_path)[:2]
    stop = threading.Event()
    writer = threading.Thread(target=write_while_loading, args=(server, stop), daemon=True)
    writer.start()
    say(f"running DAG {setup.dag_id} (precheck, schema migration, full load) while writes continue")
    started = time.monotonic()
    run = setup.test()
    stop.set()
    writer.join()
    if not _report_run(f"DAG {setup.dag_id}", run, started):
        return 1
    if args.until == "setup":
        say("stopping after the setup DAG (--until setup)")
        return 0
    say("changing the source: inserts, updates (one changes primary keys), deletes, ADD COLUMN")
    changes_after_setup(server)
    last_end = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
    wait = (last_end - dt.datetime.now(dt.timezone.utc)).total_seconds() + 3
    say(f"waiting {wait:.0f}s for the current one-minute interval to close")
    time.sleep(max(wait, 0))
    interval = start
    while interval < last_end:
        say(f"running DAG {incremental.dag_id} for the interval starting {interval:%H:%M} UTC")
        started = time.monotonic()
        # A manual run's data interval is the one that ends at its logical date.
        run = incremental.test(logical_date=interval + dt.timedelta(minutes=1))
        if not _report_run(f"DAG {incremental.dag_id} {interval:%H:%M}", run, started):
            return 1
        interval += dt.timedelta(minutes=1)
    return validate(spec_path)


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
