"""Supervision with real child processes: ready line, stop, forced kill, failure, restart, parent death."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conditions import wait_until
from txmon_tui.supervise.children import Child, ProcState, log_end

READY_THEN_WAIT = "import time; print('starting up'); print('ready now', flush=True); time.sleep(600)"
IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
    "time.sleep(600)"
)
DIES = "import sys; print('working'); print('ValueError: boom', file=sys.stderr); sys.exit(3)"


def gone(pid: int) -> bool:
    """True when the process no longer exists (or is a zombie nobody reaped yet)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Children made by a test; every one is stopped at the end, pass or fail."""
    made: list[Child] = []
    yield made
    for child in made:
        child.stop(timeout=2.0)


def make(children: list[Child], tmp_path: Path, code: str, name: str = "kid", **kwargs: object) -> Child:
    child = Child(name, [sys.executable, "-c", code], log_path=tmp_path / "logs" / f"{name}.log", **kwargs)
    children.append(child)
    return child


def test_starting_until_the_ready_line_then_running_then_stopped(
    children: list[Child], tmp_path: Path
) -> None:
    child = make(children, tmp_path, READY_THEN_WAIT, ready_marker="ready now")
    assert child.poll() is ProcState.STOPPED and child.pid is None
    child.start()
    assert child.state in (ProcState.STARTING, ProcState.RUNNING)
    wait_until(lambda: child.poll() is ProcState.RUNNING, 10, "the ready line")
    assert child.pid is not None and (child.uptime() or 0) >= 0
    assert child.last_lines(5) == ["starting up", "ready now"]
    assert os.getpgid(child.pid) == child.pid  # its own process group
    pid = child.pid
    code = child.stop(timeout=5.0)
    assert code == -signal.SIGTERM
    assert child.poll() is ProcState.STOPPED and child.pid is None and child.uptime() is None
    assert gone(pid)
    log = (tmp_path / "logs" / "kid.log").read_text()
    assert "starting up\nready now\n" in log


def test_stop_kills_a_child_that_ignores_sigterm(children: list[Child], tmp_path: Path) -> None:
    child = make(children, tmp_path, IGNORES_SIGTERM, ready_marker="ready")
    child.start()
    wait_until(lambda: child.poll() is ProcState.RUNNING, 10, "the ready line")
    started = time.monotonic()
    assert child.stop(timeout=1.0) == -signal.SIGKILL
    assert time.monotonic() - started < 5.0
    assert child.poll() is ProcState.STOPPED


def test_begin_stop_returns_at_once_and_poll_escalates(children: list[Child], tmp_path: Path) -> None:
    child = make(children, tmp_path, IGNORES_SIGTERM, ready_marker="ready")
    child.start()
    wait_until(lambda: child.poll() is ProcState.RUNNING, 10, "the ready line")
    started = time.monotonic()
    child.begin_stop(timeout=0.5)
    assert time.monotonic() - started < 0.2
    assert child.poll() is ProcState.STOPPING
    wait_until(lambda: child.poll() is ProcState.STOPPED, 10, "the forced stop")
    assert child.exit_code == -signal.SIGKILL


def test_a_child_that_dies_on_its_own_is_failed_with_its_error_and_can_restart(
    children: list[Child], tmp_path: Path
) -> None:
    child = make(children, tmp_path, DIES)
    child.start()
    wait_until(lambda: child.poll() is ProcState.FAILED, 10, "the child to fail")
    assert child.exit_code == 3
    assert child.last_error() == "ValueError: boom"
    view = child.view()
    assert view.state is ProcState.FAILED and view.last_error == "ValueError: boom"
    assert "exited on its own: code 3" in view.last_lines[-1]
    child.argv = [sys.executable, "-c", READY_THEN_WAIT]
    child.ready_marker = "ready now"
    child.start()
    wait_until(lambda: child.poll() is ProcState.RUNNING, 10, "the restarted child")
    assert child.last_lines() == ["starting up", "ready now"]


def test_each_run_is_counted_with_how_long_it_lasted_and_whether_it_got_ready(
    children: list[Child], tmp_path: Path
) -> None:
    child = make(children, tmp_path, DIES, ready_marker="ready now")
    assert child.runs == 0 and child.ran_for() is None and not child.ever_ready
    child.start()
    wait_until(lambda: child.poll() is ProcState.FAILED, 10, "the child to fail")
    assert child.runs == 1 and not child.ever_ready  # died before its ready line: a startup failure
    assert 0 < (child.ran_for() or 0) < 10
    child.argv = [sys.executable, "-c", READY_THEN_WAIT]
    child.start()
    assert child.runs == 2 and child.ran_for() is None  # running: not over yet
    wait_until(lambda: child.poll() is ProcState.RUNNING, 10, "the second run to get ready")
    assert child.ever_ready
    pid = child.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: child.poll() is ProcState.FAILED, 10, "the killed run marked failed")
    assert child.exit_code == -signal.SIGKILL and child.ever_ready and child.runs == 2
    assert child.ran_for() is not None


def test_poll_never_waits_for_the_output_of_a_child_that_exited(
    children: list[Child], tmp_path: Path
) -> None:
    # The leader says why and exits; a process it left behind holds the output pipe open for 5 s more.
    code = ("import subprocess, sys; subprocess.Popen(['sleep', '5']); "
            "print('fatal: boom', flush=True); sys.exit(3)")
    child = make(children, tmp_path, code)
    child.start()
    wait_until(lambda: child.pid is None, 10, "the leader to exit")
    slowest = 0.0

    def judged() -> bool:
        nonlocal slowest
        began = time.monotonic()
        state = child.poll()
        slowest = max(slowest, time.monotonic() - began)
        return state is ProcState.FAILED

    wait_until(judged, 10, "the exit judged a failure", interval=0.02)
    assert slowest < 0.25, f"a poll() blocked for {slowest:.2f} s (the screen's clock calls it)"
    assert child.exit_code == 3 and child.last_error() == "fatal: boom"


def test_a_missing_program_is_failed_not_raised(children: list[Child], tmp_path: Path) -> None:
    child = Child("ghost", ["/nonexistent/program"], log_path=tmp_path / "ghost.log")
    children.append(child)
    child.start()
    assert child.poll() is ProcState.FAILED
    assert "cannot start" in (child.last_error() or "")


SPAWNS_GRANDCHILD = textwrap.dedent("""
    import signal, subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
    print(f"grandchild {grandchild.pid}", flush=True)
    time.sleep(600)
