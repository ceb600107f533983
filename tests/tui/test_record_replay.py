"""The grouped view, recording, replay and export, driven with Pilot: against the real broker where live."""

from __future__ import annotations

import csv
import re
import time
import uuid
from pathlib import Path

import orjson
import psutil
import pytest
from textual.message import Message

from tests.tui.conftest import Records, make_alert, make_metrics, tailing, until
from txmon_tui.app import MonitorApp, create_app
from txmon_tui.messages import ExportWritten, RecordsReceived
from txmon_tui.monitor.feed import FeedFilter
from txmon_tui.monitor.recorder import Recorder
from txmon_tui.monitor.replay import open_replay
from txmon_tui.monitor.tail import TailBatch
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.widgets.linetable import LineTable

pytestmark = pytest.mark.tui
WIDE = (120, 40)
COMPACT = (80, 24)
T0 = 1_795_608_000.0


def ids(prefix: str, n: int) -> list[str]:
    """n tx ids unique to this test run."""
    run = uuid.uuid4().hex[:8]
    return [f"{prefix}{run}-{i:06d}" for i in range(n)]


def feed_ids(app: MonitorApp) -> list[str]:
    """The tx ids of the feed's rows, top to bottom."""
    return app.query_one("#feed-table", LineTable).row_keys


def group_rows(app: MonitorApp) -> list[tuple[str, str, str, str]]:
    """The grouped view's rows as (level, count, last digit of the account, max amount), top to bottom."""
    table = app.query_one("#groups-table", LineTable)
    rows = [table.row_text(i) for i in range(table.row_count)]
    return [(r[0], r[1], r[2][-1], r[6]) for r in rows]


def status(app: MonitorApp) -> str:
    """The top status line."""
    return str(app.query_one("#status").render())


def counters(app: MonitorApp) -> tuple[int, ...]:
    """The counters a session shows: alerts by level, processed, flagged, dead letters, Parquet rows."""
    snap = app.model.snapshot()
    return (snap.alerts, snap.alerts_alert, snap.alerts_large, snap.processed, snap.flagged,
            snap.dead_letters, snap.parquet_rows)


def children() -> set[int]:
    """The pids of this process's children (the test session's broker among them)."""
    return {child.pid for child in psutil.Process().children(recursive=True)}


async def test_grouped_view_counts_alerts_by_account_and_rule(app: MonitorApp, records: Records) -> None:
    tx = ids("group", 7)
    a, b = "RO11AAAA0000000000000001", "RO22BBBB0000000000000002"
    async with app.run_test(size=WIDE) as pilot:
        await tailing(pilot, app)
        records.alerts([make_alert(tx[0], 610.0, account=a), make_alert(tx[1], 950.0, account=a),
                        make_alert(tx[2], 720.0, account=b), make_alert(tx[3], 880.0, account=a)])
        records.alerts([make_alert(tx[3], 880.0, account=a),  # at-least-once: a repeat counts once
                        make_alert(tx[4], 515.0, account=a), make_alert(tx[5], 990.0, account=b)])
        await until(pilot, lambda: len(feed_ids(app)) == 6, "six rows in the list")
        await pilot.press("g")
        assert app.query_one("#groups-table").region.area > 0
        assert app.query_one("#feed-table").region.area == 0  # the grouped view replaces the rows
        expected = [("ALERT", "×1", "2", "990.00"), ("large", "×3", "1", "880.00"),
                    ("large", "×1", "2", "720.00"), ("ALERT", "×1", "1", "950.00")]
        await until(pilot, lambda: group_rows(app) == expected, "four groups, latest updated first")
        records.alerts([make_alert(tx[6], 640.0, account=b)])
        await until(pilot, lambda: group_rows(app)[0] == ("large", "×2", "2", "720.00"),
                    "the updated group on top with its new count")
        app.model.set_filter(FeedFilter(account="aaaa"))  # what the filter form sets (tested elsewhere)
        app.repaint()
        await until(pilot, lambda: [r[1] for r in group_rows(app)] == ["×3", "×1"], "only account A's groups")
        await pilot.press("g")
        await until(pilot, lambda: feed_ids(app) == [tx[4], tx[3], tx[1], tx[0]], "the list again, filtered")


