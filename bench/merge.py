"""Benchmark: the merge of the 1st and of the 50th interval into a 1,000,000-row replica, and the full
rebuild of the 50th for reference, in the MaxCompute emulator.

Self-contained: starts the emulator (a subprocess, temporary data dir) and writes, through the real
pyodps Tunnel (not timed), ``bench_t_base`` with 1,000,000 rows (BIGINT key, INT, DOUBLE, VARCHAR(64)
as STRING, DATETIME) and ``bench_t_log`` with 50 hourly partitions of equal size (``--changes`` row
changes each: 50 % updates, 25 % inserts of new keys, 25 % deletes, as DTS `_log` rows: an update
gives a before- and an after-image row, record_ids increasing in binlog order). Each interval is
recorded as loaded (marked done in the migration's checkpoint store, as the incremental load does).

Timed, one merge at a time, each exactly what ``MergeOperator`` runs per table
(``core.merging.ReplicaMerger.merge``: bookkeeping reads, ``ensure_replica``, the step statements,
the marker write), ``merge.snapshots: none`` (a snapshot step on a day boundary would add a copy):

* intervals 1 .. 50 in order with ``merge.mode: incremental``: each reads the replica and its own
  partition. ``first_s`` is the 1st (the replica does not exist yet: ``_base`` + partition 1),
  ``fiftieth_s`` the 50th (the replica + partition 50); ``ratio`` = fiftieth_s / first_s.
* the reference: the 50th again with ``merge.mode: full`` (``_base`` + all 50 partitions, what every
  merge cost before incremental merges), ``full_rebuild_s``; ``full_over_incremental`` = full_rebuild_s
  / fiftieth_s. Its replica must equal the incremental one (row count and order-independent sums over
  every row; ``equal``).

Prints ONE JSON line:
    {"replica_rows", "changes_per_interval", "intervals", "first_s", "fiftieth_s", "ratio",
     "median_s", "full_rebuild_s", "full_over_incremental", "equal"}

    .venv/bin/python bench/merge.py [--rows N] [--changes N] [--intervals N]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from airflow_provider_polar_mc.core import intervals  # noqa: E402
from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore  # noqa: E402
from airflow_provider_polar_mc.core.destination.maxcompute import MaxComputeDestination  # noqa: E402
from airflow_provider_polar_mc.core.destination.upload import TableUpload  # noqa: E402
from airflow_provider_polar_mc.core.merging import ReplicaMerger  # noqa: E402
from airflow_provider_polar_mc.core.model import DestColumn, TableDDL  # noqa: E402
from airflow_provider_polar_mc.core.replica.merge import MergeTarget  # noqa: E402
from airflow_provider_polar_mc.sandbox.emulator import EmulatorProcess  # noqa: E402

LEVELS = ("year", "month", "day", "hour")
PARTITION_COLUMNS = tuple(f"modifytime_{level}" for level in LEVELS)
FIRST_START = dt.datetime(2026, 11, 1, 1, tzinfo=dt.timezone.utc)  # 50 hours from here pass one day boundary
DATA = (DestColumn("id", "bigint"), DestColumn("qty", "int"), DestColumn("ratio", "double"),
        DestColumn("body", "string"), DestColumn("created", "datetime"))
EXTRA = (DestColumn("record_id", "bigint"), DestColumn("operation_flag", "string"), DestColumn("utc_timestamp", "bigint"),
         DestColumn("before_flag", "string"), DestColumn("after_flag", "string"))


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def data_columns(ids: np.ndarray, version: int) -> dict[str, pa.Array]:
    return {
        "id": pa.array(ids, pa.int64()),
        "qty": pa.array((ids * 7 + version) % 100_000, pa.int32()),
        "ratio": pa.array(ids / 3.0 + version),
        "body": pa.array([f"row {i} v{version} " + "x" * 32 for i in ids.tolist()]),
        "created": pa.array(ids * 1_000_000 + version, pa.timestamp("us")),
    }


def upload(dest: MaxComputeDestination, table: str, columns: dict[str, pa.Array], partition: str | None = None) -> None:
    session = TableUpload(dest, table, partition=partition, overwrite=True)
    session.open()
    session.write_block(0, pa.table(columns))
    session.commit([0])


class Workload:
    """The source's keys as the generated changes leave them (to pick keys to update and delete)."""

    def __init__(self, rows: int, seed: int = 20261203):
        self.rng = np.random.default_rng(seed)
        self.alive = np.arange(1, rows + 1, dtype=np.int64)
        self.next_id = rows + 1

    def interval(self, k: int, changes: int) -> dict[str, pa.Array]:
        """One interval's `_log` rows: changes//2 updates, changes//4 inserts, the rest deletes."""
        updates, inserts = changes // 2, changes // 4
        deletes = changes - updates - inserts
        touched = self.rng.choice(len(self.alive), size=updates + deletes, replace=False)
        updated, deleted = self.alive[touched[:updates]], self.alive[touched[updates:]]
        new = np.arange(self.next_id, self.next_id + inserts, dtype=np.int64)
        self.next_id += inserts
        self.alive = np.concatenate([np.delete(self.alive, touched[updates:]), new])
        # Rows in binlog order: each update's before- then after-image, then inserts, then deletes.
        ids = np.concatenate([np.repeat(updated, 2), new, deleted])
        flags = ["U"] * (2 * updates) + ["I"] * inserts + ["D"] * deletes
        before = ["Y", "N"] * updates + ["N"] * inserts + ["Y"] * deletes
        after = ["N", "Y"] * updates + ["Y"] * inserts + ["N"] * deletes
        version = np.concatenate([np.tile([k, k + 1], updates), np.full(inserts + deletes, k + 1)]).astype(np.int64)
        record_ids = (np.int64(k + 1) << 32) + np.arange(len(ids), dtype=np.int64)
        columns = data_columns(ids, 0)
        columns["qty"] = pa.array((ids * 7 + version) % 100_000, pa.int32())  # the version shows in the data
        return {
            "record_id": pa.array(record_ids), "operation_flag": pa.array(flags),
            "utc_timestamp": pa.array(np.full(len(ids), 1_700_000_000 + k * 3600, dtype=np.int64)),
            "before_flag": pa.array(before), "after_flag": pa.array(after), **columns,
        }


