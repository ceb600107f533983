"""The pipeline the monitor runs: embedded broker (when none is named), topics, Spark job, producer.

Nothing here blocks the caller. Every process is started from one long-lived launcher thread owned by
the pipeline: the slow steps (formatting the broker's storage, waiting for readiness) run there, and
PR_SET_PDEATHSIG, which is tied to the thread that forked, fires only when that thread (so the whole
monitor) is gone. The caller only reads states; `poll()` refreshes them, and restarts (on the
launcher, after a backoff) a Spark job or producer that died on its own.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from confluent_kafka import KafkaException

from txmon_core import jars, topics
from txmon_core.broker import BrokerError
from txmon_core.secure import write_client_config
from txmon_tui.readers import OffsetWatcher
from txmon_tui.supervise.broker import BROKER, NAMED_BROKER_TIMEOUT, QUIET, BrokerProcess, wait_for_broker
from txmon_tui.supervise.children import Child, ProcessView, ProcState, log_end, output_line
from txmon_tui.supervise.config import PRODUCER, SPARK, PipelineConfig, number_arg
from txmon_tui.supervise.controls import STOP_TIMEOUTS, PipelineControls
from txmon_tui.supervise.steps import Step, StepClock, StepFailed, StepState

PRODUCER_READY = "producing to"
SPARK_READY = "spark job running"
SPARK_TIMEOUT = 600.0  # the first run may fetch the connector jars from Maven Central
PRODUCER_TIMEOUT = 60.0
LOG_VIEW_BYTES = 256 << 10  # the log view shows the last 256 KiB (re-read every 2 s); files reach 64 MiB


# What a startup step may fail with, shown on the step; anything else is a bug and surfaces as such.
STARTUP_ERRORS = (StepFailed, BrokerError, KafkaException, jars.MissingToolError, jars.FetchError, OSError)


class Pipeline(PipelineControls):
    """Starts, watches and stops the broker, the Spark job and the producer (keys and restarts: controls)."""

    def __init__(self, config: PipelineConfig, on_restart: Callable[[str], None] | None = None) -> None:
        self.config = config
        self._on_restart = on_restart  # told one line per automatic restart scheduled (headless logs it)
        self.data_dir = Path(config.data_dir)
        self._bootstrap = config.bootstrap
        self._login: dict[str, str] = {}  # the embedded broker's login settings, once it has started
        self._children: dict[str, Child] = {}
        self._steps = {name: StepClock(name) for name in ("broker", "topics", "spark session", "producer",
                                                           "first batch")}
        self._broker = BrokerProcess(self._steps["broker"])  # started only when no broker is named
        self._launcher: ThreadPoolExecutor | None = None
        self._stopping = threading.Event()
        self._stopped = False
        self._error: str | None = None
        self._lock = threading.Lock()
        self._init_controls(config.restart_backoff)

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
    def error(self) -> str | None:
        """Why startup failed, or None."""
        return self._error

    @property
    def processes(self) -> list[ProcessView]:
        """Broker (when embedded), Spark job and producer, as they are now."""
        views = []
        if self.config.bootstrap is None:
            views.append(self._broker.view())
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
            return self._broker.log_path
        child = self._children.get(name)
        return child.log_path if child else None

    def read_log(self, name: str) -> str:
        """The end of one process's log file (up to LOG_VIEW_BYTES), for the log view; blocking I/O."""
        path = self.log_path(name)
        if path is None:
            return f"(no log for {name})"
        text = log_end(path, LOG_VIEW_BYTES)
        if text is None:
            return f"(no log yet at {path})"
        return "\n".join(map(output_line, text.split("\n")))

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
            named = {**self._client_settings, "bootstrap.servers": self.config.bootstrap}
            wait_for_broker(named, self._stopping)
            return False
        broker = self._broker.start(self.data_dir, self.config.broker_login)
        if broker.security is not None:
            self._login = broker.security.client_settings()
        self._bootstrap = broker.bootstrap
        wait_for_broker(self.client_config, self._stopping, broker)
        return False

    def _create_topics(self) -> bool:
        names = self.config.topic_names
        if not self.config.read_only:
            topics.ensure_topics(self.client_config, names.all, partitions=self.config.partitions)
            return False
        # Read-only: the topics the monitor reads must already be there; creating them would be a write.
        admin, fatal = topics.access_admin({**self.client_config, "logger": QUIET})
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
        self._broker.stop()
        self._client_settings_file.unlink(missing_ok=True)
