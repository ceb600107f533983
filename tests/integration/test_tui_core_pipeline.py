"""The pipeline with real processes: embedded broker and producer started, toggled, killed, stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from tests.conditions import wait_until
from txmon_core.broker import EmbeddedBroker
from txmon_core.topics import TRANSACTIONS
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.readers import OffsetWatcher
from txmon_tui.supervise.children import ProcState
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.supervise.pipeline import Pipeline
from txmon_tui.supervise.steps import StepState

pytestmark = pytest.mark.integration


def gone(pid: int) -> bool:
    """True when the process no longer exists (or is a zombie nobody reaped yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def pipeline(tmp_path: Path) -> Iterator[Pipeline]:
    """An embedded broker and a producer at 200 tx/s (no Spark); stopped at the end, pass or fail."""
    running = Pipeline(PipelineConfig(data_dir=tmp_path, rate=200, run_spark=False, seed=7))
    yield running
    running.stop()


def state(pipeline: Pipeline, name: str) -> ProcState | None:
    pipeline.poll()
    view = pipeline.process(name)
    return None if view is None else view.state


def test_embedded_pipeline_runs_toggles_recovers_and_stops(pipeline: Pipeline) -> None:
    pipeline.start()
    wait_until(lambda: (pipeline.poll(), pipeline.started)[1] or pipeline.error, 180, "the pipeline to start")
    assert pipeline.error is None
    steps = {step.name: step for step in pipeline.steps}
    assert steps["broker"].state is StepState.DONE and (steps["broker"].elapsed or 0) > 0
    assert steps["spark session"].state is StepState.SKIPPED
    assert steps["producer"].state is StepState.DONE
    assert [view.name for view in pipeline.processes] == ["broker", "producer"]
    assert state(pipeline, "broker") is ProcState.RUNNING and state(pipeline, "producer") is ProcState.RUNNING
    assert (pipeline.data_dir / "logs" / "producer.log").exists()

    model = MonitorModel()
    watcher = OffsetWatcher(pipeline.client_config)

    def produced_rate() -> float:
        now = time.time()
        model.apply_produced(watcher.end_offset_total(TRANSACTIONS), now)
        pipeline.poll()
        return model.snapshot(now).produced_rate

    try:
        wait_until(lambda: produced_rate() > 100, 20, "transactions flowing")
        assert pipeline.toggle_producer() is False
        stopped_at = time.monotonic()
        wait_until(lambda: produced_rate() == 0, 10, "produced tx/s to fall to 0", interval=0.25)
        assert time.monotonic() - stopped_at < 2.0
        wait_until(lambda: state(pipeline, "producer") is ProcState.STOPPED, 10, "the producer stopped")
        assert pipeline.toggle_producer() is True
        wait_until(lambda: produced_rate() > 100, 30, "transactions flowing again", interval=0.25)

        old_pid = pipeline.process("producer").pid
        pipeline.set_rate(50)
        wait_until(lambda: (view := pipeline.process("producer")) and view.pid not in (None, old_pid)
                   and state(pipeline, "producer") is ProcState.RUNNING, 30, "the producer restarted at 50/s")
        argv = pipeline._children["producer"].argv
        assert float(argv[argv.index("--rate") + 1]) == 50

        victim = pipeline.process("producer").pid
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: state(pipeline, "producer") is ProcState.FAILED, 10, "the producer marked failed")
        view = pipeline.process("producer")
        assert view is not None and view.exit_code == -signal.SIGKILL and view.last_error
        pipeline.restart("producer")
        wait_until(lambda: state(pipeline, "producer") is ProcState.RUNNING, 30, "the producer restarted")
    finally:
        watcher.close()

    pids = [view.pid for view in pipeline.processes if view.pid is not None]
    assert len(pids) == 2
    pipeline.stop()
    assert all(gone(pid) for pid in pids)
    assert state(pipeline, "broker") is ProcState.STOPPED and state(pipeline, "producer") is ProcState.STOPPED


