"""Named points in the migration's steps where the reliability suite kills the worker (kill -9).

Off unless ``POLAR_MC_FAILPOINTS`` is set in the worker's environment when this module is imported;
then :func:`reached` costs one global check. Settings, comma-separated:

- ``trace=<path>``: append the name of every point reached to ``path``, one per line (the suite
  records the points a run passes, then picks random ones to kill at);
- ``kill_at=<n>``: SIGKILL this process at the n-th point reached (from 1), as a crashed worker,
  an OOM kill or a lost node would end it: no ``finally``, no flush, no goodbye to MaxCompute;
- ``warp``: the retry windows' clock (:func:`monotonic`, :func:`sleep`, used by core/retry.py)
  skips each backoff instead of sleeping it, so a case can outlast ``retry.connection_minutes``
  (10 minutes at least) in seconds; every attempt is still a real request.

The points sit where a crash leaves different state behind: around every read, upload, commit, SQL
statement and bookkeeping write (tests/reliability/, README "Reliability").
"""

from __future__ import annotations

import os
import signal
import threading
import time

ENV_VAR = "POLAR_MC_FAILPOINTS"


def _parse(text: str) -> tuple[str | None, int | None, bool]:
    trace, kill_at, warp = None, None, False
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key == "trace":
            trace = value
        elif key == "kill_at":
            kill_at = int(value)
        elif key == "warp" and not value:
            warp = True
        else:
            raise ValueError(f"{ENV_VAR}: unknown setting {part!r} (expected trace=<path>, kill_at=<n> or warp)")
    return trace, kill_at, warp


_TRACE: str | None = None
_KILL_AT: int | None = None
_ACTIVE = False
_WARP = False
_skipped = 0.0  # seconds of backoff the warp skipped
_count = 0
_lock = threading.Lock()


def configure(settings: str) -> None:
    """Apply ``settings`` (the variable's syntax; empty: off) and restart the count: the suite's fork
    server calls it in each worker it forks, which imported this module long before."""
    global _TRACE, _KILL_AT, _ACTIVE, _WARP, _skipped, _count
    _TRACE, _KILL_AT, _WARP = _parse(settings)
    _ACTIVE = _TRACE is not None or _KILL_AT is not None
    _skipped = 0.0
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


def monotonic() -> float:
    """``time.monotonic()``, plus the backoff the warp skipped."""
    return time.monotonic() + _skipped


def sleep(seconds: float) -> None:
    """``time.sleep``; under the warp the time passes for :func:`monotonic` only."""
    global _skipped
    if not _WARP:
        time.sleep(seconds)
        return
    with _lock:
        _skipped += seconds
