"""`txmon-tui --headless [--duration S]`: the same pipeline and model without a screen, for scripts and
services. Without --duration it runs until SIGTERM (or SIGINT, SIGHUP): delivery and the Prometheus
endpoint as a daemon.

Progress goes to stderr, one line per change of state; one JSON summary goes to stdout at the end. Exit
status: 0 healthy (or, without --duration, stopped by a signal after starting), 3 stalled, 4 the
pipeline could not start (txmon_core.options: 1 and 2 are runtime and usage errors). Everything started
is stopped before returning, however the run ends.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any, TextIO

from txmon_core.options import EXIT_NOT_STARTED, EXIT_OK, EXIT_STALLED
from txmon_core.triage_service import TriageService, silence_test
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.session import MonitorSession
from txmon_tui.monitor.snapshot import Snapshot
from txmon_tui.monitor.statelog import StateLog, warning_key
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.supervise.pipeline import Pipeline
from txmon_tui.supervise.steps import StepState

if TYPE_CHECKING:
    from txmon_sinks.outlets import Outlets

__all__ = ["EXIT_NOT_STARTED", "EXIT_OK", "EXIT_STALLED", "run"]
STARTUP_TIMEOUT = 900.0  # a first run may fetch jars; each step has its own, shorter deadline too
OFFSETS_EVERY = 0.5
SNAPSHOT_EVERY = 1.0


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM, SIGINT and SIGHUP end the run early (with a summary); only possible in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def stalled_reasons(snapshot: Snapshot, config: PipelineConfig) -> list[str]:
    """Why the run counts as stalled: warnings at the end, or a stage that never moved."""
    reasons = list(snapshot.warnings)
    if config.run_producer and snapshot.produced == 0:
        reasons.append("nothing was produced")
    if snapshot.produced > 0 and snapshot.processed == 0 and (config.run_spark or snapshot.batches == 0):
        reasons.append("transactions were produced but Spark processed none")
    return reasons


def summary(snapshot: Snapshot, pipeline: Pipeline, config: PipelineConfig, **extra: Any) -> dict[str, Any]:
    """The JSON summary of a run."""
    reasons = stalled_reasons(snapshot, config)
    return {
        "produced": snapshot.produced,
        "processed": snapshot.processed,
        "flagged": snapshot.flagged,
        "alerts": snapshot.alerts,
        "alerts_large": snapshot.alerts_large,
        "alerts_alert": snapshot.alerts_alert,
        "alerts_rule": snapshot.alerts_rule,
        "dead_letters": snapshot.dead_letters,
        "parquet_rows": snapshot.parquet_rows,
        "duplicates_dropped": snapshot.duplicates,
        "undecodable": snapshot.undecodable,
        "batches": snapshot.batches,
        "backlog": snapshot.backlog,
        "latency_p50_s": _round(snapshot.latency_p50),
        "latency_p99_s": _round(snapshot.latency_p99),
        "warnings": snapshot.warnings,
        "stalled": bool(reasons),
        "stalled_because": reasons,
        "steps": {step.name: {"state": step.state.value, "seconds": _round(step.elapsed, 1)}
                  for step in pipeline.steps},
        "restarts": pipeline.restarts,
        **extra,
    }


def run(config: PipelineConfig, duration: float | None, out: TextIO | None = None, err: TextIO | None = None,
        outlets: Outlets | None = None) -> int:
    """Run the pipeline for `duration` s once it is up (None: until a signal), print the JSON summary,
    return the exit status.

    `outlets` (started by the caller, closed here): alert delivery and the metrics endpoint.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    stop = threading.Event()
    pipeline = Pipeline(config, on_restart=lambda news: print(f"txmon-tui: {news}", file=err, flush=True))
    model = MonitorModel(config.large_threshold, config.alert_threshold)
    session = MonitorSession(model, names=config.topic_names, since_ms=config.since_ms, outlets=outlets)
    triage: TriageService | None = None
    began = time.monotonic()
    running_since: float | None = None
    warnings_seen: list[str] = []
    backfill_said: tuple[int, int] | None = None
    log = StateLog()

    def say(lines: list[str]) -> None:
        for line in lines:
            print(f"txmon-tui: {line}", file=err, flush=True)
    try:
        with _stop_on_signals(stop):
            pipeline.start()
            next_offsets = next_snapshot = 0.0
            while not stop.is_set():
                pipeline.poll()
                say(log.steps(pipeline.steps))
                if pipeline.error or time.monotonic() - began > STARTUP_TIMEOUT and running_since is None:
                    break
                if not session.tailing and pipeline.topics_ready:
                    # Delivery resumes where the last run's delivered alerts were read up to.
                    session.open_tail(pipeline.client_config)
                    session.open_offsets(pipeline.client_config)
                    if outlets is not None:
                        # Silences set in any monitor keep their alerts from the senders here too.
                        triage = TriageService(pipeline.client_config, "headless").start()
                        outlets.delivery.silenced = silence_test(triage)
                if running_since is None and pipeline.started:
                    running_since = time.monotonic()
                if (duration is not None and running_since is not None
                        and time.monotonic() - running_since >= duration):
                    break
                if not session.tailing:
                    stop.wait(0.2)
                    continue
                batch = session.poll(0.2)  # handed to delivery too: returns at once, it has its own threads
                model.apply(batch)
                if batch.backfill is not None and batch.backfill != backfill_said:
                    backfill_said = batch.backfill
                    print(f"txmon-tui: backfill {backfill_said[0]:,}/{backfill_said[1]:,} alerts", file=err,
                          flush=True)
                now = time.monotonic()
                if now >= next_offsets:
                    next_offsets = now + OFFSETS_EVERY
                    model.apply_produced(*session.count_produced())
                    model.apply_processes(pipeline.processes, time.time())
                    say(log.processes(pipeline.processes))
                if now >= next_snapshot:
                    next_snapshot = now + SNAPSHOT_EVERY
                    snapshot = model.snapshot()
                    if outlets is not None:
                        outlets.publish(snapshot)
                    for warning in snapshot.warnings:
                        if warning_key(warning) not in map(warning_key, warnings_seen):
                            warnings_seen.append(warning)
                    say(log.warnings(snapshot.warnings))
                    if outlets is not None:
                        say(log.sinks(outlets.health()))
            if session.tailing:
                model.apply_produced(*session.count_produced())
            model.apply_processes(pipeline.processes, time.time())
            final = model.snapshot()
            ended = time.monotonic()
    finally:
        session.close()
        if triage is not None:
            triage.close()
        pipeline.stop()
        if outlets is not None:
            outlets.close()
    not_started = running_since is None
    error = pipeline.error or ("startup did not finish" if not_started and not stop.is_set() else None)
    report = summary(
        final, pipeline, config,
        duration_s=_round(ended - running_since, 1) if running_since is not None else 0.0,
        startup_s=_round((running_since or time.monotonic()) - began, 1),
        interrupted=stop.is_set(),
        warnings_seen=warnings_seen,
        error=error,
        **({"delivery": outlets.summary()} if outlets is not None else {}),
    )
    if not_started:
        report["stalled"] = True
    print(json.dumps(report, indent=2), file=out, flush=True)
    if error:
        print(f"txmon-tui: error: {error}", file=err, flush=True)  # the one line a person reads
    if not_started or any(s["state"] == StepState.FAILED.value for s in report["steps"].values()):
        return EXIT_NOT_STARTED
    if duration is None and stop.is_set():
        return EXIT_OK  # a service stopped as asked; its stalls were logged as they happened
    return EXIT_STALLED if report["stalled"] else EXIT_OK
