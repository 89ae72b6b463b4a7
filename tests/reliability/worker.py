"""Migration steps in processes of their own, as Airflow workers run them, for the reliability suite to
kill at its failpoints (core/failpoints.py).

``python -m tests.reliability.worker serve`` is a fork server: it imports the provider once (3.5 s a
process otherwise), then for each request on stdin (one JSON object a line: ``stage``, ``spec``,
``context``, ``env``, ``odps_options``, ``failpoints``, ``output``) forks a worker that applies the environment and the
failpoint settings and runs the stage, its output in the file ``output``; it answers one JSON line,
``{"returncode": n}``, negative for the signal that ended the worker (-9 for a kill). With ``copies``
it forks that many workers for the request at once (a zombie and its retry) and answers every
``returncodes``. The server
itself opens no connection and starts no thread, so each fork starts clean.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import sys
import traceback
from typing import Any


def run_stage(stage: str, spec: dict[str, Any], context: dict[str, Any]) -> None:
    """One stage as the DAG's tasks run it (also the suite's in-process retry, with no failpoints)."""
    from airflow_provider_polar_mc.operators.full_load import (
        FullLoadCommitOperator,
        FullLoadOperator,
        FullLoadShardOperator,
        full_load_plan,
    )
    from airflow_provider_polar_mc.operators.incremental import IncrementalLoadOperator
    from airflow_provider_polar_mc.operators.merge import MergeOperator

    interval = {k: dt.datetime.fromisoformat(v) if isinstance(v, str) else v for k, v in context.items()}
    if stage == "sharded_full_load":
        # The setup DAG's tasks in a row: the shards of the big table, their one commit, the small tables.
        plan = full_load_plan(spec)  # planned before the stage: this finds the recorded plan
        for shard in plan["shards"]:
            FullLoadShardOperator(task_id="full_load_shard", spec=spec, shard=shard).execute({})
        FullLoadCommitOperator(task_id="full_load_commit", spec=spec, shards=plan["shards"]).execute({})
        for group in plan["groups"]:
            FullLoadOperator(task_id="full_load", spec=spec, tables=group).execute({})
        return
    operators = {"full_load": FullLoadOperator, "incremental_load": IncrementalLoadOperator, "merge": MergeOperator}
    operators[stage](task_id=stage, spec=spec).execute(interval)


def _worker(request: dict[str, Any]) -> None:
    """In the forked child: never returns."""
    code = 0
    try:
        fd = os.open(request["output"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.environ.update(request.get("env") or {})
        if request.get("odps_options"):
            from odps import options

            for name, value in request["odps_options"].items():
                setattr(options, name, value)
        from airflow_provider_polar_mc.core import failpoints

        failpoints.configure(request.get("failpoints") or "")
        run_stage(request["stage"], request["spec"], request.get("context") or {})
    except BaseException:  # noqa: BLE001 - reported through the exit code and the output file
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _warm_imports() -> None:
    """What the operators import inside ``execute``: paid once, in the server."""
    for module in ("operators.full_load", "operators.incremental", "operators.merge", "core.full_load",
                   "core.incremental", "core.merging", "core.destination.checkpoint", "core.failpoints", "hooks.resolve"):  # fmt: skip
        importlib.import_module(f"airflow_provider_polar_mc.{module}")


def serve() -> None:
    # Answers go to the original stdout alone; anything the imports print goes to stderr.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    _warm_imports()
    for line in sys.stdin:
        request = json.loads(line)
        # ``copies`` > 1: that many workers run the same stage at once (a zombie and its retry).
        pids = []
        for copy in range(int(request.get("copies", 1))):
            pid = os.fork()
            if pid == 0:
                _worker({**request, "output": f"{request['output']}.{copy}" if copy else request["output"]})
            pids.append(pid)
        codes = []
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            codes.append(-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status))
        answers.write(json.dumps({"returncode": codes[0], "returncodes": codes}) + "\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["serve"]:
        raise SystemExit("usage: python -m tests.reliability.worker serve")
    serve()
