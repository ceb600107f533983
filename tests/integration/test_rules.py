"""The account rules end to end: the producer's injected patterns, the real Spark job, its restarts.

Each test recognises its own alerts by account (fresh ones, or the ones the producer names in its
replies) and reads `alerts` and `metrics` from where they stood when the test began. Jobs start from
the topic's end (--starting-offsets latest), so the session's earlier records cost them nothing; a
primer record confirms the rules query is reading before a test produces what it checks.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from confluent_kafka import KafkaError, Producer

from tests.support.kafka import TopicReader, read_topic, source_end_offsets
from tests.support.processes import SparkJob, child_env
from tests.support.waiting import wait_until
from txmon_core import topics
from txmon_core.broker import EmbeddedBroker
from txmon_core.records import ready
from txmon_core.records.alert import (
    LEVEL_PATTERN,
    LEVEL_VELOCITY,
    RULE_LEVELS,
    Alert,
    decode_alert,
    rule_alert_id,
)
from txmon_core.records.metrics import QUERY_RULES, BatchMetrics, decode_metrics
from txmon_core.records.transaction import Transaction, decode, format_ts

pytestmark = pytest.mark.integration

ALERT_TIMEOUT = 150.0  # a fresh job compiles its plans and starts a Python worker on the first batch
PRIME_TIMEOUT = 240.0
# Restarts take 20-60 s on a busy machine: a long window keeps the test about state, not about speed.
LONG_WINDOW = ("--velocity-window", "900")


@pytest.fixture
def settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty txmon.toml for every child, so a settings file of the machine cannot change the rules."""
    path = tmp_path / "txmon.toml"
    path.write_text("")
    monkeypatch.setenv("TXMON_SETTINGS", str(path))
    return path


@pytest.fixture
def readers(broker: EmbeddedBroker) -> Iterator[dict[str, TopicReader]]:
    topics.ensure_topics({"bootstrap.servers": broker.bootstrap}, topics.ALL)
    opened = {name: TopicReader(broker.bootstrap, name) for name in (topics.ALERTS, topics.METRICS)}
    yield opened
    for reader in opened.values():
        reader.close()


@pytest.fixture
def jobs(broker: EmbeddedBroker, tmp_path: Path, settings_file: Path) -> Iterator[Callable[..., SparkJob]]:
    """Starts jobs on one data folder (so one set of checkpoints); all stopped at the end, pass or fail."""
    started: list[SparkJob] = []

    def start(*extra: str) -> SparkJob:
        job = SparkJob(broker, tmp_path, "--starting-offsets", "latest", *extra)
        started.append(job)
        return job

    yield start
    for job in started:
        job.stop()


def rule_alerts(reader: TopicReader, account: str) -> list[Alert]:
    """Every rule alert of `account` read so far, repeats included (the sink is at-least-once)."""
    alerts = []
    for message in reader.drain():
        alert = decode_alert(message.value())
        if alert.account_id == account and alert.level in RULE_LEVELS:
            assert message.key().decode() == alert.tx_id
            alerts.append(alert)
    return alerts


def distinct(alerts: list[Alert], level: str) -> dict[str, Alert]:
    """The alerts of one level by id: a re-delivered alert collapses into one."""
    return {alert.tx_id: alert for alert in alerts if alert.level == level}


def rules_metrics(reader: TopicReader) -> list[BatchMetrics]:
    """The rules query's metrics read so far."""
    key = QUERY_RULES.encode()
    return [decode_metrics(m.value()) for m in reader.drain() if m.key() == key]


def rules_done_with(reader: TopicReader, target: dict[str, int]) -> bool:
    """True once a rules batch has read `transactions` up to `target` (and so written its alerts)."""
    return any(all(m.end_offsets.get(p, -1) >= o for p, o in target.items()) for m in rules_metrics(reader))


