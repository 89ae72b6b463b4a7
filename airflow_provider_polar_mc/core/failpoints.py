"""Named points in the migration's steps where the reliability suite kills the worker (kill -9).

Off unless ``POLAR_MC_FAILPOINTS`` is set in the worker's environment when this module is imported;
then :func:`reached` costs one global check. Settings, comma-separated:

- ``trace=<path>``: append the name of every point reached to ``path``, one per line (the suite
  records the points a run passes, then picks random ones to kill at);
- ``kill_at=<n>``: SIGKILL this process at the n-th point reached (from 1), as a crashed worker,
  an OOM kill or a lost node would end it: no ``finally``, no flush, no goodbye to MaxCompute.

The points sit where a crash leaves different state behind: around every read, upload, commit, SQL
statement and bookkeeping write (tests/reliability/, README "Reliability").
"""

from __future__ import annotations

import os
import signal
import threading

ENV_VAR = "POLAR_MC_FAILPOINTS"


def _parse(text: str) -> tuple[str | None, int | None]:
    trace, kill_at = None, None
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key == "trace":
            trace = value
        elif key == "kill_at":
            kill_at = int(value)
        else:
            raise ValueError(f"{ENV_VAR}: unknown setting {part!r} (expected trace=<path> or kill_at=<n>)")
    return trace, kill_at


_TRACE: str | None = None
_KILL_AT: int | None = None
_ACTIVE = False
_count = 0
_lock = threading.Lock()


def configure(settings: str) -> None:
    """Apply ``settings`` (the variable's syntax; empty: off) and restart the count: the suite's fork
    server calls it in each worker it forks, which imported this module long before."""
    global _TRACE, _KILL_AT, _ACTIVE, _count
    _TRACE, _KILL_AT = _parse(settings)
    _ACTIVE = _TRACE is not None or _KILL_AT is not None
    _count = 0


configure(os.environ.get(ENV_VAR, ""))


def reached(name: str) -> None:
    """The worker passes point ``name``; with the suite's settings, maybe the last thing it does."""
    if not _ACTIVE:
        return
    global _count
    with _lock:  # points are reached from upload and read threads too: one order, one count
        _count += 1
        if _TRACE is not None:
            with open(_TRACE, "a", encoding="utf-8") as trace:
                trace.write(f"{name}\n")
        if _KILL_AT is not None and _count == _KILL_AT:
            os.kill(os.getpid(), signal.SIGKILL)
