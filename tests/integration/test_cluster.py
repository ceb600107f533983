"""A three-node KRaft cluster for real: replicated topics, and no acknowledged write lost across a SIGKILL.

The producer runs at a steady rate with --ack-log while the leader of a `transactions` partition is killed
and brought back; afterwards every tx_id the producer saw acknowledged must be in the topic.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from tests.conditions import wait_until
from txmon_core import topics
from txmon_core.broker import Quorum, Voter, server_properties
from txmon_core.cluster import KafkaCluster
from txmon_core.options import BOOTSTRAP_ENV
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.readers import OffsetWatcher

pytestmark = pytest.mark.integration

PARTITIONS = 3
RATE = 400  # tx/s: steady, and light enough for a busy 2-core machine
STEP = 400  # acknowledgements to wait for in each phase (about a second of traffic)
# Leader failover waits for the controller to notice the dead broker (broker.session.timeout.ms = 9 s).
PHASE_TIMEOUT = 45.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaCluster]:
    """Three nodes, started once for this module and stopped at the end, pass or fail."""
    with KafkaCluster(Path(tmp_path_factory.mktemp("cluster")), nodes=3) as running:
        yield running


def acked(log: Path) -> list[str]:
    """The tx_ids the producer has logged as acknowledged so far (complete lines only)."""
    if not log.exists():
        return []
    text = log.read_text()
    return text[: text.rfind("\n") + 1].split()


def wait_for_more_acks(log: Path, producer: subprocess.Popen[bytes], more: int, what: str) -> int:
    """Wait until `more` acknowledgements beyond the current count are logged; return the new count."""
    target = len(acked(log)) + more

    def reached() -> int:
        if producer.poll() is not None:
            raise AssertionError(f"the producer exited ({producer.returncode}) while waiting for {what}")
        count = len(acked(log))
        return count if count >= target else 0

    return wait_until(reached, PHASE_TIMEOUT, what, interval=0.2)


def topic_ids(bootstrap: str, topic: str) -> list[str]:
    """Every tx_id in `topic`, read from the start of each partition up to its current end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        ids: list[str] = []
        remaining = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + 60
        while remaining:
            assert time.monotonic() < deadline, f"partitions {remaining} not read to their end in 60 s"
            for message in consumer.consume(10_000, timeout=0.5):
                assert message.error() is None, message.error()
                value = message.value() or b""
                ids.append(value[len(b'{"tx_id":"'): value.index(b'"', len(b'{"tx_id":"'))].decode())
                if message.offset() + 1 >= ends[message.partition()]:
                    remaining.discard(message.partition())
        return ids
    finally:
        consumer.close()


def leader_of(bootstrap: str, topic: str, partition: int) -> int:
    """The node id leading one partition."""
    # log_level 3: no informational lines about purged background events when the client is dropped.
    metadata = AdminClient({"bootstrap.servers": bootstrap, "log_level": 3}).list_topics(topic, timeout=10)
    return metadata.topics[topic].partitions[partition].leader


def test_topics_are_replicated_three_times(cluster: KafkaCluster) -> None:
    config = {"bootstrap.servers": cluster.bootstrap}
    topics.ensure_topics(config, topics.ALL, partitions=PARTITIONS)
    admin = AdminClient({**config, "log_level": 3})

    def described() -> dict[str, object] | None:
        found = admin.list_topics(timeout=10).topics
        return found if all(t in found for t in topics.ALL) else None

    found = wait_until(described, 30, "the topics in the metadata")
    for name in topics.ALL:
        for partition in found[name].partitions.values():  # type: ignore[attr-defined]
            assert sorted(partition.replicas) == [1, 2, 3], (name, partition)
    resource = ConfigResource(ConfigResource.Type.TOPIC, topics.TRANSACTIONS)
    settings = admin.describe_configs([resource])[resource].result(timeout=10)
    assert settings["min.insync.replicas"].value == "2"


