"""The monitor driven with Pilot against the real broker: known records in, the screen's state out."""

from __future__ import annotations

import dataclasses
import uuid

import pytest
from textual.widgets import DataTable, Input, RichLog, Select, Static

from tests.tui.conftest import Records, make_alert, make_metrics, plain, tailing, until
from txmon_tui.app import PANELS, MonitorApp, create_app
from txmon_tui.supervise.children import ProcState
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.widgets import AmountsPlot, HealthPanel, ThroughputPanel
from txmon_tui.widgets.feed import FeedTable
from txmon_tui.widgets.screens import DetailsScreen, FilterScreen, HelpScreen, LogScreen

pytestmark = pytest.mark.tui
WIDE = (120, 40)
COMPACT = (80, 24)


def ids(prefix: str, n: int) -> list[str]:
    """n tx ids unique to this test run."""
    run = uuid.uuid4().hex[:8]
    return [f"{prefix}{run}-{i:06d}" for i in range(n)]


def feed_ids(app: MonitorApp) -> list[str]:
    """The tx ids of the feed's rows, top to bottom."""
    return app.query_one("#feed-table", FeedTable).row_keys


def feed_status(app: MonitorApp) -> str:
    """The line above the feed."""
    return str(app.query_one("#feed-status").render())


async def test_feed_shows_each_alert_once_newest_first(app: MonitorApp, records: Records) -> None:
    first, second, third = ids("feed", 3)
    async with app.run_test(size=WIDE) as pilot:
        await tailing(pilot, app)
        records.alerts([make_alert(first, 612.40), make_alert(second, 950.00)])
        records.alerts([make_alert(second, 950.00), make_alert(third, 733.10)])  # at-least-once: a repeat
        await until(pilot, lambda: feed_ids(app) == [third, second, first], "three rows, newest first")
        await pilot.pause(0.6)  # one more repaint: the repeat must not add a row
        assert feed_ids(app) == [third, second, first]
        assert app.model.snapshot().duplicates == 1
        table = app.query_one("#feed-table", FeedTable)
        levels = [table.row_text(i)[0] for i in range(3)]
        assert levels == ["large", "ALERT", "large"]  # told apart by a word, not only by colour
        assert table.row_text(1)[5] == "950.00"


async def test_counters_come_from_metrics(app: MonitorApp, records: Records) -> None:
    async with app.run_test(size=WIDE) as pilot:
        await tailing(pilot, app)
        records.metrics([make_metrics(1, rows=1200, large=9, alerts=3, dead_letters=2),
                         make_metrics(2, rows=800, large=5, alerts=1),
                         make_metrics(2, rows=800, large=5, alerts=1),  # a repeated record counts once
                         make_metrics(1, rows=0, large=7, alerts=2, query="parquet")])
        await until(pilot, lambda: app.model.snapshot().processed == 2000, "2,000 processed rows")
        snap = app.model.snapshot()
        assert (snap.flagged, snap.dead_letters, snap.parquet_rows) == (18, 2, 9)
        await until(pilot, lambda: "2,000" in app.query_one(ThroughputPanel).text(), "the total on screen")
        health = app.query_one(HealthPanel).text()
        assert "processed" in health and "2,000" in health and "Parquet rows" in health


