"""Benchmark: one incremental batch of 200,000 row changes, binlog to committed `_log` partition, end to end.

Self-contained: starts a private MariaDB/MySQL server and the MaxCompute emulator (subprocesses,
temporary directories), creates ``bench.orders`` (BIGINT PK, INT, VARCHAR(16), DECIMAL(12,2), DOUBLE,
SMALLINT, DATETIME(3), TIMESTAMP, VARCHAR(255), TINYINT), migrates the schema and runs the full load
(which records the snapshot coordinate C0), then writes mixed INSERT / UPDATE / DELETE transactions of
500 rows each (not timed). The chain's first interval (the hour holding C0) is recorded as empty and
run untimed (it claims the chain, which only the first batch does); the current end of binlog is
recorded as the end coordinate of the next interval, whose batch reads (C0, end]. Timed, each in a
child process of its own (connections as ``AIRFLOW_CONN_*`` variables):

* the batch: ``IncrementalLoadOperator.execute`` for that interval: read the recorded range, write and
  commit the table's ``_log`` partition, mark the interval done. Its wall time gives ``rows_per_s``;
  its peak RSS (``getrusage(RUSAGE_SELF)`` in the child: the server and the emulator are not counted)
  ``peak_rss_mb``. The partition is then checked against the changes written (rows per operation).
* decode only: ``stream_changes`` over the same range into a sink that drops the chunks
  (``decode_rows_per_s``): what reading and converting costs without the upload.
* the reference: the server's own binlog tool (``mariadb-binlog``/``mysqlbinlog --verbose``) decoding
  the same positions to /dev/null (``tool_rows_per_s``).

``changes`` are row changes (an UPDATE counts once); ``change_rows`` the `_log` rows they give (an
UPDATE gives a before- and an after-image row). Every rate divides ``change_rows`` by the seconds
taken, so ``ratio`` (= rows_per_s / tool_rows_per_s) compares the same work. Prints ONE JSON line:

    {"changes", "change_rows", "seconds", "rows_per_s", "decode_rows_per_s", "tool_rows_per_s",
     "ratio", "peak_rss_mb", "block_rows"}

    .venv/bin/python bench/incremental.py [--changes N] [--block-rows N] [--profile FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATABASE, TABLE = "bench", "orders"
SOURCE_ID, DEST_ID = "bench_polar", "bench_mc"
RESULT_PREFIX = "bench-incremental-result: "
BATCH = 500
# Of every 10 changes: 5 inserts, 3 updates, 2 deletes.
SHARES = (5, 3, 2)
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


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_spec(block_rows: int) -> dict:
    return {
        "name": "bench_incremental",
        "source": {"conn_id": SOURCE_ID, "databases": [DATABASE]},
        "destination": {"conn_id": DEST_ID},
        "migration_types": ["schema", "full", "incremental"],
        "objects": [{"database": DATABASE, "tables": [TABLE]}],
        "partition": ["year", "month", "day", "hour"],
        "heartbeat": {"enabled": False},
        "merge": {"enabled": False},
        "incremental": {"block_rows": block_rows},
    }


def interval_of(moment: float) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.fromtimestamp(moment, dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
    return start, start + dt.timedelta(hours=1)


def split(changes: int) -> tuple[int, int, int]:
    inserts = changes * SHARES[0] // 10
    updates = changes * SHARES[1] // 10
    return inserts, updates, changes - inserts - updates


# -- the timed children ----------------------------------------------------------------------------
def batch_child(args: argparse.Namespace) -> dict:
    """The whole batch, as the incremental DAG's incremental_load task runs it."""
    # Imported before the clock starts: loading pyodps and the provider's modules is a per-process
    # constant (about a second), not part of the batch's throughput.
    import airflow_provider_polar_mc.core.destination.checkpoint  # noqa: F401
    import airflow_provider_polar_mc.core.incremental  # noqa: F401
    import airflow_provider_polar_mc.hooks.resolve  # noqa: F401
    from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator

    start, end = (dt.datetime.fromisoformat(x) for x in args.interval.split("/"))
    operator = IncrementalLoadOperator(task_id="incremental_load", spec=make_spec(args.block_rows))
    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    began = time.perf_counter()
    summary = operator.execute({"data_interval_start": start, "data_interval_end": end})
    seconds = time.perf_counter() - began
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.profile)
    rows = sum(t["rows"] for t in summary["tables"].values())
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": seconds, "rows": rows, "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_s": usage.ru_utime + usage.ru_stime}


