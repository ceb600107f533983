"""Messages the monitor's workers post to the app, each named for what happened."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from txmon_tui.monitor.tail import TailBatch
from txmon_tui.supervise.children import ProcessView


@dataclass
class RecordsReceived(Message):
    """The tail worker read a batch of `alerts` and `metrics` records.

    High-rate: when the app falls behind, queued messages merge into the newest one instead of piling up,
    so no record is lost and the model is updated once per turn of the event loop.
    """

    batches: list[TailBatch] = field(default_factory=list)

    def can_replace(self, message: Message) -> bool:
        """Fold this (older) message into a newer one of the same kind."""
        if isinstance(message, RecordsReceived):
            message.batches[:0] = self.batches
            return True
        return False


@dataclass
class TailStarted(Message):
    """The tail is positioned at the end of `alerts` and `metrics`: from now on nothing is missed."""


@dataclass
class ProducedCounted(Message):
    """The end offsets of `transactions` were read: `total` so far (None: the broker did not answer)."""

    total: int | None
    at: float
    brokers: int | None = None  # brokers in the cluster's metadata (None: not read this time)

    def can_replace(self, message: Message) -> bool:
        """A newer total supersedes an older one."""
        return isinstance(message, ProducedCounted)


@dataclass
class ProcessesPolled(Message):
    """The supervised processes' states were refreshed (broker, Spark job, producer), at `at`."""

    views: list[ProcessView]
    at: float

    def can_replace(self, message: Message) -> bool:
        """Newer states supersede older ones."""
        return isinstance(message, ProcessesPolled)


@dataclass
class HistoryLoaded(Message):
    """The committed Parquet data was read: histogram bin counts over all history."""

    edges: list[float]
    counts: list[int]
    note: str

    def can_replace(self, message: Message) -> bool:
        """A newer read of the history supersedes an older one."""
        return isinstance(message, HistoryLoaded)


@dataclass
class LogLoaded(Message):
    """The full log of a child process was read for the log view."""

    name: str
    text: str


@dataclass
class PipelineStopped(Message):
    """The children were stopped (on quit); the app may exit now."""

    errors: list[str] = field(default_factory=list)


@dataclass
class ExportWritten(Message):
    """The feed (or its grouped view) was written to a file."""

    path: str
    rows: int


@dataclass
class ReplayFinished(Message):
    """A replay delivered every record of its recording (`skipped`: lines that did not decode)."""

    skipped: int = 0
