"""Produces a micro-batch's Kafka records from the driver and waits until the broker has them all."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from confluent_kafka import KafkaError, Message, Producer

if TYPE_CHECKING:
    import pyarrow as pa

DELIVERY_TIMEOUT_S = 60.0


class BatchFailedError(RuntimeError):
    """A micro-batch failed; the full error went to stderr."""


class AlertProducer:
    """Produces a batch's Kafka records from the driver and waits until the broker has them all."""

    def __init__(self, client_config: Mapping[str, str]) -> None:
        self.producer = Producer({
            **client_config,
            "client.id": "txmon-spark-alerts",
            "enable.idempotence": True,  # acks=all and no reordering or repeats on retry
            "linger.ms": 5,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
        })
        self.failures: list[str] = []

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self.failures.append(str(error))

    def send(self, rows: pa.Table | None, extra: Iterable[tuple[str, bytes, bytes]] = ()) -> int:
        """Produce every row's record (a row without one is skipped) and the `extra` (topic, key,
        value) records; raise unless all are acknowledged. Returns how many were sent."""
        records: Iterable[tuple[str | None, bytes | None, bytes | None]] = ()
        if rows is not None:
            columns = (rows.column(name).to_pylist() for name in ("topic", "key", "value"))
            records = zip(*columns, strict=True)
        produce, poll = self.producer.produce, self.producer.poll
        sent = 0
        for topic, key, value in itertools.chain(records, extra):
            if value is None:
                continue  # a rule input only
            sent += 1
            while True:
                try:
                    produce(topic, value, key, on_delivery=self._on_delivery)
                    break
                except BufferError:  # librdkafka's queue is full: serve acknowledgements, then retry
                    poll(0.05)
        left = self.producer.flush(DELIVERY_TIMEOUT_S)
        failures, self.failures = self.failures, []
        if left or failures:
            raise BatchFailedError(
                f"{left} records not acknowledged in {DELIVERY_TIMEOUT_S:g} s"
                + (f"; {len(failures)} failed, first: {failures[0]}" if failures else "")
            )
        return sent

    def close(self) -> None:
        """Deliver anything still queued."""
        self.producer.flush(5.0)
