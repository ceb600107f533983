"""One log line per change of state (steps, processes, warnings, sinks): what a service's journal shows.

Nothing is said twice: each call returns only what changed since the previous one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from txmon_sinks.health import OK, SinkHealth
from txmon_tui.supervise.children import ProcessView, ProcState, describe_exit
from txmon_tui.supervise.steps import Step, describe_steps


def warning_key(warning: str) -> str:
    """A warning without its changing numbers (`for 12 s`, rates), so it counts as one state."""
    return re.sub(r"\d[\d,.]*", "#", warning.split(" for ")[0])


def _process_line(view: ProcessView) -> str:
    line = f"{view.name} {view.state.value}"
    if view.state is ProcState.RUNNING and view.pid is not None:
        line += f" (pid {view.pid})"
    elif view.state in (ProcState.FAILED, ProcState.STOPPED) and view.exit_code is not None:
        line += f" ({describe_exit(view.exit_code)})"
    if view.state is ProcState.FAILED and view.last_error:
        line += f": {view.last_error}"
    return line


class StateLog:
    """Remembers the last state seen of each thing and words the changes."""

    def __init__(self) -> None:
        self._steps: tuple[str, ...] | None = None
        self._processes: dict[str, ProcState] = {}
        self._warnings: dict[str, str] = {}  # key -> the wording first seen
        self._sinks: dict[str, str] = {}

    def steps(self, steps: Sequence[Step]) -> list[str]:
        """The startup line, when some step changed state."""
        states = tuple(step.state.value for step in steps)
        if states == self._steps:
            return []
        self._steps = states
        return [describe_steps(list(steps))]

    def processes(self, views: Sequence[ProcessView]) -> list[str]:
        """`spark running (pid 42)`, `producer failed (code 1): …` for each process that changed."""
        lines = []
        for view in views:
            previous = self._processes.get(view.name)
            self._processes[view.name] = view.state
            not_started_yet = previous is None and view.state is ProcState.STOPPED and view.exit_code is None
            if view.state is not previous and not not_started_yet:
                lines.append(_process_line(view))
        return lines

    def warnings(self, warnings: Sequence[str]) -> list[str]:
        """`warning: …` for each new warning, `cleared: …` for each that is gone."""
        current = {warning_key(w): w for w in warnings}
        lines = [f"warning: {text}" for key, text in current.items() if key not in self._warnings]
        lines += [f"cleared: {text.split(' for ')[0]}" for key, text in self._warnings.items()
                  if key not in current]
        self._warnings = {key: self._warnings.get(key, text) for key, text in current.items()}
        return lines

    def sinks(self, healths: Sequence[SinkHealth], now: float | None = None) -> list[str]:
        """`sink database down for 31s (…) · sent …` for each sink whose state changed."""
        lines = []
        for health in healths:
            previous = self._sinks.get(health.name)
            self._sinks[health.name] = health.state
            if health.state != previous and not (previous is None and health.state == OK):
                lines.append(f"sink {health.describe(now)}")
        return lines
