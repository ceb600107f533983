"""Child processes the monitor supervises: own process group, death with the parent, captured output.

Each child runs in its own session (so a Ctrl+C in the terminal reaches only the monitor, and a stop
reaches the child's whole tree) and asks Linux to SIGTERM it when the thread that started it dies
(PR_SET_PDEATHSIG), so even a SIGKILLed monitor leaves nothing behind. Its stdout and stderr go,
merged, to a full log file and to a ring of recent lines, read by one background thread per child.
"""

from __future__ import annotations

import enum
import os
import re
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from spark_app.formats import safe_text
from txmon_core.lifetime import die_with_parent
from txmon_tui.supervise.restarts import PendingRestart

LINE_LIMIT = 2000  # characters kept per line in the ring; the log file keeps everything
# An exited child is judged once its output is read to the end (its last lines say why it failed), or
# after this long: a grandchild may hold the pipe open. poll() never waits for it; stop() does.
LAST_OUTPUT_SECONDS = 0.5
LOG_ROTATE_BYTES = 64 << 20  # a chatty child (one line per alert) must not fill the disk
ERROR_LINE = re.compile(r"error|exception|fatal|traceback|killed|refused|cannot|failed", re.IGNORECASE)


class ProcState(enum.Enum):
    """Where a supervised process is in its life."""

    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


@dataclass(frozen=True)
class ProcessView:
    """A snapshot of one process for display and health rules."""

    name: str
    state: ProcState
    pid: int | None
    uptime: float | None
    exit_code: int | None
    last_error: str | None
    last_lines: list[str]
    log_path: Path | None
    restart: PendingRestart | None = None  # an automatic restart scheduled after a failure


def output_line(line: str) -> str:
    """One line of a child's output as it may be shown or printed: no control character, tabs as spaces.

    A child may echo record text (a rejected value in an error message): it never reaches the terminal raw.
    """
    return safe_text(line.rstrip("\r").expandtabs(4))


def log_end(path: Path, max_bytes: int) -> str | None:
    """The last `max_bytes` of a log file as text, reading only its end; None while there is no such file."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(handle.tell() - max_bytes, 0))
            return handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None


def describe_exit(code: int | None) -> str:
    """`code 1` or `killed by SIGKILL` for a Popen return code."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"code {code}"


