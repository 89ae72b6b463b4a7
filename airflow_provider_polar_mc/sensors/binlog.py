"""BinlogSensor: the first task of an incremental run; fixes the binlog end coordinate of its interval,
derived from the binlog (docs/interval-boundaries.md)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseSensorOperator, conf
from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_polar_mc.exceptions import PolarMcError
from airflow_provider_polar_mc.operators._base import fail_unless_retryable, load_spec
from airflow_provider_polar_mc.triggers.binlog import BinlogTrigger, poll_interval_end


class BinlogSensor(BaseSensorOperator):
    """Waits until the source's clock has passed the run's data interval end (plus ``settle_seconds``),
    derives the interval's end coordinate from the binlog (the start of the first transaction after the
    previous interval's end committed at or after the data interval end; core/binlog/boundaries.py) and
    records it durably; returns it (XCom). The coordinate depends on the binlog, not on when the sensor
    ran: a late run, a catch-up or a backfill records what an on-time run would have. An interval ending
    at or before the snapshot gets the snapshot coordinate at once (its changes are in the full load).

    A re-run, retry or backfill of an interval whose coordinate is recorded returns the recorded one at
    once, so every run of an interval reads the same range. Deferrable by default (the waiting happens
    in the triggerer) when ``deferrable`` is True, which defaults to Airflow's ``[operators]
    default_deferrable``; otherwise it pokes, in ``mode="reschedule"`` unless told (the worker slot is
    free between pokes). The deferral is bounded by ``timeout``, as pokes are. Connection errors are
    retried within the spec's connection retry window.
    """

    template_fields: Sequence[str] = ("spec", "settle_seconds")
    ui_color = "#fff4d6"

    def __init__(
        self,
        *,
        spec: str | Path | dict[str, Any],
        deferrable: bool | None = None,
        settle_seconds: float | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", 10)
        if deferrable is None:
            deferrable = conf.getboolean("operators", "default_deferrable", fallback=False)
        if not deferrable:
            kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.spec = str(spec) if isinstance(spec, Path) else spec
        self.deferrable = deferrable
        self.settle_seconds = settle_seconds

    def _document_and_settle(self) -> tuple[dict[str, Any], float]:
        migration = load_spec(self.spec)
        settle = self.settle_seconds if self.settle_seconds is not None else migration.incremental.settle_seconds
        return migration.to_dict(), float(settle)

    def _poll(self, context: Any) -> tuple[dict[str, Any] | None, dict[str, Any], float]:
        """One poll through the error path: (the coordinate or None, the spec document, settle seconds)."""
        try:
            document, settle = self._document_and_settle()
            start, end = context["data_interval_start"].isoformat(), context["data_interval_end"].isoformat()
            return poll_interval_end(document, start, end, settle), document, settle
        except PolarMcError as exc:
            fail_unless_retryable(exc)
            raise  # not reached: fail_unless_retryable always raises

    def execute(self, context: Any) -> Any:
        interval_start, interval_end = context["data_interval_start"].isoformat(), context["data_interval_end"].isoformat()
        coordinate, document, settle = self._poll(context)
        if coordinate is not None:
            self.log.info("end coordinate of the interval ending %s: %s", interval_end, coordinate)
            return coordinate
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=BinlogTrigger(document, interval_end, settle, self.poke_interval, interval_start=interval_start),
            method_name="execute_complete",
            timeout=dt.timedelta(seconds=self.timeout),  # the task fails when it passes, as a poking one would
        )

    def poke(self, context: Any) -> PokeReturnValue:
        coordinate, _, _ = self._poll(context)
        return PokeReturnValue(coordinate is not None, coordinate)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        if not event or event.get("status") != "success" or "coordinate" not in event:
            message = (event or {}).get("message", "no event")
            if (event or {}).get("retryable") is False:  # the trigger met an error retrying cannot fix
                raise AirflowFailException(message)
            raise AirflowException(f"binlog trigger failed: {message}")
        self.log.info("end coordinate of the interval: %s", event["coordinate"])
        return event["coordinate"]
