"""Spark's micro-batch floor on this machine: a rate source → noop sink query, no Kafka, no work.

    python -m bench floor [--seconds 10]

Runs in a process of its own (pyspark's JVM lives as long as the Python that started it), so a
pipeline benchmark can take this reference right after its own run, on the same loaded machine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from bench.pipeline import percentiles

# Rows in each of the floor's batches: what a batch of the job holds at about 1,000 tx/s.
ROWS_PER_BATCH = 150
# The first batches plan and compile the query: the window starts after them.
WARM_UP_S = 2.0


def measure(seconds: float) -> dict[str, Any]:
    """Batch-duration percentiles of a rate → noop query over `seconds`, and the JVM's CPU per batch
    (what the engine spends on a batch that does nothing: the reference for the job's fixed cost)."""
    import psutil

    from spark_app.config import DEFAULT_TRIGGER_MS, JobConfig
    from spark_app.session import build_session

    with tempfile.TemporaryDirectory(prefix="txmon-bench-floor-") as tmp:
        started = time.monotonic()
        spark = build_session(JobConfig(client_config={}, data_dir=Path(tmp)))
        session_s = time.monotonic() - started
        try:
            # A batch of rows at every trigger, on the job's trigger: the engine's cost of a batch that
            # does nothing (`rate` would give new rows once a second and poll in between).
            query = (
                spark.readStream.format("rate-micro-batch").option("rowsPerBatch", ROWS_PER_BATCH).load()
                .writeStream.queryName("floor").format("noop")
                .trigger(processingTime=f"{DEFAULT_TRIGGER_MS} milliseconds").start()
            )
            jvm = psutil.Process(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
            time.sleep(WARM_UP_S)  # a fixed warm-up, then the measured window: no condition to wait on
            first, cpu, wall = _last_batch(query), sum(jvm.cpu_times()[:2]), time.monotonic()
            time.sleep(seconds)
            cpu_s, wall_s = sum(jvm.cpu_times()[:2]) - cpu, time.monotonic() - wall
            batches = _last_batch(query) - first
            # Spark keeps the last 100 progress reports.
            durations = [p["batchDuration"] / 1e3 for p in query.recentProgress if p["batchId"] > first]
            query.stop()
        finally:
            spark.stop()
    figures = percentiles(durations)
    return {"spark_session_start_s": round(session_s, 2), "batches": batches,
            "batch_ms_p50": figures["p50_ms"], "batch_ms_p99": figures["p99_ms"],
            "jvm_cores": round(cpu_s / wall_s, 3),
            "jvm_cpu_ms_per_batch": round(cpu_s * 1e3 / batches, 1) if batches else None}


def _last_batch(query: Any) -> int:
    progress = query.lastProgress
    return int(progress["batchId"]) if progress else -1


def main(argv: list[str] | None = None) -> int:
    """Print the floor as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench floor", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run (default %(default)s)")
    args = parser.parse_args(argv)
    print(orjson.dumps(measure(args.seconds)).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
