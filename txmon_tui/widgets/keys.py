"""Which of the monitor's keys apply now, and every key with its description for the help and the palette.

A base class of MonitorApp, as OperatorApp is: the bindings are declared once, in app.py (BINDINGS); this
reads them, so the footer, the help screen and the command palette never disagree with them.
"""

from __future__ import annotations

from collections.abc import Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from txmon_tui.monitor.replay import Replay
from txmon_tui.supervise.pipeline import Pipeline
from txmon_tui.widgets.screens import HelpScreen

# Keys that act on the live pipeline: a replay has none (the replay's own keys act only during one).
LIVE_ONLY_ACTIONS = {"toggle_producer", "change_rate", "toggle_spark", "logs", "toggle_recording", "inject",
                     "rules", "acknowledge", "silence", "note", "undo"}
# Keys that write to the cluster or stop something in it: shown disabled while the monitor is read-only.
WRITE_ACTIONS = {"toggle_producer", "change_rate", "toggle_spark", "inject"}
READ_ONLY_NOTE = "disabled: read-only"


class KeysApp(App[int]):
    """The base of MonitorApp that decides and describes its keys (see the module docstring)."""

    # Provided by MonitorApp.
    pipeline: Pipeline | None
    replay: Replay | None
    rules_text: str
    _quit_asked: bool

    @property
    def read_only(self) -> bool:
        """True while the monitor may not write to the cluster (attached without children, --read-only)."""
        return self.pipeline is not None and self.pipeline.config.read_only

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Replay keys only in a replay; keys that act on the live pipeline only outside one; keys that
        write shown disabled (None) while read-only; y only while a quit waits for it."""
        if action.startswith("replay_"):
            return self.replay is not None
        if action == "confirm_quit":
            return self._quit_asked
        if action in WRITE_ACTIONS and self.read_only:
            return None
        return not (self.replay is not None and action in LIVE_ONLY_ACTIONS)

    def action_help(self) -> None:
        """Show every key, read from the bindings."""
        self.push_screen(HelpScreen(list(self.key_help()), [self.rules_text] if self.rules_text else []))

    def key_help(self) -> Iterable[tuple[str, str]]:
        """(keys, description) for every binding of the app, in declaration order."""
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            keys = ", ".join(self.get_key_display(Binding(key, "")) for key in binding.key.split(","))
            text = binding.tooltip or binding.description
            if self.read_only and binding.action.partition("(")[0] in WRITE_ACTIONS:
                text += f" ({READ_ONLY_NOTE})"
            yield keys, text

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The palette offers every action of the app's bindings, besides Textual's own commands."""
        yield from super().get_system_commands(screen)
        seen: set[str] = set()
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            if binding.action in seen or binding.action in ("quit", "interrupt"):
                continue
            if not self.check_action(binding.action.partition("(")[0], ()):
                continue  # e.g. the replay's keys outside a replay
            seen.add(binding.action)
            action = binding.action
            yield SystemCommand(binding.description, binding.tooltip or binding.description,
                                lambda action=action: self.run_action(action))