class Sender:
    """Produces hand-made transactions to `transactions`, acknowledged before `send` returns."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        self.prefix = f"rl{uuid.uuid4().hex[:8]}"
        self.sent = 0
        self.errors: list[str] = []

    def _report(self, error: KafkaError | None, _message: object) -> None:
        if error is not None:
            self.errors.append(str(error))

    def send(self, account: str, *amounts: float) -> list[str]:
        """One transaction per amount on `account`, event time now; their tx_ids."""
        ids = []
        for amount in amounts:
            self.sent += 1
            tx = Transaction(f"{self.prefix}-{self.sent:06d}", account, "eMAG", amount, "RON",
                             format_ts(time.time_ns() // 1_000_000))
            self.producer.produce(topics.TRANSACTIONS, key=tx.key, value=tx.encode(),
                                  on_delivery=self._report)
            ids.append(tx.tx_id)
        assert self.producer.flush(30) == 0, "transactions not acknowledged within 30 s"
        assert not self.errors, self.errors
        return ids


def fresh_account() -> str:
    return f"RO49TEST{uuid.uuid4().int % 10**16:016d}"


def prime(job: SparkJob, sender: Sender, metrics: TopicReader) -> None:
    """Wait until the rules query has run a batch with input: from then on it reads all that follows."""

    def reading() -> bool:
        if job.process.poll() is not None:
            raise AssertionError(f"the job exited ({job.process.returncode}):\n{job.stderr_tail()}")
        if any(m.num_input_rows > 0 for m in rules_metrics(metrics)):
            return True
        sender.send(fresh_account(), 10.0)  # matters to no rule
        return False

    wait_until(reading, PRIME_TIMEOUT, "a rules batch with input", interval=1.0)


class CommandedProducer:
    """txmon-producer with --commands: commands go to its stdin, its stdout lines are collected."""

    def __init__(self, bootstrap: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "producer", "-b", bootstrap, "--commands", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(),
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        for stream, into in ((self.process.stdout, self.lines), (self.process.stderr, self.errors)):
            threading.Thread(target=self._read, args=(stream, into), daemon=True).start()

    @staticmethod
    def _read(stream: IO[str], into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    def command(self, text: str) -> dict[str, str]:
        """Send one command; return the key=value words of its reply."""
        assert self.process.stdin is not None
        name = text.split()[0]
        before = len(self.lines)
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()

        def reply() -> str | None:
            assert self.process.poll() is None, "\n".join(self.errors)
            return next((line for line in self.lines[before:] if line.split()[0] in (name, "error")), None)

        line = wait_until(reply, 30, f"the reply to {text!r}")
        assert line.startswith(name + " "), line
        return dict(word.split("=", 1) for word in line.split()[1:])

    def stop(self) -> None:
        """SIGTERM (it flushes and exits), SIGKILL if it hangs."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def commanded(broker: EmbeddedBroker, settings_file: Path) -> Iterator[Callable[..., CommandedProducer]]:
    started: list[CommandedProducer] = []

    def start(*args: str) -> CommandedProducer:
        running = CommandedProducer(broker.bootstrap, *args)
        started.append(running)
        wait_until(lambda: any(map(ready.is_producer_line, running.lines)), 60,
                   "the producer's first line")
        return running

    yield start
    for running in started:
        running.stop()


def test_producer_commands_put_the_patterns_on_the_topic(
    broker: EmbeddedBroker, commanded: Callable[..., CommandedProducer]
) -> None:
    topic = f"transactions-rules-{uuid.uuid4().hex[:10]}"
    running = commanded("--rate", "5", "--topic", topic)
    burst = running.command("burst")
    card = running.command("cardtest")
    assert running.command("burst 2")["count"] == "2"
    running.stop()
    assert running.process.returncode == 0, "\n".join(running.errors)

    txs = {tx.tx_id: tx for tx in (decode(m.value()) for m in read_topic(broker.bootstrap, topic))}
    first, last = (int(burst[k].rsplit("-", 1)[1]) for k in ("first_tx", "last_tx"))
    prefix = burst["first_tx"].rsplit("-", 1)[0]
    burst_txs = [txs[f"{prefix}-{n:012d}"] for n in range(first, last + 1)]
    assert len(burst_txs) == int(burst["count"]) == 6  # twice the default velocity count
    assert all(tx.account_id == burst["account"] and tx.amount > 500 for tx in burst_txs)
    small, large = txs[card["small_tx"]], txs[card["large_tx"]]
    assert small.account_id == large.account_id == card["account"]
    assert small.amount < 1 < 500 < large.amount
    assert (small.amount, large.amount) == (float(card["small"]), float(card["large"]))