class Child:
    """One supervised command. Call start()/stop() from a thread that outlives the child (PDEATHSIG)."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        ready_marker: str | None = None,
        ring_size: int = 500,
        terminate_group: bool = True,
        cwd: Path | None = None,
        death_signal: signal.Signals = signal.SIGTERM,
        commands: bool = False,
    ) -> None:
        self.name = name
        self.commands = commands  # its stdin is a pipe that send() writes command lines to
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.env = dict(env or {})
        self.ready_marker = ready_marker
        # False: SIGTERM only the leader, which stops its own children in order (the Spark driver stops
        # its queries through the JVM); whatever remains of the group is killed afterwards.
        self.terminate_group = terminate_group
        self.cwd = cwd
        # Sent by the kernel if the monitor dies without stopping us. SIGKILL suits children whose
        # graceful stop can outlast the 10 s promise (a Spark driver stopping queries, a producer
        # flushing to a broker that is dying too); a graceful stop() still sends SIGTERM first.
        self.death_signal = death_signal
        self._ring: deque[str] = deque(maxlen=ring_size)
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()  # the UI clock and the launcher thread both poll
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop_requested = False
        self._kill_at: float | None = None
        self._started_at: float | None = None
        self._ended_at: float | None = None
        self._exit_seen_at: float | None = None  # when poll() first saw the process gone
        self._state = ProcState.STOPPED
        self.runs = 0  # start() calls that launched (or tried to launch) a run: tells failures apart
        self.ever_ready = False  # some run printed its ready line (or, without one, was seen running)

    # --- life cycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the command (no-op while it runs); returns at once."""
        # Under the poll lock: a poll() between resetting this run's fields and replacing the process
        # would judge the previous, dead process again and report a failure that never happened.
        with self._poll_lock:
            self._start()

    def _start(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        if self._process is not None and self._process.stdin is not None:
            self._process.stdin.close()  # the previous run's command pipe
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._ring.clear()
        self._ready.clear()
        self._stop_requested = False
        self._kill_at = None
        self._started_at = None
        self._ended_at = None
        self._exit_seen_at = None
        self.runs += 1
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned and closed by the reader thread
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
        try:
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE if self.commands else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=die_with_parent(self.death_signal),
            )
        except OSError as exc:
            log.close()
            self._remember(f"{self.name}: cannot start {self.argv[0]}: {exc}")
            self._state = ProcState.FAILED
            self._process = None
            return
        self._started_at = time.monotonic()
        self._state = ProcState.STARTING if self.ready_marker else ProcState.RUNNING
        assert self._process.stdout is not None
        self._reader = threading.Thread(
            target=self._read, args=(self._process.stdout, log), name=f"txmon-{self.name}-output", daemon=True
        )
        self._reader.start()

    def _read(self, stream: BinaryIO, log: BinaryIO) -> None:
        """Copy the child's output to the log and the ring, line by line, until EOF."""
        try:
            for raw in stream:
                log.write(raw)
                log.flush()
                if log.tell() > LOG_ROTATE_BYTES:
                    log = self._rotate(log)
                line = output_line(raw.decode("utf-8", "replace").rstrip("\r\n"))
                if self.ready_marker and not self._ready.is_set() and self.ready_marker in line:
                    self._ready.set()
                    self.ever_ready = True
                self._remember(line[:LINE_LIMIT])
        finally:
            stream.close()
            log.close()

    def _rotate(self, log: BinaryIO) -> BinaryIO:
        log.close()
        os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
        return open(self.log_path, "ab")  # noqa: SIM115 - closed by _read

    def _remember(self, line: str) -> None:
        with self._lock:
            self._ring.append(line)

    def send(self, line: str) -> bool:
        """Write one command line to a running child started with `commands`; False if it cannot take it."""
        process = self._process
        if process is None or process.stdin is None or process.poll() is not None:
            return False
        try:
            process.stdin.write(line.encode() + b"\n")
            process.stdin.flush()
        except (BrokenPipeError, ValueError):  # it exited meanwhile, or the pipe was closed
            return False
        return True

    def begin_stop(self, timeout: float = 10.0) -> None:
        """Ask the child to stop (SIGTERM) and return; poll() sends SIGKILL once `timeout` has passed."""
        process = self._process
        self._stop_requested = True
        if process is None or process.poll() is not None:
            return
        self._kill_at = time.monotonic() + timeout
        self._state = ProcState.STOPPING
        self._signal(signal.SIGTERM, group=self.terminate_group)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stop the child: SIGTERM, SIGKILL to its whole group after `timeout`; return its exit code."""
        self.begin_stop(timeout)
        process = self._process
        if process is None:
            return None
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL, group=True)
            process.wait()
        self._reap_group()
        if self._reader is not None:
            self._reader.join(LAST_OUTPUT_SECONDS)  # stop() blocks anyway: judge with the last lines read
        self.poll()
        return process.returncode

    def restart(self, timeout: float = 10.0) -> None:
        """Stop (if running) and start again."""
        self.stop(timeout)
        self.start()

    def _signal(self, sig: signal.Signals, group: bool) -> None:
        process = self._process
        if process is None:
            return
        try:
            if group:
                os.killpg(process.pid, sig)  # the group id is the leader's pid (start_new_session)
            elif process.poll() is None:
                process.send_signal(sig)
        except ProcessLookupError:
            pass  # already gone: nothing to stop

    def _reap_group(self, grace: float = 2.0) -> None:
        """Once the leader is gone, stop whatever of its group survived (SIGTERM, then SIGKILL)."""
        if self._process is None or not self._group_alive():
            return
        self._signal(signal.SIGTERM, group=True)
        deadline = time.monotonic() + grace
        while self._group_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._group_alive():
            self._signal(signal.SIGKILL, group=True)

    def _group_alive(self) -> bool:
        assert self._process is not None
        try:
            os.killpg(self._process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def poll(self) -> ProcState:
        """Refresh and return the state (call on a timer); escalates a stop past its deadline."""
        with self._poll_lock:
            return self._poll()

    def _poll(self) -> ProcState:
        process = self._process
        if process is None:
            return self._state
        code = process.poll()
        if code is None:
            if self._state is ProcState.STOPPING:
                if self._kill_at is not None and time.monotonic() >= self._kill_at:
                    self._signal(signal.SIGKILL, group=True)
            elif self._ready.is_set() or self.ready_marker is None:
                self._state = ProcState.RUNNING
                self.ever_ready = True
            return self._state
        if self._ended_at is None:
            # Judge once the last lines (the error) are read, without waiting here: poll() runs on clocks
            # that must not stall (the screen's), so an unread end is judged at a later poll.
            now = time.monotonic()
            if self._exit_seen_at is None:
                self._exit_seen_at = now
            reading = self._reader is not None and self._reader.is_alive()
            if reading and now - self._exit_seen_at < LAST_OUTPUT_SECONDS:
                return self._state
            self._ended_at = self._exit_seen_at
            if self._stop_requested:
                self._reap_group(grace=0.5)
            self._state = ProcState.STOPPED if self._stop_requested else ProcState.FAILED
            if not self._stop_requested:
                self._remember(f"[{self.name} exited on its own: {describe_exit(code)}]")
        return self._state

    # --- views ------------------------------------------------------------------------------------

    @property
    def state(self) -> ProcState:
        """The state as of the last poll()."""
        return self._state

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    @property
    def exit_code(self) -> int | None:
        """The last exit code (negative: killed by that signal), None while running or never run."""
        return None if self._process is None else self._process.returncode

    def ran_for(self) -> float | None:
        """How long the last run lasted, once it ended (None while running or if it never started)."""
        if self._started_at is None or self._ended_at is None:
            return None
        return self._ended_at - self._started_at

    def uptime(self) -> float | None:
        """Seconds since start while it runs."""
        if self._started_at is None or self.pid is None:
            return None
        return time.monotonic() - self._started_at

    def last_lines(self, n: int = 20) -> list[str]:
        """The newest `n` lines of output."""
        with self._lock:
            return list(self._ring)[-n:] if n > 0 else []

    def last_error(self) -> str | None:
        """The newest line that looks like an error, else the newest non-blank line, else None."""
        with self._lock:
            own = f"[{self.name} exited"
            lines = [line for line in self._ring if line.strip() and not line.startswith(own)]
        for line in reversed(lines):
            if ERROR_LINE.search(line):
                return line.strip()
        return lines[-1].strip() if lines else None

    def view(self, lines: int = 20) -> ProcessView:
        """A snapshot for display."""
        return ProcessView(
            name=self.name,
            state=self._state,
            pid=self.pid,
            uptime=self.uptime(),
            exit_code=self.exit_code,
            last_error=self.last_error() if self._state is ProcState.FAILED else None,
            last_lines=self.last_lines(lines),
            log_path=self.log_path,
        )
