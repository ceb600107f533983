"""The monitor while its broker is down: it says so, and once the broker is back it carries on by itself.

The broker is ours (a fixed port, its own folder), named to the monitor with -b as a cluster's would be;
the monitor runs its own producer and Spark job on it, under Pilot. The broker is stopped, then started
again on the same port and data: nobody touches the monitor in between.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.tui.conftest import tailing, until
from txmon_core.broker import EmbeddedBroker, free_port
from txmon_tui.app import create_app
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.widgets import HealthPanel

pytestmark = [pytest.mark.integration, pytest.mark.tui]

FIRST_ALERTS_TIMEOUT = 300.0  # Spark session and first batch on 2 busy cores
RESUME_TIMEOUT = 300.0  # the job may have died meanwhile: backoff (≤ 60 s) plus a new Spark session
UNREACHABLE = "Kafka broker unreachable"


@pytest.mark.timeout(1200)
async def test_monitor_says_the_broker_is_down_and_resumes_when_it_is_back(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path / "broker", port=free_port())
    await asyncio.to_thread(broker.start)
    try:
        await asyncio.to_thread(broker.wait_ready, 120)
        app = create_app(PipelineConfig(bootstrap=broker.bootstrap, data_dir=tmp_path / "data", rate=200))
        async with app.run_test(size=(120, 40)) as pilot:
            health = app.query_one(HealthPanel)
            await tailing(pilot, app)
            await until(pilot, lambda: app.model.snapshot().alerts > 0, "the first alerts",
                        timeout=FIRST_ALERTS_TIMEOUT)
            port = broker.port
            await asyncio.to_thread(broker.stop)
            await until(pilot, lambda: UNREACHABLE in health.text(),
                        "the health panel saying the broker is down", timeout=30)
            assert "⚠" in str(app.query_one("#status").render())
            seen = app.model.snapshot().alerts

            await asyncio.to_thread(broker.start)
            assert broker.port == port
            await asyncio.to_thread(broker.wait_ready, 120)
            await until(pilot, lambda: UNREACHABLE not in health.text(), "the warning to clear", timeout=30)
            await until(pilot, lambda: app.model.snapshot().alerts > seen,
                        "new alerts after the broker came back", timeout=RESUME_TIMEOUT)
            assert app.pipeline is not None
            print(f"\nbroker down and back: {app.model.snapshot().alerts - seen} new alerts; "
                  f"automatic restarts {app.pipeline.restarts}")
    finally:
        await asyncio.to_thread(broker.stop)
