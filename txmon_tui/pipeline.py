"""The pipeline the monitor runs: embedded broker (when none is named), topics, Spark job, producer.

Nothing here blocks the caller. Every process is started from one long-lived launcher thread owned by
the pipeline: the slow steps (formatting the broker's storage, waiting for readiness) run there, and
PR_SET_PDEATHSIG, which is tied to the thread that forked, fires only when that thread (so the whole
monitor) is gone. The caller only reads states; `poll()` refreshes them, and restarts (on the
launcher, after a backoff) a Spark job or producer that died on its own.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import KafkaException

from spark_app.formats import DEFAULT_ALERT_THRESHOLD, DEFAULT_LARGE_THRESHOLD
from txmon_core import jars, topics
from txmon_core.backoff import Backoff
from txmon_core.broker import BrokerError, EmbeddedBroker
from txmon_core.paths import default_data_dir
from txmon_core.secure import write_client_config
from txmon_tui.restarts import RESTART_BACKOFF, RestartPlan
from txmon_tui.supervisor import ERROR_LINE, Child, ProcessView, ProcState, describe_exit, output_line
from txmon_tui.tail import OffsetWatcher

BROKER, PRODUCER, SPARK = "broker", "producer", "spark"
PRODUCER_READY = "producing to"
SPARK_READY = "spark job running"
BROKER_TIMEOUT = 90.0  # the embedded broker, which we start ourselves
# A broker named with -b is already up, or should be: say so quickly rather than wait for it.
NAMED_BROKER_TIMEOUT = 7.0
SPARK_TIMEOUT = 600.0  # the first run may fetch the connector jars from Maven Central
PRODUCER_TIMEOUT = 60.0
STOP_TIMEOUTS = {PRODUCER: 10.0, SPARK: 45.0, BROKER: 30.0}  # Spark's own query stop timeout is 30 s


class StepFailed(RuntimeError):
    """A startup step could not be completed; the message says why in plain words."""


# What a startup step may fail with, shown on the step; anything else is a bug and surfaces as such.
STARTUP_ERRORS = (StepFailed, BrokerError, KafkaException, jars.MissingToolError, jars.FetchError, OSError)
_QUIET = logging.getLogger("txmon.tui.pipeline")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


class StepState(enum.Enum):
    """Where one startup step is."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Step:
    """One startup step with its elapsed seconds (live while running)."""

    name: str
    state: StepState
    elapsed: float | None
    detail: str = ""


@dataclass
class PipelineConfig:
    """What to run and where; `bootstrap` None means start the embedded broker."""

    bootstrap: str | None = None
    client_settings: dict[str, str] = field(default_factory=dict)
    data_dir: Path = field(default_factory=default_data_dir)
    rate: float = 100.0
    large_threshold: float = DEFAULT_LARGE_THRESHOLD
    alert_threshold: float = DEFAULT_ALERT_THRESHOLD
    run_producer: bool = True
    run_spark: bool = True
    seed: int | None = None
    partitions: int = 1  # of the topics created when missing
    auto_restart: bool = True  # restart a Spark job or producer that dies on its own
    settings_path: Path | None = None  # txmon.toml named on the command line, passed to the children
    broker_login: bool = False  # the embedded broker requires its SCRAM login (txmon_core.secure.LocalLogin)
    # Attached to a cluster without leave to write: no topic is created, no child started or stopped,
    # nothing injected; the pipeline only reads.
    read_only: bool = False
    topic_names: topics.TopicNames = field(default_factory=topics.TopicNames)
    since_ms: int | None = None  # backfill the alerts from this time (Unix ms; 0 = the beginning)
    restart_backoff: Backoff = RESTART_BACKOFF

    def __post_init__(self) -> None:
        if self.read_only and (self.run_producer or self.run_spark or self.bootstrap is None):
            raise ValueError("a read-only pipeline attaches to a named broker and starts no children")


