"""Bounded waits for a condition, instead of sleeps that assume something has happened by then."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str | Callable[[], str] = "the condition",
) -> T:
    """Poll ``condition`` until it returns something truthy (returned), or fail after ``timeout`` seconds
    with an AssertionError naming ``what`` (a string, or a callable giving one: current state for the message)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            description = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g}s waiting for {description}")
        time.sleep(interval)
