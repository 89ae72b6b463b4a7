"""Alerts through Airflow notifiers: the spec's ``alerts.notifiers`` hear about latency over
``latency_alert_seconds`` and, with ``alerts.on_failure``, about every failed task of the migration's
DAGs (DTS's monitoring and alerting, on Airflow's machinery).

A notifier renders its templated fields in place (irreversibly), so every alert builds fresh ones. The
context is the task's, plus ``polar_mc_alert``: ``kind`` (``latency`` or ``failure``), ``migration``,
``environment_tag``, ``message`` and, for latency, ``latency_seconds``, ``threshold_seconds`` and
``interval_end``. Notifier arguments are never logged (they may name recipients or hold tokens).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from airflow.sdk import BaseNotifier
from airflow.sdk.module_loading import import_string

from airflow_provider_polar_mc.exceptions import ConfigError
from airflow_provider_polar_mc.spec import MigrationSpec

log = logging.getLogger(__name__)


def build_notifiers(spec: MigrationSpec) -> list[BaseNotifier]:
    """Fresh instances of the spec's notifiers; a ConfigError naming the entry and the fix when a class
    cannot be imported, is not a notifier, or refuses its arguments."""
    built = []
    for index, entry in enumerate(spec.alerts.notifiers):
        where = f"alerts.notifiers[{index}] ({entry.classpath})"
        try:
            cls = import_string(entry.classpath)
        except ImportError as exc:
            raise ConfigError(
                f"{where} cannot be imported: {exc}. Fix: install the provider that has it (e.g. "
                "apache-airflow-providers-slack) or correct the path"
            ) from None
        if not (isinstance(cls, type) and issubclass(cls, BaseNotifier)):
            raise ConfigError(f"{where} is not an Airflow notifier (a subclass of airflow.sdk.BaseNotifier)")
        try:
            built.append(cls(**entry.arguments))
        except Exception as exc:  # noqa: BLE001 - any constructor error is a configuration error
            raise ConfigError(f"{where} does not take its arguments: {type(exc).__name__}: {exc}") from None
    return built


def notify(spec: MigrationSpec, alert: Mapping[str, Any], context: Mapping[str, Any]) -> int:
    """Send ``alert`` (becomes ``polar_mc_alert``) to every notifier; returns how many were sent. A
    notifier that fails is logged and the others still run: an alert never fails the task."""
    sent = 0
    payload = {"migration": spec.name, "environment_tag": spec.environment_tag or "", **alert}
    for notifier in build_notifiers(spec):
        try:
            notifier({**context, "polar_mc_alert": payload})
            sent += 1
        except Exception as exc:  # noqa: BLE001 - reported, never raised
            log.error("polar-mc: the %s alert could not be sent by %s: %s", alert.get("kind"), type(notifier).__name__, exc)
    return sent


def latency_alert(spec: MigrationSpec, summary: Mapping[str, Any], context: Mapping[str, Any]) -> int:
    """Send the batch's latency alert (``summary["latency_alert"]``, decided by the incremental load)."""
    if not summary.get("latency_alert") or not spec.alerts.notifiers:
        return 0
    tag = f" [{spec.environment_tag}]" if spec.environment_tag else ""
    message = (
        f"polar-mc{tag} {spec.name}: LATENCY ALERT: the interval ending {summary['interval_end']} reached MaxCompute "
        f"{summary['latency_seconds']:.0f}s after it closed (latency_alert_seconds: {spec.latency_alert_seconds})"
    )
    return notify(spec, {"kind": "latency", "message": message, "latency_seconds": summary["latency_seconds"],
                         "threshold_seconds": spec.latency_alert_seconds, "interval_end": summary["interval_end"]},
                  context)  # fmt: skip


def failure_callback(spec: MigrationSpec) -> Callable[[Any], None] | None:
    """The ``on_failure_callback`` of the migration's tasks (None without notifiers or ``on_failure``).
    The notifiers are checked now, so a broken entry shows as the spec's error when the DAGs are built."""
    if not (spec.alerts.notifiers and spec.alerts.on_failure):
        return None
    build_notifiers(spec)

    def on_failure(context: Any) -> None:
        ti = context.get("ti") or context.get("task_instance")
        task = f"{getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')}"
        tag = f" [{spec.environment_tag}]" if spec.environment_tag else ""
        error = context.get("exception")
        message = f"polar-mc{tag} {spec.name}: task {task} failed" + (f": {error}" if error else "")
        notify(spec, {"kind": "failure", "message": message, "task": task}, context)

    return on_failure