def fingerprint(dest: MaxComputeDestination, table: str) -> tuple[int, int, int, int]:
    # Order-independent: the sums of the keys, of a key-and-value mix, and of the text lengths.
    [(rows, keys, mixed, text)] = dest.query(
        f"SELECT COUNT(*), SUM(id), SUM((id % 1000003) * 100003 + qty), SUM(LENGTH(body)) FROM {table}"
    )
    return int(rows), int(keys or 0), int(mixed or 0), int(text or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changes", type=int, default=20_000, help="row changes per interval")
    parser.add_argument("--intervals", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="polar-mc-bench-merge-") as tmp:
        emulator = EmulatorProcess(Path(tmp) / "data", log_level="WARNING").start()
        try:
            dest = MaxComputeDestination(emulator.client())
            store = MaxComputeCheckpointStore(dest, "bench_merge")
            target = MergeTarget("bench_t_base", "bench_t_log", "bench_t", ("id",), "record_id", "after_flag",
                                 PARTITION_COLUMNS)
            dest.create_table(TableDDL(target.base_table, DATA))
            dest.create_table(TableDDL(target.log_table, EXTRA + DATA, tuple(DestColumn(c, "string") for c in PARTITION_COLUMNS)))
            began = time.monotonic()
            upload(dest, target.base_table, data_columns(np.arange(1, args.rows + 1, dtype=np.int64), 0))
            workload = Workload(args.rows)
            ends = []
            for k in range(args.intervals):
                start = FIRST_START + dt.timedelta(hours=k)
                end = start + dt.timedelta(hours=1)
                values = intervals.partition_values(start, end, LEVELS)
                upload(dest, target.log_table, workload.interval(k, args.changes),
                       intervals.partition_spec(PARTITION_COLUMNS, values))
                if k == 0:
                    intervals.claim_first_interval(store, start)
                intervals.mark_done(store, end, {"bench": True})
                ends.append(end)
            log(f"wrote {args.rows:,} base rows and {args.intervals} partitions of {args.changes:,} changes "
                f"in {time.monotonic() - began:.0f}s (not timed)")

            def merge(end: dt.datetime, *, full: bool) -> float:
                merger = ReplicaMerger(dest, store, LEVELS, full=full)
                started = time.monotonic()
                merger.merge(target, end, comment="bench replica")
                return time.monotonic() - started

            seconds = []
            for k, end in enumerate(ends):
                seconds.append(merge(end, full=False))
                if k in (0, len(ends) - 1) or (k + 1) % 10 == 0:
                    log(f"merge {k + 1}: {seconds[-1]:.2f}s")
            incremental = fingerprint(dest, target.replica_table)
            full_s = merge(ends[-1], full=True)
            log(f"full rebuild of interval {len(ends)}: {full_s:.2f}s")
            rebuilt = fingerprint(dest, target.replica_table)
        finally:
            emulator.stop()
    print(json.dumps({
        "replica_rows": incremental[0],
        "changes_per_interval": args.changes,
        "intervals": args.intervals,
        "first_s": round(seconds[0], 3),
        "fiftieth_s": round(seconds[-1], 3),
        "ratio": round(seconds[-1] / seconds[0], 3),
        "median_s": round(statistics.median(seconds), 3),
        "full_rebuild_s": round(full_s, 3),
        "full_over_incremental": round(full_s / seconds[-1], 2),
        "equal": incremental == rebuilt,
    }))


if __name__ == "__main__":
    main()
