"""The check every fault test ends with: what the producer had acknowledged, against what each sink holds.

Kafka's own system tests judge delivery the same way: every record has a unique id, the producer logs
the ids the broker acknowledged, and after the run everything is drained and compared:

- acknowledged ⊆ `transactions`, which holds no tx_id twice (the idempotent producer);
- committed Parquet = every transaction of the topic above 500 (so ⊇ acknowledged above 500), each
  exactly once (the file sink's `_spark_metadata` log is honoured);
- `alerts` ⊇ every transaction above 900 at level alert, and every transaction in (500, 900] at level
  large, no transaction at the wrong level;
- repeats in `alerts` (the Kafka sink is at-least-once) are counted and reported, and each repeat is
  byte-identical to the first copy apart from `detected_at`; where the test says how many job runs it
  made, no alert has more copies than that (a run replays at most its last batches once);
- the monitor's distinct alerts (MonitorModel fed by a Tail) = the transactions above 900.

A fault test runs on its own broker and data folder, so everything in them belongs to it.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from tests.support.kafka import read_topic
from txmon_core import large_table, topics
from txmon_core.records.alert import (
    DEFAULT_ALERT_THRESHOLD,
    DEFAULT_LARGE_THRESHOLD,
    LEVEL_ALERT,
    LEVEL_LARGE,
    LEVELS,
    decode_alert,
)
from txmon_core.records.transaction import decode
from txmon_tui.monitor.history import committed_files
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.tail import Tail

LARGE = DEFAULT_LARGE_THRESHOLD
ALERT = DEFAULT_ALERT_THRESHOLD
# The one field a repeated alert may change: when the job (re)wrote it.
DETECTED_AT = re.compile(rb'"detected_at":"[^"]*"')


def read_acknowledged(ack_logs: Iterable[Path]) -> set[str]:
    """Every tx_id the producer runs logged as acknowledged (a killed run may leave a partial last line)."""
    acked: set[str] = set()
    for path in ack_logs:
        if not path.exists():
            continue
        text = path.read_text()
        lines = text.splitlines()
        if lines and not text.endswith("\n"):
            lines.pop()  # cut by SIGKILL mid-write: not a whole id, and not counted as acknowledged
        acked.update(line for line in lines if line)
    return acked


def repeated(counts: Mapping[str, int], where: str) -> list[str]:
    """The complaint about tx_ids counted more than once in `where`, if any."""
    repeats = [tx_id for tx_id, n in counts.items() if n > 1]
    return [f"{len(repeats)} tx_ids more than once in {where}: {repeats[:5]}"] if repeats else []


def parquet_counts(data_dir: Path) -> Counter[str]:
    """How often each tx_id appears in the Parquet files the sink committed."""
    counts: Counter[str] = Counter()
    for path in committed_files(data_dir / large_table.DIR_NAME):
        counts.update(pq.read_table(path, columns=["tx_id"]).column("tx_id").to_pylist())
    return counts


@dataclass
class AlertLog:
    """What `alerts` holds: copies of each tx_id per level, and the repeats that differ from the first."""

    counts: dict[str, Counter[str]]
    differing_repeats: list[str] = field(default_factory=list)  # tx_ids whose repeat changed more


def without_detected_at(value: bytes) -> bytes:
    """An alert's bytes with `detected_at` blanked: what a repeat must match byte for byte."""
    return DETECTED_AT.sub(b'"detected_at":""', value)


def read_alerts(client_config: Mapping[str, str]) -> AlertLog:
    """Count every alert per level and compare each repeat with its first copy, bar `detected_at`."""
    log = AlertLog({level: Counter() for level in LEVELS})
    first: dict[str, bytes] = {}
    for message in read_topic(client_config, topics.ALERTS):
        value = message.value()
        assert value is not None
        alert = decode_alert(value)
        log.counts[alert.level][alert.tx_id] += 1
        comparable = without_detected_at(value)
        if first.setdefault(alert.tx_id, comparable) != comparable:
            log.differing_repeats.append(alert.tx_id)
    return log


