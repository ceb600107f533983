"""The keys of the alert feed: space pauses, / filters, enter opens details, c clears, g groups.

A base class of MonitorApp, as OperatorApp is: the bindings are declared in app.py, the actions live here;
the model keeps the feed, these only change its view and repaint.
"""

from __future__ import annotations

from collections.abc import Callable

from textual import on
from textual.app import App

from txmon_tui.monitor.model import MonitorModel
from txmon_tui.widgets import present
from txmon_tui.widgets.feed import AlertFeed, FeedTable
from txmon_tui.widgets.groups import GroupTable
from txmon_tui.widgets.screens import DetailsScreen, FilterScreen, FilterValues


class FeedKeys(App[int]):
    """The base of MonitorApp for the feed's keys (see the module docstring)."""

    # Provided by MonitorApp.
    model: MonitorModel
    clock: Callable[[], float]
    repaint: Callable[[], None]
    grouped = False  # the feed shows one row per account and rule

    def action_toggle_pause(self) -> None:
        """Pause the feed (counting what arrives), or resume at the newest."""
        self.model.toggle_pause()
        self.repaint()

    def action_filter(self) -> None:
        """Open the filter form; the feed shows only what matches."""

        def apply(values: FilterValues | None) -> None:
            if values is not None:
                self.model.set_filter(present.to_filter(values))
                self.repaint()

        self.push_screen(FilterScreen(present.filter_values(self.model.filter)), apply)

    def action_details(self) -> None:
        """Open the selected alert with that account's recent flagged transactions."""
        feed = self.query_one(AlertFeed)
        tx_id = (feed.query_one(GroupTable) if self.grouped else feed).selected_tx_id()
        row = next((r for r in self.model.feed() if r.alert.tx_id == tx_id), None) if tx_id else None
        if row is None:
            self.notify("No alert selected", timeout=2)
            return
        recent = [present.feed_line(r) for r in self.model.account_rows(row.alert.account_id)]
        self.push_screen(DetailsScreen(present.feed_line(row), row.alert.rule, row.alert.detected_at, recent))

    def action_clear(self) -> None:
        """Clear counters, feed and histogram."""
        self.model.clear(self.clock())
        self.repaint()
        self.notify("Counters cleared", timeout=2)

    def action_toggle_grouped(self) -> None:
        """Switch the feed between its newest rows and one row per account and rule."""
        self.grouped = not self.grouped
        feed = self.query_one(AlertFeed)
        feed.set_class(self.grouped, "-grouped")
        feed.border_title = "Alert feed · by account and rule" if self.grouped else "Alert feed"
        self.repaint()

    @on(FeedTable.RowSelected, "#feed-table")
    @on(GroupTable.RowSelected, "#groups-table")
    def _row_selected(self) -> None:
        self.action_details()