def test_sigkill_of_a_node_loses_no_acknowledged_write(cluster: KafkaCluster, tmp_path: Path) -> None:
    topics.ensure_topics({"bootstrap.servers": cluster.bootstrap}, topics.ALL, partitions=PARTITIONS)
    ack_log = tmp_path / "acked.txt"
    env = {k: v for k, v in os.environ.items() if k != BOOTSTRAP_ENV}
    with open(tmp_path / "producer.log", "wb") as log:
        producer = subprocess.Popen(
            [sys.executable, "-m", "producer", "-b", cluster.bootstrap, "--rate", str(RATE), "--seed", "6",
             "--ack-log", str(ack_log)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
        )
    victim = 0
    # What the monitor reads to show the broker count, and the model that turns it into a warning.
    watcher = OffsetWatcher({"bootstrap.servers": cluster.bootstrap})
    model = MonitorModel(500, 900)

    def monitor_sees(count: int) -> bool:
        seen = watcher.broker_count()
        if seen is not None:
            model.apply_brokers(seen)
        return seen == count

    try:
        assert wait_until(lambda: monitor_sees(3), 30, "the monitor to count 3 brokers")
        before_kill = wait_for_more_acks(ack_log, producer, STEP, "acknowledgements before the kill")
        # The leader of partition 0: its death forces a leader election under the producer's feet.
        victim = leader_of(cluster.bootstrap, topics.TRANSACTIONS, 0)
        cluster.kill(victim)
        wait_until(lambda: monitor_sees(2), PHASE_TIMEOUT, f"the monitor to count 2 brokers without {victim}")
        assert "Only 2 of 3 Kafka brokers are up" in model.warnings(time.time())
        while_down = wait_for_more_acks(ack_log, producer, STEP, f"acknowledgements with node {victim} down")
        rejoined_in = cluster.restart(victim)
        wait_until(lambda: monitor_sees(3), PHASE_TIMEOUT, "the monitor to count 3 brokers again")
        assert not any("Kafka brokers" in w for w in model.warnings(time.time()))
        after_restart = wait_for_more_acks(ack_log, producer, STEP, "acknowledgements after the restart")
    finally:
        watcher.close()
        if producer.poll() is None:
            producer.send_signal(signal.SIGTERM)  # it flushes what it holds, then exits
        try:
            producer.wait(45)
        except subprocess.TimeoutExpired:
            producer.kill()
            producer.wait()
    assert producer.returncode == 0, (tmp_path / "producer.log").read_text()[-2000:]
    assert set(cluster.running()) == {1, 2, 3}

    acknowledged = acked(ack_log)
    stored = topic_ids(cluster.bootstrap, topics.TRANSACTIONS)
    lost = set(acknowledged) - set(stored)
    duplicates = len(stored) - len(set(stored))
    print(f"cluster fault test: node {victim} killed; acks so far: {before_kill} at the kill, {while_down} "
          f"with it down, {after_restart} after it rejoined ({rejoined_in:.1f} s), {len(acknowledged)} at "
          f"the end; lost {len(lost)}; duplicates in the topic {duplicates}")
    assert not lost, f"{len(lost)} acknowledged transactions are not in the topic, e.g. {sorted(lost)[:5]}"
    # The idempotent producer's retries across the failover must not have written anything twice.
    assert duplicates == 0


def test_nodes_are_configured_for_three_replicas(tmp_path: Path) -> None:
    quorum = Quorum("cid", (Voter(1, 101, "d1"), Voter(2, 102, "d2"), Voter(3, 103, "d3")))
    assert quorum.initial_controllers == "1@127.0.0.1:101:d1,2@127.0.0.1:102:d2,3@127.0.0.1:103:d3"
    settings = dict(line.split("=", 1) for line in server_properties(
        9092, 101, tmp_path, node_id=2, quorum_bootstrap=quorum.bootstrap, replication=quorum.replication
    ).splitlines())
    assert settings["node.id"] == "2"
    assert settings["controller.quorum.bootstrap.servers"] == "127.0.0.1:101,127.0.0.1:102,127.0.0.1:103"
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor"):
        assert settings[key] == "3", key
    assert settings["min.insync.replicas"] == settings["transaction.state.log.min.isr"] == "2"
