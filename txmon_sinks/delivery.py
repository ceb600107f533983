"""Alert delivery: takes the monitor's alert batches, keeps each distinct alert once in the durable
outbox (with how far the alerts topic was read), and runs one worker per sink (JSONL, webhook, email,
database).

The intake holds at most `intake_max` alerts not yet in the outbox: past that, offer() waits (the tail
reading Kafka slows down) rather than holding more in memory or dropping any.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from txmon_core.records.alert import Alert
from txmon_sinks.config import DeliveryConfig, Retry, delivery_config
from txmon_sinks.health import HealthTracker, SinkHealth
from txmon_sinks.identity import epoch, id_of, payload
from txmon_sinks.jsonl import JsonlSink
from txmon_sinks.latency import HistogramCounts, LatencyHistogram
from txmon_sinks.mail import EmailSink
from txmon_sinks.outbox import Outbox, OutboxItem
from txmon_sinks.sink import Sink
from txmon_sinks.store import DatabaseSink
from txmon_sinks.webhook import WebhookSink
from txmon_sinks.worker import LOG, SinkWorker

SilenceTest = Callable[[Alert, float], bool]  # (alert, when it arrived) → a silence covers it
MUTED_REMEMBERED = 100_000  # ids of silenced alerts kept for the senders (far more than one outbox backlog)
PRUNE_EVERY = 60.0  # seconds between two clean-ups of delivered alerts from the outbox
INTAKE_RETRY = 1.0  # seconds between attempts to write a batch to an outbox that failed
INTAKE_MAX = 50_000  # alerts offered but not yet in the outbox (~25 MB) before offer() waits


class DeliveryBusy(RuntimeError):
    """Another process delivers alerts from the same data dir; the message names it."""


def _lock(path: Path) -> TextIO:
    """Hold an exclusive lock on `path` while the returned file is open: one deliverer per outbox,
    or two monitors on one data dir would each send every alert."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # kept open: closing it releases the lock
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise DeliveryBusy(f"alerts from {path.parent} are already delivered by {holder}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


@dataclass(frozen=True)
class _Offer:
    """One offered batch: its alerts, when they arrived, and the topic offsets they were read up to."""

    alerts: list[Alert]
    received_at: float
    positions: Mapping[int, int] | None


@dataclass(frozen=True)
class _Spec:
    """A sink with its limits, as the configuration describes it."""

    sink: Sink
    max_per_minute: int
    size_max: int  # alerts per digest (webhook, email) or per batch (file, database)
    retry: Retry


class _Muted:
    """The ids of alerts that arrived while a silence covered them, bounded (the oldest go first)."""

    def __init__(self) -> None:
        self._ids: dict[str, None] = {}
        self._lock = threading.Lock()

    def add(self, ids: Iterable[str]) -> None:
        with self._lock:
            for alert_id in ids:
                self._ids[alert_id] = None
            while len(self._ids) > MUTED_REMEMBERED:
                del self._ids[next(iter(self._ids))]

    def __contains__(self, alert_id: object) -> bool:
        with self._lock:
            return alert_id in self._ids


class _Unmuted:
    """A sending sink (file, webhook, email) that skips silenced alerts; the database still stores them."""

    def __init__(self, sink: Sink, muted: _Muted) -> None:
        self._sink = sink
        self._muted = muted
        self.name = sink.name
        self.digests = sink.digests

    def send(self, items: Sequence[OutboxItem]) -> None:
        audible = [item for item in items if item.alert_id not in self._muted]
        if audible:
            self._sink.send(audible)

    def recover(self, items: Sequence[OutboxItem]) -> int:
        audible = [item for item in items if item.alert_id not in self._muted]
        done = self._sink.recover(audible) if audible else 0
        count = 0  # the items up to the last audible one recovered, and the silenced ones after it
        for item in items:
            if item.alert_id not in self._muted:
                if done == 0:
                    break
                done -= 1
            count += 1
        return count

    def close(self) -> None:
        self._sink.close()


def _specs(config: DeliveryConfig, muted: _Muted) -> list[_Spec]:
    specs = []
    if config.storage is not None:
        specs.append(_Spec(DatabaseSink(config.storage), 0, config.storage.batch_max, config.storage.retry))
    if config.jsonl is not None:
        specs.append(_Spec(_Unmuted(JsonlSink(config.jsonl), muted), config.jsonl.max_per_minute,
                           config.jsonl.batch_max, config.jsonl.retry))
    if config.webhook is not None:
        specs.append(_Spec(_Unmuted(WebhookSink(config.webhook), muted), config.webhook.max_per_minute,
                           config.webhook.digest_max, config.webhook.retry))
    if config.email is not None:
        specs.append(_Spec(_Unmuted(EmailSink(config.email), muted), config.email.max_per_minute,
                           config.email.digest_max, config.email.retry))
    return specs


class Delivery:
    """Every configured sink behind one outbox: start(), offer(alerts), health(), close()."""

    def __init__(self, config: DeliveryConfig, clock: Callable[[], float] = time.time,
                 silenced: SilenceTest | None = None, intake_max: int = INTAKE_MAX) -> None:
        self.config = config
        self._clock = clock
        # Asked once per alert as it is taken: a silence in force then keeps it from every sender for good
        # (it is still stored); e.g. lambda alert, at: is_silenced(alert, triage.state(), at).
        self.silenced = silenced
        self._muted = _Muted()
        self._specs = _specs(config, self._muted)
        self._trackers = {spec.sink.name: HealthTracker(spec.sink.name, spec.retry.down_after)
                          for spec in self._specs}
        self._workers: list[SinkWorker] = []
        self._intake_max = intake_max
        self._offers: deque[_Offer] = deque()
        self._queued = 0  # alerts offered and not yet stored (in _offers or being stored)
        self._unstored = 0  # offers not yet stored
        self._stopping = False
        self._intake_changed = threading.Condition()
        self._intake: threading.Thread | None = None
        self._outbox: Outbox | None = None
        self._latency = LatencyHistogram()
        self._lock = threading.Lock()
        self._duplicates = 0
        self._levels: Counter[str] = Counter()
        self._closed = False
        self._lock_file: TextIO | None = None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], data_dir: Path) -> Delivery:
        """Delivery as txmon.toml describes it (raises SettingsError on a bad table)."""
        return cls(delivery_config(settings, data_dir))

    @property
    def sink_names(self) -> list[str]:
        """The sinks that are on, in a stable order (database first)."""
        return [spec.sink.name for spec in self._specs]

    def start(self) -> None:
        """Open the outbox, resume each sink where it stopped, start the threads.

        With no sink and no storage there is no outbox, but alerts are still taken for the latency
        histogram and the per-level counts of the metrics endpoint.
        """
        if self._intake is not None:
            return
        if self._specs:
            self._lock_file = _lock(self.config.outbox_path.with_suffix(".lock"))
            try:
                self._outbox = Outbox(self.config.outbox_path)
            except BaseException:
                self._lock_file.close()
                self._lock_file = None
                raise
            self._workers = [self._resume(spec, self._outbox) for spec in self._specs]
        self._intake = threading.Thread(target=self._take, name="txmon-delivery-intake", daemon=True)
        self._intake.start()
        for worker in self._workers:
            worker.start()

    def _resume(self, spec: _Spec, outbox: Outbox) -> SinkWorker:
        """The sink's worker, starting after what the sink delivered before."""
        # Registered before any alert is taken, so a sink new to this outbox misses none of this run.
        cursor = outbox.register(spec.sink.name)
        tracker = self._trackers[spec.sink.name]
        tracker.set_pending(outbox.count_after(cursor))
        tracker.set_quarantined(outbox.quarantined_count(spec.sink.name))
        return SinkWorker(spec.sink, self.config.outbox_path, cursor, tracker, spec.retry.backoff,
                          spec.max_per_minute, spec.size_max, spec.retry.quarantine_after, clock=self._clock)

    def offer(self, alerts: Sequence[Alert], received_at: float | None = None,
              positions: Mapping[int, int] | None = None) -> None:
        """Hand over a batch of alerts (repeats included: they are dropped here) and, optionally, the next
        offset per partition of the alerts topic they were read up to (stored with them).

        Waits while `intake_max` alerts are not yet in the outbox, and returns at once after close():
        what is offered then is not stored, and neither are its positions, so the next run reads it again.
        """
        if not (alerts or positions) or self._intake is None:
            return
        offer = _Offer(list(alerts), self._clock() if received_at is None else received_at, positions)
        with self._intake_changed:
            while (self._queued and self._queued + len(offer.alerts) > self._intake_max
                   and not self._closed):
                self._intake_changed.wait(1.0)
            if self._closed:
                return
            self._offers.append(offer)
            self._queued += len(offer.alerts)
            self._unstored += 1
            self._intake_changed.notify_all()

    @property
    def queued(self) -> int:
        """Alerts offered and not yet in the outbox."""
        with self._intake_changed:
            return self._queued

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every offered batch is in the outbox; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._intake_changed:
            while self._unstored:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._intake_changed.wait(left)
        return True

    def positions(self) -> dict[int, int] | None:
        """Where reading the alerts topic resumes (next offset per partition; empty on a first run), or
        None when nothing is delivered (no outbox) and the reader may start anywhere."""
        if self._outbox is None:
            return None
        outbox = Outbox(self.config.outbox_path)  # its own connection: the intake's is busy writing
        try:
            return outbox.positions()
        finally:
            outbox.close()

    def health(self) -> list[SinkHealth]:
        """Each sink's state and counts now; safe to call from any thread."""
        now = self._clock()
        with self._lock:
            duplicates = self._duplicates
        return [self._trackers[spec.sink.name].snapshot(duplicates, now) for spec in self._specs]

    def latency(self) -> HistogramCounts:
        """Detection latency of every distinct alert taken since start."""
        return self._latency.counts()

    def distinct_by_level(self) -> dict[str, int]:
        """Distinct alerts taken since start, per level."""
        with self._lock:
            return dict(self._levels)

    def close(self, timeout: float = 10.0) -> None:
        """Write what was offered into the outbox, stop the sinks; what is undelivered waits for next time."""
        if self._closed:
            return
        with self._intake_changed:
            self._closed = self._stopping = True
            self._intake_changed.notify_all()
        if self._intake is not None:
            self._intake.join(timeout)
        for worker in self._workers:
            worker.stop()  # all at once: a hung receiver delays the exit by one timeout, not one each
        deadline = time.monotonic() + timeout
        for worker in self._workers:
            worker.join(max(deadline - time.monotonic(), 0.0))
        if self._outbox is not None:
            self._outbox.close()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the flock

    def __enter__(self) -> Delivery:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # ---- the intake thread ----------------------------------------------------------------------

    def _take(self) -> None:
        """Move offered batches into the outbox (several at once when they queue up), then wake the sinks."""
        next_prune = self._clock() + PRUNE_EVERY
        while True:
            with self._intake_changed:
                if not self._offers and not self._stopping:
                    self._intake_changed.wait(PRUNE_EVERY)
                offers = list(self._offers)
                self._offers.clear()
                stopping = self._stopping
            if offers:
                self._store(offers)
                with self._intake_changed:
                    self._queued -= sum(len(offer.alerts) for offer in offers)
                    self._unstored -= len(offers)
                    self._intake_changed.notify_all()
            if self._clock() >= next_prune:
                next_prune = self._clock() + PRUNE_EVERY
                self._prune()
            if stopping and not offers:
                return

    def _store(self, offers: Iterable[_Offer]) -> None:
        alerts: list[Alert] = []
        arrivals: list[float] = []
        positions: dict[int, int] = {}
        for offer in offers:
            alerts.extend(offer.alerts)
            arrivals.extend([offer.received_at] * len(offer.alerts))
            positions.update(offer.positions or {})  # in order: the last read of each partition wins
        if self._outbox is None:
            first = {id_of(alert): index for index, alert in reversed(list(enumerate(alerts)))}
            self._account(alerts, arrivals, sorted(first.values()))
            return
        items = [(id_of(alert), payload(alert)) for alert in alerts]
        if (silenced := self.silenced) is not None:
            self._muted.add(item[0] for item, alert, at in zip(items, alerts, arrivals, strict=True)
                            if silenced(alert, at))
        while True:
            try:
                fresh = self._outbox.add(items, self._clock(), positions)
                break
            except (sqlite3.Error, OSError) as exc:  # e.g. a full disk: keep the batch and try again
                if self._closed:
                    LOG.error("outbox: %s; %d alerts offered at exit were not stored", exc, len(items))
                    return
                for tracker in self._trackers.values():
                    tracker.failed(self._clock(), f"outbox: {exc}", self._clock() + INTAKE_RETRY)
                time.sleep(INTAKE_RETRY)
        self._account(alerts, arrivals, fresh)
        if fresh:
            for tracker in self._trackers.values():
                tracker.add_pending(len(fresh))
            for worker in self._workers:
                worker.wake()

    def _account(self, alerts: list[Alert], arrivals: list[float], fresh: list[int]) -> None:
        """Count repeats, levels and the latency of the alerts taken as new."""
        with self._lock:
            self._duplicates += len(alerts) - len(fresh)
            self._levels.update(alerts[i].level for i in fresh)
        self._latency.observe(
            arrivals[i] - sent for i in fresh if (sent := epoch(alerts[i].ts)) is not None
        )

    def _prune(self) -> None:
        if self._outbox is not None:
            self._outbox.prune(self.sink_names, self._clock() - self.config.remember_seconds,
                               self.config.remember_max)
