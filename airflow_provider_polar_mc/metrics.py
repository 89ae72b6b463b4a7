"""Metrics of the migration, sent through Airflow's ``Stats`` (StatsD, Datadog or OpenTelemetry, as
Airflow's ``[metrics]`` section configures; nothing is sent when metrics are off).

Names (plain StatsD has no tags, so the migration and the table are part of the name; tagged backends
also get the tags ``migration`` and ``table``):

- ``polar_mc.full_load.rows.<migration>.<db>.<table>`` (counter), ``.bytes.`` (counter, Arrow bytes
  uploaded), ``polar_mc.full_load.seconds.<migration>.<db>.<table>`` (timer)
- ``polar_mc.incremental.rows.<migration>.<db>.<table>`` (counter: change rows written to ``_log``),
  ``polar_mc.incremental.bytes.<migration>.<db>.<table>`` (counter)
- ``polar_mc.incremental.batch_seconds.<migration>`` (timer: the batch, binlog read to commit)
- ``polar_mc.incremental.lag_seconds.<migration>`` (gauge: now minus the end of the interval just
  written, i.e. how far the ``_log`` tables are behind the source; not sent by re-runs and backfills)
- ``polar_mc.merge.seconds.<migration>.<db>.<table>`` (timer)

Names are normalised the way Airflow normalises its own (characters outside ``[A-Za-z0-9_.-]`` become
``_``). README "Metrics" lists them too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from airflow.sdk.observability import stats

PREFIX = "polar_mc"


def _name(*parts: str) -> str:
    return stats.normalize_name_for_stats(".".join((PREFIX, *parts)), log_warning=False)


def _table(migration: str, table: str) -> tuple[str, dict[str, str]]:
    return f"{migration}.{table}", {"migration": migration, "table": table}


def full_load(migration: str, results: Iterable[Mapping[str, Any]]) -> None:
    for result in results:
        if result.get("skipped"):
            continue  # loaded by an earlier run: nothing moved now
        suffix, tags = _table(migration, str(result["source"]))
        stats.incr(_name("full_load.rows", suffix), int(result.get("rows", 0)), tags=tags)
        stats.incr(_name("full_load.bytes", suffix), int(result.get("bytes", 0)), tags=tags)
        stats.timing(_name("full_load.seconds", suffix), dt.timedelta(seconds=float(result.get("seconds", 0))), tags=tags)


def incremental(migration: str, summary: Mapping[str, Any]) -> None:
    for table, written in (summary.get("tables") or {}).items():
        suffix, tags = _table(migration, table)
        stats.incr(_name("incremental.rows", suffix), int(written.get("rows", 0)), tags=tags)
        stats.incr(_name("incremental.bytes", suffix), int(written.get("bytes", 0)), tags=tags)
    tags = {"migration": migration}
    stats.timing(_name("incremental.batch_seconds", migration), dt.timedelta(seconds=float(summary.get("seconds", 0))), tags=tags)
    if not summary.get("rerun") and summary.get("latency_seconds") is not None:
        stats.gauge(_name("incremental.lag_seconds", migration), float(summary["latency_seconds"]), tags=tags)


def merge(migration: str, source_tables: Mapping[str, str], results: Iterable[Mapping[str, Any]]) -> None:
    """``source_tables``: replica table -> ``db.table``, as the merge results name replicas."""
    for result in results:
        if result.get("skipped"):
            continue
        table = source_tables.get(str(result.get("table")), str(result.get("table")))
        suffix, tags = _table(migration, table)
        stats.timing(_name("merge.seconds", suffix), dt.timedelta(seconds=float(result.get("seconds", 0))), tags=tags)
