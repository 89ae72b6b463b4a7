"""kill -9 of the worker at random points of a full load, a sharded full load, an incremental batch and
a merge, then the retry: nothing lost, nothing duplicated.

Each stage runs in a worker process of its own, forked by a server that imported the provider once
(tests/reliability/worker.py), with failpoint settings (core/failpoints.py). The first case of a stage
runs it whole with ``trace=``, counting the points it passes (every range read, Tunnel block, commit,
SQL statement, checkpoint write, decoded binlog chunk); each further case draws one of them from the
session's seed and SIGKILLs the worker there. The retry runs the stage again; every case then finishes
the migration (batch and merge) and ends with the checks of tests/reliability/scenario.py.
"""

from __future__ import annotations

import signal

import pytest

from tests.integration.test_incremental import shop  # noqa: F401 - the fixture
from tests.reliability.scenario import check, finish, prepare, retry

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# Kill cases per stage, after the traced run: 20 random kill points per CI run (more in the cases of
# test_binlog_under_the_reader.py and test_reruns.py).
KILLS = {"full_load": 5, "sharded_full_load": 5, "incremental_load": 6, "merge": 4}
_points: dict[str, int] = {}  # stage -> points its traced run passed


def trace_points(workers, stage: str, spec: dict, context: dict, trace, output) -> None:
    """Run ``stage`` whole in a worker, counting the failpoints it passes."""
    code, out = workers.run(stage, spec, context, f"trace={trace}", output)
    assert code == 0, out[-3000:]
    _points[stage] = len(trace.read_text().splitlines())
    trace.unlink()
    print(f"{stage}: {_points[stage]} points traced", flush=True)


@pytest.mark.parametrize("stage,case", [(stage, case) for stage, kills in KILLS.items() for case in range(kills + 1)])
def test_kill_9_at_a_random_point_then_retry(stage, case, connections, mysql_server, emulator, shop, fault_tally, workers, tmp_path):  # noqa: F811
    trace, output = tmp_path / "points", tmp_path / "worker.log"
    if case and stage not in _points:  # run alone (-k): trace the stage first, on a migration of its own
        trace_points(workers, stage, *prepare(stage, connections, mysql_server, shop), trace, output)
    spec, context = prepare(stage, connections, mysql_server, shop)
    if case == 0:
        trace_points(workers, stage, spec, context, trace, output)
    else:
        kill_at = fault_tally.rng(stage, case).randint(1, _points[stage])
        code, out = workers.run(stage, spec, context, f"trace={trace},kill_at={kill_at}", output)
        passed = trace.read_text().splitlines() if trace.exists() else []
        if code == -signal.SIGKILL:
            fault_tally.injected()
            print(f"{stage}: killed at point {kill_at}/{_points[stage]} ({passed[-1]})", flush=True)
        else:  # this run passed fewer points than the traced one (threads' order): it completed
            assert code == 0, out[-3000:]
            print(f"{stage}: completed after {len(passed)} points, before point {kill_at}", flush=True)
        retry(stage, spec, context)
    finish(stage, spec, mysql_server, shop)
    check(spec, emulator, fault_tally)
