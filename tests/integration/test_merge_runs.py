"""Merges in every order against a real MariaDB and the emulator (core/merging.py, docs/merge.md): the
replica equals the source after merges in order, after re-runs out of order and after a backfill of
earlier intervals, and the snapshot partition of an hour equals the source as of that hour's end, read
by a consistent snapshot held open at that moment.

One-minute intervals written "in the past" with session clocks (tests/integration/journal.py), laid
around an hour boundary H so that the interval ending at H is a snapshot point (merge.snapshots: hour).
"""

from __future__ import annotations

import random
import time

import pytest

from tests.integration.journal import MINUTE, setup_migration, table_rows

pytestmark = pytest.mark.integration

HOUR = 3600
INTERVALS = 6  # minutes H-3 .. H+3; the third ends at H


def source_state(rows) -> list[tuple[int, int, int]]:
    return sorted((int(r[0]), int(r[1]), int(r[2])) for r in rows)


def replica_state(emulator, table: str, partition: str | None = None) -> list[tuple[int, int, int]]:
    return sorted((int(r["id"]), int(r["v"]), int(r["tx"])) for r in table_rows(emulator, table, partition))


def test_replica_and_snapshots_follow_the_source_in_order_out_of_order_and_after_a_backfill(
        connections, mysql_server, emulator):
    rng = random.Random(20261203)
    boundary = int((time.time() - (INTERVALS + 1) * MINUTE) // HOUR * HOUR)  # H: an hour in the real past
    base = boundary - 3 * MINUTE
    s = setup_migration(connections, mysql_server, base - 20.5, merge={"snapshots": "hour"})
    journal = s.journal
    held = mysql_server.connect(s.db)
    try:
        starts = [base + k * MINUTE for k in range(INTERVALS)]
        expected: list[list[tuple[int, int, int]]] = []
        journal.write(base - 10, rng)  # after the snapshot, before the first interval
        for start in starts:
            if start == boundary:
                # The source as of H, read later through a consistent snapshot opened now: everything
                # committed before H, nothing after.
                with held.cursor() as cur:
                    cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            for offset in sorted(rng.uniform(0.5, 58.5) for _ in range(6)):
                if rng.random() < 0.3:
                    journal.write(start + offset, rng, statements=[start + offset - 0.4, start + offset - 0.2])
                else:
                    journal.write(start + offset, rng)
            expected.append(journal.source_rows())
        with held.cursor() as cur:
            cur.execute("SELECT id, v, tx FROM t")
            as_of_boundary = source_state(cur.fetchall())
            cur.execute("COMMIT")
        assert as_of_boundary == expected[2] != expected[-1]

        replica = f"{s.spec['batch_rename']['prefix']}t"
        snapshots = f"{replica}_snapshot"
        ds = time.strftime("%Y%m%d%H", time.gmtime(boundary - HOUR))  # the hour that ends at H
        partition = f"ds='{ds}'"

        def run(k: int, *, load: bool = True) -> dict:
            start, end = starts[k], starts[k] + MINUTE
            if load:
                s.capture(start, end)
                s.load(start, end)
            return s.merge_result(start, end)

        # In order: each merge reads the replica and its own partition only (plus the hour's snapshot).
        for k in range(INTERVALS):
            result = run(k)
            assert replica_state(emulator, replica) == expected[k], f"in order, interval {k}"
            assert result["as_of"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(starts[k] + MINUTE))
            if k == 0:
                assert result["steps"][0].startswith(f"{replica} := {s.log_table[:-4]}_base ")  # the first: from the base
            elif k == 2:
                assert result["snapshots"] == [ds] and len(result["steps"]) == 2
                assert result["steps"][0].startswith(f"{snapshots} (ds={ds}) := {replica} + ")
            else:
                [step] = result["steps"]
                assert step.startswith(f"{replica} := {replica} + {s.log_table} partitions after ")
            if k >= 2:
                assert replica_state(emulator, snapshots, partition) == as_of_boundary
        newest = result["as_of"]

        # Out of order: a re-run of any interval leaves the replica at the newest interval, and the
        # snapshot at its hour.
        for k in (3, 0, 5, 2, 1):
            result = run(k, load=False)
            assert result["as_of"] == newest, k
            assert replica_state(emulator, replica) == expected[-1], f"re-run of interval {k}"
            assert replica_state(emulator, snapshots, partition) == as_of_boundary, f"re-run of interval {k}"
            if k < 2:  # before the snapshot: its own hour's snapshot is rebuilt, from the base
                assert result["snapshots"] == [ds] and result["steps"][0].startswith(f"{snapshots} (ds={ds}) := ")
            if k > 2:  # after it: rebuilt forward from the snapshot
                assert result["snapshots"] == [] and result["steps"][0].startswith(f"{replica} := {snapshots} (ds={ds})")

        # A backfill of the earlier intervals (capture, load and merge again, in order): same data, same
        # replica, same snapshot.
        for k in range(3):
            run(k)
            assert replica_state(emulator, replica) == expected[-1], f"backfill of interval {k}"
            assert replica_state(emulator, snapshots, partition) == as_of_boundary
        # An interval before the migration's first one: nothing to merge, nothing moves.
        early = run_before = starts[0] - 2 * MINUTE
        s.capture(early, early + MINUTE)
        s.load(early, early + MINUTE)
        skipped = s.merge_result(run_before, run_before + MINUTE)
        assert skipped["skipped"] and not skipped["steps"]
        assert replica_state(emulator, replica) == expected[-1]

        # merge.mode full (repair): the same replica and snapshot, rebuilt from the base.
        s.spec["merge"]["mode"] = "full"
        result = run(1, load=False)
        assert result["steps"][0].startswith(f"{snapshots} (ds={ds}) := {s.log_table[:-4]}_base + ")
        assert result["as_of"] == newest
        assert replica_state(emulator, replica) == expected[-1]
        assert replica_state(emulator, snapshots, partition) == as_of_boundary
    finally:
        held.close()
        journal.close()
        mysql_server.execute(f"DROP DATABASE IF EXISTS {s.db}")
