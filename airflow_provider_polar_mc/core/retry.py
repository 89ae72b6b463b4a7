"""The one place that decides what is retried and for how long (DTS's two retry windows), on tenacity.

A failed *connection*, to the source or to MaxCompute (refused, dropped, timed out, too many
connections, a lock wait) is retried within ``retry.connection_minutes`` of the spec (DTS default
720); other transient errors a caller names (MaxCompute's 5xx answers) are retried within
``retry.other_minutes`` (DTS default 10). Everything else is raised at once: a statement error does
not get better by repeating it. The windows' clock is core/failpoints.py's, which the reliability
suite can warp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pymysql
import requests
import tenacity

from airflow_provider_polar_mc.core import failpoints
from airflow_provider_polar_mc.exceptions import RetryWindowSpent

T = TypeVar("T")

# pymysql error codes that mean "the connection, not the statement, failed": retrying may help.
CONNECTION_ERROR_CODES = frozenset({2002, 2003, 2006, 2013, 2055, 1040, 1053, 1205, 1213})


# HTTP statuses of a MaxCompute answer that say "not now" rather than "not this request".
TRANSIENT_HTTP_STATUSES = frozenset({500, 502, 503, 504})


def is_connection_error(exc: BaseException) -> bool:
    """A lost or refused connection to the source (pymysql) or to MaxCompute (requests, pyodps)."""
    if isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError)):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        return code is None or code in CONNECTION_ERROR_CODES
    if isinstance(exc, (requests.exceptions.ConnectionError, requests.exceptions.Timeout)):
        return True
    return isinstance(exc, (ConnectionError, TimeoutError))


def is_transient_destination_error(exc: BaseException) -> bool:
    """A MaxCompute answer worth repeating the request for: a 5xx (the other window), or a lost
    connection (the connection window). A refused request (4xx) or a failed SQL instance is not."""
    if is_connection_error(exc):
        return True
    from odps.errors import ODPSError

    return isinstance(exc, ODPSError) and getattr(exc, "status_code", None) in TRANSIENT_HTTP_STATUSES


@dataclass(frozen=True)
class RetryPolicy:
    """DTS's two retry windows: failed connections (long) and other transient errors (short)."""

    connection_seconds: float = 720 * 60
    other_seconds: float = 10 * 60
    initial_backoff: float = 1.0
    max_backoff: float = 60.0

    def call(
        self,
        fn: Callable[[], T],
        *,
        retryable_other: Callable[[BaseException], bool] = lambda exc: False,
        log: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = failpoints.sleep,
        what: str = "source",
    ) -> T:
        """Call ``fn``; retry connection errors within the connection window and errors that
        ``retryable_other`` accepts within the other window, with jittered exponential backoff; raise
        the last error when its window is spent (or at once when it is neither). ``what`` names the
        failing side in the log lines."""
        started = failpoints.monotonic()

        def elapsed() -> float:
            return failpoints.monotonic() - started

        def window(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.connection_seconds if exc is not None and is_connection_error(exc) else self.other_seconds

        # "Equal jitter": half of the exponential step fixed, half random, so parallel workers spread out.
        half = {"multiplier": self.initial_backoff / 2, "max": self.max_backoff / 2}
        backoff = tenacity.wait_exponential(**half) + tenacity.wait_random_exponential(**half)

        def wait(state: tenacity.RetryCallState) -> float:  # never sleep past the end of the window
            return min(backoff(state), max(0.0, window(state) - elapsed()))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if log is not None:
                left = window(state) - elapsed()
                delay = state.next_action.sleep if state.next_action else 0.0
                log(f"{what} error ({state.outcome.exception()}); retry {state.attempt_number} in {delay:.1f}s, "
                    f"{left:.0f}s left in window")

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda exc: is_connection_error(exc) or retryable_other(exc)),
            stop=lambda state: elapsed() >= window(state),
            wait=wait,
            before_sleep=before_sleep,
            sleep=sleep,
            reraise=True,
        )
        return retrying(fn)


def window_spent(exc: BaseException, side: str, what: str, policy: RetryPolicy) -> RetryWindowSpent:
    """The error that ends a task whose retries of ``what`` on ``side`` ("the source", "MaxCompute")
    outlasted the window ``exc`` belongs to."""
    connection = is_connection_error(exc)
    window = "retry.connection_minutes" if connection else "retry.other_minutes"
    minutes = (policy.connection_seconds if connection else policy.other_seconds) / 60
    cause = "the connection kept failing" if connection else "it kept answering with a server error"
    fix = ("check that the host is reachable from the workers (network, allow-list, the server up)" if connection
           else "check the service's health and quotas")  # fmt: skip
    return RetryWindowSpent(
        f"{side}: {what} failed for longer than {window} ({minutes:g} min): {cause} "
        f"(last error: {type(exc).__name__}: {exc}). Nothing uncommitted is visible; {fix}, then clear the task "
        f"to resume from its checkpoints, or raise {window} to wait longer.",
        side,
        window,
    )
