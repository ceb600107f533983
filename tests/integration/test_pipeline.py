"""The real Spark job on the real broker: alerts, Parquet, dead letters and metrics, also across a restart.

The topics are shared with the rest of the session, so each test recognises its own records by a tx_id
prefix (alerts, Parquet) and by the source offsets it produced at (dead letters), and reads `metrics`
from where it stood when the test began. Each test has its own data folder, hence fresh checkpoints.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from producer.transaction import Transaction, format_ts
from spark_app import formats
from tests.conditions import wait_until
from txmon_core import topics
from txmon_core.broker import EmbeddedBroker
from txmon_core.options import BOOTSTRAP_ENV
from txmon_tui.monitor.history import committed_files

pytestmark = pytest.mark.integration

BOUNDARY_AMOUNTS = (1.0, 500.0, 500.01, 900.0, 900.01, 1000.0)
READY_TIMEOUT = 180.0  # JVM start, jars, two queries; slow on a busy 2-core machine
PROCESS_TIMEOUT = 150.0
STOP_TIMEOUT = 60.0
# Event times an hour before the run: the job dead-letters a ts more than a week old or in the future.
BASE_MS = time.time_ns() // 1_000_000 - 3_600_000
TS = format_ts(BASE_MS)



def bad_tx(amount: str = "950", **fields: str) -> bytes:
    """A transaction-like JSON object from raw JSON texts per field (`amount` literal, e.g. 1e999)."""
    texts = {"tx_id": '"x"', "amount": amount, "ts": f'"{TS}"', "account_id": '"RO49"', "merchant": '"Lidl"',
             "currency": '"RON"', **fields}
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in texts.items() if v != "-") + "}").encode()


# Bad values mixed into the stream, each with the reason the job must give it ("-" drops a field).
BAD_VALUES: list[tuple[bytes | None, str]] = [
    (None, formats.REASON_NULL_VALUE),
    (b"", formats.REASON_EMPTY_VALUE),
    (b"\xff\xfe\x00garbage", formats.REASON_NOT_UTF8),
    (b'{"tx_id": "x", "amount": 12', formats.REASON_NOT_JSON),
    (b'[{"tx_id": "x"}]', formats.REASON_NOT_OBJECT),
    (bad_tx(tx_id="-"), formats.REASON_MISSING_TX_ID),
    (bad_tx(tx_id="null"), formats.REASON_MISSING_TX_ID),
    (bad_tx(amount="-"), formats.REASON_MISSING_AMOUNT),
    (bad_tx(amount='"950"'), formats.REASON_AMOUNT_NOT_NUMBER),
    (bad_tx(amount="-5"), formats.REASON_AMOUNT_NOT_POSITIVE),
    (bad_tx(amount="0"), formats.REASON_AMOUNT_NOT_POSITIVE),
    (bad_tx(amount="1e999"), formats.REASON_AMOUNT_TOO_LARGE),
    (bad_tx(amount="5e12"), formats.REASON_AMOUNT_TOO_LARGE),
    (bad_tx(ts="-"), formats.REASON_MISSING_TS),
    (bad_tx(ts='"noon"'), formats.REASON_BAD_TS),
    (bad_tx(tx_id="42"), formats.REASON_TX_ID_NOT_STRING),
    (bad_tx(tx_id=f'"{"x" * 65}"'), formats.REASON_TX_ID_TOO_LONG),
    (bad_tx(amount="500.001"), formats.REASON_AMOUNT_TOO_PRECISE),
    (bad_tx(ts='"9999-12-31T23:59:59.999Z"'), formats.REASON_TS_IN_FUTURE),
    (bad_tx(ts='"2000-01-01T00:00:00.000Z"'), formats.REASON_TS_TOO_OLD),
    (bad_tx(account_id="-"), formats.REASON_MISSING_ACCOUNT_ID),
    (bad_tx(account_id='""'), formats.REASON_BAD_ACCOUNT_ID),
    (bad_tx(account_id=f'"{"A" * 65}"'), formats.REASON_ACCOUNT_ID_TOO_LONG),
    (bad_tx(merchant="null"), formats.REASON_MISSING_MERCHANT),
    (bad_tx(merchant="7"), formats.REASON_BAD_MERCHANT),
    (bad_tx(merchant=f'"{"m" * 201}"'), formats.REASON_MERCHANT_TOO_LONG),
    (bad_tx(currency="-"), formats.REASON_MISSING_CURRENCY),
    (bad_tx(currency='"EUR"'), formats.REASON_CURRENCY_NOT_ALLOWED),
]


def expected_level(amount: float) -> str | None:
    """The level the default thresholds give (both strict)."""
    if amount > formats.DEFAULT_ALERT_THRESHOLD:
        return formats.LEVEL_ALERT
    if amount > formats.DEFAULT_LARGE_THRESHOLD:
        return formats.LEVEL_LARGE
    return None


@dataclass(frozen=True)
class Record:
    """One record to produce: a good transaction (tx_id, amount) or a bad value with its reason."""

    tx_id: str | None
    amount: float
    key: bytes
    value: bytes | None
    reason: str | None


@dataclass
class Workload:
    """A seeded stream of good transactions (prefix-named) with every bad case mixed in."""

    prefix: str
    seed: int
    good: dict[str, float] = field(default_factory=dict)  # tx_id → amount, of what was acknowledged
    bad: dict[tuple[int, int], str] = field(default_factory=dict)  # (partition, offset) → reason
    errors: list[str] = field(default_factory=list)

    def records(self, count: int, bad_every: int = 97) -> Iterator[Record]:
        """The first `count` records, the same ones for the same seed."""
        rnd = random.Random(self.seed)
        base_ms = BASE_MS
        for i in range(count):
            if i % bad_every == bad_every // 2:
                value, reason = BAD_VALUES[(i // bad_every) % len(BAD_VALUES)]
                yield Record(None, 0.0, b"bad", value, reason)
                continue
            # Every tenth record carries a boundary amount, the others a uniform one in 1..1000.
            cents = rnd.randint(100, 100_000)
            amount = BOUNDARY_AMOUNTS[(i // 10) % len(BOUNDARY_AMOUNTS)] if i % 10 == 0 else cents / 100
            account = f"RO49TEST{rnd.randint(0, 999):016d}"
            tx = Transaction(f"{self.prefix}-{i:06d}", account, "Mega Image", amount, "RON",
                             format_ts(base_ms + i * 37))
            yield Record(tx.tx_id, amount, tx.key, tx.encode(), None)

    def flagged(self, level: str | None = None) -> set[str]:
        """The good tx_ids above the large threshold (at `level`, if given)."""
        levels = formats.LEVELS if level is None else (level,)
        return {tx_id for tx_id, amount in self.good.items() if expected_level(amount) in levels}


def produce(bootstrap: str, workload: Workload, count: int, start: int = 0, pace: float | None = None,
            stop: threading.Event | None = None) -> int:
    """Produce records [start, count) of the workload (fewer if `stop` is set); return how many."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5})

    def delivered(record: Record) -> Callable[[KafkaError | None, Message], None]:
        def on_delivery(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                workload.errors.append(str(error))
            elif record.reason is not None:
                workload.bad[(message.partition(), message.offset())] = record.reason
            elif record.tx_id is not None:
                workload.good[record.tx_id] = record.amount
        return on_delivery

    produced = 0
    for record in itertools.islice(workload.records(count), start, None):
        if stop is not None and stop.is_set():
            break
        producer.produce(topics.TRANSACTIONS, key=record.key, value=record.value,
                         on_delivery=delivered(record))
        produced += 1
        producer.poll(0)
        if pace:
            time.sleep(pace)
    assert producer.flush(30) == 0, "records not acknowledged within 30 s"
    assert not workload.errors, workload.errors
    return produced


def high_watermarks(consumer: Consumer, topic: str) -> dict[int, int]:
    """The end offset of each partition of `topic` (waiting for the leaders of a topic just created)."""
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions

    def ends() -> dict[int, int] | None:
        try:
            return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                    for p in partitions}
        except KafkaException as exc:
            if exc.args[0].code() in (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE):
                return None
            raise

    return wait_until(ends, 30, f"leaders for {topic}", interval=0.2)


