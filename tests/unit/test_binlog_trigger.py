"""The deferral contract of BinlogSensor / BinlogTrigger (the polling itself is tested against real
servers in tests/integration/test_incremental.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from airflow_provider_polar_mc.exceptions import BinlogUnavailable
from airflow_provider_polar_mc.sensors.binlog import BinlogSensor
from airflow_provider_polar_mc.triggers.binlog import BinlogTrigger

SPEC = {"name": "m1", "source": {"databases": ["shop"]}, "incremental": {"settle_seconds": 5, "poll_seconds": 2}}
START = "2026-03-01T09:00:00+00:00"
END = "2026-03-01T10:00:00+00:00"
COORDINATE = {"log_file": "mysql-bin.000003", "log_pos": 1234, "gtid": "0-1-9", "server_id": 1, "server_uuid": "", "captured_at": 1.0}


def _collect(trigger: BinlogTrigger) -> list:
    async def run():
        return [event async for event in trigger.run()]

    return asyncio.run(run())


def test_trigger_serialises_json_safe_arguments():
    trigger = BinlogTrigger(SPEC, END, settle_seconds=5, poll_seconds=0.5, interval_start=START)
    assert trigger.serialize() == (
        "airflow_provider_polar_mc.triggers.binlog.BinlogTrigger",
        {"spec": SPEC, "interval_start": START, "interval_end": END, "settle_seconds": 5, "poll_seconds": 0.5,
         "version": 2},
    )
    assert BinlogTrigger(**trigger.serialize()[1]).serialize() == trigger.serialize()  # as the triggerer rebuilds it
    json.dumps(trigger.serialize())  # JSON-safe, as the metadata database stores it


def test_triggers_stored_by_other_releases_load():
    """Version 1 (no ``version``) loads and polls; a later release's extra arguments are ignored."""
    older = BinlogTrigger(**{"spec": SPEC, "interval_start": START, "interval_end": END, "settle_seconds": 5, "poll_seconds": 2})
    assert older.serialize()[1]["version"] == 2 and older.interval_start == START
    newer = BinlogTrigger(**{**older.serialize()[1], "version": 3, "heartbeat_table": "x"})
    assert newer.serialize() == older.serialize()


def test_a_trigger_stored_without_the_interval_start_asks_for_a_retry(monkeypatch):
    """Stored by a release before time-true boundaries: it still loads, and reports a retryable error
    (the task's retry defers with a complete trigger) instead of polling without the interval's start."""
    monkeypatch.setattr("airflow_provider_polar_mc.triggers.binlog.poll_interval_end", lambda *a: COORDINATE)
    old = BinlogTrigger(**{"spec": SPEC, "interval_end": END, "settle_seconds": 5, "poll_seconds": 2})
    [event] = _collect(old)
    assert event.payload["status"] == "error" and event.payload["retryable"] is True
    assert "interval's start" in event.payload["message"]


def test_trigger_polls_until_the_coordinate_is_recorded(monkeypatch):
    answers = iter([None, None, COORDINATE])
    calls = []

    def poll(spec, interval_start, interval_end, settle):
        calls.append((spec["name"], interval_start, interval_end, settle))
        return next(answers)

    monkeypatch.setattr("airflow_provider_polar_mc.triggers.binlog.poll_interval_end", poll)
    events = _collect(BinlogTrigger(SPEC, END, settle_seconds=5, poll_seconds=0.01, interval_start=START))
    assert [e.payload for e in events] == [{"status": "success", "coordinate": COORDINATE}]
    assert calls == [("m1", START, END, 5)] * 3


@pytest.mark.parametrize(("error", "payload"), [
    (RuntimeError("source unreachable"),
     {"status": "error", "message": "RuntimeError: source unreachable", "retryable": True}),
    (BinlogUnavailable("binlog file mysql-bin.000007 was purged; re-run the setup"),  # retrying cannot help
     {"status": "error", "message": "binlog file mysql-bin.000007 was purged; re-run the setup", "retryable": False}),
], ids=["driver_error", "not_retryable"])
def test_trigger_reports_errors_as_an_event_saying_whether_retrying_helps(monkeypatch, error, payload):
    def poll(*args):
        raise error

    monkeypatch.setattr("airflow_provider_polar_mc.triggers.binlog.poll_interval_end", poll)
    events = _collect(BinlogTrigger(SPEC, END, poll_seconds=0.01, interval_start=START))
    assert [e.payload for e in events] == [payload]


