"""The whole pipeline on this machine: broker, Spark job, producer and the monitor's tail, measured.

    python -m bench pipeline --rate 10000 --duration 60 [--mode microbatch|realtime] [--json]

Order of a run: embedded broker (temp folder) → topics → tail (bench.tail: what the monitor does) →
Spark job and a 100 tx/s warm-up producer together, until the first alert reaches the tail (the cold
start) → warm-up stopped and drained → the measured producer at `--rate` for `--duration` s → stopped
→ drain (both queries past the last offset, deadline `--drain-timeout`) → everything stopped → the
`transactions` topic, both ack logs and the committed Parquet compared with what the tail received.
Latency is received-by-tail wall time − transaction `ts`, over every flagged record of the measured
producer. CPU and peak RSS come from psutil samples of each process; "in window" is from the measured
producer's start to the end of the drain. Then, unless `--floor-seconds 0`, Spark's micro-batch floor
is measured in a fresh process (bench.floor) as the reference for latency.
"""

from __future__ import annotations

import argparse
import heapq
import math
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from bench import machine
from bench.children import Child
from bench.procstats import ProcessSampler, java_descendant
from bench.tail import READY_LINE as TAIL_READY_LINE
from spark_app.cli import add_query_options
from spark_app.config import MODE_MICROBATCH, MODE_REALTIME
from txmon_core import large_table, topics
from txmon_core.broker import EmbeddedBroker
from txmon_core.records import ready
from txmon_core.records.alert import DEFAULT_ALERT_THRESHOLD, DEFAULT_LARGE_THRESHOLD
from txmon_core.records.metrics import QUERY_ALERTS, QUERY_PARQUET
from txmon_tui.monitor.history import committed_files

WARMUP_RATE = 100
COLD_START_TIMEOUT = 300.0  # a loaded machine has taken minutes to start a JVM
MEASURED_SEED, WARMUP_SEED = 1, 2
LATENCY_GOALS_S = {"microbatch": (0.4, 1.0), "realtime": (0.02, 0.1)}  # p50, p99 at 10,000 tx/s


def progress(text: str) -> None:
    """A progress line on stderr (stdout carries the result)."""
    print(f"bench: {text}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Options:
    """One pipeline run."""

    rate: float
    duration: float
    mode: str = MODE_MICROBATCH
    drain_timeout: float = 120.0
    parquet_trigger: float = 5.0
    max_offsets_per_trigger: int | None = None
    floor_seconds: float = 10.0
    spark_args: tuple[str, ...] = ()  # extra txmon-spark flags, e.g. --no-alert-lines
    tail_args: tuple[str, ...] = ()  # extra bench.tail flags
    spark_jfr: Path | None = None  # record a Java Flight Recording of the Spark JVM into this folder
    uniform: bool = False  # amounts uniform over 1..1,000 RON (half flagged), not people-like spending


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by `pipeline` and `sustain`: the job's own query options, then the run's."""
    add_query_options(parser)
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for Spark to catch up after producing stops (default %(default)s)",
    )
    parser.add_argument(
        "--floor-seconds",
        type=float,
        default=10.0,
        help="seconds of Spark's micro-batch floor reference after the run; 0 skips it",
    )
    parser.add_argument(
        "--spark-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="an extra txmon-spark flag, e.g. --spark-arg=--no-alert-lines (repeatable)",
    )
    parser.add_argument(
        "--uniform",
        action="store_true",
        help="amounts uniform over 1..1,000 RON (half flagged), as this round's and earlier figures had "
        "them; default: the producer's people-like spending (about 1 %% flagged)",
    )
    parser.add_argument(
        "--tail-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="an extra bench.tail flag (repeatable)",
    )


def options_from(args: argparse.Namespace, rate: float, duration: float) -> Options:
    """pipeline.Options from parsed arguments."""
    return Options(
        rate=rate,
        duration=duration,
        mode=args.mode,
        drain_timeout=args.drain_timeout,
        parquet_trigger=args.parquet_trigger,
        max_offsets_per_trigger=args.max_offsets_per_trigger,
        floor_seconds=args.floor_seconds,
        spark_args=tuple(args.spark_arg),
        tail_args=tuple(args.tail_arg),
        uniform=args.uniform,
    )


def amount_args(options: Options) -> list[str]:
    """The producer's amount flags for a run: uniform amounts (half flagged), or its own default."""
    return ["--min-amount", "1.00", "--max-amount", "1000.00"] if options.uniform else []


def percentiles(values: list[float]) -> dict[str, float | None]:
    """p50/p95/p99/max in ms (nearest rank over every value), and the count."""
    if not values:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)

    def rank(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)] * 1e3, 1)

    return {
        "count": len(ordered),
        "p50_ms": rank(0.5),
        "p95_ms": rank(0.95),
        "p99_ms": rank(0.99),
        "max_ms": round(ordered[-1] * 1e3, 1),
    }