def decode_child(args: argparse.Namespace) -> dict:
    """Reading and converting the same range, the chunks dropped: the batch without its upload."""
    from airflow_provider_polar_mc.core import intervals
    from airflow_provider_polar_mc.core.binlog.reader import stream_changes
    from airflow_provider_polar_mc.core.binlog.schema_history import TableSchema
    from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
    from airflow_provider_polar_mc.core.full_load import SNAPSHOT_KEY, SNAPSHOT_KIND
    from airflow_provider_polar_mc.core.model import BinlogCoordinate
    from airflow_provider_polar_mc.core.selection import select_tables
    from airflow_provider_polar_mc.hooks import resolve
    from airflow_provider_polar_mc.spec import MigrationSpec

    spec = MigrationSpec.from_dict(make_spec(args.block_rows))
    store = MaxComputeCheckpointStore(resolve.destination(spec), spec.name)
    start = BinlogCoordinate.from_dict(store.get(SNAPSHOT_KIND, SNAPSHOT_KEY))
    end = intervals.recorded_end(store, dt.datetime.fromisoformat(args.interval.split("/")[1]))
    key = f"{DATABASE}.{TABLE}"
    schema = TableSchema.from_dict(store.get("schema_c0", key))
    selection = select_tables(spec, {DATABASE: [TABLE]})[0]
    began = time.perf_counter()
    changes = stream_changes(
        resolve.source_endpoint(spec), start, end, {key: schema}, {key: selection}, spec,
        on_chunk=lambda table, rows: None, chunk_rows=args.block_rows,
    )  # fmt: skip
    return {"seconds": time.perf_counter() - began, "rows": changes.rows}


# -- the driver ------------------------------------------------------------------------------------
def write_changes(server, inserts: int, updates: int, deletes: int) -> None:
    """Interleaved 500-row transactions: inserts fill ids 0.., updates take ids from the bottom and
    deletes from the top of the inserted range, each as soon as its ids exist."""
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


def tool_seconds(server, start, end) -> float:
    tool = shutil.which("mariadb-binlog") or shutil.which("mysqlbinlog")
    if tool is None:
        raise SystemExit("no mariadb-binlog/mysqlbinlog on PATH (the reference)")
    binlog_dir = server.base_dir / "binlog"
    stem = start.log_file.rsplit(".", 1)[0]
    files = [str(binlog_dir / f"{stem}.{i:06d}") for i in range(start.file_index, end.file_index + 1)]
    began = time.perf_counter()
    subprocess.run(
        [tool, "--verbose", f"--start-position={start.log_pos}", f"--stop-position={end.log_pos}", *files],
        stdout=subprocess.DEVNULL, check=True,
    )  # fmt: skip
    return time.perf_counter() - began


