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
    note: str = ""  # e.g. "restart 3 in 8 s" after the process failed


@dataclass(frozen=True, slots=True)
class StepLine:
    """One startup step as the startup view shows it."""

    name: str
    state: str
    elapsed: float | None


def fit(text: str, width: int, right: bool = False) -> str:
    """`text` in exactly `width` cells: padded (on the left if `right`), or cut with an ellipsis."""
    if len(text) > width:
        return text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


class Panel(Static):
    """A bordered text panel that repaints only when its content changed."""

    TITLE = ""
    # A panel sized by the layout (not by its content) repaints without a layout pass of the whole screen.
    SIZED_BY_CONTENT = False

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
        self.update(self.shown, layout=self.SIZED_BY_CONTENT)

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

        def build() -> Text:
            # Padded lines, not a rich Table: the same cells, drawn at a fraction of a Table's cost.
            lines = [Text.assemble(f"{fit(g.label, 15)} {fit(g.value, 11, right=True)} ",
                                   (fmt.sparkline(g.history, width), "cyan")) for g in gauges]
            return Text("\n", no_wrap=True, overflow="crop").join(lines)

        self._paint(key, build)


# Alert sinks' states (txmon_sinks.health), coloured like process states; the word reads without colour.
SINK_STYLES = {"ok": "green", "retrying": "yellow", "down": "bold red"}


class HealthPanel(Panel):
    """Detection latency, the funnel from produced to Parquet, and plain-language warnings."""

    TITLE = "Pipeline health"

    def show(self, latency: tuple[float | None, float | None], funnel: Sequence[tuple[str, int | None]],
             warnings: Sequence[str], sinks: Sequence[tuple[str, str]] = (),
             silences: Sequence[str] = (),
             split: Sequence[tuple[float | None, float | None]] = ()) -> None:
        """Repaint latency (and its stages: to Spark's batch, batch to here), funnel, the alert sinks'
        (state, line), warnings and the active silences."""
        key = (latency, tuple(funnel), tuple(warnings), tuple(sinks), tuple(silences), tuple(split))

        def build() -> Group:
            p50, p99 = latency
            head = Text.assemble(("latency ", "bold"), f"p50 {fmt.seconds(p50)}  p99 {fmt.seconds(p99)}")
            if split:
                (wait50, wait99), (rest50, rest99) = split
                head.append(f"\n to batch {fmt.seconds(wait50)}/{fmt.seconds(wait99)}"
                            f" · batch→here {fmt.seconds(rest50)}/{fmt.seconds(rest99)}", style="dim")
            counts = [fmt.count(value) for _, value in funnel]
            stage_width = max((len(stage) for stage, _ in funnel), default=0)
            count_width = max(map(len, counts), default=0)
            stages = Text("\n", no_wrap=True, overflow="ellipsis").join(
                Text(f"{stage:<{stage_width}} {count:>{count_width}}")
                for (stage, _), count in zip(funnel, counts, strict=True))
            if warnings:
                notes = Text("\n").join(Text(f"! {w}", style="bold yellow") for w in warnings)
            else:
                notes = Text("✓ no warnings", style="green")
            parts = [head, stages]
            if sinks:
                parts.append(Text("\n", no_wrap=True, overflow="ellipsis").join(
                    Text.assemble("sink ", (line, SINK_STYLES.get(state, ""))) for state, line in sinks))
            parts.append(notes)
            if silences:  # plain Text: targets and reasons come from Kafka; wrapped, as reasons run long
                parts.append(Text("\n").join(
                    Text.assemble(("silenced ", "bold"), (line, "dim")) for line in silences))
            return Group(*parts)

        self._paint(key, build)


class ProcessesPanel(Panel):
    """Broker, producer and Spark job: state, pid, uptime and their last lines of output."""

    TITLE = "Processes"
    LAST_LINES = 2

    def show(self, processes: Sequence[ProcessLine]) -> None:
        """Repaint the process list."""
        key = tuple((p.name, p.state, p.note, p.pid, fmt.uptime(p.uptime),
                     tuple(p.last_lines[-self.LAST_LINES:])) for p in processes)

        def build() -> Group:
            parts: list[Text] = []
            for proc in processes:
                pid = f"pid {proc.pid}" if proc.pid else ""
                up = f"up {fmt.uptime(proc.uptime)}" if proc.uptime is not None else ""
                note = (f" · {proc.note}", "yellow") if proc.note else ""
                # One line whatever the pid's width: a wrapped uptime would push the output lines down.
                parts.append(Text.assemble((f"{proc.name:<9}", "bold"), fmt.state_text(proc.state), note,
                                           f"  {pid} {up}".rstrip(), no_wrap=True, overflow="ellipsis"))
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
    SIZED_BY_CONTENT = True  # its height follows the steps

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
