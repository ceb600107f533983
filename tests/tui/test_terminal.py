"""`txmon-tui` in a real terminal (tmux, 80x24, no mouse), on the whole pipeline from a clean data dir.

Each test watches the screen for a live alert row, then leaves one way (q, Ctrl+C, SIGTERM, the terminal
hanging up, SIGKILL) and checks that no process of the monitor's tree is left.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.tui,
    pytest.mark.jvm,  # the monitor starts its embedded broker
    pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux"),
]
ROOT = Path(__file__).resolve().parents[2]
ALERT_ROW = re.compile(r"(ALERT|large)\s+\d\d:\d\d:\d\d\s+…?\S+")
FLAGGED_COUNTER = re.compile(r"([\d,]+) ALERT · ([\d,]+) large")
STARTUP_TIMEOUT = 240.0  # embedded broker + Spark session + first batch, on 2 busy cores
RESUME_STARTUP_TIMEOUT = 480.0  # the same, twice in one test, on a machine other test runs load too
STOP_TIMEOUT = 100.0  # producer 10 s, Spark 45 s, broker 30 s at worst, one after the other


class Terminal:
    """One detached tmux session running a command at a given size."""

    def __init__(self, command: list[str], width: int = 80, height: int = 24) -> None:
        self.name = f"txmon-test-{uuid.uuid4().hex[:10]}"
        # The shell stays after the monitor so the screen it leaves behind (restored or not) can be read.
        script = f"{shlex.join(command)}; echo MONITOR-EXITED $?; sleep 120"
        subprocess.run(["tmux", "new-session", "-d", "-s", self.name, "-x", str(width), "-y", str(height),
                        "sh", "-c", script], check=True, cwd=ROOT)

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", *args], capture_output=True, text=True).stdout

    def screen(self) -> str:
        """The visible screen as text."""
        return self._tmux("capture-pane", "-p", "-t", self.name)

    def flag(self, name: str) -> str:
        """A tmux pane variable, e.g. alternate_on."""
        return self._tmux("display-message", "-p", "-t", self.name, f"#{{{name}}}").strip()

    def press(self, *keys: str) -> None:
        """Type keys as tmux names them (q, C-c, Space)."""
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def shell_pid(self) -> int:
        """The pid of the pane's shell."""
        return int(self.flag("pane_pid"))

    def kill(self) -> None:
        """Close the session: its processes get SIGHUP, as when an ssh connection drops."""
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[tuple[Terminal, set[int]]]:
    """The monitor in a fresh tmux session on a clean data dir; everything it started is gone after."""
    with monitor_in_terminal(tmp_path / "data") as running:
        yield running


@contextmanager
def monitor_in_terminal(data_dir: Path) -> Iterator[tuple[Terminal, set[int]]]:
    """The monitor in a fresh tmux session on `data_dir`; everything it started is gone after."""
    command = [sys.executable, "-m", "txmon_tui", "--data-dir", str(data_dir), "--rate", "200"]
    term = Terminal(command)
    tree: set[int] = set()
    try:
        yield term, tree
    finally:
        try:
            tree |= running_tree(term.shell_pid())  # whatever the test did not get to record
        except (ValueError, psutil.NoSuchProcess):
            pass  # the session is already gone
        term.kill()
        for pid in tree:  # pass or fail, nothing we started survives the test
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def monitor_pid(term: Terminal) -> int:
    """The monitor: the only child of the pane's shell."""
    children = wait_until(lambda: psutil.Process(term.shell_pid()).children(), 10, "the monitor process")
    return children[0].pid


def running_tree(pid: int) -> set[int]:
    """The monitor and every process below it (broker JVM, producer, Spark driver and its JVM)."""
    root = psutil.Process(pid)
    return {pid, *(child.pid for child in root.children(recursive=True))}


def alive(pids: set[int]) -> set[int]:
    """Those of `pids` still running (zombies are not running)."""
    left = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.add(pid)
        except psutil.NoSuchProcess:
            pass
    return left


def wait_gone(pids: set[int], timeout: float, what: str) -> None:
    """Wait until none of `pids` runs; fail listing the survivors' command lines."""
    deadline = time.monotonic() + timeout
    while left := alive(pids):
        if time.monotonic() > deadline:
            survivors = []
            for pid in left:
                try:
                    survivors.append(f"{pid}: {' '.join(psutil.Process(pid).cmdline())[:160]}")
                except psutil.NoSuchProcess:
                    pass
            raise AssertionError(f"{what}: still running after {timeout:.0f} s:\n" + "\n".join(survivors))
        time.sleep(0.2)


