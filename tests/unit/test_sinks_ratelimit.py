"""Rate limits: the one-minute window and how a backlog becomes singles plus one digest."""

from __future__ import annotations

from txmon_sinks.ratelimit import RateLimiter, batch_size, plan_messages


def test_window_allows_n_per_minute_and_frees_them_a_minute_later() -> None:
    limiter = RateLimiter(3)
    assert limiter.available(100.0) == 3
    limiter.record(100.0)
    limiter.record(110.0, 2)
    assert limiter.available(120.0) == 0
    assert limiter.next_free(120.0) == 160.0
    assert limiter.available(160.0) == 1
    assert limiter.available(170.0) == 3


def test_zero_means_unlimited() -> None:
    limiter = RateLimiter(0)
    limiter.record(1.0, 1000)
    assert limiter.available(1.0) is None
    assert limiter.next_free(1.0) == 1.0


def test_within_budget_every_alert_goes_alone() -> None:
    assert plan_messages(3, 5, 100) == [1, 1, 1]
    assert plan_messages(4, None, 100) == [1, 1, 1, 1]


def test_over_budget_the_last_message_is_a_digest_of_the_rest() -> None:
    assert plan_messages(10, 3, 100) == [1, 1, 8]
    assert plan_messages(10, 1, 100) == [10]
    assert plan_messages(500, 3, 100) == [1, 1, 100]  # the remainder waits for the next minute


def test_nothing_to_send_or_no_budget_sends_nothing() -> None:
    assert plan_messages(0, 5, 100) == []
    assert plan_messages(7, 0, 100) == []


def test_batch_sinks_write_within_budget_and_cap() -> None:
    assert batch_size(5000, None, 1000) == 1000
    assert batch_size(30, 20, 1000) == 20
    assert batch_size(30, None, 1000) == 30
