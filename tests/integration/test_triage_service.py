"""Shared triage on the real broker: two operators see each other's actions, a late one sees the state,
undo takes an action back, and a silence keeps an account's alerts from the JSONL sink until it ends."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka.admin import AdminClient

from tests.support.waiting import wait_until
from txmon_core.broker import EmbeddedBroker
from txmon_core.records.alert import Alert
from txmon_core.topics import TRIAGE
from txmon_core.triage import SCOPE_ACCOUNT, is_silenced, iso
from txmon_core.triage_service import TriageService, read_records
from txmon_sinks import Delivery
from txmon_sinks.config import delivery_config

pytestmark = pytest.mark.integration
ACCOUNT, OTHER = "RO49RZBR0000060012345678", "RO11BTRL0000000000000001"


def alert(n: int, account: str = ACCOUNT) -> Alert:
    now = time.time()
    return Alert(f"p9-{n:012d}", account, "Metro", 950.0, "RON", iso(now - 0.2), "alert", "amount>900",
                 iso(now))


@pytest.fixture
def client(broker: EmbeddedBroker) -> Iterator[dict[str, str]]:
    """The broker with an empty `txmon.triage`."""
    config = {"bootstrap.servers": broker.bootstrap}
    admin = AdminClient(config)
    if TRIAGE in admin.list_topics(timeout=10).topics:
        admin.delete_topics([TRIAGE])[TRIAGE].result(10)
        wait_until(lambda: TRIAGE not in admin.list_topics(timeout=10).topics, 20, "txmon.triage deleted")
    yield config


@pytest.fixture
def two(client: dict[str, str]) -> Iterator[tuple[TriageService, TriageService]]:
    """Two operators' services on one broker, both caught up."""
    with TriageService(client, "alice") as alice, TriageService(client, "bob") as bob:
        assert alice.wait_caught_up(20) and bob.wait_caught_up(20), "triage services did not catch up"
        yield alice, bob


def test_each_operator_sees_the_others_ack_and_silence_within_two_seconds(
        two: tuple[TriageService, TriageService]) -> None:
    alice, bob = two
    seen = alert(1)
    alice.acknowledge(seen, "checked with the customer")
    started = time.monotonic()
    wait_until(lambda: bob.state().is_acked(seen), 2.0, "bob to see alice's acknowledgement")
    bob.silence(SCOPE_ACCOUNT, OTHER, 900, "card blocked, calls expected")
    wait_until(lambda: is_silenced(alert(2, OTHER), alice.state(), time.time()), 2.0,
               "alice to see bob's silence")
    assert time.monotonic() - started < 4.0
    silence = alice.state().active_silences(time.time())[0]
    assert (silence.operator, silence.target) == ("bob", OTHER)
    assert silence.reason == "card blocked, calls expected"


def test_a_monitor_started_later_sees_the_current_state_and_undo_takes_an_action_back(
        client: dict[str, str]) -> None:
    with TriageService(client, "alice") as alice:
        assert alice.wait_caught_up(20)
        kept, undone = alert(3), alert(4)
        alice.acknowledge(kept)
        alice.acknowledge(undone)
        alice.note(kept.tx_id, kept.account_id, "customer confirmed")
        note_undo = alice.undo()
        assert note_undo is not None and note_undo.undoes.startswith("note:")
        alice.undo()  # the second acknowledgement
        with TriageService(client, "carol") as later:
            assert later.wait_caught_up(20)
            state = later.state()
            assert state.is_acked(kept) and not state.is_acked(undone)
            assert state.notes_about(kept.tx_id, kept.account_id) == []
    kinds = [(r.kind, r.operator) for r in read_records(client)]
    assert kinds.count(("undo", "alice")) == 2  # the audit keeps what was undone, and by whom


def test_a_group_ack_undone_restores_the_earlier_group_ack(two: tuple[TriageService, TriageService]) -> None:
    alice, bob = two
    first = alice.acknowledge_group(ACCOUNT, "alert", "amount>900")
    wait_until(lambda: bob.state().get(first.key) == first, 2.0, "bob to see the group ack")
    bob.acknowledge_group(ACCOUNT, "alert", "amount>900")
    bob.undo()
    wait_until(lambda: alice.state().get(first.key) == first, 2.0, "alice's group ack back in force")


def test_a_silence_stops_the_jsonl_sink_for_its_account_and_expires_on_time(
        client: dict[str, str], tmp_path: Path) -> None:
    settings = {"sinks": {"jsonl": {"fsync": False}}, "storage": {}}
    with TriageService(client, "alice") as alice:
        assert alice.wait_caught_up(20)
        delivery = Delivery(delivery_config(settings, tmp_path),
                            silenced=lambda a, at: is_silenced(a, alice.state(), at))
        with delivery:
            # Long enough that a busy machine still offers the first alert inside it.
            silence = alice.silence(SCOPE_ACCOUNT, ACCOUNT, 10.0, "testing the silence")
            ends = silence.ends()
            assert ends is not None
            wait_until(lambda: alice.state().active_silences(time.time()), 5.0, "the silence in force")
            delivery.offer([alert(10), alert(11, OTHER)])
            assert delivery.flush()
            sink = tmp_path / "alerts.jsonl"
            wait_until(lambda: sink.exists() and sink.read_bytes().count(b"\n") == 1, 10,
                       "the other account's alert in the file")
            wait_until(lambda: time.time() >= ends, 15, "the silence's end")
            assert not is_silenced(alert(12), alice.state(), time.time())
            delivery.offer([alert(12)])
            wait_until(lambda: sink.read_bytes().count(b"\n") == 2, 10, "the alert after the silence sent")
            stored = {h.name: h.sent for h in delivery.health()}
    ids = [orjson.loads(line)["tx_id"] for line in sink.read_bytes().splitlines()]
    assert ids == [alert(11).tx_id, alert(12).tx_id]  # p9-…10 was silenced: never written
    assert stored["database"] == 3  # every alert is still stored
