"""The shared triage state: acknowledgements, silences and their expiry, notes, the codec, the audit."""

from __future__ import annotations

import pytest

from txmon_core.records.alert import Alert
from txmon_core.settings import SettingsError
from txmon_core.triage import (
    ACK,
    NOTE,
    SCOPE_ACCOUNT,
    SCOPE_GROUP,
    SCOPE_RULE,
    SILENCE,
    AuditEntry,
    TriageError,
    TriageRecord,
    TriageSettings,
    TriageState,
    audit,
    decode,
    epoch,
    is_silenced,
    iso,
    silence_line,
    silence_seconds,
)

NOW = 1_800_000_000.0
ACCOUNT = "RO49RZBR0000060012345678"


def alert(tx_id: str = "tx-1", account: str = ACCOUNT, rule: str = "amount>900",
          detected: float = NOW) -> Alert:
    return Alert(tx_id, account, "Mega Image", 950.0, "RON", iso(detected - 1), "alert", rule, iso(detected))


def silence(target: str, scope: str = SCOPE_ACCOUNT, until: float = NOW + 900,
            ident: str = "s1") -> TriageRecord:
    return TriageRecord(SILENCE, ident, "alice", iso(NOW), "noisy", scope=scope, target=target,
                        until=iso(until))


def test_an_acknowledged_alert_is_acked_and_a_tombstone_takes_it_back() -> None:
    state = TriageState()
    ack = TriageRecord(ACK, "a1", "alice", iso(NOW), tx_id="tx-1")
    state.apply(ack.key, ack)
    assert state.is_acked(alert("tx-1")) and not state.is_acked(alert("tx-2"))
    state.apply(ack.key, None)
    assert not state.is_acked(alert("tx-1"))


def test_a_group_ack_covers_the_alerts_detected_until_then_not_later_ones() -> None:
    state = TriageState()
    ack = TriageRecord(ACK, "g1", "bob", iso(NOW), scope=SCOPE_GROUP, account_id=ACCOUNT, level="alert",
                       rule="amount>900", before=iso(NOW))
    state.apply(ack.key, ack)
    assert state.is_acked(alert("old", detected=NOW - 5))
    assert not state.is_acked(alert("new", detected=NOW + 5))
    assert not state.is_acked(alert("other", account="RO00OTHER", detected=NOW - 5))
    state.apply(ack.key, None)
    assert not state.is_acked(alert("old", detected=NOW - 5))


def test_a_silence_covers_its_account_or_rule_until_it_expires() -> None:
    state = TriageState()
    by_account = silence(ACCOUNT, ident="s1")
    by_rule = silence("count(amount>500)>=3 in 60s", SCOPE_RULE, ident="s2")
    state.apply(by_account.key, by_account)
    state.apply(by_rule.key, by_rule)
    assert is_silenced(alert(), state, NOW)
    assert is_silenced(alert(account="RO00OTHER", rule="count(amount>500)>=3 in 60s"), state, NOW)
    assert not is_silenced(alert(account="RO00OTHER"), state, NOW)
    assert not is_silenced(alert(), state, NOW + 900)  # expired on its own, at `until`
    assert state.active_silences(NOW + 899.9) == [by_account, by_rule]
    assert state.active_silences(NOW + 900) == []
    assert not is_silenced(alert(), None, NOW)


def test_notes_are_found_by_alert_or_account() -> None:
    state = TriageState()
    on_alert = TriageRecord(NOTE, "n1", "alice", iso(NOW), tx_id="tx-1", account_id=ACCOUNT, text="called")
    on_account = TriageRecord(NOTE, "n2", "bob", iso(NOW + 1), account_id=ACCOUNT, text="known customer")
    for record in (on_alert, on_account):
        state.apply(record.key, record)
    assert state.notes_about("tx-1", ACCOUNT) == [on_alert, on_account]
    assert state.has_note("tx-1") and not state.has_note("tx-2")


def test_a_copy_does_not_change_with_the_original() -> None:
    state = TriageState()
    copy = state.copy()
    record = silence(ACCOUNT)
    state.apply(record.key, record)
    assert copy.active_silences(NOW) == [] and state.active_silences(NOW) == [record]


def test_records_round_trip_and_bad_ones_are_refused() -> None:
    record = silence(ACCOUNT)
    assert decode(record.encode()) == record
    with pytest.raises(TriageError, match="kind"):
        decode(b'{"kind": "wipe", "id": "x", "operator": "o", "at": "t"}')
    with pytest.raises(TriageError, match="silence: needs"):
        decode(b'{"kind": "silence", "id": "x", "operator": "o", "at": "t", "scope": "account"}')
    with pytest.raises(TriageError, match="operator: must be a string"):
        decode(b'{"kind": "ack", "id": "x", "operator": 3, "at": "t", "tx_id": "a"}')


def test_control_characters_from_kafka_never_reach_the_screen() -> None:
    value = b'{"kind": "note", "id": "x", "operator": "o\\u001b[31m", "at": "t", "text": "a\\u0007b"}'
    record = decode(value)
    assert "\x1b" not in record.operator and "\x07" not in record.text


@pytest.mark.parametrize(("text", "seconds"), [("15m", 900), ("1 h", 3600), ("4h", 14400), ("90", 5400),
                                               ("30s", 30)])
def test_silence_durations(text: str, seconds: float) -> None:
    assert silence_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "0", "-5", "8d", "nan"])
def test_bad_silence_durations_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(TriageError, match="^duration: "):
        silence_seconds(text)


def test_the_health_line_says_what_how_long_who_and_why() -> None:
    assert silence_line(silence(ACCOUNT), NOW + 60) == f"account {ACCOUNT} · 14 m 00 s left · alice: noisy"


def test_the_operator_is_the_setting_else_user_else_operator() -> None:
    named = TriageSettings.from_settings({"triage": {"operator": "carol"}}, {"USER": "dan"})
    assert named.operator == "carol"
    assert TriageSettings.from_settings({}, {"USER": "dan"}).operator == "dan"
    assert TriageSettings.from_settings({}, {}).operator == "operator"
    assert TriageSettings.from_settings({}, {}).can_edit_rules is None  # decided by read-only mode
    assert TriageSettings.from_settings({"triage": {"can_edit_rules": False}}, {}).can_edit_rules is False
    with pytest.raises(SettingsError, match=r"\[triage\] can_edit_rules: must be true or false"):
        TriageSettings.from_settings({"triage": {"can_edit_rules": "yes"}}, {})
    with pytest.raises(SettingsError, match="unknown key"):
        TriageSettings.from_settings({"triage": {"operators": "x"}}, {})


def test_the_audit_is_in_time_order_and_honours_since() -> None:
    ack = TriageRecord(ACK, "a1", "alice", iso(NOW + 10), tx_id="tx-1", reason="seen")
    change = AuditEntry(iso(NOW + 5), "bob", "rules v2: alert_threshold 900 → 800", "more alerts")
    entries = audit([ack], [change])
    assert [e.operator for e in entries] == ["bob", "alice"]
    assert entries[1].line() == f"{iso(NOW + 10)}  alice        acknowledged alert tx-1 — seen"
    assert audit([ack], [change], since=NOW + 6) == [entries[1]]
    assert epoch(iso(NOW)) == NOW
