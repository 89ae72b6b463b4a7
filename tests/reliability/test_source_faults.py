"""The source failing under a stage, through a TCP proxy on loopback (tests/reliability/proxy.py):
its connections cut mid-read at a random byte, stalled past the read timeout, the server restarted,
and the source gone for longer than ``retry.connection_minutes``.

Workers run with the failpoints' warped clock (core/failpoints.py): the backoffs pass without being
slept, so the 720-minute window is outlasted in seconds while every attempt is a real connection.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.test_incremental import shop  # noqa: F401 - the fixture
from tests.reliability.proxy import TcpProxy
from tests.reliability.scenario import check, destination_rows, finish, prepare, retry, run_interrupted

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def proxy(mysql_server):
    proxy = TcpProxy(mysql_server.host, mysql_server.port)
    yield proxy
    proxy.close()


def through(proxy: TcpProxy, connections, server, **extra) -> dict[str, str]:
    """The worker's source connection, through ``proxy``."""
    conn = {"conn_type": "polardb_mysql", "host": proxy.host, "port": proxy.port, "login": server.user,
            "password": server.password, "extra": {"connect_timeout": 2, "read_timeout": 5, **extra}}  # fmt: skip
    return {f"AIRFLOW_CONN_{connections.source.upper()}": json.dumps(conn)}


# The full load's own cut is the sharded one's (the same range reader, from a planning session on);
# a plain full load meets a restarted source below.
@pytest.mark.parametrize("stage", ["sharded_full_load", "incremental_load"])
def test_source_connections_cut_mid_read_within_the_window_resume(stage, connections, mysql_server, emulator, shop, proxy, fault_tally, workers, tmp_path):  # noqa: F811
    spec, context = prepare(stage, connections, mysql_server, shop)
    budget = fault_tally.rng("cut", stage).randint(500, 20_000)  # each stage reads more through the proxy
    proxy.cut_after(budget)
    code, out = workers.run(stage, spec, context, "warp", tmp_path / "worker.log", env=through(proxy, connections, mysql_server))
    print(f"{stage}: source connections cut after {budget} bytes of {proxy.server_bytes} ({proxy.cuts} reset); "
          f"the worker exited {code}", flush=True)
    assert code == 0, out[-3000:]
    assert proxy.cuts, f"the stage read fewer than {budget} bytes: no cut"
    fault_tally.injected()
    finish(stage, spec, mysql_server, shop)
    check(spec, emulator, fault_tally)


def test_a_binlog_stream_stalled_past_its_read_timeout_resumes(connections, mysql_server, emulator, shop, proxy, fault_tally, workers, tmp_path):  # noqa: F811
    stage = "incremental_load"
    spec, context = prepare(stage, connections, mysql_server, shop)
    proxy.stall(5)  # from the first byte: the session's reads wait past read_timeout, then the stream's
    code, out = workers.run(stage, spec, context, "warp", tmp_path / "worker.log",
                            env=through(proxy, connections, mysql_server, read_timeout=2))  # fmt: skip
    print(f"{stage}: source stalled 5 s under a 2 s read timeout; the worker exited {code}", flush=True)
    assert code == 0, out[-3000:]
    fault_tally.injected()
    finish(stage, spec, mysql_server, shop)
    check(spec, emulator, fault_tally)


def test_the_source_restarted_mid_load(connections, mysql_server, emulator, shop, fault_tally, workers, tmp_path):  # noqa: F811
    stage = "full_load"
    spec, context = prepare(stage, connections, mysql_server, shop)
    ranges = fault_tally.rng("source restart").randint(2, 20)
    code, out = run_interrupted(workers, stage, spec, context, tmp_path, "full_load.range", ranges, mysql_server.restart)
    fault_tally.injected()
    print(f"{stage}: source restarted after {ranges} ranges; the worker exited {code}", flush=True)
    assert code == 0, out[-3000:]
    finish(stage, spec, mysql_server, shop)
    check(spec, emulator, fault_tally)


def test_the_source_gone_beyond_the_connection_window_fails_clearly_and_writes_nothing(connections, mysql_server, emulator, shop, proxy, fault_tally, workers, tmp_path):  # noqa: F811
    stage = "full_load"
    spec, context = prepare(stage, connections, mysql_server, shop)
    spec["retry"] = {"connection_minutes": 10, "other_minutes": 1}  # the spec's least: fewer attempts to outlast
    before = destination_rows(spec)
    proxy.refuse()
    code, out = workers.run(stage, spec, context, "warp", tmp_path / "worker.log", env=through(proxy, connections, mysql_server))
    fault_tally.injected()
    print(f"{stage}: source refused every connection; the worker exited {code}", flush=True)
    assert code == 1, out[-3000:]
    assert "RetryWindowSpent" in out and "the source: task full_load failed for longer than retry.connection_minutes (10 min)" in out, out[-3000:]
    assert destination_rows(spec) == before
    retry(stage, spec, context)  # the source back, the task cleared
    finish(stage, spec, mysql_server, shop)
    check(spec, emulator, fault_tally)
