"""Unit tests of recording and replay: the file format, buffered writes, reading back, the replay clock."""

from __future__ import annotations

import threading
from pathlib import Path

import orjson
import pytest

from producer.transaction import format_ts
from spark_app.formats import QUERY_ALERTS, Alert, BatchMetrics
from txmon_tui import cli
from txmon_tui.monitor.recorder import FORMAT, Recorder, new_recording_path
from txmon_tui.monitor.replay import (
    Player,
    RecordingError,
    ReplayControl,
    clock_text,
    open_recording,
    parse_speed,
    play,
    speed_text,
)
from txmon_tui.monitor.tail import TailBatch

T0 = 1_795_608_000.0  # 2026-11-25T12:00:00Z


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def alert(n: int, amount: float = 700.0) -> Alert:
    """A flagged transaction."""
    stamp = format_ts(int(T0 * 1000))
    level = "alert" if amount > 900 else "large"
    rule = "amount>900" if level == "alert" else "amount>500"
    return Alert(f"tx-{n}", "RO00ACCT1", "Lidl", amount, "RON", stamp, level, rule, stamp)


def metrics(batch_id: int) -> BatchMetrics:
    """One micro-batch's metrics."""
    return BatchMetrics(QUERY_ALERTS, batch_id, format_ts(int(T0 * 1000)), 100, 50.0, 80.0, 150, {"0": 100},
                        8, 2, 0)


def record_session(path: Path, clock: FakeClock | None = None) -> Recorder:
    """Three batches and two produced totals, as a live session would bring them."""
    recorder = Recorder(path, T0, clock=clock or FakeClock())
    recorder.add(TailBatch([alert(1), alert(2, 950.0)], [metrics(1)], 0, T0 + 0.5))
    recorder.add_produced(1000, T0 + 0.6)
    recorder.add(TailBatch([], [], 0, T0 + 0.7))  # an empty poll records nothing
    recorder.add(TailBatch([alert(3)], [], 2, T0 + 1.25))
    recorder.add_produced(None, T0 + 1.3)  # the broker did not answer: nothing to record
    recorder.add(TailBatch([], [metrics(2)], 0, T0 + 2.0))
    recorder.add_produced(1500, T0 + 2.1)
    return recorder


def test_a_recording_reads_back_batch_by_batch(tmp_path: Path) -> None:
    path = tmp_path / "rec" / "session.jsonl"
    recorder = record_session(path)
    recorder.close()
    assert recorder.records == 5
    recording = open_recording(path)
    assert recording.started_at == T0 and recording.duration == pytest.approx(2.1)
    steps = list(Player(recording).steps())
    assert [(s.offset, s.produced) for s in steps] == [(0.5, None), (pytest.approx(0.6), 1000), (1.25, None),
                                                        (2.0, None), (pytest.approx(2.1), 1500)]
    first, _, second, third, _ = steps
    assert first.batch is not None and first.batch.alerts == [alert(1), alert(2, 950.0)]
    assert first.batch.metrics == [metrics(1)] and first.batch.received_at == T0 + 0.5
    assert second.batch is not None and second.batch.alerts == [alert(3)] and second.batch.undecodable == 2
    assert third.batch is not None and third.batch.metrics == [metrics(2)]


