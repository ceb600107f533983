"""The Spark job SIGKILLed in the middle of a stream, again and again, restarted on the same checkpoints."""

from __future__ import annotations

import pytest

from tests.support.rig import JOB_RESUME_TIMEOUT, FaultRig, kill_and_restart_job
from txmon_core import topics

pytestmark = pytest.mark.integration


def test_job_killed_three_times_loses_and_repeats_nothing(rig: FaultRig) -> None:
    job = rig.start_job()
    job.wait_ready()
    producer = rig.start_producer("300")
    producer.wait_acked(300)

    recoveries = kill_and_restart_job(rig, kills=3)

    rig.wait_growth(topics.ALERTS, rig.end_offset(topics.ALERTS), JOB_RESUME_TIMEOUT,
                    "alerts after the last restart")
    assert producer.stop() == 0, producer.output()
    audit = rig.audit()
    audit.job_runs = len(rig.jobs)  # each run may repeat its last batches' alerts once, no more
    audit.notes.append("recovery s (kill → first new alert): " + ", ".join(f"{r:.1f}" for r in recoveries))
    print(f"\nspark job SIGKILL x3: {audit.summary()}")
    assert not audit.problems(), audit.problems()
    assert audit.figures()["lost"] == 0 and audit.unacknowledged_written == 0
    assert rig.jobs[-1].stop() == 0, rig.jobs[-1].stderr_tail()
