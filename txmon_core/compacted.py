"""Reading and writing the operators' compacted topics (txmon.rules, txmon.triage): one partition each.

Every reader assigns partition 0 itself and never joins a group nor commits: each monitor, CLI call or
job reads the whole topic, which stays small (one record per human action). No Textual, no pyspark.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from txmon_core.topics import COMPACTED, KafkaAccessError, ensure_topics

PARTITION = 0
# A follower's consume() returns after this long with what came (it waits the whole time unless 500
# records arrive): it bounds how late another monitor's action shows, at ~10 idle wake-ups a second.
FOLLOW_WAIT = 0.1
_QUIET = logging.getLogger("txmon.compacted")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a compacted topic; `value` None is a tombstone."""

    offset: int
    key: str
    value: bytes | None


def ensure(client_config: Mapping[str, str], topic: str, timeout: float = 30.0) -> None:
    """Create the topic, compacted and with one partition, if it is missing (idempotent)."""
    ensure_topics(client_config, [topic], partitions=1, timeout=timeout, config=COMPACTED)


def exists(client_config: Mapping[str, str], topic: str, timeout: float = 5.0) -> bool:
    """Whether the cluster has `topic` (asked without creating it); KafkaAccessError when unreachable."""
    reader = consumer(client_config, "peek")
    try:
        metadata = reader.list_topics(topic, timeout=timeout)
    except KafkaException as exc:
        raise KafkaAccessError(f"cannot read the topics of the cluster: {exc}") from None
    finally:
        reader.close()
    found = metadata.topics.get(topic)
    return found is not None and found.error is None


def consumer(client_config: Mapping[str, str], purpose: str, errors: list[str] | None = None) -> Consumer:
    """A consumer that reads what it is assigned; its group id is never used (no subscribe, no commit)."""
    settings: dict[str, object] = {
        **client_config,
        "group.id": f"txmon-{purpose}-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "client.id": f"txmon-{purpose}",
        "logger": _QUIET,
    }
    if errors is not None:
        settings["error_cb"] = lambda err: errors.append(err.str())
    return Consumer(settings)


def _record(message: object) -> Record:
    key = message.key()  # type: ignore[attr-defined]
    return Record(message.offset(), key.decode("utf-8", "replace") if key else "",  # type: ignore[attr-defined]
                  message.value())  # type: ignore[attr-defined]


def _watermarks(reader: Consumer, topic: str, timeout: float) -> tuple[int, int]:
    """(low, high) of partition 0, retrying while a new topic's leader is being elected."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            partition = TopicPartition(topic, PARTITION)
            low, high = reader.get_watermark_offsets(partition, timeout=min(timeout, 5))
            return int(low), int(high)
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise KafkaAccessError(f"cannot read the offsets of {topic}: {exc}") from None
            time.sleep(0.1)


def read_range(client_config: Mapping[str, str], topic: str, start_back: int | None = None,
               timeout: float = 15.0) -> list[Record]:
    """The records now on the topic, in offset order: all of them, or the last `start_back` offsets."""
    reader = consumer(client_config, "read")
    try:
        low, high = _watermarks(reader, topic, timeout)
        if high <= low:
            return []
        start = low if start_back is None else max(low, high - start_back)
        reader.assign([TopicPartition(topic, PARTITION, start)])
        found: list[Record] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # consume() waits its whole timeout unless 500 records come: short waits end the read sooner.
            for message in reader.consume(500, 0.05):
                error = message.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    raise KafkaAccessError(f"cannot read {topic}: {error.str()}")
                if error is None:
                    found.append(_record(message))
                # Compaction leaves gaps in the offsets: the end is the high watermark seen at the start.
                if (error is None and message.offset() >= high - 1) or (
                        error is not None and message.offset() >= high):
                    return found
        raise KafkaAccessError(f"reading {topic} did not reach offset {high} within {timeout:g} s")
    finally:
        reader.close()


class Writer:
    """A producer kept open for many writes (an operator's actions): the connection is made once."""

    def __init__(self, client_config: Mapping[str, str]) -> None:
        self._producer = Producer({**client_config, "enable.idempotence": True, "linger.ms": 0,
                                   "logger": _QUIET})
        self._lock = threading.Lock()  # one write at a time: its delivery reports are its own

    def write(self, topic: str, records: list[tuple[str, bytes | None]], timeout: float = 15.0) -> list[int]:
        """Write (key, value) records in order and wait until the broker has them; their offsets."""
        offsets: list[int] = []
        failures: list[str] = []

        def delivered(error: KafkaError | None, message: object) -> None:
            if error is not None:
                failures.append(error.str())
            else:
                offsets.append(message.offset())  # type: ignore[attr-defined]

        with self._lock:
            for key, value in records:
                self._producer.produce(topic, key=key.encode(), value=value, partition=PARTITION,
                                       on_delivery=delivered)
            remaining = self._producer.flush(timeout)
        if failures or remaining:
            raise KafkaAccessError(f"cannot write to {topic}: {failures[0] if failures else 'timed out'}")
        return offsets

    def close(self, timeout: float = 5.0) -> None:
        """Send what is left (nothing, after write() returned)."""
        self._producer.flush(timeout)


def write(client_config: Mapping[str, str], topic: str, records: list[tuple[str, bytes | None]],
          timeout: float = 15.0) -> list[int]:
    """Write records once with a producer of their own (a CLI call, a rules version)."""
    writer = Writer(client_config)
    try:
        return writer.write(topic, records, timeout)
    finally:
        writer.close()


class Follower:
    """A thread that reads a compacted topic from its beginning and hands each record to `apply`.

    `caught_up` is set once every record present at the start was applied; `error` holds the last client
    error (e.g. the broker is down), cleared when records flow again.
    """

    def __init__(self, client_config: Mapping[str, str], topic: str, apply: Callable[[Record], None],
                 name: str) -> None:
        self._config = dict(client_config)
        self._topic = topic
        self._apply = apply
        self._stop = threading.Event()
        self.caught_up = threading.Event()
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start reading (not after close(): an owner may close before a slow start finished)."""
        if not self._stop.is_set():
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop reading and close the consumer."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        errors: list[str] = []
        reader = consumer(self._config, "follow", errors)
        try:
            _low, high = _watermarks(reader, self._topic, 30.0)
            if high == 0:
                self.caught_up.set()
            reader.assign([TopicPartition(self._topic, PARTITION, OFFSET_BEGINNING)])
            while not self._stop.is_set():
                for message in reader.consume(500, FOLLOW_WAIT):
                    error = message.error()
                    if error is None:
                        self._apply(_record(message))
                        self.error = None
                        if message.offset() >= high - 1:
                            self.caught_up.set()
                    elif error.code() == KafkaError._PARTITION_EOF:
                        self.caught_up.set()
                    else:
                        self.error = error.str()
                if errors:
                    self.error = errors[-1]
                    errors.clear()
        except KafkaAccessError as exc:
            self.error = str(exc)
        finally:
            reader.close()
