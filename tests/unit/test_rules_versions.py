"""Rules versions: validation with one line naming the key, the JSON codec, history lines."""

from __future__ import annotations

import orjson
import pytest

from txmon_core.rules import RuleSettings
from txmon_core.rules_log import (
    KEYS,
    Rules,
    RulesError,
    RulesVersion,
    decode,
    history_lines,
    parse_assignments,
    version_key,
)

BASE = Rules(500.0, 900.0)


def version(number: int, rules: Rules = BASE, reason: str = "why") -> RulesVersion:
    return RulesVersion(number, rules, "alice", f"2026-12-05T10:00:0{number}.000Z", reason)


def test_a_version_round_trips_through_its_json() -> None:
    original = version(3, Rules(400.0, 800.0, RuleSettings(velocity_count=5, enabled=False)))
    assert decode(original.encode()) == original
    assert sorted(orjson.loads(original.encode())["settings"]) == sorted(KEYS)


def test_keys_are_zero_padded_so_they_sort_and_never_collide() -> None:
    assert version_key(42) == "0000000042"
    assert version(7).key == "0000000007"


@pytest.mark.parametrize(("words", "message"), [
    (["alert_threshold=400"], "alert_threshold: must be above large_threshold (500), got 400"),
    (["large_threshold=0"], "large_threshold: must be a number > 0, got 0.0"),
    (["large_threshold=abc"], "large_threshold: must be a number, got 'abc'"),
    (["velocity_count=2.5"], "velocity_count: must be a whole number >= 1, got '2.5'"),
    (["velocity_count=0"], "velocity_count: must be a whole number >= 1, got 0"),
    (["lateness=-1"], "lateness: must be a number >= 0, got -1.0"),
    (["small_amount=0"], "small_amount: must be a number > 0, got 0.0"),
    (["enabled=maybe"], "enabled: must be true or false, got 'maybe'"),
    (["velocity=3"], "velocity: unknown setting; known: large_threshold, alert_threshold, enabled"),
    (["alert_threshold"], "'alert_threshold': expected key=value, e.g. alert_threshold=800"),
    (["pattern_window=inf"], "pattern_window: must be a finite number, got 'inf'"),
])
def test_bad_values_are_refused_with_one_line_naming_the_key(words: list[str], message: str) -> None:
    with pytest.raises(RulesError) as caught:
        BASE.with_changes(parse_assignments(words))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_good_changes_apply_with_their_types() -> None:
    rules = BASE.with_changes(parse_assignments(["alert_threshold=800", "velocity_count=4", "enabled=off"]))
    assert rules.alert_threshold == 800.0
    assert rules.account.velocity_count == 4 and rules.account.enabled is False
    assert rules.large_threshold == 500.0


def test_nothing_to_change_is_refused() -> None:
    with pytest.raises(RulesError, match="nothing to change"):
        parse_assignments([])


@pytest.mark.parametrize(("value", "message"), [
    (b"not json", "not JSON"),
    (b"[1]", "not a JSON object"),
    (b'{"version": 0, "settings": {}, "author": "a", "at": "t", "reason": "r"}', "version: must be"),
    (b'{"version": 1, "settings": {"large_threshold": 1}, "author": "a", "at": "t", "reason": "r"}',
     "alert_threshold: missing"),
])
def test_a_damaged_record_is_refused_naming_the_field(value: bytes, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        decode(value)


def test_history_lines_show_who_when_old_to_new_and_why_newest_first() -> None:
    versions = [version(1, reason="seeded"), version(2, Rules(500.0, 800.0), "more alerts")]
    lines = history_lines(versions)
    assert lines[0] == "v2  2026-12-05T10:00:02.000Z  alice: alert_threshold 900 → 800 — more alerts"
    assert lines[1].startswith("v1  2026-12-05T10:00:01.000Z  alice: initial — seeded")


def test_changes_list_only_what_differs() -> None:
    new = version(2, Rules(500.0, 900.0, RuleSettings(lateness=10.0)))
    assert new.changes_from(version(1)) == [("lateness", 30.0, 10.0)]
