"""The producer SIGKILLed mid-stream: only what it never saw acknowledged may be missing."""

from __future__ import annotations

import pytest

from tests.support.rig import FaultRig

pytestmark = pytest.mark.integration


def test_producer_killed_mid_stream(rig: FaultRig) -> None:
    job = rig.start_job()
    job.wait_ready()
    # Fast, so that records are in flight (sent, not yet acknowledged) when the kill lands.
    first = rig.start_producer("3000")
    first.wait_acked(3000)
    first.kill()
    assert first.process.returncode == -9
    # A new run (new tx_id prefix) carries on; the job must take both runs' records.
    second = rig.start_producer("1000", "--count", "2000")
    assert second.process.wait(120) == 0, second.output()

    audit = rig.audit()
    print(f"\nproducer SIGKILL: {audit.summary()}")
    assert not audit.problems(), audit.problems()
    assert audit.figures()["lost"] == 0
    assert job.stop() == 0, job.stderr_tail()
