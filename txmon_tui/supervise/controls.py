"""The pipeline's controls while it runs: the keys' start, stop, restart, rate and inject, and the automatic
restart of a Spark job or producer that died on its own.

A base class of Pipeline. Starts run on the pipeline's launcher thread (the parent of every child); a
start queued there and a key's stop are decided under one lock, so that a queued start runs only if no
key press came after it: a stop is never undone by a restart that was already on its way.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor

from txmon_core.backoff import Backoff
from txmon_tui.supervise.broker import BROKER, BrokerProcess
from txmon_tui.supervise.children import Child, ProcState, describe_exit
from txmon_tui.supervise.config import PRODUCER, SPARK, PipelineConfig
from txmon_tui.supervise.restarts import RestartPlan
from txmon_tui.supervise.steps import StepFailed

STOP_TIMEOUTS = {PRODUCER: 10.0, SPARK: 45.0}  # Spark's own query stop timeout is 30 s


class PipelineControls:
    """The base of Pipeline that starts, stops and restarts its children on request or after a failure."""

    # Provided by Pipeline.
    config: PipelineConfig
    topics_ready: bool
    _children: dict[str, Child]
    _broker: BrokerProcess
    _bootstrap: str | None
    _client_settings: dict[str, str]
    _stopping: threading.Event
    _error: str | None
    _on_restart: Callable[[str], None] | None
    _child: Callable[[str], Child]
    _submit: Callable[[Callable[[], None]], Future[None] | None]
    _launcher: ThreadPoolExecutor | None

    def _init_controls(self, backoff: Backoff) -> None:
        self._restarts = {name: RestartPlan(backoff) for name in (SPARK, PRODUCER)}
        self._restart_lock = threading.Lock()  # the UI clock polls, key handlers reset
        self._handled_runs: dict[str, int] = {}  # per child, the run whose failure was already planned for
        self._intent_lock = threading.Lock()  # see the module docstring
        self._queued: dict[str, int] = {}  # per child, the token of the one start that may still run
        self._tokens = itertools.count(1)

    @property
    def restarts(self) -> dict[str, int]:
        """Automatic restarts done so far, by process name."""
        return {name: plan.total for name, plan in self._restarts.items()}

    def poll(self) -> None:
        """Refresh the children's states (call ~2 Hz); escalates overrun stops, restarts failed children."""
        for name, child in list(self._children.items()):
            state = child.poll()
            if self.config.auto_restart and name in self._restarts:
                self._plan_restart(name, child, state)

    def _plan_restart(self, name: str, child: Child, state: ProcState) -> None:
        """Schedule a restart of a child that died on its own; start it once the backoff has passed.

        Only a child that once became ready counts (one that never did is a startup failure, shown as
        such); one the user or shutdown stopped is STOPPED, never FAILED, so it is left alone.
        """
        if self._stopping.is_set() or not child.ever_ready:
            return
        news = None
        with self._restart_lock:
            plan = self._restarts[name]
            if state is ProcState.FAILED and self._handled_runs.get(name) != child.runs:
                self._handled_runs[name] = child.runs
                delay = plan.failed(child.ran_for())
                news = (f"{name} exited on its own ({describe_exit(child.exit_code)}): "
                        f"{child.last_error() or 'no output'}; restart {plan.attempts} in {delay:g} s")
            due = plan.take_due()
        if news is not None and self._on_restart is not None:
            self._on_restart(news)
        if due:
            self._queue_start(name, only_if_failed=True)

    def _queue_start(self, name: str, stop_first: bool = False, only_if_failed: bool = False) -> None:
        """Start a child on the launcher (after stopping it, for a restart); a later key press cancels it."""
        with self._intent_lock:
            token = self._queued[name] = next(self._tokens)
        if self._submit(lambda: self._start_queued(name, token, stop_first, only_if_failed)) is None:
            with self._intent_lock:
                if self._queued.get(name) == token:
                    del self._queued[name]

    def _start_queued(self, name: str, token: int, stop_first: bool, only_if_failed: bool) -> None:
        """On the launcher: the queued (re)start, unless a key stopped or started the child since."""
        child = self._child(name)  # its command line carries the rate as it is now
        if stop_first:
            child.stop(STOP_TIMEOUTS[name])
        with self._intent_lock:
            if self._queued.get(name) != token:
                return  # a key press came after this was queued: what it asked for stands
            del self._queued[name]
            if self._stopping.is_set() or (only_if_failed and child.poll() is not ProcState.FAILED):
                return
            child.start()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every start and stop queued before the call has run; False if not within `timeout`."""
        future = self._submit(lambda: None)
        if future is None:
            return self._launcher is None or self._stopping.is_set()
        try:
            future.result(timeout)
        except TimeoutError:
            return False
        except CancelledError:
            return self._stopping.is_set()  # stop() dropped what was queued: none of it will run
        return True

    def _user_takes_over(self, name: str) -> None:
        """A key or call started, stopped or restarted this child: no automatic restart is pending."""
        if name in self._restarts:
            with self._restart_lock:
                self._restarts[name].reset()

    def _running(self, name: str) -> bool:
        child = self._children.get(name)
        return child is not None and child.poll() in (ProcState.STARTING, ProcState.RUNNING)

    def toggle_producer(self) -> bool:
        """Stop the producer if it runs, else start it; return True if it is now starting."""
        return self._toggle(PRODUCER)

    def toggle_spark(self) -> bool:
        """Stop the Spark job if it runs, else start it; return True if it is now starting."""
        return self._toggle(SPARK)

    def _toggle(self, name: str) -> bool:
        if self.config.read_only:
            return False  # the keys are disabled too; this guards every other caller
        self._user_takes_over(name)
        with self._intent_lock:
            queued = self._queued.pop(name, None) is not None
            child = self._children.get(name)
            state = child.poll() if child is not None else None
            if queued or state in (ProcState.STARTING, ProcState.RUNNING):
                # Running, or about to (re)start: stop it, and the start on its way will not run.
                if child is not None:
                    child.begin_stop(STOP_TIMEOUTS[name])
                return False
            if state is ProcState.STOPPING:
                return False  # a second press while it stops must not start it again behind the user's back
        if self._bootstrap is None or not self.topics_ready:
            return False  # startup will start it
        self._queue_start(name)
        return True

    def inject(self, command: str) -> bool:
        """Send a pattern command (producer.control: burst, cardtest) to the producer; False if none runs."""
        child = self._children.get(PRODUCER)
        return (not self.config.read_only and child is not None and self._running(PRODUCER)
                and child.send(command))

    def set_rate(self, rate: float) -> None:
        """Change the producer's rate; a running producer is restarted with it."""
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        if self.config.read_only:
            return
        self.config.rate = rate
        if self._running(PRODUCER):
            self._user_takes_over(PRODUCER)
            self._queue_start(PRODUCER, stop_first=True)

    def restart(self, name: str) -> None:
        """Restart one process (broker, spark or producer) in the background (not when read-only)."""
        if self.config.read_only:
            return
        if name == BROKER:
            self._submit(self._restart_broker)
        elif name in (SPARK, PRODUCER):
            self._user_takes_over(name)
            if self._bootstrap is not None and self.topics_ready:
                self._queue_start(name, stop_first=True)
        else:
            raise ValueError(f"no process named {name!r}")

    def _restart_broker(self) -> None:
        try:
            self._broker.restart(self._client_settings, self._stopping)
        except StepFailed as exc:
            self._error = f"broker restart: {exc}"
