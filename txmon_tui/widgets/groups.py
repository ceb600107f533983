"""The grouped feed: one row per (account, level, rule) with its count, first and last seen, top amount."""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text

from txmon_tui.monitor.grouping import AlertGroup
from txmon_tui.widgets import feed as feed_widgets  # a module import: feed.py imports this one
from txmon_tui.widgets import formatting as fmt
from txmon_tui.widgets.linetable import LineTable

COLUMNS: tuple[tuple[str | Text, str], ...] = (
    ("level", "level"),
    (Text("count", justify="right"), "count"),
    ("account", "account"),
    ("rule", "rule"),
    ("first", "first"),
    ("last", "last"),
    (Text("max amount", justify="right"), "max_amount"),
)
FIXED = (5, 6, 8, 8, 10)  # level, count, first, last, max amount never shrink
CELL_PADDING = 2
SCROLLBAR = 1
ROW_KEY_SEPARATOR = "\x1e"


def column_widths(table_width: int) -> tuple[int, ...]:
    """Column widths that fit `table_width`; the account shows its end, the rule what fits."""
    level, count, first, last, amount = FIXED
    spare = table_width - SCROLLBAR - sum(FIXED) - CELL_PADDING * len(COLUMNS)
    account = min(24, max(9, spare - 10))
    rule = min(16, max(6, spare - account))
    return (level, count, account, rule, first, last, amount)


def group_key(group: AlertGroup) -> str:
    """The row key of a group (stable while it is updated, so the cursor follows it)."""
    return "\x1f".join(group.key)


def cells(group: AlertGroup, widths: tuple[int, ...]) -> tuple[Text | str, ...]:
    """The cells of one group's row at the given column widths."""
    _, _, account_width, rule_width, _, _, _ = widths
    return (
        feed_widgets.level_marker(group.level),
        Text(f"×{group.count:,}", justify="right"),
        fmt.tail(group.account_id, account_width),
        fmt.head(group.rule, rule_width),
        group.first_seen[11:19],  # HH:MM:SS of the ISO 8601 event time
        group.last_seen[11:19],
        Text(fmt.amount(group.max_amount), justify="right"),
    )


class GroupTable(LineTable):
    """The grouped view's table, repainted on the app's clock and only when its rows changed."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self._shown: tuple[str, ...] = ()
        self._widths: tuple[int, ...] = ()
        self._last_tx: dict[str, str] = {}
        self._groups: Sequence[AlertGroup] = ()

    def on_resize(self) -> None:
        """Fit the columns to the new width at once (the table is sized only once it is shown)."""
        self.show(self._groups)

    def selected_tx_id(self) -> str | None:
        """The newest tx id of the group under the cursor, if any."""
        key = self.cursor_key
        return None if key is None else self._last_tx.get(key)

    def selected_group(self) -> tuple[str, str, str] | None:
        """(account, level, rule) of the group under the cursor, if any."""
        key = self.cursor_key
        if key is None:
            return None
        account, level, rule = key.rpartition(ROW_KEY_SEPARATOR)[0].split("\x1f", 2)
        return account, level, rule

    def show(self, groups: Sequence[AlertGroup]) -> None:
        """Repaint the groups (latest updated first); skipped when nothing changed."""
        self._groups = groups
        widths = column_widths(self.size.width)
        # The table keeps each row's drawn line by key: a group's key carries its count, which changes
        # whenever anything it shows does.
        keys = tuple(f"{group_key(g)}{ROW_KEY_SEPARATOR}{g.count}" for g in groups)
        if keys == self._shown and widths == self._widths:
            return
        selected = self.cursor_key
        if widths != self._widths:
            self.set_columns([label for label, _ in COLUMNS], widths)
        self._last_tx = {key: g.last_tx_id for key, g in zip(keys, groups, strict=True)}
        self.set_rows([(key, cells(g, widths)) for key, g in zip(keys, groups, strict=True)])
        if selected is not None:  # the cursor stays on its group, whose count may have changed
            groups_shown = [key.rpartition(ROW_KEY_SEPARATOR)[0] for key in keys]
            group = selected.rpartition(ROW_KEY_SEPARATOR)[0]
            if group in groups_shown:
                self.move_cursor(groups_shown.index(group))
        self._shown, self._widths = keys, widths
