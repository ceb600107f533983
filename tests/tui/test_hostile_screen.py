"""Hostile alerts on the real screen: every view of the monitor shows them as text and keeps running.

Driven with Pilot (the app's own rendering), and in a real terminal (tmux) whose raw output is captured:
escape sequences inside a record never reach the operator's terminal.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import orjson
import pytest
from textual.widgets import Static

from spark_app.formats import decode_alert
from tests.conditions import wait_until
from tests.tui.conftest import plain, until
from txmon_tui.app import MonitorApp, create_app
from txmon_tui.messages import RecordsReceived
from txmon_tui.monitor.feed import FeedFilter
from txmon_tui.monitor.recorder import FORMAT, VERSION
from txmon_tui.monitor.tail import TailBatch
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.widgets.linetable import LineTable
from txmon_tui.widgets.screens import DetailsScreen

pytestmark = pytest.mark.tui
ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_608_000.0
CLIPBOARD = "\x1b]52;c;cHduZWQ=\x07"  # OSC 52: write "pwned" to the operator's clipboard
TITLE = "\x1b]0;pwned-title\x07"  # OSC 0: set the window title
CLEAR = "\x1b[2Jpwned-clear"  # clear the screen
BIDI = "\u202egnp.exe"  # right-to-left override: shows as "exe.png"


def hostile_records(run: str) -> list[dict[str, object]]:
    """Alerts as a foreign producer could write them to the topic; the last one is the newest."""
    base = {"amount": 950.0, "currency": "RON", "ts": "2026-11-25T12:00:00.123Z", "level": "alert",
            "rule": "amount>900", "detected_at": "2026-11-25T12:00:00.400Z"}
    return [
        {**base, "tx_id": f"{run}-nulls", "account_id": None, "merchant": None, "currency": None,
         "rule": None, "detected_at": None},
        {**base, "tx_id": f"{run}-escapes", "account_id": f"RO{CLIPBOARD}1", "merchant": TITLE + CLEAR},
        {**base, "tx_id": f"{run}-bidi\x9b2J", "account_id": "RO22BBBB", "merchant": BIDI},
        {**base, "tx_id": f"{run}-markup", "account_id": "RO11[/x]", "merchant": "[/x] [bold]Shop[link=x]",
         "amount": 610.0, "level": "large", "rule": "[red]amount>500"},
    ]


def feed_text(app: MonitorApp) -> list[list[str]]:
    table = app.query_one("#feed-table", LineTable)
    return [table.row_text(i) for i in range(table.row_count)]


async def test_hostile_alerts_go_through_every_view_of_the_app(tmp_path: Path) -> None:
    app = create_app(PipelineConfig(data_dir=tmp_path), supervise=False, export_format="json")
    run = uuid.uuid4().hex[:6]
    alerts = [decode_alert(orjson.dumps(record)) for record in hostile_records(run)]
    async with app.run_test(size=(160, 40)) as pilot:
        app.post_message(RecordsReceived([TailBatch(alerts=alerts, received_at=time.time())]))
        await until(pilot, lambda: len(feed_text(app)) == 4, "four rows in the feed")
        cells = "".join("".join(row) for row in feed_text(app))
        assert "\x1b" not in cells and "\u202e" not in cells and "\\x1b]0;pwne" in cells

        await pilot.press("enter")  # the newest row: the markup merchant
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen), "the details screen")
        assert "[/x] [bold]Shop[link=x]" in details(app)
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailsScreen), "the details closed")
        app.query_one("#feed-table", LineTable).move_cursor(1)  # the bidi override
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen), "the second details screen")
        assert "\\u202egnp.exe" in details(app)
        await pilot.press("escape")

        await pilot.press("g")
        groups = app.query_one("#groups-table", LineTable)
        await until(pilot, lambda: groups.row_count == 4, "four groups")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, DetailsScreen), "details from the grouped view")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, DetailsScreen), "the details closed")
        await pilot.press("g")

        app.model.set_filter(FeedFilter(merchant="[/x]"))
        app.repaint()
        await until(pilot, lambda: len(feed_text(app)) == 1, "the filter keeping the markup merchant")
        assert "merchant~[/x]" in str(app.query_one("#feed-status").render())
        app.model.set_filter(None)
        await pilot.press("e")
        exports = tmp_path / "exports"
        await until(pilot, lambda: list(exports.glob("txmon-feed-*.json")), "the export")
        exported = orjson.loads(next(exports.glob("txmon-feed-*.json")).read_bytes())
        assert {row["merchant"] for row in exported} == {"", "\\x1b]0;pwned-title\\x07\\x1b[2Jpwned-clear",
                                                         "\\u202egnp.exe", "[/x] [bold]Shop[link=x]"}
        assert app.is_running


def details(app: MonitorApp) -> str:
    """The fields of the open details screen, as text."""
    return plain(app.screen.query_one("#details-fields", Static))


# ---- a real terminal ------------------------------------------------------------------------------


def write_recording(path: Path, records: list[dict[str, object]]) -> None:
    """A recording (the format --record writes) holding the given alert records in one batch."""
    lines = [orjson.dumps({"format": FORMAT, "version": VERSION, "started_at": T0})]
    lines += [orjson.dumps({"t": 0.5, "batch": 1, "alert": record}) for record in records]
    path.write_bytes(b"\n".join(lines) + b"\n")


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")
def test_escape_sequences_in_records_never_reach_the_terminal(tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:6]
    recording = tmp_path / "hostile.jsonl"
    records = hostile_records(run)
    write_recording(recording, [*records[:1], *records[2:], records[1]])  # the escapes newest: on top
    raw = tmp_path / "terminal.raw"
    session = f"txmon-hostile-{run}"
    # The monitor starts only once the capture is on (the shell waits for a line): every byte it writes.
    command = (f"read go; env PYTHONPATH={ROOT} {sys.executable} -m txmon_tui --data-dir {tmp_path / 'data'} "
               f"--replay {recording} --speed max; echo MONITOR-EXITED $?; sleep 60")
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", "-c", str(ROOT), "sh", "-c", command)
    try:
        tmux("pipe-pane", "-o", "-t", session, f"cat >> {raw}")
        tmux("send-keys", "-t", session, "Enter")
        screen = lambda: tmux("capture-pane", "-p", "-t", session)  # noqa: E731
        wait_until(lambda: "Replay finished" in screen(), 60, "the replay to reach its end")
        wait_until(lambda: "escapes" in screen() and "[/x] [bold]" in screen(), 10, "the hostile rows")
        tmux("send-keys", "-t", session, "Enter")
        wait_until(lambda: "pwned-clear" in screen(), 10, "the details of the escape merchant")
        tmux("send-keys", "-t", session, "Escape")  # alone: an escape and a key at once read as alt+key
        wait_until(lambda: "Flagged transaction" not in screen(), 10, "the details closed")
        tmux("send-keys", "-t", session, "g")
        wait_until(lambda: "by account and rule" in screen(), 10, "the grouped view")
        tmux("send-keys", "-t", session, "q")
        wait_until(lambda: "MONITOR-EXITED 0" in screen(), 30, "the monitor to exit cleanly")
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    written = raw.read_bytes()
    assert b"\x1b[?1049h" in written, "the capture began before the monitor took the screen"
    assert b"\x1b]52" not in written, "a clipboard write reached the terminal"
    assert b"\x1b]0;pwned" not in written, "a window title reached the terminal"
    assert b"\x1b[2Jpwned" not in written, "a screen clear from the record reached the terminal"
    assert "\u009b".encode() not in written, "a C1 control reached the terminal"
    assert "\u202e".encode() not in written, "a bidi override reached the terminal"
    assert b"\\x1b]0;pwned-title\\x07\\x1b[2Jpwned-clear" in written, "the details showed it as visible text"
