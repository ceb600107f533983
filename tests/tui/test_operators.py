"""The operators' keys with Pilot on the real broker: a, S, n, u and z shared with another monitor
(a TriageService, as a second monitor runs it), and R changing the rules."""

from __future__ import annotations

import dataclasses
import time
import uuid
from functools import partial

import pytest
from textual.widgets import Input, Label, Select

from tests.support.processes import running_pid
from tests.support.records import Records, make_alert
from tests.support.screen import producer_lines, tailing
from tests.support.waiting import until
from txmon_core import rules_log
from txmon_core.broker import EmbeddedBroker
from txmon_core.triage import SCOPE_ACCOUNT, is_silenced
from txmon_core.triage_service import TriageService
from txmon_tui.app import MonitorApp, create_app
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.widgets import HealthPanel, HelpScreen
from txmon_tui.widgets.feed import ROW_KEY_SEPARATOR, FeedTable
from txmon_tui.widgets.operator_screens import NoteScreen, RulesScreen, SilenceScreen

pytestmark = pytest.mark.tui
WIDE = (140, 44)
SHARED = 2.0  # seconds within which another monitor must see an action


def run_id() -> str:
    return uuid.uuid4().hex[:8]


def rows(app: MonitorApp) -> list[tuple[str, str]]:
    """(tx id, marks) of the feed's rows, top to bottom."""
    found = []
    for key in app.query_one("#feed-table", FeedTable).row_keys:
        tx_id, _, mark = key.partition(ROW_KEY_SEPARATOR)
        found.append((tx_id, mark))
    return found


def feed_status(app: MonitorApp) -> str:
    return str(app.query_one("#feed-status").render())


async def connected(pilot: object, app: MonitorApp) -> None:
    await tailing(pilot, app)  # type: ignore[arg-type]
    await until(pilot, lambda: app.triage is not None and app.triage.wait_caught_up(0)  # type: ignore[arg-type]
                and app.rules_watcher is not None, "triage and rules to be followed")


async def test_ack_silence_note_and_undo_are_shared_with_another_monitor(
        app: MonitorApp, records: Records, broker: EmbeddedBroker) -> None:
    run = run_id()
    loud, quiet = f"RO49LOUD{run}", f"RO49QUIET{run}"
    first, second, third = (f"op{run}-{i}" for i in range(3))
    with TriageService({"bootstrap.servers": broker.bootstrap}, "bob") as bob:
        assert bob.wait_caught_up(20)
        async with app.run_test(size=WIDE) as pilot:
            await connected(pilot, app)
            records.alerts([make_alert(first, 950.0, loud), make_alert(second, 960.0, quiet),
                            make_alert(third, 970.0, loud)])
            await until(pilot, lambda: [r[0] for r in rows(app)] == [third, second, first], "three rows")
            app.query_one("#feed-table", FeedTable).focus()
            await pilot.press("home", "a")  # the newest row
            alert = make_alert(third, 970.0, loud)
            started = time.monotonic()
            await until(pilot, lambda: bob.state().is_acked(alert), "bob to see the acknowledgement",
                        timeout=SHARED + 5)
            assert time.monotonic() - started < SHARED + 1.0  # the write itself is part of it
            await until(pilot, lambda: rows(app)[0] == (third, "✓"), "the feed to mark the row acknowledged")

            bob.silence(SCOPE_ACCOUNT, quiet, 600, "known merchant outage")
            started = time.monotonic()
            await until(pilot, lambda: second not in [r[0] for r in rows(app)],
                        "the silenced account's row hidden", timeout=SHARED + 3)
            assert time.monotonic() - started < SHARED
            assert "1 silenced (hidden, z toggles)" in feed_status(app)
            await until(pilot, lambda: f"account {quiet}" in app.query_one(HealthPanel).text(),
                        "the Health panel to list the silence")
            assert "left · bob: known merchant outage" in app.query_one(HealthPanel).text()
            await pilot.press("z")
            await until(pilot, lambda: (second, "◌") in rows(app), "the silenced row shown dimmed")

            await pilot.press("n")
            assert isinstance(app.screen, NoteScreen)
            await pilot.press(*"called the customer", "enter")
            await until(pilot, lambda: bob.state().notes_about(third, loud), "bob to see the note")
            assert bob.state().notes_about(third, loud)[0].text == "called the customer"

            await pilot.press("u")  # undoes the note
            await until(pilot, lambda: not bob.state().notes_about(third, loud), "the note undone for bob")
            await pilot.press("u")  # undoes the acknowledgement
            await until(pilot, lambda: not bob.state().is_acked(alert), "the ack undone for bob")
            await until(pilot, lambda: rows(app)[0] == (third, ""), "the mark gone from the feed")


