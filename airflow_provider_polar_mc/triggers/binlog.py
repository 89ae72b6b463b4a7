"""BinlogTrigger: wait in the triggerer until the source has passed an interval's end, then derive C(i)
from the binlog and record it (core/interval_capture.py, docs/interval-boundaries.md)."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_polar_mc.exceptions import PolarMcError

log = logging.getLogger(__name__)

# The serialised arguments' version: 1 had no version (and, before that, no interval_start); 2 adds it.
TRIGGER_VERSION = 2


def poll_interval_end(
    spec_document: dict[str, Any], interval_start: str, interval_end: str, settle_seconds: float
) -> dict[str, Any] | None:
    """One poll (blocking; the trigger runs it in a thread): the recorded or newly derived end coordinate
    of the interval [interval_start, interval_end) as a dict (the first transaction after the previous
    interval's end committed at or after interval_end), or None while the source's clock has not passed
    interval_end + settle_seconds."""
    from airflow_provider_polar_mc.core.destination.checkpoint import MaxComputeCheckpointStore
    from airflow_provider_polar_mc.core.interval_capture import capture_interval_end
    from airflow_provider_polar_mc.hooks import resolve
    from airflow_provider_polar_mc.spec import MigrationSpec

    spec = MigrationSpec.from_dict(spec_document)
    destination = resolve.destination(spec)
    store = MaxComputeCheckpointStore(destination, spec.name)
    coordinate = capture_interval_end(
        spec,
        resolve.source_endpoint(spec),
        store,
        dt.datetime.fromisoformat(interval_start),
        dt.datetime.fromisoformat(interval_end),
        settle_seconds=settle_seconds,
        retry=resolve.retry_policy(spec),
        log=log.info,
    )
    return coordinate.to_dict() if coordinate else None


class BinlogTrigger(BaseTrigger):
    """Polls the source every ``poll_seconds``; yields ``{"status": "success", "coordinate": {...}}`` once
    the interval's end coordinate is recorded, or ``{"status": "error", "message": ..., "retryable": bool}``.

    Arguments are JSON-safe so the trigger survives serialisation into the metadata database, and
    versioned (``version``, :data:`TRIGGER_VERSION`): a trigger stored by one release loads in the next.
    ``interval_start`` has a default only so that triggers stored by a release without it still load;
    such a trigger reports a retryable error, and the task's retry defers with a complete one. Arguments
    a later release adds are accepted and ignored, so a downgrade still loads its triggers.
    """

    def __init__(
        self,
        spec: dict[str, Any],
        interval_end: str,
        settle_seconds: float = 30,
        poll_seconds: float = 10,
        interval_start: str | None = None,
        version: int = 1,
        **later_arguments: Any,
    ) -> None:
        super().__init__()
        if later_arguments:
            log.warning("binlog trigger stored by a later release (version %s): ignoring %s", version, sorted(later_arguments))
        self.version = version
        self.spec = spec
        self.interval_start = interval_start
        self.interval_end = interval_end
        self.settle_seconds = settle_seconds
        self.poll_seconds = poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow_provider_polar_mc.triggers.binlog.BinlogTrigger",
            {
                "spec": self.spec,
                "interval_start": self.interval_start,
                "interval_end": self.interval_end,
                "settle_seconds": self.settle_seconds,
                "poll_seconds": self.poll_seconds,
                "version": TRIGGER_VERSION,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if self.interval_start is None:  # stored by an older release: the boundary needs the interval's start
            yield TriggerEvent({"status": "error", "retryable": True, "message": (
                "this binlog trigger was stored without the interval's start (an older release of the provider); "
                "the task's retry starts a complete one")})
            return
        try:
            while True:
                coordinate = await asyncio.to_thread(
                    poll_interval_end, self.spec, self.interval_start, self.interval_end, self.settle_seconds
                )
                if coordinate is not None:
                    yield TriggerEvent({"status": "success", "coordinate": coordinate})
                    return
                await asyncio.sleep(self.poll_seconds)
        except PolarMcError as exc:  # the task fails with the message (at once unless retryable)
            log.error("binlog trigger failed: %s", exc)
            yield TriggerEvent({"status": "error", "message": str(exc), "retryable": exc.retryable})
        except Exception as exc:  # noqa: BLE001 - reported to the task, which fails (and is retried)
            log.exception("binlog trigger failed")
            yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}", "retryable": True})
