"""The monitor's tail against Kafka's own ConsumerPerformance, on the same broker and records, in one run.

    python -m bench consumer [--records 300000] [--rounds 3] [-b HOST:PORT] [--json]

Pre-loads `--records` alert records (as the Spark job writes them, uncompressed like its Kafka sink)
into `alerts` of a fresh embedded broker (or a fresh `alerts` topic's tail of the one named), then
each round times `org.apache.kafka.tools.ConsumerPerformance` and txmon_tui.monitor.tail.Tail reading them
all: the Tail both alone (poll + decode) and with the monitor's MonitorModel.apply per batch.
ConsumerPerformance's fetch.nMsg.sec leaves out its consumer-group join, which the Tail does not do.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
import uuid
from typing import Any
from unittest import mock

import orjson
from confluent_kafka import Producer

from bench.producer import JAVA_OPTIONS, bootstrap_servers
from producer.generator import TransactionGenerator
from spark_app import formats
from txmon_core import jars, topics
from txmon_tui.monitor import tail as tail_module
from txmon_tui.monitor.model import MonitorModel

GOAL_RATIO = 0.5
# ConsumerPerformance's CSV line: start, end, MB, MB/s, records, records/s, rebalance ms, fetch ms,
# fetch MB/s, fetch records/s.
PERF_LINE = re.compile(
    r"^[\d-]+ [\d:]+, [\d-]+ [\d:]+, ([\d.]+), ([\d.]+), (\d+), ([\d.]+), (\d+), (\d+), "
    r"([\d.]+), ([\d.]+)",
    re.MULTILINE,
)


def progress(text: str) -> None:
    """A progress line on stderr (stdout carries the result)."""
    print(f"bench.consumer: {text}", file=sys.stderr, flush=True)


def alert_values(count: int) -> list[tuple[bytes, bytes]]:
    """`count` (key, value) alert records shaped as the job writes them."""
    generator = TransactionGenerator(seed=3, min_cents=50_001)
    detected = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    records = []
    for _ in range(0, count, 10_000):
        _keys, values = generator.batch(min(10_000, count - len(records)))
        for value in values:
            tx = orjson.loads(value)
            level = (
                formats.LEVEL_ALERT if tx["amount"] > formats.DEFAULT_ALERT_THRESHOLD else formats.LEVEL_LARGE
            )
            rule = "amount>900" if level == formats.LEVEL_ALERT else "amount>500"
            records.append(
                (
                    tx["tx_id"].encode(),
                    orjson.dumps({**tx, "level": level, "rule": rule, "detected_at": detected}),
                )
            )
    return records


def preload(bootstrap: str, records: list[tuple[bytes, bytes]]) -> int:
    """Write the records to `alerts`; return the average value size in bytes."""
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 20,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    for key, value in records:
        while True:
            try:
                producer.produce(topics.ALERTS, value, key)
                break
            except BufferError:
                producer.poll(0.05)
    if producer.flush(120) != 0:
        raise RuntimeError("pre-loading the alerts topic did not finish")
    return round(sum(len(v) for _, v in records) / len(records))


def run_reference(bootstrap: str, records: int) -> dict[str, float]:
    """ConsumerPerformance over the whole topic: records/s with and without its group join."""
    command = [
        jars.find_tool("java"), *JAVA_OPTIONS, "-cp", jars.broker_classpath(),
        "org.apache.kafka.tools.ConsumerPerformance", "--bootstrap-server", bootstrap,
        "--topic", topics.ALERTS, "--num-records", str(records), "--group", f"bench-{uuid.uuid4().hex[:8]}",
        "--timeout", "60000",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    match = PERF_LINE.search(done.stdout)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"ConsumerPerformance failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    consumed = int(match.group(3))
    if consumed < records:
        raise RuntimeError(f"ConsumerPerformance read {consumed} of {records} records")
    return {"records_per_s": float(match.group(4)), "fetch_records_per_s": float(match.group(8))}


def run_tail(bootstrap: str, records: int, with_model: bool) -> float:
    """Records/s of the monitor's Tail reading the whole topic, from construction to the last decoded."""
    # Tail starts at the end by design; here it must read the pre-loaded backlog, as the reference does.
    with mock.patch.object(tail_module, "_end_offset", return_value=0):
        started = time.perf_counter()
        tail = tail_module.Tail({"bootstrap.servers": bootstrap})
    model = MonitorModel() if with_model else None
    read = 0
    try:
        deadline = time.monotonic() + 300
        while read < records and time.monotonic() < deadline:
            batch = tail.poll(0.2)
            read += len(batch.alerts)
            if model is not None:
                model.apply(batch)
        elapsed = time.perf_counter() - started
    finally:
        tail.close()
    if read < records:
        raise RuntimeError(f"the tail read {read} of {records} records")
    return records / elapsed


def measure(bootstrap: str, records: int, rounds: int) -> dict[str, Any]:
    """Pre-load, run the rounds, and return every figure."""
    topics.ensure_topics({"bootstrap.servers": bootstrap}, topics.ALL)
    size = preload(bootstrap, alert_values(records))
    rows = []
    for n in range(1, rounds + 1):
        reference = run_reference(bootstrap, records)
        tail_rate = run_tail(bootstrap, records, with_model=False)
        monitor_rate = run_tail(bootstrap, records, with_model=True)
        progress(
            f"round {n}: ConsumerPerformance {reference['fetch_records_per_s']:,.0f}/s (fetch), "
            f"tail {tail_rate:,.0f}/s, tail + model {monitor_rate:,.0f}/s"
        )
        rows.append(
            {
                "round": n,
                **reference,
                "tail_records_per_s": round(tail_rate),
                "tail_and_model_records_per_s": round(monitor_rate),
            }
        )

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    reference_rate = median("fetch_records_per_s")
    return {
        "kind": "consumer",
        "records": records,
        "value_size_bytes": size,
        "rounds": rows,
        "reference_fetch_records_per_s": round(reference_rate),
        "reference_records_per_s_with_group_join": round(median("records_per_s")),
        "tail_records_per_s": round(median("tail_records_per_s")),
        "tail_and_model_records_per_s": round(median("tail_and_model_records_per_s")),
        "ratio": round(median("tail_records_per_s") / reference_rate, 3),
        "ratio_with_model": round(median("tail_and_model_records_per_s") / reference_rate, 3),
        "goal_ratio": GOAL_RATIO,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the figures (JSON with --json) and save them."""
    from bench import machine
    from bench.pipeline import save

    parser = argparse.ArgumentParser(prog="python -m bench consumer", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300_000, help="records per run (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default %(default)s)")
    parser.add_argument("-b", "--bootstrap-servers", help="use this broker (its alerts topic must be empty)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    if args.records <= 0 or args.rounds <= 0:
        parser.error("--records and --rounds must be > 0")
    info = machine.machine()
    with bootstrap_servers(args.bootstrap_servers) as bootstrap:
        result = {
            "machine": info,
            **measure(bootstrap, args.records, args.rounds),
            "load_at_end": machine.load(),
        }
    progress(f"saved {save(result, 'consumer')}")
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        print(
            f"ConsumerPerformance {result['reference_fetch_records_per_s']:,} records/s, tail "
            f"{result['tail_records_per_s']:,} ({result['ratio']:.2f}x), tail + model "
            f"{result['tail_and_model_records_per_s']:,} ({result['ratio_with_model']:.2f}x); "
            f"goal {GOAL_RATIO}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
