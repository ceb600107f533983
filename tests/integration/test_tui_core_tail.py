"""Tail, OffsetWatcher and the session over them against the real broker: known records in, batches out."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from spark_app.formats import QUERY_ALERTS, Alert, BatchMetrics, encode_metrics
from tests.conditions import wait_until
from txmon_core.broker import EmbeddedBroker
from txmon_core.topics import ALERTS, METRICS, TRANSACTIONS, ensure_topics
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.replay import Player, open_recording
from txmon_tui.monitor.session import MonitorSession
from txmon_tui.monitor.tail import Deliveries, Tail, TailBatch
from txmon_tui.readers import OffsetWatcher

pytestmark = pytest.mark.integration


def sample_alert(n: int) -> Alert:
    return Alert(f"tail-{n}", "RO49RZBR0000060012345678", "Lidl", 950.5, "RON", "2026-11-25T12:00:00.123Z",
                 "alert", "amount>900", "2026-11-25T12:00:00.300Z")


@pytest.fixture
def client(broker: EmbeddedBroker) -> dict[str, str]:
    config = {"bootstrap.servers": broker.bootstrap}
    ensure_topics(config)
    return config


@pytest.fixture
def tail(client: dict[str, str]) -> Iterator[Tail]:
    reader = Tail(client)
    yield reader
    reader.close()


def produce(client: dict[str, str], records: list[tuple[str, bytes]]) -> None:
    producer = Producer(client)
    for topic, value in records:
        producer.produce(topic, value)
    assert producer.flush(10) == 0


def collect(tail: Tail, until: int) -> TailBatch:
    """Poll until `until` records (decoded or not) arrived; return them as one batch."""
    total = TailBatch()

    def enough() -> bool:
        got = tail.poll(0.2)
        total.alerts += got.alerts
        total.metrics += got.metrics
        total.undecodable += got.undecodable
        total.received_at = got.received_at
        return len(total.alerts) + len(total.metrics) + total.undecodable >= until

    wait_until(enough, 20, f"{until} records from the tail")
    return total


def test_tail_decodes_alerts_and_metrics_and_counts_the_rest(client: dict[str, str], tail: Tail) -> None:
    metrics = BatchMetrics(QUERY_ALERTS, 7, "2026-11-25T12:00:01.000Z", 100, 50.0, 400.0, 250, {"0": 1234},
                           9, 1, 0)
    alerts = [sample_alert(n) for n in range(3)]
    produce(client, [(ALERTS, orjson.dumps(dataclasses.asdict(a))) for a in alerts]
            + [(ALERTS, orjson.dumps(dataclasses.asdict(alerts[0])))]  # at-least-once: a repeat
            + [(ALERTS, b"not json"), (ALERTS, b'{"tx_id": "no other fields"}'), (METRICS, b"\xff")]
            + [(METRICS, encode_metrics(metrics))])
    batch = collect(tail, 8)
    assert batch.alerts == [*alerts, alerts[0]]
    assert batch.metrics == [metrics]
    assert batch.undecodable == 3
    model = MonitorModel()
    model.apply(batch)
    assert (model.alerts, model.duplicates, model.undecodable, model.processed) == (3, 1, 3, 100)


def test_tail_starts_at_the_end(client: dict[str, str]) -> None:
    produce(client, [(ALERTS, orjson.dumps(dataclasses.asdict(sample_alert(100))))])
    reader = Tail(client)
    try:
        produce(client, [(ALERTS, orjson.dumps(dataclasses.asdict(sample_alert(101))))])
        batch = collect(reader, 1)
        assert [a.tx_id for a in batch.alerts] == ["tail-101"]
    finally:
        reader.close()


def test_offset_watcher_counts_what_was_produced(client: dict[str, str]) -> None:
    watcher = OffsetWatcher(client)
    try:
        before = watcher.end_offset_total(TRANSACTIONS)
        assert before is not None
        produce(client, [(TRANSACTIONS, b"{}")] * 25)
        assert watcher.end_offset_total(TRANSACTIONS) == before + 25
        assert watcher.end_offset_total("no-such-topic", timeout=2.0) is None
    finally:
        watcher.close()


def test_offset_watcher_reports_an_unreachable_broker() -> None:
    watcher = OffsetWatcher({"bootstrap.servers": "127.0.0.1:1"})
    try:
        assert watcher.end_offset_total(TRANSACTIONS, timeout=1.0) is None
    finally:
        watcher.close()


def test_a_session_feeds_its_recording_with_what_it_reads(client: dict[str, str], tmp_path: Path) -> None:
    session = MonitorSession(MonitorModel())
    session.open_tail(client)
    session.open_offsets(client)
    try:
        before, _at = session.count_produced()  # no recording yet: not recorded
        assert before is not None
        recorder = session.start_recording(tmp_path / "session.jsonl")
        produce(client, [(ALERTS, orjson.dumps(dataclasses.asdict(sample_alert(n)))) for n in (200, 201)]
                + [(TRANSACTIONS, b"{}")] * 3)
        read: list[str] = []

        def both_read() -> bool:
            batch = session.poll(0.2)
            session.model.apply(batch)
            read.extend(alert.tx_id for alert in batch.alerts)
            return len(read) >= 2

        wait_until(both_read, 20, "the two alerts through the session")
        total, _at = session.count_produced()
        assert total == before + 3 and session.model.alerts == 2
        assert session.stop_recording() == recorder.path and session.recorder is None
        steps = list(Player(open_recording(recorder.path)).steps())
        recorded = [a.tx_id for step in steps if step.batch for a in step.batch.alerts]
        assert recorded == ["tail-200", "tail-201"]
        assert [step.produced for step in steps if step.produced is not None] == [before + 3]
    finally:
        session.close()
    assert not session.tailing
    assert session.count_produced()[0] is None  # closed: nothing read, nothing recorded


def test_deliveries_hand_over_batches_at_most_once_an_interval() -> None:
    now = [100.0]
    deliveries = Deliveries(0.1, clock=lambda: now[0])
    assert deliveries.take() == [] and deliveries.wait(0.5) == 0.5  # nothing held: poll as long as allowed
    first, second, third = (TailBatch(alerts=[sample_alert(n)], received_at=now[0]) for n in range(3))
    deliveries.add(first)
    assert deliveries.take() == [first]  # the first batch goes at once
    now[0] += 0.03
    deliveries.add(second)
    assert deliveries.take() == []  # held: the last delivery was 30 ms ago
    assert deliveries.wait(0.5) == pytest.approx(0.07)  # the next poll wakes up when it is due
    now[0] += 0.04
    deliveries.add(third)
    now[0] += 0.03
    assert deliveries.wait(0.5) == 0.0
    assert deliveries.take() == [second, third]  # together, each with its own receive time
    assert deliveries.take() == []
