"""Sustained rows/s of the Spark job with both queries running, and Spark's micro-batch floor here.

    python -m bench.spark [--count 200000] [--max-offsets-per-trigger 20000] [-b HOST:PORT]

Pre-loads `--count` transactions (txmon-producer, seeded) into a fresh embedded broker (or the one named
with -b: its `transactions` topic then holds other data too), starts the job's two queries in this
process, and times them until both have read the whole backlog. Then, in the same Spark session, a
rate source → noop sink query gives the floor of a micro-batch with no work. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQueryListener
from pyspark.sql.streaming.listener import (
    QueryIdleEvent,
    QueryProgressEvent,
    QueryStartedEvent,
    QueryTerminatedEvent,
)

from spark_app import formats, job
from spark_app.progress import batch_metrics
from txmon_core import jars, topics
from txmon_core.broker import EmbeddedBroker
from txmon_core.options import BOOTSTRAP_ENV


class ProgressLog(StreamingQueryListener):
    """Keeps every batch's metrics (and the wall-clock time it arrived) per query."""

    def __init__(self) -> None:
        self.batches: dict[str, list[tuple[float, formats.BatchMetrics]]] = {}
        self.changed = threading.Condition()

    def onQueryStarted(self, event: QueryStartedEvent) -> None:
        """Nothing to keep."""

    def onQueryProgress(self, event: QueryProgressEvent) -> None:
        """Keep the batch."""
        metrics = batch_metrics(orjson.loads(event.progress.json))
        with self.changed:
            self.batches.setdefault(metrics.query, []).append((time.monotonic(), metrics))
            self.changed.notify_all()

    def onQueryIdle(self, event: QueryIdleEvent) -> None:
        """Nothing to keep."""

    def onQueryTerminated(self, event: QueryTerminatedEvent) -> None:
        """Nothing to keep."""

    def wait_for(self, query: str, end: dict[str, int], timeout: float) -> float:
        """Block until `query` has read up to `end`; return the wall-clock time it did."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for arrived, m in self.batches.get(query, []):
                    if all(m.end_offsets.get(p, -1) >= o for p, o in end.items()):
                        return arrived
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{query} did not read up to {end} within {timeout:.0f} s")
                self.changed.wait(remaining)


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else 0.0


def summary(batches: list[tuple[float, formats.BatchMetrics]]) -> dict[str, Any]:
    """Batch-duration figures of the batches that read rows."""
    busy = [m for _, m in batches if m.num_input_rows]
    durations = [float(m.batch_duration_ms) for m in busy]
    # Rows over time spent in batches after the first (which compiles code and warms the JVM).
    steady_rows = sum(m.num_input_rows for m in busy[1:])
    steady_s = sum(durations[1:]) / 1e3
    return {
        "batches": len(busy),
        "rows": sum(m.num_input_rows for m in busy),
        "first_batch_ms": durations[0] if durations else None,
        "batch_ms_p50": percentile(durations[1:], 0.5),
        "batch_ms_max": max(durations[1:], default=0.0),
        "rows_per_s_in_batches": round(steady_rows / steady_s, 1) if steady_s else None,
    }


def end_offsets(bootstrap: str) -> dict[str, int]:
    """The `transactions` end offsets, as BatchMetrics spells them."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "txmon-bench-spark"})
    try:
        topic = topics.TRANSACTIONS
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=9)[1] for p in partitions}
        return {str(p): end for p, end in ends.items()}
    finally:
        consumer.close()


@contextlib.contextmanager
def broker_for(bootstrap: str | None, folder: Path) -> Iterator[str]:
    """The named broker, or a fresh embedded one for the duration."""
    if bootstrap:
        yield bootstrap
        return
    with EmbeddedBroker(folder / "broker") as broker:
        yield broker.bootstrap


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Send anything the job prints to /dev/null, so stdout carries only the JSON result."""
    real = sys.stdout
    with open(os.devnull, "w") as devnull:
        sys.stdout = devnull
        try:
            yield
        finally:
            sys.stdout = real


def micro_batch_floor(spark: SparkSession, log: ProgressLog, seconds: float) -> dict[str, Any]:
    """Batch durations of a rate source → noop sink query (no work per batch) for `seconds`."""
    query = (
        spark.readStream.format("rate").option("rowsPerSecond", "1000").load()
        .writeStream.queryName("floor").format("noop")
        .trigger(processingTime="0 seconds").start()
    )
    time.sleep(seconds)
    query.stop()
    durations = [float(m.batch_duration_ms) for _, m in log.batches.get("floor", [])[2:]]
    return {"batches": len(durations), "batch_ms_p50": percentile(durations, 0.5),
            "batch_ms_p99": percentile(durations, 0.99)}


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-b", "--bootstrap-servers", default=os.environ.get(BOOTSTRAP_ENV))
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--max-offsets-per-trigger", type=int, default=20_000)
    parser.add_argument("--floor-seconds", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="txmon-bench-spark-") as tmp, \
            broker_for(args.bootstrap_servers, Path(tmp)) as bootstrap:
        client = {"bootstrap.servers": bootstrap}
        topics.ensure_topics(client, topics.ALL)
        subprocess.run([sys.executable, "-m", "producer", "-b", bootstrap, "--rate", "max",
                        "--count", str(args.count), "--seed", "1"], check=True, stdout=subprocess.DEVNULL)
        target = end_offsets(bootstrap)
        config = job.JobConfig(client_config=client, data_dir=Path(tmp) / "data",
                               max_offsets_per_trigger=args.max_offsets_per_trigger,
                               jars=tuple(jars.spark_connector_jars()))
        started = time.monotonic()
        spark = job.build_session(config)
        session_s = time.monotonic() - started
        log = ProgressLog()
        spark.streams.addListener(log)
        stop = threading.Event()
        with quiet_stdout():
            begun = time.monotonic()
            queries = [
                job.start_native_alerts_query(spark, job.read_transactions(spark, config), config),
                job.start_parquet_query(spark, job.read_transactions(spark, config), config),
            ]
            start_s = time.monotonic() - begun
            try:
                done = {q: log.wait_for(q, target, args.timeout) - begun
                        for q in (formats.QUERY_ALERTS, formats.QUERY_PARQUET)}
            finally:
                stop.set()
                for query in queries:
                    query.stop()
        backlog = sum(target.values())
        result = {
            "rows": backlog,
            "cores": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],
            "max_offsets_per_trigger": args.max_offsets_per_trigger,
            "spark_session_start_s": round(session_s, 2),
            "queries_start_s": round(start_s, 2),
            "both_done_s": round(max(done.values()), 2),
            "rows_per_s_both_queries": round(backlog / max(done.values()), 1),
            "queries": {q: {"done_s": round(t, 2), **summary(log.batches.get(q, []))}
                        for q, t in done.items()},
            "micro_batch_floor_noop": micro_batch_floor(spark, log, args.floor_seconds),
        }
        spark.stop()
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
