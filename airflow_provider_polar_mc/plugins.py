"""The provider's Airflow plugin: registers the incremental DAG's timetable so the scheduler and the
API server can deserialize DAGs that use it (Airflow only loads registered custom timetables)."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_polar_mc.timetables import ContinuousDataIntervalTimetable


class PolarMcPlugin(AirflowPlugin):
    name = "polar_mc"
    timetables = [ContinuousDataIntervalTimetable]
