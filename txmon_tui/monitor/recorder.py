"""Recording a monitor session to JSON lines, as it arrives.

A recording starts with a header line, then one line per record as it arrived, with its offset in seconds
from the start (`t`) and the number of the tail batch it came in (`batch`):

    {"format": "txmon-recording", "version": 1, "started_at": 1795608000.0}
    {"t": 0.412, "batch": 1, "alert": {...the alerts topic's record...}}
    {"t": 0.412, "batch": 1, "metrics": {...the metrics topic's record...}}
    {"t": 0.5, "produced": 12345}

No Textual: called from the thread that reads the tail. txmon_tui.monitor.replay plays them back.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from txmon_tui.monitor.tail import TailBatch

FORMAT = "txmon-recording"
VERSION = 1
FLUSH_SECONDS = 1.0  # buffered lines reach the file at least this often: one write a second, not one a record
FLUSH_BYTES = 4 << 20  # ...or sooner, when this much is waiting: bounds the buffer at any arrival rate


def recording_name(now: float) -> str:
    """A file name for a recording started at `now` (wall clock), sortable by time."""
    return time.strftime("txmon-%Y%m%d-%H%M%S.jsonl", time.localtime(now))


def new_recording_path(directory: Path, now: float) -> Path:
    """A recording file under `directory` that does not exist yet (`-1`, `-2`… for several in a second)."""
    path = directory / recording_name(now)
    n = 1
    while path.exists():
        path = path.with_name(f"{recording_name(now).removesuffix('.jsonl')}-{n}.jsonl")
        n += 1
    return path


class Recorder:
    """Appends records to a recording: encoded as they arrive, written on a clock (thread-safe)."""

    def __init__(self, path: Path, started_at: float, clock: Callable[[], float] = time.monotonic,
                 flush_seconds: float = FLUSH_SECONDS, flush_bytes: int = FLUSH_BYTES) -> None:
        self.path = Path(path)
        self.started_at = started_at
        self.records = 0  # records written or waiting to be
        self._clock = clock
        self._flush_seconds = flush_seconds
        self._flush_bytes = flush_bytes
        self._lock = threading.Lock()
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._batches = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # "x": a recording never replaces an earlier one (FileExistsError), whoever made that file meanwhile.
        self._file = open(self.path, "xb")  # closed by close(), on every exit of the app
        header = {"format": FORMAT, "version": VERSION, "started_at": started_at}
        self._file.write(orjson.dumps(header) + b"\n")
        self._file.flush()
        self._last_flush = clock()

    @property
    def closed(self) -> bool:
        """True once close() ran."""
        return self._file.closed

    def add(self, batch: TailBatch) -> None:
        """Record one tail batch's alerts, metrics and undecodable count, at its arrival time."""
        if not (batch.alerts or batch.metrics or batch.undecodable):
            return
        offset = max(batch.received_at - self.started_at, 0.0)
        prefix = b'{"t":%.3f,"batch":%d,' % (offset, self._next_batch())
        lines = [prefix + b'"alert":' + orjson.dumps(alert) + b"}\n" for alert in batch.alerts]
        lines += [prefix + b'"metrics":' + orjson.dumps(item) + b"}\n" for item in batch.metrics]
        if batch.undecodable:
            lines.append(prefix + b'"undecodable":%d}\n' % batch.undecodable)
        self._append(lines, len(batch.alerts) + len(batch.metrics))

    def add_produced(self, total: int | None, at: float) -> None:
        """Record a read of the produced total (end offsets of `transactions`)."""
        if total is not None:
            line = b'{"t":%.3f,"produced":%d}\n' % (max(at - self.started_at, 0.0), total)
            self._append([line], 0)

    def _next_batch(self) -> int:
        with self._lock:
            self._batches += 1
            return self._batches

    def _append(self, lines: list[bytes], records: int) -> None:
        with self._lock:
            if self._file.closed:
                return  # stopped meanwhile: a late batch from a worker is not an error
            self._buffer.extend(lines)
            self._buffered += sum(map(len, lines))
            self.records += records
            if self._buffered >= self._flush_bytes:
                self._write_locked()

    def flush_if_due(self) -> None:
        """Write what is buffered if the flush interval has passed (call it often; it is cheap)."""
        if self._clock() - self._last_flush >= self._flush_seconds:
            with self._lock:
                if not self._file.closed:
                    self._write_locked()

    def _write_locked(self) -> None:
        if self._buffer:
            self._file.write(b"".join(self._buffer))
            self._file.flush()
            self._buffer.clear()
            self._buffered = 0
        self._last_flush = self._clock()

    def close(self) -> None:
        """Write what is left and close the file (idempotent)."""
        with self._lock:
            if not self._file.closed:
                self._write_locked()
                self._file.close()
