"""The publish loop: paced batches from the generator into a confluent-kafka Producer, deliveries counted."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from confluent_kafka import KafkaError, Message

from producer.control import Injection
from producer.generator import TransactionGenerator
from txmon_core.records.transaction import leading_tx_id

# At most this many records between two looks at the clock, the stop flag and the delivery reports:
# large enough to amortise the loop, small enough (~10 ms of work) to stop and pace promptly.
MAX_BATCH = 2_000
# Shortest wait between paced batches. librdkafka's poll() counts in whole milliseconds, so shorter waits
# would spin; at high rates each wake-up simply sends every record that fell due meanwhile.
MIN_WAIT = 0.002
# Longest single wait: confluent-kafka's poll() holds the main thread, so Python runs a SIGTERM handler
# only after poll returns; at very low rates this keeps stopping prompt.
MAX_WAIT = 0.1
# How long to serve delivery reports when librdkafka's queue is full (BufferError) before retrying.
FULL_QUEUE_WAIT = 0.05
# Ack-log lines reach the file at least this often, so a fault test sees them without waiting for exit.
ACK_LOG_FLUSH_INTERVAL = 0.2


class KafkaProducer(Protocol):
    """The part of `confluent_kafka.Producer` the loop uses (a fake can stand in for it in tests)."""

    def produce(
        self, topic: str, value: bytes, key: bytes, on_delivery: Callable[[KafkaError | None, Message], None]
    ) -> None: ...

    def poll(self, timeout: float) -> int: ...

    def flush(self, timeout: float) -> int: ...

    def __len__(self) -> int: ...


def delivery_settings(ack_log: bool) -> dict[str, Any]:
    """librdkafka settings for delivery reports: only failures, unless every acknowledged id is logged.

    A Python callback per record costs about a third of what `produce()` does; with idempotence every
    record leaves librdkafka's queue either acknowledged or with an error report, so successes can be
    counted as produced - failed - still queued instead of one by one.
    """
    return {"delivery.report.only.error": not ack_log}


@dataclass
class DeliveryCounts:
    """What happened to the records handed to the producer (final once the queue is flushed)."""

    produced: int = 0
    failed: int = 0
    undelivered: int = 0  # still in librdkafka's queue when the flush gave up; included in `failed`
    first_error: str | None = None
    errors_reported: set[str] = field(default_factory=set)

    @property
    def acknowledged(self) -> int:
        """Records the broker acknowledged: every record that neither failed nor stayed queued."""
        return self.produced - self.failed


@dataclass(frozen=True)
class RunResult:
    """The outcome of one `publish` run."""

    counts: DeliveryCounts
    elapsed: float
    stopped: bool  # True when the stop event ended the run (a signal), False when --count was reached

    @property
    def rate(self) -> float:
        """Records produced per second of producing (the final flush is not counted)."""
        return self.counts.produced / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> str:
        """The one-line summary printed on exit."""
        c = self.counts
        verb = "stopped" if self.stopped else "finished"
        return (
            f"producer {verb}: produced={c.produced} acknowledged={c.acknowledged} failed={c.failed} "
            f"elapsed={self.elapsed:.2f}s rate={self.rate:.2f}/s"
        )


def delivery_callback(
    counts: DeliveryCounts, ack_log: BinaryIO | None = None
) -> Callable[[KafkaError | None, Message], None]:
    """A delivery-report callback that counts failures and, when asked, logs acknowledged tx_ids."""

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        if err is None:
            if ack_log is not None:
                value = msg.value()
                if value is not None:
                    ack_log.write(leading_tx_id(value) + b"\n")
            return
        counts.failed += 1
        text = str(err)
        if counts.first_error is None:
            counts.first_error = text
        # A dead broker fails thousands of records with the same error: say each kind once.
        if text not in counts.errors_reported:
            counts.errors_reported.add(text)
            print(f"producer: delivery failed: {text}", file=sys.stderr, flush=True)

    return on_delivery


def publish(
    producer: KafkaProducer,
    generator: TransactionGenerator,
    topic: str,
    *,
    rate: float | None,
    count: int | None,
    stop: threading.Event,
    ack_log: BinaryIO | None = None,
    flush_timeout: float = 30.0,
    force: threading.Event | None = None,
    clock: Callable[[], float] = time.monotonic,
    injections: Callable[[], list[Injection]] | None = None,
) -> RunResult:
    """Produce at `rate` records/s (None: as fast as possible) until `count` or `stop`, then flush.

    Pacing follows an absolute schedule (record i is due at start + i / rate), so a late wake-up is
    made up by the next batch instead of lowering the rate. After `stop`, the flush waits at most
    `flush_timeout` seconds, or until `force` is set; records still undelivered then count as failed.
    `injections`, when given, is asked once per loop for extra records (producer.control): they are
    produced at once, outside the schedule and `count`, and each injection's reply printed on stdout.
    """
    counts = DeliveryCounts()
    on_delivery = delivery_callback(counts, ack_log)
    produce = producer.produce
    poll = producer.poll
    start = clock()
    last_ack_flush = start
    sent = injected = 0
    while not stop.is_set() and (count is None or sent < count):
        if injections is not None:
            injected += _inject(producer, topic, injections(), on_delivery, stop)
        now = clock()
        if rate is None:
            n = MAX_BATCH
        else:
            n = int((now - start) * rate) + 1 - sent  # records due by now; the first is due at once
            if n <= 0:
                poll(min(MAX_WAIT, max(MIN_WAIT, start + sent / rate - now)))
                continue
            n = min(n, MAX_BATCH)
        if count is not None:
            n = min(n, count - sent)
        keys, values = generator.batch(n)
        for key, value in zip(keys, values, strict=True):
            try:
                produce(topic, value, key, on_delivery=on_delivery)
            except BufferError:
                # librdkafka's queue is full: serve delivery reports until there is room, never drop.
                if not _retry_until_queued(producer, topic, key, value, on_delivery, stop):
                    break  # stopped while the queue stayed full: this record was never handed over
            sent += 1
        counts.produced = sent + injected
        poll(0)
        if ack_log is not None and now - last_ack_flush >= ACK_LOG_FLUSH_INTERVAL:
            ack_log.flush()
            last_ack_flush = now
    counts.produced = sent + injected  # the last injections may have come after the last batch
    elapsed = clock() - start
    stopped = stop.is_set()
    _flush(producer, counts, deadline=clock() + flush_timeout if stopped else None, force=force, clock=clock)
    if ack_log is not None:
        ack_log.flush()
    return RunResult(counts=counts, elapsed=elapsed, stopped=stopped)


def _inject(
    producer: KafkaProducer,
    topic: str,
    pending: list[Injection],
    on_delivery: Callable[[KafkaError | None, Message], None],
    stop: threading.Event,
) -> int:
    """Produce each injection's records, then print its reply; return how many records were handed over."""
    handed = 0
    for injection in pending:
        for key, value in injection.records:
            try:
                producer.produce(topic, value, key, on_delivery=on_delivery)
            except BufferError:
                if not _retry_until_queued(producer, topic, key, value, on_delivery, stop):
                    return handed
            handed += 1
        print(injection.reply, flush=True)
    return handed


