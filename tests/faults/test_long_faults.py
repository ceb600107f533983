"""The long fault runs (minutes each): only with TXMON_LONG_TESTS=1.

    TXMON_LONG_TESTS=1 .venv/bin/pytest -s tests/faults -m long
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import psutil
import pytest

from tests.support.kafka import read_topic
from tests.support.rig import (
    JOB_RESUME_TIMEOUT,
    FaultRig,
    check_job_survived,
    kill_and_restart_broker,
    kill_and_restart_job,
)
from tests.support.waiting import wait_until
from txmon_core import topics
from txmon_core.records.metrics import QUERY_ALERTS, decode_metrics

pytestmark = [pytest.mark.integration, pytest.mark.long, pytest.mark.timeout(3600)]

SUSTAINED = "300"


def start_stream(rig: FaultRig) -> None:
    """A running job, and a producer at the sustained rate past its first acknowledgements."""
    job = rig.start_job()
    job.wait_ready()
    rig.start_producer(SUSTAINED).wait_acked(300)


def finish(rig: FaultRig, label: str, notes: list[str], bound_repeats: bool = False) -> None:
    """Stop the producer cleanly, audit, report and check (alert copies ≤ job runs, if `bound_repeats`)."""
    rig.wait_growth(topics.ALERTS, rig.end_offset(topics.ALERTS), JOB_RESUME_TIMEOUT, "alerts at the end")
    assert rig.producers[-1].stop() == 0, rig.producers[-1].output()
    audit = rig.audit()
    if bound_repeats:
        audit.job_runs = len(rig.jobs)
    audit.notes.extend(notes)
    print(f"\n{label}: {audit.summary()}")
    assert not audit.problems(), audit.problems()


def seconds(values: list[float]) -> str:
    return f"min {min(values):.1f} / median {sorted(values)[len(values) // 2]:.1f} / max {max(values):.1f}"


def test_job_killed_twenty_times_at_random(rig: FaultRig) -> None:
    start_stream(rig)
    recoveries = kill_and_restart_job(rig, kills=20, interval=(5.0, 30.0))
    finish(rig, "spark job SIGKILL x20", [f"recovery s {seconds(recoveries)}"], bound_repeats=True)


def test_broker_killed_five_times(rig: FaultRig) -> None:
    start_stream(rig)
    recoveries = kill_and_restart_broker(rig, times=5)
    check_job_survived(rig)
    finish(rig, "broker SIGKILL x5", [f"recovery s {seconds(recoveries)}"])
    check_job_survived(rig)


def test_broker_paused_for_thirty_seconds(rig: FaultRig) -> None:
    start_stream(rig)
    rig.wait_growth(topics.ALERTS, rig.end_offset(topics.ALERTS), JOB_RESUME_TIMEOUT, "alerts flowing")
    rig.broker.pause()
    paused_at = time.monotonic()
    time.sleep(30)  # the fault's duration, not a wait for a condition
    rig.broker.resume()
    baseline = rig.end_offset(topics.ALERTS)
    resumed = rig.wait_growth(topics.ALERTS, baseline, JOB_RESUME_TIMEOUT, "alerts after the pause")
    check_job_survived(rig)
    finish(rig, "broker SIGSTOP 30 s", [f"recovery s after SIGCONT {resumed - paused_at - 30:.1f}"])
    check_job_survived(rig)


def session_rss(pid: int) -> int:
    """Resident bytes of every process in the session `pid` leads (driver and JVM)."""
    total = 0
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getsid(proc.info["pid"]) == pid:
                total += proc.memory_info().rss
        except (psutil.NoSuchProcess, ProcessLookupError, PermissionError):
            continue
    return total


def test_burst_of_ten_times_the_rate(rig: FaultRig) -> None:
    start_stream(rig)
    job = rig.jobs[-1]
    rig.wait_growth(topics.ALERTS, rig.end_offset(topics.ALERTS), JOB_RESUME_TIMEOUT, "alerts flowing")
    before = session_rss(job.process.pid)
    # The sustained producer keeps going; a second one adds 9x for 60 s (--count at its rate).
    rate = int(SUSTAINED) * 9
    burst = rig.start_producer(str(rate), "--count", str(rate * 60))
    peak = before
    burst_end = time.monotonic() + 90
    while burst.process.poll() is None and time.monotonic() < burst_end:
        peak = max(peak, session_rss(job.process.pid))
        time.sleep(1.0)  # sampling memory once a second while the burst runs
    assert burst.process.wait(120) == 0, burst.output()
    ended = time.monotonic()
    rig.producers.remove(burst)
    rig.producers.insert(0, burst)  # keep its ack log in the audit; the last run is the sustained one
    target = rig.end_offset(topics.TRANSACTIONS)
    wait_until(lambda: job.process.poll() is None and _alerts_caught_up(rig, target), 600,
               "the backlog to drain")
    drained = time.monotonic() - ended
    check_job_survived(rig)
    assert peak < 3 * 1024**3, f"the job grew to {peak / 1024**2:.0f} MB"
    finish(rig, "burst 10x for 60 s", [f"job RSS {before / 1024**2:.0f} MB, peak {peak / 1024**2:.0f} MB",
                                       f"backlog drained {drained:.1f} s after the burst"])


def _alerts_caught_up(rig: FaultRig, target: int) -> bool:
    """Whether the alerts query's latest batch read `transactions` up to `target` (from `metrics`)."""
    for message in reversed(read_topic(rig.client_config, topics.METRICS)):
        metrics = decode_metrics(message.value())
        if metrics.query == QUERY_ALERTS:
            return sum(metrics.end_offsets.values()) >= target
    return False


def newest(folder: Path) -> Path:
    """The newest numbered log file of a checkpoint folder (offsets/, commits/)."""
    numbered = [p for p in folder.iterdir() if p.name.isdigit()]
    return max(numbered, key=lambda p: int(p.name))


@pytest.mark.parametrize("damage", ["truncate offsets", "delete the checkpoint"])
def test_damaged_checkpoint_never_skips_silently(rig: FaultRig, damage: str) -> None:
    start_stream(rig)
    rig.wait_growth(topics.ALERTS, rig.end_offset(topics.ALERTS), JOB_RESUME_TIMEOUT, "alerts flowing")
    job = rig.jobs[-1]
    job.kill_group()
    checkpoints = rig.data_dir / "checkpoints"
    if damage == "truncate offsets":
        victim = newest(checkpoints / "alerts" / "offsets")
        victim.write_bytes(victim.read_bytes()[:10])
    else:
        shutil.rmtree(checkpoints / "alerts")
    baseline = rig.end_offset(topics.ALERTS)
    restarted = rig.start_job()
    started = time.monotonic()

    def settled() -> str:
        if restarted.process.poll() is not None:
            return "refused"
        return "running" if rig.end_offset(topics.ALERTS) > baseline else ""

    outcome = wait_until(settled, 240, "the restarted job to run or refuse")
    # Both are refused before Spark starts, in one line naming what is damaged and the way out.
    assert outcome == "refused", "the job ran on a damaged checkpoint"
    error = restarted.stderr_tail(5)
    took = time.monotonic() - started
    print(f"\ncheckpoint {damage}: the job refused to start in {took:.1f} s:\n{error}")
    assert restarted.process.returncode == 1
    assert error.count("\n") == 0 and error.startswith("txmon-spark: error: "), error
    assert ("is damaged: cut short" if damage == "truncate offsets" else "has committed batches") in error