class _StepClock:
    """A mutable step: state, start and end times, detail."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = StepState.PENDING
        self.started: float | None = None
        self.ended: float | None = None
        self.detail = ""

    def begin(self) -> None:
        self.state, self.started = StepState.RUNNING, time.monotonic()

    def finish(self, state: StepState, detail: str = "") -> None:
        self.state, self.ended, self.detail = state, time.monotonic(), detail

    def view(self) -> Step:
        if self.started is None:
            return Step(self.name, self.state, None, self.detail)
        end = self.ended if self.ended is not None else time.monotonic()
        return Step(self.name, self.state, end - self.started, self.detail)


def number_arg(value: float) -> str:
    """A number on a child's command line, exactly: the shortest text that reads back as the same float.

    `:g` keeps 6 digits, so 999.9999 went to the children as 1000 and 1234567.5 as 1.23457e+06.
    """
    return repr(float(value))


def _tail_lines(path: Path, n: int, max_bytes: int = 32_768) -> list[str]:
    """The last `n` lines of a text file (reading only its end)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(size - max_bytes, 0))
            text = handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    return [output_line(line) for line in text.splitlines()[-n:]]


class Pipeline:
    """Starts, watches and stops the broker, the Spark job and the producer."""

    def __init__(self, config: PipelineConfig, on_restart: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._on_restart = on_restart  # told one line per automatic restart scheduled (headless logs it)
        self.data_dir = Path(config.data_dir)
        self._broker: EmbeddedBroker | None = None
        self._broker_stopping = False
        self._bootstrap = config.bootstrap
        self._login: dict[str, str] = {}  # the embedded broker's login settings, once it has started
        self._children: dict[str, Child] = {}
        self._steps = {name: _StepClock(name) for name in ("broker", "topics", "spark session", "producer",
                                                           "first batch")}
        self._launcher: ThreadPoolExecutor | None = None
        self._stopping = threading.Event()
        self._stopped = False
        self._error: str | None = None
        self._lock = threading.Lock()
        self._restarts = {name: RestartPlan(config.restart_backoff) for name in (SPARK, PRODUCER)}
        self._restart_lock = threading.Lock()  # the UI clock polls, key handlers reset
        self._handled_runs: dict[str, int] = {}  # per child, the run whose failure was already planned for
        # Starts queued on the launcher (a key, a rate change, an automatic restart) and a key's stop are
        # decided under one lock, and a queued start runs only if no key press came after it: a stop is
        # never undone by a restart that was already on its way.
        self._intent_lock = threading.Lock()
        self._queued: dict[str, int] = {}  # per child, the token of the one start that may still run
        self._tokens = itertools.count(1)

    # --- reading ----------------------------------------------------------------------------------

    @property
    def bootstrap(self) -> str | None:
        """The bootstrap servers once known (the embedded broker's address is known after it starts)."""
        return self._bootstrap

    @property
    def client_config(self) -> dict[str, str]:
        """librdkafka settings for clients of this pipeline's broker."""
        if self._bootstrap is None:
            raise RuntimeError("the broker address is not known yet (check `topics_ready` first)")
        return {**self._client_settings, "bootstrap.servers": self._bootstrap}

    @property
    def _client_settings(self) -> dict[str, str]:
        """The settings given, with the embedded broker's login when it requires one."""
        return {**self._login, **self.config.client_settings}

    @property
    def steps(self) -> list[Step]:
        """The startup steps in order, with elapsed seconds."""
        return [step.view() for step in self._steps.values()]

    @property
    def topics_ready(self) -> bool:
        """True once the broker answers and the topics exist: clients (Tail, OffsetWatcher) may start."""
        return self._steps["topics"].state is StepState.DONE

    @property
    def started(self) -> bool:
        """True once every step but the first batch is done or skipped."""
        return all(s.state in (StepState.DONE, StepState.SKIPPED)
                   for name, s in self._steps.items() if name != "first batch")

    @property
    def restarts(self) -> dict[str, int]:
        """Automatic restarts done so far, by process name."""
        return {name: plan.total for name, plan in self._restarts.items()}

    @property
    def error(self) -> str | None:
        """Why startup failed, or None."""
        return self._error

    @property
    def processes(self) -> list[ProcessView]:
        """Broker (when embedded), Spark job and producer, as they are now."""
        views = []
        if self.config.bootstrap is None:
            views.append(self._broker_view())
        for name in (SPARK, PRODUCER):
            child = self._children.get(name)
            if child is not None:
                view = child.view()
                pending = self._restarts[name].view()
                views.append(dataclasses.replace(view, restart=pending) if pending else view)
            elif (name == SPARK and self.config.run_spark) or (name == PRODUCER and self.config.run_producer):
                views.append(ProcessView(name, ProcState.STOPPED, None, None, None, None, [], None))
        return views

    def process(self, name: str) -> ProcessView | None:
        """One process's view by name (broker, spark, producer)."""
        return next((view for view in self.processes if view.name == name), None)

    def command(self, name: str) -> list[str]:
        """The command line the producer or the Spark job is started with (once the broker is known)."""
        if name not in (PRODUCER, SPARK):
            raise ValueError(f"no child process named {name!r}")
        return self._argv(name)

    def log_path(self, name: str) -> Path | None:
        """Where one process's full log is."""
        if name == BROKER:
            return self._broker.log_path if self._broker else None
        child = self._children.get(name)
        return child.log_path if child else None

    def _broker_state(self) -> ProcState:
        broker = self._broker
        if broker is None or broker.process is None:
            starting = self._steps["broker"].state is StepState.RUNNING
            return ProcState.STARTING if starting else ProcState.STOPPED
        if broker.process.poll() is None:
            if self._broker_stopping:
                return ProcState.STOPPING
            return ProcState.RUNNING if self._steps["broker"].state is StepState.DONE else ProcState.STARTING
        return ProcState.STOPPED if self._broker_stopping else ProcState.FAILED

    def _broker_view(self, lines: int = 20) -> ProcessView:
        broker = self._broker
        state = self._broker_state()
        last = _tail_lines(broker.log_path, lines) if broker else []
        code = broker.process.returncode if broker and broker.process else None
        error = None
        if state is ProcState.FAILED:
            errors = [line for line in last if ERROR_LINE.search(line)]
            error = errors[-1] if errors else (last[-1] if last else None)
        pid = broker.pid if broker and broker.process and broker.process.poll() is None else None
        uptime = None
        if pid is not None and self._steps["broker"].started is not None:
            uptime = time.monotonic() - self._steps["broker"].started
        return ProcessView(BROKER, state, pid, uptime, code, error, last, broker.log_path if broker else None)

    # --- starting ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin the startup steps in the background; returns at once (idempotent)."""
        with self._lock:
            if self._launcher is not None or self._stopped:
                return
            self._launcher = ThreadPoolExecutor(1, thread_name_prefix="txmon-launcher")
        self._submit(self._startup)

    def _submit(self, task: Callable[[], None]) -> Future[None] | None:
        """Run `task` on the launcher thread (the parent of every child), unless we are stopping."""
        if self._launcher is None or self._stopping.is_set():
            return None
        try:
            future = self._launcher.submit(task)
        except RuntimeError:
            return None  # shut down meanwhile
        future.add_done_callback(self._surface_failure)
        return future

    def _surface_failure(self, future: Future[None]) -> None:
        """An unexpected error in a launcher task becomes the pipeline's error (shown), never lost."""
        if not future.cancelled() and (exc := future.exception()) is not None:
            self._error = f"{type(exc).__name__}: {exc}"

    def _startup(self) -> None:
        current = None
        try:
            for name, action in (("broker", self._start_broker), ("topics", self._create_topics),
                                 ("spark session", self._start_spark), ("producer", self._start_producer)):
                current = self._steps[name]
                current.begin()
                skipped = action()
                current.finish(StepState.SKIPPED if skipped else StepState.DONE)
            current = None
            self._watch_first_batch()
        except STARTUP_ERRORS as exc:
            if self._stopping.is_set():
                return
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if current is not None:
                current.finish(StepState.FAILED, detail)
                self._error = f"{current.name}: {detail}"

    def _start_broker(self) -> bool:
        if self.config.bootstrap is not None:
            self._wait_broker(self.config.bootstrap)
            return False
        self._broker = EmbeddedBroker(self.data_dir / "broker", login=self.config.broker_login)
        self._broker.start()
        if self._broker.security is not None:
            self._login = self._broker.security.client_settings()
        self._bootstrap = self._broker.bootstrap
        self._wait_broker(self._bootstrap)
        return False

    def _wait_broker(self, bootstrap: str) -> None:
        """Until an admin client lists topics; interruptible by stop()."""
        settings = {**self._client_settings, "bootstrap.servers": bootstrap}
        admin, fatal = topics.access_admin({**settings, "logger": _QUIET})
        timeout = BROKER_TIMEOUT if self._broker is not None else NAMED_BROKER_TIMEOUT
        deadline = time.monotonic() + timeout
        while not self._stopping.is_set():
            broker = self._broker
            if broker is not None and broker.process is not None and broker.process.poll() is not None:
                tail = " | ".join(_tail_lines(broker.log_path, 3))
                raise StepFailed(f"the embedded broker exited (code {broker.process.returncode}): {tail}")
            try:
                admin.list_topics(timeout=1.0)
                return
            except KafkaException:
                admin.poll(0)  # serves error_cb: refused credentials will not mend by waiting
                if fatal:
                    raise StepFailed(topics.describe_fatal(fatal[0], settings)) from None
            if time.monotonic() > deadline:
                hint = "" if self._broker is not None else ": is it running, and is -b right?"
                raise StepFailed(f"no Kafka broker answered at {bootstrap} within {timeout:.0f} s{hint}")
            self._stopping.wait(0.1)
        raise StepFailed("stopped")

    def _create_topics(self) -> bool:
        names = self.config.topic_names
        if not self.config.read_only:
            topics.ensure_topics(self.client_config, names.all, partitions=self.config.partitions)
            return False
        # Read-only: the topics the monitor reads must already be there; creating them would be a write.
        admin, fatal = topics.access_admin({**self.client_config, "logger": _QUIET})
        existing = topics.check_access(admin, self.client_config, fatal, NAMED_BROKER_TIMEOUT)
        missing = [name for name in (names.alerts, names.metrics) if name not in existing]
        if missing:
            raise StepFailed(f"no topic {', '.join(missing)} on {self._bootstrap}: a read-only monitor "
                             "creates none (name the cluster's topics with --alerts-topic/--metrics-topic "
                             "or [topics], or start the job with --with-spark)")
        return False

    @property
    def _client_settings_file(self) -> Path:
        return self.data_dir / "run" / "client.conf"

    def _argv(self, name: str) -> list[str]:
        config = self.config
        settings: list[str] = []
        if client_settings := self._client_settings:
            # Through a 0600 file, not -X: a child's command line is visible to every local user, and
            # the settings may hold a SASL password.
            write_client_config(self._client_settings_file, client_settings)
            settings = ["--client-config", str(self._client_settings_file)]
        if config.settings_path is not None:
            # Rules size the producer's injected patterns and drive the Spark job's rules query.
            settings += ["--settings", str(config.settings_path)]
        assert self._bootstrap is not None
        if name == PRODUCER:
            seed = ["--seed", str(config.seed)] if config.seed is not None else []
            # --commands: the monitor's keys inject the patterns the account rules look for (inject()).
            return [sys.executable, "-m", "producer", "-b", self._bootstrap,
                    "--rate", number_arg(config.rate), "--commands",
                    "--large-threshold", number_arg(config.large_threshold), *seed, *settings,
                    *config.topic_names.flags(only=["transactions"])]
        # On the embedded broker the job follows the rules versions the monitor's R screen publishes; on
        # a cluster the job that runs there decides (txmon-spark --live-rules).
        live = ["--live-rules"] if config.bootstrap is None else []
        return [sys.executable, "-m", "spark_app", "-b", self._bootstrap, "--data-dir", str(self.data_dir),
                "--large-threshold", number_arg(config.large_threshold),
                "--alert-threshold", number_arg(config.alert_threshold), *settings,
                *config.topic_names.flags(), *live]

    def _child(self, name: str) -> Child:
        child = self._children.get(name)
        if child is None:
            child = Child(
                name,
                self._argv(name),
                log_path=self.data_dir / "logs" / f"{name}.log",
                ready_marker=PRODUCER_READY if name == PRODUCER else SPARK_READY,
                # The Spark driver stops its queries through its JVM: SIGTERM the driver alone first.
                terminate_group=name != SPARK,
                # If the monitor is killed, these must be gone within 10 s: no graceful path then (the
                # Spark JVM exits by itself once its driver's stdin pipe closes, measured ~2 s).
                death_signal=signal.SIGKILL,
                commands=name == PRODUCER,
            )
            self._children[name] = child
        child.argv = self._argv(name)  # the rate may have changed
        return child

    def _start_and_wait(self, name: str, timeout: float) -> None:
        """Start a child (on the launcher thread) and wait until it prints its ready line."""
        child = self._child(name)
        child.start()
        deadline = time.monotonic() + timeout
        while not self._stopping.is_set():
            state = child.poll()
            if state is ProcState.RUNNING:
                return
            if state is not ProcState.STARTING:
                reason = child.last_error() or "no output"
                raise StepFailed(f"the {name} exited before it was ready: {reason}")
            if time.monotonic() > deadline:
                raise StepFailed(f"the {name} was not ready within {timeout:.0f} s; see {child.log_path}")
            self._stopping.wait(0.1)

    def _start_spark(self) -> bool:
        if not self.config.run_spark:
            return True
        self._metrics_baseline = self._metrics_total()
        self._start_and_wait(SPARK, SPARK_TIMEOUT)
        return False

    def _start_producer(self) -> bool:
        if not self.config.run_producer:
            return True
        self._start_and_wait(PRODUCER, PRODUCER_TIMEOUT)
        return False

    def _metrics_total(self) -> int | None:
        watcher = OffsetWatcher(self.client_config)
        try:
            return watcher.end_offset_total(self.config.topic_names.metrics)
        finally:
            watcher.close()

    def _watch_first_batch(self) -> None:
        """Mark "first batch" done when the metrics topic grows; in its own thread (it spawns nothing)."""
        baseline = getattr(self, "_metrics_baseline", None)
        if baseline is None:
            baseline = self._metrics_total() or 0
        step = self._steps["first batch"]
        step.begin()

        def watch() -> None:
            watcher = OffsetWatcher(self.client_config)
            try:
                while not self._stopping.wait(0.5):
                    total = watcher.end_offset_total(self.config.topic_names.metrics)
                    if total is not None and total > baseline:
                        step.finish(StepState.DONE)
                        return
            finally:
                watcher.close()

        threading.Thread(target=watch, name="txmon-first-batch", daemon=True).start()

    # --- running ----------------------------------------------------------------------------------

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
        if self._broker is None:
            return
        self._broker_stopping = True
        self._broker.stop(STOP_TIMEOUTS[BROKER])
        self._broker_stopping = False
        if self._stopping.is_set():
            return
        self._broker.start()
        try:
            self._wait_broker(self._broker.bootstrap)
        except StepFailed as exc:
            self._error = f"broker restart: {exc}"

    # --- stopping ---------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop producer, Spark job and broker in that order, each gracefully then forcibly (idempotent)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._stopping.set()
        for name in (PRODUCER, SPARK):
            if name in self._children:
                self._children[name].stop(STOP_TIMEOUTS[name])
        if self._launcher is not None:
            # Waits for the launcher's current task, which sees `_stopping` within 0.1 s.
            self._launcher.shutdown(wait=True, cancel_futures=True)
        for name in (PRODUCER, SPARK):
            if name in self._children:
                self._children[name].stop(STOP_TIMEOUTS[name])  # in case one was started meanwhile
        if self._broker is not None:
            self._broker_stopping = True
            self._broker.stop(STOP_TIMEOUTS[BROKER])
        self._client_settings_file.unlink(missing_ok=True)


def describe_steps(steps: list[Step]) -> str:
    """One line such as `broker 3.1 s ✓, topics 0.2 s ✓, spark session 5 s…` (for logs and headless)."""
    marks = {StepState.DONE: "done", StepState.FAILED: "FAILED", StepState.SKIPPED: "skipped",
             StepState.RUNNING: "…", StepState.PENDING: "pending"}
    parts = []
    for step in steps:
        elapsed = f" {step.elapsed:.1f} s" if step.elapsed is not None else ""
        parts.append(f"{step.name}{elapsed} {marks[step.state]}")
    return ", ".join(parts)

