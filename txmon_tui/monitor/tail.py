"""Reading Kafka for the monitor: tail `alerts` + `metrics` in batches (end offsets: txmon_tui.readers).

The tail starts at the end of both topics, or, for a backfill, reads the alerts topic from a point in
time (or its beginning) up to where it ended at start, then goes on live.

The tail is a blocking client: call them from a worker thread (the UI) or a plain loop (headless).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import orjson
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from spark_app.formats import Alert, BatchMetrics, decode_alert, decode_metrics
from txmon_core.topics import TopicNames
from txmon_tui.readers import reading_consumer

MAX_BATCH = 20_000  # records per poll(): bounds one batch's cost when a backlog is drained



@dataclass
class TailBatch:
    """What one poll brought: decoded alerts and metrics, how many records could not be decoded."""

    alerts: list[Alert] = field(default_factory=list)
    metrics: list[BatchMetrics] = field(default_factory=list)
    undecodable: int = 0
    received_at: float = 0.0  # wall clock (time.time()), for detection latency against `ts`
    error: str | None = None  # a client-level error (e.g. all brokers down) reported since the last poll
    # Alerts written before the screen's start, read only to be delivered (a tail resuming delivery).
    missed: list[Alert] = field(default_factory=list)
    # The alerts topic's next offset per partition after this batch (a tail resuming delivery only).
    positions: dict[int, int] = field(default_factory=dict)
    # While a backfill runs: (alerts read, alerts to read) of the past; None once live (or without one).
    backfill: tuple[int, int] | None = None

    def __bool__(self) -> bool:
        return bool(self.alerts or self.metrics or self.undecodable or self.error or self.missed
                    or self.positions)


def _offsets(consumer: Consumer, partition: TopicPartition, timeout: float) -> tuple[int, int]:
    """The partition's first and end offsets, retrying while a new topic's leader is being elected."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            low, high = consumer.get_watermark_offsets(partition, timeout=timeout)
            return int(low), int(high)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            retriable = isinstance(error, KafkaError) and (
                error.retriable() or error.code() in (KafkaError.NOT_LEADER_FOR_PARTITION,
                                                      KafkaError.LEADER_NOT_AVAILABLE)
            )
            if not retriable or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def resume_offset(stored: int | None, low: int, high: int, first_run: bool) -> int:
    """Where delivery resumes reading one alerts partition: after what was stored with the last delivered
    batch; the end on a first run; the start of a partition added since, or of a topic made anew (stored
    past the end); never before the oldest record still kept."""
    if stored is None:
        return high if first_run else low
    if stored > high:
        return low
    return max(stored, low)


