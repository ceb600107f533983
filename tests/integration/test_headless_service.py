"""`txmon-tui --headless` without --duration: a service that runs until SIGTERM, then stops cleanly."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.support.waiting import wait_until
from txmon_core.broker import EmbeddedBroker

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()
    except OSError:
        return None


def test_headless_without_duration_serves_until_sigterm(broker: EmbeddedBroker, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("TXMON_BOOTSTRAP_SERVERS", None)
    service = subprocess.Popen(
        [sys.executable, "-m", "txmon_tui", "--headless", "-b", broker.bootstrap, "--no-producer",
         "--no-spark", "--data-dir", str(tmp_path), "--metrics-port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(service.stderr.readline, "")), daemon=True)
    reader.start()
    try:
        def metrics_or_exit() -> str | None:
            if service.poll() is not None:
                pytest.fail(f"the service ended by itself ({service.returncode}): {''.join(lines)}")
            return scrape(f"http://127.0.0.1:{port}/metrics")

        metrics = wait_until(metrics_or_exit, 60, "the metrics endpoint")
        assert "txmon_produced_total" in metrics
        # Producer and Spark are skipped: once the topics are there, the service is up.
        wait_until(lambda: any(re.search(r"topics [\d.]+ s done", line) for line in lines), 30,
                   "the topics step done")
        # It keeps running: a service has no end of its own (the old code refused to start without one).
        assert service.poll() is None, "".join(lines)
        service.send_signal(signal.SIGTERM)
        out, _ = service.communicate(timeout=60)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    reader.join(10)
    assert service.returncode == 0, "".join(lines)
    summary = json.loads(out)
    assert summary["interrupted"] is True and summary["error"] is None
    assert summary["delivery"]["metrics_url"] == f"http://127.0.0.1:{port}/metrics"
    logged = [line.rstrip("\n") for line in lines]
    assert logged and all(line.startswith("txmon-tui: ") for line in logged), logged
    assert len(logged) == len(set(logged)), f"a state was logged twice: {logged}"
    assert scrape(f"http://127.0.0.1:{port}/metrics") is None, "the endpoint outlived the service"
