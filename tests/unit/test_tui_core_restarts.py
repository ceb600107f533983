"""The restart backoff: 2, 4, 8 … capped at 60 s, a new streak after a stable run, the text shown."""

from __future__ import annotations

import math

import pytest

from txmon_core.backoff import Backoff
from txmon_tui.supervise.restarts import RESTART_BACKOFF, PendingRestart, RestartPlan


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_delays_double_from_two_seconds_up_to_a_minute() -> None:
    assert [RESTART_BACKOFF.delay(n) for n in range(1, 9)] == [2, 4, 8, 16, 32, 60, 60, 60]


def test_a_restart_is_due_only_once_its_delay_has_passed() -> None:
    clock = Clock()
    plan = RestartPlan(clock=clock)
    assert not plan.pending and not plan.take_due() and plan.view() is None
    assert plan.failed(ran_for=3.0) == 2.0
    assert plan.pending and plan.view() == PendingRestart(1, 2.0)
    clock.now += 1.9
    assert not plan.take_due()
    clock.now += 0.1
    assert plan.take_due()
    assert not plan.take_due(), "a restart is handed out once"
    assert not plan.pending and plan.total == 1


def test_quick_failures_back_off_and_a_stable_run_starts_a_new_streak() -> None:
    clock = Clock()
    plan = RestartPlan(clock=clock)
    delays = []
    for _ in range(4):
        delays.append(plan.failed(ran_for=5.0))
        clock.now += delays[-1]
        assert plan.take_due()
    assert delays == [2, 4, 8, 16] and plan.attempts == 4
    assert plan.failed(ran_for=59.0) == 32.0  # not quite stable
    clock.now += 32
    assert plan.take_due()
    assert plan.failed(ran_for=60.0) == 2.0 and plan.attempts == 1  # up a minute: forgiven
    assert plan.total == 5


def test_a_process_that_never_started_counts_as_a_quick_failure() -> None:
    plan = RestartPlan(clock=Clock())
    plan.failed(ran_for=None)
    assert plan.failed(ran_for=None) == 4.0


def test_the_user_taking_over_drops_the_schedule_and_the_streak() -> None:
    clock = Clock()
    plan = RestartPlan(clock=clock)
    plan.failed(ran_for=1.0)
    plan.failed(ran_for=1.0)
    plan.reset()
    clock.now += 100
    assert not plan.take_due() and plan.view() is None
    assert plan.failed(ran_for=1.0) == 2.0


def test_a_custom_backoff() -> None:
    clock = Clock()
    backoff = Backoff(initial=0.5, factor=3.0, maximum=2.0, jitter=0.0)
    plan = RestartPlan(backoff, clock=clock, stable_after=10.0)
    assert [plan.failed(ran_for=1.0) for _ in range(4)] == [0.5, 1.5, 2.0, 2.0]
    assert plan.failed(ran_for=10.0) == 0.5


def test_the_pending_restart_reads_as_a_countdown() -> None:
    assert PendingRestart(3, 7.2).text() == "restart 3 in 8 s"
    assert PendingRestart(1, 2.0).text() == "restart 1 in 2 s"
    assert PendingRestart(2, 0.0).text() == "restart 2 now"


def test_a_long_crash_loop_keeps_the_delay_at_its_cap() -> None:
    # A child that dies at once, for hours: 2.0 ** 1024 would overflow a float (OverflowError in the poll).
    clock = Clock()
    plan = RestartPlan(clock=clock)
    for attempt in range(1, 5_001):
        delay = plan.failed(ran_for=0.1)
        assert delay == (60.0 if attempt >= 6 else 2.0 * 2 ** (attempt - 1))
        assert plan.view() == PendingRestart(attempt, delay)
        clock.now += delay
        assert plan.take_due()
    assert plan.total == 5_000 and plan.view() is None


def test_delays_of_any_attempt_stay_within_the_cap() -> None:
    for backoff in (RESTART_BACKOFF, Backoff(initial=0.5, factor=3.0, maximum=2.0, jitter=0.0),
                    Backoff(factor=1.0, jitter=0.0),
                    Backoff(initial=0.001, factor=1.0001, maximum=3600.0, jitter=0.0),
                    Backoff(initial=1.0, factor=1e10, maximum=60.0, jitter=0.0)):
        for attempt in (1, 2, 1_023, 1_024, 1_025, 10**6, 10**18):
            assert backoff.initial <= backoff.delay(attempt) <= backoff.maximum
        assert backoff.delay(10**18) == backoff.maximum or backoff.factor == 1.0


@pytest.mark.parametrize("settings", [{"factor": 0.5}, {"initial": 0.0}, {"initial": 90.0},
                                      {"maximum": math.inf}, {"jitter": 2.0}])
def test_a_backoff_that_would_not_back_off_is_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="a backoff needs"):
        Backoff(**settings)
