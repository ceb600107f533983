"""The pipeline's startup steps (broker, topics, spark session, producer, first batch) and their clocks.

No Textual, no I/O: the pipeline moves each step along, the screen and the headless log read them.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass


class StepFailed(RuntimeError):
    """A startup step could not be completed; the message says why in plain words."""


class StepState(enum.Enum):
    """Where one startup step is."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Step:
    """One startup step with its elapsed seconds (live while running)."""

    name: str
    state: StepState
    elapsed: float | None
    detail: str = ""


class StepClock:
    """A mutable step: state, start and end times, detail."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = StepState.PENDING
        self.started: float | None = None
        self.ended: float | None = None
        self.detail = ""

    def begin(self) -> None:
        self.state, self.started = StepState.RUNNING, time.monotonic()

    def finish(self, state: StepState, detail: str = "") -> None:
        self.state, self.ended, self.detail = state, time.monotonic(), detail

    def view(self) -> Step:
        if self.started is None:
            return Step(self.name, self.state, None, self.detail)
        end = self.ended if self.ended is not None else time.monotonic()
        return Step(self.name, self.state, end - self.started, self.detail)


def describe_steps(steps: list[Step]) -> str:
    """One line such as `broker 3.1 s ✓, topics 0.2 s ✓, spark session 5 s…` (for logs and headless)."""
    marks = {StepState.DONE: "done", StepState.FAILED: "FAILED", StepState.SKIPPED: "skipped",
             StepState.RUNNING: "…", StepState.PENDING: "pending"}
    parts = []
    for step in steps:
        elapsed = f" {step.elapsed:.1f} s" if step.elapsed is not None else ""
        parts.append(f"{step.name}{elapsed} {marks[step.state]}")
    return ", ".join(parts)

