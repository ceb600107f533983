"""The Spark job on a real standalone Spark cluster (master + worker on loopback), end to end.

A seeded set of transactions from `txmon-producer` plus a few bad records go into a broker of this
module's own (so the topic holds nothing else); `txmon-spark --master spark://…` must then route every
record: exactly the expected alerts (deduplicated by tx_id), one dead letter per bad record, and every
large transaction once in the committed Parquet files.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from spark_app import formats
from tests.conditions import wait_until
from txmon_core import topics
from txmon_core.broker import EmbeddedBroker
from txmon_core.options import BOOTSTRAP_ENV
from txmon_core.spark_cluster import SparkStandalone
from txmon_tui.monitor.history import committed_files

pytestmark = pytest.mark.integration

COUNT = 3000
SEED = 20261125
READY_TIMEOUT = 240.0  # session start, jars shipped to a fresh executor; slow on a busy 2-core machine
PROCESS_TIMEOUT = 150.0
BAD_VALUES = (None, b"", b"not json", b'{"tx_id": "bad-1"}', b'{"tx_id": "bad-2", "amount": -5, "ts": "x"}')


@pytest.fixture(scope="module")
def own_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A broker for this module alone: the job reads `transactions` from its start, which is only ours."""
    with EmbeddedBroker(Path(tmp_path_factory.mktemp("broker"))) as running:
        yield running


@pytest.fixture
def spark(tmp_path: Path) -> Iterator[SparkStandalone]:
    """A master and one worker (1 core, 1 GB), stopped at the end, pass or fail."""
    with SparkStandalone(tmp_path / "spark") as running:
        yield running


def read_topic(bootstrap: str, topic: str) -> list[tuple[int, bytes | None]]:
    """(offset, value) of every record in partition 0 of `topic`, up to its current end."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "spark-cluster-test",
                         "enable.auto.commit": False})
    try:
        end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        consumer.assign([TopicPartition(topic, 0, 0)])
        records: list[tuple[int, bytes | None]] = []
        deadline = time.monotonic() + 60
        while len(records) < end:
            assert time.monotonic() < deadline, f"read {len(records)} of {end} records of {topic}"
            for message in consumer.consume(10_000, timeout=0.5):
                assert message.error() is None, message.error()
                records.append((message.offset(), message.value()))
        return records
    finally:
        consumer.close()


def produce_bad(bootstrap: str) -> None:
    """Values the job must route to the dead-letter topic."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for value in BAD_VALUES:
        producer.produce(topics.TRANSACTIONS, key=b"bad", value=value)
    assert producer.flush(30) == 0


def latest(bootstrap: str, topic: str) -> list[bytes]:
    """Every value in `topic` (the module's own broker: all of it is this test's)."""
    return [value for _offset, value in read_topic(bootstrap, topic) if value is not None]


def parquet_ids(data_dir: Path) -> Counter[str]:
    """How often each tx_id appears in the committed Parquet files."""
    counts: Counter[str] = Counter()
    for path in committed_files(data_dir / formats.PARQUET_DIR_NAME):
        counts.update(pq.read_table(path, columns=["tx_id"]).column("tx_id").to_pylist())
    return counts