def see_alerts(term: Terminal, tree: set[int], timeout: float = STARTUP_TIMEOUT) -> int:
    """Wait for an alert row on screen and record the monitor's whole process tree; return its pid."""
    pid = monitor_pid(term)
    try:
        wait_until(lambda: ALERT_ROW.search(term.screen()), timeout, "an alert row on the screen",
                   interval=0.5)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{term.screen()}") from None

    def whole_tree() -> set[int] | None:
        found = running_tree(pid)
        return found if len(found) >= 5 else None

    tree |= wait_until(whole_tree, 30, "monitor, broker, producer, Spark driver and JVM")
    return pid


def start_and_see_alerts(term: Terminal, tree: set[int]) -> int:
    """Wait for an alert row on screen; record the process tree; press p and see the producer stop."""
    pid = see_alerts(term, tree)
    term.press("p")
    wait_until(lambda: "producer stopped" in term.screen(), 20, "the producer shown stopped")
    return pid


def test_q_stops_everything_and_restores_the_terminal(terminal: tuple[Terminal, set[int]]) -> None:
    term, tree = terminal
    start_and_see_alerts(term, tree)
    term.press("q")  # asks, as the monitor runs processes…
    term.press("q")  # …and a second q confirms
    wait_until(lambda: "MONITOR-EXITED 0" in term.screen(), STOP_TIMEOUT, "the monitor to exit with 0")
    wait_gone(tree, 5, "the monitor's tree after it exited")
    assert term.flag("alternate_on") == "0"  # back on the normal screen
    assert term.flag("cursor_flag") == "1"  # cursor visible again


def test_ctrl_c_stops_everything(terminal: tuple[Terminal, set[int]]) -> None:
    term, tree = terminal
    start_and_see_alerts(term, tree)
    term.press("C-c")
    wait_until(lambda: "MONITOR-EXITED 0" in term.screen(), STOP_TIMEOUT, "the monitor to exit with 0")
    wait_gone(tree, 5, "the monitor's tree after it exited")
    assert term.flag("alternate_on") == "0"


def test_sigterm_stops_everything(terminal: tuple[Terminal, set[int]]) -> None:
    term, tree = terminal
    pid = start_and_see_alerts(term, tree)
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: "MONITOR-EXITED" in term.screen(), STOP_TIMEOUT, "the monitor to exit")
    wait_gone(tree, 5, "the monitor's tree after it exited")
    assert term.flag("alternate_on") == "0"


def test_hangup_stops_everything(terminal: tuple[Terminal, set[int]]) -> None:
    term, tree = terminal
    start_and_see_alerts(term, tree)
    term.kill()  # the terminal goes away: SIGHUP, as when an ssh connection drops
    wait_gone(tree, STOP_TIMEOUT, "the monitor's tree after the terminal hung up")


def test_children_die_with_a_killed_monitor(terminal: tuple[Terminal, set[int]]) -> None:
    term, tree = terminal
    pid = start_and_see_alerts(term, tree)
    os.kill(pid, signal.SIGKILL)
    wait_gone(tree, 10, "the children of a SIGKILLed monitor")


def flagged_on_screen(term: Terminal) -> int | None:
    """The feed's `N ALERT · M large` counter as N + M, or None while it is not on screen."""
    found = FLAGGED_COUNTER.search(term.screen())
    return None if found is None else sum(int(group.replace(",", "")) for group in found.groups())


@pytest.mark.timeout(1200)
def test_a_killed_monitor_started_again_on_its_data_dir_resumes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with monitor_in_terminal(data_dir) as (term, tree):
        pid = see_alerts(term, tree, RESUME_STARTUP_TIMEOUT)
        os.kill(pid, signal.SIGKILL)
        wait_gone(tree, 10, "the children of a SIGKILLed monitor")
    # Same data dir: the embedded broker's storage and port, the Spark checkpoints and the Parquet table.
    with monitor_in_terminal(data_dir) as (term, tree):
        # Rows of alerts made after this monitor started: the pipeline runs again.
        pid = see_alerts(term, tree, RESUME_STARTUP_TIMEOUT)
        first = wait_until(lambda: flagged_on_screen(term), 30, "the flagged counter", interval=0.5)
        wait_until(lambda: (flagged_on_screen(term) or 0) > first, 60, "the flagged counter to move",
                   interval=0.5)
        assert "startup failed" not in term.screen()
        term.press("q")
        term.press("q")  # the monitor runs processes: it asks once
        wait_until(lambda: "MONITOR-EXITED 0" in term.screen(), STOP_TIMEOUT, "the monitor to exit with 0")
        wait_gone(tree, 5, "the restarted monitor's tree after it exited")
