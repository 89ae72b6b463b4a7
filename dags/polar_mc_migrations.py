"""Airflow DAGs for every migration spec in dags/migrations/*.yaml (or the folder $POLAR_MC_SPEC_DIR).

Each spec gives `polar_mc__<name>__setup` (trigger it once from the UI) and, with incremental migration,
`polar_mc__<name>__incremental` (scheduled; backfill it like any DAG). See README.md.
A spec with errors fails this file's import with the spec's error list, shown in the Airflow UI.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow_provider_polar_mc.dag_factory import dags_for_spec

SPEC_DIR = Path(os.environ.get("POLAR_MC_SPEC_DIR") or Path(__file__).parent / "migrations")

for spec_path in sorted(SPEC_DIR.glob("*.yaml")):
    for dag in dags_for_spec(spec_path):
        globals()[dag.dag_id] = dag