class TopicReader:
    """Accumulates a topic's records from the offsets it had when created."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}",
                                  "enable.auto.commit": False, "enable.partition.eof": False})
        ends = high_watermarks(self.consumer, topic)
        self.consumer.assign([TopicPartition(topic, p, end) for p, end in ends.items()])
        self.messages: list[Message] = []

    def drain(self) -> list[Message]:
        """Everything read so far, after taking what has arrived."""
        while batch := self.consumer.consume(10_000, timeout=0.2):
            for message in batch:
                assert message.error() is None, message.error()
                self.messages.append(message)
        return self.messages

    def close(self) -> None:
        self.consumer.close()


class SparkJob:
    """`python -m spark_app` as a child process in its own session, stdout and stderr into files."""

    def __init__(self, broker: EmbeddedBroker, data_dir: Path, *extra: str) -> None:
        self.stdout_path = data_dir / f"job-{time.monotonic_ns()}.out"
        self.stderr_path = self.stdout_path.with_suffix(".err")
        env = {k: v for k, v in os.environ.items() if k != BOOTSTRAP_ENV}
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "spark_app", "-b", broker.bootstrap, "--data-dir", str(data_dir),
                 "--parquet-trigger", "2", *extra],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr_tail(self, lines: int = 40) -> str:
        return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise AssertionError(f"the job exited ({self.process.returncode}):\n{self.stderr_tail()}")
            return "spark job running: queries alerts, parquet" in self.stdout()
        wait_until(ready, READY_TIMEOUT, "the job's ready line", interval=0.5)

    def stop(self) -> int:
        """SIGTERM the driver alone (it stops its queries and JVM), then kill the group if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass
        self.kill_group()
        return self.process.returncode

    def kill_group(self) -> None:
        """SIGKILL whatever is left of the job's session (its JVM included)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait(10)


@pytest.fixture
def readers(broker: EmbeddedBroker) -> Iterator[dict[str, TopicReader]]:
    topics.ensure_topics({"bootstrap.servers": broker.bootstrap}, topics.ALL)
    opened = {name: TopicReader(broker.bootstrap, name) for name in (topics.ALERTS, topics.DEAD_LETTERS,
                                                                     topics.METRICS)}
    yield opened
    for reader in opened.values():
        reader.close()


@pytest.fixture
def jobs(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Callable[..., SparkJob]]:
    """Starts jobs on one data folder; every job is stopped at the end, pass or fail."""
    started: list[SparkJob] = []

    def start(*extra: str) -> SparkJob:
        job = SparkJob(broker, tmp_path, *extra)
        started.append(job)
        return job

    yield start
    for job in started:
        job.stop()


def alerts_of(reader: TopicReader, prefix: str) -> dict[str, formats.Alert]:
    """This test's alerts, deduplicated by tx_id (the Kafka sink is at-least-once)."""
    alerts = {}
    for message in reader.drain():
        if message.key() and message.key().startswith(prefix.encode()):
            alert = formats.decode_alert(message.value())
            assert message.key().decode() == alert.tx_id
            alerts[alert.tx_id] = alert
    return alerts


