"""The alerts query's plan compiles its code once, not once per micro-batch.

A constant that changes every batch (current_timestamp is the batch's start in a streaming query) is
written into the code Spark generates, and each new code is a Janino compilation: 50-100 ms of CPU per
batch, most of what a small batch cost. A rate source stands in for Kafka: the plan is the job's.
"""

from __future__ import annotations

import threading
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from spark_app import flagged
from spark_app.config import JobConfig
from tests.support.waiting import wait_until

BATCHES = 5


def kafka_like(spark: SparkSession) -> DataFrame:
    """A stream of Kafka source rows holding valid transactions, a third of them above 900 RON."""
    ts = F.date_format("timestamp", "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
    value = F.format_string(
        '{"tx_id":"t-%d","account_id":"A%d","merchant":"M","amount":%d.5,"currency":"RON","ts":"%s"}',
        "value", F.col("value") % 7, (F.col("value") % 3) * 450, ts)
    return spark.readStream.format("rate").option("rowsPerSecond", 50).load().select(
        F.lit(None).cast("binary").alias("key"), value.cast("binary").alias("value"),
        F.lit("transactions").alias("topic"), F.lit(0).alias("partition"), F.col("value").alias("offset"))


def test_later_batches_compile_no_code(spark: SparkSession, tmp_path: Path) -> None:
    config = JobConfig(client_config={}, data_dir=tmp_path)
    rows = flagged.sink_rows(flagged.classified(kafka_like(spark), config), config.topic_names)
    compilations = spark._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()
    seen: list[tuple[int, int]] = []  # (flagged rows, classes compiled) per batch with rows
    lock = threading.Lock()

    def deliver(batch: DataFrame, _batch_id: int) -> None:
        before = compilations.getCount()
        count = batch.toArrow().num_rows
        if count:
            with lock:
                seen.append((count, compilations.getCount() - before))

    query = (rows.writeStream.foreachBatch(deliver).trigger(processingTime="200 milliseconds")
             .option("checkpointLocation", str(tmp_path / "checkpoint")).start())
    try:
        wait_until(lambda: len(seen) >= BATCHES, timeout=120, what=f"{BATCHES} batches with rows")
    finally:
        query.stop()
    with lock:
        later = seen[2:]  # the first batches compile the plan (and may meet a new row shape)
    assert all(count > 0 for count, _ in later)
    assert [compiled for _, compiled in later] == [0] * len(later), seen
