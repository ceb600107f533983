"""The alert feed: the newest flagged transactions, repainted on the app's clock, never per record."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from spark_app.formats import LEVEL_ALERT, LEVEL_LARGE, LEVEL_PATTERN, LEVEL_VELOCITY
from txmon_tui.monitor.grouping import AlertGroup
from txmon_tui.widgets import formatting as fmt
from txmon_tui.widgets.groups import GroupTable
from txmon_tui.widgets.linetable import LineTable

# Only this many rows are ever built into the table: more than any terminal shows at once.
MAX_RENDERED_ROWS = 40


@dataclass(frozen=True, slots=True)
class FeedLine:
    """One row as the feed shows it: the alert's fields and its detection latency."""

    tx_id: str
    account_id: str
    merchant: str
    amount: float
    currency: str
    ts: str
    level: str
    latency: float | None
    mark: str = ""  # triage marks before the tx id (txmon_tui.monitor.triage_view), e.g. "✓" acknowledged
    dim: bool = False  # a silenced alert, shown dimmed

    @property
    def key(self) -> str:
        """The row's key: the tx id, plus its marks (the table redraws a row only when its key changes)."""
        return self.tx_id if not (self.mark or self.dim) else f"{self.tx_id}{ROW_KEY_SEPARATOR}{self.mark}"


ROW_KEY_SEPARATOR = "\x1e"

# Each level has a word of at most 5 cells (reads without colour) and a colour of its own; account
# rules' alerts (velocity, pattern) are in capitals like ALERT, as they call for a look too.
LEVEL_MARKERS = {
    LEVEL_ALERT: ("ALERT", "bold red"),
    LEVEL_LARGE: ("large", "yellow"),
    LEVEL_VELOCITY: ("VELOC", "bold magenta"),
    LEVEL_PATTERN: ("PATRN", "bold cyan"),
}


def level_marker(level: str) -> Text:
    """The level told apart by a word (reads without colour) and by colour."""
    word, style = LEVEL_MARKERS.get(level, (level[:5], ""))
    return Text(word, style=style)


class FeedTable(LineTable):
    """The table of the feed; row keys are tx ids so the cursor follows its transaction."""


class AlertFeed(Vertical):
    """Alert feed panel: a status line (paused, +N new, filter) over the table of the newest rows."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self._shown: tuple[str, ...] = ()
        self._widths: tuple[int, ...] = ()
        self._status = ""

    def compose(self) -> ComposeResult:
        """The status line and the table."""
        yield Static("", id="feed-status", markup=False)  # shows the filter typed
        yield FeedTable(id="feed-table")
        yield GroupTable(id="groups-table")  # shown instead of the feed's table in the grouped view (g)

    def on_mount(self) -> None:
        """Name the panel."""
        self.border_title = "Alert feed"

    @property
    def table(self) -> FeedTable:
        """The feed's table."""
        return self.query_one(FeedTable)

    def selected_tx_id(self) -> str | None:
        """The tx id of the row under the cursor, if any."""
        key = self.table.cursor_key
        return None if key is None else key.partition(ROW_KEY_SEPARATOR)[0]

    def show(self, lines: Sequence[FeedLine], status: str) -> None:
        """Repaint the newest rows (newest first) and the status line; skipped when nothing changed."""
        if status != self._status:  # an unchanged update would still cost a repaint
            self._status = status
            self.query_one("#feed-status", Static).update(status, layout=False)  # one line, always
        lines = lines[:MAX_RENDERED_ROWS]
        widths = column_widths(self.table.size.width)
        shown = tuple(line.key for line in lines)
        if shown == self._shown and widths == self._widths:
            return
        table = self.table
        if widths != self._widths:
            table.set_columns([label for label, _ in COLUMNS], widths)
        selected = self.selected_tx_id()
        table.set_rows([(line.key, cells(line, widths)) for line in lines])
        if selected is not None and table.cursor_key is not None and self.selected_tx_id() != selected:
            # The row's marks changed its key (e.g. just acknowledged): the cursor stays on it.
            tx_ids = [line.tx_id for line in lines]
            if selected in tx_ids:
                table.move_cursor(tx_ids.index(selected))
        self._shown, self._widths = shown, widths

    def show_groups(self, groups: Sequence[AlertGroup], status: str) -> None:
        """Repaint the grouped view and the status line (the grouped view is shown instead of the rows)."""
        if status != self._status:
            self._status = status
            self.query_one("#feed-status", Static).update(status, layout=False)  # one line, always
        self.query_one(GroupTable).show(groups[:MAX_RENDERED_ROWS])


COLUMNS: tuple[tuple[str | Text, str], ...] = (
    ("level", "level"),
    ("time", "time"),
    ("tx id", "tx_id"),
    ("account", "account"),
    ("merchant", "merchant"),
    (Text("amount", justify="right"), "amount"),
    (Text("latency", justify="right"), "latency"),
)
# level, time, amount and latency never shrink; the ids and the merchant share what is left.
FIXED = (5, 8, 10, 7)
CELL_PADDING = 2
SCROLLBAR = 1


def column_widths(table_width: int) -> tuple[int, ...]:
    """Column widths that fit `table_width` without a horizontal scrollbar; ids show their ends."""
    level, time, amount, latency = FIXED
    spare = table_width - SCROLLBAR - sum(FIXED) - CELL_PADDING * len(COLUMNS)
    merchant = 12
    spare -= merchant
    tx_id = min(26, max(10, spare // 2))
    account = min(24, max(9, spare - tx_id))
    merchant += max(0, min(6, spare - tx_id - account))
    return (level, time, tx_id, account, merchant, amount, latency)


def cells(line: FeedLine, widths: tuple[int, ...]) -> tuple[Text | str, ...]:
    """The cells of one row at the given column widths."""
    _, _, tx_width, account_width, merchant_width, _, _ = widths
    row = (
        level_marker(line.level),
        line.ts[11:19],  # HH:MM:SS of the ISO 8601 event time
        line.mark + fmt.tail(line.tx_id, tx_width - len(line.mark)),
        fmt.tail(line.account_id, account_width),
        fmt.head(line.merchant, merchant_width),
        Text(fmt.amount(line.amount), justify="right", style="bold red" if line.level == LEVEL_ALERT else ""),
        Text(fmt.seconds(line.latency), justify="right"),
    )
    if not line.dim:
        return row
    return tuple(Text(cell.plain, style="dim", justify=cell.justify) if isinstance(cell, Text)
                 else Text(cell, style="dim") for cell in row)