def dead_letters_of(reader: TopicReader, workload: Workload) -> dict[tuple[int, int], formats.DeadLetter]:
    """This test's dead letters by source (partition, offset), deduplicated."""
    letters = {}
    for message in reader.drain():
        letter = formats.decode_dead_letter(message.value())
        if letter.topic == topics.TRANSACTIONS and (letter.partition, letter.offset) in workload.bad:
            letters[(letter.partition, letter.offset)] = letter
    return letters


def parquet_ids(data_dir: Path, prefix: str) -> Counter[str]:
    """How often each of this test's tx_ids appears in the committed Parquet files."""
    counts: Counter[str] = Counter()
    for path in committed_files(data_dir / formats.PARQUET_DIR_NAME):
        column = pq.read_table(path, columns=["tx_id"]).column("tx_id").to_pylist()
        counts.update(t for t in column if t.startswith(prefix))
    return counts


def end_offsets(bootstrap: str) -> dict[str, int]:
    """The `transactions` topic's end offset per partition, as BatchMetrics spells them."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}"})
    try:
        return {str(p): end for p, end in high_watermarks(consumer, topics.TRANSACTIONS).items()}
    finally:
        consumer.close()


def metrics_reached(reader: TopicReader, query: str, target: dict[str, int]) -> list[formats.BatchMetrics]:
    """The query's metrics so far, if one of them reports having read up to `target`, else []."""
    records = [formats.decode_metrics(m.value()) for m in reader.drain() if m.key() == query.encode()]
    done = any(all(r.end_offsets.get(p, -1) >= o for p, o in target.items()) for r in records)
    return records if done else []


