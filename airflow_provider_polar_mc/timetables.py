"""The incremental DAG's timetable: start at the latest closed interval, then never skip one.

Airflow offers two behaviours for a new DAG, neither right for a migration:

* ``catchup=True`` queues a run for every interval since ``start_date``: deployed a year after the
  spec was written, thousands of runs for intervals long before the snapshot;
* ``catchup=False`` starts at the latest interval, but after an outage (scheduler down, DAG paused) it
  skips the missed intervals, whose changes would then pile into one later partition.

:class:`ContinuousDataIntervalTimetable` starts like ``catchup=False`` (the first run is the latest
closed interval, so a deployment queues one run) and continues like ``catchup=True`` (every interval
after the previous run, missed ones included, in order). Backfills are Airflow's as usual. The first
run of the chain reads from the full load's snapshot coordinate (core/intervals.py).

Registered through the provider's plugin (``plugins.py``) so the scheduler can deserialize it.
"""

from __future__ import annotations

from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction
from airflow.timetables.interval import CronDataIntervalTimetable


class ContinuousDataIntervalTimetable(CronDataIntervalTimetable):
    """Cron data intervals: first run at the latest closed interval, then every interval, none skipped.

    Use it with ``catchup=False`` (the DAG factory does): that flag then only governs the first run.
    """

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None and not restriction.catchup:
            # After the first run every interval follows the previous one, outage or not.
            restriction = TimeRestriction(restriction.earliest, restriction.latest, catchup=True)
        return super().next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval, restriction=restriction
        )
