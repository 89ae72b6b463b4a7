"""The binlog changing shape under an incremental batch: its files rotated between the interval's
changes, and a column added mid-interval (rows changed before and after the DDL in one batch), the
batch killed at a random point of it and retried. Ends with the checks of tests/reliability/scenario.py."""

from __future__ import annotations

import signal

import pytest

from tests.integration.session_clock import execute_at
from tests.integration.test_incremental import inside, shop  # noqa: F401 - the fixture
from tests.reliability.scenario import check, finish, prepare, retry

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def rotate_and_add_a_column(server, db: str) -> None:
    execute_at(server, inside(0, 20),
               "FLUSH BINARY LOGS",
               f"UPDATE {db}.orders SET amount = amount + 5 WHERE id % 7 = 0",
               "FLUSH BINARY LOGS",
               f"ALTER TABLE {db}.orders ADD COLUMN note VARCHAR(20) NULL",
               f"UPDATE {db}.orders SET note = CONCAT('n', id) WHERE id % 5 = 0",
               "FLUSH BINARY LOGS",
               f"DELETE FROM {db}.orders WHERE id % 11 = 0")  # fmt: skip


def test_binlog_rotated_and_a_column_added_mid_batch_with_a_kill(connections, mysql_server, emulator, shop, fault_tally, workers, tmp_path):  # noqa: F811
    stage = "incremental_load"
    spec, context = prepare(stage, connections, mysql_server, shop, more_changes=rotate_and_add_a_column)
    trace = tmp_path / "points"
    code, out = workers.run(stage, spec, context, f"trace={trace}", tmp_path / "worker.log")
    assert code == 0, out[-3000:]
    points = len(trace.read_text().splitlines())
    trace.unlink()
    # The batch again from scratch (a later attempt rebuilds the same partition), killed this time.
    kill_at = fault_tally.rng("binlog", "ddl").randint(1, points)
    code, out = workers.run(stage, spec, context, f"kill_at={kill_at}", tmp_path / "worker.log")
    assert code in (0, -signal.SIGKILL), out[-3000:]
    fault_tally.injected(2 if code else 1)  # the rotations and the DDL under the reader (one); the kill, if it came
    print(f"{stage}: binlog rotated 3 times and a column added mid-batch; killed at {kill_at}/{points}: {code}", flush=True)
    retry(stage, spec, context)
    finish(stage, spec, mysql_server, shop)
    check(spec, emulator, fault_tally)
