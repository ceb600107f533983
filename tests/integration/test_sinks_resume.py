"""Nothing missed while the monitor is down, against the real broker: alerts written to the `alerts`
topic while delivery was stopped reach the JSONL sink exactly once after it starts again, and the intake
holds a bounded number of alerts, waiting (never dropping) while the outbox cannot be written."""

from __future__ import annotations

import dataclasses
import io
import json
import sqlite3
import threading
import uuid
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from spark_app.formats import Alert
from tests.conditions import wait_until
from txmon_core.broker import EmbeddedBroker
from txmon_core.topics import ALERTS, ensure_topics
from txmon_sinks import Delivery, Outlets
from txmon_sinks.config import delivery_config
from txmon_sinks.identity import id_of
from txmon_tui.monitor import headless
from txmon_tui.monitor.tail import Tail, resume_offset
from txmon_tui.supervise.config import PipelineConfig

pytestmark = pytest.mark.integration
SETTINGS = {"sinks": {"jsonl": {"fsync": False}}, "storage": {"enabled": False}}


def make_alert(run: str, n: int) -> Alert:
    return Alert(f"{run}-{n}", "RO49RZBR0000060012345678", "Lidl", 950.0 + n, "RON",
                 "2026-11-25T12:00:00.123Z", "alert", "amount>900", "2026-11-25T12:00:00.300Z")


def produce(bootstrap: str, alerts: list[Alert]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for alert in alerts:
        producer.produce(ALERTS, orjson.dumps(dataclasses.asdict(alert)))
    assert producer.flush(10) == 0


def delivered(path: Path, run: str) -> list[str]:
    """The tx_ids of this run's alerts in the JSONL file, in file order (repeats kept)."""
    if not path.exists():
        return []
    ids = [orjson.loads(line)["tx_id"] for line in path.read_bytes().splitlines()]
    return [tx_id for tx_id in ids if tx_id.startswith(f"{run}-")]


def test_where_delivery_resumes_in_a_partition() -> None:
    assert resume_offset(None, 5, 90, first_run=True) == 90  # nothing delivered before: from now on
    assert resume_offset(None, 5, 90, first_run=False) == 5  # a partition added since the last run
    assert resume_offset(40, 5, 90, first_run=False) == 40
    assert resume_offset(2, 5, 90, first_run=False) == 5  # older records are gone (retention)
    assert resume_offset(120, 0, 90, first_run=False) == 0  # the topic was made anew


def test_a_restarted_tail_delivers_what_was_raised_meanwhile_but_shows_only_what_is_new(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    client = {"bootstrap.servers": broker.bootstrap}
    ensure_topics(client)
    run = f"resume-{uuid.uuid4().hex[:8]}"
    jsonl = tmp_path / "alerts.jsonl"

    def session(expected: int, before: list[Alert], live: list[Alert]) -> list[str]:
        """One monitor run: produce `live` once it reads, deliver until `expected`; return what it showed."""
        shown: list[str] = []
        outlets = Outlets.from_settings(SETTINGS, tmp_path)
        outlets.start()
        try:
            produce(broker.bootstrap, before)  # written before this run reads: "while it was stopped"
            tail = Tail(client, resume=outlets.resume_positions())
            try:
                produce(broker.bootstrap, live)

                def caught_up() -> bool:
                    batch = tail.poll(0.2)
                    shown.extend(a.tx_id for a in batch.alerts if a.tx_id.startswith(run))
                    outlets.take(batch)
                    return len(delivered(jsonl, run)) >= expected

                wait_until(caught_up, 30, f"{expected} alerts in the JSONL file")
            finally:
                tail.close()
        finally:
            outlets.close()
        return shown

    first = [make_alert(run, n) for n in range(3)]
    stopped = [make_alert(run, n) for n in range(3, 10)]
    later = [make_alert(run, n) for n in range(10, 12)]
    assert session(3, [], first) == [a.tx_id for a in first]
    shown = session(12, stopped, later)
    assert shown == [a.tx_id for a in later]  # the screen starts at the end
    assert delivered(jsonl, run) == [a.tx_id for a in first + stopped + later]  # each once, in order


def test_headless_stopped_for_a_while_delivers_every_alert_raised_meanwhile_once(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    ensure_topics({"bootstrap.servers": broker.bootstrap})
    config = PipelineConfig(bootstrap=broker.bootstrap, data_dir=tmp_path, run_producer=False,
                            run_spark=False)
    run = f"headless-{uuid.uuid4().hex[:8]}"
    jsonl = tmp_path / "alerts.jsonl"

    def headless_run(duration: float) -> dict[str, object]:
        out, err = io.StringIO(), io.StringIO()
        outlets = Outlets(Delivery(delivery_config(SETTINGS, tmp_path)))
        outlets.start()
        code = headless.run(config, duration=duration, out=out, err=err, outlets=outlets)
        assert code in (headless.EXIT_OK, headless.EXIT_STALLED), err.getvalue()
        return json.loads(out.getvalue())

    headless_run(1.0)  # the first run marks where delivery starts
    while_stopped = [make_alert(run, n) for n in range(25)]
    produce(broker.bootstrap, while_stopped)
    # Long enough on a busy machine: delivery first reads the shared triage (silences) once.
    report = headless_run(10.0)
    assert delivered(jsonl, run) == [a.tx_id for a in while_stopped]
    assert report["alerts"] == 0  # delivered, not shown as this run's alerts
    produce(broker.bootstrap, while_stopped[:5])  # repeats on the topic are still dropped
    headless_run(2.0)
    assert delivered(jsonl, run) == [a.tx_id for a in while_stopped]


def test_the_intake_waits_rather_than_queueing_without_bound(tmp_path: Path) -> None:
    delivery = Delivery(delivery_config(SETTINGS, tmp_path), intake_max=150)
    delivery.start()
    blocker = sqlite3.connect(delivery.config.outbox_path, timeout=30)
    blocker.execute("BEGIN EXCLUSIVE")  # a real lock on the outbox: the intake cannot write
    batches = [[make_alert("bounded", 60 * b + n) for n in range(60)] for b in range(5)]
    offered: list[int] = []

    def offer_all() -> None:
        for number, batch in enumerate(batches):
            delivery.offer(batch)
            offered.append(number)

    feeder = threading.Thread(target=offer_all)
    try:
        feeder.start()
        wait_until(lambda: len(offered) == 2, 10, "two batches taken before the bound")
        feeder.join(1.0)
        assert feeder.is_alive() and len(offered) == 2, "offer() went on past the bound"
        assert delivery.queued == 120
    finally:
        blocker.rollback()
        blocker.close()
    feeder.join(30)
    assert offered == [0, 1, 2, 3, 4]
    try:
        wait_until(lambda: len(delivered(tmp_path / "alerts.jsonl", "bounded")) == 300, 30,
                   "all 300 alerts in the JSONL file")
    finally:
        delivery.close()
    ids = delivered(tmp_path / "alerts.jsonl", "bounded")
    assert sorted(ids) == sorted(id_of(a).split(":")[0] for batch in batches for a in batch)
