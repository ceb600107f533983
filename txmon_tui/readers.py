"""Kafka clients of the monitor that only read: a consumer that never joins a group nor commits, and the
end-offset watcher (how many records a topic ever had, how many brokers answer).

Shared by the monitor's tail and session and by the pipeline's first-batch step; blocking, so called from
worker threads or plain loops. No Textual.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from confluent_kafka import Consumer, KafkaException, TopicPartition

_QUIET = logging.getLogger("txmon.tui.kafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


# librdkafka's defaults prefetch up to 64 MiB per consumer and fetch up to 50 MiB at once; the monitor
# drains its queue continuously, so a few MiB of prefetch keep up with 5,000 alerts/s (~1.3 MB/s).
# Before the user's settings, which may raise them (e.g. for larger records).
MEMORY_BOUNDS: dict[str, object] = {
    "queued.max.messages.kbytes": 4096,  # ~3 s at 5,000 alerts/s: rides out a slow repaint
    "queued.min.messages": 10_000,
    "fetch.max.bytes": 1_048_576,  # librdkafka requires >= message.max.bytes (1,000,000 by default)
    "max.partition.fetch.bytes": 1_048_576,
}


def reading_consumer(client_config: Mapping[str, str], purpose: str,
                     errors: list[str] | None = None) -> Consumer:
    """A consumer that never joins a group nor commits: it only reads what it is assigned."""
    settings: dict[str, object] = {
        **MEMORY_BOUNDS,
        **client_config,
        "group.id": f"txmon-tui-{purpose}-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "client.id": f"txmon-tui-{purpose}",
        "logger": _QUIET,  # connection retries are reported through `error`, not printed on the screen
    }
    if errors is not None:
        settings["error_cb"] = lambda err: errors.append(err.str())
    return Consumer(settings)


class OffsetWatcher:
    """End offsets of topics, summed over partitions (e.g. how many transactions were ever produced)."""

    def __init__(self, client_config: Mapping[str, str]) -> None:
        self._consumer = reading_consumer(client_config, "offsets")
        self._partitions: dict[str, list[int]] = {}

    def end_offset_total(self, topic: str, timeout: float = 2.0) -> int | None:
        """The sum of the topic's end offsets, or None when the broker does not answer in time."""
        try:
            partitions = self._partitions.get(topic)
            if partitions is None:
                metadata = self._consumer.list_topics(topic, timeout=timeout)
                described = metadata.topics.get(topic)
                if described is None or described.error is not None or not described.partitions:
                    return None
                partitions = self._partitions[topic] = sorted(described.partitions)
            total = 0
            for partition in partitions:
                _low, high = self._consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=timeout, cached=False
                )
                total += high
            return total
        except KafkaException:
            self._partitions.pop(topic, None)  # re-read the partitions once the broker answers again
            return None

    def broker_count(self, timeout: float = 2.0) -> int | None:
        """How many brokers the cluster's metadata lists now, or None when none answers in time.

        A broker that dies drops out once the controller fences it (Kafka's broker session timeout).
        """
        try:
            return len(self._consumer.list_topics(timeout=timeout).brokers)
        except KafkaException:
            return None

    def close(self) -> None:
        """Close the client."""
        self._consumer.close()
