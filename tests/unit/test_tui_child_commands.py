"""A supervised child started with `commands` takes command lines on its stdin (the producer's injections)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conditions import wait_until
from txmon_tui.supervise.children import Child, ProcState

# Says it is ready, then answers each line it reads (it ends at the end of its input).
ECHO = ("import sys\nprint('ready', flush=True)\n"
        "for line in sys.stdin:\n    print('got', line.strip(), flush=True)\n")


def test_send_writes_a_line_to_the_childs_stdin(tmp_path: Path) -> None:
    child = Child("echo", [sys.executable, "-c", ECHO], tmp_path / "echo.log", ready_marker="ready",
                  commands=True)
    child.start()
    try:
        wait_until(lambda: child.poll() is ProcState.RUNNING, 30, "the child ready")
        assert child.send("burst 5")
        wait_until(lambda: "got burst 5" in child.last_lines(), 30, "the child's answer")
    finally:
        child.stop(10)
    assert not child.send("cardtest")  # stopped: nothing to write to


def test_without_commands_stdin_is_closed_and_send_refuses(tmp_path: Path) -> None:
    child = Child("echo", [sys.executable, "-c", ECHO], tmp_path / "echo.log", ready_marker="ready")
    child.start()
    try:
        wait_until(lambda: child.poll() is not ProcState.STARTING, 30, "the child started")
        assert not child.send("burst")
    finally:
        child.stop(10)
