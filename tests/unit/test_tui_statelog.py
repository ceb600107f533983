"""The service log: one line per change of state, nothing repeated while a state holds."""

from __future__ import annotations

from txmon_sinks.health import DOWN, OK, RETRYING, SinkHealth
from txmon_tui.monitor.statelog import StateLog, warning_key
from txmon_tui.supervise.children import ProcessView, ProcState
from txmon_tui.supervise.steps import Step, StepState


def view(name: str, state: ProcState, pid: int | None = None, code: int | None = None,
         error: str | None = None) -> ProcessView:
    return ProcessView(name, state, pid, None, code, error, [], None)


def sink(state: str, error: str | None = None) -> SinkHealth:
    return SinkHealth("database", state, None if state == OK else 100.0, error, 5, 2, 0, 1, 0, None)


def test_steps_are_logged_when_a_state_changes_not_while_time_passes() -> None:
    log = StateLog()
    first = [Step("topics", StepState.RUNNING, 0.1), Step("producer", StepState.PENDING, None)]
    assert log.steps(first) == ["topics 0.1 s …, producer pending"]
    later = [Step("topics", StepState.RUNNING, 2.5), Step("producer", StepState.PENDING, None)]
    assert log.steps(later) == []
    assert log.steps([Step("topics", StepState.DONE, 2.6), Step("producer", StepState.RUNNING, 0.0)]) == [
        "topics 2.6 s done, producer 0.0 s …"]


def test_processes_say_pid_exit_and_error_once_per_change() -> None:
    log = StateLog()
    assert log.processes([view("producer", ProcState.STOPPED)]) == []  # not started yet: nothing to say
    assert log.processes([view("spark", ProcState.STARTING), view("producer", ProcState.RUNNING, 7)]) == [
        "spark starting", "producer running (pid 7)"]
    assert log.processes([view("spark", ProcState.RUNNING, 42), view("producer", ProcState.RUNNING, 7)]) == [
        "spark running (pid 42)"]
    failed = view("producer", ProcState.FAILED, None, 1, "KafkaException: broker down")
    assert log.processes([view("spark", ProcState.RUNNING, 42), failed]) == [
        "producer failed (code 1): KafkaException: broker down"]
    assert log.processes([view("spark", ProcState.STOPPED, None, -15), failed]) == [
        "spark stopped (killed by SIGTERM)"]


def test_a_warning_is_one_state_while_its_numbers_change_and_is_cleared_once() -> None:
    log = StateLog()
    unreachable = "Kafka broker unreachable for 3 s"
    assert warning_key(unreachable) == warning_key("Kafka broker unreachable for 61 s")
    assert log.warnings([unreachable]) == [f"warning: {unreachable}"]
    assert log.warnings(["Kafka broker unreachable for 9 s"]) == []
    assert log.warnings([]) == ["cleared: Kafka broker unreachable"]
    assert log.warnings([]) == []
    assert log.warnings(["Kafka broker unreachable for 1 s"]) == ["warning: Kafka broker unreachable for 1 s"]


def test_sinks_are_logged_on_trouble_and_recovery_but_not_when_first_seen_ok() -> None:
    log = StateLog()
    assert log.sinks([sink(OK)], now=100.0) == []
    assert log.sinks([sink(RETRYING, "connection refused")], now=103.0) == [
        "sink database retrying for 3s (connection refused) · sent 5 · pending 2 · 0 duplicates"]
    assert log.sinks([sink(RETRYING, "connection refused")], now=104.0) == []
    [down] = log.sinks([sink(DOWN, "connection refused")], now=131.0)
    assert down.startswith("sink database down for 31s")
    assert log.sinks([sink(OK)], now=140.0) == ["sink database ok · sent 5 · pending 2 · 0 duplicates"]
