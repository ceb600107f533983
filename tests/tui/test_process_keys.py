"""`p` and `s` really stop and start the producer and Spark job processes the monitor supervises."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import time
from functools import partial

import psutil
import pytest

from tests.support.processes import running_pid
from tests.support.screen import tailing
from tests.support.waiting import until
from txmon_tui.app import create_app
from txmon_tui.supervise.children import ProcState
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.supervise.restarts import RESTART_BACKOFF
from txmon_tui.widgets import ProcessesPanel

pytestmark = pytest.mark.tui


def gone(pid: int) -> bool:
    """True when no process with this pid is left (a zombie counts as gone: it runs nothing)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def group_gone(pgid: int) -> bool:
    """True when no live process is left in the process group `pgid` (the child and what it started)."""
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and psutil.os.getpgid(proc.pid) == pgid:
                return False
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return True


async def test_p_stops_and_restarts_the_producer(config: PipelineConfig) -> None:
    app = create_app(dataclasses.replace(config, run_producer=True, rate=300.0))
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.pipeline is not None
        pipeline = app.pipeline
        producer_pid = partial(running_pid, pipeline, "producer")

        await tailing(pilot, app)
        first = await until(pilot, producer_pid, "the producer running", timeout=60)
        await until(pilot, lambda: app.model.snapshot().produced_rate > 0, "produced tx/s above 0")

        await pilot.press("p")
        await until(pilot, lambda: gone(first), "the producer process gone", timeout=15)
        stopped_at = time.monotonic()
        await until(pilot, lambda: app.model.snapshot().produced_rate == 0, "produced tx/s at 0", timeout=5)
        assert time.monotonic() - stopped_at < 3.0  # 2 s as specified, plus one 1 Hz offsets sample
        await until(pilot, lambda: "producer stopped" in str(app.query_one("#status").render()),
                    "the status line saying so")

        await pilot.press("p")
        second = await until(pilot, producer_pid, "the producer running again", timeout=60)
        assert second != first
        await until(pilot, lambda: app.model.snapshot().produced_rate > 0, "produced tx/s back above 0")
    assert gone(second), "the producer outlived the monitor"


async def test_a_stop_pressed_while_a_restart_is_on_its_way_stays_a_stop(config: PipelineConfig) -> None:
    app = create_app(dataclasses.replace(config, run_producer=True, rate=50.0))
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.pipeline is not None
        pipeline = app.pipeline
        producer_pid = partial(running_pid, pipeline, "producer")

        async def stays_stopped(what: str) -> None:
            # Once every start and stop queued so far has run, no producer runs, and none comes back.
            assert await asyncio.to_thread(pipeline.wait_idle, 60), f"{what}: the queued work did not end"
            await until(pilot, lambda: (view := pipeline.process("producer")) is not None
                        and view.state is ProcState.STOPPED and view.pid is None,
                        f"{what}: the producer stopped, not started again", timeout=15)

        first = await until(pilot, producer_pid, "the producer running", timeout=60)
        # `+` queues a restart with the new rate; `p` right behind it must stop the producer for good.
        await pilot.press("plus", "p")
        await until(pilot, lambda: gone(first), "the producer process gone", timeout=15)
        await stays_stopped("+ then p")
        # Two presses of `p` on a stopped producer: a start, then a stop that wins whenever it comes.
        await pilot.press("p", "p")
        await stays_stopped("p then p")
        await pilot.press("p")
        second = await until(pilot, producer_pid, "the producer started by a single p", timeout=60)
        assert second != first
    assert gone(second), "the producer outlived the monitor"


async def test_s_stops_and_restarts_the_spark_job(config: PipelineConfig) -> None:
    app = create_app(dataclasses.replace(config, run_spark=True))
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.pipeline is not None
        pipeline = app.pipeline
        spark_pid = partial(running_pid, pipeline, "spark")

        first = await until(pilot, spark_pid, "the Spark job running", timeout=300)
        await pilot.press("s")
        await until(pilot, lambda: group_gone(first), "the Spark driver and its JVM gone", timeout=60)
        await until(pilot, lambda: pipeline.process("spark").state is ProcState.STOPPED,  # type: ignore[union-attr]
                    "the Spark job shown as stopped")
        await pilot.press("s")
        second = await until(pilot, spark_pid, "the Spark job running again", timeout=300)
        assert second != first
    assert group_gone(second), "the Spark job outlived the monitor"


@pytest.mark.timeout(1200)
async def test_a_killed_spark_job_restarts_by_itself_and_alerts_flow_again(config: PipelineConfig) -> None:
    # 5 s before the first restart: wide enough to read the countdown on 2 busy cores.
    app = create_app(dataclasses.replace(config, run_spark=True, run_producer=True, rate=200.0,
                                         restart_backoff=dataclasses.replace(RESTART_BACKOFF, initial=5.0)))
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.pipeline is not None
        pipeline = app.pipeline
        spark_pid = partial(running_pid, pipeline, "spark")

        await tailing(pilot, app)
        first = await until(pilot, spark_pid, "the Spark job running", timeout=300)
        await until(pilot, lambda: app.model.snapshot().alerts > 0, "alerts from the first job", timeout=300)
        os.killpg(first, signal.SIGKILL)  # the driver and its JVM at once, as a crash would
        panel = app.query_one(ProcessesPanel)
        await until(pilot, lambda: "spark    failed · restart 1 in" in panel.text(),
                    "the failure and its restart countdown on the Processes panel", timeout=20)
        await until(pilot, lambda: any("Spark job exited (killed by SIGKILL)" in warning
                                       for warning in app.model.snapshot().warnings), "the health warning")
        second = await until(pilot, spark_pid, "the Spark job restarted by itself", timeout=300)
        assert second != first and group_gone(first)
        before = app.model.snapshot().alerts
        await until(pilot, lambda: app.model.snapshot().alerts > before, "alerts from the restarted job",
                    timeout=300)
        assert pipeline.restarts == {"spark": 1, "producer": 0}
    assert group_gone(second), "the Spark job outlived the monitor"
