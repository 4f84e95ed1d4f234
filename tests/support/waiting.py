"""Waiting for a condition instead of sleeping a fixed time.

A fixed sleep is either longer than needed or, on a loaded machine, too short; a test that then looks at
a state not reached yet can pass without having tested anything. These poll an observable condition.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def poll_until(condition: Callable[[], T], timeout_s: float, interval_s: float = 0.05) -> T | None:
    """The first truthy value of ``condition()`` within ``timeout_s`` (it is called once more at the
    deadline); None when there was none. Exceptions from ``condition`` propagate."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        time.sleep(min(interval_s, remaining))


def wait_until(
    condition: Callable[[], T],
    timeout_s: float,
    message: str | Callable[[], str],
    interval_s: float = 0.05,
) -> T:
    """The first truthy value of ``condition()``; fails the test when none comes within ``timeout_s``.

    ``message`` says what was awaited; a callable is called at the timeout, so it can show the last state
    (a log tail, the events seen so far)."""
    value = poll_until(condition, timeout_s, interval_s)
    if value:
        return value
    text = message() if callable(message) else message
    pytest.fail(f"timed out after {timeout_s} s waiting for {text}")
