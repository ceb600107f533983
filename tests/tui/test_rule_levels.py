"""Account rules in the monitor: their alerts (velocity, pattern) in the feed, keys that inject them."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest

from tests.support.records import make_alert
from tests.support.screen import producer_lines
from tests.support.waiting import until
from txmon_core.records.alert import LEVEL_PATTERN, LEVEL_VELOCITY, LEVELS, rule_alert_id
from txmon_tui.app import MonitorApp, create_app
from txmon_tui.messages import RecordsReceived
from txmon_tui.monitor.tail import TailBatch
from txmon_tui.supervise.children import ProcState
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.widgets.formatting import level_marker
from txmon_tui.widgets.linetable import LineTable

pytestmark = pytest.mark.tui


def test_every_level_has_its_own_word_and_colour() -> None:
    markers = [level_marker(level) for level in LEVELS]
    words = [marker.plain for marker in markers]
    assert len(set(words)) == len(LEVELS) and all(0 < len(w) <= 5 for w in words)
    assert len({str(marker.style) for marker in markers}) == len(LEVELS)
    assert level_marker("someday").plain == "somed"  # a level added later still reads as a word


async def test_rule_alerts_show_in_the_feed_and_the_grouped_view(tmp_path: Path) -> None:
    app = create_app(PipelineConfig(data_dir=tmp_path), supervise=False)
    large = make_alert("tx-rule-1", 640.0, account="RO11AAAA")
    velocity = dataclasses.replace(make_alert("tx-rule-2", 720.0, account="RO11AAAA"), level=LEVEL_VELOCITY,
                                   tx_id=rule_alert_id(LEVEL_VELOCITY, "tx-rule-2"), rule="velocity>3/60s")
    pattern = dataclasses.replace(make_alert("tx-rule-3", 880.0, account="RO22BBBB"), level=LEVEL_PATTERN,
                                  tx_id=rule_alert_id(LEVEL_PATTERN, "tx-rule-3"), rule="small-then-large")
    async with app.run_test(size=(120, 40)) as pilot:
        app.post_message(RecordsReceived([TailBatch([large, velocity, pattern], received_at=time.time())]))
        table = app.query_one("#feed-table", LineTable)
        await until(pilot, lambda: table.row_count == 3, "three rows")
        assert [table.row_text(i)[0] for i in range(3)] == ["PATRN", "VELOC", "large"]
        await pilot.press("g")
        groups = app.query_one("#groups-table", LineTable)
        await until(pilot, lambda: groups.row_count == 3, "three groups")
        assert [groups.row_text(i)[0] for i in range(3)] == ["PATRN", "VELOC", "large"]


def producer_said(app: MonitorApp, start: str) -> bool:
    """True once a line of the producer's output starts with `start`."""
    return bool(producer_lines(app, start))


async def test_keys_inject_patterns_through_the_producer(config: PipelineConfig) -> None:
    app = create_app(dataclasses.replace(config, run_producer=True, rate=5.0))
    async with app.run_test(size=(120, 40)) as pilot:
        pipeline = app.pipeline
        assert pipeline is not None
        await until(pilot, lambda: (view := pipeline.process("producer")) and view.state is ProcState.RUNNING,
                    "the producer running", timeout=60)
        await pilot.press("b")
        await until(pilot, lambda: producer_said(app, "burst account="), "the producer's answer to a burst")
        await pilot.press("t")
        await until(pilot, lambda: producer_said(app, "cardtest account="), "its answer to a card test")
        assert not producer_said(app, "error")
