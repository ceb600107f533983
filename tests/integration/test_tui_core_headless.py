"""Headless runs: the JSON summary, the exit status, and nothing left running afterwards."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from pathlib import Path

import orjson
import psutil
import pytest
from confluent_kafka import Producer

from producer.transaction import format_ts
from spark_app.formats import QUERY_ALERTS, Alert, BatchMetrics, encode_metrics
from txmon_core.broker import EmbeddedBroker
from txmon_core.topics import ALERTS, METRICS, TRANSACTIONS, ensure_topics
from txmon_tui.monitor import headless
from txmon_tui.supervise.config import PipelineConfig

pytestmark = pytest.mark.integration
REPO = Path(__file__).parents[2]


def external(broker: EmbeddedBroker, data_dir: Path) -> PipelineConfig:
    """A pipeline on the test broker that runs neither producer nor Spark."""
    return PipelineConfig(bootstrap=broker.bootstrap, data_dir=data_dir, run_producer=False, run_spark=False)


def feed_pipeline(bootstrap: str, stop: threading.Event) -> None:
    """Stand in for producer and Spark: transactions, their alerts (twice) and metrics, 10 per 0.2 s."""
    producer = Producer({"bootstrap.servers": bootstrap})
    n = batch_id = 0
    while not stop.wait(0.2):
        now = format_ts(int(time.time() * 1000))
        for _ in range(10):
            producer.produce(TRANSACTIONS, b"{}")
            alert = Alert(f"hl-{n}", "RO00", "Lidl", 950.0, "RON", now, "alert", "amount>900", now)
            for _ in range(2):  # at-least-once delivery: the monitor must count it once
                producer.produce(ALERTS, orjson.dumps(dataclasses.asdict(alert)))
            n += 1
        batch_id += 1
        metrics = BatchMetrics(QUERY_ALERTS, batch_id, now, 10, 50.0, 500.0, 20, {"0": n}, 0, 10, 0)
        producer.produce(METRICS, encode_metrics(metrics))
        producer.poll(0)
    producer.flush(10)


def test_headless_summary_against_an_external_pipeline(broker: EmbeddedBroker, tmp_path: Path) -> None:
    ensure_topics({"bootstrap.servers": broker.bootstrap})
    config = external(broker, tmp_path)
    stop = threading.Event()
    feeder = threading.Thread(target=feed_pipeline, args=(broker.bootstrap, stop))
    out, err = io.StringIO(), io.StringIO()
    feeder.start()
    try:
        code = headless.run(config, duration=4.0, out=out, err=err)
    finally:
        stop.set()
        feeder.join()
    summary = json.loads(out.getvalue())
    assert code == 0, (summary, err.getvalue())
    assert summary["stalled"] is False and summary["warnings"] == []
    assert summary["alerts"] > 0 and summary["duplicates_dropped"] >= summary["alerts"] - 10
    assert summary["processed"] > 0 and summary["flagged"] > 0 and summary["produced"] > 0
    assert 0 <= summary["latency_p50_s"] <= summary["latency_p99_s"] < 5
    assert summary["steps"]["spark session"]["state"] == "skipped"
    assert 3.5 <= summary["duration_s"] < 10


def test_headless_reports_a_stall(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """Transactions are produced but no Spark reads them: stalled, exit 1."""
    ensure_topics({"bootstrap.servers": broker.bootstrap})
    config = external(broker, tmp_path)
    stop = threading.Event()

    def produce_only() -> None:
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        while not stop.wait(0.1):
            producer.produce(TRANSACTIONS, b"{}")
            producer.poll(0)
        producer.flush(10)

    feeder = threading.Thread(target=produce_only)
    out = io.StringIO()
    feeder.start()
    try:
        code = headless.run(config, duration=3.0, out=out, err=io.StringIO())
    finally:
        stop.set()
        feeder.join()
    summary = json.loads(out.getvalue())
    assert code == headless.EXIT_STALLED
    assert summary["stalled"] is True
    assert "transactions were produced but Spark processed none" in summary["stalled_because"]


COMMANDS_EXIST = (REPO / "spark_app" / "cli.py").exists() and (REPO / "producer" / "cli.py").exists()


@pytest.mark.skipif(not COMMANDS_EXIST, reason="producer/spark_app command lines not there yet")
def test_headless_real_pipeline_end_to_end(tmp_path: Path) -> None:
    """Embedded broker, real Spark job and producer: alerts flow, Parquet commits, nothing is left."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    out, err = io.StringIO(), io.StringIO()
    config = PipelineConfig(data_dir=tmp_path, rate=300, seed=11)
    # 90 s: on 2 busy cores the Spark session alone took 31 s to start and its first batch 35 s.
    code = headless.run(config, duration=90.0, out=out, err=err)
    summary = json.loads(out.getvalue())
    assert code == 0, (summary, err.getvalue())
    assert summary["produced"] > 0 and summary["processed"] > 0
    assert summary["alerts"] > 0 and summary["parquet_rows"] > 0
    assert summary["latency_p99_s"] is not None
    left = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not left