async def test_histogram_bins_amounts_and_redraws(app: MonitorApp, records: Records) -> None:
    tx = ids("hist", 6)
    amounts = [510.0, 515.0, 880.0, 905.0, 990.0, 5000.0]
    async with app.run_test(size=WIDE) as pilot:
        await tailing(pilot, app)
        plot = app.query_one("#hist-live", AmountsPlot)
        records.alerts([make_alert(t, a) for t, a in zip(tx, amounts, strict=True)])
        await until(pilot, lambda: sum(app.model.snapshot().live_bins) == 6, "six amounts binned")
        snap = app.model.snapshot()
        width = snap.bin_edges[1] - snap.bin_edges[0]
        assert snap.live_bins[0] == 2  # 510 and 515 share the first bin
        assert snap.live_bins[-1] >= 2  # 990 and the 5,000 overflow land in the last
        assert snap.live_bins[int((880 - snap.bin_edges[0]) // width)] >= 1
        # The six may arrive over two repaints: wait for the draw that holds all of them.
        await until(pilot, lambda: sum(plot.drawn_counts) == 6,
                    "the plot redrawn with the new bins")
        drawn = plot.draws
        await pilot.pause(1.5)  # nothing new arrived: no redraw (a plotext draw costs ~30 ms)
        assert plot.draws == drawn


async def test_pause_counts_new_rows_and_resume_shows_them(app: MonitorApp, records: Records) -> None:
    before, during = ids("pause", 2), ids("paused", 3)
    async with app.run_test(size=WIDE) as pilot:
        await tailing(pilot, app)
        records.alerts([make_alert(t, 700.0) for t in before])
        await until(pilot, lambda: len(feed_ids(app)) == 2, "two rows")
        await pilot.press("space")
        assert "PAUSED" in feed_status(app)
        records.alerts([make_alert(t, 800.0) for t in during])
        await until(pilot, lambda: "+3 new" in feed_status(app), "+3 new while paused")
        assert feed_ids(app) == list(reversed(before))  # frozen
        await pilot.press("space")
        await until(pilot, lambda: feed_ids(app)[:3] == list(reversed(during)), "the newest rows on resume")
        assert "PAUSED" not in feed_status(app)


async def test_filter_by_account_amount_and_level(app: MonitorApp, records: Records) -> None:
    a, b, c, d = ids("filter", 4)
    async with app.run_test(size=WIDE) as pilot:
        await tailing(pilot, app)
        records.alerts([make_alert(a, 600.0, account="RO11AAAA0000000000000001"),
                        make_alert(b, 950.0, account="RO11AAAA0000000000000001", merchant="eMAG"),
                        make_alert(c, 990.0, account="RO22BBBB0000000000000002"),
                        make_alert(d, 700.0, account="RO22BBBB0000000000000002")])
        await until(pilot, lambda: len(feed_ids(app)) == 4, "four rows")
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, FilterScreen) and app.screen.query("#filter-apply"),
                    "the filter form")
        app.screen.query_one("#filter-account", Input).value = "aaaa"
        app.screen.query_one("#filter-min-amount", Input).value = "900"
        await pilot.click("#filter-apply")
        await until(pilot, lambda: feed_ids(app) == [b], "only the matching alert")
        assert "account~aaaa" in feed_status(app) and "amount≥900" in feed_status(app)
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, FilterScreen), "the filter form again")
        await pilot.press("ctrl+r")  # reset
        await until(pilot, lambda: len(feed_ids(app)) == 4, "every row back")
        await pilot.press("slash")
        await until(pilot, lambda: isinstance(app.screen, FilterScreen) and app.screen.query("#filter-level"),
                    "the filter form a third time")
        app.screen.query_one("#filter-level", Select).value = "large"
        await pilot.click("#filter-apply")
        await until(pilot, lambda: feed_ids(app) == [d, a], "only large transactions")


async def test_details_show_the_accounts_recent_flagged_ones(app: MonitorApp, records: Records) -> None:
    a, b, c = ids("details", 3)
    account = "RO49RZBR0000060099990000"
    async with app.run_test(size=WIDE) as pilot:
        await tailing(pilot, app)
        records.alerts([make_alert(a, 640.0, account=account), make_alert(b, 720.0),
                        make_alert(c, 980.0, account=account, merchant="Altex")])
        await until(pilot, lambda: feed_ids(app) == [c, b, a], "three rows")
        app.query_one("#feed-table").focus()
        await pilot.press("enter")  # the cursor is on the newest row
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen), "the details view")
        recent = app.screen.query_one("#details-recent", DataTable)
        assert recent.row_count == 2  # this account's two, not the other account's
        fields = plain(app.screen.query_one("#details-fields", Static))
        assert c in fields and account in fields and "Altex" in fields and "amount>900" in fields
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailsScreen), "the details closed")


