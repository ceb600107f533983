"""The operators' keys of the monitor: R rules, a acknowledge, S silence, n note, u undo, z silenced rows.

The base class of MonitorApp, so that the app keeps one line per key: the bindings are declared in app.py
(BINDINGS, read by the footer and help), the actions and their Kafka workers live here. The services
(txmon_core.rules_log.RulesWatcher, txmon_core.triage_service.TriageService) start once the topics exist
and stop when the app ends; every Kafka write runs in a thread worker and reports back with notify().
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from textual import work
from textual.app import App

from spark_app.formats import Alert
from txmon_core import rules_log
from txmon_core.rules_log import Rules, RulesError, RulesWatcher
from txmon_core.topics import KafkaAccessError
from txmon_core.triage import TriageError, TriageRecord, TriageSettings, TriageState
from txmon_core.triage_service import TriageService, silence_test
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.widgets.feed import AlertFeed
from txmon_tui.widgets.groups import GroupTable
from txmon_tui.widgets.operator_screens import (
    NoteScreen,
    RulesChange,
    RulesScreen,
    SilenceRequest,
    SilenceScreen,
)

if TYPE_CHECKING:
    from txmon_sinks.outlets import Outlets

READ_ONLY_REFUSAL = ("read-only monitor: rules are not edited here (set [triage] can_edit_rules = true "
                     "in the settings to allow it)")


class OperatorApp(App[int]):
    """The base of MonitorApp: rules and triage (see the module docstring)."""

    # Provided by MonitorApp.
    outlets: Outlets | None
    model: MonitorModel
    grouped: bool
    _halt: threading.Event

    def repaint(self) -> None:
        """Repaint the panels (MonitorApp's)."""

    # Set by the app before it runs; a read-only (attached) monitor edits rules only when the settings
    # say [triage] can_edit_rules = true. Triage (a, S, n, u) stays on: watching is triaging.
    read_only: bool = False
    triage_settings: TriageSettings = TriageSettings("operator")
    rules_watcher: RulesWatcher | None = None
    triage: TriageService | None = None
    show_silenced: bool = False
    # The rules the monitor was started with: version 1 when txmon.rules is empty.
    start_rules: Rules | None = None

    @property
    def can_edit_rules(self) -> bool:
        """Whether R may publish a new version here."""
        allowed = self.triage_settings.can_edit_rules
        return (not self.read_only) if allowed is None else allowed

    def triage_state(self) -> TriageState | None:
        """The shared triage now (None until the service runs)."""
        return self.triage.state() if self.triage is not None else None

    # ---- lifecycle ------------------------------------------------------------------------------------

    def start_operators(self, client_config: Mapping[str, str]) -> None:
        """Follow the rules and the triage; delivery asks the triage about silences from now on."""
        self.rules_watcher = RulesWatcher(client_config)
        self.triage = TriageService(client_config, self.triage_settings.operator)
        if self.outlets is not None:  # set before any alert is taken: silenced ones never go out
            self.outlets.delivery.silenced = silence_test(self.triage)
        self._start_services(client_config, self.rules_watcher, self.triage)

    @work(thread=True, exclusive=True, group="operators", exit_on_error=False)
    def _start_services(self, client_config: Mapping[str, str], watcher: RulesWatcher,
                        service: TriageService) -> None:
        """Create the operators' topics if missing, seed the rules, and follow both topics.

        Read-only (attached to a cluster without leave to write) it creates and seeds nothing: it
        follows the topics if they exist.
        """
        create = not self.read_only
        if create and self.start_rules is not None:
            rules_log.seed_if_empty(client_config, self.start_rules)
        watcher.start(create=create)
        service.start(create=create)

    def stop_operators(self) -> None:
        """Stop following the topics (from on_unmount)."""
        watcher, service = self.rules_watcher, self.triage
        self.rules_watcher = self.triage = None
        if watcher is not None:
            watcher.close()
        if service is not None:
            service.close()

    def rules_in_force(self) -> rules_log.RulesVersion | None:
        """The version the watcher holds now."""
        return self.rules_watcher.current() if self.rules_watcher is not None else None

    # ---- the selection ----------------------------------------------------------------------------------

    def _selected_alert(self) -> Alert | None:
        """The alert under the feed's cursor (None in the grouped view: see _selected)."""
        tx_id = self.query_one(AlertFeed).selected_tx_id()
        row = next((r for r in self.model.feed() if r.alert.tx_id == tx_id), None) if tx_id else None
        return row.alert if row is not None else None

    def _selected(self) -> tuple[str, str, str] | None:
        """(tx id or "" for a group, account, rule) of the selected row, in either view."""
        if self.grouped:
            group = self.query_one(GroupTable).selected_group()
            return None if group is None else ("", group[0], group[2])
        alert = self._selected_alert()
        return None if alert is None else (alert.tx_id, alert.account_id, alert.rule or "")

    def _triage_target(self) -> tuple[TriageService, tuple[str, str, str]] | None:
        """The triage service and the selected row, or None (and a word to the user) when either lacks."""
        service = self._triage_ready()
        if service is None:
            return None
        selected = self._selected()
        if selected is None:
            self.notify("No alert selected", timeout=2)
            return None
        return service, selected

    def _triage_ready(self) -> TriageService | None:
        if self.triage is None or not self.triage.wait_caught_up(0):
            self.notify("Triage is not connected yet", severity="warning", timeout=3)
        return self.triage

    # ---- actions --------------------------------------------------------------------------------------

    def action_acknowledge(self) -> None:
        """Acknowledge the selected alert, or the whole selected group in the grouped view."""
        service = self._triage_ready()
        if service is None:
            return
        if self.grouped:
            group = self.query_one(GroupTable).selected_group()
            if group is None:
                self.notify("No group selected", timeout=2)
                return
            self._write_triage(lambda: service.acknowledge_group(*group))
            return
        alert = self._selected_alert()
        if alert is None:
            self.notify("No alert selected", timeout=2)
            return
        self._write_triage(lambda: service.acknowledge(alert))

    def action_silence(self) -> None:
        """Open the silence form for the selected alert's account or rule."""
        target = self._triage_target()
        if target is None:
            return
        service, selected = target

        def silence(request: SilenceRequest | None) -> None:
            if request is not None:
                self._write_triage(lambda: service.silence(request.scope, request.target, request.seconds,
                                                           request.reason))

        self.push_screen(SilenceScreen(selected[1], selected[2]), silence)

    def action_note(self) -> None:
        """Add a note about the selected alert (about the account in the grouped view)."""
        target = self._triage_target()
        if target is None:
            return
        service, selected = target
        tx_id, account_id, _rule = selected

        def note(text: str | None) -> None:
            if text:
                self._write_triage(lambda: service.note(tx_id, account_id, text))

        self.push_screen(NoteScreen(f"alert {tx_id}" if tx_id else f"account {account_id}"), note)

    def action_undo(self) -> None:
        """Undo this operator's last triage action (made in this monitor)."""
        service = self._triage_ready()
        if service is None:
            return
        if not service.can_undo:
            self.notify("Nothing to undo", timeout=2)
            return
        self._write_triage(service.undo)

    def action_toggle_silenced(self) -> None:
        """Show silenced alerts dimmed in the feed, or hide them (they are counted either way)."""
        self.show_silenced = not self.show_silenced
        self.notify("Silenced alerts shown dimmed" if self.show_silenced else "Silenced alerts hidden",
                    timeout=2)
        self.repaint()

    def action_rules(self) -> None:
        """Open the rules screen: values in force, history, and (where allowed) the editor."""
        watcher = self.rules_watcher
        current = watcher.current() if watcher is not None else None
        history = watcher.history() if watcher is not None else []
        refusal = "" if self.can_edit_rules else READ_ONLY_REFUSAL
        if watcher is None:
            refusal = "not connected to txmon.rules yet"

        def publish(change: RulesChange | None) -> None:
            if change is not None and watcher is not None:
                self._publish_rules(watcher, change)

        self.push_screen(RulesScreen(current, history, self.can_edit_rules and watcher is not None, refusal),
                         publish)

    # ---- workers --------------------------------------------------------------------------------------

    @work(thread=True, group="triage", exit_on_error=False)
    def _write_triage(self, write: Callable[[], TriageRecord | None]) -> None:
        """Write one triage action; say what was done, or why not, in one line."""
        try:
            record = write()
        except (TriageError, KafkaAccessError) as exc:
            self.call_from_thread(self.notify, str(exc), title="Triage", severity="error", timeout=8)
            return
        if record is not None:
            self.call_from_thread(self.notify, record.describe(), title="Triage", timeout=4)

    @work(thread=True, group="rules", exit_on_error=False)
    def _publish_rules(self, watcher: RulesWatcher, change: RulesChange) -> None:
        """Publish a new version over the one the editor showed; refuse if another came meanwhile."""
        current = watcher.current()
        if current is None or current.version != change.base_version:
            self.call_from_thread(self.notify, "The rules changed while you edited: open R again",
                                  title="Rules", severity="error", timeout=8)
            return
        try:
            version = rules_log.publish(watcher.client_config, change.changes, self.triage_settings.operator,
                                        change.reason)
        except (RulesError, KafkaAccessError) as exc:
            self.call_from_thread(self.notify, str(exc), title="Rules", severity="error", timeout=8)
            return
        self.call_from_thread(self.notify, f"Rules version {version.version} published: "
                              f"{rules_log.changes_text(version.changes_from(current))}", title="Rules",
                              timeout=6)