def test_each_line_is_json_with_its_arrival_offset(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    record_session(path).close()
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert lines[0] == {"format": FORMAT, "version": 1, "started_at": T0}
    assert lines[1]["t"] == 0.5 and lines[1]["batch"] == 1 and lines[1]["alert"]["tx_id"] == "tx-1"
    assert lines[3]["metrics"]["batch_id"] == 1
    assert lines[4] == {"t": 0.6, "produced": 1000}


def test_writes_are_buffered_and_flushed_on_a_clock(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    clock = FakeClock()
    recorder = Recorder(path, T0, clock=clock, flush_seconds=1.0)
    header = path.stat().st_size
    recorder.add(TailBatch([alert(1)], [], 0, T0 + 0.1))
    recorder.flush_if_due()
    assert path.stat().st_size == header  # not yet due: still in memory
    clock.now += 1.0
    recorder.flush_if_due()
    assert path.stat().st_size > header
    recorder.close()
    recorder.close()  # idempotent
    recorder.add(TailBatch([alert(2)], [], 0, T0 + 0.2))  # a late batch after stopping is ignored
    assert recorder.closed and len(path.read_bytes().splitlines()) == 2


def test_a_full_buffer_is_written_before_the_clock_says_so(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    recorder = Recorder(path, T0, clock=FakeClock(), flush_bytes=1000)
    header = path.stat().st_size
    recorder.add(TailBatch([alert(i) for i in range(10)], [], 0, T0 + 0.1))
    assert path.stat().st_size > header
    recorder.close()


def test_a_cut_last_line_is_skipped_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    record_session(path).close()
    path.write_bytes(path.read_bytes() + b'{"t": 3.0, "batch": 9, "alert": {"tx_id": "tx-')
    player = Player(open_recording(path))
    assert len(list(player.steps())) == 5 and player.skipped == 1


@pytest.mark.parametrize(("content", "why"), [
    (b"", "not a txmon recording"),
    (b'{"format": "something else"}\n', "not a txmon recording"),
    (b'{"format": "txmon-recording", "version": 99, "started_at": 1}\n', "version 99"),
    (b'{"format": "txmon-recording", "version": 1}\n', "no start time"),
])
def test_what_is_not_a_recording_is_refused_in_words(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=why):
        open_recording(path)


def test_a_missing_file_is_refused_in_words(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="cannot read recording"):
        open_recording(tmp_path / "nowhere.jsonl")


def test_the_replay_clock_runs_at_its_speed_and_pauses() -> None:
    real = FakeClock()
    control = ReplayControl(T0, duration=60.0, speed=4.0, clock=real)
    real.now += 2.0
    assert control.position() == 8.0 and control.now() == T0 + 8.0
    assert control.toggle_pause() is True
    real.now += 10.0
    assert control.position() == 8.0
    control.toggle_pause()
    assert control.change_speed(-1) == 2.0
    real.now += 1.0
    assert control.position() == 10.0
    assert control.describe() == "2× · 0:10 of 1:00 · playing"


def test_speed_steps_stop_at_both_ends() -> None:
    control = ReplayControl(T0, speed=16.0)
    assert control.change_speed(1) == 64.0
    assert control.change_speed(5) is None  # max
    assert control.change_speed(-20) == 0.25
    between = ReplayControl(T0, speed=3.0)  # --speed 3: between two steps
    assert between.change_speed(1) == 4.0
    assert ReplayControl(T0, speed=3.0).change_speed(-1) == 2.0


def test_the_player_waits_until_the_session_reaches_a_step() -> None:
    real = FakeClock()
    control = ReplayControl(T0, speed=1.0, clock=real)
    halt = threading.Event()
    real.now += 5.0
    assert control.wait_for(3.0, halt)  # already due: no wait
    halt.set()
    assert not control.wait_for(30.0, halt)  # a stop request ends the wait


def test_max_speed_jumps_the_clock_to_each_step() -> None:
    control = ReplayControl(T0, speed=None)
    assert control.wait_for(12.5, threading.Event())
    assert control.position() == 12.5


def test_single_steps_while_paused() -> None:
    real = FakeClock()
    control = ReplayControl(T0, speed=1.0, clock=real)
    control.step()
    assert control.paused
    halt = threading.Event()
    assert control.wait_for(40.0, halt)  # one step is delivered at once, the clock moved to it
    assert control.position() == 40.0
    done: list[bool] = []
    waiter = threading.Thread(target=lambda: done.append(control.wait_for(50.0, halt)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()  # paused: the next step waits for the user
    control.step()
    waiter.join(5)
    assert done == [True] and control.position() == 50.0


def test_the_clock_stops_at_the_end() -> None:
    real = FakeClock()
    control = ReplayControl(T0, duration=3.0, speed=1.0, clock=real)
    real.now += 3.2
    control.finish()
    real.now += 100.0
    assert control.ended and control.position() == pytest.approx(3.2)
    assert control.describe().endswith("· ended")


def test_speed_and_clock_texts() -> None:
    assert [parse_speed(t) for t in ("1", "4", "0.5", "max", "MAX")] == [1.0, 4.0, 0.5, None, None]
    for bad in ("0", "-2", "fast", "nan", "inf"):
        with pytest.raises(ValueError):
            parse_speed(bad)
    assert [speed_text(s) for s in (1.0, 0.25, None)] == ["1×", "0.25×", "max"]
    assert [clock_text(s) for s in (0, 65.9, 3725)] == ["0:00", "1:05", "1:02:05"]


def test_play_delivers_every_step_in_order_at_max_speed(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    record_session(path).close()
    recording = open_recording(path)
    control = ReplayControl(recording.started_at, recording.duration, speed=None)
    batches: list[TailBatch] = []
    produced: list[tuple[int, float]] = []
    assert play(Player(recording), control, threading.Event(), batches.append,
                lambda total, at: produced.append((total, at)))
    assert [a.tx_id for b in batches for a in b.alerts] == ["tx-1", "tx-2", "tx-3"]
    assert [total for total, _ in produced] == [1000, 1500]
    assert produced[0][1] == pytest.approx(T0 + 0.6)
    assert control.ended and control.position() == pytest.approx(2.1)


def test_play_stops_when_told(tmp_path: Path) -> None:
    path = tmp_path / "session.jsonl"
    record_session(path).close()
    recording = open_recording(path)
    control = ReplayControl(recording.started_at, recording.duration, speed=1.0)
    control.toggle_pause()
    halt = threading.Event()
    halt.set()
    assert not play(Player(recording), control, halt, lambda batch: None, lambda total, at: None)
    assert not control.ended


def test_a_recording_never_replaces_an_earlier_file(tmp_path: Path) -> None:
    earlier = tmp_path / "session.jsonl"
    record_session(earlier).close()
    before = earlier.read_bytes()
    with pytest.raises(FileExistsError):
        Recorder(earlier, T0 + 60)
    assert earlier.read_bytes() == before


def test_recordings_started_within_one_second_get_names_of_their_own(tmp_path: Path) -> None:
    paths = []
    for _ in range(3):
        paths.append(new_recording_path(tmp_path, T0))
        Recorder(paths[-1], T0).close()
    assert len(set(paths)) == 3 and all(p.parent == tmp_path for p in paths)
    assert [p.name for p in paths][1:] == [paths[0].name.replace(".jsonl", f"-{n}.jsonl") for n in (1, 2)]


def test_record_refuses_an_existing_file_naming_the_flag(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    earlier = tmp_path / "session.jsonl"
    earlier.write_bytes(b"keep me\n")
    with pytest.raises(SystemExit):
        cli.main(["--record", str(earlier)])
    assert f"--record: {earlier} exists" in capsys.readouterr().err
    assert earlier.read_bytes() == b"keep me\n"
