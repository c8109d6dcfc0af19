"""Waiting in tests: for a condition, polled with a deadline (`wait_for`); or, where a test asserts that
something does NOT happen (no duplicate event, nothing published), for a bounded quiet period
(`stays_true`) that checks all along and names why it waits. Never a bare sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest


def wait_for(
    predicate: Callable[[], Any],
    *,
    timeout: float = 30,
    interval: float = 0.2,
    describe: Callable[[], str] | None = None,
) -> Any:
    """Poll until `predicate()` is truthy; returns its value or fails the test with the last value (and
    `describe()`: what else to know then, for a failure that happens only now and then)."""
    deadline = time.monotonic() + timeout
    value = predicate()
    while not value:
        if time.monotonic() > deadline:
            state = f"; {describe()}" if describe is not None else ""
            pytest.fail(f"condition not met within {timeout}s (last value: {value!r}{state})")
        time.sleep(interval)
        value = predicate()
    return value


def stays_true(predicate: Callable[[], Any], *, seconds: float, why: str, interval: float = 0.2) -> None:
    """Absence cannot be polled for: check `predicate()` for `seconds` (`why`: what could still happen
    in that time, e.g. "two more relay rounds") and fail at the first falsy value."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if not value:
            pytest.fail(f"no longer true while waiting {seconds}s for {why} (value: {value!r})")
        if time.monotonic() >= deadline:
            return
        time.sleep(interval)
