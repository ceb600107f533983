"""Per-batch progress of the job's queries, published to the `metrics` topic as BatchMetrics."""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson
from confluent_kafka import KafkaException, Producer
from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.streaming.listener import (
    QueryIdleEvent,
    QueryProgressEvent,
    QueryStartedEvent,
    QueryTerminatedEvent,
)

from txmon_core import topics
from txmon_core.records.alert import LEVEL_ALERT, LEVEL_LARGE
from txmon_core.records.metrics import QUERY_PARQUET, BatchMetrics, encode_metrics

if TYPE_CHECKING:
    from spark_app.parquet_buffer import Flush


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


class MetricsPublisher(StreamingQueryListener):
    """Publishes one BatchMetrics per batch per query to `metrics` (key = query name).

    Runs on Spark's listener bus, so each callback only hands a record to librdkafka's queue.
    """

    def __init__(self, client_config: Mapping[str, str], topic: str = topics.METRICS,
                 source_topic: str = topics.TRANSACTIONS) -> None:
        self.topic = topic
        self.source_topic = source_topic  # whose offsets the metrics report
        # Metrics are small and a few per second: a short linger batches the two queries' records.
        self.producer = Producer({**client_config, "linger.ms": "20", "client.id": "txmon-spark-metrics"})
        self.published = 0

    def onQueryStarted(self, event: QueryStartedEvent) -> None:
        """Nothing to publish until a batch ends."""

    def onQueryProgress(self, event: QueryProgressEvent) -> None:
        """Publish the batch's metrics."""
        self.publish(batch_metrics(orjson.loads(event.progress.json), self.source_topic))

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

    def onQueryIdle(self, event: QueryIdleEvent) -> None:
        """Idle queries still report progress every few seconds; nothing extra to do."""

    def onQueryTerminated(self, event: QueryTerminatedEvent) -> None:
        """Deliver what is queued, so the last batch's metrics are not lost on a clean stop."""
        self.producer.flush(5.0)

    def close(self, timeout: float = 5.0) -> int:
        """Flush queued records; return how many could not be delivered in time."""
        return self.producer.flush(timeout)
