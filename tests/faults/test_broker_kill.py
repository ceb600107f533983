"""The broker SIGKILLed while the producer writes and the job reads, then restarted on the same data."""

from __future__ import annotations

import pytest

from tests.support.rig import BROKER_RESUME_TIMEOUT, FaultRig, check_job_survived, kill_and_restart_broker
from txmon_core import topics

pytestmark = pytest.mark.integration


def test_broker_killed_while_producing(rig: FaultRig) -> None:
    job = rig.start_job()
    job.wait_ready()
    producer = rig.start_producer("300")
    producer.wait_acked(300)

    recoveries = kill_and_restart_broker(rig, times=1)

    rig.wait_growth(topics.ALERTS, rig.end_offset(topics.ALERTS), BROKER_RESUME_TIMEOUT,
                    "alerts after recovery")
    assert producer.stop() == 0, producer.output()
    check_job_survived(rig)
    audit = rig.audit()
    audit.notes.append("recovery s (kill → first alert after restart): "
                       + ", ".join(f"{r:.1f}" for r in recoveries))
    print(f"\nbroker SIGKILL x1: {audit.summary()}")
    assert not audit.problems(), audit.problems()
    check_job_survived(rig)
    assert rig.jobs[-1].stop() == 0, rig.jobs[-1].stderr_tail()
