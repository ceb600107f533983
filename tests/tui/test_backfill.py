"""Backfill: alerts written before the monitor started fill its feed, counters and histogram."""

from __future__ import annotations

import dataclasses
import io
import time
import uuid
from collections.abc import Iterator

import orjson
import pytest
from confluent_kafka import Producer

from tests.conditions import wait_until
from tests.tui.conftest import make_alert, tailing, until
from tests.tui.test_monitor import feed_ids
from txmon_core.broker import EmbeddedBroker
from txmon_core.topics import TopicNames, ensure_topics
from txmon_tui.app import create_app
from txmon_tui.monitor import headless
from txmon_tui.monitor.tail import Tail, TailBatch
from txmon_tui.supervise.config import PipelineConfig

pytestmark = pytest.mark.tui
HOUR_MS = 3_600_000


@pytest.fixture
def names(broker: EmbeddedBroker) -> TopicNames:
    """Topics of this test alone, named as a cluster with its own naming might name them."""
    run = uuid.uuid4().hex[:8]
    names = TopicNames(f"pay.tx.{run}", f"pay.alerts.{run}", f"pay.dlq.{run}", f"pay.metrics.{run}")
    ensure_topics({"bootstrap.servers": broker.bootstrap}, names.all)
    return names


@pytest.fixture
def past(broker: EmbeddedBroker, names: TopicNames) -> Iterator[dict[str, list[str]]]:
    """Alerts already in the alerts topic: two of 2 h ago, three of 5 min ago (by record timestamp)."""
    now_ms = int(time.time() * 1000)
    ids = {"old": [f"old-{n}" for n in range(2)], "recent": [f"recent-{n}" for n in range(3)]}
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for age, when in (("old", now_ms - 2 * HOUR_MS), ("recent", now_ms - 300_000)):
        for tx_id in ids[age]:
            alert = make_alert(tx_id, 950.0 if age == "old" else 612.5, at=when / 1000)
            producer.produce(names.alerts, orjson.dumps(alert), key=tx_id, timestamp=when)
    assert producer.flush(10) == 0
    yield ids


def read_all(tail: Tail, count: int) -> TailBatch:
    """Poll until `count` alerts came; the last batch's backfill progress is kept."""
    total = TailBatch()

    def enough() -> bool:
        got = tail.poll(0.2)
        total.alerts += got.alerts
        total.backfill = got.backfill if got.backfill is not None else total.backfill
        return len(total.alerts) >= count

    wait_until(enough, 20, f"{count} alerts from the backfill")
    return total


def test_tail_backfills_from_a_time(broker: EmbeddedBroker, names: TopicNames,
                                    past: dict[str, list[str]]) -> None:
    tail = Tail({"bootstrap.servers": broker.bootstrap}, names=names,
                since_ms=int(time.time() * 1000) - HOUR_MS)
    try:
        assert tail.backfill_progress() == (0, 3)
        batch = read_all(tail, 3)
        assert sorted(a.tx_id for a in batch.alerts) == past["recent"]  # not the ones of 2 h ago
        assert batch.backfill == (3, 3) and tail.backfill_progress() is None
    finally:
        tail.close()


def test_tail_backfills_from_the_beginning(broker: EmbeddedBroker, names: TopicNames,
                                           past: dict[str, list[str]]) -> None:
    tail = Tail({"bootstrap.servers": broker.bootstrap}, names=names, since_ms=0)
    try:
        batch = read_all(tail, 5)
        assert sorted(a.tx_id for a in batch.alerts) == sorted(past["old"] + past["recent"])
    finally:
        tail.close()


async def test_alerts_from_before_start_fill_the_feed(config: PipelineConfig, names: TopicNames,
                                                      past: dict[str, list[str]]) -> None:
    since = int(time.time() * 1000) - HOUR_MS  # --since 1h
    app = create_app(dataclasses.replace(config, topic_names=names, since_ms=since, read_only=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await tailing(pilot, app)
        await until(pilot, lambda: sorted(feed_ids(app)) == past["recent"],
                    "the backfilled alerts in the feed")
        snap = app.model.snapshot()
        assert snap.alerts == 3 and sum(snap.live_bins) == 3  # counters and histogram too
        assert snap.latency_p99 is None  # alerts of the past say nothing of today's detection latency
        assert app._backfill is None  # done: the status line no longer shows progress


def test_headless_backfill_counts_the_past(config: PipelineConfig, names: TopicNames,
                                           past: dict[str, list[str]]) -> None:
    out, err = io.StringIO(), io.StringIO()
    attached = dataclasses.replace(config, topic_names=names, since_ms=0, read_only=True)
    headless.run(attached, duration=2.0, out=out, err=err)
    summary = orjson.loads(out.getvalue())
    assert summary["alerts"] == 5 and summary["steps"]["topics"]["state"] == "done", summary
    assert "backfill 5/5 alerts" in err.getvalue(), err.getvalue()
