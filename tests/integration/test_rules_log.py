"""Rules versions on the real broker: seed, publish, latest, history, the watcher; bad changes refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from tests.support.waiting import wait_until
from txmon_core import rules_log
from txmon_core.broker import EmbeddedBroker
from txmon_core.compacted import read_range, write
from txmon_core.rules import RuleSettings
from txmon_core.rules_log import Rules, RulesError, RulesWatcher
from txmon_core.topics import RULES

pytestmark = pytest.mark.integration


@pytest.fixture
def client(broker: EmbeddedBroker) -> Iterator[dict[str, str]]:
    """The broker with an empty `txmon.rules` (deleted and created again for each test)."""
    config = {"bootstrap.servers": broker.bootstrap}
    admin = AdminClient(config)
    if RULES in admin.list_topics(timeout=10).topics:
        admin.delete_topics([RULES])[RULES].result(10)
        wait_until(lambda: RULES not in admin.list_topics(timeout=10).topics, 20, "txmon.rules deleted")
    yield config


def test_the_topic_is_compacted_and_seeded_once_from_the_settings_file(client: dict[str, str]) -> None:
    assert rules_log.latest(client) is None
    file_rules = Rules(500.0, 900.0, RuleSettings(velocity_count=4))
    first = rules_log.seed_if_empty(client, file_rules)
    assert (first.version, first.rules, first.author) == (1, file_rules, "settings file")
    again = rules_log.seed_if_empty(client, Rules(100.0, 200.0))  # not empty any more: nothing written
    assert again == first
    assert len(read_range(client, RULES)) == 1
    resource = ConfigResource(ConfigResource.Type.TOPIC, RULES)
    admin = AdminClient(client)  # kept: a destroyed client cancels its requests
    described = admin.describe_configs([resource])[resource].result(10)
    assert described["cleanup.policy"].value == "compact"


def test_publish_numbers_versions_and_history_keeps_who_when_old_new_why(client: dict[str, str]) -> None:
    rules_log.seed_if_empty(client, Rules(500.0, 900.0))
    second = rules_log.publish(client, {"alert_threshold": 800.0}, "alice", "more alerts")
    third = rules_log.publish(client, {"velocity_count": 5}, "bob", "fewer velocity alerts")
    assert (second.version, third.version) == (2, 3)
    assert rules_log.latest(client) == third
    assert third.rules.alert_threshold == 800.0 and third.rules.account.velocity_count == 5
    history = rules_log.history(client)
    assert [v.version for v in history] == [1, 2, 3]
    lines = rules_log.history_lines(history)
    assert lines[0].endswith("bob: velocity_count 3 → 5 — fewer velocity alerts")
    assert lines[1].endswith("alice: alert_threshold 900 → 800 — more alerts")
    # Every version has its own key, so compaction keeps them all.
    assert [r.key for r in read_range(client, RULES)] == ["0000000001", "0000000002", "0000000003"]


def test_bad_or_empty_changes_are_refused_and_nothing_is_written(client: dict[str, str]) -> None:
    rules_log.seed_if_empty(client, Rules(500.0, 900.0))
    with pytest.raises(RulesError, match=r"^alert_threshold: must be above large_threshold \(500\)"):
        rules_log.publish(client, {"alert_threshold": 400.0}, "alice", "oops")
    with pytest.raises(RulesError, match="^nothing changes: version 1"):
        rules_log.publish(client, {"alert_threshold": 900.0}, "alice", "same")
    with pytest.raises(RulesError, match="^reason"):
        rules_log.publish(client, {"alert_threshold": 800.0}, "alice", "  ")
    assert len(read_range(client, RULES)) == 1


def test_a_change_before_any_version_is_refused(client: dict[str, str]) -> None:
    with pytest.raises(RulesError, match="no rules version yet"):
        rules_log.publish(client, {"alert_threshold": 800.0}, "alice", "first")


def test_the_watcher_starts_at_the_latest_and_follows_new_versions(client: dict[str, str]) -> None:
    rules_log.seed_if_empty(client, Rules(500.0, 900.0))
    rules_log.publish(client, {"alert_threshold": 850.0}, "alice", "try")
    with RulesWatcher(client) as watcher:
        assert watcher.wait_caught_up(20), "the watcher never read the versions already there"
        current = watcher.current()
        assert current is not None and current.version == 2
        published = rules_log.publish(client, {"alert_threshold": 800.0}, "bob", "more")
        seen = watcher.wait_for_version(3, 5.0)
        assert seen == published
        assert watcher.current() == published
        assert watcher.wait_for_version(4, 0.2) is None


def test_a_foreign_record_on_the_topic_does_not_hide_the_version_in_force(client: dict[str, str]) -> None:
    rules_log.seed_if_empty(client, Rules(500.0, 900.0))
    write(client, RULES, [(f"junk-{uuid.uuid4().hex}", b"{not json")])
    latest = rules_log.latest(client)
    assert latest is not None and latest.version == 1
