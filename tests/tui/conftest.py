"""Helpers for the monitor's tests: known records written to the real broker, waiting inside Pilot."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import orjson
import pytest
from confluent_kafka import Producer
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from spark_app.formats import (
    DEFAULT_ALERT_THRESHOLD,
    DEFAULT_LARGE_THRESHOLD,
    LEVEL_ALERT,
    LEVEL_LARGE,
    QUERY_ALERTS,
    Alert,
    BatchMetrics,
    encode_metrics,
)
from txmon_core.broker import EmbeddedBroker
from txmon_core.topics import ALERTS, METRICS, ensure_topics
from txmon_tui.app import MonitorApp, create_app
from txmon_tui.supervise.config import PipelineConfig

T = TypeVar("T")


def iso(at: float) -> str:
    """A wire timestamp (ISO 8601 UTC with milliseconds)."""
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_alert(tx_id: str, amount: float, account: str = "RO49RZBR0000060012345678",
               merchant: str = "Mega Image", at: float | None = None) -> Alert:
    """A flagged transaction as the Spark job writes it, with the level its amount deserves."""
    at = time.time() if at is None else at
    level = LEVEL_ALERT if amount > DEFAULT_ALERT_THRESHOLD else LEVEL_LARGE
    threshold = DEFAULT_ALERT_THRESHOLD if level == LEVEL_ALERT else DEFAULT_LARGE_THRESHOLD
    return Alert(tx_id, account, merchant, amount, "RON", iso(at - 0.25), level, f"amount>{threshold:g}",
                 iso(at))


def make_metrics(batch_id: int, rows: int, large: int = 0, alerts: int = 0, dead_letters: int = 0,
                 query: str = QUERY_ALERTS, end_offset: int = 0) -> BatchMetrics:
    """One micro-batch's metrics as the Spark job publishes them."""
    return BatchMetrics(query, batch_id, iso(time.time()), rows, float(rows), float(rows), 150,
                        {"0": end_offset}, large, alerts, dead_letters)


class Records:
    """Writes known records to `alerts` and `metrics` on the test broker."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})

    def alerts(self, alerts: Sequence[Alert]) -> None:
        """Write alerts (keyed by tx_id, as the job does) and wait until the broker has them."""
        for alert in alerts:
            self._producer.produce(ALERTS, key=alert.tx_id.encode(), value=orjson.dumps(alert))
        assert self._producer.flush(10) == 0, "alerts not delivered"

    def metrics(self, metrics: Sequence[BatchMetrics]) -> None:
        """Write metrics records and wait until the broker has them."""
        for item in metrics:
            self._producer.produce(METRICS, key=item.query.encode(), value=encode_metrics(item))
        assert self._producer.flush(10) == 0, "metrics not delivered"


@pytest.fixture
def records(broker: EmbeddedBroker) -> Iterator[Records]:
    """A writer of known records; the topics exist before the test starts."""
    ensure_topics({"bootstrap.servers": broker.bootstrap})
    writer = Records(broker.bootstrap)
    yield writer
    writer._producer.flush(10)


@pytest.fixture
def config(broker: EmbeddedBroker, tmp_path: Path) -> PipelineConfig:
    """The monitor on the test broker, starting no children."""
    return PipelineConfig(bootstrap=broker.bootstrap, data_dir=tmp_path, run_producer=False, run_spark=False)


@pytest.fixture
def app(config: PipelineConfig) -> MonitorApp:
    """The monitor as the CLI builds it, on the test broker."""
    return create_app(config)


def plain(widget: Static) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=200, file=io.StringIO(), color_system=None)
    with console.capture() as capture:
        console.print(widget.content)
    return capture.get()


async def until(pilot: Pilot[object], check: Callable[[], T], what: str, timeout: float = 40.0) -> T:
    """Let the app run until `check()` is truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {result!r})")
        await pilot.pause(0.1)
    return result


async def tailing(pilot: Pilot[object], app: MonitorApp) -> None:
    """Wait until the monitor reads from the end of its topics (records written after this are seen)."""
    await until(pilot, lambda: app.tailing, "the monitor to tail alerts and metrics")
