"""What every sink is: something that sends a run of outbox alerts, or fails saying why."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from txmon_sinks.outbox import OutboxItem


class DeliveryFailed(Exception):
    """An attempt to deliver failed; the message is one line fit for the screen (no secrets)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after  # seconds the receiver asked us to wait (HTTP Retry-After)


class Rejected(DeliveryFailed):
    """These alerts cannot be delivered as they are (a field too long for the database, a mail the server
    refuses): retried a few times, then the one at fault is quarantined so that the others flow."""


class Sink(Protocol):
    """A destination for alerts.

    `digests` sinks (webhook, email) send each call as one message: one alert alone, or several as a
    digest, and their rate limit counts messages. The others (file, database) write each call as one
    batch, and their rate limit counts alerts.
    """

    name: str
    digests: bool

    def send(self, items: Sequence[OutboxItem]) -> None:
        """Deliver these alerts (in order) or raise DeliveryFailed (Rejected when the alerts are at fault);
        on return they count as delivered."""
        ...

    def recover(self, items: Sequence[OutboxItem]) -> int:
        """How many of the first pending `items` had been delivered before a crash (0 if unknowable)."""
        ...

    def close(self) -> None:
        """Release connections and files."""
        ...
