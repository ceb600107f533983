"""Child processes of a benchmark: each in its own process group, its stdout lines kept, always stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from txmon_core.lifetime import die_with_parent


class Child:
    """One child process: stdout lines collected by a thread, stderr into a file."""

    def __init__(
        self, name: str, command: list[str], log_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.stderr_path = log_dir / f"{name}.stderr"
        self.lines: list[tuple[float, str]] = []  # (wall time, line)
        self.changed = threading.Condition()
        with open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                # Its own group: stopping it reaches the JVM pyspark starts below it, and nothing else.
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        self._reader = threading.Thread(target=self._read, name=f"bench-{name}-stdout", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self.changed:
                self.lines.append((time.time(), line.rstrip("\n")))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    def wait_line(self, test: Callable[[str], bool], timeout: float) -> tuple[float, str]:
        """The first stdout line passing `test` (and when it came); raises if the child exits first."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for at, line in self.lines:
                    if test(line):
                        return at, line
                if self.process.poll() is not None and not self._reader.is_alive():
                    raise RuntimeError(
                        f"{self.name} exited ({self.process.returncode}):\n{self.stderr_tail()}"
                    )
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{self.name}: no expected line within {timeout:.0f} s:\n{self.stderr_tail()}"
                    )
                self.changed.wait(min(remaining, 0.5))

    def last_line(self) -> str | None:
        """The newest stdout line."""
        with self.changed:
            return self.lines[-1][1] if self.lines else None

    def stderr_tail(self, lines: int = 25) -> str:
        """The end of the child's stderr, for error messages."""
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no stderr)"

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM the leader, SIGKILL the group after `timeout` or once it exits; return the exit code.

        Only the leader gets SIGTERM: a Spark driver stops its queries through its JVM, which must
        still be alive then (a SIGTERM to the whole group fails the stop).
        """
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.process.wait()
        # Whatever the leader left behind in its group (a JVM that outlived its driver) goes too.
        self._signal(signal.SIGKILL)
        self._reader.join(5)
        return self.process.returncode

    def _signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