def run_child(mode: str, args: argparse.Namespace, interval: str) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--interval", interval,
           "--block-rows", str(args.block_rows)]  # fmt: skip
    if args.profile and mode == "batch":
        cmd += ["--profile", args.profile]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, env=os.environ).stdout.decode()
    (line,) = [x for x in out.splitlines() if x.startswith(RESULT_PREFIX)]
    return json.loads(line[len(RESULT_PREFIX) :])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200_000, help="row changes, 5:3:2 I/U/D (%(default)s)")
    parser.add_argument("--block-rows", type=int, default=50_000, help="incremental.block_rows (%(default)s, the spec default)")
    parser.add_argument("--profile", default=None, help="write a cProfile of the batch child to this file")
    parser.add_argument("--child", choices=("batch", "decode"), help=argparse.SUPPRESS)
    parser.add_argument("--interval", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        import logging

        logging.basicConfig(level=logging.INFO if os.environ.get("BENCH_VERBOSE") else logging.WARNING, stream=sys.stderr)
        result = batch_child(args) if args.child == "batch" else decode_child(args)
        print(RESULT_PREFIX + json.dumps(result))
        return 0
    # Only the result goes to stdout; everything else (Airflow's task logging included) to stderr.
    result_out, sys.stdout = sys.stdout, sys.stderr

    from airflow_provider_polar_mc.core import intervals
    from airflow_provider_polar_mc.core.binlog.coordinates import capture
    from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
    from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination
    from airflow_provider_polar_mc.core.endpoint import MySqlEndpoint
    from airflow_provider_polar_mc.core.full_load import SNAPSHOT_KEY, SNAPSHOT_KIND
    from airflow_provider_polar_mc.core.model import BinlogCoordinate
    from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
    from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
    from airflow_provider_polar_mc.sandbox.connections import maxcompute_connection, polardb_connection
    from airflow_provider_polar_mc.sandbox.emulator import EmulatorProcess
    from airflow_provider_polar_mc.sandbox.mysql import PrivateMySqlServer, ServerConfig
    from airflow_provider_polar_mc.spec import MigrationSpec

    inserts, updates, deletes = split(args.changes)
    tmp = Path(tempfile.mkdtemp(prefix="bench-incremental-"))
    server = PrivateMySqlServer(
        ServerConfig(extra={"innodb_buffer_pool_size": "1G", "innodb_flush_log_at_trx_commit": "2"}), base_dir=tmp / "mysql"
    )
    emulator = EmulatorProcess(tmp / "emulator" / "data", project="bench_project", log_level="WARNING")
    try:
        (tmp / "emulator").mkdir()
        server.start()
        emulator.start()
        os.environ[f"AIRFLOW_CONN_{SOURCE_ID.upper()}"] = polardb_connection(server)
        os.environ[f"AIRFLOW_CONN_{DEST_ID.upper()}"] = maxcompute_connection(emulator)
        server.execute(f"CREATE DATABASE `{DATABASE}`", DDL)
        spec = make_spec(args.block_rows)
        SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
        FullLoadOperator(task_id="full_load", spec=spec).execute({})  # records C0 (and the empty table)
        destination = MaxComputeDestination(emulator.client(), emulator.project)
        store = MaxComputeCheckpointStore(destination, spec["name"])
        c0 = BinlogCoordinate.from_dict(store.get(SNAPSHOT_KIND, SNAPSHOT_KEY))
        log(f"writing {inserts:,} inserts, {updates:,} updates, {deletes:,} deletes")
        began = time.perf_counter()
        write_changes(server, inserts, updates, deletes)
        log(f"written in {time.perf_counter() - began:.1f}s")
        endpoint = MySqlEndpoint(host=server.host, port=server.port, user=server.user, password=server.password)
        conn = endpoint.connect()
        end = capture(conn)
        conn.close()
        # The chain's first interval (the hour holding C0) is recorded empty and run untimed, in a process
        # of its own: it claims the chain, which only the first batch ever does. The timed batch is the
        # next interval, as every later run is: it reads (C0, end].
        first_start, first_end = interval_of(c0.captured_at)
        intervals.record_end(store, first_end, c0)
        run_child("batch", args, f"{first_start.isoformat()}/{first_end.isoformat()}")
        start_moment, end_moment = first_end, first_end + dt.timedelta(hours=1)
        intervals.record_end(store, end_moment, end)
        interval = f"{start_moment.isoformat()}/{end_moment.isoformat()}"

        tool = tool_seconds(server, c0, end)
        log(f"{Path(shutil.which('mariadb-binlog') or shutil.which('mysqlbinlog')).name}: {tool:.2f}s")
        decode = run_child("decode", args, interval)
        log(f"decode only: {decode['seconds']:.2f}s")
        batch = run_child("batch", args, interval)
        log(f"batch: {batch['seconds']:.2f}s, peak RSS {batch['peak_rss_mb']:.0f} MB, "
            f"CPU of the batch process {batch['cpu_s']:.1f}s (imports included)")

        change_rows = inserts + 2 * updates + deletes
        log_table = f"{TABLE}_log"
        migration = MigrationSpec.from_dict(spec)
        values = intervals.partition_values(start_moment, end_moment, migration.partition)
        where = " AND ".join(f"{c} = '{v}'" for c, v in zip(migration.partition_columns(), values, strict=True))
        counts = dict(destination.query(f"SELECT operation_flag, COUNT(*) FROM {log_table} WHERE {where} GROUP BY operation_flag"))
        want = {"I": inserts, "U": 2 * updates, "D": deletes}
        if {k: int(v) for k, v in counts.items()} != want or batch["rows"] != change_rows or decode["rows"] != change_rows:
            raise SystemExit(f"_log rows per operation {counts}, want {want}; batch rows {batch['rows']}, "
                             f"decode rows {decode['rows']}, want {change_rows}")
        log(f"verified: {log_table} holds {counts}")
        rows_per_s = change_rows / batch["seconds"]
        tool_rate = change_rows / tool
        result = {
            "changes": inserts + updates + deletes,
            "change_rows": change_rows,
            "seconds": round(batch["seconds"], 3),
            "rows_per_s": round(rows_per_s),
            "decode_rows_per_s": round(change_rows / decode["seconds"]),
            "tool_rows_per_s": round(tool_rate),
            "ratio": round(rows_per_s / tool_rate, 4),
            "peak_rss_mb": round(batch["peak_rss_mb"], 1),
            "block_rows": args.block_rows,
        }
        print(json.dumps(result), file=result_out, flush=True)
    finally:
        emulator.stop()
        server.destroy()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
