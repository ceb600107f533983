"""Quitting the monitor: q asks first while it runs children (q again or y), Ctrl+C, SIGTERM and SIGINT
stop them without asking, SIGHUP (the ssh connection dropped) stops them without touching the terminal.

A base class of MonitorApp, as OperatorApp is: the bindings are declared in app.py, the actions live here.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from textual import work
from textual.app import App

from txmon_tui.messages import PipelineStopped
from txmon_tui.supervise.pipeline import Pipeline

STOP_WAIT_SECONDS = 120.0  # longer than the pipeline's graceful-then-forced stop of all three children


class QuitKeys(App[int]):
    """The base of MonitorApp that stops its children and exits (see the module docstring)."""

    # Provided by MonitorApp.
    pipeline: Pipeline | None
    confirm_quit: bool
    _halt: threading.Event
    _children_stopped: threading.Event
    repaint: Callable[[], None]
    _stopping = False  # q, y, Ctrl+C or a signal started the stop
    _quit_asked = False  # q asked to confirm: y quits

    def _listen_for_signals(self) -> None:
        """SIGTERM and SIGINT quit as a confirmed q does; SIGHUP stops the children and exits at once."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal)
        # Not through the event loop: once the terminal is gone, Textual's writes block the loop.
        signal.signal(signal.SIGHUP, self._on_hangup)

    def _runs_children(self) -> bool:
        """Whether quitting would stop something: the embedded broker, a Spark job or a producer."""
        return self.pipeline is not None and any(
            view.pid is not None for view in self.pipeline.processes)

    async def action_quit(self) -> None:
        """Quit: at once when nothing runs; else ask once (q again or y), then stop the children."""
        if self._stopping:
            return
        if self.confirm_quit and not self._quit_asked and self._runs_children():
            self._quit_asked = True
            self.refresh_bindings()
            self.notify("Quitting stops the processes this monitor started. Press q again or y to quit.",
                        title="Quit?", timeout=10)
            return
        await self._quit()

    async def action_interrupt(self) -> None:
        """Ctrl+C: quit without asking."""
        await self._quit()

    async def action_confirm_quit(self) -> None:
        """y, once quitting was asked for."""
        if self._quit_asked:
            await self._quit()

    async def _quit(self) -> None:
        """Stop the children (gracefully, then forcibly), then exit."""
        if self._stopping:
            return
        self._stopping = True
        self._halt.set()
        if self.pipeline is None:
            self.exit(0)
            return
        self.repaint()
        self._stop_pipeline()

    def _on_signal(self) -> None:
        """SIGTERM or SIGINT: leave as a confirmed q does (a signal is not asked twice)."""
        self.call_later(self._quit)

    def _on_hangup(self, signum: int, _frame: FrameType | None) -> None:
        """SIGHUP (the ssh connection dropped): stop the children, then exit without touching the terminal.

        There is no terminal left to restore, and Textual's writes to it would block its event loop
        forever, so this runs in a plain thread and ends the process itself.
        """
        threading.Thread(target=self._stop_and_exit, args=(128 + signum,), name="txmon-hangup").start()

    def _stop_and_exit(self, code: int) -> None:
        self._halt.set()
        if self._stopping:
            self._children_stopped.wait(STOP_WAIT_SECONDS)  # q was pressed just before: let it finish
        elif self.pipeline is not None:
            self.pipeline.stop()
        os._exit(code)

    @work(thread=True, exclusive=True, group="stop", exit_on_error=False)
    def _stop_pipeline(self) -> None:
        """Stop producer, Spark job and broker, gracefully then forcibly."""
        errors: list[str] = []
        if self.pipeline is not None:
            try:
                self.pipeline.stop()
            except OSError as exc:  # a child we cannot signal any more; the CLI retries on exit
                errors.append(str(exc))
        self._children_stopped.set()
        self.post_message(PipelineStopped(errors))

    def on_pipeline_stopped(self, message: PipelineStopped) -> None:
        """Exit once the children are gone."""
        self.exit(1 if message.errors else 0, message="\n".join(message.errors) or None)
