"""Producer throughput against Kafka's own ProducerPerformance, on the same broker, in one run.

    python -m bench.producer --records 500000 --json

Starts the embedded broker (or uses `-b`), then for each round runs
`org.apache.kafka.tools.ProducerPerformance` and txmon's publish loop, each to a fresh topic, with the
same record count and size, the same acks (all, idempotent), linger, batch size and compression.
ProducerPerformance sends unkeyed records, so its record size is our average key + value size.
Both rates are end to end: from the first send until every record is acknowledged. The ratio is of
the medians over the rounds, which damps the noise of a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from producer.cli import PRODUCER_DEFAULTS, producer_config
from producer.generator import TransactionGenerator
from producer.publish import publish
from txmon_core import jars
from txmon_core.broker import LOG4J_CONFIG, EmbeddedBroker
from txmon_core.topics import ensure_topics

GOAL_RATIO = 0.6
# librdkafka's default batch.size (bytes); Java's default is 16 KiB, so pass it to make the two comparable.
LIBRDKAFKA_BATCH_SIZE = 1_000_000
JAVA_OPTIONS = ["-Xmx512m", "-XX:+UseG1GC", f"-Dlog4j2.configurationFile={LOG4J_CONFIG}"]
PERF_TOTAL = re.compile(r"^(\d+) records sent, ([\d.]+) records/sec", re.MULTILINE)


def progress(text: str) -> None:
    """A progress line on stderr (stdout carries the result)."""
    print(f"bench.producer: {text}", file=sys.stderr, flush=True)


def record_size(sample: int = 20_000) -> int:
    """Our average key + value size in bytes, over a seeded sample."""
    keys, values = TransactionGenerator(seed=1).batch(sample)
    return round((sum(map(len, keys)) + sum(map(len, values))) / sample)


def generator_rate(records: int = 200_000) -> float:
    """Records/s of the generator alone, in CPU time of this thread (immune to other processes' load)."""
    generator = TransactionGenerator(seed=1)
    started = time.thread_time()
    for _ in range(records // 1_000):
        generator.batch(1_000)
    return records / (time.thread_time() - started)


def settings(overrides: dict[str, str]) -> dict[str, str]:
    """The delivery settings both producers share: ours, then the user's overrides."""
    return {
        "acks": "all",
        "enable.idempotence": "true",
        "linger.ms": str(PRODUCER_DEFAULTS["linger.ms"]),
        "compression.type": str(PRODUCER_DEFAULTS["compression.type"]),
        **overrides,
    }


def records_in(bootstrap: str, topic: str) -> int:
    """The end offset of partition 0 of `topic`."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4().hex}"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1])
    finally:
        consumer.close()


def run_reference(bootstrap: str, topic: str, records: int, size: int, shared: dict[str, str]) -> float:
    """Records/s of Kafka's ProducerPerformance, as it reports them."""
    props = {"bootstrap.servers": bootstrap, "batch.size": str(LIBRDKAFKA_BATCH_SIZE), **shared}
    command = [
        jars.find_tool("java"), *JAVA_OPTIONS, "-cp", jars.broker_classpath(),
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic", topic, "--num-records", str(records), "--record-size", str(size), "--throughput", "-1",
        "--producer-props", *(f"{key}={value}" for key, value in props.items()),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    totals = PERF_TOTAL.findall(result.stdout)
    if result.returncode != 0 or not totals:
        raise RuntimeError(
            f"ProducerPerformance failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )
    sent, rate = totals[-1]
    if int(sent) != records:
        raise RuntimeError(f"ProducerPerformance sent {sent} of {records} records")
    return float(rate)


def run_ours(bootstrap: str, topic: str, records: int, shared: dict[str, str]) -> float:
    """Records/s of txmon's publish loop with the CLI's configuration, until all are acknowledged."""
    producer = Producer(producer_config({"bootstrap.servers": bootstrap, **shared}))
    producer.list_topics(topic, timeout=30)
    generator = TransactionGenerator(seed=1)
    started = time.perf_counter()
    result = publish(producer, generator, topic, rate=None, count=records, stop=threading.Event())
    elapsed = time.perf_counter() - started
    if result.counts.acknowledged != records:
        raise RuntimeError(f"only {result.counts.acknowledged} of {records} records acknowledged")
    return records / elapsed


@contextmanager
def bootstrap_servers(given: str | None) -> Iterator[str]:
    """The broker to measure against: the one given, or a fresh embedded one, stopped afterwards."""
    if given:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="txmon-bench-") as folder:
        progress("starting the embedded broker")
        with EmbeddedBroker(Path(folder)) as broker:
            yield broker.bootstrap


def measure(bootstrap: str, records: int, rounds: int, overrides: dict[str, str]) -> dict[str, Any]:
    """Run the rounds and return every figure."""
    size = record_size()
    shared = settings(overrides)
    rows = []
    for n in range(1, rounds + 1):
        tag = uuid.uuid4().hex[:8]
        reference_topic, our_topic = f"bench-reference-{tag}", f"bench-txmon-{tag}"
        ensure_topics({"bootstrap.servers": bootstrap}, [reference_topic, our_topic])
        reference = run_reference(bootstrap, reference_topic, records, size, shared)
        progress(f"round {n}: ProducerPerformance {reference:,.0f} records/s")
        ours = run_ours(bootstrap, our_topic, records, shared)
        progress(f"round {n}: txmon producer     {ours:,.0f} records/s ({ours / reference:.2f}x)")
        for topic in (reference_topic, our_topic):
            if (found := records_in(bootstrap, topic)) != records:
                raise RuntimeError(f"{topic} holds {found} records, expected {records}")
        rows.append(
            {"round": n, "reference_records_per_s": round(reference), "txmon_records_per_s": round(ours)}
        )
    reference_median = statistics.median(r["reference_records_per_s"] for r in rows)
    ours_median = statistics.median(r["txmon_records_per_s"] for r in rows)
    return {
        "records": records,
        "record_size_bytes": size,
        "settings": {**shared, "batch.size (Java)": LIBRDKAFKA_BATCH_SIZE},
        "rounds": rows,
        "reference_records_per_s": round(reference_median),
        "txmon_records_per_s": round(ours_median),
        "ratio": round(ours_median / reference_median, 3),
        "goal_ratio": GOAL_RATIO,
        "generator_records_per_s_cpu": round(generator_rate()),
        "cpus": os.cpu_count(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the figures (JSON with --json)."""
    parser = argparse.ArgumentParser(prog="python -m bench.producer", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=500_000, help="records per run (default %(default)s)")
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of both producers (default %(default)s)"
    )
    parser.add_argument("-b", "--bootstrap-servers", help="use this broker instead of starting one")
    parser.add_argument(
        "-X", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="a setting for both producers, e.g. -X compression.type=none (repeatable)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    args = parser.parse_args(argv)
    if args.records <= 0 or args.rounds <= 0:
        parser.error("--records and --rounds must be > 0")
    overrides = dict(item.partition("=")[::2] for item in args.overrides)
    from bench import machine
    from bench.pipeline import save

    info = machine.machine()
    with bootstrap_servers(args.bootstrap_servers) as bootstrap:
        result = {"kind": "producer", "machine": info,
                  **measure(bootstrap, args.records, args.rounds, overrides)}
    progress(f"saved {save(result, 'producer')}")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            f"ProducerPerformance {result['reference_records_per_s']:,} records/s, "
            f"txmon producer {result['txmon_records_per_s']:,} records/s, "
            f"ratio {result['ratio']:.2f} (goal {GOAL_RATIO}); "
            f"{result['records']:,} records of {result['record_size_bytes']} bytes, median of {args.rounds}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
