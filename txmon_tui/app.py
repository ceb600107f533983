"""The txmon monitor app: composes the panels, declares the keys, starts workers and routes messages."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.widgets import ContentSwitcher, Footer, Static, Tab, Tabs
from textual.worker import Worker, WorkerState

from producer.control import BURST, CARD_TEST
from txmon_core.rules import configured_rules
from txmon_core.rules_log import Rules
from txmon_core.settings import load
from txmon_core.triage import TriageSettings
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.recorder import Recorder
from txmon_tui.monitor.replay import Replay
from txmon_tui.monitor.session import MonitorSession
from txmon_tui.supervise.children import ProcessView
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.supervise.pipeline import Pipeline
from txmon_tui.widgets import (
    AlertFeed,
    AmountsPlot,
    HealthPanel,
    ProcessesPanel,
    StartupView,
    ThroughputPanel,
    present,
)
from txmon_tui.widgets.feed_keys import FeedKeys
from txmon_tui.widgets.keys import KeysApp
from txmon_tui.widgets.operating import OperatorApp
from txmon_tui.widgets.painting import Painter
from txmon_tui.widgets.process_keys import ProcessKeys
from txmon_tui.widgets.quit_keys import QuitKeys
from txmon_tui.widgets.record_keys import RecordKeys
from txmon_tui.widgets.session_workers import SessionWorkers

if TYPE_CHECKING:
    from txmon_sinks.outlets import Outlets

REPAINT_SECONDS = 0.4  # the screen reflects new data at least twice a second, with room for a late tick
REPLOT_SECONDS = 1.0  # a plotext redraw costs ~30 ms: at most once a second, and only when data changed
PANELS = ("feed", "throughput", "histograms", "health", "processes")


class MonitorApp(QuitKeys, RecordKeys, ProcessKeys, FeedKeys, SessionWorkers, Painter, KeysApp, OperatorApp):
    """Real-time view of the transaction pipeline, and the supervisor of its processes.

    Its keys' actions, its workers and its painting live in its base classes (widgets/, one per group);
    here: the layout, the bindings, the clocks, and what starts and ends with the app.
    """

    CSS_PATH = "app.tcss"
    TITLE = "txmon"
    # Below 120x36 the panels do not fit side by side: one panel at a time (app.tcss), by tab or 1-5.
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (36, "-tall")]
    BINDINGS = [
        Binding("p", "toggle_producer", "Producer", tooltip="Stop or start the producer process"),
        Binding("plus", "change_rate(2.0)", "Rate+", key_display="+", show=False,
                tooltip="Double the producer's rate"),
        Binding("minus", "change_rate(0.5)", "Rate-", key_display="-", show=False,
                tooltip="Halve the producer's rate"),
        Binding("s", "toggle_spark", "Spark", tooltip="Stop or start the Spark job"),
        Binding("b", f"inject('{BURST}')", "Burst", show=False,
                tooltip="Producer: a burst of large transactions on one account"),
        Binding("t", f"inject('{CARD_TEST}')", "Card test", show=False,
                tooltip="Producer: a card test (a small, then a large payment)"),
        Binding("space", "toggle_pause", "Pause", tooltip="Pause the feed; resume at the newest"),
        Binding("slash", "filter", "Filter", key_display="/", tooltip="Filter the feed"),
        Binding("enter", "details", "Details", show=False, tooltip="Details of the selected alert"),
        Binding("v", "switch_histogram", "Live/history", show=False,
                tooltip="Histogram of the last minute or of all Parquet history"),
        Binding("l", "logs", "Logs", show=False, tooltip="Full log of each process"),
        Binding("c", "clear", "Clear", show=False, tooltip="Clear counters, rates, latency and histogram"),
        Binding("g", "toggle_grouped", "Group", show=False,
                tooltip="Group the feed by account and rule, or list it again"),
        Binding("e", "export", "Export", show=False,
                tooltip="Export the feed as shown to a file in the data dir"),
        Binding("r", "toggle_recording", "Record", show=False,
                tooltip="Start or stop recording alerts and metrics to a file"),
        Binding("R", "rules", "Rules", key_display="R", show=False,
                tooltip="The rules in force, their history, a new version"),
        Binding("a", "acknowledge", "Ack", show=False,
                tooltip="Acknowledge the alert (grouped view: the group)"),
        Binding("S", "silence", "Silence", key_display="S", show=False,
                tooltip="Silence the alert's account or rule for a while"),
        Binding("n", "note", "Note", show=False, tooltip="Add a note to the selected alert"),
        Binding("u", "undo", "Undo", show=False, tooltip="Undo your last acknowledgement, silence or note"),
        Binding("z", "toggle_silenced", "Silenced", show=False,
                tooltip="Show silenced alerts dimmed, or hide them"),
        Binding("k", "replay_pause", "Play/pause", tooltip="Replay: pause or resume playback"),
        Binding("full_stop", "replay_step", "Step", key_display=".",
                tooltip="Replay: pause, then one more batch per press"),
        Binding("less_than_sign", "replay_speed(-1)", "Slower", key_display="<", tooltip="Replay: slower"),
        Binding("greater_than_sign", "replay_speed(1)", "Faster", key_display=">",
                tooltip="Replay: faster (up to max)"),
        Binding("1", "show_panel('feed')", "Feed panel", show=False),
        Binding("2", "show_panel('throughput')", "Throughput panel", show=False),
        Binding("3", "show_panel('histograms')", "Histogram panel", show=False),
        Binding("4", "show_panel('health')", "Health panel", show=False),
        Binding("5", "show_panel('processes')", "Processes panel", show=False),
        Binding("h,question_mark,f1", "help", "Help", key_display="h"),
        Binding("q", "quit", "Quit", tooltip="Quit (asks first while it runs processes: q again or y)"),
        Binding("y", "confirm_quit", "Yes, quit", show=False, tooltip="Quit when asked to confirm"),
        # Ctrl+C must stop the children like a confirmed q does, even while a form has focus: an
        # interrupt is not asked about (nor are SIGTERM and SIGINT).
        Binding("ctrl+c", "interrupt", "Quit", show=False, priority=True,
                tooltip="Stop the children and quit, without asking"),
    ]

    def __init__(
        self,
        session: MonitorSession,
        pipeline: Pipeline | None,
        *,
        thresholds: tuple[float, float],
        clock: Callable[[], float] = time.time,
        handle_signals: bool = False,
        data_dir: Path | None = None,
        export_format: str = "csv",
        record_to: Path | None = None,
        replay: Replay | None = None,
        rules_text: str = "",
        confirm_quit: bool = False,
    ) -> None:
        super().__init__()
        self.session = session  # the tail, the produced count, recording and delivery; the model they feed
        self.model = session.model
        self.pipeline = pipeline
        self.replay = replay
        self.thresholds = thresholds
        self.rules_text = rules_text  # the account rules in force, for the help screen
        self.clock = clock
        self.handle_signals = handle_signals
        self.confirm_quit = confirm_quit  # ask before stopping running children (off with --yes)
        self.data_dir = data_dir if data_dir is not None else Path(".")
        self.export_format = export_format
        self._record_to = record_to
        self.panel = "feed"
        self._halt = threading.Event()  # tells thread workers to finish their loop
        self._history_wake = threading.Event()  # the history view was shown, or the app ends
        self._children_stopped = threading.Event()
        self._views: list[ProcessView] = []  # the supervised processes as last polled (_poll_processes)

    @property
    def outlets(self) -> Outlets | None:
        """Alert delivery and the metrics endpoint (txmon_sinks), set by the CLI before run(); None in tests
        and replays. Sink health for a panel: outlets.health() -> list[SinkHealth], from any thread."""
        return self.session.outlets

    @outlets.setter
    def outlets(self, outlets: Outlets | None) -> None:
        self.session.outlets = outlets

    @property
    def recorder(self) -> Recorder | None:
        """The recording running now, if any."""
        return self.session.recorder

    def compose(self) -> ComposeResult:
        """The status line, startup steps, panel tabs (compact layout only), panels and footer."""
        yield Static("", id="status", markup=False)  # names files the user chose
        yield StartupView(id="startup")
        yield Tabs(*(Tab(present.PANEL_TITLES[name], id=f"tab-{name}") for name in PANELS), id="panel-tabs")
        with Container(id="panels"):
            yield AlertFeed(id="feed", classes="panel")
            yield ThroughputPanel(id="throughput", classes="panel")
            with Vertical(id="histograms", classes="panel"):
                with ContentSwitcher(initial="hist-live"):
                    yield AmountsPlot("live", id="hist-live")
                    yield AmountsPlot("all history", id="hist-history")
            yield HealthPanel(id="health", classes="panel")
            yield ProcessesPanel(id="processes", classes="panel")
        yield Footer()

    def on_mount(self) -> None:
        """Start the pipeline (non-blocking: its own launcher thread forks the children) and the clocks."""
        histograms = self.query_one("#histograms")
        histograms.border_title = "Histogram of flagged amounts"
        histograms.border_subtitle = "v live/history"
        self._apply_layout()
        if self.handle_signals:
            self._listen_for_signals()
        if self.pipeline is not None:
            self.pipeline.start()
            self._poll_processes(self.pipeline)
        self.set_interval(REPAINT_SECONDS, self._repaint_tick, name="repaint")
        self.set_interval(REPLOT_SECONDS, self.replot, name="replot")
        if self._record_to is not None:
            self._start_recording(self._record_to)
        if self.replay is not None:
            self._replay(self.replay)
        self.repaint()

    def on_unmount(self) -> None:
        """However the app ends (tests included), the workers finish and the children are stopped."""
        self._halt.set()
        self._history_wake.set()
        self.session.stop_recording()
        self.stop_operators()
        if self.pipeline is not None:
            self.pipeline.stop()  # idempotent: a no-op after q

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker errors surface: shown to the user, never swallowed."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.notify(f"{event.worker.name}: {type(error).__name__}: {error}", title="Error",
                        severity="error", timeout=30, markup=False)
            if event.worker.group == "stop":
                self.exit(1, message=str(error))

    @on(Tabs.TabActivated, "#panel-tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab.id:
            self.panel = event.tab.id.removeprefix("tab-")
            self._apply_layout()

    def _apply_layout(self) -> None:
        """Mark the panel chosen for the compact layout (the wide layout shows them all)."""
        for name in PANELS:
            self.query_one(f"#{name}").set_class(name == self.panel, "-shown")
        if self.is_running and not self._stopping:
            self.repaint()

    # ---- actions (one per binding) -------------------------------------------------------------------

    def action_show_panel(self, name: str) -> None:
        """Show one panel (compact layout) by selecting its tab."""
        self.query_one("#panel-tabs", Tabs).active = f"tab-{name}"


def create_app(
    config: PipelineConfig,
    *,
    supervise: bool = True,
    clock: Callable[[], float] = time.time,
    handle_signals: bool = False,
    export_format: str = "csv",
    record_to: Path | None = None,
    replay: Replay | None = None,
    confirm_quit: bool = False,
) -> MonitorApp:
    """Build the monitor, for the CLI and for tests alike.

    `config.bootstrap` names a running broker (None starts the embedded one); `config.run_producer` and
    `config.run_spark` choose the children. `supervise=False` builds the screen with no pipeline and no
    Kafka workers (snapshot tests post it messages); `clock` (wall seconds) makes screens deterministic.
    `record_to` records the session from the start; `replay` shows a recording instead of any pipeline.
    `confirm_quit` asks before q stops running children (the CLI's default; --yes turns it off).
    """
    if replay is not None:  # a recorded session: no broker, no children, its own clock
        supervise, clock = False, replay.control.now
    model = MonitorModel(config.large_threshold, config.alert_threshold, now=clock())
    session = MonitorSession(model, names=config.topic_names, since_ms=config.since_ms)
    pipeline = Pipeline(config) if supervise else None
    account_rules = configured_rules(config.settings_path)
    app = MonitorApp(session, pipeline, thresholds=(config.large_threshold, config.alert_threshold),
                     clock=clock, handle_signals=handle_signals, data_dir=config.data_dir,
                     export_format=export_format, record_to=record_to, replay=replay,
                     rules_text=account_rules.describe(config.large_threshold), confirm_quit=confirm_quit)
    # The operator's name and whether R may edit ([triage]); version 1 of the rules when none exists yet.
    app.triage_settings = TriageSettings.from_settings(load(config.settings_path))
    app.start_rules = Rules(config.large_threshold, config.alert_threshold, account_rules)
    return app
