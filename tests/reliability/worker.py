"""One migration step in a process of its own, as an Airflow worker runs it, for the reliability suite
to kill (``POLAR_MC_FAILPOINTS``, core/failpoints.py).

    python -m tests.reliability.worker <full_load|incremental_load|merge> <spec JSON> [<interval JSON>]
"""

from __future__ import annotations

import datetime as dt
import json
import sys


def main(argv: list[str]) -> None:
    stage, spec = argv[0], json.loads(argv[1])
    context = {k: dt.datetime.fromisoformat(v) for k, v in json.loads(argv[2]).items()} if len(argv) > 2 else {}
    if stage == "full_load":
        from airflow_provider_polar_mc.operators.full_load import FullLoadOperator

        FullLoadOperator(task_id=stage, spec=spec, progress_interval=60).execute(context)
    elif stage == "incremental_load":
        from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator

        IncrementalLoadOperator(task_id=stage, spec=spec).execute(context)
    elif stage == "merge":
        from airflow_provider_polar_mc.operators.merge import MergeOperator

        MergeOperator(task_id=stage, spec=spec).execute(context)
    else:
        raise SystemExit(f"unknown stage {stage!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
