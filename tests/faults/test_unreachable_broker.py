"""Nothing listens at -b: the Spark job and the headless monitor say so in one line, in seconds.

Port 1 on 127.0.0.1 refuses every connection, as a broker that is down does; no JVM starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from txmon_core.options import BOOTSTRAP_ENV, EXIT_NOT_STARTED

NOBODY = "127.0.0.1:1"
PROMISED = 10.0  # seconds, from the command's start to its error line
STARTUP_ALLOWANCE = 5.0  # interpreter and imports on 2 cores shared with other test runs


def run(*args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if k != BOOTSTRAP_ENV}
    started = time.monotonic()
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, env=env)
    return result, time.monotonic() - started


def test_spark_job_says_the_broker_is_unreachable(tmp_path: Path) -> None:
    result, took = run("-m", "spark_app", "-b", NOBODY, "--data-dir", str(tmp_path))
    assert result.returncode == 1, result.stderr
    assert took < PROMISED + STARTUP_ALLOWANCE, f"took {took:.1f} s"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"txmon-spark: error: cannot reach Kafka at {NOBODY} within"), lines
    assert result.stdout == ""
    assert not (tmp_path / "checkpoints").exists()  # it gave up before Spark started


@pytest.mark.parametrize("children", [["--with-spark", "--with-producer"], []], ids=["all", "none"])
def test_headless_monitor_says_the_broker_is_unreachable(tmp_path: Path, children: list[str]) -> None:
    result, took = run("-m", "txmon_tui", "--headless", "-b", NOBODY, "--duration", "30",
                       "--data-dir", str(tmp_path), *children)
    assert result.returncode == EXIT_NOT_STARTED, result.stderr  # not 2: that is a usage error
    assert took < PROMISED + STARTUP_ALLOWANCE, f"took {took:.1f} s"
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"txmon-tui: error: broker: no Kafka broker answered at {NOBODY} within"), (
        result.stderr)
    assert "is it running" in last
    assert '"stalled": true' in result.stdout  # the JSON summary still comes, for scripts
