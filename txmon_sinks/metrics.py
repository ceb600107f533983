"""The Prometheus endpoint: the monitor's counters, the detection-latency histogram and sink health.

The monitor's loop publishes its latest totals to a MetricsBoard (its own thread, its own model); a
scrape reads the board from the HTTP server's thread, so the model is never touched from two threads.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from txmon_sinks.delivery import Delivery
from txmon_sinks.health import OK, STATES, SinkHealth
from txmon_sinks.latency import HistogramCounts

PREFIX = "txmon"
# Exported counter (without _total) → (the monitor's figure, help text).
COUNTERS = {
    "produced": ("produced", "Transactions produced (growth of the transactions topic's end offsets)"),
    "processed": ("processed", "Transactions the Spark job processed"),
    "flagged": ("flagged", "Transactions the Spark job flagged (large or alert)"),
    "alerts": ("alerts", "Distinct flagged transactions the monitor received from the alerts topic"),
    "dead_letters": ("dead_letters", "Records the Spark job sent to the dead-letter topic"),
    "duplicates_dropped": ("duplicates", "Repeated alerts the monitor dropped"),
    "undecodable": ("undecodable", "Records of the alerts or metrics topics that could not be decoded"),
}


class PipelineTotals(Protocol):
    """What the monitor's Snapshot offers; any object with these attributes will do."""

    produced: int
    processed: int
    flagged: int
    alerts: int
    dead_letters: int
    duplicates: int
    undecodable: int
    backlog: int | None


@dataclass(frozen=True)
class MetricsSample:
    """The numbers of one scrape."""

    totals: dict[str, float] = field(default_factory=dict)
    backlog: float | None = None
    latency: HistogramCounts | None = None
    alerts_by_level: dict[str, int] = field(default_factory=dict)
    sinks: list[SinkHealth] = field(default_factory=list)
    at: float | None = None


class MetricsBoard:
    """The latest totals (set by the monitor's loop) plus delivery's latency and health, for scrapes."""

    def __init__(self, delivery: Delivery | None = None) -> None:
        self._delivery = delivery
        self._lock = threading.Lock()
        self._totals: dict[str, float] = {name: 0.0 for name in COUNTERS}
        self._backlog: float | None = None

    def update(self, totals: PipelineTotals) -> None:
        """Take the monitor's current totals (call it at each repaint or snapshot)."""
        values = {name: float(getattr(totals, attribute)) for name, (attribute, _help) in COUNTERS.items()}
        backlog = totals.backlog
        with self._lock:
            self._totals = values
            self._backlog = None if backlog is None else float(backlog)

    def sample(self) -> MetricsSample:
        """Everything a scrape exports, now."""
        with self._lock:
            totals, backlog = dict(self._totals), self._backlog
        delivery = self._delivery
        return MetricsSample(
            totals=totals,
            backlog=backlog,
            latency=delivery.latency() if delivery is not None else None,
            alerts_by_level=delivery.distinct_by_level() if delivery is not None else {},
            sinks=delivery.health() if delivery is not None else [],
        )


def families(sample: MetricsSample) -> Iterator[Metric]:
    """The Prometheus metric families of one sample."""
    for name, (_attribute, text) in COUNTERS.items():
        yield CounterMetricFamily(f"{PREFIX}_{name}", text, value=sample.totals.get(name, 0.0))
    yield GaugeMetricFamily(f"{PREFIX}_backlog", "Transactions in the topic the Spark job has not read yet",
                            value=math.nan if sample.backlog is None else sample.backlog)
    latency = sample.latency or HistogramCounts([(math.inf, 0)], 0, 0.0)
    yield HistogramMetricFamily(
        f"{PREFIX}_detection_latency_seconds",
        "Seconds from a transaction's event time to its alert reaching the monitor (distinct alerts)",
        buckets=[(floatToGoString(bound), count) for bound, count in latency.buckets],
        sum_value=latency.sum,
    )
    by_level = CounterMetricFamily(f"{PREFIX}_distinct_alerts",
                                   "Distinct alerts (tx_id + level) taken by alert delivery, by level",
                                   labels=["level"])
    for level, count in sorted(sample.alerts_by_level.items()):
        by_level.add_metric([level], count)
    yield by_level
    yield from _sink_families(sample.sinks, sample.at)


def _sink_families(sinks: list[SinkHealth], at: float | None) -> Iterator[Metric]:
    up = GaugeMetricFamily(f"{PREFIX}_sink_up", "1 when the sink's last attempt succeeded", labels=["sink"])
    state = GaugeMetricFamily(f"{PREFIX}_sink_state", "1 for the sink's current state (ok, retrying, down)",
                              labels=["sink", "state"])
    sent = CounterMetricFamily(f"{PREFIX}_sink_sent", "Alerts the sink delivered", labels=["sink"])
    pending = GaugeMetricFamily(f"{PREFIX}_sink_pending", "Alerts waiting in the outbox for the sink",
                                labels=["sink"])
    duplicates = CounterMetricFamily(f"{PREFIX}_sink_duplicates", "Alerts dropped as already taken",
                                     labels=["sink"])
    failures = CounterMetricFamily(f"{PREFIX}_sink_failures", "Failed delivery attempts", labels=["sink"])
    digests = CounterMetricFamily(f"{PREFIX}_sink_digests", "Digest messages sent (rate limit reached)",
                                  labels=["sink"])
    quarantined = GaugeMetricFamily(f"{PREFIX}_sink_quarantined", "Alerts set aside after repeated refusals",
                                    labels=["sink"])
    failing = GaugeMetricFamily(f"{PREFIX}_sink_failing_seconds", "Seconds the sink has been failing (0: ok)",
                                labels=["sink"])
    now = time.time() if at is None else at
    for health in sinks:
        up.add_metric([health.name], 1.0 if health.state == OK else 0.0)
        for name in STATES:
            state.add_metric([health.name, name], 1.0 if health.state == name else 0.0)
        sent.add_metric([health.name], health.sent)
        pending.add_metric([health.name], health.pending)
        duplicates.add_metric([health.name], health.duplicates)
        failures.add_metric([health.name], health.failures)
        digests.add_metric([health.name], health.digests)
        quarantined.add_metric([health.name], health.quarantined)
        failing.add_metric([health.name], 0.0 if health.since is None else max(now - health.since, 0.0))
    yield from (up, state, sent, pending, duplicates, failures, digests, quarantined, failing)


class _Collector:
    """A prometheus_client collector reading a fresh sample at each scrape."""

    def __init__(self, source: Callable[[], MetricsSample]) -> None:
        self._source = source

    def collect(self) -> Iterator[Metric]:
        yield from families(self._source())


class MetricsServer:
    """Serves /metrics on host:port (127.0.0.1 by default) from its own thread; port 0 picks a free one."""

    def __init__(self, source: Callable[[], MetricsSample], port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(_Collector(source))  # type: ignore[arg-type]
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Listen; return the port (the bound one when asked for 0). Raises OSError when it is taken."""
        server, thread = start_http_server(self.port, addr=self.host, registry=self._registry)
        self._server, self._thread = server, thread
        self.port = int(server.server_address[1])
        return self.port

    @property
    def url(self) -> str:
        """Where to scrape."""
        return f"http://{self.host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop listening and wait for the server thread."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None
