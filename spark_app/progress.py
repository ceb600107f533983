"""Per-batch progress of the job's queries, published to the `metrics` topic as BatchMetrics.

The progress is read from the queries (ProgressPoller), not received by a StreamingQueryListener:
pyspark hands a Python listener each event converted field by field over py4j, resolving classes by
name on the way, which took a quarter of the JVM's CPU at 1,000 tx/s (a JFR profile, bench/README.md).
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import KafkaException, Producer
from pyspark.sql.streaming import StreamingQuery

from txmon_core import topics
from txmon_core.records.alert import LEVEL_ALERT, LEVEL_LARGE
from txmon_core.records.metrics import QUERY_PARQUET, BatchMetrics, encode_metrics

if TYPE_CHECKING:
    from pathlib import Path

    from spark_app.parquet_buffer import Flush

# How often the poller asks the queries for new progress: the delay of a batch's metrics at most.
POLL_SECONDS = 0.25


def _finite(value: Any) -> float:
    # Spark reports NaN rates for a batch that took no time; JSON readers want a number.
    number = float(value or 0.0)
    return number if math.isfinite(number) else 0.0


def batch_metrics(
    progress: Mapping[str, Any], source_topic: str = topics.TRANSACTIONS
) -> BatchMetrics:
    """Spark's StreamingQueryProgress (as its JSON dict) → the BatchMetrics record of that batch."""
    end_offsets: dict[str, int] = {}
    for source in progress.get("sources", []):
        end = source.get("endOffset")
        if isinstance(end, str):  # older Spark versions nest the offsets as JSON text
            end = orjson.loads(end)
        if isinstance(end, dict) and source_topic in end:
            end_offsets = {str(p): int(o) for p, o in end[source_topic].items()}
    observed = progress.get("observedMetrics") or {}
    counts: Mapping[str, Any] = next(iter(observed.values()), {}) if observed else {}
    return BatchMetrics(
        query=str(progress.get("name") or ""),
        batch_id=int(progress["batchId"]),
        timestamp=str(progress["timestamp"]),
        num_input_rows=int(progress.get("numInputRows") or 0),
        input_rows_per_second=_finite(progress.get("inputRowsPerSecond")),
        processed_rows_per_second=_finite(progress.get("processedRowsPerSecond")),
        batch_duration_ms=int(progress.get("batchDuration") or 0),
        end_offsets=end_offsets,
        large=int(counts.get("large") or 0),
        alerts=int(counts.get("alerts") or 0),
        dead_letters=int(counts.get("dead_letters") or 0),
        query_id=str(progress.get("id") or ""),
    )


class MetricsPublisher:
    """Publishes BatchMetrics records to `metrics` (key = query name), without waiting on the broker."""

    def __init__(self, client_config: Mapping[str, str], topic: str = topics.METRICS,
                 source_topic: str = topics.TRANSACTIONS) -> None:
        self.topic = topic
        self.source_topic = source_topic  # whose offsets the metrics report
        # Metrics are small and a few per second: a short linger batches the two queries' records.
        self.producer = Producer({**client_config, "linger.ms": "20", "client.id": "txmon-spark-metrics"})
        self.published = 0

    def publish_flush(self, flush: Flush) -> None:
        """Publish a flush into the Parquet table as a QUERY_PARQUET batch (id = the last it covers)."""
        import pyarrow.compute as pc

        large = alerts = 0
        if flush.rows is not None:
            levels = flush.rows.column("level")
            large = int(pc.sum(pc.equal(levels, LEVEL_LARGE)).as_py() or 0)
            alerts = int(pc.sum(pc.equal(levels, LEVEL_ALERT)).as_py() or 0)
        self.publish(BatchMetrics(
            query=QUERY_PARQUET, batch_id=flush.last,
            timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            num_input_rows=large + alerts, input_rows_per_second=0.0, processed_rows_per_second=0.0,
            batch_duration_ms=0, end_offsets=dict(flush.end_offsets), large=large, alerts=alerts,
            dead_letters=0,
        ))

    def publish(self, metrics: BatchMetrics) -> None:
        """Queue one metrics record (callbacks served without waiting)."""
        value = encode_metrics(metrics)
        try:
            self.producer.produce(self.topic, key=metrics.query.encode(), value=value)
        except BufferError:
            # librdkafka's queue is full (broker gone for long): serve callbacks once, then retry.
            self.producer.poll(0.1)
            try:
                self.producer.produce(self.topic, key=metrics.query.encode(), value=value)
            except (BufferError, KafkaException) as exc:
                print(f"txmon-spark: metrics record dropped: {exc}", file=sys.stderr, flush=True)
                return
        self.producer.poll(0)
        self.published += 1

    def close(self, timeout: float = 5.0) -> int:
        """Flush queued records; return how many could not be delivered in time."""
        return self.producer.flush(timeout)


class ProgressPoller:
    """Publishes each batch's progress of the running queries as one BatchMetrics, from a thread.

    Every POLL_SECONDS it asks each query for the progress of its batches since the last look (Spark
    keeps a query's last 100) and reads each one as a single JSON text over py4j; with `log`, it also
    appends that JSON, one line per batch, to a file (bench reads the phases of every batch from it).
    """

    def __init__(self, publisher: MetricsPublisher, queries: Callable[[], Iterable[StreamingQuery]],
                 log: Path | None = None, interval: float = POLL_SECONDS) -> None:
        self.publisher = publisher
        self.queries = queries
        self.interval = interval
        self.log = open(log, "a", buffering=1) if log is not None else None  # line-buffered: seen at once
        self._last: dict[str, int] = {}  # run id → the last batch id published
        self._stop = threading.Event()
        self._lock = threading.Lock()  # poll() runs on the thread and once more from close()
        self._thread = threading.Thread(target=self._run, name="txmon-progress", daemon=True)

    def start(self) -> ProgressPoller:
        """Start polling."""
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:  # py4j gone while stopping, or a query replaced mid-poll
                if not self._stop.is_set():
                    print(f"txmon-spark: reading query progress: {exc}", file=sys.stderr, flush=True)

    def poll(self) -> int:
        """Publish the batches finished since the last poll; return how many."""
        published = 0
        with self._lock:
            for query in list(self.queries()):
                for text in self._new_progress(query):
                    if self.log is not None:
                        self.log.write(text.replace("\n", "") + "\n")
                    self.publisher.publish(batch_metrics(orjson.loads(text), self.publisher.source_topic))
                    published += 1
        return published

    def _new_progress(self, query: StreamingQuery) -> list[str]:
        # The Java query itself: pyspark's `recentProgress` would turn all 100 progresses into dicts.
        recent = query._jsq.recentProgress()
        run_id = str(query.runId)
        last = self._last.get(run_id, -1)
        fresh = []
        for index in range(len(recent) - 1, -1, -1):  # newest first, back to the last one published
            progress = recent[index]
            batch_id = progress.batchId()
            if batch_id <= last:
                break
            fresh.append(progress)
        if not fresh:
            return []
        self._last[run_id] = fresh[0].batchId()
        return [progress.json() for progress in reversed(fresh)]

    def close(self) -> None:
        """Stop polling after one last look (the final batches of stopped queries count too)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            self.poll()
        except Exception as exc:
            print(f"txmon-spark: reading query progress: {exc}", file=sys.stderr, flush=True)
        if self.log is not None:
            self.log.close()
