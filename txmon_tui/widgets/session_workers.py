"""The monitor's session read in thread workers: alerts and metrics in batches, the produced count and
the broker count, each posted to the app, which applies them to the model on its event loop.

A base class of MonitorApp, as OperatorApp is: the workers start once the pipeline's topics exist.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from textual import work
from textual.app import App

from txmon_tui.messages import ProcessesPolled, ProducedCounted, RecordsReceived, TailStarted
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.session import MonitorSession
from txmon_tui.monitor.tail import Deliveries
from txmon_tui.supervise.children import ProcessView
from txmon_tui.supervise.pipeline import Pipeline

# Produced tx/s from the end offsets of `transactions`: sampled twice a second, so a stopped producer
# shows 0 tx/s within 2 s (the rate spans the last samples).
OFFSETS_SECONDS = 0.5
BROKERS_EVERY = 4  # offsets samples between two reads of the broker count (a metadata request)
TAIL_POLL_SECONDS = 0.5  # poll() returns at the first record: this only bounds how soon a halt is seen
DELIVER_SECONDS = 0.1  # batches reach the model at most 10 times a second (the screen repaints at 2)


class SessionWorkers(App[int]):
    """The base of MonitorApp that reads Kafka through its session (see the module docstring)."""

    # Provided by MonitorApp and its other bases.
    session: MonitorSession
    model: MonitorModel
    pipeline: Pipeline | None
    clock: Callable[[], float]
    tailing: bool
    _backfill: tuple[int, int] | None
    _records_since_repaint: bool
    _stopping: bool
    _views: list[ProcessView]
    _halt: threading.Event
    start_operators: Callable[[Mapping[str, str]], None]
    _workers_started = False  # the tail and offsets workers run (once the topics exist)

    def on_processes_polled(self, message: ProcessesPolled) -> None:
        """Take the children's states; start the Kafka workers once the topics exist."""
        if self.pipeline is None or self._stopping:
            return
        self._views = message.views
        self.model.apply_processes(message.views, message.at)
        if not self._workers_started and self.pipeline.topics_ready:
            self._workers_started = True
            config = self.pipeline.client_config
            self._tail(config)
            self._count_produced(config)
            self.start_operators(config)

    @work(thread=True, exclusive=True, group="tail", exit_on_error=False)
    def _tail(self, client_config: dict[str, str]) -> None:
        """Read `alerts` and `metrics` in batches (delivered and recorded as they come) and post them."""
        session = self.session
        session.open_tail(client_config)  # delivery resumes where the last run's delivered alerts were read
        deliveries = Deliveries(DELIVER_SECONDS)
        self.post_message(TailStarted())
        try:
            while not self._halt.is_set():
                if batch := session.poll(deliveries.wait(TAIL_POLL_SECONDS)):
                    deliveries.add(batch)
                if batches := deliveries.take():
                    self.post_message(RecordsReceived(batches))
        finally:
            session.close_tail()

    @work(thread=True, exclusive=True, group="offsets", exit_on_error=False)
    def _count_produced(self, client_config: dict[str, str]) -> None:
        """Read the end offsets of `transactions` (produced tx/s, whoever produces) and the broker count."""
        session = self.session
        session.open_offsets(client_config)
        try:
            sample = 0
            while not self._halt.wait(OFFSETS_SECONDS):
                brokers = session.broker_count() if sample % BROKERS_EVERY == 0 else None
                sample += 1
                total, at = session.count_produced(self.clock)  # recorded too, while a recording runs
                self.post_message(ProducedCounted(total, at, brokers))
        finally:
            session.close_offsets()

    def on_records_received(self, message: RecordsReceived) -> None:
        """Aggregate on arrival; the screen catches up on the next repaint."""
        self._records_since_repaint = True
        for batch in message.batches:
            self.model.apply(batch)
            if batch.backfill is not None:
                self._backfill = batch.backfill if batch.backfill[0] < batch.backfill[1] else None

    def on_tail_started(self) -> None:
        """From now on every alert and metrics record reaches the model."""
        self.tailing = True

    def on_produced_counted(self, message: ProducedCounted) -> None:
        """Feed the produced total to the model's rate."""
        self.model.apply_produced(message.total, message.at)
        if message.brokers is not None:
            self.model.apply_brokers(message.brokers)