def test_job_routes_every_record_on_a_standalone_cluster(
    own_broker: EmbeddedBroker, spark: SparkStandalone, tmp_path: Path
) -> None:
    started = time.monotonic()
    bootstrap = own_broker.bootstrap
    topics.ensure_topics({"bootstrap.servers": bootstrap}, topics.ALL)
    env = {k: v for k, v in os.environ.items() if k != BOOTSTRAP_ENV}
    produced = subprocess.run(
        [sys.executable, "-m", "producer", "-b", bootstrap, "--count", str(COUNT), "--rate", "max",
         "--seed", str(SEED)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert produced.returncode == 0, produced.stderr
    produce_bad(bootstrap)

    # What the job must find, from what the topic really holds.
    good: dict[str, float] = {}
    bad_offsets: set[int] = set()
    for offset, value in read_topic(bootstrap, topics.TRANSACTIONS):
        if value is not None and value.startswith(b'{"tx_id":"') and b'"amount"' in value:
            tx = orjson.loads(value)
            if tx["amount"] > 0 and tx.get("ts"):
                good[tx["tx_id"]] = tx["amount"]
                continue
        bad_offsets.add(offset)
    assert len(good) == COUNT and len(bad_offsets) == len(BAD_VALUES)
    expected_alerts = {t for t, a in good.items() if a > formats.DEFAULT_ALERT_THRESHOLD}
    expected_large = {t for t, a in good.items() if a > formats.DEFAULT_LARGE_THRESHOLD}
    assert expected_alerts, "the seeded set holds no alert: pick another seed"

    data_dir = tmp_path / "data"
    job_env = {**env, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOCAL_HOSTNAME": "127.0.0.1"}
    out, err = tmp_path / "job.out", tmp_path / "job.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        # The checks below count flagged transactions only; the account rules have their own tests.
        job = subprocess.Popen(
            [sys.executable, "-m", "spark_app", "-b", bootstrap, "--data-dir", str(data_dir),
             "--master", spark.master_url, "--parquet-trigger", "2", "--no-rules"],
            stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL, env=job_env, start_new_session=True,
        )

    def err_tail() -> str:
        return "\n".join(err.read_text(errors="replace").splitlines()[-40:])

    try:
        def ready() -> bool:
            if job.poll() is not None:
                raise AssertionError(f"the job exited ({job.returncode}):\n{err_tail()}")
            return "spark job running" in out.read_text(errors="replace")

        wait_until(ready, READY_TIMEOUT, "the job's ready line", interval=0.5)
        ready_at = time.monotonic()
        # The job runs on the cluster: the master lists it, with the worker's core.
        status = wait_until(spark.status, 10, "the master's status")
        apps = status.get("activeapps", [])
        assert [a["name"] for a in apps] == ["txmon-spark"], apps  # type: ignore[index,union-attr]

        def alerts_done() -> dict[str, str] | None:
            alerts = {}
            for value in latest(bootstrap, topics.ALERTS):
                alert = formats.decode_alert(value)
                alerts[alert.tx_id] = alert.level  # at-least-once sink: repeats collapse here
            return alerts if set(alerts) >= expected_large else None

        alerts = wait_until(alerts_done, PROCESS_TIMEOUT, f"{len(expected_large)} flagged transactions")
        assert {t for t, level in alerts.items() if level == formats.LEVEL_ALERT} == expected_alerts
        assert set(alerts) == expected_large

        def letters_done() -> set[int] | None:
            letters = {formats.decode_dead_letter(v) for v in latest(bootstrap, topics.DEAD_LETTERS)}
            offsets = {d.offset for d in letters if d.topic == topics.TRANSACTIONS}
            return offsets if offsets >= bad_offsets else None

        assert wait_until(letters_done, PROCESS_TIMEOUT, "one dead letter per bad record") == bad_offsets

        counts = wait_until(lambda: (c := parquet_ids(data_dir)) and set(c) >= expected_large and c,
                            PROCESS_TIMEOUT, "every large transaction in committed Parquet files")
        assert set(counts) == expected_large
        assert all(n == 1 for n in counts.values()), "Parquet holds a transaction twice"
        # Every record of the topic is accounted for: processed (flagged or not) or a dead letter.
        assert len(good) + len(bad_offsets) == COUNT + len(BAD_VALUES)
        done_at = time.monotonic()
    finally:
        if job.poll() is None:
            job.send_signal(signal.SIGTERM)
            try:
                job.wait(60)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(job.pid, signal.SIGKILL)  # whatever is left of the driver's JVM
        except ProcessLookupError:
            pass
        job.wait(10)
    assert job.returncode == 0, err_tail()
    print(f"spark cluster e2e: {COUNT} + {len(BAD_VALUES)} bad records, {len(expected_alerts)} alerts, "
          f"{len(expected_large)} large; job ready after {ready_at - started:.1f} s, all routed "
          f"{done_at - ready_at:.1f} s later, stopped after {time.monotonic() - started:.1f} s in all")