def assert_complete(workload: Workload, readers: dict[str, TopicReader], data_dir: Path) -> None:
    """Alerts, Parquet and dead letters hold exactly this workload's expected records."""
    expected_alerts = {lvl: workload.flagged(lvl) for lvl in formats.LEVELS}
    expected_flagged = workload.flagged()

    def alerts_done() -> dict[str, formats.Alert] | None:
        alerts = alerts_of(readers[topics.ALERTS], workload.prefix)
        return alerts if set(alerts) >= expected_flagged else None

    alerts = wait_until(alerts_done, PROCESS_TIMEOUT, f"{len(expected_flagged)} alerts")
    for level in formats.LEVELS:
        assert {t for t, a in alerts.items() if a.level == level} == expected_alerts[level], level
    for tx_id, alert in alerts.items():
        assert alert.amount == workload.good[tx_id]
        alert_level = alert.level == formats.LEVEL_ALERT
        threshold = formats.DEFAULT_ALERT_THRESHOLD if alert_level else formats.DEFAULT_LARGE_THRESHOLD
        assert alert.rule == f"amount>{threshold:g}"

    def letters_done() -> dict[tuple[int, int], formats.DeadLetter] | None:
        letters = dead_letters_of(readers[topics.DEAD_LETTERS], workload)
        return letters if len(letters) == len(workload.bad) else None

    letters = wait_until(letters_done, PROCESS_TIMEOUT, f"{len(workload.bad)} dead letters")
    assert {k: d.reason for k, d in letters.items()} == workload.bad

    def parquet_done() -> Counter[str] | None:
        counts = parquet_ids(data_dir, workload.prefix)
        return counts if set(counts) >= expected_flagged else None

    counts = wait_until(parquet_done, PROCESS_TIMEOUT, "every large transaction in committed Parquet files")
    assert set(counts) == expected_flagged
    repeated = {t: n for t, n in counts.items() if n != 1}
    assert not repeated, f"Parquet holds these more than once: {repeated}"


def test_pipeline_routes_every_record(broker: EmbeddedBroker, readers: dict[str, TopicReader],
                                      jobs: Callable[..., SparkJob], tmp_path: Path) -> None:
    workload = Workload(prefix=f"pl{uuid.uuid4().hex[:8]}", seed=20261125)
    count = 3000
    produce(broker.bootstrap, workload, count)
    # Every record is either good or a dead letter, and the two sets cover what was produced.
    assert len(workload.good) + len(workload.bad) == count
    assert set(workload.bad.values()) == set(formats.REASONS)
    assert {a for a in BOUNDARY_AMOUNTS} <= set(workload.good.values())
    target = end_offsets(broker.bootstrap)

    # With console lines, the alerts query writes through foreachBatch; the restart test below runs
    # the default, Spark's own Kafka sink.
    job = jobs("--alert-lines")
    job.wait_ready()
    assert_complete(workload, readers, tmp_path)

    for query in (formats.QUERY_ALERTS, formats.QUERY_PARQUET):
        records = wait_until(lambda q=query: metrics_reached(readers[topics.METRICS], q, target),
                             PROCESS_TIMEOUT, f"metrics of {query} up to {target}")
        assert all(r.query == query and r.batch_duration_ms >= 0 for r in records)
    alerts_metrics = [formats.decode_metrics(m.value()) for m in readers[topics.METRICS].drain()
                      if m.key() == formats.QUERY_ALERTS.encode()]
    # A fresh checkpoint reads the topic from its start: every record of it is counted once in a batch.
    assert sum(r.num_input_rows for r in alerts_metrics) >= sum(target.values())
    assert sum(r.dead_letters for r in alerts_metrics) >= len(workload.bad)
    assert sum(r.alerts for r in alerts_metrics) >= len(workload.flagged(formats.LEVEL_ALERT))

    # One console line per alert, as `ALERT <tx_id> <amount> RON account <account_id>`.
    lines = [line for line in job.stdout().splitlines() if line.startswith(f"ALERT {workload.prefix}")]
    assert {line.split()[1] for line in lines} == workload.flagged(formats.LEVEL_ALERT)
    sample = lines[0].split()
    assert sample[3:5] == ["RON", "account"] and float(sample[2]) == workload.good[sample[1]]

    assert job.stop() == 0, job.stderr_tail()


