"""Triage in the feed: marks, silenced rows hidden or dimmed and counted, silences with time left."""

from __future__ import annotations

from spark_app.formats import Alert
from txmon_core.triage import ACK, NOTE, SCOPE_ACCOUNT, SILENCE, TriageRecord, TriageState, iso
from txmon_tui.monitor.feed import FeedRow
from txmon_tui.monitor.triage_view import silence_lines, triage_feed, triage_status

NOW = 1_800_000_000.0


def row(tx_id: str, account: str) -> FeedRow:
    alert = Alert(tx_id, account, "Metro", 950.0, "RON", iso(NOW - 2), "alert", "amount>900", iso(NOW - 1))
    return FeedRow(alert, 1.0, NOW)


def state() -> TriageState:
    records = [
        TriageRecord(ACK, "a", "alice", iso(NOW), tx_id="t1"),
        TriageRecord(NOTE, "n", "alice", iso(NOW), tx_id="t1", text="called"),
        TriageRecord(SILENCE, "s", "bob", iso(NOW), "noisy", scope=SCOPE_ACCOUNT, target="quiet",
                     until=iso(NOW + 60)),
    ]
    triage = TriageState()
    for record in records:
        triage.apply(record.key, record)
    return triage


ROWS = [row("t1", "loud"), row("t2", "quiet"), row("t3", "loud")]


def test_silenced_rows_are_hidden_but_counted() -> None:
    feed = triage_feed(ROWS, state(), NOW, show_silenced=False, limit=10)
    assert [(r.row.alert.tx_id, r.mark) for r in feed.rows] == [("t1", "✓✎"), ("t3", "")]
    assert feed.silenced == 1
    assert triage_status(feed, False, 1) == "1 silenced (hidden, z toggles) · 1 silence on"


def test_shown_silenced_rows_are_marked_and_the_silence_ends_on_time() -> None:
    feed = triage_feed(ROWS, state(), NOW, show_silenced=True, limit=10)
    shown = [(r.row.alert.tx_id, r.silenced) for r in feed.rows]
    assert shown == [("t1", False), ("t2", True), ("t3", False)]
    assert feed.rows[1].mark == "◌"
    later = triage_feed(ROWS, state(), NOW + 60, show_silenced=False, limit=10)
    assert later.silenced == 0 and len(later.rows) == 3
    assert silence_lines(state(), NOW + 30) == ["account quiet · 30 s left · bob: noisy"]
    assert silence_lines(state(), NOW + 60) == []


def test_without_triage_the_rows_pass_unmarked() -> None:
    feed = triage_feed(ROWS, None, NOW, show_silenced=False, limit=2)
    assert [r.mark for r in feed.rows] == ["", ""] and feed.silenced == 0
    assert triage_status(feed, False, 0) == ""
