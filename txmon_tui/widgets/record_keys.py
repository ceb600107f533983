"""Keeping what the monitor saw: r records the session to a file, e exports the feed as shown, and the
replay's keys (k . < >) pace a recording played back.

A base class of MonitorApp, as OperatorApp is: the bindings are declared in app.py, the actions and their
file workers live here (the session's recorder writes on the tail's thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App

from txmon_tui.messages import ExportWritten, ProducedCounted, RecordsReceived, ReplayFinished
from txmon_tui.monitor.export import (
    EXPORT_DIR_NAME,
    FEED_FIELDS,
    GROUP_FIELDS,
    export_path,
    feed_records,
    group_records,
    write_export,
)
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.recorder import new_recording_path
from txmon_tui.monitor.replay import Player, Replay, play, speed_text
from txmon_tui.monitor.session import MonitorSession

RECORDINGS_DIR_NAME = "recordings"  # under the data dir, for recordings started with r
EXPORT_LIMIT = 100_000  # rows per export: more than the model keeps (its feed and groups are bounded)


class RecordKeys(App[int]):
    """The base of MonitorApp that records, exports and replays (see the module docstring)."""

    # Provided by MonitorApp.
    session: MonitorSession
    model: MonitorModel
    grouped: bool
    data_dir: Path
    export_format: str
    replay: Replay | None
    _halt: threading.Event
    repaint: Callable[[], None]

    def action_toggle_recording(self) -> None:
        """Start recording to a new file under the data dir, or stop and say where it went."""
        if self.session.recorder is not None:
            path = self.session.stop_recording()
            self.notify(f"Recording saved to {path}", title="Recording", timeout=10, markup=False)
        else:
            self._start_recording(new_recording_path(self.data_dir / RECORDINGS_DIR_NAME, time.time()))
        self.repaint()

    def _start_recording(self, path: Path) -> None:
        try:
            self.session.start_recording(path)
        except OSError as exc:
            self.notify(f"Cannot record to {path}: {exc.strerror or exc}", severity="error", timeout=15,
                        markup=False)
            return
        self.notify(f"Recording to {path}", title="Recording", timeout=5, markup=False)

    def action_export(self) -> None:
        """Export the feed as shown (filtered, frozen while paused; grouped in the grouped view)."""
        if self.grouped:
            self._write_export("groups", group_records(self.model.groups(EXPORT_LIMIT)), GROUP_FIELDS)
        else:
            self._write_export("feed", feed_records(self.model.feed(EXPORT_LIMIT)), FEED_FIELDS)

    @work(thread=True, group="export", exit_on_error=False)
    def _write_export(self, view: str, records: list[dict[str, object]], fields: tuple[str, ...]) -> None:
        """Write an export file and say where."""
        path = export_path(self.data_dir / EXPORT_DIR_NAME, view, self.export_format, time.time())
        write_export(path, records, fields, self.export_format)
        self.post_message(ExportWritten(str(path), len(records)))

    def on_export_written(self, message: ExportWritten) -> None:
        """Say where the export went."""
        self.notify(f"Exported {message.rows:,} rows to {message.path}", title="Export", timeout=10,
                    markup=False)

    def action_replay_pause(self) -> None:
        """Pause or resume the replay."""
        if self.replay is not None:
            self.replay.control.toggle_pause()
            self.repaint()

    def action_replay_step(self) -> None:
        """Pause the replay and deliver one more batch."""
        if self.replay is not None:
            self.replay.control.step()
            self.repaint()

    def action_replay_speed(self, steps: int) -> None:
        """Replay faster (positive steps) or slower."""
        if self.replay is not None:
            speed = self.replay.control.change_speed(steps)
            self.notify(f"Replay speed {speed_text(speed)}", timeout=2)
            self.repaint()

    @work(thread=True, exclusive=True, group="replay", exit_on_error=False)
    def _replay(self, replay: Replay) -> None:
        """Deliver a recorded session's records on its own clock, as the tail and offsets workers would."""
        player = Player(replay.recording)
        if play(player, replay.control, self._halt, lambda batch: self.post_message(RecordsReceived([batch])),
                lambda total, at: self.post_message(ProducedCounted(total, at))):
            self.post_message(ReplayFinished(player.skipped))

    def on_replay_finished(self, message: ReplayFinished) -> None:
        """Say that the recording was shown to its end."""
        skipped = f" ({message.skipped:,} damaged lines skipped)" if message.skipped else ""
        self.notify(f"Replay finished{skipped}", severity="warning" if message.skipped else "information")
        self.repaint()
