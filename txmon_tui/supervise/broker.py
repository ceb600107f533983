"""The pipeline's broker: the embedded one it starts and watches like a child, or a named one it waits for.

Blocking calls (start, wait_for_broker, restart, stop) run on the pipeline's launcher thread; state() and
view() only read, from any thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from confluent_kafka import KafkaException

from txmon_core import topics
from txmon_core.broker import EmbeddedBroker
from txmon_tui.supervise.children import ERROR_LINE, ProcessView, ProcState, log_end, output_line
from txmon_tui.supervise.steps import StepClock, StepFailed, StepState

BROKER = "broker"
BROKER_TIMEOUT = 90.0  # the embedded broker, which we start ourselves
# A broker named with -b is already up, or should be: say so quickly rather than wait for it.
NAMED_BROKER_TIMEOUT = 7.0
BROKER_STOP_TIMEOUT = 30.0
# The pipeline's admin clients: their errors are raised as StepFailed, never printed on the screen.
QUIET = logging.getLogger("txmon.tui.pipeline")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


def tail_lines(path: Path, n: int, max_bytes: int = 32_768) -> list[str]:
    """The last `n` lines of a text file (reading only its end)."""
    return [output_line(line) for line in (log_end(path, max_bytes) or "").splitlines()[-n:]]


def wait_for_broker(settings: Mapping[str, str], stopping: threading.Event,
                    embedded: EmbeddedBroker | None = None) -> None:
    """Until an admin client lists topics at `settings`' bootstrap servers; interruptible by `stopping`.

    `embedded`: the broker we started, so that its exit fails the wait at once and it gets longer to come up.
    """
    bootstrap = settings["bootstrap.servers"]
    admin, fatal = topics.access_admin({**settings, "logger": QUIET})
    timeout = BROKER_TIMEOUT if embedded is not None else NAMED_BROKER_TIMEOUT
    deadline = time.monotonic() + timeout
    while not stopping.is_set():
        if embedded is not None and embedded.process is not None and embedded.process.poll() is not None:
            tail = " | ".join(tail_lines(embedded.log_path, 3))
            raise StepFailed(f"the embedded broker exited (code {embedded.process.returncode}): {tail}")
        try:
            admin.list_topics(timeout=1.0)
            return
        except KafkaException:
            admin.poll(0)  # serves error_cb: refused credentials will not mend by waiting
            if fatal:
                raise StepFailed(topics.describe_fatal(fatal[0], dict(settings))) from None
        if time.monotonic() > deadline:
            hint = "" if embedded is not None else ": is it running, and is -b right?"
            raise StepFailed(f"no Kafka broker answered at {bootstrap} within {timeout:.0f} s{hint}")
        stopping.wait(0.1)
    raise StepFailed("stopped")


class BrokerProcess:
    """The embedded broker as one of the supervised processes: started, viewed, restarted and stopped."""

    def __init__(self, step: StepClock) -> None:
        self.broker: EmbeddedBroker | None = None  # created by start(), on the launcher thread
        self._step = step  # the "broker" startup step: its start is the broker's uptime
        self._stopping = False  # a stop or restart we asked for: not a failure

    def start(self, data_dir: Path, login: bool) -> EmbeddedBroker:
        """Format (on a first run) and start the broker under `data_dir`; returns once its port is known."""
        self.broker = EmbeddedBroker(data_dir / "broker", login=login)
        self.broker.start()
        return self.broker

    @property
    def log_path(self) -> Path | None:
        """Where its full log is, once it was started."""
        return self.broker.log_path if self.broker else None

    def state(self) -> ProcState:
        """Where it is in its life, as the children's states say it."""
        broker = self.broker
        if broker is None or broker.process is None:
            return ProcState.STARTING if self._step.state is StepState.RUNNING else ProcState.STOPPED
        if broker.process.poll() is None:
            if self._stopping:
                return ProcState.STOPPING
            return ProcState.RUNNING if self._step.state is StepState.DONE else ProcState.STARTING
        return ProcState.STOPPED if self._stopping else ProcState.FAILED

    def view(self, lines: int = 20) -> ProcessView:
        """A snapshot for display, as Child.view() gives one."""
        broker = self.broker
        state = self.state()
        last = tail_lines(broker.log_path, lines) if broker else []
        code = broker.process.returncode if broker and broker.process else None
        error = None
        if state is ProcState.FAILED:
            errors = [line for line in last if ERROR_LINE.search(line)]
            error = errors[-1] if errors else (last[-1] if last else None)
        pid = broker.pid if broker and broker.process and broker.process.poll() is None else None
        uptime = None
        if pid is not None and self._step.started is not None:
            uptime = time.monotonic() - self._step.started
        return ProcessView(BROKER, state, pid, uptime, code, error, last, broker.log_path if broker else None)

    def restart(self, settings: Mapping[str, str], stopping: threading.Event) -> None:
        """Stop and start it again, then wait until it answers (unless the pipeline stops meanwhile)."""
        if self.broker is None:
            return
        self.stop()
        self._stopping = False
        if stopping.is_set():
            return
        self.broker.start()
        wait_for_broker({**settings, "bootstrap.servers": self.broker.bootstrap}, stopping, self.broker)

    def stop(self) -> None:
        """Stop it gracefully, then forcibly (a stopped broker is STOPPED, never FAILED)."""
        if self.broker is not None:
            self._stopping = True
            self.broker.stop(BROKER_STOP_TIMEOUT)
