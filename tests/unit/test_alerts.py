"""The spec's notifiers: checked when the DAGs are built, fresh for every alert, never failing a task.
(Sent for real through the SMTP provider's notifier in tests/integration/test_alerts_and_metrics.py.)"""

from __future__ import annotations

import pytest
from airflow.sdk import BaseNotifier

from airflow_provider_polar_mc import alerts
from airflow_provider_polar_mc.dag_factory import build_dags
from airflow_provider_polar_mc.exceptions import ConfigError
from airflow_provider_polar_mc.spec import MigrationSpec

SENT: list[tuple[str, dict]] = []


class RecordingNotifier(BaseNotifier):
    """A real BaseNotifier whose templated field is rendered by Airflow's own templating."""

    template_fields = ("text",)

    def __init__(self, text: str, fail: bool = False):
        super().__init__()
        self.text, self.fail = text, fail

    def notify(self, context):
        if self.fail:
            raise RuntimeError("the mail server is down")
        SENT.append((self.text, dict(context["polar_mc_alert"])))


def spec(*notifiers: dict, **extra) -> MigrationSpec:
    return MigrationSpec.from_dict({"name": "m1", "source": {"databases": ["shop"]}, "latency_alert_seconds": 60,
                                    "alerts": {"notifiers": list(notifiers)}, **extra})  # fmt: skip


def recording(text: str = "{{ polar_mc_alert.kind }}: {{ polar_mc_alert.message }}", **arguments) -> dict:
    return {"classpath": f"{__name__}.RecordingNotifier", "arguments": {"text": text, **arguments}}


@pytest.mark.parametrize(("classpath", "message"), [
    ("no_such_package.Notifier", "cannot be imported"),
    ("os.path.join", "is not an Airflow notifier"),
])  # fmt: skip
def test_a_notifier_that_cannot_work_fails_the_dag_build_naming_it(classpath, message):
    with pytest.raises(ConfigError, match=rf"alerts.notifiers\[0\] \({classpath}\) {message}"):
        build_dags("/specs/m1.yaml", spec({"classpath": classpath}))
    with pytest.raises(ConfigError, match="does not take its arguments"):
        build_dags("/specs/m1.yaml", spec(recording(unknown_argument=1)))


def test_every_alert_renders_fresh_notifiers_and_one_failing_does_not_stop_the_others():
    SENT.clear()
    migration = spec(recording(fail=True), recording(), environment_tag="prod")
    summary = {"latency_alert": True, "latency_seconds": 125.0, "interval_end": "2026-01-01T01:00:00+00:00"}
    assert alerts.latency_alert(migration, summary, {}) == 1  # the failing one is logged, not raised
    assert alerts.latency_alert(migration, {**summary, "latency_seconds": 300.0}, {}) == 1
    assert [text for text, _ in SENT] == [
        "latency: polar-mc [prod] m1: LATENCY ALERT: the interval ending 2026-01-01T01:00:00+00:00 reached MaxCompute "
        "125s after it closed (latency_alert_seconds: 60)",
        "latency: polar-mc [prod] m1: LATENCY ALERT: the interval ending 2026-01-01T01:00:00+00:00 reached MaxCompute "
        "300s after it closed (latency_alert_seconds: 60)",
    ]  # the second alert rendered its own template, not the first one's result
    assert SENT[0][1]["threshold_seconds"] == 60 and SENT[0][1]["migration"] == "m1"
    assert alerts.latency_alert(migration, {**summary, "latency_alert": False}, {}) == 0


def test_task_failures_notify_only_with_on_failure():
    dags = build_dags("/specs/m1.yaml", spec(recording()))
    assert all(d.default_args.get("on_failure_callback") for d in dags)
    quiet = build_dags("/specs/m1.yaml", spec(recording(), alerts={"notifiers": [recording()], "on_failure": False}))
    assert not any(d.default_args.get("on_failure_callback") for d in quiet)
    SENT.clear()
    callback = dags[0].default_args["on_failure_callback"]
    callback({"exception": ValueError("boom"), "ti": type("TI", (), {"dag_id": "polar_mc__m1__setup", "task_id": "precheck"})()})
    assert SENT == [("failure: polar-mc m1: task polar_mc__m1__setup.precheck failed: boom",
                     {"migration": "m1", "environment_tag": "", "kind": "failure",
                      "message": "polar-mc m1: task polar_mc__m1__setup.precheck failed: boom", "task": "polar_mc__m1__setup.precheck"})]
