"""Exponential backoff between delivery attempts."""

from __future__ import annotations

import pytest

from txmon_core.backoff import Backoff


def test_doubles_from_the_initial_delay_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.5, factor=2.0, maximum=10.0, jitter=0.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_no_failure_no_wait() -> None:
    assert Backoff().delay(0) == 0.0


def test_jitter_only_shortens_and_stays_within_its_fraction() -> None:
    backoff = Backoff(initial=4.0, maximum=60.0, jitter=0.25)
    assert backoff.delay(1, rand=0.0) == 4.0
    assert backoff.delay(1, rand=0.999) == pytest.approx(3.001, abs=0.01)
    assert backoff.delay(1, rand=5.0) == 3.0  # a rand out of range is clamped


def test_a_sink_down_for_days_does_not_overflow() -> None:
    assert Backoff(maximum=60.0, jitter=0.0).delay(100_000) == 60.0


def test_retry_after_is_honoured_when_longer_but_bounded() -> None:
    backoff = Backoff(initial=1.0, maximum=5.0, jitter=0.0)
    assert backoff.delay(1, retry_after=3.0) == 3.0
    assert backoff.delay(3, retry_after=1.0) == 4.0  # shorter than ours: ours wins
    assert backoff.delay(1, retry_after=10_000.0) == 50.0  # ten times the cap at most
