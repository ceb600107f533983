"""Rules changed while the real job runs (`txmon-spark --live-rules`): one version judges each record.

A broker of its own: the rules topic it changes is shared by everything on a broker.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Producer

from tests.support.kafka import TopicReader
from tests.support.processes import SparkJob
from tests.support.waiting import wait_until
from txmon_core import rules_log, topics
from txmon_core.broker import EmbeddedBroker
from txmon_core.records.alert import LEVEL_ALERT, LEVEL_LARGE, decode_alert
from txmon_core.records.transaction import Transaction, format_ts

pytestmark = [pytest.mark.integration, pytest.mark.jvm]

SWITCH_TIMEOUT = 120.0  # a restarted query plans and compiles its first batch again


@pytest.fixture
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker(tmp_path_factory.mktemp("live-rules-broker")) as running:
        yield running


class Sender:
    """Acknowledged transactions of one amount, with their tx_ids in order."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        self.prefix = f"lr{uuid.uuid4().hex[:8]}"
        self.sent: list[str] = []

    def send(self, amount: float, count: int = 1) -> list[str]:
        ids = []
        for _ in range(count):
            tx = Transaction(f"{self.prefix}-{len(self.sent):06d}", "RO49LIVE0000000000000001", "eMAG",
                             amount, "RON", format_ts(time.time_ns() // 1_000_000))
            self.producer.produce(topics.TRANSACTIONS, key=tx.key, value=tx.encode())
            self.sent.append(tx.tx_id)
            ids.append(tx.tx_id)
        assert self.producer.flush(30) == 0
        return ids


def judged(reader: TopicReader, ids: set[str]) -> dict[str, set[tuple[str, int | None]]]:
    """tx_id → every (level, rules version) the alerts topic holds for it."""
    found: dict[str, set[tuple[str, int | None]]] = {}
    for message in reader.drain():
        alert = decode_alert(message.value())
        if alert.tx_id in ids:
            found.setdefault(alert.tx_id, set()).add((alert.level, alert.rules_version))
    return found


@pytest.mark.timeout(900)
def test_a_new_threshold_judges_from_a_batch_boundary_on_and_survives_a_kill(
    own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    client = {"bootstrap.servers": own_broker.bootstrap}
    topics.ensure_topics(client, topics.ALL)
    reader = TopicReader(own_broker.bootstrap, topics.ALERTS)
    sender = Sender(own_broker.bootstrap)
    jobs: list[SparkJob] = []
    try:
        jobs.append(SparkJob(own_broker, tmp_path, "--live-rules", "--no-rules"))
        jobs[0].wait_ready()
        seeded = rules_log.latest(client)
        assert seeded is not None and seeded.version == 1  # the flags' thresholds, seeded
        assert (seeded.rules.large_threshold, seeded.rules.alert_threshold) == (500.0, 900.0)
        before = set(sender.send(850.0, 5))
        wait_until(lambda: len(judged(reader, before)) == 5, SWITCH_TIMEOUT, "v1 alerts")

        # 850 RON straddles the change: produced before, during and after alert_threshold → 800. The
        # first ones are judged before the change is published, so that both versions judge some.
        straddle = sender.send(850.0, 20)
        wait_until(lambda: len(judged(reader, set(straddle))) == 20, SWITCH_TIMEOUT, "the first 20 judged")
        changed = rules_log.publish(client, {"alert_threshold": 800.0}, "tester", "test: lower the alert bar")
        published = time.monotonic()
        deadline = published + SWITCH_TIMEOUT
        while time.monotonic() < deadline:
            straddle += sender.send(850.0, 5)
            versions = {v for marks in judged(reader, set(straddle)).values() for _, v in marks}
            if changed.version in versions:
                break
            time.sleep(0.2)  # pacing the stream of transactions, not waiting for a condition
        straddle += sender.send(850.0, 5)
        wait_until(lambda: len(judged(reader, set(straddle))) == len(straddle), SWITCH_TIMEOUT,
                   "every straddling transaction judged")
        verdicts = judged(reader, set(straddle))
        # Each transaction judged by exactly one version, with that version's threshold...
        assert all(len(marks) == 1 for marks in verdicts.values()), verdicts
        levels = {1: LEVEL_LARGE, changed.version: LEVEL_ALERT}
        assert all(level == levels[version] for marks in verdicts.values() for level, version in marks)
        # ...and the versions follow the topic's order: all of version 1, then all of version 2.
        order = [next(iter(verdicts[tx]))[1] for tx in straddle]
        assert order == sorted(order) and order[0] == 1 and order[-1] == changed.version, order
        switched_at = order.index(changed.version)
        print(f"\nversion {changed.version}: first alert under it {time.monotonic() - published:.1f} s after "
              f"publishing (upper bound); {switched_at} of {len(straddle)} straddling transactions judged by "
              "version 1, the rest by the new one")

        # A change, then the job killed at once: the restarted job resumes with the newest version.
        third = rules_log.publish(client, {"alert_threshold": 700.0}, "tester", "test: lower it again")
        jobs[0].kill_group()
        jobs.append(SparkJob(own_broker, tmp_path, "--live-rules", "--no-rules"))
        jobs[1].wait_ready()
        after = set(sender.send(750.0, 5))
        wait_until(lambda: len(judged(reader, after)) == 5, SWITCH_TIMEOUT, "alerts after the restart")
        resumed = judged(reader, after).values()
        assert all(marks == {(LEVEL_ALERT, third.version)} for marks in resumed)
        assert (tmp_path / "checkpoints" / "alerts" / "rules-versions.jsonl").read_text().count("\n") >= 3
    finally:
        for job in jobs:
            job.stop()
        reader.close()