""")


@pytest.mark.parametrize("terminate_group", [True, False])
def test_stop_leaves_nothing_of_the_group(
    children: list[Child], tmp_path: Path, terminate_group: bool
) -> None:
    child = make(children, tmp_path, SPAWNS_GRANDCHILD, ready_marker="grandchild",
                 terminate_group=terminate_group)
    child.start()
    wait_until(lambda: child.poll() is ProcState.RUNNING, 10, "the grandchild's pid")
    grandchild = int(child.last_lines(1)[0].split()[1])
    child.stop(timeout=1.0)
    wait_until(lambda: gone(grandchild), 10, "the grandchild to be gone")


INTERMEDIATE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from txmon_tui.supervise.children import Child
    child = Child("sleeper", [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(600)"],
                  log_path=Path(sys.argv[1]), ready_marker="up")
    child.start()
    while child.poll().value != "running":
        time.sleep(0.05)
    print(child.pid, flush=True)
    time.sleep(600)
""")


def test_children_die_when_their_supervisor_is_killed(tmp_path: Path) -> None:
    """PR_SET_PDEATHSIG: SIGKILL the process that supervises a child; the child exits within 10 s."""
    supervisor = subprocess.Popen([sys.executable, "-c", INTERMEDIATE, str(tmp_path / "sleeper.log")],
                                  stdout=subprocess.PIPE, text=True, start_new_session=True)
    child_pid = None
    try:
        assert supervisor.stdout is not None
        child_pid = int(supervisor.stdout.readline())
        assert not gone(child_pid)
        supervisor.kill()
        supervisor.wait()
        started = time.monotonic()
        wait_until(lambda: gone(child_pid), 10, "the orphaned child to exit")
        assert time.monotonic() - started < 10
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        if child_pid is not None and not gone(child_pid):
            os.killpg(child_pid, signal.SIGKILL)


def test_log_end_reads_only_the_end_of_a_log(tmp_path: Path) -> None:
    log = tmp_path / "spark.log"
    assert log_end(log, 100) is None  # not written yet: the log view says so instead of failing
    log.write_bytes(b"x" * 1000 + b"\nlast line \xff\n")
    assert log_end(log, 12) == "last line \ufffd\n"  # undecodable bytes replaced, never raised
    assert log_end(log, 10_000) == "x" * 1000 + "\nlast line \ufffd\n"
