"""Airflow DAGs for every migration spec (*.yaml) in the spec folder; see README.md.

The folder is ``[polar_mc] spec_dir`` in airflow.cfg (or ``AIRFLOW__POLAR_MC__SPEC_DIR``), else
``$POLAR_MC_SPEC_DIR``, else ``migrations/`` beside this file. Each spec gives
``polar_mc__<name>__setup`` (trigger it once from the UI) and, with incremental migration,
``polar_mc__<name>__incremental`` (scheduled; backfill it like any DAG). A spec with errors gets a
``polar_mc__spec_error__<file>`` DAG listing them instead; the other specs' DAGs are unaffected.
"""

from __future__ import annotations

from airflow_provider_polar_mc.dag_factory import migration_dags

globals().update(migration_dags(__file__))
