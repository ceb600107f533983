"""The text panels: throughput, pipeline health, processes and the startup steps."""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from txmon_tui.widgets import formatting as fmt


@dataclass(frozen=True, slots=True)
class Gauge:
    """One line of the throughput panel: a label, its current value and its recent history."""

    label: str
    value: str
    history: Sequence[float] = ()


@dataclass(frozen=True, slots=True)
class ProcessLine:
    """One child process as the panel shows it."""

    name: str
    state: str
    pid: int | None
    uptime: float | None
    last_lines: Sequence[str]


@dataclass(frozen=True, slots=True)
class StepLine:
    """One startup step as the startup view shows it."""

    name: str
    state: str
    elapsed: float | None


class Panel(Static):
    """A bordered text panel that repaints only when its content changed."""

    TITLE = ""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:  # noqa: A002
        super().__init__("", id=id, classes=classes)
        self._last: object = None
        self.shown: RenderableType = ""

    def on_mount(self) -> None:
        """Name the panel."""
        self.border_title = self.TITLE

    def _paint(self, key: object, build: Callable[[], RenderableType]) -> None:
        if key == self._last:
            return
        self._last = key
        self.shown = build()
        self.update(self.shown)

    def text(self) -> str:
        """What the panel shows, as plain text (for tests and logs)."""
        console = Console(width=max(self.content_size.width, 40), file=io.StringIO(), color_system=None)
        with console.capture() as capture:
            console.print(self.shown)
        return capture.get()


class ThroughputPanel(Panel):
    """Rates and totals, each with a sparkline of the last minutes."""

    TITLE = "Throughput"

    def show(self, gauges: Sequence[Gauge]) -> None:
        """Repaint the gauges."""
        width = max(0, self.content_size.width - 15 - 11 - 2)
        key = (width, tuple((g.label, g.value, tuple(g.history[-width:]) if width else ()) for g in gauges))

        def build() -> Table:
            table = Table.grid(padding=(0, 1))
            table.add_column(width=15, no_wrap=True)
            table.add_column(width=11, justify="right", no_wrap=True)
            table.add_column(no_wrap=True, style="cyan")
            for gauge in gauges:
                table.add_row(gauge.label, gauge.value, fmt.sparkline(gauge.history, width))
            return table

        self._paint(key, build)


class HealthPanel(Panel):
    """Detection latency, the funnel from produced to Parquet, and plain-language warnings."""

    TITLE = "Pipeline health"

    def show(self, latency: tuple[float | None, float | None], funnel: Sequence[tuple[str, int | None]],
             warnings: Sequence[str]) -> None:
        """Repaint latency, funnel and warnings."""
        key = (latency, tuple(funnel), tuple(warnings))

        def build() -> Group:
            p50, p99 = latency
            head = Text.assemble(("latency ", "bold"), f"p50 {fmt.seconds(p50)}  p99 {fmt.seconds(p99)}")
            table = Table.grid(padding=(0, 1))
            table.add_column(no_wrap=True)
            table.add_column(justify="right", no_wrap=True)
            for stage, value in funnel:
                table.add_row(stage, fmt.count(value))
            if warnings:
                notes = Text("\n").join(Text(f"! {w}", style="bold yellow") for w in warnings)
            else:
                notes = Text("✓ no warnings", style="green")
            return Group(head, table, notes)

        self._paint(key, build)


class ProcessesPanel(Panel):
    """Broker, producer and Spark job: state, pid, uptime and their last lines of output."""

    TITLE = "Processes"
    LAST_LINES = 2

    def show(self, processes: Sequence[ProcessLine]) -> None:
        """Repaint the process list."""
        key = tuple((p.name, p.state, p.pid, fmt.uptime(p.uptime), tuple(p.last_lines[-self.LAST_LINES:]))
                    for p in processes)

        def build() -> Group:
            parts: list[Text] = []
            for proc in processes:
                pid = f"pid {proc.pid}" if proc.pid else ""
                up = f"up {fmt.uptime(proc.uptime)}" if proc.uptime is not None else ""
                parts.append(Text.assemble((f"{proc.name:<9}", "bold"), fmt.state_text(proc.state),
                                           f"  {pid}  {up}".rstrip()))
                for line in proc.last_lines[-self.LAST_LINES:]:
                    parts.append(Text(f"  {line}", style="dim", no_wrap=True, overflow="ellipsis"))
            if not parts:
                parts.append(Text("no child processes", style="dim"))
            parts.append(Text("l: full logs", style="dim italic"))
            return Group(*parts)

        self._paint(key, build)


class StartupView(Panel):
    """The steps of starting the pipeline with elapsed seconds, so nobody stares at a blank screen."""

    TITLE = "Starting"

    def show(self, steps: Sequence[StepLine]) -> None:
        """Repaint the steps."""
        key = tuple((s.name, s.state, None if s.elapsed is None else round(s.elapsed)) for s in steps)

        def build() -> Table:
            table = Table.grid(padding=(0, 2))
            table.add_column(no_wrap=True)
            table.add_column(no_wrap=True)
            table.add_column(justify="right", no_wrap=True)
            for step in steps:
                elapsed = "" if step.elapsed is None else f"{step.elapsed:.0f} s"
                table.add_row(step.name, fmt.state_text(step.state), elapsed)
            return table

        self._paint(key, build)
