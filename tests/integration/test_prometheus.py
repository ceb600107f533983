"""The monitor's metrics endpoint scraped by a real Prometheus (Debian's package), and every PromQL
expression of dashboards/txmon-grafana.json evaluated through Prometheus's HTTP API, each returning data.

The monitor runs as the service does (`--headless`, no producer or Spark of its own, JSONL and database
delivery on) against the test broker, fed with transactions, alerts and batch metrics by a thread that
stands in for the producer and the Spark job; Prometheus scrapes it every second.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from tests.support.waiting import wait_until
from txmon_core.broker import EmbeddedBroker
from txmon_core.records.alert import Alert
from txmon_core.records.metrics import QUERY_ALERTS, BatchMetrics, encode_metrics
from txmon_core.records.transaction import format_ts
from txmon_core.topics import ALERTS, METRICS, TRANSACTIONS, ensure_topics

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboards" / "txmon-grafana.json"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def feed(bootstrap: str, stop: threading.Event) -> None:
    """Stand in for producer and Spark: 20 transactions per 0.2 s, one in ten an alert (0.3 s after its
    event time), one in a hundred a large transaction, and the batch's metrics."""
    producer = Producer({"bootstrap.servers": bootstrap})
    n = batch_id = 0
    while not stop.wait(0.2):
        event = format_ts(int((time.time() - 0.3) * 1000))
        now = format_ts(int(time.time() * 1000))
        for _ in range(20):
            producer.produce(TRANSACTIONS, b"{}")
            if n % 10 == 0:
                level = "large" if n % 100 == 0 else "alert"
                alert = Alert(f"pm-{n}", "RO49RZBR0000060012345678", "Lidl", 950.0, "RON", event, level,
                              "amount>900", now)
                producer.produce(ALERTS, orjson.dumps(dataclasses.asdict(alert)))
            n += 1
        batch_id += 1
        metrics = BatchMetrics(QUERY_ALERTS, batch_id, now, 20, 100.0, 1000.0, 20, {"0": n}, 0, 2, 0)
        producer.produce(METRICS, encode_metrics(metrics))
        producer.poll(0)
    producer.flush(10)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def monitor(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[int]:
    """The headless monitor with delivery and its metrics endpoint, fed for as long as the test runs."""
    ensure_topics({"bootstrap.servers": broker.bootstrap})
    port = free_port()
    settings = tmp_path / "txmon.toml"
    settings.write_text('[sinks.jsonl]\n\n[storage]\n')
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TXMON_BOOTSTRAP_SERVERS", None)
    service = subprocess.Popen(
        [sys.executable, "-m", "txmon_tui", "--headless", "-b", broker.bootstrap, "--no-producer",
         "--no-spark", "--data-dir", str(tmp_path / "data"), "--settings", str(settings),
         "--metrics-port", str(port)],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "monitor.log", "w"), env=env, cwd=ROOT)
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(broker.bootstrap, stop))
    feeder.start()
    try:
        wait_until(lambda: ready(f"http://127.0.0.1:{port}/metrics") or service.poll() is not None, 60,
                   "the monitor's metrics endpoint")
        assert service.poll() is None, (tmp_path / "monitor.log").read_text()
        yield port
    finally:
        stop.set()
        feeder.join(30)
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(60)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()


@pytest.fixture
def prometheus(monitor: int, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the monitor every second; its API URL. Stopped however the test ends."""
    binary = shutil.which("prometheus")
    assert binary, "Prometheus is not installed: apt-get install prometheus (.ci/run does)"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: txmon\n    static_configs: [{{targets: ['127.0.0.1:{monitor}']}}]\n")
    port = free_port()
    log = open(tmp_path / "prometheus.log", "w")
    server = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        wait_until(lambda: ready(f"http://127.0.0.1:{port}/-/ready") or server.poll() is not None, 60,
                   "Prometheus ready")
        assert server.poll() is None, (tmp_path / "prometheus.log").read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def query(api: str, expression: str) -> list[dict[str, Any]]:
    """The instant vector of `expression` now (fails on a PromQL error)."""
    answer = get_json(f"{api}/api/v1/query?" + urllib.parse.urlencode({"query": expression}))
    assert answer["status"] == "success", (expression, answer)
    return answer["data"]["result"]


def has_data(api: str, expression: str) -> bool:
    """At least one series with a number (not NaN: a histogram_quantile or a ratio over no data)."""
    return any(math.isfinite(float(series["value"][1])) for series in query(api, expression))


def test_every_dashboard_expression_returns_data_from_a_real_prometheus(
    prometheus: str, monitor: int
) -> None:
    expressions = dashboard_expressions()
    assert len(expressions) >= 10
    target = wait_until(lambda: [t for t in get_json(f"{prometheus}/api/v1/targets")["data"]["activeTargets"]
                                 if t["health"] == "up"], 30, "the monitor scraped")
    assert target[0]["scrapeUrl"] == f"http://127.0.0.1:{monitor}/metrics"
    # Rates need a few scrapes of moving counters.
    wait_until(lambda: has_data(prometheus, "rate(txmon_alerts_total[1m]) > 0"), 60, "alerts arriving")
    empty = []
    for expression in expressions:
        try:
            wait_until(lambda e=expression: has_data(prometheus, e), 15, expression)
        except AssertionError:
            empty.append(expression)
    assert empty == [], f"dashboard expressions with no data: {empty}"