async def test_the_silence_form_checks_its_fields_and_silences_the_account(
        app: MonitorApp, records: Records, broker: EmbeddedBroker) -> None:
    run = run_id()
    account, tx_id = f"RO49SIL{run}", f"sil{run}"
    with TriageService({"bootstrap.servers": broker.bootstrap}, "bob") as bob:
        assert bob.wait_caught_up(20)
        async with app.run_test(size=WIDE) as pilot:
            await connected(pilot, app)
            records.alerts([make_alert(tx_id, 950.0, account)])
            await until(pilot, lambda: rows(app) and rows(app)[0][0] == tx_id, "the row")
            app.query_one("#feed-table", FeedTable).focus()
            await pilot.press("S")
            assert isinstance(app.screen, SilenceScreen)
            await pilot.press("enter")  # no reason yet
            error = app.screen.query_one("#silence-error", Label)
            assert str(error.render()) == "reason: say why the silence is needed"
            app.screen.query_one("#silence-duration", Select).value = "custom"
            app.screen.query_one("#silence-custom", Input).value = "soon"
            app.screen.query_one("#silence-reason", Input).value = "chargeback storm"
            await pilot.press("enter")
            assert str(error.render()).startswith("duration: expected minutes")
            app.screen.query_one("#silence-custom", Input).value = "20m"
            await pilot.press("enter")
            silenced = make_alert(tx_id, 950.0, account)
            await until(pilot, lambda: is_silenced(silenced, bob.state(), time.time()),
                        "bob to see the silence", timeout=SHARED + 5)
            silence = bob.state().active_silences(time.time())
            mine = [s for s in silence if s.target == account][0]
            assert mine.reason == "chargeback storm"
            assert 19 * 60 < (mine.ends() or 0) - time.time() <= 20 * 60


async def test_a_monitor_started_later_sees_the_current_triage(
        config: PipelineConfig, records: Records, broker: EmbeddedBroker) -> None:
    run = run_id()
    account, tx_id = f"RO49LATE{run}", f"late{run}"
    with TriageService({"bootstrap.servers": broker.bootstrap}, "bob") as bob:
        assert bob.wait_caught_up(20)
        bob.acknowledge(make_alert(tx_id, 950.0, account))
    app = create_app(config)
    async with app.run_test(size=WIDE) as pilot:
        await connected(pilot, app)
        records.alerts([make_alert(tx_id, 950.0, account)])
        await until(pilot, lambda: (tx_id, "✓") in rows(app), "the earlier acknowledgement marked")


async def test_r_changes_the_rules_the_histogram_and_help_follow(
        app: MonitorApp, broker: EmbeddedBroker) -> None:
    client = {"bootstrap.servers": broker.bootstrap}
    async with app.run_test(size=WIDE) as pilot:
        await connected(pilot, app)
        await until(pilot, lambda: app.rules_in_force() is not None, "a version of the rules")
        before = app.rules_in_force()
        assert before is not None
        await pilot.press("R")
        assert isinstance(app.screen, RulesScreen)
        changes = app.screen.query_one("#rules-changes", Input)
        error = app.screen.query_one("#rules-error", Label)
        changes.value = f"alert_threshold={before.rules.large_threshold - 1:g}"
        await pilot.press("enter")
        assert str(error.render()).startswith("alert_threshold: must be above large_threshold")
        changes.value = "velocity_count=many"
        await pilot.press("enter")
        assert str(error.render()) == "velocity_count: must be a whole number >= 1, got 'many'"
        new_alert = before.rules.alert_threshold - 50
        changes.value = f"alert_threshold={new_alert:g}"
        await pilot.press("enter")
        assert str(error.render()) == "reason: say why the rules change"
        app.screen.query_one("#rules-reason", Input).value = "catch more"
        await pilot.press("enter")
        assert not isinstance(app.screen, RulesScreen)
        await until(pilot, lambda: app.thresholds[1] == new_alert, "the histogram's threshold line to move",
                    timeout=10)
        latest = rules_log.latest(client)
        assert latest is not None and latest.version == before.version + 1
        assert (latest.author, latest.reason) == (app.triage_settings.operator, "catch more")
        await pilot.press("h")
        assert isinstance(app.screen, HelpScreen)
        assert f"rules version {latest.version}" in app.rules_text
        assert f"alert > {new_alert:g}" in app.rules_text


async def test_r_refuses_editing_in_a_read_only_monitor(config: PipelineConfig) -> None:
    app = create_app(dataclasses.replace(config, read_only=True))  # attached, as `--read-only` makes it
    async with app.run_test(size=WIDE) as pilot:
        await connected(pilot, app)
        await pilot.press("R")
        assert isinstance(app.screen, RulesScreen)
        assert not app.screen.query("#rules-changes")
        refusal = str(app.screen.query_one("#rules-refused", Label).render())
        assert refusal.startswith("read-only monitor: rules are not edited here")


async def test_b_and_t_inject_for_the_rules_in_force(config: PipelineConfig, broker: EmbeddedBroker) -> None:
    client = {"bootstrap.servers": broker.bootstrap}
    app = create_app(dataclasses.replace(config, run_producer=True, rate=5.0))
    async with app.run_test(size=WIDE) as pilot:
        await connected(pilot, app)
        before = await until(pilot, app.rules_in_force, "a version of the rules")
        # The producer was started with the default thresholds (large 500, small 1): a newer version
        # must reach what `t` and `b` inject, or the rules in force would not flag them.
        rules_log.publish(client, {"large_threshold": 800, "small_amount": 5}, "tester", "injections follow")
        try:
            await until(pilot, lambda: app.thresholds[0] == 800, "the new version in force", timeout=10)
            assert app.pipeline is not None
            await until(pilot, partial(running_pid, app.pipeline, "producer"), "the producer running", 60)
            for _ in range(5):
                await pilot.press("t")
            replies = await until(pilot, lambda: len(r := producer_lines(app, "cardtest ")) == 5 and r,
                                  "five card tests answered")
            for reply in replies:
                words = dict(word.split("=", 1) for word in reply.split()[1:])
                assert float(words["large"]) > 800 and float(words["small"]) < 5, reply
        finally:
            rules_log.publish(client, before.rules, "tester", "back as before")

