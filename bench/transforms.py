"""The job's transforms alone: JVM CPU per record of each query's plan on an in-memory batch, no Kafka.

    python -m bench transforms [--rows 200000] [--repeat 3] [--bad-every 0]

Builds `--rows` producer records (seeded; every `--bad-every`-th one replaced by a bad value) as a
cached batch DataFrame of Kafka source rows, then times each query's plan into Spark's `noop` sink,
through the typed read (as the job runs) and through the exact VARIANT path alone. Reports the best of
`--repeat` runs in µs of Spark JVM CPU (user + system, psutil) and of wall time per record, and their
ratio. The cached scan is part of every figure, so differences between rows are what the plans cost.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psutil
from pyspark.sql import DataFrame, SparkSession

from bench import machine
from producer.generator import TransactionGenerator
from spark_app import transforms
from spark_app.config import JobConfig
from spark_app.session import build_session
from txmon_core import topics
from txmon_core.records.alert import DEFAULT_ALERT_THRESHOLD, DEFAULT_LARGE_THRESHOLD
from txmon_core.records.metrics import QUERY_ALERTS, QUERY_PARQUET

SOURCE_SCHEMA = "key binary, value binary, topic string, partition int, offset long"
BAD_VALUES = (None, b"", b"\xff\xfe", b"nope", b'{"tx_id":"b","amount":"950","ts":"2026-11-25T12:00:00Z"}')


def jvm_process() -> psutil.Process:
    """The Spark JVM this Python started (pyspark's gateway)."""
    for child in psutil.Process().children(recursive=True):
        if "java" in child.name():
            return child
    raise RuntimeError("no Spark JVM below this process")


def batch(spark: SparkSession, rows: int, bad_every: int) -> DataFrame:
    """`rows` producer records as cached Kafka source rows of `transactions`, partition 0."""
    keys, values = TransactionGenerator(seed=1).batch(rows)
    records: list[tuple[bytes, bytes | None, str, int, int]] = []
    for offset, (key, value) in enumerate(zip(keys, values, strict=True)):
        bad = bad_every and offset % bad_every == bad_every // 2
        records.append((key, BAD_VALUES[offset % len(BAD_VALUES)] if bad else value, topics.TRANSACTIONS, 0,
                        offset))
    frame = spark.createDataFrame(records, SOURCE_SCHEMA)
    frame = frame.coalesce(1).cache()
    frame.count()
    return frame


def plans(source: DataFrame, fast_path: bool) -> dict[str, DataFrame]:
    """Each query's rows as the job builds them (without the sinks): alerts + dead letters, Parquet."""
    parsed = transforms.parse_transactions(source, fast_path=fast_path)
    classified = transforms.classify(parsed, DEFAULT_LARGE_THRESHOLD, DEFAULT_ALERT_THRESHOLD)
    return {
        QUERY_ALERTS: transforms.kafka_records(classified, topics.ALERTS, topics.DEAD_LETTERS),
        QUERY_PARQUET: transforms.parquet_rows(classified),
    }


def timed(jvm: psutil.Process, action: Callable[[], None]) -> tuple[float, float]:
    """JVM CPU seconds and wall seconds that `action` took."""
    cpu = jvm.cpu_times()
    began = time.perf_counter()
    action()
    wall = time.perf_counter() - began
    after = jvm.cpu_times()
    return after.user + after.system - cpu.user - cpu.system, wall


def measure(rows: int, repeat: int, bad_every: int) -> dict[str, Any]:
    """Best-of-`repeat` µs per record of each plan, typed read vs exact path."""
    with tempfile.TemporaryDirectory(prefix="txmon-bench-transforms-") as tmp:
        # One task thread: the figures are per record on one core, as each query's task runs here.
        spark = build_session(JobConfig(client_config={}, data_dir=Path(tmp), master="local[1]"))
        try:
            jvm = jvm_process()
            source = batch(spark, rows, bad_every)
            result: dict[str, Any] = {}
            for query in (QUERY_ALERTS, QUERY_PARQUET):
                figures: dict[str, Any] = {}
                for name, fast_path in (("typed", True), ("exact", False)):
                    frame = plans(source, fast_path)[query]
                    timed(jvm, lambda f=frame: f.write.format("noop").mode("overwrite").save())  # compile
                    runs = [timed(jvm, lambda f=frame: f.write.format("noop").mode("overwrite").save())
                            for _ in range(repeat)]
                    cpu, wall = min(runs)
                    figures[name] = {"cpu_us_per_row": round(cpu / rows * 1e6, 2),
                                     "wall_us_per_row": round(wall / rows * 1e6, 2)}
                scan = timed(jvm, lambda: source.write.format("noop").mode("overwrite").save())[0]
                figures["cached_scan_cpu_us_per_row"] = round(scan / rows * 1e6, 2)
                figures["exact_over_typed_cpu"] = round(
                    figures["exact"]["cpu_us_per_row"] / figures["typed"]["cpu_us_per_row"], 2)
                result[query] = figures
        finally:
            spark.stop()
    return {"kind": "transforms", "machine": machine.machine(), "rows": rows, "bad_every": bad_every,
            "queries": result, "load_at_end": machine.load()}


def main(argv: list[str] | None = None) -> int:
    """Print the figures as JSON and save them under bench/results/."""
    from bench.pipeline import progress, save

    parser = argparse.ArgumentParser(prog="python -m bench transforms", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="records (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per plan (default %(default)s)")
    parser.add_argument("--bad-every", type=int, default=0, help="every Nth record bad (default: none)")
    parser.add_argument("--no-save", action="store_true", help="do not write the result to bench/results/")
    args = parser.parse_args(argv)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    result = measure(args.rows, args.repeat, args.bad_every)
    if not args.no_save:
        progress(f"saved {save(result, 'transforms')}")
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
