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


def measure(seconds: float) -> dict[str, Any]:
    """Batch-duration percentiles of a rate → noop query over `seconds`."""
    from spark_app.config import JobConfig
    from spark_app.session import build_session

    with tempfile.TemporaryDirectory(prefix="txmon-bench-floor-") as tmp:
        started = time.monotonic()
        spark = build_session(JobConfig(client_config={}, data_dir=Path(tmp)))
        session_s = time.monotonic() - started
        try:
            query = (
                spark.readStream.format("rate").option("rowsPerSecond", "1000").load()
                .writeStream.queryName("floor").format("noop")
                .trigger(processingTime="0 seconds").start()
            )
            time.sleep(seconds)  # the measured window itself, not a wait for a condition
            # Spark keeps the recent progress reports; the first two batches plan and compile.
            durations = [p["batchDuration"] / 1e3 for p in query.recentProgress[2:]]
            query.stop()
        finally:
            spark.stop()
    figures = percentiles(durations)
    return {"spark_session_start_s": round(session_s, 2), "batches": figures["count"],
            "batch_ms_p50": figures["p50_ms"], "batch_ms_p99": figures["p99_ms"]}


def main(argv: list[str] | None = None) -> int:
    """Print the floor as JSON."""
    parser = argparse.ArgumentParser(prog="python -m bench floor", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run (default %(default)s)")
    args = parser.parse_args(argv)
    print(orjson.dumps(measure(args.seconds)).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
