"""The broker SIGKILLed while the producer writes and the job reads, then restarted on the same data."""

from __future__ import annotations

import re
import time

import pytest

from tests.conditions import wait_until
from tests.faults.rig import FaultRig
from txmon_core import topics

pytestmark = pytest.mark.integration

RESUME_TIMEOUT = 240.0
# What Spark's Kafka source says when offsets vanished (failOnDataLoss): must never appear.
DATA_LOSS = re.compile(r"data ?loss|failOnDataLoss|OffsetOutOfRange", re.IGNORECASE)


def kill_and_restart_broker(rig: FaultRig, times: int, down: float | None = None) -> list[float]:
    """SIGKILL the broker `times` times mid-stream and restart it; return each recovery time in seconds.

    The broker stays down until the producer has noticed (its error line), or for `down` seconds.
    Recovery: from the kill to the first alert written after the restart.
    """
    recoveries = []
    producer = rig.producers[-1]
    for _ in range(times):
        rig.wait_growth(topics.ALERTS, rig.end_offset(topics.ALERTS), RESUME_TIMEOUT, "alerts flowing")
        errors_before = producer.stderr().count("\n")
        rig.broker.kill()
        killed_at = time.monotonic()
        if down is None:
            wait_until(lambda b=errors_before: producer.stderr().count("\n") > b, 60,
                       "the producer to notice the broker is gone", interval=0.2)
        else:
            time.sleep(down)  # the fault's duration, not a wait for a condition
        rig.broker.start()
        rig.broker.wait_ready(timeout=120)
        baseline = rig.end_offset(topics.ALERTS)
        resumed = rig.wait_growth(topics.ALERTS, baseline, RESUME_TIMEOUT, "alerts after the broker restart")
        recoveries.append(resumed - killed_at)
    return recoveries


def check_job_survived(rig: FaultRig) -> None:
    """The job is still running and never reported lost offsets."""
    job = rig.jobs[-1]
    assert job.process.poll() is None, f"the job exited ({job.process.returncode}):\n{job.stderr_tail()}"
    found = DATA_LOSS.findall(job.stderr_path.read_text(errors="replace"))
    assert not found, f"the job reported data loss: {found}\n{job.stderr_tail()}"


def test_broker_killed_while_producing(rig: FaultRig) -> None:
    job = rig.start_job()
    job.wait_ready()
    producer = rig.start_producer("300")
    producer.wait_acked(300)

    recoveries = kill_and_restart_broker(rig, times=1)

    rig.wait_growth(topics.ALERTS, rig.end_offset(topics.ALERTS), RESUME_TIMEOUT, "alerts after recovery")
    assert producer.stop() == 0, producer.output()
    check_job_survived(rig)
    audit = rig.audit()
    audit.notes.append("recovery s (kill → first alert after restart): "
                       + ", ".join(f"{r:.1f}" for r in recoveries))
    print(f"\nbroker SIGKILL x1: {audit.summary()}")
    assert not audit.problems(), audit.problems()
    check_job_survived(rig)
    assert rig.jobs[-1].stop() == 0, rig.jobs[-1].stderr_tail()
