"""The SQLite outbox: each alert id once, per-sink cursors that survive a restart, pruning."""

from __future__ import annotations

from pathlib import Path

from txmon_sinks.outbox import Outbox


def _items(*ids: str) -> list[tuple[str, bytes]]:
    return [(alert_id, f'{{"id":"{alert_id}"}}'.encode()) for alert_id in ids]


def test_repeats_are_dropped_within_a_batch_and_across_batches(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    try:
        assert outbox.add(_items("a:alert", "b:large", "a:alert", "a:velocity"), 1.0) == [0, 1, 3]
        assert outbox.add(_items("b:large", "c:alert"), 2.0) == [1]
        pending = [item.alert_id for item in outbox.pending(0, 10)]
        assert pending == ["a:alert", "b:large", "a:velocity", "c:alert"]
    finally:
        outbox.close()


def test_cursors_survive_a_restart_and_a_new_sink_starts_at_the_end(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path)
    assert outbox.register("webhook") == 0
    outbox.add(_items("a:alert", "b:alert", "c:alert"), 1.0)
    first = outbox.pending(0, 2)
    outbox.advance("webhook", first[-1].seq)
    outbox.close()
    reopened = Outbox(path)
    try:
        cursor = reopened.register("webhook")
        assert [item.alert_id for item in reopened.pending(cursor, 10)] == ["c:alert"]
        assert reopened.count_after(cursor) == 1
        late = reopened.register("email")  # configured later: does not replay the history
        assert reopened.count_after(late) == 0
        reopened.advance("webhook", 1)  # a cursor never moves back
        assert reopened.cursor("webhook") == cursor
    finally:
        reopened.close()


def test_prune_forgets_only_what_every_sink_delivered(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite")
    try:
        outbox.register("jsonl")
        outbox.register("webhook")
        outbox.add(_items("a:alert", "b:alert", "c:alert"), 10.0)
        items = outbox.pending(0, 10)
        outbox.advance("jsonl", items[2].seq)
        outbox.advance("webhook", items[0].seq)
        assert outbox.prune(["jsonl", "webhook"], older_than=20.0, keep=1000) == 1
        assert [item.alert_id for item in outbox.pending(0, 10)] == ["b:alert", "c:alert"]
        assert outbox.add(_items("b:alert"), 30.0) == []  # still remembered
        assert outbox.add(_items("a:alert"), 30.0) == [0]  # forgotten: taken as new
    finally:
        outbox.close()
