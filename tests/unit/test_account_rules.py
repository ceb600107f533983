"""The per-account rule state machine, without Spark: velocity once per window, small-then-large."""

from __future__ import annotations

from spark_app.account_rules import AccountRules, AccountState, Event
from txmon_core.records.alert import LEVEL_PATTERN, LEVEL_VELOCITY
from txmon_core.rules import RuleSettings

T0 = 1_795_000_000_000  # ms
SECOND = 1_000


def rules(**settings: object) -> AccountRules:
    return AccountRules(RuleSettings(**settings), large_threshold=500.0)  # type: ignore[arg-type]


def large(n: int, at_s: float, amount: float = 750.0) -> Event:
    return Event(f"tx-{n}", T0 + round(at_s * SECOND), amount, "eMAG", "RON", "ts")


def small(n: int, at_s: float, amount: float = 0.5) -> Event:
    return Event(f"tx-{n}", T0 + round(at_s * SECOND), amount)


def levels(hits: list) -> list[tuple[str, tuple[str, ...]]]:
    return [(hit.level, hit.tx_ids) for hit in hits]


def test_three_flagged_within_the_window_raise_one_velocity_alert() -> None:
    state = AccountState()
    hits = rules().process(state, [large(1, 0), large(2, 10), large(3, 59)])
    assert levels(hits) == [(LEVEL_VELOCITY, ("tx-1", "tx-2", "tx-3"))]
    assert hits[0].trigger.tx_id == "tx-3"
    assert hits[0].alert_id == "velocity:tx-3"


def test_a_burst_raises_one_alert_per_window_not_one_per_transaction() -> None:
    machine, state = rules(), AccountState()
    hits = machine.process(state, [large(n, n * 0.1) for n in range(10)])
    assert levels(hits) == [(LEVEL_VELOCITY, ("tx-0", "tx-1", "tx-2"))]
    # A steady flow: one more alert once a whole window has passed since the last one.
    later = [large(100 + n, 30 + n * 10) for n in range(6)]  # 30 s … 80 s
    hits = machine.process(state, later)
    # The first window ended at 0.2 s: 60 s later is still within a window of it, 70 s is not.
    assert levels(hits) == [(LEVEL_VELOCITY, ("tx-102", "tx-103", "tx-104"))]
    assert hits[0].trigger.ts_ms - T0 == 70 * SECOND


def test_spread_out_flagged_transactions_raise_nothing() -> None:
    state = AccountState()
    assert rules().process(state, [large(1, 0), large(2, 40), large(3, 80.001), large(4, 120.002)]) == []
    # Exactly the window apart still counts as within it.
    assert levels(rules().process(AccountState(), [large(1, 0), large(2, 30), large(3, 60)]))


def test_unflagged_transactions_do_not_count() -> None:
    state = AccountState()
    events = [large(1, 0), large(2, 1, amount=500.0), large(3, 2), large(4, 3, amount=499.99)]
    assert rules().process(state, events) == []


def test_state_survives_an_encode_decode_between_batches() -> None:
    machine = rules()
    text = AccountState().encode()
    for n, at in enumerate((0, 5)):
        state = AccountState.decode(text)
        assert machine.process(state, [large(n, at)]) == []
        text = state.encode()
    state = AccountState.decode(text)
    hits = machine.process(state, [large(9, 6)])
    assert levels(hits) == [(LEVEL_VELOCITY, ("tx-0", "tx-1", "tx-9"))]
    # The cool-down is part of the state too: no second alert after another round trip.
    state = AccountState.decode(state.encode())
    assert machine.process(state, [large(10, 7), large(11, 8)]) == []


def test_a_replayed_transaction_counts_once() -> None:
    state = AccountState()
    assert rules().process(state, [large(1, 0), large(1, 0), large(2, 1)]) == []


def test_out_of_order_events_within_a_batch_are_sorted_by_event_time() -> None:
    hits = rules().process(AccountState(), [large(3, 20), large(1, 0), large(2, 10)])
    assert levels(hits) == [(LEVEL_VELOCITY, ("tx-1", "tx-2", "tx-3"))]


