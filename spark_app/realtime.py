"""The Real-time Mode alerts query: Kafka `transactions` → alerts and dead letters, record by record."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql.streaming import StreamingQuery

from spark_app import flagged, transforms
from spark_app.config import REALTIME_BATCH, JobConfig, java_client_options
from txmon_core.records.metrics import QUERY_REALTIME


def start_realtime_alerts_query(source: DataFrame, config: JobConfig,
                                rules_version: int | None = None) -> StreamingQuery:
    """Kafka → Kafka in Spark's Real-time Mode: each record is written as it arrives, not per batch.

    Real-time Mode takes only stateless plans with a Kafka sink and update output, so this query
    writes alerts and dead letters only, the fast copy; the micro-batch alerts query beside it fills
    the Parquet table and writes them again, the copy that is never lost (see job.start_queries).
    """
    # No observe(): the alerts query beside it counts every batch for the metrics.
    return (
        transforms.kafka_records(flagged.classified(source, config), config.topic_names.alerts,
                                 config.topic_names.dead_letters, rules_version)
        .writeStream.queryName(QUERY_REALTIME)
        .format("kafka")
        .options(**java_client_options(config.client_config))
        .option("checkpointLocation", str(config.checkpoint(QUERY_REALTIME)))
        .outputMode("update")
        # The batch length bounds checkpointing and progress reports, not latency: records flow
        # through a long-running task that holds one core per Kafka partition.
        .trigger(realTime=REALTIME_BATCH)
        .start()
    )
