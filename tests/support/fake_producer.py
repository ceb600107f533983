"""A fake Kafka producer on a fake clock: the publish loop's pacing and back-pressure without a broker.

A fake, not the real client: a broker refusing (BufferError) or failing every n-th record on cue cannot
be produced for real in a unit test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

Callback = Callable[[object, object], None]


class FakeClock:
    """A monotonic clock that moves only when the fake producer waits or works."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeMessage:
    """Just enough of confluent_kafka.Message for the delivery callback."""

    _value: bytes

    def value(self) -> bytes:
        return self._value


@dataclass
class FakeProducer:
    """Records what is produced; delivers on poll/flush; can refuse (BufferError) and fail records.

    `cost` is the fake time one produce() takes, so a run at `max` rate still moves the clock.
    """

    clock: FakeClock
    capacity: int = 1_000_000
    fail_every: int = 0  # every n-th record gets an error report
    deliver: bool = True  # False: a broker that never answers
    cost: float = 2e-6
    on_produce: Callable[[int], None] | None = None
    produced: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    queue: list[tuple[bytes, Callback]] = field(default_factory=list)
    refused: int = 0
    waits: list[float] = field(default_factory=list)

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Callback) -> None:
        if len(self.queue) >= self.capacity:
            self.refused += 1
            raise BufferError("Local: Queue full")
        self.clock.now += self.cost
        self.produced.append((topic, key, value))
        self.queue.append((value, on_delivery))
        if self.on_produce:
            self.on_produce(len(self.produced))

    def poll(self, timeout: float) -> int:
        self.waits.append(timeout)
        self.clock.now += timeout
        return self._serve()

    def flush(self, timeout: float) -> int:
        self.clock.now += timeout if not self.deliver else 0.0
        self._serve()
        return len(self.queue)

    def __len__(self) -> int:
        return len(self.queue)

    def _serve(self) -> int:
        if not self.deliver:
            return 0
        served = 0
        for value, callback in self.queue:
            n = int(orjson.loads(value)["tx_id"].rsplit("-", 1)[1])
            error = (
                "Broker: Not enough in-sync replicas"
                if self.fail_every and n % self.fail_every == 0
                else None
            )
            callback(error, FakeMessage(value))
            served += 1
        self.queue.clear()
        return served
