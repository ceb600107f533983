"""Playing a recorded monitor session back on a clock of its own (format: txmon_tui.monitor.recorder).

No Textual: the app's replay worker calls `play` from its thread.
"""

from __future__ import annotations

import bisect
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from spark_app.formats import decode_alert, decode_metrics
from txmon_tui.monitor.recorder import FORMAT, VERSION
from txmon_tui.monitor.tail import TailBatch

# Replay speeds `<` and `>` step through; None plays as fast as possible.
SPEEDS: tuple[float | None, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0, None)
WAIT_SLICE = 0.25  # the player re-checks its controls (and whether to stop) at least this often
_TAIL_BYTES = 64 << 10  # read from the end of a recording to find its duration


class RecordingError(Exception):
    """A recording that cannot be read: the message says why in plain words."""


@dataclass(frozen=True)
class ReplayStep:
    """What to deliver at `offset` seconds into the session: one tail batch, or one produced total."""

    offset: float
    batch: TailBatch | None = None
    produced: int | None = None


@dataclass(frozen=True)
class Recording:
    """A recording's header and length, read without loading it."""

    path: Path
    started_at: float
    duration: float  # offset of its last complete line


def open_recording(path: Path) -> Recording:
    """Check that `path` is a recording and read its start time and duration; RecordingError if not."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            first = handle.readline()
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(size - _TAIL_BYTES, 0))
            tail = handle.read().splitlines()
    except OSError as exc:
        raise RecordingError(f"cannot read recording {path}: {exc.strerror or exc}") from None
    try:
        header = orjson.loads(first)
    except orjson.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise RecordingError(f"{path} is not a txmon recording (no {FORMAT!r} header)")
    if header.get("version") != VERSION:
        raise RecordingError(f"{path}: recording version {header.get('version')!r} is not {VERSION}")
    started = header.get("started_at")
    if isinstance(started, bool) or not isinstance(started, int | float):
        raise RecordingError(f"{path}: the header has no start time")
    duration = 0.0
    for raw in reversed(tail):
        offset = _offset(raw)
        if offset is not None:
            duration = offset
            break
    return Recording(path, float(started), duration)


def _offset(raw: bytes) -> float | None:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    value = line.get("t") if isinstance(line, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class _Pending:
    """The batch being assembled while reading lines of the same `batch` number."""

    number: int
    offset: float
    batch: TailBatch = field(default_factory=TailBatch)


class Player:
    """Reads a recording's steps in order, lazily; lines that do not decode are skipped and counted."""

    def __init__(self, recording: Recording) -> None:
        self.recording = recording
        self.skipped = 0

    def steps(self) -> Iterator[ReplayStep]:
        """Every batch (lines of one `batch` number, in one TailBatch) and produced total, in order."""
        started = self.recording.started_at
        pending: _Pending | None = None
        with open(self.recording.path, "rb") as handle:
            handle.readline()  # the header, checked by open_recording
            for raw in handle:
                try:
                    line = orjson.loads(raw)
                    offset = float(line["t"])
                    number = line.get("batch")
                    if number is None:
                        produced = int(line["produced"])
                        if pending is not None:  # a batch's lines are contiguous: this one is complete
                            yield ReplayStep(pending.offset, pending.batch)
                            pending = None
                        yield ReplayStep(offset, produced=produced)
                        continue
                    if pending is None or pending.number != number:
                        if pending is not None:
                            yield ReplayStep(pending.offset, pending.batch)
                        pending = _Pending(int(number), offset, TailBatch(received_at=started + offset))
                    # Through the formats' own decoders, which check every field as the tail does.
                    if "alert" in line:
                        pending.batch.alerts.append(decode_alert(orjson.dumps(line["alert"])))
                    elif "metrics" in line:
                        pending.batch.metrics.append(decode_metrics(orjson.dumps(line["metrics"])))
                    else:
                        pending.batch.undecodable += int(line["undecodable"])
                except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
                    self.skipped += 1  # a cut last line (the recorder was killed mid-write) or a damaged one
        if pending is not None:
            yield ReplayStep(pending.offset, pending.batch)


