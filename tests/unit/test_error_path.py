"""The one error path (operators/_base.py) and the retry windows (core/retry.py)."""

from __future__ import annotations

import pymysql
import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_polar_mc.core.retry import RetryPolicy
from airflow_provider_polar_mc.exceptions import (
    BinlogUnavailable,
    ConfigError,
    PolarMcError,
    SchemaConflict,
    SourceUnreachable,
)
from airflow_provider_polar_mc.operators._base import MigrationOperator
from airflow_provider_polar_mc.sensors.binlog import BinlogSensor

SPEC = {"name": "m", "source": {"conn_id": "s", "databases": ["shop"]}, "destination": {"conn_id": "d"}}


class Raising(MigrationOperator):
    def __init__(self, *, error: BaseException, **kwargs):
        super().__init__(spec=SPEC, task_id="t", **kwargs)
        self.error = error

    def execute_migration(self, context):
        raise self.error


@pytest.mark.parametrize("error", [ConfigError("bad spec"), SchemaConflict("exists"), BinlogUnavailable("purged")])
def test_errors_retrying_cannot_fix_fail_the_task_at_once(error):
    with pytest.raises(AirflowFailException, match=str(error)) as caught:
        Raising(error=error).execute({})
    assert caught.value.__cause__ is error


def test_retryable_project_errors_and_unknown_errors_are_left_to_airflows_retries():
    for error in (SourceUnreachable("down"), KeyError("x")):
        with pytest.raises(type(error)):
            Raising(error=error).execute({})


class FlakySource(MigrationOperator):
    """Loses its source connection ``losses`` times, then completes."""

    def __init__(self, *, losses: int, **kwargs):
        super().__init__(spec=SPEC, task_id="t", **kwargs)
        self.losses, self.attempts = losses, 0

    def execute_migration(self, context):
        self.attempts += 1
        if self.attempts <= self.losses:
            raise pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
        return "done"


@pytest.fixture
def warp():
    """The failpoints' warped clock: the retry windows pass without sleeping them."""
    from airflow_provider_polar_mc.core import failpoints

    failpoints.configure("warp")
    yield
    failpoints.configure("")


def test_a_lost_connection_resumes_the_task_within_the_window_then_fails_it_naming_the_window(warp):
    task = FlakySource(losses=3)
    assert task.execute({}) == "done" and task.attempts == 4
    with pytest.raises(AirflowFailException, match=r"the source: task t failed for longer than "
                                                   r"retry.connection_minutes \(720 min\).*Lost connection") as caught:  # fmt: skip
        FlakySource(losses=10**6).execute({})
    assert "clear the task to resume" in str(caught.value)


def test_every_project_error_says_whether_retrying_helps():
    import airflow_provider_polar_mc.exceptions as exceptions

    classes = [c for c in vars(exceptions).values() if isinstance(c, type) and issubclass(c, PolarMcError)]
    assert len(classes) >= 10
    assert all(isinstance(c.retryable, bool) for c in classes)


def test_a_trigger_error_retrying_cannot_fix_fails_the_sensor_at_once():
    sensor = BinlogSensor(task_id="w", spec=SPEC)
    with pytest.raises(AirflowFailException, match="purged"):
        sensor.execute_complete({}, {"status": "error", "message": "binlog purged", "retryable": False})
    with pytest.raises(AirflowException, match="binlog trigger failed") as caught:
        sensor.execute_complete({}, {"status": "error", "message": "timeout", "retryable": True})
    assert not isinstance(caught.value, AirflowFailException)


class Clock:
    """A fake clock for tenacity: sleeping advances it."""

    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    import time

    fake = Clock()
    monkeypatch.setattr(time, "monotonic", lambda: fake.now)
    return fake


def _failing(error: BaseException, succeed_after: int | None = None):
    calls = []

    def fn():
        calls.append(1)
        if succeed_after is not None and len(calls) > succeed_after:
            return "ok"
        raise error

    return fn, calls


def test_connection_errors_are_retried_for_the_connection_window(clock):
    fn, calls = _failing(pymysql.err.OperationalError(2013, "lost connection"))
    policy = RetryPolicy(connection_seconds=100, other_seconds=5, initial_backoff=1, max_backoff=8)
    with pytest.raises(pymysql.err.OperationalError):
        policy.call(fn, sleep=clock.sleep)
    assert 100 <= clock.now <= 100.001 and len(calls) > 10
    assert max(clock.sleeps) <= 8 + 1  # capped backoff (plus jitter)


def test_other_errors_use_the_short_window_only_when_named_retryable(clock):
    error = ValueError("throttled")
    fn, calls = _failing(error)
    with pytest.raises(ValueError):
        RetryPolicy(connection_seconds=100, other_seconds=5).call(fn, sleep=clock.sleep)
    assert calls == [1] and clock.now == 0  # not named: raised at once
    fn, calls = _failing(error)
    with pytest.raises(ValueError):
        RetryPolicy(connection_seconds=100, other_seconds=5, initial_backoff=0.5).call(
            fn, retryable_other=lambda exc: isinstance(exc, ValueError), sleep=clock.sleep)
    assert 5 <= clock.now <= 5.001 and len(calls) >= 3


def test_a_call_that_recovers_returns_its_value_and_logs_each_retry(clock):
    fn, calls = _failing(pymysql.err.OperationalError(2006, "gone away"), succeed_after=2)
    lines: list[str] = []
    assert RetryPolicy(initial_backoff=1).call(fn, log=lines.append, sleep=clock.sleep) == "ok"
    assert len(calls) == 3 and len(lines) == 2
    assert "gone away" in lines[0] and "retry 1 in" in lines[0] and "left in window" in lines[0]
