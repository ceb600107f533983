"""Damaged checkpoints: the job refuses in one line naming the file and the way out, and the way out works.

A real job writes real checkpoints and a real Parquet table; then the Parquet query's checkpoint is
removed, and the newest offsets file of the alerts query is cut in half, as a full disk or a bad copy
would leave it. Each time the job must refuse before Spark starts (nothing skipped silently); following
its advice (move the checkpoints and the table aside) must rebuild everything from the topic.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.processes import SparkJob
from tests.support.rig import JOB_RESUME_TIMEOUT, FaultRig
from tests.support.waiting import wait_until
from txmon_core import large_table, topics
from txmon_core.records import ready

pytestmark = pytest.mark.integration

REFUSAL_TIMEOUT = 60.0  # the refusal comes before the Spark session: interpreter, imports, one check


def newest(folder: Path) -> Path:
    """The newest numbered file of a checkpoint log folder."""
    return max((p for p in folder.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


def refusal(job: SparkJob) -> str:
    """The job's one error line, once it has exited non-zero; fails on a stack trace or more lines."""
    wait_until(lambda: job.process.poll() is not None, REFUSAL_TIMEOUT, "the job to refuse")
    assert job.process.returncode == 1, job.stderr_tail()
    lines = [line for line in job.stderr_path.read_text(errors="replace").splitlines() if line.strip()]
    assert len(lines) == 1, "\n".join(lines[:40])
    assert "Traceback" not in lines[0] and "Exception" not in lines[0], lines[0]
    assert ready.JOB_PREFIX not in job.stdout()
    return lines[0]


@pytest.mark.timeout(1200)
def test_damaged_checkpoints_are_refused_in_one_line_and_the_advice_rebuilds(
    rig: FaultRig, tmp_path: Path
) -> None:
    checkpoints = rig.data_dir / "checkpoints"
    table = rig.data_dir / "large"
    job = rig.start_job()
    job.wait_ready()
    producer = rig.start_producer("300")
    producer.wait_acked(300)
    rig.wait_growth(topics.ALERTS, 0, JOB_RESUME_TIMEOUT, "the job to write alerts")
    wait_until(lambda: large_table.has_rows(table) and large_table.committed_batch(table) >= 0,
               JOB_RESUME_TIMEOUT, "a Parquet commit")
    # A small topic from here on: the rebuild at the end reads it all again.
    assert producer.stop() == 0, producer.output()
    assert job.stop() == 0, job.stderr_tail()

    # The alerts query's checkpoint deleted: a new one would read the topic again and store every
    # row of the table twice, so the job refuses.
    aside = tmp_path / "aside"
    aside.mkdir()
    shutil.move(checkpoints / "alerts", aside / "alerts")
    line = refusal(rig.start_job())
    assert f"the Parquet table {table} has committed batches but its checkpoint" in line
    assert "restore the checkpoint, or move the table aside" in line
    shutil.move(aside / "alerts", checkpoints / "alerts")

    # The alerts query's newest offsets file cut in half.
    victim = newest(checkpoints / "alerts" / "offsets")
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    line = refusal(rig.start_job())
    assert line.startswith(f"txmon-spark: error: checkpoint file {victim} is damaged: cut short"), line
    assert f"move {checkpoints} and the Parquet table {table} aside" in line

    # The advice: move both aside; the job starts afresh and rebuilds both sinks from the topic.
    shutil.move(checkpoints, aside / "checkpoints")
    shutil.move(table, aside / "large")
    baseline = rig.end_offset(topics.ALERTS)
    rebuilt = rig.start_job()
    rebuilt.wait_ready()
    rig.wait_growth(topics.ALERTS, baseline, JOB_RESUME_TIMEOUT, "alerts from the rebuilt job")
    audit = rig.audit()  # the new table: every acknowledged transaction above 500, exactly once
    print(f"\ncheckpoint damaged, rebuilt as advised: {audit.summary()}")
    assert not audit.problems(), audit.problems()
    assert rebuilt.stop() == 0, rebuilt.stderr_tail()
