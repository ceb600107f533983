"""One thread per sink: take pending alerts from the outbox in order, send them within the rate limit,
move the sink's cursor only after a send succeeded, and back off while it fails.

A batch refused for what it holds (Rejected, or an unexpected error from the sink) is retried one alert
at a time; an alert refused alone `quarantine_after` times is set aside in the outbox's quarantine, so a
single poison alert never blocks the ones behind it.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from txmon_core.backoff import Backoff
from txmon_sinks.health import HealthTracker
from txmon_sinks.outbox import Outbox, OutboxItem
from txmon_sinks.ratelimit import RateLimiter, batch_size, plan_messages
from txmon_sinks.sink import DeliveryFailed, Rejected, Sink

IDLE_WAIT = 1.0  # seconds between outbox checks when nothing woke the worker
LOG = logging.getLogger("txmon.sinks")
LOG.addHandler(logging.NullHandler())  # never Python's last-resort stderr: it would break the screen


class SinkWorker:
    """Delivers the outbox to one sink until stopped; everything undelivered stays for the next run."""

    def __init__(
        self,
        sink: Sink,
        outbox_path: Path,
        cursor: int,
        tracker: HealthTracker,
        backoff: Backoff,
        max_per_minute: int,
        size_max: int,
        quarantine_after: int = 3,
        clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.sink = sink
        self.tracker = tracker
        self._outbox_path = outbox_path
        self._cursor = cursor
        self._backoff = backoff
        self._limiter = RateLimiter(max_per_minute)
        self._size_max = size_max
        self._clock = clock
        self._rand = rand
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failures = 0
        self._quarantine_after = quarantine_after
        self._solo_until = 0  # while the cursor is below this seq, alerts go one at a time
        self._refused = (0, 0)  # (seq, times) of the alert refused when sent alone
        self._thread = threading.Thread(target=self._run, name=f"txmon-sink-{sink.name}", daemon=True)

    def start(self) -> None:
        """Start delivering."""
        self._thread.start()

    def wake(self) -> None:
        """New alerts are in the outbox."""
        self._wake.set()

    def stop(self) -> None:
        """Ask the worker to stop after the current attempt (a send in flight ends within its timeout)."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> None:
        """Wait for the worker to end."""
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _sleep(self, seconds: float) -> None:
        """Wait, but wake early for new alerts or a stop."""
        self._wake.wait(max(seconds, 0.0))
        self._wake.clear()

    def _run(self) -> None:
        try:
            outbox = Outbox(self._outbox_path)
        except (sqlite3.Error, OSError) as exc:  # opened a moment ago by Delivery.start(): very unlikely
            self.tracker.failed(self._clock(), f"cannot open the outbox: {exc}", None)  # no retry
            self.sink.close()
            return
        try:
            self._recover(outbox)
            next_attempt = 0.0
            while not self._stop.is_set():
                now = self._clock()
                if now < next_attempt:
                    self._stop.wait(next_attempt - now)  # backing off: only a stop ends the wait early
                    continue
                try:
                    waited = self._deliver_some(outbox, now)
                # Anything else (a bug, the outbox file gone) must not kill the thread silently: it shows
                # in the sink's health and in the log, and is retried like a failed send.
                except Exception as exc:
                    LOG.exception("sink %s: unexpected error", self.sink.name)
                    waited = self._failed(DeliveryFailed(f"internal error: {type(exc).__name__}: {exc}"), now)
                if waited > 0:
                    next_attempt = now + waited
        finally:
            outbox.close()
            self.sink.close()

    def _recover(self, outbox: Outbox) -> None:
        """Skip alerts the sink holds already (delivered just before a crash, cursor not yet moved)."""
        try:
            items = outbox.pending(self._cursor, self._size_max)
            done = self.sink.recover(items) if items else 0
        except DeliveryFailed as exc:
            LOG.warning("sink %s: cannot check what was delivered before: %s", self.sink.name, exc)
            return
        if done:
            self._advance(outbox, items[done - 1], done, digest=False)

    def _deliver_some(self, outbox: Outbox, now: float) -> float:
        """Send what the rate limit allows; return seconds to back off (0: carry on)."""
        self._wake.clear()  # cleared before reading, so alerts added meanwhile wake the next wait
        available = self._limiter.available(now)
        if available == 0:
            self._sleep(self._limiter.next_free(now) - now)
            return 0.0
        size_max = 1 if self._cursor < self._solo_until else self._size_max
        limit = size_max if available is None else min(available - 1 + size_max, 10 * size_max)
        items = outbox.pending(self._cursor, limit if self.sink.digests else size_max)
        if not items:
            self._sleep(IDLE_WAIT)
            return 0.0
        if self.sink.digests:
            sizes = plan_messages(len(items), available, size_max)
        else:
            sizes = [batch_size(len(items), available, size_max)]
        for size in sizes:
            chunk, items = items[:size], items[size:]
            try:
                self.sink.send(chunk)
            except Rejected as exc:
                return self._refused_by_sink(outbox, chunk, str(exc), now)
            except DeliveryFailed as exc:
                return self._failed(exc, now)
            # Anything else raised by the sink came from these alerts' content (a bug meeting odd data):
            # counted against them like a refusal, so it cannot block the outbox for good.
            except Exception as exc:
                LOG.exception("sink %s: unexpected error sending %d alerts", self.sink.name, len(chunk))
                reason = f"internal error: {type(exc).__name__}: {exc}"
                return self._refused_by_sink(outbox, chunk, reason, now)
            self._limiter.record(self._clock(), 1 if self.sink.digests else size)
            self._advance(outbox, chunk[-1], size, digest=self.sink.digests and size > 1)
            if self._stop.is_set():
                break
        return 0.0

    def _advance(self, outbox: Outbox, last: OutboxItem, count: int, digest: bool) -> None:
        outbox.advance(self.sink.name, last.seq)
        self._cursor = last.seq
        self._failures = 0
        self.tracker.delivered(count, digest)

    def _refused_by_sink(self, outbox: Outbox, chunk: list[OutboxItem], reason: str, now: float) -> float:
        """A refusal: split a batch into single alerts; quarantine an alert refused alone often enough."""
        if len(chunk) > 1:
            self._solo_until = chunk[-1].seq  # some of these may be fine: they go out one by one
            self.tracker.failed(now, reason, now)
            return 0.0
        item = chunk[0]
        seq, times = self._refused
        self._refused = (item.seq, times + 1 if seq == item.seq else 1)
        if self._refused[1] < self._quarantine_after:
            return self._failed(DeliveryFailed(reason), now)
        outbox.quarantine(self.sink.name, item, reason, now)
        self._cursor = item.seq
        self._failures = 0
        self.tracker.quarantined()
        LOG.error("sink %s: alert %r quarantined after %d refusals: %s", self.sink.name, item.alert_id[:100],
                  self._refused[1], reason)
        return 0.0

    def _failed(self, exc: DeliveryFailed, now: float) -> float:
        self._failures += 1
        delay = self._backoff.delay(self._failures, self._rand(), exc.retry_after)
        self.tracker.failed(now, str(exc), now + delay)
        LOG.warning("sink %s: %s (attempt %d, next in %.1fs)", self.sink.name, exc, self._failures, delay)
        return delay
