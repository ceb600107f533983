"""The monitor feeds the Prometheus endpoint: each repaint publishes the model's totals, scraped over HTTP."""

from __future__ import annotations

import socket
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.tui.conftest import make_alert, until
from txmon_sinks import Delivery, Outlets
from txmon_sinks.config import delivery_config
from txmon_tui.app import create_app
from txmon_tui.messages import RecordsReceived
from txmon_tui.monitor.tail import TailBatch
from txmon_tui.supervise.config import PipelineConfig

pytestmark = pytest.mark.tui


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def alerts_total(url: str) -> float:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return next(sample.value for family in text_string_to_metric_families(text)
                for sample in family.samples if sample.name == "txmon_alerts_total")


async def test_repaints_publish_the_models_totals_to_the_endpoint(tmp_path: Path) -> None:
    outlets = Outlets(Delivery(delivery_config({"storage": {"enabled": False}}, tmp_path)),
                      metrics_port=free_port())
    outlets.start()
    try:
        assert outlets.metrics_url is not None
        url = outlets.metrics_url
        app = create_app(PipelineConfig(data_dir=tmp_path), supervise=False)
        app.outlets = outlets
        alerts = [make_alert(f"tx-metrics-{n}", 950.0 + n) for n in range(3)]
        async with app.run_test(size=(120, 40)) as pilot:
            app.post_message(RecordsReceived([TailBatch(alerts + alerts[:1], received_at=time.time())]))
            await until(pilot, lambda: alerts_total(url) == 3, "3 alerts on the metrics endpoint")
    finally:
        outlets.close()
