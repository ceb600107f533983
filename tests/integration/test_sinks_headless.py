"""Alert delivery wired into `--headless` against the real broker: alerts read from the `alerts` topic
(each twice) land once in the JSONL file and the database, and the metrics endpoint serves the run."""

from __future__ import annotations

import dataclasses
import io
import json
import socket
import threading
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families

from producer.transaction import format_ts
from spark_app.formats import Alert
from tests.conditions import wait_until
from txmon_core.broker import EmbeddedBroker
from txmon_core.topics import ALERTS, ensure_topics
from txmon_sinks import AlertStore, Delivery, Outlets
from txmon_sinks.config import delivery_config
from txmon_tui.monitor import headless
from txmon_tui.supervise.config import PipelineConfig

pytestmark = pytest.mark.integration


def feed_alerts(bootstrap: str, stop: threading.Event) -> None:
    """Stand in for Spark: 5 alerts every 0.2 s, each written twice (the topic is at-least-once)."""
    producer = Producer({"bootstrap.servers": bootstrap})
    n = 0
    while not stop.wait(0.2):
        now = format_ts(int(time.time() * 1000))
        for _ in range(5):
            alert = Alert(f"sk-{n}", "RO49RZBR0000060012345678", "Lidl", 950.0, "RON", now, "alert",
                          "amount>900", now)
            for _ in range(2):
                producer.produce(ALERTS, orjson.dumps(dataclasses.asdict(alert)))
            n += 1
        producer.poll(0)
    producer.flush(10)


def scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {sample.name + json.dumps(sample.labels, sort_keys=True): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_headless_delivers_each_alert_once_and_serves_metrics(broker: EmbeddedBroker, tmp_path: Path) -> None:
    ensure_topics({"bootstrap.servers": broker.bootstrap})
    config = PipelineConfig(bootstrap=broker.bootstrap, data_dir=tmp_path, run_producer=False,
                            run_spark=False)
    settings = {"sinks": {"jsonl": {}}, "storage": {}}
    outlets = Outlets(Delivery(delivery_config(settings, tmp_path)), metrics_port=free_port())
    outlets.start()
    assert outlets.metrics_url is not None
    url = outlets.metrics_url
    stop = threading.Event()
    feeder = threading.Thread(target=feed_alerts, args=(broker.bootstrap, stop))
    seen: dict[str, float] = {}

    def watch() -> None:
        # While the run lasts: wait for the endpoint to show alerts delivered to the file.
        while not stop.is_set():
            try:
                sample = scrape(url)
            except OSError:
                sample = {}
            delivered = sample.get('txmon_sink_sent_total{"sink": "jsonl"}', 0)
            if sample.get("txmon_alerts_total{}", 0) > 0 and delivered > 0:
                seen.update(sample)
                return
            stop.wait(0.2)

    scraper = threading.Thread(target=watch)
    out, err = io.StringIO(), io.StringIO()
    feeder.start()
    scraper.start()
    try:
        # Long enough on a busy machine: delivery first reads the shared triage (silences) once.
        code = headless.run(config, duration=20.0, out=out, err=err, outlets=outlets)
    finally:
        stop.set()
        feeder.join(30)
        scraper.join(30)
    report = json.loads(out.getvalue())
    assert code in (headless.EXIT_OK, headless.EXIT_STALLED), err.getvalue()
    assert seen, "the metrics endpoint never showed delivered alerts during the run"
    assert seen["txmon_detection_latency_seconds_count{}"] > 0
    sinks = {sink["name"]: sink for sink in report["delivery"]["sinks"]}
    assert set(sinks) == {"database", "jsonl"} and sinks["jsonl"]["state"] == "ok"
    distinct = report["alerts"]
    assert distinct > 0 and report["duplicates_dropped"] > 0
    # What was still pending when the run ended goes out on the next start.
    with Delivery.from_settings(settings, tmp_path) as after:
        wait_until(lambda: all(h.pending == 0 for h in after.health()), 20, "the outbox drained")
    lines = [orjson.loads(line)["tx_id"] for line in (tmp_path / "alerts.jsonl").read_bytes().splitlines()]
    assert len(lines) == len(set(lines)) == distinct
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.sqlite'}")
    try:
        assert store.counts_per_level() == {"alert": distinct}
    finally:
        store.close()
