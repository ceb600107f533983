"""Rate limits of a sink: at most N sends a minute, and how a backlog is split into messages."""

from __future__ import annotations

from collections import deque

WINDOW = 60.0


class RateLimiter:
    """A sliding one-minute window of sends; `per_minute` 0 means no limit."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sent: deque[float] = deque()

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - WINDOW:
            self._sent.popleft()

    def available(self, now: float) -> int | None:
        """How many sends the window allows now (None: unlimited)."""
        if self.per_minute <= 0:
            return None
        self._expire(now)
        return max(self.per_minute - len(self._sent), 0)

    def record(self, now: float, count: int = 1) -> None:
        """Count `count` sends made at `now`."""
        if self.per_minute > 0:
            self._sent.extend([now] * count)

    def next_free(self, now: float) -> float:
        """When the next send will be allowed (now, when one is allowed already)."""
        available = self.available(now)
        if available is None or available > 0:
            return now
        return self._sent[0] + WINDOW


def plan_messages(pending: int, available: int | None, digest_max: int) -> list[int]:
    """Sizes of the messages to send now: 1 is a single alert, more is a digest.

    Within the budget every alert goes alone; when more wait than the budget allows, the budget's last
    message is one digest of the rest (at most `digest_max`); the remainder waits for the next minute.
    """
    if pending <= 0 or available == 0:
        return []
    if available is None or pending <= available:
        return [1] * pending
    singles = available - 1
    return [1] * singles + [min(pending - singles, max(digest_max, 1))]


def batch_size(pending: int, available: int | None, batch_max: int) -> int:
    """Alerts a batch sink (file, database) writes now: the backlog within the budget and the batch cap."""
    size = min(pending, batch_max)
    return size if available is None else min(size, available)