async def test_a_live_session_recorded_replays_the_same(config: PipelineConfig, records: Records,
                                                        tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    tx = ids("rec", 5)
    live = create_app(config, record_to=path)
    async with live.run_test(size=WIDE) as pilot:
        await tailing(pilot, live)
        assert "● rec session.jsonl" in status(live)
        records.alerts([make_alert(tx[0], 620.0), make_alert(tx[1], 930.0)])
        records.metrics([make_metrics(1, rows=700, large=1, alerts=1, dead_letters=1)])
        records.alerts([make_alert(tx[2], 777.0, account="RO22BBBB0000000000000002"),
                        make_alert(tx[1], 930.0), make_alert(tx[3], 505.0), make_alert(tx[4], 999.0)])
        records.metrics([make_metrics(2, rows=300, large=2, alerts=1),
                         make_metrics(1, rows=0, large=3, alerts=2, query="parquet")])
        await until(pilot, lambda: len(feed_ids(live)) == 5 and live.model.snapshot().parquet_rows == 5,
                    "every record on screen")
        shown, counted = feed_ids(live), counters(live)
    assert live.recorder is None  # closed on exit, everything written
    assert shown == list(reversed(tx)) and counted == (5, 2, 3, 1000, 5, 1, 5)
    lines = path.read_bytes().splitlines()
    assert sum(b'"alert":' in line for line in lines) == 6  # recorded as read: the replay drops the repeat
    before = children()
    replay = create_app(PipelineConfig(data_dir=tmp_path / "replay"), replay=open_replay(path, None))
    async with replay.run_test(size=WIDE) as pilot:
        assert replay.pipeline is None
        assert replay.replay is not None
        await until(pilot, lambda: replay.replay.control.ended, "the end of the recording")
        await until(pilot, lambda: feed_ids(replay) == shown, "the same rows, in the same order")
        assert counters(replay) == counted
        assert replay.model.snapshot().duplicates == live.model.snapshot().duplicates
        await until(pilot, lambda: "replay session.jsonl · max" in status(replay) and "ended" in status(
            replay), "the replay named on the status line")
        assert children() == before  # no broker, no Spark job, no producer started


def write_recording(path: Path, offsets: list[float]) -> list[str]:
    """A recording with one alert per batch at the given offsets; return the tx ids in order."""
    recorder = Recorder(path, T0)
    tx = [f"step-{i}" for i in range(len(offsets))]
    for i, offset in enumerate(offsets):
        alert = make_alert(tx[i], 600.0 + i, at=T0 + offset)
        recorder.add(TailBatch([alert], [make_metrics(i, rows=10, large=1)], 0, T0 + offset))
    recorder.close()
    return tx


async def test_replay_pauses_steps_and_changes_speed(tmp_path: Path) -> None:
    path = tmp_path / "steps.jsonl"
    tx = write_recording(path, [0.05, 600.0, 1200.0])  # ten minutes apart: only steps reach them in time
    before = children()
    app = create_app(PipelineConfig(data_dir=tmp_path), replay=open_replay(path, 1.0))
    async with app.run_test(size=COMPACT) as pilot:
        await until(pilot, lambda: feed_ids(app) == [tx[0]], "the first batch at its time")
        assert re.search(r"1× · 0:\d\d of 20:00 · playing", status(app))
        await pilot.press("k")
        await until(pilot, lambda: "paused" in status(app), "paused")
        await pilot.press("full_stop")
        await until(pilot, lambda: feed_ids(app) == [tx[1], tx[0]], "one more batch on a step")
        await until(pilot, lambda: "10:00 of 20:00 · paused" in status(app), "the clock moved to that batch")
        assert app.model.snapshot().processed == 20
        await pilot.press("greater_than_sign", "greater_than_sign")
        await until(pilot, lambda: "4× · 10:00" in status(app), "four times faster, still paused")
        await pilot.press("less_than_sign")
        await until(pilot, lambda: "2× · 10:00" in status(app), "twice as fast")
        await pilot.press("p", "s")  # the pipeline's keys do nothing in a replay: there is none
        assert children() == before and app.pipeline is None
        await pilot.press("full_stop")
        await until(pilot, lambda: feed_ids(app) == list(reversed(tx)), "the last batch")
        await until(pilot, lambda: "ended" in status(app), "the end of the recording")


async def test_export_writes_the_feed_and_the_grouped_view(tmp_path: Path) -> None:
    app = create_app(PipelineConfig(data_dir=tmp_path), supervise=False, export_format="csv")
    alerts = [make_alert("exp-1", 610.0, account="RO11AAAA"), make_alert("exp-2", 950.0, account="RO11AAAA"),
              make_alert("exp-3", 720.0, account="RO11AAAA"), make_alert("exp-4", 800.0, account="RO22BBBB")]
    exports = tmp_path / "exports"
    written: list[ExportWritten] = []

    def hook(message: Message) -> None:
        if isinstance(message, ExportWritten):
            written.append(message)

    async with app.run_test(size=COMPACT, message_hook=hook) as pilot:
        app.post_message(RecordsReceived([TailBatch(alerts=alerts, received_at=time.time())]))
        await until(pilot, lambda: len(feed_ids(app)) == 4, "four rows")
        await pilot.press("e")
        await until(pilot, lambda: list(exports.glob("txmon-feed-*.csv")), "the feed's export")
        with open(next(exports.glob("txmon-feed-*.csv")), newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert [r["tx_id"] for r in rows] == ["exp-4", "exp-3", "exp-2", "exp-1"]
        assert (rows[2]["level"], rows[2]["amount"], rows[2]["rule"]) == ("alert", "950.0", "amount>900")
        await pilot.press("g", "e")
        await until(pilot, lambda: list(exports.glob("txmon-groups-*.csv")), "the grouped view's export")
        with open(next(exports.glob("txmon-groups-*.csv")), newline="") as handle:
            groups = [(r["account_id"], r["level"], r["count"], r["max_amount"])
                      for r in csv.DictReader(handle)]
        assert groups == [("RO22BBBB", "large", "1", "800.0"), ("RO11AAAA", "large", "2", "720.0"),
                          ("RO11AAAA", "alert", "1", "950.0")]
        await until(pilot, lambda: len(written) == 2, "both exports reported")
        assert [(Path(m.path).parent, m.rows) for m in written] == [(exports, 4), (exports, 3)]


async def test_export_as_json_honours_the_filter(tmp_path: Path) -> None:
    app = create_app(PipelineConfig(data_dir=tmp_path), supervise=False, export_format="json")
    alerts = [make_alert("js-1", 610.0, account="RO11AAAA"), make_alert("js-2", 950.0, account="RO22BBBB")]
    async with app.run_test(size=COMPACT) as pilot:
        app.post_message(RecordsReceived([TailBatch(alerts=alerts, received_at=time.time())]))
        await until(pilot, lambda: len(feed_ids(app)) == 2, "two rows")
        app.model.set_filter(FeedFilter(min_amount=900))
        await pilot.press("e")
        await until(pilot, lambda: list((tmp_path / "exports").glob("txmon-feed-*.json")), "the export")
        data = orjson.loads(next((tmp_path / "exports").glob("txmon-feed-*.json")).read_bytes())
        assert [r["tx_id"] for r in data] == ["js-2"]


async def test_the_record_key_starts_and_stops_a_recording(tmp_path: Path) -> None:
    app = create_app(PipelineConfig(data_dir=tmp_path), supervise=False)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("r")
        await until(pilot, lambda: app.recorder is not None and "● rec txmon-" in status(app), "recording")
        recorder = app.recorder
        assert recorder is not None
        recorder.add(TailBatch([make_alert("key-1", 700.0)], [], 0, recorder.started_at + 0.5))
        await pilot.press("r")
        await until(pilot, lambda: app.recorder is None and "● rec" not in status(app), "stopped")
        assert recorder.path.parent == tmp_path / "recordings"
        assert b'"key-1"' in recorder.path.read_bytes()
