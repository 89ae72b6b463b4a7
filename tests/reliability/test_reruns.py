"""Airflow re-running intervals out of order: a batch and its merge cleared and run again after a later
interval ran (killed once at a random point, then retried), and a backfill of both intervals
over the loaded ones. Ends with the checks of tests/reliability/scenario.py (the replica reflects
the latest interval: a re-run of an older one never moves it back)."""

from __future__ import annotations

import signal

import pytest

from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
from airflow_provider_polar_mc.operators.merge import MergeOperator
from tests.integration.session_clock import execute_at
from tests.integration.test_incremental import inside, interval, run_interval, shop  # noqa: F401 - the fixture
from tests.reliability.scenario import check, prepare, retry

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_an_interval_cleared_after_a_later_one_ran_then_a_backfill_over_both(connections, mysql_server, emulator, shop, fault_tally, workers, tmp_path):  # noqa: F811
    spec, context = prepare("merge", connections, mysql_server, shop)
    MergeOperator(task_id="merge", spec=spec).execute(context)
    execute_at(mysql_server, inside(1, 10),
               f"UPDATE {shop}.orders SET amount = amount + 3, status = 'late' WHERE id % 4 = 0",
               f"DELETE FROM {shop}.orders WHERE id % 13 = 0",
               f"UPDATE {shop}.customers SET name = CONCAT(name, ' +') WHERE code LIKE 'c2%'")  # fmt: skip
    run_interval(spec, 1)
    # Interval 0 cleared: its batch runs again (killed at a random point, then retried), then its merge.
    kill_at = fault_tally.rng("rerun").randint(1, 12)  # a batch of interval 0 passes ~20 points
    code, out = workers.run("incremental_load", spec, context, f"kill_at={kill_at}", tmp_path / "worker.log")
    assert code in (0, -signal.SIGKILL), out[-3000:]
    fault_tally.injected(2 if code else 1)  # the re-run out of order; the kill, if it came
    print(f"interval 0 re-run after interval 1 (killed at point {kill_at}: {code})", flush=True)
    retry("incremental_load", spec, context)
    MergeOperator(task_id="merge", spec=spec).execute(context)
    check(spec, emulator, fault_tally)
    # A backfill of intervals 0 and 1 over the loaded ones (Airflow's "reprocess completed runs").
    for i in (0, 1):
        IncrementalLoadOperator(task_id="incremental_load", spec=spec).execute(interval(i))
        MergeOperator(task_id="merge", spec=spec).execute(interval(i))
    fault_tally.injected()
    check(spec, emulator, fault_tally)