class ReplayControl:
    """The session clock of a replay: speed, pause and single steps, shared by the UI and the player thread.

    Session time runs at `speed` times real time while playing; `None` speed delivers every step at once,
    the clock jumping to each step's offset. The app reads `now()` as its wall clock, so rates, latency
    windows and the live histogram behave as they did when the session was recorded.
    """

    def __init__(self, started_at: float, duration: float = 0.0, speed: float | None = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 or None (as fast as possible), got {speed}")
        self.started_at = started_at
        self.duration = duration
        self._clock = clock
        self._cond = threading.Condition()
        self._speed = speed
        self._paused = False
        self._ended = False
        self._steps = 0
        self._anchor_real = clock()
        self._anchor_session = 0.0

    # --- reading (any thread) ---------------------------------------------------------------------

    @property
    def speed(self) -> float | None:
        """Session seconds per real second (None: as fast as possible)."""
        return self._speed

    @property
    def paused(self) -> bool:
        """True while playback waits for the user."""
        return self._paused

    @property
    def ended(self) -> bool:
        """True once every step was delivered."""
        return self._ended

    def position(self) -> float:
        """Seconds into the recorded session."""
        with self._cond:
            return self._position_locked()

    def now(self) -> float:
        """The recorded session's wall clock (epoch seconds): the app's clock during a replay."""
        return self.started_at + self.position()

    def describe(self) -> str:
        """Speed, position and state in a few words, for the status line."""
        with self._cond:
            position = self._position_locked()
            speed, paused, ended = self._speed, self._paused, self._ended
        state = "ended" if ended else "paused" if paused else "playing"
        return f"{speed_text(speed)} · {clock_text(position)} of {clock_text(self.duration)} · {state}"

    def _position_locked(self) -> float:
        if self._paused or self._ended or self._speed is None:
            return self._anchor_session
        return self._anchor_session + (self._clock() - self._anchor_real) * self._speed

    def _anchor(self, session: float) -> None:
        self._anchor_real, self._anchor_session = self._clock(), session

    # --- controls (the UI) ------------------------------------------------------------------------

    def toggle_pause(self) -> bool:
        """Pause or resume playback; return True when now paused."""
        with self._cond:
            self._anchor(self._position_locked())
            self._paused = not self._paused
            self._cond.notify_all()
            return self._paused

    def change_speed(self, steps: int) -> float | None:
        """Move `steps` along SPEEDS (positive: faster); return the new speed."""
        with self._cond:
            ranks = [math.inf if s is None else s for s in SPEEDS]
            current = math.inf if self._speed is None else self._speed
            if current in ranks:
                index = ranks.index(current)
            else:  # a --speed between two steps: the next step up or down from it
                index = bisect.bisect_left(ranks, current) - (1 if steps > 0 else 0)
            new = SPEEDS[max(0, min(len(SPEEDS) - 1, index + steps))]
            self._anchor(self._position_locked())
            self._speed = new
            self._cond.notify_all()
            return new

    def step(self) -> None:
        """Pause, and deliver exactly one more step."""
        with self._cond:
            if not self._paused:
                self._anchor(self._position_locked())
                self._paused = True
            self._steps += 1
            self._cond.notify_all()

    # --- the player thread ------------------------------------------------------------------------

    def wait_for(self, offset: float, halt: threading.Event) -> bool:
        """Block until the session reaches `offset` or one step is asked for; False once `halt` is set."""
        with self._cond:
            while not halt.is_set():
                if self._steps > 0:
                    self._steps -= 1
                    self._anchor(max(offset, self._anchor_session))
                    return True
                if not self._paused:
                    if self._speed is None:
                        self._anchor(max(offset, self._anchor_session))
                        return True
                    position = self._position_locked()
                    if position >= offset:
                        return True
                    self._cond.wait(min((offset - position) / self._speed, WAIT_SLICE))
                else:
                    self._cond.wait(WAIT_SLICE)
            return False

    def finish(self) -> None:
        """Every step was delivered: the clock stops at the end of the session."""
        with self._cond:
            self._anchor(max(self._position_locked(), self.duration) if not self._paused
                         else self._anchor_session)
            self._ended = True
            self._steps = 0
            self._cond.notify_all()


def speed_text(speed: float | None) -> str:
    """A speed as the status line and --speed spell it: 1×, 0.25×, max."""
    return "max" if speed is None else f"{speed:g}×"


def clock_text(seconds: float) -> str:
    """Session seconds as m:ss (or h:mm:ss)."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def parse_speed(text: str) -> float | None:
    """`--speed`: a positive number or `max` (None); ValueError otherwise."""
    if text.strip().lower() == "max":
        return None
    value = float(text)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"speed must be a positive number or 'max', got {text!r}")
    return value


def play(player: Player, control: ReplayControl, halt: threading.Event,
         on_batch: Callable[[TailBatch], None], on_produced: Callable[[int, float], None]) -> bool:
    """Deliver each step when the session clock reaches it (blocking); True once it reached the end."""
    for step in player.steps():
        if not control.wait_for(step.offset, halt):
            return False
        if step.batch is not None:
            on_batch(step.batch)
        elif step.produced is not None:
            on_produced(step.produced, control.started_at + step.offset)
    control.finish()
    return True


@dataclass(frozen=True)
class Replay:
    """A recording being shown, with the clock that paces it."""

    recording: Recording
    control: ReplayControl

    def describe(self) -> str:
        """The replay in a few words, for the status line."""
        return f"replay {self.recording.path.name} · {self.control.describe()}"


def open_replay(path: Path, speed: float | None = 1.0) -> Replay:
    """A replay of the recording at `path` at `speed` (None: at once); RecordingError if unreadable."""
    recording = open_recording(path)
    return Replay(recording, ReplayControl(recording.started_at, recording.duration, speed))