def test_a_burst_raises_one_velocity_alert_and_a_card_test_one_pattern_alert(
    broker: EmbeddedBroker, readers: dict[str, TopicReader], jobs: Callable[..., SparkJob],
    commanded: Callable[..., CommandedProducer],
) -> None:
    sender = Sender(broker.bootstrap)
    job = jobs()
    job.wait_ready()
    prime(job, sender, readers[topics.METRICS])
    running = commanded("--rate", "2")
    burst = running.command("burst")  # six large transactions on one account at once
    card = running.command("cardtest")
    running.stop()  # it flushes on the way out: everything injected is on the topic
    assert running.process.returncode == 0, "\n".join(running.errors)
    target = source_end_offsets(broker.bootstrap)

    def both() -> tuple[list[Alert], list[Alert]] | None:
        velocity = rule_alerts(readers[topics.ALERTS], burst["account"])
        pattern = rule_alerts(readers[topics.ALERTS], card["account"])
        seen = distinct(velocity, LEVEL_VELOCITY) and distinct(pattern, LEVEL_PATTERN)
        return (velocity, pattern) if seen else None

    wait_until(both, ALERT_TIMEOUT, "a velocity and a pattern alert")
    # Everything up to the injections has been through the rules: later alerts cannot be theirs.
    wait_until(lambda: rules_done_with(readers[topics.METRICS], target), ALERT_TIMEOUT,
               "the rules query past the injected transactions")
    velocity = distinct(rule_alerts(readers[topics.ALERTS], burst["account"]), LEVEL_VELOCITY)
    pattern = distinct(rule_alerts(readers[topics.ALERTS], card["account"]), LEVEL_PATTERN)
    assert len(velocity) == 1, velocity  # once per window, not once per transaction
    (alert,) = velocity.values()
    prefix, first = burst["first_tx"].rsplit("-", 1)
    expected = tuple(f"{prefix}-{int(first) + n:012d}" for n in range(3))
    assert alert.tx_ids == expected
    assert alert.tx_id == rule_alert_id(LEVEL_VELOCITY, expected[-1])
    assert alert.rule == "count(amount>500)>=3 in 60s" and alert.amount > 500
    assert len(pattern) == 1, pattern
    (alert,) = pattern.values()
    assert alert.tx_ids == (card["small_tx"], card["large_tx"])
    assert alert.rule == "amount<1 then amount>500 in 60s"
    assert alert.amount == float(card["large"]) and alert.account_id == card["account"]
    assert sum(m.alerts for m in rules_metrics(readers[topics.METRICS])) >= 2


@pytest.mark.timeout(1200)  # three job starts, each 20-80 s on a busy machine
def test_rule_state_survives_a_stop_and_a_kill_of_the_job(
    broker: EmbeddedBroker, readers: dict[str, TopicReader], jobs: Callable[..., SparkJob],
) -> None:
    sender = Sender(broker.bootstrap)
    alerts, metrics = readers[topics.ALERTS], readers[topics.METRICS]
    stopped_account, killed_account = fresh_account(), fresh_account()

    first = jobs(*LONG_WINDOW)
    first.wait_ready()
    prime(first, sender, metrics)
    before_stop = sender.send(stopped_account, 600.0, 700.0)
    target = source_end_offsets(broker.bootstrap)
    wait_until(lambda: rules_done_with(metrics, target), ALERT_TIMEOUT, "the rules query past two")
    assert first.stop() == 0, first.stderr_tail()

    # Restarted on the same checkpoint after a clean stop: the third completes the window.
    second = jobs(*LONG_WINDOW)
    second.wait_ready()
    after_stop = sender.send(stopped_account, 800.0)
    wait_until(lambda: distinct(rule_alerts(alerts, stopped_account), LEVEL_VELOCITY), ALERT_TIMEOUT,
               "the velocity alert completed after the restart")
    before_kill = sender.send(killed_account, 650.0, 750.0)
    target = source_end_offsets(broker.bootstrap)
    wait_until(lambda: rules_done_with(metrics, target), ALERT_TIMEOUT, "the rules query past two more")
    second.kill_group()  # SIGKILL, JVM and all, mid-window

    third = jobs(*LONG_WINDOW)
    third.wait_ready()
    after_kill = sender.send(killed_account, 850.0)
    # The stopped account is still in its cool-down: another flagged transaction raises nothing.
    sender.send(stopped_account, 900.0)
    target = source_end_offsets(broker.bootstrap)
    wait_until(lambda: rules_done_with(metrics, target), ALERT_TIMEOUT, "the rules query past the last")

    stopped = distinct(rule_alerts(alerts, stopped_account), LEVEL_VELOCITY)
    killed = distinct(rule_alerts(alerts, killed_account), LEVEL_VELOCITY)
    assert [a.tx_ids for a in stopped.values()] == [tuple(before_stop + after_stop)]
    assert [a.tx_ids for a in killed.values()] == [tuple(before_kill + after_kill)]
    repeats = Counter(a.tx_id for a in rule_alerts(alerts, killed_account))
    print(f"velocity alerts written for the killed job's account: {dict(repeats)}")
