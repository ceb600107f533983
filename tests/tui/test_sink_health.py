"""The alert sinks' health in the health panel, from real sinks: a JSONL file and an unreachable webhook."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.tui.conftest import make_alert, until
from txmon_sinks.outlets import Outlets
from txmon_tui.app import create_app
from txmon_tui.monitor.tail import TailBatch
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.widgets import HealthPanel

pytestmark = pytest.mark.tui


async def test_health_panel_shows_each_sink(tmp_path: Path) -> None:
    settings = {"sinks": {"jsonl": {"path": str(tmp_path / "alerts.jsonl")},
                          "webhook": {"url": "http://127.0.0.1:9/alerts", "timeout_s": 1}}}
    outlets = Outlets.from_settings(settings, tmp_path)
    outlets.start()
    try:
        app = create_app(PipelineConfig(data_dir=tmp_path), supervise=False)
        app.outlets = outlets
        async with app.run_test(size=(160, 48)) as pilot:
            panel = app.query_one(HealthPanel)
            await until(pilot, lambda: "sink jsonl ok" in panel.text(), "the JSONL sink, ok")
            outlets.take(TailBatch([make_alert("sink-1", 950.0)], received_at=time.time()))
            await until(pilot, lambda: "sink jsonl ok · sent 1" in panel.text(), "one alert written")
            await until(pilot, lambda: "sink webhook retrying" in panel.text(), "the webhook retried")
    finally:
        outlets.close()