def end_offset(bootstrap: str, topic: str = topics.TRANSACTIONS) -> int:
    """The end offset of partition 0 (every txmon topic has one partition here)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "txmon-bench-offsets"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)[1])
    finally:
        consumer.close()


def read_progress(path: Path) -> list[dict[str, Any]]:
    """The batches of the job's progress log (`--progress-log`), oldest first; none when it is missing."""
    return [orjson.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def batch_start_s(batch: Mapping[str, Any]) -> float:
    """When a progress entry's batch started (epoch s)."""
    return datetime.fromisoformat(batch["timestamp"].replace("Z", "+00:00")).timestamp()


def batch_times(path: Path) -> dict[str, list[list[Any]]]:
    """Per query, [batch id, start (epoch s), duration ms, rows] of every batch in the progress log."""
    found: dict[str, list[list[Any]]] = {}
    for batch in read_progress(path):
        found.setdefault(str(batch.get("name")), []).append(
            [batch["batchId"], round(batch_start_s(batch), 3), batch.get("batchDuration"),
             batch.get("numInputRows")])
    return {name: rows if name != QUERY_ALERTS else rows[-3:] for name, rows in found.items()}


def settle_topic(bootstrap: str, topic: str, quiet_s: float, timeout: float) -> None:
    """Wait until `topic`'s end offset has not moved for `quiet_s` seconds (at most `timeout`)."""
    deadline = time.monotonic() + timeout
    last, since = end_offset(bootstrap, topic), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
        time.sleep(0.5)
        now = end_offset(bootstrap, topic)
        if now != last:
            last, since = now, time.monotonic()


def read_topic_stamps(bootstrap: str, topic: str, end: int | None = None,
                      field: str = "amount") -> dict[str, tuple[float, float]]:
    """tx_id → (`field`, the record's Kafka timestamp in epoch s) of a topic's records up to `end`.

    The first record of a tx_id wins (a repeat in `alerts` came later). With the topic set to
    `message.timestamp.type=LogAppendTime` the timestamp is when the broker appended the record.
    """
    end = end_offset(bootstrap, topic) if end is None else end
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "txmon-bench-audit", "enable.auto.commit": False}
    )
    found: dict[str, tuple[float, float]] = {}
    try:
        consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        read = 0
        deadline = time.monotonic() + 300
        while read < end and time.monotonic() < deadline:
            for record in consumer.consume(10_000, 1.0):
                if record.error() is not None:
                    continue
                read = record.offset() + 1
                data = orjson.loads(record.value())
                if isinstance(data, dict) and data.get("tx_id") not in found:
                    found[data["tx_id"]] = (data.get(field), record.timestamp()[1] / 1e3)
    finally:
        consumer.close()
    return found


# Broker append times on both topics, for the latency split (bench only: the job keeps any setting).
APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}


