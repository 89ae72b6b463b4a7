"""Benchmark: full load of a 1,000,000-row, 10-column orders table from MariaDB/MySQL into the emulator.

Self-contained: starts a private MariaDB/MySQL server and the MaxCompute emulator (both subprocesses,
temporary directories), creates ``benchdb.orders`` (BIGINT PK, INT, VARCHAR(16), DECIMAL(12,2), DOUBLE,
SMALLINT, DATETIME(3), TIMESTAMP, VARCHAR(255), TINYINT) filled by ``INSERT ... SELECT`` from a
recursive CTE (not timed), migrates the schema with ``SchemaMigrateOperator``, then runs
``FullLoadOperator`` (connections as ``AIRFLOW_CONN_*`` variables) in a child process, whose wall time
and peak RSS (``getrusage(RUSAGE_SELF)`` in that child: the server and the emulator are not counted)
are the result. The destination's row count, SUM(id) and SUM(amount) are checked against the source.

The reference is the server's own C client scanning the same table over TCP
(``mariadb -B -e 'SELECT * FROM benchdb.orders' > /dev/null``, best of two), timed in the same run.

Prints ONE JSON line: rows, seconds, rows_per_s, mb_per_s (Arrow bytes uploaded, 10^6 B), peak_rss_mb,
client_scan_rows_per_s, ratio (= rows_per_s / client_scan_rows_per_s), chunk_rows, parallelism.
Progress goes to stderr.

    .venv/bin/python bench/full_load.py [--rows N] [--chunk-rows N] [--parallelism K] [--profile FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATABASE = "benchdb"
TABLE = "orders"
SEQ_ROWS = 1_000_000  # the recursive CTE makes a helper table of this many numbers once; batches reuse it
SOURCE_ID, DEST_ID = "bench_polar", "bench_mc"
RESULT_PREFIX = "bench-full-load-result: "
# Tuned on 2 cores shared by the server, the emulator and the loader: as fast as 100,000 x 4 (the
# spec's defaults; the machine is CPU-bound either way) with ~120 MB less peak RSS. Each loader
# thread costs ~40-50 MB of peak RSS (connectorx's Rust buffers while it builds a range's Arrow).
DEFAULT_CHUNK_ROWS = 50_000
DEFAULT_PARALLELISM = 2

DDL = f"""CREATE TABLE {DATABASE}.{TABLE} (
  id BIGINT NOT NULL PRIMARY KEY,
  customer_id INT NOT NULL,
  status VARCHAR(16) NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  weight DOUBLE,
  quantity SMALLINT NOT NULL,
  created_at DATETIME(3) NOT NULL,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  note VARCHAR(255),
  flag TINYINT NOT NULL
) ENGINE=InnoDB"""

# Values of realistic width: ~150 bytes a row as text, every column different per row.
ROW_SELECT = (
    "SELECT n, n % 100000, ELT(1 + n % 5, 'paid', 'shipped', 'pending', 'cancelled', 'refunded'),"
    " (n % 1000000) / 100 + 0.01, n / 7, n % 30000,"
    " TIMESTAMP('2023-01-01') + INTERVAL n SECOND + INTERVAL (n % 1000) * 1000 MICROSECOND,"
    " FROM_UNIXTIME(1600000000 + n),"
    " CONCAT('order note ', n, ' ', REPEAT('x', 40 + n % 60)), n % 100"
)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_spec(chunk_rows: int, parallelism: int) -> dict:
    return {
        "name": "bench_full_load",
        "source": {"conn_id": SOURCE_ID, "databases": [DATABASE]},
        "destination": {"conn_id": DEST_ID},
        "migration_types": ["schema", "full"],
        "objects": [{"database": DATABASE, "tables": [TABLE]}],
        "full_load": {"chunk_rows": chunk_rows, "parallelism": parallelism},
    }


def set_connections(server, emulator) -> None:
    from airflow_provider_polar_mc.sandbox.connections import maxcompute_connection, polardb_connection

    os.environ[f"AIRFLOW_CONN_{SOURCE_ID.upper()}"] = polardb_connection(server)
    os.environ[f"AIRFLOW_CONN_{DEST_ID.upper()}"] = maxcompute_connection(emulator)


# -- the loading child -----------------------------------------------------------------------------
def child(args: argparse.Namespace) -> int:
    """Run the full load in this process; print {"seconds", "rows", "bytes", "peak_rss_mb"} on stdout."""
    import logging

    from airflow_provider_polar_mc.operators.full_load import FullLoadOperator

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    operator = FullLoadOperator(task_id="full_load", spec=make_spec(args.chunk_rows, args.parallelism), progress_interval=5.0)
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    results = operator.execute({})
    seconds = time.perf_counter() - started
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    (result,) = results
    print(RESULT_PREFIX + json.dumps({"seconds": seconds, "rows": result["rows"], "bytes": result["bytes"], "peak_rss_mb": peak_kb / 1024}))
    return 0


# -- the driver ------------------------------------------------------------------------------------
def fill(server, rows: int) -> None:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DATABASE}")
            cur.execute(DDL)
            seq = min(rows, SEQ_ROWS)
            cur.execute(
                "SET SESSION max_recursive_iterations = 10000000"
                if server.is_mariadb
                else "SET SESSION cte_max_recursion_depth = 10000000"
            )
            cur.execute(f"CREATE TABLE {DATABASE}.seq (n BIGINT NOT NULL PRIMARY KEY) ENGINE=InnoDB")
            cur.execute(
                f"INSERT INTO {DATABASE}.seq WITH RECURSIVE s(n) AS "
                f"(SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < {seq}) SELECT n FROM s"
            )
            for offset in range(0, rows, seq):
                count = min(seq, rows - offset)
                cur.execute(
                    f"INSERT INTO {DATABASE}.{TABLE} {ROW_SELECT} "
                    f"FROM (SELECT n + {offset} AS n FROM {DATABASE}.seq WHERE n <= {count}) x"
                )
            cur.execute(f"DROP TABLE {DATABASE}.seq")
            cur.execute(f"ANALYZE TABLE {DATABASE}.{TABLE}")
    finally:
        conn.close()


def client_binary() -> str:
    for name in ("mariadb", "mysql"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("no mariadb/mysql command-line client on PATH")


def client_scan(server, rows: int) -> float:
    """Rows/s of the C client reading the whole table over TCP into /dev/null (best of two)."""
    cmd = [
        client_binary(), "--protocol=TCP", "-h", server.host, "-P", str(server.port), "-u", server.user,
        "-B", "-e", f"SELECT * FROM {DATABASE}.{TABLE}",
    ]  # fmt: skip
    if server.password:
        cmd.insert(-2, f"-p{server.password}")
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
        best = min(best, time.perf_counter() - started)
    return rows / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS, help="full_load.chunk_rows (%(default)s)")
    parser.add_argument("--parallelism", type=int, default=DEFAULT_PARALLELISM, help="full_load.parallelism (%(default)s)")
    parser.add_argument("--profile", default=None, help="write a cProfile of the loading child to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories (for inspection)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        return child(args)
    # Only the result goes to stdout; everything else (Airflow's task logging included) to stderr.
    result_out, sys.stdout = sys.stdout, sys.stderr

    from airflow_provider_polar_mc.sandbox.emulator import EmulatorProcess
    from airflow_provider_polar_mc.sandbox.mysql import PrivateMySqlServer, ServerConfig

    tmp = Path(tempfile.mkdtemp(prefix="bench-full-load-"))
    server = PrivateMySqlServer(
        ServerConfig(extra={"innodb_buffer_pool_size": "1G", "innodb_flush_log_at_trx_commit": "2"}), base_dir=tmp / "mysql"
    )
    emulator = EmulatorProcess(tmp / "emulator" / "data", project="bench_project", log_level="WARNING")
    try:
        (tmp / "emulator").mkdir()
        server.start()
        emulator.start()
        set_connections(server, emulator)
        log(f"server on port {server.port}, emulator at {emulator.url}; filling {args.rows:,} rows")
        started = time.perf_counter()
        fill(server, args.rows)
        log(f"filled in {time.perf_counter() - started:.1f}s")
        scan_rate = client_scan(server, args.rows)
        log(f"C client scan: {scan_rate:,.0f} rows/s")

        from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator

        SchemaMigrateOperator(task_id="schema", spec=make_spec(args.chunk_rows, args.parallelism)).execute({})
        log(f"schema migrated; full load with chunk_rows={args.chunk_rows:,}, parallelism={args.parallelism}")

        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--rows", str(args.rows),
               "--chunk-rows", str(args.chunk_rows), "--parallelism", str(args.parallelism)]  # fmt: skip
        if args.profile:
            cmd += ["--profile", args.profile]
        out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, env=os.environ).stdout.decode()
        (line,) = [x for x in out.splitlines() if x.startswith(RESULT_PREFIX)]
        sys.stderr.write("".join(f"  | {x}\n" for x in out.splitlines() if not x.startswith(RESULT_PREFIX)))
        loaded = json.loads(line[len(RESULT_PREFIX) :])

        from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination

        (source,) = server.execute(f"SELECT COUNT(*), SUM(id), SUM(amount) FROM {DATABASE}.{TABLE}")
        destination = MaxComputeDestination(emulator.client(), emulator.project)
        (dest,) = destination.query(f"SELECT COUNT(*), SUM(id), SUM(amount) FROM {TABLE}_base")
        want = (int(source[0]), int(source[1]), Decimal(source[2]))
        got = (int(dest[0]), int(dest[1]), Decimal(str(dest[2])))
        if got != want or loaded["rows"] != args.rows:
            raise SystemExit(f"destination (count, sum(id), sum(amount)) = {got}, source = {want}, loader rows {loaded['rows']}")
        log(f"verified: count={got[0]:,} sum(id)={got[1]} sum(amount)={got[2]}")
    finally:
        emulator.stop()
        server.destroy()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)

    rows_per_s = args.rows / loaded["seconds"]
    print(
        json.dumps(
            {
                "rows": args.rows,
                "seconds": round(loaded["seconds"], 3),
                "rows_per_s": round(rows_per_s),
                "mb_per_s": round(loaded["bytes"] / 1e6 / loaded["seconds"], 1),
                "peak_rss_mb": round(loaded["peak_rss_mb"], 1),
                "client_scan_rows_per_s": round(scan_rate),
                "ratio": round(rows_per_s / scan_rate, 3),
                "chunk_rows": args.chunk_rows,
                "parallelism": args.parallelism,
            }
        ),
        file=result_out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
