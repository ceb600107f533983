"""A backlog drained: the job as shipped against the same plans run as one Spark batch job.

    python -m bench drain --records 600000 [--spark-arg=--no-rules] [--no-reference] [--json]

Fills `transactions` on an embedded broker with `--records` producer records (seeded), then:
1. starts the job as shipped (`python -m spark_app`, every query) and times it from its ready line
   until the last transaction is behind both the alerts (Kafka) and the Parquet table: the alerts
   query's first batch that ends at the topic's end offset has completed (Spark reported it, after
   its records were acknowledged) and the table's committed batch has reached it. JVM CPU is sampled
   at the ready line and at that moment;
2. stops it and checks the outputs: every flagged transaction in `alerts` and in committed Parquet;
3. runs the reference (bench.batchref) in a fresh process over the same topic.
Reported: tx/s and JVM CPU µs per transaction for both, and streaming ÷ reference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import psutil
from confluent_kafka import Producer

from bench import machine
from bench.children import Child
from bench.pipeline import batch_start_s, parquet_ids, progress, read_progress, read_topic_stamps, save
from bench.procstats import java_descendant
from producer.generator import TransactionGenerator
from txmon_core import large_table, topics
from txmon_core.broker import EmbeddedBroker
from txmon_core.large_table import committed_batch
from txmon_core.records import ready
from txmon_core.records.alert import DEFAULT_LARGE_THRESHOLD, TRANSACTION_LEVELS
from txmon_core.records.metrics import QUERY_ALERTS

SEED = 7
STARTUP_TIMEOUT = 300.0


def fill(bootstrap: str, records: int, uniform: bool = False) -> set[str]:
    """Produce `records` seeded transactions; return the tx_ids above the large threshold.

    `uniform`: amounts uniform over 1.00..1,000.00 RON (half of them flagged) instead of the
    generator's people-like spending (about 1 % flagged).
    """
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.size": 1_000_000,
                         "compression.type": "lz4", "enable.idempotence": True})
    generator = (TransactionGenerator(seed=SEED, min_cents=100, max_cents=100_000) if uniform
                 else TransactionGenerator(seed=SEED))
    flagged: set[str] = set()
    left = records
    while left:
        keys, values = generator.batch(min(left, 50_000))
        left -= len(values)
        for key, value in zip(keys, values, strict=True):
            while True:
                try:
                    producer.produce(topics.TRANSACTIONS, value, key)
                    break
                except BufferError:
                    producer.poll(0.05)
            data = orjson.loads(value)
            if data["amount"] > DEFAULT_LARGE_THRESHOLD:
                flagged.add(data["tx_id"])
        producer.poll(0)
    if producer.flush(120):
        raise RuntimeError("the backlog was not fully acknowledged")
    return flagged


def alert_ids(bootstrap: str) -> set[str]:
    """tx_ids of the threshold alerts (large and alert levels) in `alerts`; a rule alert is none."""
    stamps = read_topic_stamps(bootstrap, topics.ALERTS, field="level")
    return {tx_id for tx_id, (level, _) in stamps.items() if level in TRANSACTION_LEVELS}


def batch_end_s(progress_line: dict[str, Any]) -> float:
    """Wall time (epoch s) at which a reported batch completed."""
    return batch_start_s(progress_line) + progress_line.get("durationMs", {}).get("triggerExecution", 0) / 1e3


def reached_end(progress_log: Path, end: int) -> tuple[int, float] | None:
    """(batch id, completion time) of the alerts query's first batch that reached offset `end`."""
    for batch in read_progress(progress_log):
        if batch.get("name") != QUERY_ALERTS:
            continue
        for source in batch.get("sources", []):
            offsets = source.get("endOffset") or {}
            if isinstance(offsets, str):
                offsets = orjson.loads(offsets)
            if int(offsets.get(topics.TRANSACTIONS, {}).get("0", -1)) >= end:
                return int(batch["batchId"]), batch_end_s(batch)
    return None