def _retry_until_queued(
    producer: KafkaProducer,
    topic: str,
    key: bytes,
    value: bytes,
    on_delivery: Callable[[KafkaError | None, Message], None],
    stop: threading.Event,
) -> bool:
    """Serve delivery reports and retry until librdkafka takes the record; False if `stop` came first."""
    while not stop.is_set():
        producer.poll(FULL_QUEUE_WAIT)
        try:
            producer.produce(topic, value, key, on_delivery=on_delivery)
            return True
        except BufferError:
            continue
    return False


def _flush(
    producer: KafkaProducer,
    counts: DeliveryCounts,
    *,
    deadline: float | None,
    force: threading.Event | None,
    clock: Callable[[], float],
) -> None:
    """Wait for every delivery, until `deadline` (None: librdkafka's own message timeout) or `force`.

    Flushing in short slices keeps signals handled promptly and lets a second Ctrl+C cut the wait.
    """
    while producer.flush(0.5) > 0:
        if force is not None and force.is_set():
            break
        if deadline is not None and clock() >= deadline:
            break
    # What never got a report is lost to us: count it as failed rather than pretend.
    undelivered = len(producer)
    if undelivered:
        counts.undelivered = undelivered
        counts.failed += undelivered
        if counts.first_error is None:
            counts.first_error = f"{undelivered} records not delivered before the flush deadline"
        print(f"producer: {undelivered} records not delivered before exit", file=sys.stderr, flush=True)
