"""Sink health: ok, retrying since the first failure, down after a while; counts."""

from __future__ import annotations

from txmon_sinks.health import DOWN, OK, RETRYING, HealthTracker


def test_failure_then_down_then_recovery() -> None:
    tracker = HealthTracker("webhook", down_after=30.0)
    tracker.add_pending(5)
    assert tracker.snapshot(0, now=100.0).state == OK
    tracker.failed(100.0, "HTTP 503 from 127.0.0.1:9", next_attempt_at=101.0)
    retrying = tracker.snapshot(2, now=110.0)
    assert (retrying.state, retrying.since) == (RETRYING, 100.0)
    assert retrying.last_error == "HTTP 503 from 127.0.0.1:9"
    assert retrying.next_attempt_at == 101.0 and retrying.duplicates == 2 and retrying.failures == 1
    tracker.failed(125.0, "cannot reach 127.0.0.1:9", next_attempt_at=140.0)
    down = tracker.snapshot(2, now=131.0)
    assert (down.state, down.since, down.last_error) == (DOWN, 100.0, "cannot reach 127.0.0.1:9")
    assert "down for 31s (cannot reach 127.0.0.1:9)" in down.describe(now=131.0)
    tracker.delivered(4, digest=True)
    ok = tracker.snapshot(2, now=132.0)
    assert (ok.state, ok.since, ok.next_attempt_at) == (OK, None, None)
    assert (ok.sent, ok.pending, ok.digests) == (4, 1, 1)
    assert ok.describe(now=132.0) == "webhook ok · sent 4 · pending 1 · 2 duplicates"


def test_a_quarantined_alert_is_counted_shown_and_the_sink_moves_on() -> None:
    tracker = HealthTracker("email", down_after=30.0)
    tracker.set_quarantined(2)
    tracker.add_pending(3)
    tracker.failed(100.0, "SMTP 127.0.0.1:25: SMTPDataError: (554, b'refused')", next_attempt_at=101.0)
    tracker.quarantined()
    health = tracker.snapshot(0, now=102.0)
    assert (health.state, health.pending, health.quarantined) == (OK, 2, 3)
    assert health.describe(now=102.0) == "email ok · sent 0 · pending 2 · 0 duplicates · 3 quarantined"
