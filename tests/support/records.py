"""Known records written to the real broker as the Spark job writes them: alerts and metrics."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timezone

import orjson
from confluent_kafka import Producer

from txmon_core.records.alert import (
    DEFAULT_ALERT_THRESHOLD,
    DEFAULT_LARGE_THRESHOLD,
    LEVEL_ALERT,
    LEVEL_LARGE,
    Alert,
)
from txmon_core.records.metrics import QUERY_ALERTS, BatchMetrics, encode_metrics
from txmon_core.topics import ALERTS, METRICS


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

    def flush(self) -> None:
        """Deliver whatever is still queued."""
        self._producer.flush(10)
