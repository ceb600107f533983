"""Modal screens: help (from the app's own bindings), feed filter, alert details and the full log view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Label, RichLog, Select, Static

from txmon_core.records.alert import LEVELS
from txmon_tui.widgets import formatting as fmt
from txmon_tui.widgets.feed import FeedLine

CLOSE = Binding("escape", "dismiss", "Close")
# A record field near the broker's 1 MB limit would take seconds to lay out: the details show its start
# and how much more there is (an export holds it whole).
DETAIL_CHARS = 2_000
RECENT_MERCHANT_CHARS = 40


class HelpScreen(ModalScreen[None]):
    """Every key of the app, read from its bindings (never a hand-kept table)."""

    BINDINGS = [CLOSE, Binding("h,question_mark,f1,q", "dismiss", "Close", show=False)]

    def __init__(self, bindings: Sequence[tuple[str, str]], notes: Sequence[str] = ()) -> None:
        super().__init__()
        self._keys = bindings
        self._notes = notes  # lines under the keys, e.g. the account rules in force

    def compose(self) -> ComposeResult:
        """A table of keys and what they do."""
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for keys, description in self._keys:
            table.add_row(Text(keys), Text(description))
        for note in self._notes:
            table.add_row("", "")
            table.add_row("", Text(note))  # read from the settings file: text, never markup
        with VerticalScroll(id="help-box") as box:
            box.border_title = "Keys"
            box.border_subtitle = "esc close"
            yield Static(table, id="help-table")


@dataclass(frozen=True, slots=True)
class FilterValues:
    """What the user typed into the filter form; blanks mean 'any'."""

    account: str = ""
    merchant: str = ""
    min_amount: float | None = None
    level: str | None = None


class FilterScreen(ModalScreen[FilterValues | None]):
    """The feed filter form: account, merchant, minimum amount, level."""

    BINDINGS = [CLOSE, Binding("ctrl+r", "reset", "Reset")]

    def __init__(self, current: FilterValues) -> None:
        super().__init__()
        self._current = current

    def compose(self) -> ComposeResult:
        """The form."""
        current = self._current
        with Vertical(id="filter-box") as box:
            box.border_title = "Filter the feed"
            box.border_subtitle = "enter apply · ctrl+r reset · esc cancel"
            yield Label("Account contains")
            yield Input(current.account, id="filter-account")
            yield Label("Merchant contains")
            yield Input(current.merchant, id="filter-merchant")
            yield Label("Minimum amount")
            yield Input("" if current.min_amount is None else f"{current.min_amount:g}",
                        id="filter-min-amount", type="number")
            yield Label("Level")
            yield Select([(level, level) for level in LEVELS], value=current.level or Select.NULL,
                         allow_blank=True, prompt="any", id="filter-level")
            yield Label("", id="filter-error")
            with Horizontal(id="filter-buttons"):
                yield Button("Apply", variant="primary", id="filter-apply")
                yield Button("Cancel", id="filter-cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#filter-apply")
    def apply(self) -> None:
        """Close with the values typed, or say which one is wrong."""
        text = self.query_one("#filter-min-amount", Input).value.strip()
        try:
            minimum = float(text) if text else None
        except ValueError:
            self.query_one("#filter-error", Label).update(Text(f"minimum amount: not a number: {text!r}"))
            return
        level = self.query_one("#filter-level", Select).value
        self.dismiss(FilterValues(
            account=self.query_one("#filter-account", Input).value.strip(),
            merchant=self.query_one("#filter-merchant", Input).value.strip(),
            min_amount=minimum,
            level=level if isinstance(level, str) else None,
        ))

    @on(Button.Pressed, "#filter-cancel")
    def cancel(self) -> None:
        """Close without changing the filter."""
        self.dismiss(None)

    def action_reset(self) -> None:
        """Close with no filter at all."""
        self.dismiss(FilterValues())


def details_fields(line: FeedLine, rule: str, detected_at: str) -> Table:
    """The details of one flagged transaction, a field a line.

    Record fields are data from Kafka: plain Text, never a markup string (a merchant `[/x]` would not parse).
    """
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column()
    fields.add_row("level", fmt.level_marker(line.level))
    for name, value in (
        ("tx id", line.tx_id),
        ("account", line.account_id),
        ("merchant", line.merchant),
        ("amount", fmt.amount(line.amount, line.currency)),
        ("event time", line.ts),
        ("detected at", detected_at),
        ("rule", rule),
        ("latency", fmt.seconds(line.latency)),
    ):
        fields.add_row(name, Text(value if len(value) <= DETAIL_CHARS else
                                  f"{value[:DETAIL_CHARS]}… ({len(value) - DETAIL_CHARS:,} more characters)"))
    return fields


def recent_cells(item: FeedLine) -> tuple[Text, ...]:
    """One row of the account's history (a DataTable reads a str cell as markup: record text goes as Text)."""
    return (fmt.level_marker(item.level), Text(item.ts[:19].replace("T", " ")),
            Text(fmt.head(item.merchant, RECENT_MERCHANT_CHARS)),
            Text(fmt.amount(item.amount), justify="right"))


