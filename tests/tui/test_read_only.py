"""Read-only monitoring and quitting: keys that write are refused and shown disabled; q asks once."""

from __future__ import annotations

import dataclasses
import io
from functools import partial

import pytest
from rich.console import Console
from textual.widgets import Static
from textual.widgets._footer import FooterKey

from tests.tui.conftest import Records, plain, tailing, until
from tests.tui.test_process_keys import running_pid
from txmon_tui.app import MonitorApp, create_app
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.widgets.keys import READ_ONLY_NOTE, WRITE_ACTIONS
from txmon_tui.widgets.screens import HelpScreen

pytestmark = pytest.mark.tui
WRITE_KEYS = ("p", "s", "plus", "minus", "b", "t")


@pytest.fixture
def read_only(config: PipelineConfig, records: Records) -> MonitorApp:
    """The monitor attached read-only to the test broker (whose topics exist, as on a cluster whose job
    runs), as `txmon-tui -b HOST:PORT` builds it."""
    return create_app(dataclasses.replace(config, read_only=True), confirm_quit=True)


def footer_keys(app: MonitorApp) -> dict[str, FooterKey]:
    """The footer's keys by action name."""
    return {key.action: key for key in app.query(FooterKey)}


def help_text(app: MonitorApp) -> str:
    """The help screen's table as plain text."""
    console = Console(width=200, file=io.StringIO(), color_system=None)
    with console.capture() as capture:
        console.print(app.screen.query_one("#help-table", Static).content)
    return capture.get()


async def test_title_bar_says_attached_and_read_only(read_only: MonitorApp, config: PipelineConfig) -> None:
    async with read_only.run_test(size=(120, 40)) as pilot:
        await tailing(pilot, read_only)
        status = read_only.query_one("#status", Static)
        await until(pilot, lambda: f"attached to {config.bootstrap} · read-only" in plain(status),
                    "the title bar to say attached · read-only")


async def test_write_keys_are_refused(read_only: MonitorApp) -> None:
    async with read_only.run_test(size=(120, 40)) as pilot:
        await tailing(pilot, read_only)
        assert read_only.pipeline is not None
        rate = read_only.pipeline.config.rate
        for key in WRITE_KEYS:
            await pilot.press(key)
        await pilot.pause(0.5)
        assert read_only.pipeline.processes == []  # neither p nor s started anything
        assert read_only.pipeline.config.rate == rate  # + and - changed nothing
        notes = [n.message for n in read_only._notifications]
        assert not any("Producer" in note or "Spark" in note for note in notes), notes


async def test_footer_shows_the_write_keys_disabled(read_only: MonitorApp, config: PipelineConfig) -> None:
    async with read_only.run_test(size=(160, 40)) as pilot:
        await pilot.pause(0.2)
        keys = footer_keys(read_only)
        assert keys["toggle_producer"].has_class("-disabled") and keys["toggle_spark"].has_class("-disabled")
        assert not keys["quit"].has_class("-disabled") and not keys["filter"].has_class("-disabled")
    writable = create_app(config)  # the same monitor when it may write: nothing disabled
    async with writable.run_test(size=(160, 40)) as pilot:
        await pilot.pause(0.2)
        assert not footer_keys(writable)["toggle_producer"].has_class("-disabled")


async def test_help_lists_the_write_keys_as_disabled(read_only: MonitorApp) -> None:
    async with read_only.run_test(size=(120, 48)) as pilot:
        await pilot.press("h")
        await until(pilot, lambda: isinstance(read_only.screen, HelpScreen), "the help screen")
        lines = help_text(read_only).splitlines()
        disabled = {line.split()[0] for line in lines if READ_ONLY_NOTE in line}
        assert disabled == {"p", "s", "+", "-", "b", "t"}, lines
        assert {binding.action.partition("(")[0] for binding in read_only.BINDINGS
                if binding.key in ("p", "s", "plus", "minus", "b", "t")} == WRITE_ACTIONS


async def test_quit_while_children_run_asks_once(config: PipelineConfig) -> None:
    app = create_app(dataclasses.replace(config, run_producer=True, rate=20.0), confirm_quit=True)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.pipeline is not None
        await until(pilot, partial(running_pid, app.pipeline, "producer"), "the producer running", 60)
        await pilot.press("q")
        await until(pilot, lambda: any("q again or y" in n.message for n in app._notifications),
                    "the question whether to quit")
        assert app.is_running and running_pid(app.pipeline, "producer")  # asked, nothing stopped
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, "the monitor to quit on y", timeout=60)
    assert running_pid(app.pipeline, "producer") is None


async def test_q_twice_quits(config: PipelineConfig) -> None:
    app = create_app(dataclasses.replace(config, run_producer=True, rate=20.0), confirm_quit=True)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.pipeline is not None
        await until(pilot, partial(running_pid, app.pipeline, "producer"), "the producer running", 60)
        await pilot.press("q")
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the monitor to quit on the second q", timeout=60)


async def test_yes_quits_at_once(config: PipelineConfig) -> None:
    app = create_app(dataclasses.replace(config, run_producer=True, rate=20.0), confirm_quit=False)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.pipeline is not None
        await until(pilot, partial(running_pid, app.pipeline, "producer"), "the producer running", 60)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, "the monitor to quit on one q (--yes)", timeout=60)


async def test_ctrl_c_quits_without_asking(config: PipelineConfig) -> None:
    app = create_app(dataclasses.replace(config, run_producer=True, rate=20.0), confirm_quit=True)
    async with app.run_test(size=(120, 40)) as pilot:
        assert app.pipeline is not None
        await until(pilot, partial(running_pid, app.pipeline, "producer"), "the producer running", 60)
        await pilot.press("ctrl+c")
        await until(pilot, lambda: not app.is_running, "the monitor to quit on Ctrl+C", timeout=60)
