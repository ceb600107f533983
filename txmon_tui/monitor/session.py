"""One monitoring session: the tail, the model, the produced count, recording and the hand-off to delivery.

The app, the headless mode and the benchmark's tail all drive a MonitorSession, so that what reaches the
model, the recording and the senders is the same whichever runs it. No Textual.

Two sides, each used from one thread: the tail (`open_tail`, `poll`, `close_tail`) and the offsets
(`open_offsets`, `count_produced`, `close_offsets`). Headless and the benchmark use both and the model
from one loop; the app reads in two workers and applies to `model` on its event loop, where the screen
reads it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from txmon_core.topics import TopicNames
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.recorder import Recorder
from txmon_tui.monitor.tail import Tail, TailBatch
from txmon_tui.readers import OffsetWatcher

if TYPE_CHECKING:
    from txmon_sinks.outlets import Outlets


class MonitorSession:
    """Reads `alerts`, `metrics` and the end offsets of `transactions` for one model, and passes them on."""

    def __init__(self, model: MonitorModel, *, names: TopicNames | None = None, since_ms: int | None = None,
                 outlets: Outlets | None = None) -> None:
        self.model = model
        self.names = names or TopicNames()
        self.since_ms = since_ms  # backfill the alerts from this time (Unix ms; 0 = the beginning)
        # Alert delivery and the metrics endpoint (txmon_sinks), or None; set before open_tail().
        self.outlets = outlets
        self.recorder: Recorder | None = None
        self._tail: Tail | None = None
        self._watcher: OffsetWatcher | None = None

    # --- the tail side ----------------------------------------------------------------------------

    def open_tail(self, client_config: Mapping[str, str]) -> None:
        """Start reading: from the ends, a backfill's start, or where delivery last stopped (blocking)."""
        outlets = self.outlets
        self._tail = Tail(client_config, names=self.names, since_ms=self.since_ms,
                          resume=outlets.resume_positions() if outlets is not None else None)

    @property
    def tailing(self) -> bool:
        """True once the tail is open."""
        return self._tail is not None

    def poll(self, timeout: float) -> TailBatch:
        """The next batch (empty after `timeout`), already handed to delivery and to the recording.

        Delivery only queues (it waits only when far behind); the recording writes at most once a second.
        """
        if self._tail is None:
            raise RuntimeError("the tail is not open (call open_tail first)")
        batch = self._tail.poll(timeout)
        recorder = self.recorder
        if batch:
            if (outlets := self.outlets) is not None:
                outlets.take(batch)
            if recorder is not None:
                recorder.add(batch)
        if recorder is not None:
            recorder.flush_if_due()  # on the tail's thread, off any event loop
        return batch

    def close_tail(self) -> None:
        """Close the tail's consumer (idempotent)."""
        tail, self._tail = self._tail, None
        if tail is not None:
            tail.close()

    # --- the offsets side -------------------------------------------------------------------------

    def open_offsets(self, client_config: Mapping[str, str]) -> None:
        """Open the client that reads topic end offsets and the broker count."""
        self._watcher = OffsetWatcher(client_config)

    def count_produced(self, clock: Callable[[], float] = time.time) -> tuple[int | None, float]:
        """The end-offset total of `transactions` (None: the broker did not answer) and when it was read;
        recorded too."""
        total = self._watcher.end_offset_total(self.names.transactions) if self._watcher is not None else None
        at = clock()
        if (recorder := self.recorder) is not None:
            recorder.add_produced(total, at)
        return total, at

    def broker_count(self) -> int | None:
        """How many brokers the cluster's metadata lists now (None: no answer, or not open)."""
        return self._watcher.broker_count() if self._watcher is not None else None

    def close_offsets(self) -> None:
        """Close the offsets client (idempotent)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.close()

    # --- recording --------------------------------------------------------------------------------

    def start_recording(self, path: Path) -> Recorder:
        """Record from now on to a new file at `path`; OSError if it cannot be created."""
        # The tail stamps batches with the wall clock: offsets in the recording are counted from it.
        self.recorder = Recorder(path, started_at=time.time())
        return self.recorder

    def stop_recording(self) -> Path | None:
        """Write what is left and close the recording; its path, or None when none was running."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        recorder.close()  # writes at most the last second's lines
        return recorder.path

    def close(self) -> None:
        """Stop recording and close both clients (for a caller that used every side from one thread)."""
        self.stop_recording()
        self.close_tail()
        self.close_offsets()
