"""Stopping a task's work when Airflow kills it.

Airflow calls the operator's ``on_kill`` from the SIGTERM handler (or on ``execution_timeout``) and then
lets ``execute`` go on until the process is killed outright; without a stop, a MaxCompute SQL instance
keeps running in the service and a binlog dump keeps its thread on the source. Each long wait registers
how to stop it for as long as it runs (:func:`stoppable`); :func:`stop_all` (the operators' ``on_kill``)
stops them all, and any wait begun afterwards raises :class:`~airflow_provider_polar_mc.exceptions.TaskStopped`
at once. A task process runs one task, so the registry is per process. No lock: the SIGTERM handler runs
in the main thread, between two bytecodes of whatever holds a lock; dict operations are atomic.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from airflow_provider_polar_mc.exceptions import TaskStopped

log = logging.getLogger(__name__)

_running: dict[int, tuple[str, Callable[[], None]]] = {}
_ids = itertools.count()
_stopped = threading.Event()


def register(what: str, stop: Callable[[], None]) -> int:
    """Register ``stop`` (stops ``what``, e.g. "MaxCompute instance 2026..."); returns the token for
    :func:`unregister`. Raises TaskStopped once the task was stopped."""
    check()
    token = next(_ids)
    _running[token] = (what, stop)
    return token


def unregister(token: int) -> None:
    _running.pop(token, None)


@contextmanager
def stoppable(what: str, stop: Callable[[], None]) -> Iterator[None]:
    """:func:`register` ``stop`` while the block runs."""
    token = register(what, stop)
    try:
        yield
    finally:
        unregister(token)


def check() -> None:
    """Raise TaskStopped if the task was stopped (after a wait that a stop may have cut short)."""
    if _stopped.is_set():
        raise TaskStopped("the task was stopped (on_kill): its MaxCompute instances and binlog reads were stopped")


def stop_all() -> list[str]:
    """Stop everything registered (each at most once; one failing does not keep the others running) and
    refuse new waits; returns what was stopped."""
    _stopped.set()
    stopped = []
    for token in list(_running):
        entry = _running.pop(token, None)
        if entry is None:
            continue
        what, stop = entry
        try:
            stop()
            stopped.append(what)
        except Exception as exc:  # noqa: BLE001 - the process is being killed; report and go on
            log.warning("could not stop %s: %s", what, exc)
    return stopped


def stopped() -> bool:
    """Whether the task was stopped: loops check it (a closed binlog stream reconnects by itself)."""
    return _stopped.is_set()


def running() -> list[str]:
    """What a stop would stop now (for logs and tests)."""
    return [what for what, _ in list(_running.values())]


def reset() -> None:
    """A task starts: waits are allowed again (tests run several tasks in one process)."""
    _stopped.clear()
