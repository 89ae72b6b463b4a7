"""Benchmark: turn one interval of 200,000 row changes into DTS change rows with ``read_changes``.

Self-contained: starts a private MariaDB/MySQL server (sandbox), creates an orders-like table
(BIGINT PK, INT, VARCHAR(16), DECIMAL(12,2), DOUBLE, SMALLINT, DATETIME(3), TIMESTAMP, VARCHAR(255),
TINYINT), captures a coordinate, writes mixed INSERT / UPDATE / DELETE transactions of 500 rows each
(not timed), captures the end coordinate, then times ``read_changes`` over the interval. For scale,
the server's own decoder (``mariadb-binlog``/``mysqlbinlog --verbose``) is timed over the same
positions. Prints ONE JSON line:

    {"changes", "change_rows", "seconds", "rows_per_s", "peak_rss_mb", "tool_seconds", "tool_rows_per_s", "ratio"}

``changes`` are row changes (an UPDATE counts once); ``change_rows`` the rows produced (an UPDATE
gives a before- and an after-image row); both rates divide ``change_rows`` by the seconds taken, so
``ratio`` (ours / tool) compares the same work.

    .venv/bin/python bench/incremental.py [--inserts N] [--updates N] [--deletes N] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airflow_provider_polar_mc.core.binlog.coordinates import capture
from airflow_provider_polar_mc.core.binlog.reader import read_changes
from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
from airflow_provider_polar_mc.core.planning import describe_table_schema
from airflow_provider_polar_mc.core.selection import select_tables  # noqa: E402
from airflow_provider_polar_mc.sandbox.mysql import PrivateMySqlServer, ServerConfig  # noqa: E402
from airflow_provider_polar_mc.spec import MigrationSpec  # noqa: E402

DATABASE, TABLE = "bench", "orders"
BATCH = 500
DDL = f"""CREATE TABLE `{DATABASE}`.`{TABLE}` (
  id BIGINT NOT NULL PRIMARY KEY, qty INT, code VARCHAR(16), price DECIMAL(12,2), ratio DOUBLE,
  small SMALLINT, created DATETIME(3), updated TIMESTAMP NULL DEFAULT NULL, body VARCHAR(255), flag TINYINT
)"""
# One statement inserts ids [lo, hi) from a recursive CTE (MariaDB 10.2+ and MySQL 8).
INSERT = f"""INSERT INTO `{DATABASE}`.`{TABLE}`
WITH RECURSIVE s(n) AS (SELECT %(lo)s UNION ALL SELECT n + 1 FROM s WHERE n + 1 < %(hi)s)
SELECT n, MOD(n, 1000000), CONCAT('C', LPAD(n, 15, '0')), (n * 37 - 5000000) / 100, n / 3, MOD(n, 30000),
       TIMESTAMP('2024-01-01 00:00:00') + INTERVAL (n * 1001) * 1000 MICROSECOND,
       FROM_UNIXTIME(1700000000 + n), CONCAT(REPEAT('x', 88), n), MOD(n, 100) FROM s"""
UPDATE = f"""UPDATE `{DATABASE}`.`{TABLE}` SET qty = qty + 1, price = price + 0.01, body = CONCAT('u', body),
             updated = FROM_UNIXTIME(1710000000 + id) WHERE id >= %(lo)s AND id < %(hi)s"""
DELETE = f"DELETE FROM `{DATABASE}`.`{TABLE}` WHERE id >= %(lo)s AND id < %(hi)s"


def write_changes(server: PrivateMySqlServer, inserts: int, updates: int, deletes: int) -> None:
    """Interleaved 500-row transactions: inserts fill ids 0.., updates take ids from the bottom and
    deletes from the top of the inserted range, each as soon as its ids exist."""
    if updates + deletes > inserts:
        raise SystemExit("updates + deletes must not exceed inserts")
    conn = server.connect(autocommit=True)
    depth = "max_recursive_iterations" if server.is_mariadb else "cte_max_recursion_depth"
    first_deleted = inserts - deletes
    with conn.cursor() as cur:
        cur.execute(f"SET SESSION {depth} = 1000000")
        done_i = done_u = done_d = 0
        while done_i < inserts or done_u < updates or done_d < deletes:
            if done_i < inserts:
                n = min(BATCH, inserts - done_i)
                cur.execute(INSERT, {"lo": done_i, "hi": done_i + n})
                done_i += n
            n = min(BATCH, updates - done_u)
            if n and done_u + n <= done_i:
                cur.execute(UPDATE, {"lo": done_u, "hi": done_u + n})
                done_u += n
            n = min(BATCH, deletes - done_d)
            if n and first_deleted + done_d + n <= done_i:
                cur.execute(DELETE, {"lo": first_deleted + done_d, "hi": first_deleted + done_d + n})
                done_d += n
    conn.close()


def tool_seconds(server: PrivateMySqlServer, start, end) -> float | None:
    tool = shutil.which("mariadb-binlog") or shutil.which("mysqlbinlog")
    if tool is None:
        return None
    binlog_dir = server.base_dir / "binlog"
    first, last = start.file_index, end.file_index
    files = [str(binlog_dir / f"{start.log_file.rsplit('.', 1)[0]}.{i:06d}") for i in range(first, last + 1)]
    began = time.perf_counter()
    subprocess.run(
        [tool, "--verbose", f"--start-position={start.log_pos}", f"--stop-position={end.log_pos}", *files],
        stdout=subprocess.DEVNULL, check=True,
    )  # fmt: skip
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inserts", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=60_000)
    parser.add_argument("--deletes", type=int, default=40_000)
    parser.add_argument("--profile", action="store_true", help="print the top of a cProfile to stderr")
    args = parser.parse_args()

    server = PrivateMySqlServer(ServerConfig()).start()
    try:
        server.execute(f"CREATE DATABASE `{DATABASE}`", DDL)
        endpoint = MySqlEndpoint(host=server.host, port=server.port, user=server.user, password=server.password)
        conn = endpoint.connect()
        schema = describe_table_schema(conn, DATABASE, TABLE)
        start = capture(conn)
        write_changes(server, args.inserts, args.updates, args.deletes)
        end = capture(conn)
        conn.close()
        spec = MigrationSpec.from_dict(
            {"name": "bench", "source": {"databases": [DATABASE]},
             "objects": [{"database": DATABASE, "tables": [{"name": TABLE}]}]}
        )  # fmt: skip
        selection = select_tables(spec, {DATABASE: [TABLE]})[0]
        key = f"{DATABASE}.{TABLE}"

        profiler = cProfile.Profile() if args.profile else None
        began = time.perf_counter()
        if profiler:
            profiler.enable()
        changes = read_changes(endpoint, start, end, {key: schema}, {key: selection}, spec)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - began
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        change_rows = changes.rows
        tool = tool_seconds(server, start, end)
        result = {
            "changes": args.inserts + args.updates + args.deletes,
            "change_rows": change_rows,
            "seconds": round(seconds, 3),
            "rows_per_s": round(change_rows / seconds),
            "peak_rss_mb": round(peak_rss_mb, 1),
            "tool_seconds": round(tool, 3) if tool else None,
            "tool_rows_per_s": round(change_rows / tool) if tool else None,
            "ratio": round(tool / seconds, 4) if tool else None,
        }
        print(json.dumps(result))
        if profiler:
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    finally:
        server.destroy()


if __name__ == "__main__":
    main()
