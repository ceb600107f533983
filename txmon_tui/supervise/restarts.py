"""When to restart a process that died on its own: exponential backoff, reset after a stable run.

Pure bookkeeping with an injectable clock; the pipeline decides what a failure is and does the restart.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from txmon_core.backoff import Backoff

# 2, 4, 8 … up to 60 s, exactly (one monitor restarts its own children: nothing to spread out).
RESTART_BACKOFF = Backoff(initial=2.0, maximum=60.0, jitter=0.0)
STABLE_AFTER = 60.0  # a process that ran this long before failing starts a new streak


@dataclass(frozen=True)
class PendingRestart:
    """A scheduled restart as shown to the user: which one in the streak, and in how many seconds."""

    attempt: int
    due_in: float

    def text(self) -> str:
        """`restart 3 in 8 s`, or `restart 3 now` once due."""
        wait = math.ceil(self.due_in)
        return f"restart {self.attempt} in {wait} s" if wait > 0 else f"restart {self.attempt} now"


class RestartPlan:
    """The restart schedule of one process: restarts in the current streak and when the next is due."""

    def __init__(self, backoff: Backoff = RESTART_BACKOFF, clock: Callable[[], float] = time.monotonic,
                 stable_after: float = STABLE_AFTER) -> None:
        self.backoff = backoff
        self.stable_after = stable_after
        self._clock = clock
        self.attempts = 0  # restarts scheduled in the current streak
        self.total = 0  # restarts done since the plan was made
        self._due: float | None = None

    def failed(self, ran_for: float | None) -> float:
        """The process died on its own after `ran_for` seconds: schedule a restart; return its delay."""
        if ran_for is not None and ran_for >= self.stable_after:
            self.attempts = 0
        self.attempts += 1
        delay = self.backoff.delay(self.attempts)
        self._due = self._clock() + delay
        return delay

    @property
    def pending(self) -> bool:
        """Whether a restart is scheduled and not yet taken."""
        return self._due is not None

    def take_due(self) -> bool:
        """True once the scheduled restart's time has come; it is then taken (the caller restarts)."""
        if self._due is None or self._clock() < self._due:
            return False
        self._due = None
        self.total += 1
        return True

    def reset(self) -> None:
        """The user took over (started, stopped or restarted it): drop the schedule and the streak."""
        self._due = None
        self.attempts = 0

    def view(self) -> PendingRestart | None:
        """The scheduled restart, or None."""
        if self._due is None:
            return None
        return PendingRestart(self.attempts, max(self._due - self._clock(), 0.0))
