"""Alerts and metrics on Airflow's own machinery: the spec's notifier (the SMTP provider's SmtpNotifier)
mails a local SMTP server (aiosmtpd on loopback) about latency and about a failed task of a DAG run;
Airflow's Stats, configured as the task runner configures it, sends the batch's metrics to a StatsD
listener on loopback."""

from __future__ import annotations

import email
import json
import socket
import threading
import uuid
from pathlib import Path

import pytest

from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
from airflow_provider_polar_mc.hooks import resolve
from airflow_provider_polar_mc.operators._base import load_spec
from airflow_provider_polar_mc.operators.full_load import FullLoadOperator
from airflow_provider_polar_mc.operators.schema import SchemaMigrateOperator
from tests.integration.session_clock import execute_at, snapshot_at
from tests.integration.test_incremental import FIRST, inside, make_spec, run_interval, shop  # noqa: F401 - the fixture
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

SMTP_CONN = "polar_mc_test_smtp"


class Mailbox:
    """Messages the local SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def subjects(self) -> list[str]:
        return [str(email.header.make_header(email.header.decode_header(m["Subject"]))) for m in self.messages]


@pytest.fixture
def mailbox(monkeypatch):
    from aiosmtpd.controller import Controller

    box = Mailbox()
    with socket.socket() as probe:  # aiosmtpd's start() connects to its port, so it needs a real one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv(f"AIRFLOW_CONN_{SMTP_CONN.upper()}", json.dumps(
            {"conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": {"disable_ssl": True, "disable_tls": True}}))
        yield box
    finally:
        controller.stop()


def smtp_notifier(subject: str = "{{ polar_mc_alert.message }}") -> dict:
    return {"classpath": "airflow.providers.smtp.notifications.smtp.SmtpNotifier",
            "arguments": {"to": "ops@example.com", "from_email": "polar-mc@example.com", "smtp_conn_id": SMTP_CONN,
                          "subject": subject, "html_content": "{{ polar_mc_alert.kind }}: {{ polar_mc_alert.message }}"}}


def migrated(connections, mysql_server, shop_db: str, **extra) -> dict:  # noqa: F811
    spec = {**make_spec(connections, shop_db), **extra}
    SchemaMigrateOperator(task_id="schema", spec=spec).execute({})
    migration = load_spec(spec)
    snapshot_at(MaxComputeCheckpointStore(resolve.destination(migration), migration.name), mysql_server, FIRST.timestamp() - 1)
    FullLoadOperator(task_id="full", spec=spec).execute({})
    return spec


def test_latency_over_the_threshold_is_mailed_and_reruns_stay_quiet(connections, mysql_server, emulator, shop, mailbox):  # noqa: F811
    spec = migrated(connections, mysql_server, shop, latency_alert_seconds=60, environment_tag="prod",
                    alerts={"notifiers": [smtp_notifier()]})
    execute_at(mysql_server, inside(0, 10), f"UPDATE {shop}.orders SET amount = amount + 1 WHERE id < 10")
    summary = run_interval(spec, 0)  # written months after the interval closed: over 60 s
    assert summary["latency_alert"] and not summary["rerun"]
    [subject] = wait_until(mailbox.subjects, timeout=30, what="the latency alert mail")
    assert "[prod]" in subject and "LATENCY ALERT" in subject and "2026-01-01T01:00:00" in subject
    assert mailbox.messages[0]["To"] == "ops@example.com"

    run_interval(spec, 1)
    wait_until(lambda: len(mailbox.messages) == 2, timeout=30, what="the second interval's alert")
    again = run_interval(spec, 0)  # a re-run of an older interval is late by design
    assert again["rerun"] and not again["latency_alert"]
    assert len(mailbox.messages) == 2


def test_a_failed_task_of_a_dag_run_is_mailed(tmp_path: Path, monkeypatch, airflow_db, connections, mailbox):
    from airflow_provider_polar_mc.dag_factory import setup_dag
    from airflow_provider_polar_mc.spec import MigrationSpec

    name = f"al_{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps({  # JSON is YAML: a spec whose database does not exist, so the precheck fails
        "name": name, "source": {"conn_id": connections.source, "databases": ["no_such_db"]},
        "destination": {"conn_id": connections.destination}, "migration_types": ["schema", "full"],
        "alerts": {"notifiers": [smtp_notifier(subject="failed: {{ ti.task_id }} - {{ polar_mc_alert.message }}")]},
    }))
    monkeypatch.setenv("AIRFLOW__POLAR_MC__SPEC_DIR", str(tmp_path))  # DAG.test() reads the DAG file, which finds it
    run = setup_dag(path, MigrationSpec.from_yaml(path)).test()
    assert run.state == "failed"
    [subject] = wait_until(mailbox.subjects, timeout=30, what="the failure mail")
    assert subject.startswith("failed: precheck - ") and f"{name}: task polar_mc__{name}__setup.precheck failed" in subject


def test_metrics_reach_a_statsd_listener(connections, mysql_server, emulator, shop, monkeypatch):  # noqa: F811
    from airflow.sdk.observability import stats
    from airflow.sdk.observability.metrics import stats_utils

    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(0.2)
    received: list[str] = []
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            try:
                received.extend(listener.recv(65536).decode().splitlines())
            except TimeoutError:
                continue

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    for key, value in {"STATSD_ON": "True", "STATSD_HOST": "127.0.0.1", "STATSD_PORT": str(listener.getsockname()[1]),
                       "STATSD_PREFIX": "airflow"}.items():
        monkeypatch.setenv(f"AIRFLOW__METRICS__{key}", value)
    # What Airflow's task runner does at start (task_runner.main): the backend from [metrics].
    stats.initialize(factory=stats_utils.get_stats_factory(), export_legacy_names=True)
    try:
        spec = migrated(connections, mysql_server, shop)
        execute_at(mysql_server, inside(0, 10), f"UPDATE {shop}.orders SET amount = amount + 1 WHERE id <= 40")
        summary = run_interval(spec, 0)
        name = spec["name"]

        def metric(line_start: str) -> list[str]:
            return [line for line in received if line.startswith(line_start)]

        expected = [f"airflow.polar_mc.{stat}:" for stat in (
            f"full_load.rows.{name}.{shop}.orders", f"incremental.rows.{name}.{shop}.orders",
            f"incremental.bytes.{name}.{shop}.orders", f"incremental.batch_seconds.{name}",
            f"incremental.lag_seconds.{name}", f"merge.seconds.{name}.{shop}.orders")]  # fmt: skip
        # UDP datagrams reach the listener thread a little after they are sent: wait for every one.
        wait_until(lambda: all(metric(e) for e in expected), timeout=30,
                   what=lambda: f"{[e for e in expected if not metric(e)]} among {received[-20:]}")  # fmt: skip
        rows = metric(f"airflow.polar_mc.incremental.rows.{name}.{shop}.orders:")
        assert rows == [f"airflow.polar_mc.incremental.rows.{name}.{shop}.orders:80|c"]  # 40 updates: before + after
        assert summary["tables"][f"{shop}.orders"]["bytes"] > 0
        [size] = metric(f"airflow.polar_mc.incremental.bytes.{name}.{shop}.orders:")
        assert size == f"airflow.polar_mc.incremental.bytes.{name}.{shop}.orders:{summary['tables'][f'{shop}.orders']['bytes']}|c"
        assert metric(f"airflow.polar_mc.incremental.batch_seconds.{name}:")[0].endswith("|ms")
        [lag] = metric(f"airflow.polar_mc.incremental.lag_seconds.{name}:")
        assert lag.endswith("|g") and float(lag.split(":")[1].split("|")[0]) > 3600  # months behind
        assert metric(f"airflow.polar_mc.full_load.rows.{name}.{shop}.orders:") == [
            f"airflow.polar_mc.full_load.rows.{name}.{shop}.orders:3000|c"]
        assert metric(f"airflow.polar_mc.merge.seconds.{name}.{shop}.orders:")[0].endswith("|ms")
    finally:
        from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger

        stats.initialize(factory=NoStatsLogger, export_legacy_names=True)
        stop.set()
        thread.join(5)
        listener.close()
