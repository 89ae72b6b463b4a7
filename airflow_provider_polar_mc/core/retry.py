"""The one place that decides what is retried and for how long (DTS's two retry windows), on tenacity.

A failed *connection* (refused, dropped, timed out, too many connections, a lock wait) is retried
within ``retry.connection_minutes`` of the spec (DTS default 720); other transient errors a caller
names are retried within ``retry.other_minutes`` (DTS default 10). Everything else is raised at once:
a statement error does not get better by repeating it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pymysql
import tenacity

T = TypeVar("T")

# pymysql error codes that mean "the connection, not the statement, failed": retrying may help.
CONNECTION_ERROR_CODES = frozenset({2002, 2003, 2006, 2013, 2055, 1040, 1053, 1205, 1213})


def is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, (pymysql.err.OperationalError, pymysql.err.InterfaceError)):
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        return code is None or code in CONNECTION_ERROR_CODES
    return isinstance(exc, (ConnectionError, TimeoutError))


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
        sleep: Callable[[float], None] = time.sleep,
    ) -> T:
        """Call ``fn``; retry connection errors within the connection window and errors that
        ``retryable_other`` accepts within the other window, with jittered exponential backoff; raise
        the last error when its window is spent (or at once when it is neither)."""

        def window(state: tenacity.RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self.connection_seconds if exc is not None and is_connection_error(exc) else self.other_seconds

        # "Equal jitter": half of the exponential step fixed, half random, so parallel workers spread out.
        half = {"multiplier": self.initial_backoff / 2, "max": self.max_backoff / 2}
        backoff = tenacity.wait_exponential(**half) + tenacity.wait_random_exponential(**half)

        def wait(state: tenacity.RetryCallState) -> float:  # never sleep past the end of the window
            return min(backoff(state), max(0.0, window(state) - state.seconds_since_start))

        def before_sleep(state: tenacity.RetryCallState) -> None:
            if log is not None:
                left = window(state) - state.seconds_since_start
                delay = state.next_action.sleep if state.next_action else 0.0
                log(f"source error ({state.outcome.exception()}); retry {state.attempt_number} in {delay:.1f}s, "
                    f"{left:.0f}s left in window")

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda exc: is_connection_error(exc) or retryable_other(exc)),
            stop=lambda state: state.seconds_since_start >= window(state),
            wait=wait,
            before_sleep=before_sleep,
            sleep=sleep,
            reraise=True,
        )
        return retrying(fn)
