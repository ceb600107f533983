"""Reading what the real broker holds: end offsets, whole topics, and what arrives from now on."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from tests.support.waiting import wait_until
from txmon_core import topics

Client = str | Mapping[str, str]  # a bootstrap address, or a whole client configuration (TLS, SASL)
LEADER_TIMEOUT = 30.0  # a topic just created gets its partition leaders within seconds


def client_config(client: Client) -> dict[str, str]:
    """The client configuration `client` stands for."""
    return {"bootstrap.servers": client} if isinstance(client, str) else dict(client)


def consumer(client: Client) -> Consumer:
    """A consumer of its own group that commits nothing (the caller assigns and closes it)."""
    return Consumer({**client_config(client), "group.id": f"test-{uuid.uuid4().hex}",
                     "enable.auto.commit": False, "enable.partition.eof": False, "log_level": 3})


def watermarks(reader: Consumer, topic: str) -> dict[int, tuple[int, int]]:
    """(low, high) of each partition of `topic`, {} while it does not exist; waits for new leaders."""
    metadata = reader.list_topics(topic, timeout=10).topics[topic]
    if metadata.error is not None and metadata.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
        return {}

    def offsets() -> dict[int, tuple[int, int]] | None:
        try:
            return {p: tuple(reader.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False))
                    for p in metadata.partitions}
        except KafkaException as exc:
            if exc.args[0].code() in (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
                                      KafkaError._UNKNOWN_PARTITION):
                return None
            raise

    return wait_until(offsets, LEADER_TIMEOUT, f"leaders for {topic}", interval=0.2)


def end_offsets(client: Client, topic: str) -> dict[int, int]:
    """The end offset of each partition of `topic` as of now ({} while it does not exist)."""
    reader = consumer(client)
    try:
        return {p: high for p, (_low, high) in watermarks(reader, topic).items()}
    finally:
        reader.close()


def end_offset(client: Client, topic: str) -> int:
    """The end offsets of `topic`'s partitions summed (0 while it does not exist)."""
    return sum(end_offsets(client, topic).values())


def source_end_offsets(client: Client) -> dict[str, int]:
    """The end offset of each partition of `transactions`, keyed as the job's metrics spell them."""
    return {str(p): end for p, end in end_offsets(client, topics.TRANSACTIONS).items()}


def read_topic(client: Client, topic: str, timeout: float = 60.0) -> list[Message]:
    """Every record of `topic`, each partition from its start up to its end as of now."""
    reader = consumer(client)
    try:
        ends = watermarks(reader, topic)
        reader.assign([TopicPartition(topic, p, low) for p, (low, _high) in ends.items()])
        remaining = {p for p, (low, high) in ends.items() if high > low}
        records: list[Message] = []
        deadline = time.monotonic() + timeout
        while remaining:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end within {timeout:.0f} s "
                                     f"(partitions {sorted(remaining)} left, {len(records)} records read)")
            for message in reader.consume(10_000, timeout=0.5):
                if message.error() is not None:
                    raise KafkaException(message.error())
                records.append(message)
                if message.offset() + 1 >= ends[message.partition()][1]:
                    remaining.discard(message.partition())
        return records
    finally:
        reader.close()


class TopicReader:
    """Accumulates a topic's records from the offsets it had when created."""

    def __init__(self, client: Client, topic: str) -> None:
        self.consumer = consumer(client)
        ends = watermarks(self.consumer, topic)
        self.consumer.assign([TopicPartition(topic, p, high) for p, (_low, high) in ends.items()])
        self.messages: list[Message] = []

    def drain(self) -> list[Message]:
        """Everything read so far, after taking what has arrived."""
        while batch := self.consumer.consume(10_000, timeout=0.2):
            for message in batch:
                assert message.error() is None, message.error()
                self.messages.append(message)
        return self.messages

    def close(self) -> None:
        self.consumer.close()