def stage_latencies(record: dict[str, Any], measured: list[int], appended: dict[str, tuple[float, float]],
                    alerted: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """p50/p99 of each stage a flagged record goes through, from the broker's and Spark's own stamps.

    ts → appended to `transactions` → Spark's batch start (`detected_at`) → appended to `alerts` →
    received by the monitor's tail.
    """
    stages: dict[str, list[float]] = {"ts_to_transactions": [], "transactions_to_batch_start": [],
                                      "batch_start_to_alerts": [], "alerts_to_monitor": []}
    for i in measured:
        tx_id = record["tx_ids"][i]
        if tx_id not in appended or tx_id not in alerted:
            continue
        stamps = (record["event_s"][i], appended[tx_id][1], record["detected_s"][i], alerted[tx_id][1],
                  record["received_s"][i])
        for name, before, after in zip(stages, stamps, stamps[1:], strict=False):
            stages[name].append(after - before)
    return {name: percentiles(values) for name, values in stages.items()}


def acknowledged(path: Path) -> set[str]:
    """The tx_ids a producer's --ack-log holds."""
    return set(path.read_text().split()) if path.exists() else set()


def parquet_ids(table_dir: Path) -> set[str]:
    """tx_ids in the Parquet files the sink committed (its _spark_metadata log)."""
    import pyarrow.parquet as pq

    files = committed_files(table_dir)
    if not files:
        return set()
    return set(pq.read_table([str(f) for f in files], columns=["tx_id"]).column("tx_id").to_pylist())


SLOWEST_KEPT = 5  # batches whose phases a result keeps, slowest first


def progress_phases(path: Path, since_ms: float) -> dict[str, Any]:
    """Per query, the mean, p50 and p99 of each durationMs phase over batches that read rows after
    `since_ms`, and the phases of its slowest batches (what the latency tail waited for)."""
    phases: dict[str, dict[str, list[float]]] = {}
    runs: dict[str, list[tuple[int, dict[str, Any]]]] = {}  # per query: (rows, durationMs) per batch
    for batch in read_progress(path):
        if not batch.get("numInputRows") or batch_start_s(batch) * 1e3 < since_ms:
            continue
        query = phases.setdefault(str(batch.get("name")), {})
        durations = batch.get("durationMs", {})
        for phase, ms in durations.items():
            query.setdefault(phase, []).append(float(ms))
        runs.setdefault(str(batch.get("name")), []).append((int(batch["numInputRows"]), durations))

    def trigger_ms(run: tuple[int, dict[str, Any]]) -> float:
        return float(run[1].get("triggerExecution", 0))

    return {
        q: {
            "batches": len(p.get("triggerExecution", [])),
            **{
                name: {"mean_ms": round(statistics.fmean(v), 1), "p50_ms": statistics.median(v),
                       "p99_ms": percentiles([ms / 1e3 for ms in v])["p99_ms"]}
                for name, v in sorted(p.items())
            },
            "slowest": [{"rows": rows, **durations}
                        for rows, durations in heapq.nlargest(SLOWEST_KEPT, runs[q], key=trigger_ms)],
            # Each batch as [rows, triggerExecution ms, addBatch ms]: fixed cost vs cost per row.
            "per_batch": [[rows, durations.get("triggerExecution", 0), durations.get("addBatch", 0)]
                          for rows, durations in runs[q][:200]],
        }
        for q, p in phases.items()
    }


# The job's own startup lines on stderr (spark_app.job.run), in seconds since its run() began.
STARTUP_MARKS = {
    "spark_session_s": re.compile(r"Spark session up in ([\d.]+) s"),
    "spark_queries_started_s": re.compile(r"queries started ([\d.]+) s after launch"),
}


def spark_startup_marks(stderr: Path, progress_log: Path) -> dict[str, Any]:
    """Where the job's startup went: session, queries started, and the first batch of each query."""
    text = stderr.read_text(errors="replace") if stderr.exists() else ""
    marks: dict[str, Any] = {}
    for name, pattern in STARTUP_MARKS.items():
        found = pattern.search(text)
        marks[name] = float(found.group(1)) if found else None
    for batch in read_progress(progress_log):
        key = f"first_{batch.get('name')}_batch_ms"
        if batch.get("numInputRows") and key not in marks:
            # The first batch with rows plans and compiles the query: its phases show where that went.
            marks[key] = batch.get("durationMs", {})
    return marks


def spark_figures(metrics: list[dict[str, Any]], since: float, until: float) -> dict[str, Any]:
    """Per query: rows, batches and rows/s over the measured window, from the `metrics` topic."""
    result: dict[str, Any] = {}
    for query in (QUERY_ALERTS, QUERY_PARQUET):
        batches = [
            m
            for m in metrics
            if m["query"] == query and since <= m["received_s"] <= until and m["num_input_rows"]
        ]
        rows = sum(m["num_input_rows"] for m in batches)
        busy_s = sum(m["batch_duration_ms"] for m in batches) / 1e3
        durations = sorted(m["batch_duration_ms"] for m in batches)
        result[query] = {
            "batches": len(batches),
            "rows": rows,
            "rows_per_s_wall": round(rows / (until - since), 1) if until > since else None,
            # Spark's processedRowsPerSecond over the window: rows over time spent inside batches.
            "processed_rows_per_s": round(rows / busy_s, 1) if busy_s else None,
            "batch_ms_p50": durations[len(durations) // 2] if durations else None,
            "batch_ms_max": durations[-1] if durations else None,
        }
    return result


class Run:
    """One pipeline run's processes, in a temp folder; everything is stopped on exit, pass or fail."""

    def __init__(self, options: Options, stack: ExitStack, folder: Path) -> None:
        self.options = options
        self.stack = stack
        self.folder = folder
        self.sampler = ProcessSampler()
        self.children: dict[str, Child] = {}
        self.backlog: list[tuple[float, int, int | None]] = []  # (wall, produced end, alerts offset)

    def child(self, name: str, command: list[str], env: dict[str, str] | None = None) -> Child:
        """Start a child; it is stopped when the run ends, however it ends."""
        started = Child(name, command, self.folder, env)
        self.children[name] = started
        self.stack.callback(started.stop)
        self.sampler.watch(name, started.pid)
        return started

    def tail_status(self) -> dict[str, Any]:
        """The tail's newest status line."""
        line = self.children["tail"].last_line()
        return orjson.loads(line) if line and line.startswith("{") else {}

    def wait_status(
        self, test: Callable[[dict[str, Any]], bool], timeout: float, what: str
    ) -> dict[str, Any]:
        """Poll the tail's status until `test` passes; raise TimeoutError naming `what`."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.tail_status()
            if status and test(status):
                return status
            for name in ("tail", "spark_driver"):
                child = self.children.get(name)
                if child is not None and child.process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({child.process.returncode}):\n{child.stderr_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not reached within {timeout:.0f} s; tail status {status}")
            time.sleep(0.2)


def reached(status: dict[str, Any], query: str, target: int) -> bool:
    """True when `query`'s last batch in the tail's status ended at or past `target`."""
    return int(status.get("end_offsets", {}).get(query, {}).get("0", -1)) >= target


def run(options: Options) -> dict[str, Any]:
    """Run the pipeline once; return every figure."""
    python = sys.executable
    result: dict[str, Any] = {
        "kind": "pipeline",
        "machine": machine.machine(),
        "offered_rate": options.rate,
        "duration_s": options.duration,
        "mode": options.mode,
        "spark_args": list(options.spark_args),
        "tail_args": list(options.tail_args),
    }
    with tempfile.TemporaryDirectory(prefix="txmon-bench-") as tmp, ExitStack() as stack:
        folder = Path(tmp)
        r = Run(options, stack, folder)
        r.sampler.start()
        stack.callback(r.sampler.stop)
        began_wall = time.time()
        progress("starting the embedded broker")
        broker = EmbeddedBroker(folder / "broker")
        broker.start()
        stack.callback(broker.stop)
        broker.wait_ready(COLD_START_TIMEOUT)
        assert broker.pid is not None
        r.sampler.watch("broker", broker.pid)
        bootstrap = broker.bootstrap
        topics.ensure_topics({"bootstrap.servers": bootstrap}, (topics.TRANSACTIONS, topics.ALERTS),
                             config=APPEND_TIME)
        topics.ensure_topics({"bootstrap.servers": bootstrap}, topics.ALL)
        broker_ready_s = time.time() - began_wall

        tail = r.child(
            "tail",
            [
                python,
                "-m",
                "bench.tail",
                "-b",
                bootstrap,
                "--out",
                str(folder / "tail.json"),
                *options.tail_args,
            ],
        )
        tail.wait_line(lambda line: line == TAIL_READY_LINE, 60)
        spark_launch_wall = time.time()
        progress(
            f"broker up in {broker_ready_s:.1f} s; starting Spark ({options.mode}) and a warm-up producer"
        )
        spark_command = [
            python,
            "-m",
            "spark_app",
            "-b",
            bootstrap,
            "--data-dir",
            str(folder / "data"),
            "--mode",
            options.mode,
            "--progress-log",
            str(folder / "progress.jsonl"),
            "--parquet-trigger",
            f"{options.parquet_trigger:g}",
        ]
        spark_command += list(options.spark_args)
        if options.max_offsets_per_trigger:
            spark_command += ["--max-offsets-per-trigger", str(options.max_offsets_per_trigger)]
        spark = r.child("spark_driver", spark_command)
        r.sampler.watch("spark_jvm", finder=lambda: java_descendant(spark.pid))
        warmup = r.child(
            "warmup_producer",
            [
                python,
                "-m",
                "producer",
                "-b",
                bootstrap,
                "--rate",
                str(WARMUP_RATE),
                "--seed",
                str(WARMUP_SEED),
                "--ack-log",
                str(folder / "ack-warmup.log"),
                *amount_args(options),
            ],
        )
        ready_wall, _ = spark.wait_line(ready.is_job_line, COLD_START_TIMEOUT)
        first = r.wait_status(
            lambda s: s.get("first_received_s") is not None, COLD_START_TIMEOUT, "the first alert"
        )["first_received_s"]
        result["startup"] = {
            "broker_ready_s": round(broker_ready_s, 2),
            "spark_ready_after_launch_s": round(ready_wall - spark_launch_wall, 2),
            "cold_start_to_first_alert_s": round(first - began_wall, 2),
            "broker_up_to_first_alert_s": round(first - spark_launch_wall, 2),
        }
        progress(f"first alert {first - began_wall:.1f} s after start; draining the warm-up")
        warmup.stop()
        target = end_offset(bootstrap)
        r.wait_status(
            lambda s: reached(s, QUERY_ALERTS, target) and reached(s, QUERY_PARQUET, target),
            options.drain_timeout,
            "the warm-up drained",
        )

        progress(f"producing {options.rate:g} tx/s for {options.duration:g} s")
        r.sampler.mark()
        jvm = java_descendant(spark.pid)
        if options.spark_jfr is not None and jvm is not None:
            flight_recording(jvm, "start", options.spark_jfr)
        window_start = time.time()
        producer = r.child(
            "producer",
            [
                python,
                "-m",
                "producer",
                "-b",
                bootstrap,
                "--rate",
                f"{options.rate:g}",
                "--seed",
                str(MEASURED_SEED),
                "--ack-log",
                str(folder / "ack.log"),
                *amount_args(options),
            ],
        )
        producing_wall, _ = producer.wait_line(ready.is_producer_line, 60)
        start_offset = end_offset(bootstrap)
        start_offset_wall = time.time()
        stop_at = time.monotonic() + options.duration
        while time.monotonic() < stop_at:
            time.sleep(min(1.0, max(0.0, stop_at - time.monotonic())))
            status = r.tail_status()
            alerts_end = status.get("end_offsets", {}).get(QUERY_ALERTS, {}).get("0")
            r.backlog.append((time.time(), end_offset(bootstrap), alerts_end))
        stop_offset = end_offset(bootstrap)
        stop_wall = time.time()
        r.sampler.sample_now()
        producer.stop()
        summary = producer.last_line() or ""
        target = end_offset(bootstrap)
        progress(f"producer stopped ({summary}); draining to offset {target}")
        drained = True
        try:
            r.wait_status(
                lambda s: (
                    reached(s, QUERY_ALERTS, target) and reached(s, QUERY_PARQUET, target)
                ),
                options.drain_timeout,
                "the drain",
            )
        except TimeoutError as exc:
            drained = False
            progress(str(exc))
        drained_wall = time.time()
        if options.mode == MODE_REALTIME:
            # Real-time Mode's query reports progress once per (5-minute) batch, not per record: the
            # drain above is the micro-batch query's; this one waits for its alerts to stop arriving.
            settle_topic(bootstrap, topics.ALERTS, quiet_s=3.0, timeout=options.drain_timeout)
        # Read late: the listener logs a batch's progress after its rows have reached the tail.
        result["startup"].update(spark_startup_marks(spark.stderr_path, folder / "progress.jsonl"))
        time.sleep(1.0)  # the last alerts of the last batch: written before its metrics, read a poll later
        r.sampler.sample_now()
        window_s = drained_wall - window_start
        processes = r.sampler.report(window_s)
        if options.spark_jfr is not None and jvm is not None:
            flight_recording(jvm, "stop", options.spark_jfr)
        tail.stop()
        spark_code = spark.stop()
        if spark_code != 0:
            result["spark_stderr_tail"] = spark.stderr_tail(15)
        record = orjson.loads((folder / "tail.json").read_bytes())

        progress("auditing: transactions topic, ack logs, Parquet")
        appended = read_topic_stamps(bootstrap, topics.TRANSACTIONS, target)
        amounts = {tx_id: amount for tx_id, (amount, _) in appended.items()}
        acked = acknowledged(folder / "ack.log")
        acked_all = acked | acknowledged(folder / "ack-warmup.log")
        received = set(record["tx_ids"])
        alerted = read_topic_stamps(bootstrap, topics.ALERTS, field="level")
        stored = parquet_ids(folder / "data" / large_table.DIR_NAME)
        flagged = {t for t in acked_all if amounts.get(t, 0.0) > DEFAULT_LARGE_THRESHOLD}
        alerts = {t for t in flagged if amounts[t] > DEFAULT_ALERT_THRESHOLD}
        lost = {
            "acknowledged_not_in_topic": len(acked_all - amounts.keys()),
            "alerts_missing_from_alerts_topic": len(alerts - alerted.keys()),
            "large_missing_from_alerts_topic": len((flagged - alerts) - alerted.keys()),
            "flagged_missing_from_parquet": len(flagged - stored),
        }
        missing = sorted((flagged - alerted.keys()), key=lambda t: appended[t][1])
        # When the lost ones were appended to `transactions`, next to each query's batch times: a loss
        # that clusters at a batch boundary says which query dropped it.
        result["missing_appended_at"] = [round(appended[t][1], 3) for t in missing[:100]]
        result["batch_times"] = batch_times(folder / "progress.jsonl")
        # In the topic but not read by the monitor's tail before it stopped: the bench's, not a loss.
        result["in_alerts_not_received_by_tail"] = len((flagged & alerted.keys()) - received)
        measured = [i for i, t in enumerate(record["tx_ids"]) if t in acked]
        latency = [record["received_s"][i] - record["event_s"][i] for i in measured]
        in_spark = [record["detected_s"][i] - record["event_s"][i] for i in measured]
        delivery = [record["received_s"][i] - record["detected_s"][i] for i in measured]
        alert_level = [latency[n] for n, i in enumerate(measured) if record["levels"][i]]
        ingest = (stop_offset - start_offset) / (stop_wall - start_offset_wall)
        result.update(
            {
                "achieved_ingest_rate": round(ingest, 1),
                "producer_summary": summary,
                "produced_in_window": target - start_offset,
                "acknowledged": len(acked),
                "drained": drained,
                "drain_s": round(drained_wall - stop_wall, 2),
                "spark": spark_figures(record["metrics"], producing_wall, drained_wall),
                "spark_phases_ms": progress_phases(folder / "progress.jsonl", producing_wall * 1e3),
                "spark_exit_code": spark_code,
                "latency": {
                    "flagged": percentiles(latency),
                    "alert_level": percentiles(alert_level),
                    "ts_to_detected_at": percentiles(in_spark),
                    "detected_at_to_tail": percentiles(delivery),
                    "stages": stage_latencies(record, measured, appended, alerted),
                },
                "lost": sum(lost.values()),
                "lost_detail": lost,
                "duplicates": record["duplicates"],
                "undecodable": record["undecodable"],
                "backlog": backlog_figures(r.backlog, options.rate),
                "processes": processes,
                "load_at_end": machine.load(),
            }
        )
    # The JVM's CPU per micro-batch with rows: at low rates the fixed cost of a batch, to set against
    # the floor's (a batch that does nothing).
    jvm_s = result.get("processes", {}).get("spark_jvm", {}).get("cpu_s_in_window")
    batches = result.get("spark", {}).get(QUERY_ALERTS, {}).get("batches")
    result["jvm_cpu_ms_per_batch"] = round(jvm_s * 1e3 / batches, 1) if jvm_s and batches else None
    if options.floor_seconds > 0:
        progress(f"reference: Spark's micro-batch floor ({options.floor_seconds:g} s of rate → noop)")
        result["reference_floor"] = floor(options.floor_seconds)
        floor_p50 = result["reference_floor"].get("batch_ms_p50")
        p50 = result["latency"]["flagged"]["p50_ms"]
        result["latency_p50_over_floor_p50"] = round(p50 / floor_p50, 2) if p50 and floor_p50 else None
        floor_cpu = result["reference_floor"].get("jvm_cpu_ms_per_batch")
        mine = result["jvm_cpu_ms_per_batch"]
        result["jvm_cpu_per_batch_over_floor"] = round(mine / floor_cpu, 2) if mine and floor_cpu else None
    goal_p50, goal_p99 = LATENCY_GOALS_S.get(options.mode, (None, None))
    result["goals"] = {
        "latency_p50_ms": goal_p50 and goal_p50 * 1e3,
        "latency_p99_ms": goal_p99 and goal_p99 * 1e3,
        "lost": 0,
        "cold_start_to_first_alert_s": 20,
        "broker_up_to_first_alert_s": 10,
    }
    return result


def flight_recording(pid: int, action: str, folder: Path) -> None:
    """Start, or stop and write, a Java Flight Recording (profile settings) of a running JVM, via jcmd."""
    from txmon_core import jars

    folder.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(jars.find_tool("java")).resolve().with_name("jcmd")),
        str(pid),
        f"JFR.{action}",
        "name=bench",
    ]
    if action == "start":
        command += ["settings=profile"]
    else:
        command += [f"filename={folder / 'spark.jfr'}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    progress(f"jcmd JFR.{action}: {(done.stdout or done.stderr).strip().splitlines()[-1:]}")


def backlog_figures(samples: list[tuple[float, int, int | None]], rate: float) -> dict[str, Any]:
    """Records produced but not yet read by the alerts query, sampled each second while producing.

    Bounded means the second half's trend grows by under 5 % of the offered rate per second.
    """
    points = [(t, produced - done) for t, produced, done in samples if done is not None]
    if len(points) < 4:
        return {"samples": len(points), "max": None, "slope_per_s": None, "bounded": None}
    half = points[len(points) // 2 :]
    slope = statistics.linear_regression([t for t, _ in half], [b for _, b in half]).slope
    return {
        "samples": len(points),
        "max": max(b for _, b in points),
        "last": points[-1][1],
        "slope_per_s": round(slope, 1),
        "bounded": slope < 0.05 * rate,
    }


def floor(seconds: float) -> dict[str, Any]:
    """Spark's micro-batch floor, measured in a fresh process (see bench.floor)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "bench.floor", "--seconds", f"{seconds:g}"],
            capture_output=True,
            text=True,
            timeout=seconds + 300,
            start_new_session=True,
        )
    except subprocess.TimeoutExpired:
        return {"error": "timed out"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"error": f"exit {done.returncode}: {done.stderr[-500:]}"}
    figures: dict[str, Any] = orjson.loads(lines[-1])
    figures["load_at_end"] = machine.load()
    return figures


def save(result: dict[str, Any], kind: str, folder: Path | None = None) -> Path:
    """Write a result to bench/results/<UTC timestamp>-<kind>.json; return its path."""
    folder = folder or Path(__file__).with_name("results")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{kind}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
    return path


def results(folder: Path | None = None, kind: str = "pipeline") -> Iterator[tuple[Path, dict[str, Any]]]:
    """Saved results of one kind, oldest first."""
    folder = folder or Path(__file__).with_name("results")
    for path in sorted(folder.glob(f"*-{kind}.json")):
        yield path, orjson.loads(path.read_bytes())
