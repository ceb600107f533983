"""Waiting on conditions with deadlines: the only way tests here wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from textual.pilot import Pilot

T = TypeVar("T")


def wait_until(
    check: Callable[[], T], timeout: float, what: str, interval: float = 0.1
) -> T:
    """Call `check` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: T = check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)
        last = check()
    return last


async def until(pilot: Pilot[object], check: Callable[[], T], what: str, timeout: float = 40.0) -> T:
    """Let the app run until `check()` is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {result!r})")
        await pilot.pause(0.1)
    return result
