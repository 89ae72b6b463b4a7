"""Two workers running the same task instance at once (a zombie Airflow lost track of, and its retry):
the table, or the interval's `_log` partition, is still written once."""

from __future__ import annotations

import pytest

from tests.integration.test_incremental import shop  # noqa: F401 - the fixture
from tests.reliability.scenario import check, finish, prepare, retry

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize("stage", ["full_load", "sharded_full_load", "incremental_load"])
def test_a_zombie_and_its_retry_at_once_write_everything_once(stage, connections, mysql_server, emulator, shop, fault_tally, workers, tmp_path):  # noqa: F811
    spec, context = prepare(stage, connections, mysql_server, shop)
    outcomes = workers.run_together(stage, spec, context, tmp_path / "worker.log", copies=2)
    fault_tally.injected()
    codes = [code for code, _ in outcomes]
    print(f"{stage}: two workers at once exited {codes}", flush=True)
    assert all(code in (0, 1) for code in codes), outcomes
    if codes != [0, 0]:  # one lost a race: it must have failed cleanly, and Airflow retries it
        retry(stage, spec, context)
    finish(stage, spec, mysql_server, shop)
    check(spec, emulator, fault_tally)
