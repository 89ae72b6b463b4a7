"""Incremental intervals: which `_log` partition a run owns, and which binlog range it reads.

Interval i is an Airflow data interval [start, end). It owns exactly one partition of every `_log` table
(partition values from ``start`` in UTC, per the spec's partition definition) and reads the binlog range
(C(i-1), C(i)], where C(i-1) is the previous interval's end coordinate (C0, the full load's snapshot
coordinate, for the chain's first interval) and C(i) is derived from the binlog once the source's clock
has passed ``end``: the start of the first transaction after C(i-1) committed at or after ``end``, else
the end of binlog at that moment; C0 for an interval ending at or before the snapshot
(core/interval_capture.py, core/binlog/boundaries.py, docs/interval-boundaries.md). C(i) is recorded
once (first writer wins), so every re-run, retry or backfill of interval i reads the same range into the
same partition: identical rows, identical record_ids (docs/architecture.md: one run owns one partition).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow_provider_polar_mc.core import sqltext
from airflow_provider_polar_mc.core.binlog.schema_history import TableSchema
from airflow_provider_polar_mc.core.destination.checkpoint import CheckpointStore
from airflow_provider_polar_mc.core.full_load import SNAPSHOT_KEY, SNAPSHOT_KIND
from airflow_provider_polar_mc.core.model import BinlogCoordinate
from airflow_provider_polar_mc.exceptions import CheckpointConflict, ConfigError

INTERVAL_END_KIND = "interval_end"
INTERVAL_DONE_KIND = "interval_done"
CHAIN_KIND = "chain"
FIRST_INTERVAL_KEY = "first_interval_start"

_LEVEL_FORMATS = {"year": "%Y", "month": "%m", "day": "%d", "hour": "%H", "minute": "%M"}


def utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: data intervals must be time-zone aware")
    moment = moment.astimezone(dt.timezone.utc)
    # A plain datetime: pendulum's DateTime (Airflow's) drops the zone in arithmetic with timedelta.
    return dt.datetime(
        moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second, moment.microsecond,
        tzinfo=dt.timezone.utc,
    )


def interval_key(moment: dt.datetime) -> str:
    """The checkpoint key of an interval boundary: ISO 8601 in UTC, to the second."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _truncate(moment: dt.datetime, level: str) -> dt.datetime:
    """``moment`` cut down to the start of its ``level`` unit (UTC)."""
    fields = ("year", "month", "day", "hour", "minute")
    keep = fields[: fields.index(level) + 1]
    defaults = {"month": 1, "day": 1, "hour": 0, "minute": 0}
    parts = {f: (getattr(moment, f) if f in keep else defaults[f]) for f in fields[1:]}
    return dt.datetime(moment.year, parts["month"], parts["day"], parts["hour"], parts["minute"], tzinfo=dt.timezone.utc)


