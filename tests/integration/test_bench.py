"""Smoke test of the pipeline benchmark: a few seconds at a low rate, every field present, nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.jvm]

TOP_LEVEL = {
    "kind", "machine", "offered_rate", "duration_s", "mode", "startup", "achieved_ingest_rate",
    "produced_in_window", "acknowledged", "drained", "drain_s", "spark", "spark_phases_ms", "latency",
    "lost", "lost_detail", "duplicates", "undecodable", "backlog", "processes", "load_at_end", "goals",
}  # fmt: skip
PROCESSES = {"broker", "spark_driver", "spark_jvm", "producer", "tail"}
PERCENTILES = {"count", "p50_ms", "p95_ms", "p99_ms", "max_ms"}


def test_pipeline_benchmark_smoke() -> None:
    command = [sys.executable, "-m", "bench", "pipeline", "--rate", "200", "--duration", "4", "--uniform",
               "--floor-seconds", "0", "--drain-timeout", "60", "--json", "--no-save"]  # fmt: skip
    # Its own process group, so a timeout takes down the harness and everything it started.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)  # fmt: skip
    try:
        out, err = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=90)
        pytest.fail(f"the benchmark did not finish in time:\n{err[-3000:]}")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, err[-3000:]
    result = json.loads(out)
    assert TOP_LEVEL <= result.keys(), TOP_LEVEL - result.keys()
    assert result["lost"] == 0, result["lost_detail"]
    assert result["drained"]
    assert PROCESSES <= result["processes"].keys(), result["processes"].keys()
    for figures in result["processes"].values():
        assert figures["cpu_s"] >= 0 and figures["peak_rss_mib"] > 0
    flagged = result["latency"]["flagged"]
    assert PERCENTILES <= flagged.keys()
    # About half of 800 transactions are above the large threshold; every one is timed.
    assert flagged["count"] > 200 and 0 < flagged["p50_ms"] <= flagged["p99_ms"] <= flagged["max_ms"]
    assert result["achieved_ingest_rate"] > 0 and result["spark"]["alerts"]["rows"] > 0
    assert {"cores", "memory_gib", "java", "python"} <= result["machine"].keys()
    assert result["startup"]["cold_start_to_first_alert_s"] > 0