def test_restart_keeps_parquet_exactly_once(broker: EmbeddedBroker, readers: dict[str, TopicReader],
                                            jobs: Callable[..., SparkJob], tmp_path: Path) -> None:
    workload = Workload(prefix=f"rs{uuid.uuid4().hex[:8]}", seed=7)
    warm_up, after_restart, cap = 300, 1500, 50_000
    # Bounded batches, so that the backlog after the restart takes several of them.
    first = jobs("--max-offsets-per-trigger", "1000")
    first.wait_ready()
    # Past its first (slow, compiling) batches, the job keeps up with the stream below.
    produce(broker.bootstrap, workload, warm_up)
    warm_flagged = workload.flagged()
    wait_until(lambda: parquet_ids(tmp_path, workload.prefix), PROCESS_TIMEOUT, "the first job's Parquet")

    # A steady stream of a few hundred records/s, in the middle of which the first job is stopped.
    stop_streaming = threading.Event()
    streamed: list[int] = []
    stream = threading.Thread(
        target=lambda: streamed.append(
            produce(broker.bootstrap, workload, cap, start=warm_up, pace=0.003, stop=stop_streaming)
        ),
        daemon=True,
    )
    stream.start()
    try:
        wait_until(lambda: set(alerts_of(readers[topics.ALERTS], workload.prefix)) - warm_flagged
                   or not stream.is_alive(), PROCESS_TIMEOUT, "the first job to write part of the stream")
        assert stream.is_alive(), "the stream ended before the job was stopped"
        assert first.stop() == 0, first.stderr_tail()
    finally:
        stop_streaming.set()
        stream.join(timeout=60)
    assert streamed and streamed[0] < cap, streamed
    produced = warm_up + streamed[0]

    second = jobs("--max-offsets-per-trigger", "1000")
    second.wait_ready()
    produce(broker.bootstrap, workload, produced + after_restart, start=produced)
    assert len(workload.good) + len(workload.bad) == produced + after_restart

    assert_complete(workload, readers, tmp_path)
    # By default the job prints no console lines: its alerts go through Spark's own Kafka sink.
    assert not [line for line in second.stdout().splitlines() if line.startswith("ALERT ")]
    assert second.stop() == 0, second.stderr_tail()
    print(f"restart test: {streamed[0]} records streamed across the stop, {after_restart} after the restart")


def test_realtime_mode_routes_every_record(broker: EmbeddedBroker, readers: dict[str, TopicReader],
                                           jobs: Callable[..., SparkJob], tmp_path: Path) -> None:
    # Real-time Mode writes alerts and dead letters as records arrive; the micro-batch query beside
    # it fills the Parquet table. A fresh checkpoint from the topic's end: only this test's records.
    job = jobs("--mode", "realtime", "--starting-offsets", "latest")
    job.wait_ready()
    workload = Workload(prefix=f"rt{uuid.uuid4().hex[:8]}", seed=11)
    produce(broker.bootstrap, workload, 600)
    assert_complete(workload, readers, tmp_path)
    assert job.stop() == 0, job.stderr_tail()
