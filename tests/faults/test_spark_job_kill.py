"""The Spark job SIGKILLed in the middle of a stream, again and again, restarted on the same checkpoints."""

from __future__ import annotations

import random
import time

import pytest

from tests.faults.rig import FaultRig
from txmon_core import topics

pytestmark = pytest.mark.integration

READY_TIMEOUT = 180.0
RESUME_TIMEOUT = 180.0


def kill_and_restart_job(rig: FaultRig, kills: int,
                         interval: tuple[float, float] | None = None) -> list[float]:
    """Kill the running job's whole process tree `kills` times; return each recovery time in seconds.

    Each kill waits until the current job has written part of the stream (and, with `interval`, for a
    random time in that range), so every kill lands mid-stream. Recovery: from the kill to the first
    alert the restarted job writes.
    """
    recoveries = []
    rnd = random.Random(kills)
    for _ in range(kills):
        job = rig.jobs[-1]
        rig.wait_growth(topics.ALERTS, rig.end_offset(topics.ALERTS), RESUME_TIMEOUT,
                        "the job to write alerts")
        if interval is not None:
            time.sleep(rnd.uniform(*interval))  # the fault's schedule, not a wait for a condition
        assert job.process.poll() is None, f"the job exited by itself:\n{job.stderr_tail()}"
        job.kill_group()
        killed_at = time.monotonic()
        baseline = rig.end_offset(topics.ALERTS)
        rig.start_job()
        resumed = rig.wait_growth(topics.ALERTS, baseline, READY_TIMEOUT + RESUME_TIMEOUT,
                                  "the restarted job's first alert")
        recoveries.append(resumed - killed_at)
    return recoveries


def test_job_killed_three_times_loses_and_repeats_nothing(rig: FaultRig) -> None:
    job = rig.start_job()
    job.wait_ready()
    producer = rig.start_producer("300")
    producer.wait_acked(300)

    recoveries = kill_and_restart_job(rig, kills=3)

    rig.wait_growth(topics.ALERTS, rig.end_offset(topics.ALERTS), RESUME_TIMEOUT,
                    "alerts after the last restart")
    assert producer.stop() == 0, producer.output()
    audit = rig.audit()
    audit.job_runs = len(rig.jobs)  # each run may repeat its last batches' alerts once, no more
    audit.notes.append("recovery s (kill → first new alert): " + ", ".join(f"{r:.1f}" for r in recoveries))
    print(f"\nspark job SIGKILL x3: {audit.summary()}")
    assert not audit.problems(), audit.problems()
    assert audit.figures()["lost"] == 0 and audit.unacknowledged_written == 0
    assert rig.jobs[-1].stop() == 0, rig.jobs[-1].stderr_tail()
