"""Hostile alerts through every reader of the monitor: no exception, no control character on screen.

Whatever a record of `alerts` holds (nulls, wrong types, escape sequences, bidi overrides, markup brackets,
huge strings), an alert either fails to decode (counted as undecodable) or goes through the feed's cells,
the grouped view, the details screen, the filter, export and recording without an exception, and nothing
it renders holds a control character.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.segment import Segment
from rich.text import Text

from spark_app import formats
from spark_app.formats import Alert, decode_alert, safe_text
from txmon_sinks.health import SinkHealth
from txmon_sinks.outbox import OutboxItem
from txmon_sinks.store import AlertStore
from txmon_tui.monitor import report
from txmon_tui.monitor.export import FEED_FIELDS, GROUP_FIELDS, feed_records, group_records, write_export
from txmon_tui.monitor.feed import FeedFilter, FeedRow
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.recorder import Recorder
from txmon_tui.monitor.replay import Player, open_recording
from txmon_tui.monitor.tail import TailBatch
from txmon_tui.widgets import feed as feed_widget
from txmon_tui.widgets import groups as groups_widget
from txmon_tui.widgets import present
from txmon_tui.widgets.linetable import _segments
from txmon_tui.widgets.screens import details_fields, recent_cells

DECODE_ERRORS = (orjson.JSONDecodeError, KeyError, TypeError, ValueError)
# What must never reach the terminal from a record: C0/C1 controls, DEL, bidi controls, line separators.
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
NOW = 1_795_608_000.0

ESCAPES = [
    "\x1b]52;c;ZWNobyBwd25lZA==\x07",  # OSC 52: write the operator's clipboard
    "\x1b]0;owned\x07",  # OSC 0: the window title
    "\x1b[2J\x1b[H",  # clear the screen, cursor home
    "\x9b2J",  # the same as a C1 control sequence introducer
    "\x1bP+q\x1b\\",  # DCS: ask the terminal to answer
    "\r\n", "\x00", "\x08\x08\x08", "\t",
    "\u202eevil\u202c", "\u2066x\u2069", "\u2028",
    "[/x]", "[bold red]x", "[link=https://example.com]x[/link]", "[", "]", "\\[", "\\",
]
hostile_text = (
    st.text(max_size=30)
    | st.lists(st.sampled_from(ESCAPES) | st.text(max_size=5), max_size=6).map("".join)
    | st.builds(lambda c, n: c * n, st.sampled_from(["A", "é", "漢", "\x1b", "["]), st.integers(200, 5_000))
)
json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | hostile_text)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
timestamps = st.sampled_from(["2026-11-25T12:00:00.123Z", "9999-12-31T23:59:59.999Z", "2026-11-25", "",
                              "\x1b[2J2026-11-25T12:00:00.000Z"])


def field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a value of the right kind (so that most alerts decode), one time in ten anything at all."""
    return st.integers(0, 9).flatmap(lambda n: json_values if n == 0 else good)