class DetailsScreen(ModalScreen[None]):
    """One flagged transaction in full, and that account's recent flagged transactions."""

    BINDINGS = [CLOSE, Binding("enter,q", "dismiss", "Close", show=False)]

    def __init__(self, line: FeedLine, rule: str, detected_at: str, recent: Sequence[FeedLine]) -> None:
        super().__init__()
        self._line, self._rule, self._detected_at, self._recent = line, rule, detected_at, recent

    def compose(self) -> ComposeResult:
        """The fields, then the account's history."""
        with Vertical(id="details-box") as box:
            box.border_title = "Flagged transaction"
            box.border_subtitle = "esc close"
            yield Static(details_fields(self._line, self._rule, self._detected_at), id="details-fields")
            yield Label(f"Recent flagged transactions of this account ({len(self._recent)})",
                        id="details-recent-title")
            table: DataTable[Text | str] = DataTable(id="details-recent", cursor_type="row")
            yield table

    def on_mount(self) -> None:
        """Fill the account's history."""
        table = self.query_one("#details-recent", DataTable)
        table.add_columns("level", "event time", "merchant", Text("amount", justify="right"))
        for item in self._recent:
            table.add_row(*recent_cells(item))


class LogScreen(ModalScreen[None]):
    """The log of one child process, scrollable and followed live; `tab` moves to the next process."""

    REFRESH_SECONDS = 2.0

    BINDINGS = [CLOSE, Binding("tab", "next_log", "Next process")]

    def __init__(self, names: Sequence[str], first: str) -> None:
        super().__init__()
        self.names = list(names)
        self.current = first
        self._text: str | None = None

    def compose(self) -> ComposeResult:
        """The log area."""
        with Vertical(id="log-box") as box:
            box.border_subtitle = "tab next process · esc close"
            yield RichLog(id="log-view", wrap=False, highlight=False, max_lines=5000)

    def on_mount(self) -> None:
        """Ask the app for the first log, then follow it."""
        self._switch()
        self.set_interval(self.REFRESH_SECONDS, self._follow)

    def _switch(self) -> None:
        self.query_one("#log-box").border_title = f"Log: {self.current}"
        self._text = None
        self.query_one(RichLog).clear().write(Text("reading…", style="dim"))
        self.app.call_later(self.app.load_log, self.current)  # type: ignore[attr-defined]

    def _follow(self) -> None:
        # Only while the view sits at the end: someone scrolled up to read must not be moved.
        if self.query_one(RichLog).is_vertical_scroll_end:
            self.app.call_later(self.app.load_log, self.current)  # type: ignore[attr-defined]

    def action_next_log(self) -> None:
        """Show the next process's log."""
        if self.names:
            self.current = self.names[(self.names.index(self.current) + 1) % len(self.names)]
            self._switch()

    def show_log(self, name: str, text: str) -> None:
        """Show a log that was read (ignored if the user moved on, or if it did not change)."""
        if name != self.current or text == self._text:
            return
        self._text = text
        log = self.query_one(RichLog)
        log.clear()
        log.write(Text(text or "(empty)"), scroll_end=True)