def test_a_late_event_can_complete_a_window_of_earlier_batches() -> None:
    machine, state = rules(), AccountState()
    assert machine.process(state, [large(1, 0), large(3, 20)]) == []
    hits = machine.process(state, [large(2, 10)])
    assert levels(hits) == [(LEVEL_VELOCITY, ("tx-1", "tx-2", "tx-3"))]


def test_velocity_state_is_bounded_by_the_count() -> None:
    machine, state = rules(velocity_count=4), AccountState()
    machine.process(state, [large(n, n * 100) for n in range(50)])
    assert len(state.flagged) == 3
    assert [tx for _, tx in state.flagged] == ["tx-47", "tx-48", "tx-49"]


def test_a_count_of_one_alerts_on_the_first_flagged_transaction_of_each_window() -> None:
    hits = rules(velocity_count=1).process(AccountState(), [large(1, 0), large(2, 30), large(3, 61)])
    assert levels(hits) == [(LEVEL_VELOCITY, ("tx-1",)), (LEVEL_VELOCITY, ("tx-3",))]


def test_small_then_large_within_the_window_is_a_pattern() -> None:
    hits = rules().process(AccountState(), [small(1, 0), large(2, 59.9)])
    assert levels(hits) == [(LEVEL_PATTERN, ("tx-1", "tx-2"))]
    assert hits[0].alert_id == "pattern:tx-2"


def test_small_then_large_in_the_same_millisecond_is_a_pattern() -> None:
    # The large one sorts first by tx_id; a small one of the same instant still goes first.
    hits = rules().process(AccountState(), [large(1, 0), small(2, 0)])
    assert levels(hits) == [(LEVEL_PATTERN, ("tx-2", "tx-1"))]


def test_small_then_large_too_late_or_in_the_wrong_order_is_no_pattern() -> None:
    assert rules().process(AccountState(), [small(1, 0), large(2, 60.001)]) == []
    assert rules().process(AccountState(), [large(1, 0), small(2, 1)]) == []
    # Exactly 1 RON is not under 1 RON.
    assert rules().process(AccountState(), [small(1, 0, amount=1.0), large(2, 1)]) == []


def test_one_card_test_raises_one_pattern_alert() -> None:
    machine, state = rules(), AccountState()
    hits = machine.process(state, [small(1, 0), large(2, 1)])
    assert levels(hits) == [(LEVEL_PATTERN, ("tx-1", "tx-2"))]
    assert machine.process(state, [large(3, 2, amount=600.0)]) == []  # two flagged only: no velocity


def test_the_newest_small_transaction_gives_the_large_one_the_most_time() -> None:
    hits = rules().process(AccountState(), [small(1, 0), small(2, 30), large(3, 80)])
    assert levels(hits) == [(LEVEL_PATTERN, ("tx-2", "tx-3"))]


def test_a_large_transaction_can_complete_both_rules() -> None:
    hits = rules().process(AccountState(), [large(1, 0), small(2, 1), large(3, 2), large(4, 3)])
    assert levels(hits) == [(LEVEL_PATTERN, ("tx-2", "tx-3")),
                            (LEVEL_VELOCITY, ("tx-1", "tx-3", "tx-4"))]


def test_settings_change_the_rules() -> None:
    machine = rules(velocity_count=2, velocity_window=5.0, small_amount=10.0, pattern_window=1.0)
    assert levels(machine.process(AccountState(), [large(1, 0), large(2, 5)]))
    assert machine.process(AccountState(), [large(1, 0), large(2, 5.001)]) == []
    assert levels(machine.process(AccountState(), [small(1, 0, amount=9.99), large(2, 1)]))
    assert machine.process(AccountState(), [small(1, 0, amount=9.99), large(2, 1.001)]) == []


def test_the_state_expires_a_window_after_its_newest_event() -> None:
    machine, state = rules(velocity_window=60.0, pattern_window=90.0), AccountState()
    machine.process(state, [large(1, 0), small(2, 10)])
    assert machine.expires_at(state) == T0 + 10 * SECOND + 90 * SECOND + 1