def _next_unit(moment: dt.datetime, level: str) -> dt.datetime:
    if level == "year":
        return moment.replace(year=moment.year + 1)
    if level == "month":
        return moment.replace(year=moment.year + moment.month // 12, month=moment.month % 12 + 1)
    step = {"day": dt.timedelta(days=1), "hour": dt.timedelta(hours=1), "minute": dt.timedelta(minutes=1)}[level]
    return moment + step


def partition_values(start: dt.datetime, end: dt.datetime, levels: Sequence[str]) -> list[str]:
    """The partition values of the interval [start, end) for the partition definition ``levels``.

    The interval must be exactly one partition unit, aligned to it: a longer interval would merge
    several partitions' data into one, a shorter one would let two runs overwrite each other's
    partition. Raises :class:`ConfigError` naming the schedule that fits.
    """
    start, end = utc(start), utc(end)
    level = levels[-1]
    if _truncate(start, level) != start or _next_unit(start, level) != end:
        schedules = {"year": "@yearly", "month": "@monthly", "day": "@daily", "hour": "@hourly", "minute": "* * * * *"}
        raise ConfigError(
            f"data interval {interval_key(start)} .. {interval_key(end)} is not one '{level}' partition of the "
            f"_log tables (partition: {list(levels)}): two runs would share a partition or one run would span "
            f"several. Fix: schedule the incremental DAG {schedules[level]!r} (UTC), or change the partition "
            "definition to match the schedule"
        )
    return [start.strftime(_LEVEL_FORMATS[level_]) for level_ in levels]


def interval_of_end(end: dt.datetime, levels: Sequence[str]) -> tuple[dt.datetime, dt.datetime]:
    """The interval [start, end) of one partition unit that ends at ``end`` (UTC)."""
    end, level = utc(end), levels[-1]
    start = _truncate(end - dt.timedelta(microseconds=1), level)
    if _next_unit(start, level) != end:
        raise ValueError(f"{interval_key(end)} is not the end of a '{level}' partition unit")
    return start, end


def is_interval_end(moment: dt.datetime, levels: Sequence[str]) -> bool:
    """Whether ``moment`` is where an interval of the partition definition ``levels`` ends."""
    moment = utc(moment)
    return _truncate(moment, levels[-1]) == moment and moment.second == 0 and moment.microsecond == 0


def next_interval_end(end: dt.datetime, levels: Sequence[str]) -> dt.datetime:
    """The end of the interval after the one ending at ``end``."""
    return _next_unit(utc(end), levels[-1])


def parse_interval_key(key: str) -> dt.datetime:
    return dt.datetime.strptime(key, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def partition_spec(columns: Sequence[str], values: Sequence[str]) -> str:
    return sqltext.mc_partition_spec(columns, values)


@dataclass(frozen=True)
class IntervalRange:
    start: BinlogCoordinate
    end: BinlogCoordinate
    first: bool  # the first interval (starts at the full load's snapshot coordinate)


def start_coordinate(store: CheckpointStore, interval_start: dt.datetime) -> tuple[BinlogCoordinate, bool]:
    """C(i-1) for the interval starting at ``interval_start`` (and whether it is the first interval)."""
    previous = store.get(INTERVAL_END_KIND, interval_key(interval_start))
    if previous is not None:
        return BinlogCoordinate.from_dict(previous["coordinate"]), False
    c0 = store.get(SNAPSHOT_KIND, SNAPSHOT_KEY)
    first = store.get(CHAIN_KIND, FIRST_INTERVAL_KEY)
    if c0 is None:
        raise CheckpointConflict(
            "no snapshot coordinate is recorded for this migration: incremental migration starts where the full "
            "load started. Fix: run the setup DAG (precheck, schema, full load) first"
        )
    if first is None or first["start"] == interval_key(interval_start):
        return BinlogCoordinate.from_dict(c0), True
    if interval_key(interval_start) < first["start"]:
        # Before the chain (a backfill of earlier intervals): its changes are in the chain's first
        # interval, which read everything since C0; it holds none (its end is C0 too, see precedes_chain).
        return BinlogCoordinate.from_dict(c0), False
    raise CheckpointConflict(
        f"the interval ending at {interval_key(interval_start)} has no recorded end coordinate, so the interval "
        f"starting there cannot know where to begin (the chain starts at {first['start']}). Fix: run the "
        "earlier intervals first (the incremental DAG runs in order with depends_on_past)"
    )


def precedes_chain(store: CheckpointStore, interval_start: dt.datetime) -> bool:
    """Whether the interval starting at ``interval_start`` lies before the chain's first interval (whose
    range starts at C0, so it holds every change such an interval could claim)."""
    first = store.get(CHAIN_KIND, FIRST_INTERVAL_KEY)
    return first is not None and interval_key(interval_start) < first["start"]


def claim_first_interval(store: CheckpointStore, interval_start: dt.datetime) -> str:
    """Record (once) which interval starts the chain at C0; returns the recorded start."""
    return store.put_once(CHAIN_KIND, FIRST_INTERVAL_KEY, {"start": interval_key(interval_start)})["start"]


def record_end(store: CheckpointStore, interval_end: dt.datetime, coordinate: BinlogCoordinate) -> BinlogCoordinate:
    """Record C(i) unless recorded already; returns the coordinate that holds."""
    value = store.put_once(INTERVAL_END_KIND, interval_key(interval_end), {"coordinate": coordinate.to_dict()})
    return BinlogCoordinate.from_dict(value["coordinate"])


def recorded_end(store: CheckpointStore, interval_end: dt.datetime) -> BinlogCoordinate | None:
    value = store.get(INTERVAL_END_KIND, interval_key(interval_end))
    return BinlogCoordinate.from_dict(value["coordinate"]) if value else None


def newest_schemas(store: CheckpointStore) -> dict[str, TableSchema]:
    """Each table's schema history (``db.table`` -> schema) at the end of the newest loaded interval:
    renames, drops, fills and truncations so far; {} before any interval."""
    done = store.items(INTERVAL_DONE_KIND)
    if not done:
        return {}
    recorded = done[max(done)].get("schemas") or {}
    return {name: TableSchema.from_dict(value) for name, value in recorded.items() if value}


def mark_done(store: CheckpointStore, interval_end: dt.datetime, summary: dict[str, Any]) -> None:
    store.put(INTERVAL_DONE_KIND, interval_key(interval_end), summary)


def done(store: CheckpointStore, interval_end: dt.datetime) -> dict[str, Any] | None:
    return store.get(INTERVAL_DONE_KIND, interval_key(interval_end))