def streaming(bootstrap: str, folder: Path, records: int, spark_args: list[str], timeout: float,
              stack: ExitStack) -> dict[str, Any]:
    """The job as shipped draining the backlog."""
    log = folder / "progress.jsonl"
    data_dir = folder / "data"
    command = [sys.executable, "-m", "spark_app", "-b", bootstrap, "--data-dir", str(data_dir),
               "--progress-log", str(log), *spark_args]
    job = Child("spark", command, folder)
    stack.callback(job.stop)
    ready_at, _ = job.wait_line(ready.is_job_line, STARTUP_TIMEOUT)
    jvm_pid = java_descendant(job.pid)
    if jvm_pid is None:
        raise RuntimeError("no Spark JVM below the job")
    jvm = psutil.Process(jvm_pid)
    cpu0 = sum(jvm.cpu_times()[:2])
    # The Python driver does work of its own now (producing, Parquet): counted beside the JVM.
    driver = psutil.Process(job.pid)
    driver_cpu0 = sum(driver.cpu_times()[:2])
    table = data_dir / large_table.DIR_NAME
    deadline = time.monotonic() + timeout
    alerts_done: tuple[int, float] | None = None
    while True:
        alerts_done = alerts_done or reached_end(log, records)
        # The alerts batch that reached the end has delivered its records when Spark reports it;
        # its rows are in the Parquet table once the table's committed batch is at least that one.
        if alerts_done is not None and committed_batch(table) >= alerts_done[0]:
            parquet_at = time.time()
            cpu = sum(jvm.cpu_times()[:2]) - cpu0
            driver_cpu = sum(driver.cpu_times()[:2]) - driver_cpu0
            break
        if job.process.poll() is not None:
            raise RuntimeError(f"the job exited ({job.process.returncode}):\n{job.stderr_tail()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"not drained within {timeout:.0f} s (alerts: {alerts_done})")
        time.sleep(0.02)
    job.stop()
    wall = max(parquet_at, alerts_done[1]) - ready_at
    return {"wall_s": round(wall, 3), "jvm_cpu_s": round(cpu, 3), "driver_cpu_s": round(driver_cpu, 3),
            "alerts_done_s": round(alerts_done[1] - ready_at, 3),
            "parquet_done_s": round(parquet_at - ready_at, 3),
            "batches": alerts_done[0] + 1, "data_dir": data_dir}


def reference(bootstrap: str, folder: Path, stack: ExitStack) -> dict[str, Any]:
    """The batch reference in a fresh process."""
    child = Child("reference", [sys.executable, "-m", "bench.batchref", "-b", bootstrap,
                                "--data-dir", str(folder / "reference")], folder)
    stack.callback(child.stop)
    _, line = child.wait_line(lambda text: text.startswith("{"), STARTUP_TIMEOUT + 600)
    child.stop()
    return dict(orjson.loads(line))


def figures(run: dict[str, Any], records: int) -> dict[str, Any]:
    """tx/s and µs of JVM CPU per transaction."""
    return {**{k: v for k, v in run.items() if k != "data_dir"},
            "tx_per_s": round(records / run["wall_s"]) if run["wall_s"] else None,
            "jvm_cpu_us_per_tx": round(run["jvm_cpu_s"] / records * 1e6, 2)}


def run(records: int, spark_args: list[str], with_reference: bool, timeout: float,
        uniform: bool = False) -> dict[str, Any]:
    """Fill, drain, check, reference; every process stopped on the way out."""
    result: dict[str, Any] = {"kind": "drain", "machine": machine.machine(), "records": records,
                              "spark_args": spark_args, "amounts": "uniform" if uniform else "people-like"}
    with tempfile.TemporaryDirectory(prefix="txmon-bench-drain-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        broker = EmbeddedBroker(folder / "broker")
        broker.start()
        stack.callback(broker.stop)
        broker.wait_ready(STARTUP_TIMEOUT)
        bootstrap = broker.bootstrap
        topics.ensure_topics({"bootstrap.servers": bootstrap}, topics.ALL)
        progress(f"filling transactions with {records:,} records")
        flagged = fill(bootstrap, records, uniform)
        result["flagged"] = len(flagged)
        progress(f"{len(flagged):,} flagged; draining with the job as shipped")
        drained = streaming(bootstrap, folder, records, spark_args, timeout, stack)
        missing_alerts = len(flagged - alert_ids(bootstrap))
        missing_parquet = len(flagged - parquet_ids(drained["data_dir"] / large_table.DIR_NAME))
        result["streaming"] = figures(drained, records)
        result["lost"] = {"alerts": missing_alerts, "parquet": missing_parquet}
        progress(f"streaming {result['streaming']['tx_per_s']:,} tx/s; lost {result['lost']}")
        if with_reference:
            progress("running the batch reference")
            result["reference"] = figures(reference(bootstrap, folder, stack), records)
            s, r = result["streaming"], result["reference"]
            result["ratio"] = {
                "tx_per_s": round(s["tx_per_s"] / r["tx_per_s"], 3),
                "jvm_cpu_per_tx": round(s["jvm_cpu_us_per_tx"] / r["jvm_cpu_us_per_tx"], 3),
            }
    result["load_at_end"] = machine.load()
    return result


def main(argv: list[str] | None = None) -> int:
    """`python -m bench drain`."""
    parser = argparse.ArgumentParser(prog="python -m bench drain", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=600_000, help="backlog size (default %(default)s)")
    parser.add_argument("--spark-arg", action="append", default=[], metavar="FLAG",
                        help="an extra txmon-spark flag (repeatable)")
    parser.add_argument("--no-reference", action="store_true", help="skip the batch reference")
    parser.add_argument("--uniform", action="store_true",
                        help="amounts uniform over 1..1,000 RON (half flagged), not people-like spending")
    parser.add_argument("--timeout", type=float, default=600.0, help="drain deadline in s")
    parser.add_argument("--json", action="store_true", help="print the whole result")
    parser.add_argument("--no-save", action="store_true", help="do not write to bench/results/")
    args = parser.parse_args(argv)
    result = run(args.records, args.spark_arg, not args.no_reference, args.timeout, args.uniform)
    if not args.no_save:
        progress(f"saved {save(result, 'drain')}")
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        s = result["streaming"]
        line = f"drain {args.records:,}: streaming {s['tx_per_s']:,} tx/s {s['jvm_cpu_us_per_tx']} µs/tx"
        if "reference" in result:
            r = result["reference"]
            line += (f"; batch {r['tx_per_s']:,} tx/s {r['jvm_cpu_us_per_tx']} µs/tx; ratio "
                     f"{result['ratio']['tx_per_s']}× speed, {result['ratio']['jvm_cpu_per_tx']}× CPU")
        print(f"{line}; lost {result['lost']}")
    return 0 if not any(result["lost"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