def alert_records() -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects shaped like alerts, every field hostile or of the wrong type now and then."""
    text_or_null = hostile_text | st.none()
    record = st.fixed_dictionaries(
        {
            "tx_id": field(hostile_text),
            "account_id": field(text_or_null),
            "merchant": field(text_or_null),
            "amount": field(st.floats(-1e308, 1e308) | st.integers(-(2**63), 2**63)),
            "currency": field(text_or_null),
            "ts": field(timestamps | hostile_text),
            "level": field(st.sampled_from(formats.LEVELS)),
            "rule": field(text_or_null),
            "detected_at": field(timestamps | st.none()),
        },
        optional={"tx_ids": field(st.lists(hostile_text, max_size=3) | st.none()), "extra": json_values},
    )
    return record


def plain_segments(segments: list[Segment]) -> str:
    return "".join(segment.text for segment in segments)


def rendered(renderable: object, width: int = 100) -> str:
    """A Rich renderable as the terminal would get it (plain: our own colours are not under test)."""
    console = Console(width=width, file=io.StringIO(), color_system=None, force_terminal=False)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


def assert_safe(text: str, where: str) -> None:
    found = UNSAFE.search(text.replace("\n", ""))  # the renderer's own line breaks
    assert found is None, f"{where}: control character {found.group()!r} in {text[:200]!r}"


def through_every_reader(alerts: list[Alert], directory: Path) -> None:
    """Feed, grouped view, details, filter, export and recording, as the app drives them."""
    model = MonitorModel(now=NOW)
    model.apply(TailBatch(alerts=alerts, received_at=NOW))
    model.snapshot(NOW)
    for width in (40, 80, 200):
        widths = feed_widget.column_widths(width)
        for line in present.feed_lines(model, 40):
            assert_safe(plain_segments(_segments(feed_widget.cells(line, widths), widths)), "feed row")
        group_widths = groups_widget.column_widths(width)
        for group in model.groups(40):
            assert_safe(plain_segments(_segments(groups_widget.cells(group, group_widths), group_widths)),
                        "grouped row")
            assert_safe(groups_widget.group_key(group).replace("\x1f", ""), "group key")
    for row in model.feed():
        line = present.feed_line(row)
        assert_safe(rendered(details_fields(line, row.alert.rule, row.alert.detected_at)), "details")
        for item in map(present.feed_line, model.account_rows(row.alert.account_id)):
            cells = recent_cells(item)
            assert all(isinstance(cell, Text) for cell in cells), "a str cell is read as markup"
            assert_safe("".join(cell.plain for cell in cells), "details history")
    # The filter, with the records' own text as what the user typed, and text of the user's own.
    for alert in alerts:
        for feed_filter in (FeedFilter(account=alert.account_id[:3], merchant=alert.merchant[-3:]),
                            FeedFilter(account="[/x]\x1b", merchant="é", min_amount=0.0, level=alert.level)):
            model.set_filter(feed_filter)
            model.feed()
            model.groups()
            assert_safe(present.filter_text(feed_filter), "filter status")
    model.set_filter(None)
    # Export, both views, both formats: written and read back whole.
    for view, records, fields in (("feed", feed_records(model.feed()), FEED_FIELDS),
                                  ("groups", group_records(model.groups()), GROUP_FIELDS)):
        written = write_export(directory / f"{view}.csv", records, fields, "csv")
        with open(written, newline="", encoding="utf-8") as handle:
            assert len(list(csv.DictReader(handle))) == len(records)
        written = write_export(directory / f"{view}.json", records, fields, "json")
        assert len(orjson.loads(written.read_bytes())) == len(records)
    # Recording, then replay: the same alerts come back.
    recorder = Recorder(directory / f"rec-{time.monotonic_ns()}.jsonl", started_at=NOW)
    recorder.add(TailBatch(alerts=alerts, received_at=NOW + 1.0))
    recorder.close()
    player = Player(open_recording(recorder.path))
    replayed = [alert for step in player.steps() if step.batch for alert in step.batch.alerts]
    assert player.skipped == 0 and replayed == alerts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(st.lists(alert_records(), min_size=1, max_size=6))
def test_any_decodable_alert_goes_through_every_reader(records: list[dict[str, Any]]) -> None:
    alerts = []
    for record in records:
        try:
            alert = decode_alert(orjson.dumps(record))
        except DECODE_ERRORS:
            continue  # counted as undecodable by the tail and the replay, never fatal
        for name in Alert.__slots__:
            value = getattr(alert, name)
            if name == "amount":
                assert isinstance(value, int | float) and not isinstance(value, bool)
            elif name == "tx_ids":
                assert all(isinstance(t, str) and not UNSAFE.search(t) for t in value)
            elif name == "rules_version":
                assert value is None or (isinstance(value, int) and not isinstance(value, bool))
            else:
                assert isinstance(value, str), f"{name} decoded as {value!r}"
                assert_safe(value, name)
        alerts.append(alert)
    event("some alerts decoded" if alerts else "no alert decoded")
    with tempfile.TemporaryDirectory() as directory:
        through_every_reader(alerts, Path(directory))


@given(hostile_text | st.none())
def test_safe_text_is_printable_and_idempotent(value: str | None) -> None:
    cleaned = safe_text(value)
    assert not UNSAFE.search(cleaned)
    assert safe_text(cleaned) == cleaned


def test_safe_text_escapes_visibly_and_keeps_ordinary_text() -> None:
    assert safe_text(None) == ""
    assert safe_text("Mega Image, Cluj-Napoca [SRL]") == "Mega Image, Cluj-Napoca [SRL]"
    assert safe_text("Cafenea Ünirii 漢字 🍩") == "Cafenea Ünirii 漢字 🍩"
    assert safe_text("a\x1b]52;c;eA==\x07b") == "a\\x1b]52;c;eA==\\x07b"
    assert safe_text("x\u202ey\x9bz") == "x\\u202ey\\x9bz"


# ---- one test per way a record broke a reader before ----------------------------------------------

FLAGGED = {"tx_id": "n-1", "account_id": "RO49RZBR0000060012345678", "merchant": "Mega Image",
           "amount": 950.0, "currency": "RON", "ts": "2026-11-25T12:00:00.123Z", "level": "alert",
           "rule": "amount>900", "detected_at": "2026-11-25T12:00:00.400Z"}


def test_null_text_fields_decode_as_empty_text() -> None:
    record = {**FLAGGED, "account_id": None, "merchant": None, "currency": None, "rule": None,
              "detected_at": None}
    alert = decode_alert(orjson.dumps(record))
    assert (alert.account_id, alert.merchant, alert.currency, alert.rule, alert.detected_at) == ("",) * 5


def test_an_alert_with_null_merchant_and_account_goes_through_the_feed_and_the_filter() -> None:
    alert = decode_alert(orjson.dumps({**FLAGGED, "account_id": None, "merchant": None}))
    model = MonitorModel(now=NOW)
    model.apply(TailBatch(alerts=[alert], received_at=NOW))
    (line,) = present.feed_lines(model, 10)
    widths = feed_widget.column_widths(120)
    assert feed_widget.cells(line, widths)[3:5] == ("", "")
    model.set_filter(FeedFilter(account="RO49", merchant="mega"))
    assert model.feed() == []


def test_a_merchant_in_markup_brackets_renders_as_itself_in_the_details() -> None:
    alert = decode_alert(orjson.dumps({**FLAGGED, "merchant": "[/x] [bold]Shop"}))
    model = MonitorModel(now=NOW)
    model.apply(TailBatch(alerts=[alert], received_at=NOW))
    (row,) = model.feed()
    shown = rendered(details_fields(present.feed_line(row), alert.rule, alert.detected_at))
    assert "[/x] [bold]Shop" in shown


def test_escape_sequences_in_a_merchant_reach_the_feed_as_visible_text() -> None:
    alert = decode_alert(orjson.dumps({**FLAGGED, "merchant": "\x1b]0;owned\x07\x1b[2J", "tx_id": "\x1bx"}))
    assert alert.merchant == "\\x1b]0;owned\\x07\\x1b[2J" and alert.tx_id == "\\x1bx"


def test_the_alerts_report_prints_stored_record_text_without_control_characters(tmp_path: Path) -> None:
    # A row as an older monitor (or another writer of the database) stored it: the record's text as it came.
    store = AlertStore(f"sqlite:///{tmp_path / 'alerts.db'}")
    try:
        payload = orjson.dumps({**FLAGGED, "tx_id": "\x1b[2Jt-1", "account_id": "RO\x1b]0;title\x07",
                                "merchant": "\x1b]52;c;eA==\x07Shop", "level": "alert\u202e"})
        store.insert_new([OutboxItem(1, "a-1", payload)])
        text = report.alerts_text(store, "test")
    finally:
        store.close()
    assert_safe(text, "report")
    assert "\\x1b]52;c;eA==" in text and "\\x1b[2Jt-1" in text


def test_a_huge_field_shows_its_start_and_how_much_more_there_is() -> None:
    # Near the broker's 1 MB record limit: laid out whole, the details took ~4 s to open.
    alert = decode_alert(orjson.dumps({**FLAGGED, "merchant": "M" * 1_000_000}))
    line = present.feed_line(FeedRow(alert, 0.3, NOW))
    shown = rendered(details_fields(line, alert.rule, alert.detected_at), width=3_000)  # no wrapping
    assert "… (998,000 more characters)" in shown and shown.count("M") < 2_100
    assert len(recent_cells(line)[2].plain) <= 40


def test_a_sinks_last_error_quoting_a_server_is_shown_as_safe_text() -> None:
    # A webhook's answer or an SMTP reply is the server's text, not ours.
    health = SinkHealth("webhook", "retrying", NOW - 12, "HTTP 500: \x1b]0;owned\x07", 40, 3, 0, 1, 0, None)
    ((state, line),) = present.sink_lines([health], NOW)
    assert state == "retrying" and "\\x1b]0;owned\\x07" in line
    assert_safe(line, "sink line")
