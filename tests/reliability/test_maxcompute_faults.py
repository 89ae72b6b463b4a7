"""MaxCompute failing under a stage: a share of its requests answered 500/503, dropped or left to time
out (the emulator's fault injection, seeded from the session's seed), within the retry windows; every
write request failing for longer than ``retry.other_minutes``; the emulator restarted mid-upload.

Workers run with the failpoints' warped clock (core/failpoints.py): the backoffs pass without being
slept, so a case outlasts a window in seconds while every attempt is still a real request.
"""

from __future__ import annotations

import pytest

from tests.integration.test_incremental import shop  # noqa: F401 - the fixture
from tests.reliability.scenario import check, destination_rows, finish, prepare, retry, run_interrupted

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STAGES = ["full_load", "sharded_full_load", "incremental_load", "merge"]
# The client gives up on an answer after 1 s (a "timeout" fault answers after 2 s, processed all the same),
# and pyodps repeats nothing itself: every repetition is the provider's own (core/retry.py).
ODPS_OPTIONS = {"read_timeout": 1, "connect_timeout": 2, "retry_times": 0}
STALL_SECONDS = 2


@pytest.fixture
def faults(emulator):
    """The shared emulator's fault injection, off again after the case."""
    yield emulator
    emulator.clear_faults()


@pytest.mark.parametrize("stage", STAGES)
def test_a_share_of_maxcompute_requests_failing_within_the_window(stage, connections, mysql_server, faults, shop, fault_tally, workers, tmp_path):  # noqa: F811
    spec, context = prepare(stage, connections, mysql_server, shop)
    seed = fault_tally.rng("maxcompute", stage).randrange(10**9)
    rate = 0.05 if "full_load" in stage else 0.1  # a batch and a merge make fewer requests
    faults.set_faults(rate=rate, kinds=["500", "503", "drop", "timeout"], seed=seed, delay=STALL_SECONDS)
    code, out = workers.run(stage, spec, context, "warp", tmp_path / "worker.log", odps_options=ODPS_OPTIONS)
    injected = faults.faults()["injected"]
    faults.clear_faults()
    fault_tally.injected(injected)
    print(f"{stage}: {injected} MaxCompute requests failed (seed {seed})", flush=True)
    assert code == 0, out[-3000:]
    assert injected > 0
    finish(stage, spec, mysql_server, shop)
    check(spec, emulator=faults, fault_tally=fault_tally)


# Beyond a window: every SQL submission answered 503 under a merge (pyodps repeats none: the other
# window is the provider's alone), every POST dropped under a full load (sessions, commits, checkpoints).
OUTAGES = {
    "merge": ({"kinds": ["503"], "paths": ["/api"], "methods": ["POST"]}, "retry.other_minutes (1 min)"),
    "full_load": ({"kinds": ["drop"], "methods": ["POST"]}, "retry.connection_minutes (10 min)"),
}
SHORTEST_WINDOWS = {"connection_minutes": 10, "other_minutes": 1}  # the spec's least: fewer attempts to outlast


@pytest.mark.parametrize("stage", OUTAGES)
def test_maxcompute_failing_beyond_the_window_fails_clearly_and_writes_nothing(stage, connections, mysql_server, faults, shop, fault_tally, workers, tmp_path):  # noqa: F811
    spec, context = prepare(stage, connections, mysql_server, shop)
    spec["retry"] = SHORTEST_WINDOWS
    before = destination_rows(spec)
    outage, window = OUTAGES[stage]
    faults.set_faults(rate=1.0, **outage)
    code, out = workers.run(stage, spec, context, "warp", tmp_path / "worker.log", odps_options=ODPS_OPTIONS)
    injected = faults.faults()["injected"]
    faults.clear_faults()
    fault_tally.injected()  # one outage, however many requests it failed
    print(f"{stage}: MaxCompute failed {injected} requests ({outage['kinds'][0]}); the worker exited {code}", flush=True)
    assert code == 1, out[-3000:]
    assert "RetryWindowSpent" in out and f"failed for longer than {window}" in out, out[-3000:]
    assert destination_rows(spec) == before
    retry(stage, spec, context)  # the cause fixed, the task cleared
    finish(stage, spec, mysql_server, shop)
    check(spec, emulator=faults, fault_tally=fault_tally)


def test_the_emulator_restarted_mid_upload(connections, mysql_server, emulator, shop, fault_tally, workers, tmp_path):  # noqa: F811
    stage = "full_load"
    spec, context = prepare(stage, connections, mysql_server, shop)
    blocks = fault_tally.rng("restart").randint(2, 12)
    code, out = run_interrupted(workers, stage, spec, context, tmp_path, "tunnel.block_written", blocks,
                                emulator.restart, odps_options=ODPS_OPTIONS)  # fmt: skip
    fault_tally.injected()
    print(f"{stage}: emulator restarted after {blocks} blocks; the worker exited {code}", flush=True)
    assert code == 0, out[-3000:]
    finish(stage, spec, mysql_server, shop)
    check(spec, emulator, fault_tally)
