"""The operators' forms: silence an account or a rule, add a note, and the rules screen (R).

Each form checks what was typed (one line naming the field when it is wrong) and returns plain values;
the app writes them to Kafka in a worker. Text read from Kafka (authors, reasons) is shown as Text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static

from txmon_core import rules_log
from txmon_core.rules_log import RulesError, RulesVersion
from txmon_core.triage import DURATIONS, SCOPE_ACCOUNT, SCOPE_RULE, TriageError, clean, silence_seconds
from txmon_tui.widgets.screens import CLOSE

CUSTOM = "custom"


@dataclass(frozen=True, slots=True)
class SilenceRequest:
    """What the silence form returns."""

    scope: str
    target: str
    seconds: float
    reason: str


@dataclass(frozen=True, slots=True)
class RulesChange:
    """What the rules editor returns: typed changes (already checked against the version shown)."""

    changes: dict[str, object]
    reason: str
    base_version: int


class SilenceScreen(ModalScreen[SilenceRequest | None]):
    """Silence the selected alert's account or rule for 15 m, 1 h, 4 h or a custom time, with a reason."""

    BINDINGS = [CLOSE]

    def __init__(self, account_id: str, rule: str) -> None:
        super().__init__()
        self._targets = {SCOPE_ACCOUNT: account_id, SCOPE_RULE: rule}

    def compose(self) -> ComposeResult:
        """The form."""
        with Vertical(id="silence-box", classes="operator-box") as box:
            box.border_title = "Silence"
            box.border_subtitle = "enter silence · esc cancel"
            yield Label("What")
            yield Select([(f"{scope} {target}", scope) for scope, target in self._targets.items() if target],
                         value=SCOPE_ACCOUNT, allow_blank=False, id="silence-scope")
            yield Label("For how long")
            yield Select([(label, label) for label in DURATIONS] + [("custom", CUSTOM)], value="1 h",
                         allow_blank=False, id="silence-duration")
            yield Input(placeholder="custom: minutes, or e.g. 30m, 2h", id="silence-custom")
            yield Label("Why (kept in the audit trail)")
            yield Input(id="silence-reason")
            yield Label("", id="silence-error", classes="operator-error")
            with Horizontal(classes="operator-buttons"):
                yield Button("Silence", variant="warning", id="silence-apply")
                yield Button("Cancel", id="silence-cancel")

    def on_mount(self) -> None:
        """Start in the reason field: the scope and duration have sensible defaults."""
        self.query_one("#silence-reason", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#silence-apply")
    def apply(self) -> None:
        """Close with the silence, or say which field is wrong."""
        error = self.query_one("#silence-error", Label)
        duration = self.query_one("#silence-duration", Select).value
        try:
            if duration == CUSTOM:
                seconds = silence_seconds(self.query_one("#silence-custom", Input).value)
            else:
                seconds = DURATIONS[str(duration)]
        except TriageError as exc:
            error.update(str(exc))
            return
        reason = clean(self.query_one("#silence-reason", Input).value)
        if not reason:
            error.update("reason: say why the silence is needed")
            return
        scope = str(self.query_one("#silence-scope", Select).value)
        self.dismiss(SilenceRequest(scope, self._targets[scope], seconds, reason))

    @on(Button.Pressed, "#silence-cancel")
    def cancel(self) -> None:
        """Close without silencing."""
        self.dismiss(None)


class NoteScreen(ModalScreen[str | None]):
    """A note about the selected alert, shared with every monitor."""

    BINDINGS = [CLOSE]

    def __init__(self, about: str) -> None:
        super().__init__()
        self._about = about

    def compose(self) -> ComposeResult:
        """The form."""
        with Vertical(id="note-box", classes="operator-box") as box:
            box.border_title = "Note"
            box.border_subtitle = "enter add · esc cancel"
            yield Label(Text(f"About {self._about}"))
            yield Input(id="note-text")
            yield Label("", id="note-error", classes="operator-error")

    @on(Input.Submitted)
    def apply(self) -> None:
        """Close with the note, or say that it is empty."""
        text = clean(self.query_one("#note-text", Input).value)
        if not text:
            self.query_one("#note-error", Label).update("note: must not be empty")
            return
        self.dismiss(text)


class RulesScreen(ModalScreen[RulesChange | None]):
    """The rules in force, their history (who, when, old → new, why) and an editor that checks first."""

    BINDINGS = [CLOSE]

    def __init__(self, current: RulesVersion | None, history: Sequence[RulesVersion], can_edit: bool,
                 refusal: str = "") -> None:
        super().__init__()
        self._current = current
        self._history = list(history)
        self._can_edit = can_edit and current is not None
        self._refusal = refusal or ("no rules version yet: editing waits for the first one"
                                    if current is None else "")

    def compose(self) -> ComposeResult:
        """Values, history, editor."""
        with VerticalScroll(id="rules-box") as box:  # scrolls on a small terminal (80x24)
            box.border_title = "Rules"
            box.border_subtitle = "enter publish · esc close" if self._can_edit else "esc close"
            yield Static(self._values(), id="rules-current")
            yield Label("History", classes="rules-heading")
            with VerticalScroll(id="rules-history"):
                yield Static(Text("\n".join(rules_log.history_lines(self._history)) or "(none yet)"))
            if self._can_edit:
                yield Label("Change (key=value …, e.g. alert_threshold=800)")
                yield Input(id="rules-changes")
                yield Label("Why (kept in the history)")
                yield Input(id="rules-reason")
                yield Label("", id="rules-error", classes="operator-error")
            else:
                yield Label(Text(self._refusal), id="rules-refused", classes="operator-error")

    def _values(self) -> Table | Text:
        current = self._current
        if current is None:
            return Text("no rules version on txmon.rules yet", style="dim")
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        table.add_row("version", Text(f"{current.version} by {current.author} at {current.at}"))
        table.add_row("why", Text(current.reason))
        for key, value in current.rules.values().items():
            table.add_row(key, rules_log.show_value(value))
        return table

    def on_mount(self) -> None:
        """Start in the editor."""
        if self._can_edit:
            self.query_one("#rules-changes", Input).focus()

    @on(Input.Submitted)
    def apply(self) -> None:
        """Check the change against the version shown; close with it, or say what is wrong in one line."""
        if not self._can_edit or self._current is None:
            return
        error = self.query_one("#rules-error", Label)
        words = self.query_one("#rules-changes", Input).value.split()
        try:
            changes = rules_log.parse_assignments(words)
            rules = self._current.rules.with_changes(changes)
        except RulesError as exc:
            error.update(str(exc))
            return
        if rules == self._current.rules:
            error.update(f"nothing changes: version {self._current.version} already says so")
            return
        reason = clean(self.query_one("#rules-reason", Input).value)
        if not reason:
            error.update("reason: say why the rules change")
            self.query_one("#rules-reason", Input).focus()
            return
        self.dismiss(RulesChange(changes, reason, self._current.version))