class MonitorProbe:
    """The monitor's own view: a Tail of `alerts` feeding a MonitorModel, in a thread, for the whole run.

    The Tail keeps polling through broker outages (it reports errors and reconnects by itself).
    """

    def __init__(self, client_config: Mapping[str, str]) -> None:
        self.model = MonitorModel(LARGE, ALERT)
        self.tail = Tail(client_config)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="monitor-probe", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self.tail.poll(0.2)
            if batch.error and batch.error not in self.errors:
                self.errors.append(batch.error)
            self.model.apply(batch)

    def distinct_alerts(self) -> int:
        """Distinct tx_ids the monitor counted at level alert (read after close())."""
        return self.model.snapshot().alerts_alert

    def close(self) -> None:
        """Stop the thread, then the consumer."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.tail.close()


@dataclass
class Audit:
    """The figures of one fault run, and the rules they must satisfy."""

    acknowledged: set[str]
    topic: Counter[str]  # tx_id → occurrences in `transactions`
    amounts: dict[str, float]
    parquet: Counter[str]
    alerts: dict[str, Counter[str]]
    monitor_alerts: int | None = None
    notes: list[str] = field(default_factory=list)
    differing_repeats: list[str] = field(default_factory=list)  # repeated alerts that changed
    job_runs: int | None = None  # how many times the test started the job, when it bounds repeats

    def between(self, low: float, high: float) -> set[str]:
        """The tx_ids in the topic with an amount in (low, high]."""
        return {t for t, amount in self.amounts.items() if low < amount <= high}

    @property
    def most_copies(self) -> int:
        """The most copies of one alert in `alerts` (1 when nothing repeats, 0 when empty)."""
        return max((n for counts in self.alerts.values() for n in counts.values()), default=0)

    def above(self, threshold: float) -> set[str]:
        """The tx_ids in the topic with an amount strictly above `threshold`."""
        return {t for t, amount in self.amounts.items() if amount > threshold}

    @property
    def lost(self) -> set[str]:
        """Acknowledged, yet not in the topic."""
        return self.acknowledged - set(self.topic)

    @property
    def unacknowledged_written(self) -> int:
        """In the topic without an acknowledgement (the producer died before the report reached it)."""
        return len(set(self.topic) - self.acknowledged)

    def problems(self) -> list[str]:
        """Every broken rule, in words; empty when the run kept every promise."""
        found = []
        if self.lost:
            found.append(f"{len(self.lost)} acknowledged transactions missing from the topic, "
                         f"e.g. {sorted(self.lost)[:5]}")
        found += repeated(self.topic, "the topic")
        large = self.above(LARGE)
        if set(self.parquet) != large:
            missing, extra = large - set(self.parquet), set(self.parquet) - large
            found.append(f"Parquet differs from the topic's transactions above {LARGE:g}: "
                         f"{len(missing)} missing (e.g. {sorted(missing)[:3]}), {len(extra)} unexpected")
        found += repeated(self.parquet, "Parquet")
        alerted = set(self.alerts[LEVEL_ALERT])
        missing_alerts = self.above(ALERT) - alerted
        if missing_alerts:
            found.append(f"{len(missing_alerts)} transactions above {ALERT:g} without an alert, "
                         f"e.g. {sorted(missing_alerts)[:3]}")
        if not self.acknowledged & self.above(ALERT) <= alerted:
            found.append("acknowledged transactions above 900 without an alert")
        large_alerts = set(self.alerts[LEVEL_LARGE])
        missing_large = self.between(LARGE, ALERT) - large_alerts
        if missing_large:
            found.append(f"{len(missing_large)} transactions in ({LARGE:g}, {ALERT:g}] without a large "
                         f"alert, e.g. {sorted(missing_large)[:3]}")
        if not self.acknowledged & self.between(LARGE, ALERT) <= large_alerts:
            found.append(f"acknowledged transactions in ({LARGE:g}, {ALERT:g}] without a large alert")
        wrong_level = (large_alerts - self.between(LARGE, ALERT)) | (alerted - self.above(ALERT))
        if wrong_level:
            found.append(f"{len(wrong_level)} alerts at a level their amount does not give, "
                         f"e.g. {sorted(wrong_level)[:3]}")
        if self.differing_repeats:
            found.append(f"{len(self.differing_repeats)} repeated alerts differ from their first copy "
                         f"beyond detected_at, e.g. {self.differing_repeats[:3]}")
        if self.job_runs is not None and self.most_copies > self.job_runs:
            found.append(f"an alert written {self.most_copies} times by {self.job_runs} job runs")
        if self.monitor_alerts is not None and self.monitor_alerts != len(self.above(ALERT)):
            found.append(f"the monitor counted {self.monitor_alerts} distinct alerts, "
                         f"expected {len(self.above(ALERT))}")
        return found

    def figures(self) -> dict[str, int | None]:
        """The numbers a report quotes."""
        alert_rows = sum(sum(c.values()) for c in self.alerts.values())
        distinct = sum(len(c) for c in self.alerts.values())
        return {
            "acknowledged": len(self.acknowledged),
            "in_topic": len(self.topic),
            "unacknowledged_but_written": self.unacknowledged_written,
            "lost": len(self.lost),
            "topic_duplicates": sum(n - 1 for n in self.topic.values()),
            "parquet_rows": sum(self.parquet.values()),
            "parquet_duplicates": sum(n - 1 for n in self.parquet.values()),
            "expected_alerts": len(self.above(ALERT)),
            "expected_large": len(self.between(LARGE, ALERT)),
            "alert_duplicates": alert_rows - distinct,
            "alert_most_copies": self.most_copies,
            "monitor_distinct_alerts": self.monitor_alerts,
        }

    def summary(self) -> str:
        """One line of figures, plus notes (recovery times and the like)."""
        text = " ".join(f"{k}={v}" for k, v in self.figures().items())
        return text + ("; " + "; ".join(self.notes) if self.notes else "")


def take_audit(client_config: Mapping[str, str], ack_logs: Iterable[Path], data_dir: Path) -> Audit:
    """Drain the topic, the alerts and the committed Parquet, and compare with the ack logs."""
    topic: Counter[str] = Counter()
    amounts: dict[str, float] = {}
    for message in read_topic(client_config, topics.TRANSACTIONS):
        tx = decode(message.value())  # every value in a fault test's topic comes from our producer
        topic[tx.tx_id] += 1
        amounts[tx.tx_id] = tx.amount
    alerts = read_alerts(client_config)
    return Audit(read_acknowledged(ack_logs), topic, amounts, parquet_counts(data_dir), alerts.counts,
                 differing_repeats=alerts.differing_repeats)


def wait_for_sinks(client_config: Mapping[str, str], ack_logs: Iterable[Path], data_dir: Path,
                   timeout: float) -> Audit:
    """Audit repeatedly until Parquet and alerts have caught up with the topic, or `timeout` passes."""
    logs = list(ack_logs)
    deadline = time.monotonic() + timeout
    while True:
        audit = take_audit(client_config, logs, data_dir)
        caught_up = (set(audit.parquet) >= audit.above(LARGE)
                     and set(audit.alerts[LEVEL_ALERT]) >= audit.above(ALERT)
                     and set(audit.alerts[LEVEL_LARGE]) >= audit.between(LARGE, ALERT))
        if caught_up or time.monotonic() > deadline:
            return audit
        time.sleep(1.0)  # between two full drains of the topics; the deadline bounds the loop