async def test_feed_cursor_follows_its_transaction_as_rows_arrive(app: MonitorApp, records: Records) -> None:
    a, b, c, d = ids("cursor", 4)
    async with app.run_test(size=WIDE) as pilot:
        await tailing(pilot, app)
        records.alerts([make_alert(a, 610.0), make_alert(b, 620.0), make_alert(c, 930.0)])
        await until(pilot, lambda: feed_ids(app) == [c, b, a], "three rows")
        table = app.query_one("#feed-table", FeedTable)
        table.focus()
        await pilot.press("home", "down")  # from the top: the cursor may have followed a row as they came
        assert table.cursor_key == b
        records.alerts([make_alert(d, 640.0)])
        await until(pilot, lambda: feed_ids(app) == [d, c, b, a], "the new row on top")
        assert table.cursor_key == b and table.cursor_row == 2  # moved down with its row
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen), "the details view")
        assert b in plain(app.screen.query_one("#details-fields", Static))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailsScreen), "the details closed")


@pytest.mark.parametrize("key", ["h", "question_mark", "f1"])
async def test_help_lists_every_binding(app: MonitorApp, key: str) -> None:
    async with app.run_test(size=COMPACT) as pilot:
        await pilot.press(key)
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help panel")
        text = " ".join(plain(app.screen.query_one("#help-table", Static)).split())
        for binding in app.BINDINGS:
            assert " ".join((binding.tooltip or binding.description).split()) in text, binding
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "the help panel closed")


async def test_clear_resets_the_counters(app: MonitorApp, records: Records) -> None:
    async with app.run_test(size=WIDE) as pilot:
        await tailing(pilot, app)
        records.metrics([make_metrics(1, rows=500, large=4)])
        await until(pilot, lambda: app.model.snapshot().processed == 500, "500 processed")
        await pilot.press("c")
        assert app.model.snapshot().processed == 0


def _overlaps(a: object, b: object) -> bool:
    return bool(a.overlaps(b))  # type: ignore[attr-defined]


async def test_all_panels_visible_without_overlap_at_120x40(app: MonitorApp) -> None:
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause(0.2)
        regions = [app.query_one(f"#{name}").region for name in PANELS]
        screen = app.screen.region
        for name, region in zip(PANELS, regions, strict=True):
            assert region.area > 0 and screen.contains_region(region), name
        for i, region in enumerate(regions):
            for other in regions[i + 1:]:
                assert not _overlaps(region, other)


async def test_compact_layout_shows_one_panel_at_a_time_at_80x24(app: MonitorApp) -> None:
    async with app.run_test(size=COMPACT) as pilot:
        await pilot.pause(0.2)
        order = ["throughput", "feed", "histograms", "health", "processes"]
        for key, name in zip("21345", order, strict=True):
            await pilot.press(key)
            await pilot.pause(0.1)
            shown = [n for n in PANELS if app.query_one(f"#{n}").region.area]
            assert shown == [name]
            assert app.screen.region.contains_region(app.query_one(f"#{name}").region)


async def test_command_palette_runs_the_bindings_actions(app: MonitorApp) -> None:
    async with app.run_test(size=WIDE) as pilot:
        await pilot.press("ctrl+p")
        await until(pilot, lambda: app.screen.query("CommandInput"), "the command palette")
        await pilot.press(*"Pause")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: app.model.paused, "the feed paused from the palette")


async def test_log_view_shows_a_process_log(config: PipelineConfig) -> None:
    app = create_app(dataclasses.replace(config, run_producer=True))
    async with app.run_test(size=WIDE) as pilot:
        pipeline = app.pipeline
        assert pipeline is not None
        await until(pilot, lambda: (view := pipeline.process("producer")) and view.state is ProcState.RUNNING,
                    "the producer running", timeout=60)
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, LogScreen), "the log view")
        log = app.screen.query_one("#log-view", RichLog)
        await until(pilot, lambda: any("producing to" in line.text for line in log.lines),
                    "the producer's log")