def _context():
    return {"data_interval_start": dt.datetime(2026, 3, 1, 9, tzinfo=dt.timezone.utc),
            "data_interval_end": dt.datetime(2026, 3, 1, 10, tzinfo=dt.timezone.utc)}


def test_sensor_returns_a_recorded_coordinate_without_deferring(monkeypatch):
    calls = []

    def poll(*args):
        calls.append(args[1:])
        return COORDINATE

    monkeypatch.setattr("airflow_provider_polar_mc.sensors.binlog.poll_interval_end", poll)
    assert BinlogSensor(task_id="wait", spec=SPEC).execute(_context()) == COORDINATE
    assert calls == [(START, END, 5.0)]  # the data interval's start and end, the spec's settle_seconds


def test_sensor_defers_to_the_trigger(monkeypatch):
    monkeypatch.setattr("airflow_provider_polar_mc.sensors.binlog.poll_interval_end", lambda *a: None)
    sensor = BinlogSensor(task_id="wait", spec=SPEC, poke_interval=3, timeout=600, deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(_context())
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == dt.timedelta(seconds=600)  # the deferral is bounded as pokes are
    classpath, kwargs = deferred.value.trigger.serialize()
    assert classpath.endswith("BinlogTrigger")
    assert kwargs["interval_start"] == START and kwargs["interval_end"] == END
    assert kwargs["settle_seconds"] == 5 and kwargs["poll_seconds"] == 3
    assert kwargs["spec"]["name"] == "m1"


def test_sensor_poke_mode(monkeypatch):
    answers = iter([None, COORDINATE])
    monkeypatch.setattr("airflow_provider_polar_mc.sensors.binlog.poll_interval_end", lambda *a: next(answers))
    sensor = BinlogSensor(task_id="wait", spec=SPEC, deferrable=False, mode="poke", poke_interval=0.01, timeout=5)
    assert sensor.execute(_context()) == COORDINATE


@pytest.mark.parametrize(("setting", "deferrable", "mode"), [("True", True, "poke"), ("False", False, "reschedule")])
def test_sensor_follows_default_deferrable_and_reschedules_when_it_does_not_defer(monkeypatch, setting, deferrable, mode):
    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", setting)
    sensor = BinlogSensor(task_id="wait", spec=SPEC)
    assert (sensor.deferrable, sensor.mode) == (deferrable, mode)
    assert BinlogSensor(task_id="w", spec=SPEC, deferrable=False, mode="poke").mode == "poke"  # an explicit mode wins


def test_sensor_templates_its_spec_and_settle_seconds():
    sensor = BinlogSensor(task_id="wait", spec="{{ params.folder }}/m1.yaml", settle_seconds="{{ params.settle }}")
    sensor.render_template_fields({"params": {"folder": "/specs", "settle": 7}})
    assert (sensor.spec, sensor.settle_seconds) == ("/specs/m1.yaml", "7")


def test_execute_complete_validates_the_event():
    sensor = BinlogSensor(task_id="wait", spec=SPEC)
    assert sensor.execute_complete({}, {"status": "success", "coordinate": COORDINATE}) == COORDINATE
    with pytest.raises(AirflowException, match="source unreachable"):
        sensor.execute_complete({}, {"status": "error", "message": "source unreachable"})
    with pytest.raises(AirflowException):
        sensor.execute_complete({}, None)


def test_partition_values_accept_airflow_pendulum_intervals():
    import pendulum

    from airflow_provider_polar_mc.core.intervals import partition_values

    start, end = pendulum.datetime(2026, 11, 27, 20, 50, tz="UTC"), pendulum.datetime(2026, 11, 27, 20, 51, tz="UTC")
    assert partition_values(start, end, ["year", "month", "day", "hour", "minute"]) == ["2026", "11", "27", "20", "50"]
    december = pendulum.datetime(2026, 12, 1, tz="Asia/Shanghai").in_timezone("UTC")
    with pytest.raises(Exception, match="not one 'month' partition"):
        partition_values(december, december.add(months=1), ["year", "month"])
