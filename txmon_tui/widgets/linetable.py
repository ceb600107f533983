"""A keyed table drawn line by line from cached strips, for rows replaced twice a second.

Textual's DataTable re-renders every visible cell through Rich after any change, measures every new row
and lays itself out again (~30 ms per refill of 40 rows here); this table builds each row's segments once
per key and draws a line with a dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

Cell = Text | str
CELL_PADDING = 1  # blank cells either side of each column, as a DataTable draws them


def _segments(cells: Sequence[Cell], widths: Sequence[int], style: Style | None = None) -> list[Segment]:
    """One line's segments: each cell cropped or padded to its column (right-justified if its Text says)."""
    pad = Segment(" " * CELL_PADDING, style)
    segments: list[Segment] = []
    for cell, width in zip(cells, widths, strict=False):
        if isinstance(cell, Text):
            own = Style.parse(cell.style) if isinstance(cell.style, str) else cell.style
            plain, cell_style = cell.plain, style + own if style else own
            right = cell.justify == "right"
        else:
            plain, cell_style, right = cell, style, False
        if right and len(plain) < width:
            plain = " " * (width - len(plain)) + plain
        segments += (pad, Segment(set_cell_size(plain, width), cell_style or None), pad)
    return segments


class LineTable(ScrollView, can_focus=True):
    """Rows keyed by an id under a fixed header, with a row cursor that follows its key across updates."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"line-table--header", "line-table--cursor"}
    DEFAULT_CSS = """
    LineTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .line-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
            & > .line-table--header {
                background-tint: $foreground 5%;
            }
        }
        & > .line-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .line-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "cursor_home", "Top", show=False),
        Binding("end", "cursor_end", "Bottom", show=False),
    ]

    class RowSelected(Message):
        """Enter, or a click on the row under the cursor."""

        def __init__(self, table: LineTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> LineTable:
            """The table the row is in (for `@on` selectors)."""
            return self.table

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id, classes=classes)
        self._labels: tuple[Cell, ...] = ()
        self._widths: tuple[int, ...] = ()
        self._keys: list[str] = []
        self._cells: list[tuple[Cell, ...]] = []
        self._strips: dict[str, Strip] = {}  # per key, at the current widths, without the cursor's style
        self.cursor_row = 0

    # ---- content ------------------------------------------------------------------------------------

    def set_columns(self, labels: Sequence[Cell], widths: Sequence[int]) -> None:
        """Set the header and the column widths (drops every cached line)."""
        self._labels, self._widths = tuple(labels), tuple(widths)
        self._strips.clear()
        self.refresh()

    def set_rows(self, rows: Sequence[tuple[str, Sequence[Cell]]]) -> None:
        """Replace the rows; the cursor stays on its key if that row is still here, else goes to the top."""
        selected = self.cursor_key
        old = self._strips
        self._keys = [key for key, _ in rows]
        self._cells = [tuple(cells) for _, cells in rows]
        self._strips = {key: old[key] for key in self._keys if key in old}  # unchanged rows keep their lines
        self.cursor_row = self._keys.index(selected) if selected is not None and selected in self._keys else 0
        width = sum(self._widths) + 2 * CELL_PADDING * len(self._widths)
        self.virtual_size = Size(width, len(self._keys) + 1)  # + the header
        self._scroll_to_cursor()
        self.refresh()

    @property
    def row_count(self) -> int:
        """How many rows the table holds."""
        return len(self._keys)

    @property
    def row_keys(self) -> list[str]:
        """The keys of the rows, top to bottom."""
        return list(self._keys)

    @property
    def cursor_key(self) -> str | None:
        """The key of the row under the cursor, if any."""
        return self._keys[self.cursor_row] if 0 <= self.cursor_row < len(self._keys) else None

    def row_text(self, index: int) -> list[str]:
        """The plain text of one row's cells (for tests and logs)."""
        return [cell.plain if isinstance(cell, Text) else cell for cell in self._cells[index]]

    # ---- drawing ------------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        """The header on the first line, then the rows from the scroll position down."""
        width = self.size.width
        base = self.rich_style
        if y == 0:
            header = self.get_component_rich_style("line-table--header")
            strip = Strip(_segments(self._labels, self._widths, header))
            return strip.apply_style(base).adjust_cell_length(width, base + header)
        index = y - 1 + self.scroll_offset.y
        if not 0 <= index < len(self._keys):
            return Strip.blank(width, base)
        key = self._keys[index]
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = Strip(_segments(self._cells[index], self._widths))
        if index == self.cursor_row:
            # Over the cells' own colours, as a DataTable's cursor is.
            cursor = self.get_component_rich_style("line-table--cursor")
            over = Strip(Segment.apply_style(strip, base, cursor), strip.cell_length)
            return over.adjust_cell_length(width, base + cursor)
        return strip.apply_style(base).adjust_cell_length(width, base)

    def _on_focus(self, _event: events.Focus) -> None:
        self.refresh()  # the cursor's style depends on focus

    def _on_blur(self, _event: events.Blur) -> None:
        self.refresh()

    # ---- cursor -------------------------------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        """Put the cursor on a row (clamped) and scroll it into view."""
        self.cursor_row = max(0, min(row, len(self._keys) - 1))
        self._scroll_to_cursor()
        self.refresh()

    def _scroll_to_cursor(self) -> None:
        visible = max(1, self.size.height - 1)  # below the header
        top = self.scroll_offset.y
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    def action_cursor_up(self) -> None:
        """One row up."""
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        """One row down."""
        self.move_cursor(self.cursor_row + 1)

    def action_page_up(self) -> None:
        """One screen up."""
        self.move_cursor(self.cursor_row - max(1, self.size.height - 1))

    def action_page_down(self) -> None:
        """One screen down."""
        self.move_cursor(self.cursor_row + max(1, self.size.height - 1))

    def action_cursor_home(self) -> None:
        """The first row."""
        self.move_cursor(0)

    def action_cursor_end(self) -> None:
        """The last row."""
        self.move_cursor(len(self._keys) - 1)

    def action_select_cursor(self) -> None:
        """Say which row was chosen."""
        key = self.cursor_key
        if key is not None:
            self.post_message(self.RowSelected(self, key))

    def _on_click(self, event: events.Click) -> None:
        # As a DataTable does: a click moves the cursor, a click on the cursor's row selects it.
        index = event.y - 1 + self.scroll_offset.y
        if event.y < 1 or not 0 <= index < len(self._keys):
            return
        if index == self.cursor_row:
            self.action_select_cursor()
        else:
            self.move_cursor(index)
