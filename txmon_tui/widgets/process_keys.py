"""The keys that act on the supervised processes (p, + and -, s, b and t, l) and the worker that polls them.

A base class of MonitorApp, as OperatorApp is: the bindings are declared in app.py, the actions live here;
the pipeline does the work off the event loop (its launcher thread), these only ask and say what happens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from textual import work
from textual.app import App

from producer.control import command_for
from txmon_core.rules_log import RulesVersion
from txmon_tui.messages import LogLoaded, ProcessesPolled
from txmon_tui.supervise.children import ProcessView
from txmon_tui.supervise.pipeline import Pipeline
from txmon_tui.widgets.screens import LogScreen

POLL_SECONDS = 0.5  # child states and startup steps


class ProcessKeys(App[int]):
    """The base of MonitorApp that drives the pipeline's processes (see the module docstring)."""

    # Provided by MonitorApp and OperatorApp.
    pipeline: Pipeline | None
    clock: Callable[[], float]
    _halt: threading.Event
    repaint: Callable[[], None]
    _views: list[ProcessView]  # the supervised processes as last polled
    rules_in_force: Callable[[], RulesVersion | None]

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll_processes(self, pipeline: Pipeline) -> None:
        """Refresh the children's states (escalating stops, restarting failed ones) and post their views.

        In a thread: a poll may reap a child's process group, and the views read the broker's log file.
        """
        while not self._halt.is_set():
            pipeline.poll()
            self.post_message(ProcessesPolled(pipeline.processes, self.clock()))
            self._halt.wait(POLL_SECONDS)

    def action_toggle_producer(self) -> None:
        """Stop or start the producer process (restarts a failed one)."""
        if self.pipeline is not None:
            starting = self.pipeline.toggle_producer()
            self.notify("Producer starting" if starting else "Producer stopping", timeout=3)
            self.repaint()

    def action_change_rate(self, factor: float) -> None:
        """Multiply the producer's rate (a running producer restarts with it)."""
        if self.pipeline is not None:
            rate = max(1.0, round(self.pipeline.config.rate * factor))
            self.pipeline.set_rate(rate)
            self.notify(f"Producer rate {rate:g} tx/s", timeout=3)

    def action_inject(self, command: str) -> None:
        """Ask the running producer to inject a pattern the account rules (the version in force) look for."""
        version = self.rules_in_force()
        line = command if version is None else command_for(command, version.rules).line()
        if self.pipeline is not None and self.pipeline.inject(line):
            self.notify(f"Producer: {command} injected (its reply is in the Processes panel)", timeout=4)
        else:
            self.notify("No producer running to inject into", severity="warning", timeout=3)

    def action_toggle_spark(self) -> None:
        """Stop or start the Spark job (restarts a failed one)."""
        if self.pipeline is not None:
            starting = self.pipeline.toggle_spark()
            self.notify("Spark job starting" if starting else "Spark job stopping", timeout=3)
            self.repaint()

    def action_logs(self) -> None:
        """Open the full log view of the child processes."""
        names = [view.name for view in self._views]
        if not names:
            self.notify("No child processes", timeout=2)
            return
        self.push_screen(LogScreen(names, names[0]))

    def load_log(self, name: str) -> None:
        """Read a child's log off the main thread (the log view asks for it)."""
        self._read_log(name)

    @work(thread=True, group="logs", exit_on_error=False)
    def _read_log(self, name: str) -> None:
        """Read the end of one child's log file."""
        text = self.pipeline.read_log(name) if self.pipeline is not None else f"(no log for {name})"
        self.post_message(LogLoaded(name, text))

    def on_log_loaded(self, message: LogLoaded) -> None:
        """Hand a log that was read to the log view, if it is still open."""
        if isinstance(self.screen, LogScreen):
            self.screen.show_log(message.name, message.text)
