"""txmon-producer against the real broker: exact counts, seeded runs, rate, signals, unreachable broker."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest
from confluent_kafka import Message

from tests.support.kafka import end_offset, end_offsets, read_topic
from tests.support.processes import child_env
from tests.support.waiting import wait_until
from txmon_core.broker import EmbeddedBroker
from txmon_core.records import ready
from txmon_core.records.transaction import Transaction, decode

pytestmark = pytest.mark.integration

SUMMARY = re.compile(
    r"producer (?P<how>stopped|finished): produced=(?P<produced>\d+) acknowledged=(?P<acknowledged>\d+) "
    r"failed=(?P<failed>\d+) elapsed=(?P<elapsed>[\d.]+)s rate=(?P<rate>[\d.]+)/s"
)


def fresh_topic() -> str:
    """A topic no other test writes to, so counts are exact."""
    return f"transactions-test-{uuid.uuid4().hex[:10]}"


def producer_command(broker: EmbeddedBroker, *args: str) -> list[str]:
    return [sys.executable, "-m", "producer", "-b", broker.bootstrap, *args]


class RunningProducer:
    """A producer process whose stdout and stderr lines are collected as they come."""

    def __init__(self, command: list[str]) -> None:
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env()
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str], into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def line(self, prefix: str) -> str | None:
        return next((line for line in self.lines if line.startswith(prefix)), None)

    def finish(self, timeout: float) -> tuple[int, str]:
        """Wait for the exit and the end of its output; return its code and stderr."""
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return code, "\n".join(self.errors)


@contextmanager
def running_producer(command: list[str]) -> Iterator[RunningProducer]:
    """Start the producer; kill it on the way out if the test left it running (pass or fail)."""
    running = RunningProducer(command)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=10)


def decoded(records: list[Message]) -> list[Transaction]:
    transactions = [decode(msg.value()) for msg in records]
    assert [msg.key() for msg in records] == [tx.key for tx in transactions]
    return transactions


def parse_summary(lines: list[str]) -> dict[str, str]:
    matches = [m for line in lines if (m := SUMMARY.fullmatch(line))]
    assert len(matches) == 1, f"expected one summary line in {lines!r}"
    return matches[0].groupdict()


def test_count_produces_exactly_n_seeded_transactions(broker: EmbeddedBroker) -> None:
    runs = []
    for _ in range(2):
        topic = fresh_topic()
        result = subprocess.run(
            producer_command(broker, "--count", "2000", "--seed", "7", "--rate", "max", "--topic", topic),
            capture_output=True,
            text=True,
            timeout=120,
            env=child_env(),
        )
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0] == ready.producer_line(broker.bootstrap, topic, "max")
        summary = parse_summary(lines)
        assert (summary["how"], summary["produced"], summary["acknowledged"], summary["failed"]) == (
            "finished",
            "2000",
            "2000",
            "0",
        )
        transactions = decoded(read_topic(broker.bootstrap, topic))
        assert len(transactions) == 2000
        assert len({tx.tx_id for tx in transactions}) == 2000
        assert all(tx.currency == "RON" and 1.0 <= tx.amount <= 1000.0 for tx in transactions)
        runs.append(transactions)
    first, second = runs
    # Same seed, same accounts, merchants and amounts, in order; tx_ids unique across the two runs.
    assert [(t.account_id, t.merchant, t.amount) for t in first] == [
        (t.account_id, t.merchant, t.amount) for t in second
    ]
    assert not {t.tx_id for t in first} & {t.tx_id for t in second}


def test_sigterm_flushes_and_reports_at_the_requested_rate(broker: EmbeddedBroker) -> None:
    topic = fresh_topic()
    with running_producer(producer_command(broker, "--rate", "500", "--topic", topic)) as running:
        wait_until(lambda: running.line(ready.PRODUCER_PREFIX), 60, "the producer's start line")
        # ~4 s at 500 tx/s: wait for the records to be in the topic, not for the clock.
        wait_until(lambda: end_offset(broker.bootstrap, topic) >= 2000, 60, "2000 records in the topic")
        running.process.send_signal(signal.SIGTERM)
        code, err = running.finish(timeout=60)
    assert code == 0, err
    summary = parse_summary(running.lines)
    assert summary["how"] == "stopped" and summary["failed"] == "0"
    records = read_topic(broker.bootstrap, topic)
    assert int(summary["acknowledged"]) == int(summary["produced"]) == len(records)
    assert float(summary["rate"]) == pytest.approx(500, rel=0.10)
    # The rate as the broker saw it, from the records' own create times (ms).
    first_ms, last_ms = records[0].timestamp()[1], records[-1].timestamp()[1]
    assert (len(records) - 1) / ((last_ms - first_ms) / 1000) == pytest.approx(500, rel=0.15)
    assert len({tx.tx_id for tx in decoded(records)}) == len(records)


def test_sigint_stops_cleanly_too(broker: EmbeddedBroker) -> None:
    topic = fresh_topic()
    with running_producer(producer_command(broker, "--rate", "2000", "--topic", topic)) as running:
        wait_until(lambda: end_offset(broker.bootstrap, topic) >= 500, 60, "500 records in the topic")
        running.process.send_signal(signal.SIGINT)
        code, err = running.finish(timeout=60)
    assert code == 0, err
    assert "Traceback" not in err
    summary = parse_summary(running.lines)
    assert summary["how"] == "stopped"
    assert int(summary["acknowledged"]) == end_offset(broker.bootstrap, topic)


def test_ack_log_lists_exactly_the_acknowledged_tx_ids(broker: EmbeddedBroker, tmp_path: Path) -> None:
    topic, ack_log = fresh_topic(), tmp_path / "acks.txt"
    result = subprocess.run(
        producer_command(
            broker, "--count", "3000", "--rate", "max", "--topic", topic, "--ack-log", str(ack_log)
        ),
        capture_output=True,
        text=True,
        timeout=120,
        env=child_env(),
    )
    assert result.returncode == 0, result.stderr
    logged = ack_log.read_text().splitlines()
    assert len(logged) == len(set(logged)) == 3000
    assert set(logged) == {tx.tx_id for tx in decoded(read_topic(broker.bootstrap, topic))}


def test_unreachable_broker_is_one_clear_error_in_bounded_time() -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "producer", "-b", "127.0.0.1:1", "--startup-timeout", "3", "--count", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    assert time.monotonic() - started < 30
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot reach Kafka at 127.0.0.1:1" in lines[0]


def test_partitions_option_creates_the_topic_with_that_many(broker: EmbeddedBroker) -> None:
    topic = fresh_topic()
    result = subprocess.run(
        producer_command(broker, "--count", "600", "--rate", "max", "--topic", topic, "--partitions", "3"),
        capture_output=True, text=True, timeout=120, env=child_env(),
    )
    assert result.returncode == 0, result.stderr
    ends = end_offsets(broker.bootstrap, topic)
    assert sorted(ends) == [0, 1, 2]
    # Keyed by account: all 600 arrive, spread over the three partitions.
    assert sum(ends.values()) == 600 and all(end > 0 for end in ends.values())
