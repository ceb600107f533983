"""What the monitor shows, read back inside Pilot: plain text, the feed's rows, its tailing state,
what its children printed."""

from __future__ import annotations

import io

from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from tests.support.waiting import until
from txmon_tui.app import MonitorApp
from txmon_tui.widgets.linetable import LineTable


def plain(widget: Static) -> str:
    """What a Static shows, as plain text."""
    console = Console(width=200, file=io.StringIO(), color_system=None)
    with console.capture() as capture:
        console.print(widget.content)
    return capture.get()


async def tailing(pilot: Pilot[object], app: MonitorApp) -> None:
    """Wait until the monitor reads from the end of its topics (records written after this are seen)."""
    await until(pilot, lambda: app.tailing, "the monitor to tail alerts and metrics")


def feed_ids(app: MonitorApp) -> list[str]:
    """The tx ids of the feed's rows, top to bottom."""
    return app.query_one("#feed-table", LineTable).row_keys


def producer_lines(app: MonitorApp, start: str) -> list[str]:
    """The lines of the monitor's producer output (its last few) that start with `start`."""
    view = app.pipeline.process("producer") if app.pipeline is not None else None
    return [line for line in view.last_lines if line.startswith(start)] if view is not None else []