class Tail:
    """Reads the alerts and metrics topics from their ends at construction time, in batches.

    `since_ms` (Unix milliseconds; 0 for the beginning) backfills: the alerts topic is read from the
    first record at or after that time, up to its end at construction time, before the live ones.

    With `resume` (Outlets.resume_positions(): the next offset per alerts partition stored with the last
    delivered alerts), alerts are read from there: those written before the screen's start come in
    `missed` (for delivery, not for the screen), and every batch says in `positions` how far it read, so
    that a monitor stopped for a while delivers what was raised meanwhile.
    """

    def __init__(self, client_config: Mapping[str, str], timeout: float = 10.0,
                 names: TopicNames | None = None, since_ms: int | None = None,
                 resume: Mapping[int, int] | None = None) -> None:
        self._errors: list[str] = []
        self._names = names or TopicNames()
        self._alerts_topic = self._names.alerts
        # Per alerts partition being backfilled: [next offset to read, offset where the backfill ends].
        self._backfill: dict[int, list[int]] = {}
        self._backfill_total = 0
        self._resuming = resume is not None
        self._screen_from: dict[int, int] = {}  # per alerts partition: where the screen's alerts start
        self._positions: dict[int, int] = {}  # next offsets to report in the next batch
        self._consumer = reading_consumer(client_config, "tail", self._errors)
        try:
            assignment = []
            metadata = self._consumer.list_topics(timeout=timeout)
            for topic in (self._names.alerts, self._names.metrics):
                if topic not in metadata.topics:
                    raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, f"no topic {topic!r}"))
                for partition in metadata.topics[topic].partitions:
                    # Resolve "the end" now, so everything written after construction is read.
                    low, high = _offsets(self._consumer, TopicPartition(topic, partition), timeout)
                    start = high
                    if topic == self._names.alerts:
                        if since_ms is not None:
                            start = self._start_offset(TopicPartition(topic, partition), since_ms, high,
                                                       timeout)
                            if start < high:
                                self._backfill[partition] = [start, high]
                                self._backfill_total += high - start
                        if resume is not None:
                            self._screen_from[partition] = start
                            resumed = resume_offset(resume.get(partition), low, high, first_run=not resume)
                            self._positions[partition] = resumed  # stored at once: a first run's start counts
                            start = min(start, resumed)
                    assignment.append(TopicPartition(topic, partition, start))
            self._consumer.assign(assignment)
        except BaseException:
            self._consumer.close()
            raise

    def _start_offset(self, partition: TopicPartition, since_ms: int, high: int, timeout: float) -> int:
        """The first offset at or after `since_ms` (the log start for 0); `high` when none is that new."""
        if since_ms <= 0:
            low, _high = self._consumer.get_watermark_offsets(partition, timeout=timeout)
            return int(low)
        wanted = TopicPartition(partition.topic, partition.partition, since_ms)
        found = self._consumer.offsets_for_times([wanted], timeout=timeout)[0]
        if found.error is not None:
            raise KafkaException(found.error)
        return high if found.offset < 0 else min(int(found.offset), high)  # -1: nothing that new

    def backfill_progress(self) -> tuple[int, int] | None:
        """(alerts of the past read, alerts of the past to read) while a backfill runs, else None."""
        if not self._backfill:
            return None
        left = sum(end - max(position, 0) for position, end in self._backfill.values() if position < end)
        return self._backfill_total - left, self._backfill_total

    def _advance(self, partition: int, offset: int) -> None:
        """A backfilled partition was read up to `offset` (inclusive); forget it once at its end."""
        span = self._backfill.get(partition)
        if span is not None:
            span[0] = offset + 1
            if span[0] >= span[1]:
                del self._backfill[partition]

    def poll(self, timeout: float = 0.5, max_records: int = MAX_BATCH) -> TailBatch:
        """Wait up to `timeout` s for records, then take what is there (at most `max_records`)."""
        batch = TailBatch()
        # consume(n, timeout) would wait the whole timeout unless n records arrive, adding ~100 ms to
        # every alert (`python -m bench tail-delay`): poll() returns the first record at once, then
        # consume(n, 0) takes whatever else is already there.
        backfilling = self.backfill_progress() is not None
        first = self._consumer.poll(timeout)
        records = [] if first is None else [first]
        if first is not None and max_records > 1:
            records += self._consumer.consume(min(max_records, 10_000) - 1, 0)
        while records:
            for record in records:
                if record.error() is not None:
                    code = record.error().code()
                    if code != KafkaError._PARTITION_EOF:
                        batch.error = record.error().str()
                    continue
                value = record.value()
                alert = record.topic() == self._alerts_topic
                missed = False
                if alert and self._resuming:
                    partition, offset = record.partition(), record.offset()
                    self._positions[partition] = offset + 1
                    missed = offset < self._screen_from.get(partition, 0)
                if backfilling and alert and not missed:
                    self._advance(record.partition(), record.offset())
                try:
                    if not alert:
                        batch.metrics.append(decode_metrics(value))
                    elif missed:
                        batch.missed.append(decode_alert(value))
                    else:
                        batch.alerts.append(decode_alert(value))
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                    if not missed:
                        batch.undecodable += 1  # counted and shown, never fatal: a bad record is not our bug
            taken = len(batch.alerts) + len(batch.metrics) + len(batch.missed) + batch.undecodable
            if len(records) < 10_000 or taken >= max_records:
                break
            records = self._consumer.consume(min(max_records - taken, 10_000), 0)
        if self._errors:
            batch.error = self._errors[-1]
            self._errors.clear()
        if self._positions:
            batch.positions, self._positions = self._positions, {}
        batch.received_at = time.time()
        if backfilling:
            # The last batch of a backfill still says so (read == to read): its records are the past.
            batch.backfill = (self._backfill_total, self._backfill_total) if not self._backfill \
                else self.backfill_progress()
        return batch

    def close(self) -> None:
        """Close the consumer (no commits, no group to leave)."""
        self._consumer.close()


class Deliveries:
    """Tail batches gathered between deliveries to the screen, delivered at most every `interval` s.

    Records arrive in many small fetches (100 a second at 1,000 alerts/s); each delivery wakes the UI's
    event loop, so batches are handed over together. Each keeps its own `received_at` (latency stays exact).
    """

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._pending: list[TailBatch] = []
        self._last = -interval

    def add(self, batch: TailBatch) -> None:
        """Hold one batch until the next delivery."""
        self._pending.append(batch)

    def wait(self, longest: float) -> float:
        """How long the next poll may block: `longest`, or until the held batches are due."""
        if not self._pending:
            return longest
        return min(longest, max(0.0, self._last + self.interval - self._clock()))

    def take(self) -> list[TailBatch]:
        """The held batches if they are due (else nothing); a delivery restarts the interval."""
        now = self._clock()
        if not self._pending or now - self._last < self.interval:
            return []
        taken, self._pending, self._last = self._pending, [], now
        return taken
