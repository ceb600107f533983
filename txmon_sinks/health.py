"""Health of one sink: ok, retrying since a time, or down with its last error; and its counts."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

OK = "ok"
RETRYING = "retrying"
DOWN = "down"
STATES = (OK, RETRYING, DOWN)


@dataclass(frozen=True)
class SinkHealth:
    """What the monitor shows of a sink. Counts are alerts (a digest counts each alert it carries)."""

    name: str
    state: str
    since: float | None  # when the sink started failing (retrying/down); None when ok
    last_error: str | None
    sent: int
    pending: int
    duplicates: int  # alerts dropped because their id was delivered (or queued) already
    failures: int
    digests: int
    next_attempt_at: float | None
    quarantined: int = 0  # alerts set aside because this sink refused them again and again

    def describe(self, now: float | None = None) -> str:
        """One line, e.g. `webhook retrying for 12s (HTTP 503) · sent 40 · pending 3 · 2 duplicates`."""
        now = time.time() if now is None else now
        head = f"{self.name} {self.state}"
        if self.since is not None:
            head += f" for {max(now - self.since, 0):.0f}s"
        if self.last_error and self.state != OK:
            head += f" ({self.last_error})"
        line = f"{head} · sent {self.sent:,} · pending {self.pending:,} · {self.duplicates:,} duplicates"
        return line + (f" · {self.quarantined:,} quarantined" if self.quarantined else "")


class HealthTracker:
    """Counts and failure state of one sink, updated by its worker and read from any thread."""

    def __init__(self, name: str, down_after: float) -> None:
        self.name = name
        self.down_after = down_after
        self._lock = threading.Lock()
        self._failing_since: float | None = None
        self._last_error: str | None = None
        self._next_attempt_at: float | None = None
        self._sent = self._failures = self._digests = 0
        self._pending = 0
        self._quarantined = 0

    def delivered(self, count: int, digest: bool = False) -> None:
        """`count` alerts went out: the sink is ok again."""
        with self._lock:
            self._sent += count
            self._pending = max(self._pending - count, 0)
            self._digests += int(digest)
            self._failing_since = self._next_attempt_at = None

    def failed(self, now: float, error: str, next_attempt_at: float | None) -> None:
        """An attempt failed; the next is due at `next_attempt_at` (None: none will be made)."""
        with self._lock:
            self._failures += 1
            self._last_error = error
            self._next_attempt_at = next_attempt_at
            if self._failing_since is None:
                self._failing_since = now

    def quarantined(self, count: int = 1) -> None:
        """`count` alerts were set aside: no longer pending, and the sink moves on (not failing for them)."""
        with self._lock:
            self._quarantined += count
            self._pending = max(self._pending - count, 0)
            self._failing_since = self._next_attempt_at = None

    def set_quarantined(self, count: int) -> None:
        """The outbox's count of alerts set aside for this sink (at start)."""
        with self._lock:
            self._quarantined = count

    def set_pending(self, pending: int) -> None:
        """The outbox's count of alerts this sink has still to deliver."""
        with self._lock:
            self._pending = pending

    def add_pending(self, count: int) -> None:
        """New alerts entered the outbox."""
        with self._lock:
            self._pending += count

    def state(self, now: float) -> str:
        """ok, retrying (failing for less than `down_after`), or down."""
        with self._lock:
            return _state(self._failing_since, now, self.down_after)

    def snapshot(self, duplicates: int, now: float | None = None) -> SinkHealth:
        """The sink's health at `now`."""
        now = time.time() if now is None else now
        with self._lock:
            state = _state(self._failing_since, now, self.down_after)
            return SinkHealth(self.name, state, self._failing_since, self._last_error, self._sent,
                              self._pending, duplicates, self._failures, self._digests,
                              self._next_attempt_at if state != OK else None, self._quarantined)


def _state(failing_since: float | None, now: float, down_after: float) -> str:
    if failing_since is None:
        return OK
    return DOWN if now - failing_since >= down_after else RETRYING