def test_external_broker_and_nothing_to_run(broker: EmbeddedBroker, tmp_path: Path) -> None:
    pipeline = Pipeline(PipelineConfig(bootstrap=broker.bootstrap, data_dir=tmp_path,
                                       run_producer=False, run_spark=False))
    try:
        pipeline.start()
        wait_until(lambda: pipeline.started, 30, "the steps")
        assert pipeline.topics_ready and pipeline.processes == []
        assert pipeline.client_config == {"bootstrap.servers": broker.bootstrap}
        assert [s.state for s in pipeline.steps][:4] == [StepState.DONE, StepState.DONE, StepState.SKIPPED,
                                                         StepState.SKIPPED]
    finally:
        pipeline.stop()


def hold(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Fail if `check` turns false at any time during `seconds` (for what must not happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check(), what
        time.sleep(0.1)


def test_a_producer_that_dies_is_restarted_by_itself_with_backoff(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    told: list[str] = []
    config = PipelineConfig(bootstrap=broker.bootstrap, data_dir=tmp_path, rate=200, run_spark=False)
    pipeline = Pipeline(config, on_restart=told.append)
    watcher = OffsetWatcher({"bootstrap.servers": broker.bootstrap})
    model = MonitorModel()

    def produced_rate() -> float:
        now = time.time()
        model.apply_produced(watcher.end_offset_total(TRANSACTIONS), now)
        pipeline.poll()
        return model.snapshot(now).produced_rate

    def running_pid() -> int | None:
        view = pipeline.process("producer")
        return view.pid if state(pipeline, "producer") is ProcState.RUNNING and view is not None else None

    try:
        pipeline.start()
        wait_until(lambda: (pipeline.poll(), pipeline.started)[1] or pipeline.error, 60, "the pipeline")
        assert pipeline.error is None
        first = wait_until(running_pid, 30, "the producer running")
        for attempt, delay in ((1, 2), (2, 4)):  # each run lasts far less than a minute: backing off
            pid = wait_until(running_pid, 60, "the producer running")
            wait_until(lambda: produced_rate() > 100, 30, "transactions flowing", interval=0.25)
            os.kill(pid, signal.SIGKILL)
            killed_at = time.monotonic()
            view = wait_until(lambda: (pipeline.poll(), v := pipeline.process("producer")) and v and v.restart
                              and v, 10, "a restart scheduled")
            assert view.state is ProcState.FAILED and view.exit_code == -signal.SIGKILL
            assert view.restart.attempt == attempt and view.restart.text().startswith(f"restart {attempt} in")
            assert told[-1].startswith("producer exited on its own (killed by SIGKILL)")
            assert told[-1].endswith(f"restart {attempt} in {delay} s")
            again = wait_until(running_pid, 60, "the producer restarted by itself")
            assert again != pid and time.monotonic() - killed_at >= delay - 0.5
            wait_until(lambda: produced_rate() > 100, 30, "transactions flowing again", interval=0.25)
        assert pipeline.restarts["producer"] == 2 and first is not None

        # Stopped by the user: stays stopped.
        assert pipeline.toggle_producer() is False
        wait_until(lambda: state(pipeline, "producer") is ProcState.STOPPED, 15, "the producer stopped")
        hold(lambda: state(pipeline, "producer") is ProcState.STOPPED, 5.0,
             "a producer the user stopped was started again")
        assert pipeline.restarts["producer"] == 2 and len(told) == 2
    finally:
        watcher.close()
        pipeline.stop()
    assert state(pipeline, "producer") is ProcState.STOPPED and pipeline.restarts["producer"] == 2


def test_no_restart_leaves_a_dead_producer_failed(broker: EmbeddedBroker, tmp_path: Path) -> None:
    pipeline = Pipeline(PipelineConfig(bootstrap=broker.bootstrap, data_dir=tmp_path, rate=50,
                                       run_spark=False, auto_restart=False))
    try:
        pipeline.start()
        wait_until(lambda: (pipeline.poll(), pipeline.started)[1] or pipeline.error, 60, "the pipeline")
        view = pipeline.process("producer")
        assert view is not None and view.pid is not None
        os.kill(view.pid, signal.SIGKILL)
        wait_until(lambda: state(pipeline, "producer") is ProcState.FAILED, 10, "the producer marked failed")
        # With restarts on, the first would come after 2 s.
        hold(lambda: state(pipeline, "producer") is ProcState.FAILED, 5.0,
             "a producer was restarted with auto_restart off")
        assert pipeline.process("producer").restart is None  # type: ignore[union-attr]
    finally:
        pipeline.stop()


def test_unreachable_broker_fails_the_broker_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("txmon_tui.supervise.broker.BROKER_TIMEOUT", 2.0)
    pipeline = Pipeline(PipelineConfig(bootstrap="127.0.0.1:1", data_dir=tmp_path))
    try:
        pipeline.start()
        wait_until(lambda: pipeline.error, 30, "the startup error")
        assert pipeline.error is not None and pipeline.error.startswith("broker: no Kafka broker answered")
        assert pipeline.steps[0].state is StepState.FAILED and pipeline.steps[1].state is StepState.PENDING
    finally:
        pipeline.stop()


MONITOR = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from txmon_tui.supervise.pipeline import Pipeline
    from txmon_tui.supervise.config import PipelineConfig
    config = PipelineConfig(data_dir=Path(sys.argv[1]), rate=100, run_spark=sys.argv[2] == "spark")
    pipeline = Pipeline(config)
    pipeline.start()
    while not pipeline.started:
        if pipeline.error:
            sys.exit(pipeline.error)
        pipeline.poll()
        time.sleep(0.2)
    print(" ".join(str(view.pid) for view in pipeline.processes), flush=True)
    time.sleep(600)
""")


def survivors(pids: list[int]) -> str:
    """The processes still there, for the failure message."""
    found = []
    for pid in pids:
        try:
            found.append(f"{pid} {' '.join(psutil.Process(pid).cmdline())[:120]}")
        except psutil.NoSuchProcess:
            pass
    return "; ".join(found)


def descendants(pids: list[int]) -> list[int]:
    """The pids and every descendant of them (the Spark driver's JVM, for one)."""
    found = list(pids)
    for pid in pids:
        try:
            found += [child.pid for child in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return found


def run_and_kill_monitor(tmp_path: Path, with_spark: bool) -> None:
    monitor = subprocess.Popen([sys.executable, "-c", MONITOR, str(tmp_path), "spark" if with_spark else "-"],
                               stdout=subprocess.PIPE, text=True, start_new_session=True)
    tree: list[int] = []
    try:
        assert monitor.stdout is not None
        line = monitor.stdout.readline()
        assert line.strip(), f"the monitor did not start (exit {monitor.wait()})"
        tree = descendants([int(pid) for pid in line.split()])
        monitor.kill()
        monitor.wait()
        killed_at = time.monotonic()
        try:
            wait_until(lambda: all(gone(pid) for pid in tree), 15, "the monitor's processes to exit")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; still there: {survivors(tree)}") from None
        took = time.monotonic() - killed_at
        assert took < 10.0, f"took {took:.1f} s"
    finally:
        if monitor.poll() is None:
            monitor.kill()
            monitor.wait()
        for pid in tree:
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigkilled_monitor_leaves_no_broker_or_producer(tmp_path: Path) -> None:
    run_and_kill_monitor(tmp_path, with_spark=False)


@pytest.mark.skipif(not Path(__file__).parents[2].joinpath("spark_app", "cli.py").exists(),
                    reason="spark_app/cli.py not there yet")
def test_sigkilled_monitor_leaves_no_spark_driver_or_jvm(tmp_path: Path) -> None:
    run_and_kill_monitor(tmp_path, with_spark=True)
