"""The txmon monitor app: composes the panels, declares the keys, starts workers and routes messages."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Static, Tab, Tabs
from textual.worker import Worker, WorkerState

from producer.control import BURST, CARD_TEST, command_for
from spark_app.formats import PARQUET_DIR_NAME
from txmon_core.rules import configured_rules
from txmon_core.rules_log import Rules
from txmon_core.settings import load
from txmon_core.triage import TriageSettings
from txmon_tui.export import (
    EXPORT_DIR_NAME,
    FEED_FIELDS,
    GROUP_FIELDS,
    export_path,
    feed_records,
    group_records,
    write_export,
)
from txmon_tui.history import HistoryError, HistoryReader
from txmon_tui.messages import (
    ExportWritten,
    HistoryLoaded,
    LogLoaded,
    PipelineStopped,
    ProcessesPolled,
    ProducedCounted,
    RecordsReceived,
    ReplayFinished,
    TailStarted,
)
from txmon_tui.model import MonitorModel
from txmon_tui.pipeline import Pipeline, PipelineConfig
from txmon_tui.recording import Player, Recorder, Replay, new_recording_path, play, speed_text
from txmon_tui.stats import AmountBins
from txmon_tui.supervisor import ProcessView
from txmon_tui.tail import Deliveries, OffsetWatcher, Tail
from txmon_tui.triage_view import OVERSCAN, silence_lines, triage_feed, triage_status
from txmon_tui.widgets import (
    AlertFeed,
    AmountsPlot,
    DetailsScreen,
    FilterScreen,
    FilterValues,
    HealthPanel,
    HelpScreen,
    LogScreen,
    ProcessesPanel,
    StartupView,
    ThroughputPanel,
    present,
)
from txmon_tui.widgets.feed import MAX_RENDERED_ROWS, FeedTable
from txmon_tui.widgets.groups import GroupTable
from txmon_tui.widgets.operating import OperatorApp

if TYPE_CHECKING:
    from txmon_sinks.outlets import Outlets

REPAINT_SECONDS = 0.4  # the screen reflects new data at least twice a second, with room for a late tick
REPLOT_SECONDS = 1.0  # a plotext redraw costs ~30 ms: at most once a second, and only when data changed
POLL_SECONDS = 0.5  # child states and startup steps
# Produced tx/s from the end offsets of `transactions`: sampled twice a second, so a stopped producer
# shows 0 tx/s within 2 s (the rate spans the last samples).
OFFSETS_SECONDS = 0.5
BROKERS_EVERY = 4  # offsets samples between two reads of the broker count (a metadata request)
HISTORY_SECONDS = 15.0  # the Parquet history changes only when Spark commits a batch
TAIL_POLL_SECONDS = 0.5  # poll() returns at the first record: this only bounds how soon a halt is seen
DELIVER_SECONDS = 0.1  # batches reach the model at most 10 times a second (the screen repaints at 2)
STOP_WAIT_SECONDS = 120.0  # longer than the pipeline's graceful-then-forced stop of all three children
PANELS = ("feed", "throughput", "histograms", "health", "processes")
RECORDINGS_DIR_NAME = "recordings"  # under the data dir, for recordings started with r
EXPORT_LIMIT = 100_000  # rows per export: more than the model keeps (its feed and groups are bounded)
# Keys that act on the live pipeline: a replay has none (the replay's own keys act only during one).
LIVE_ONLY_ACTIONS = {"toggle_producer", "change_rate", "toggle_spark", "logs", "toggle_recording", "inject",
                     "rules", "acknowledge", "silence", "note", "undo"}
# Keys that write to the cluster or stop something in it: shown disabled while the monitor is read-only.
WRITE_ACTIONS = {"toggle_producer", "change_rate", "toggle_spark", "inject"}
READ_ONLY_NOTE = "disabled: read-only"


class MonitorApp(OperatorApp):
    """Real-time view of the transaction pipeline, and the supervisor of its processes."""

    CSS_PATH = "app.tcss"
    TITLE = "txmon"
    # Alert delivery and the metrics endpoint (txmon_sinks), set by the CLI before run(); None in tests and
    # replays. Sink health for a panel: self.outlets.health() -> list[SinkHealth], callable from any thread.
    outlets: Outlets | None = None
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
        model: MonitorModel,
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
        self.model = model
        self.rules_text = rules_text  # the account rules in force, for the help screen
        self.data_dir = data_dir if data_dir is not None else Path(".")
        self.export_format = export_format
        self.replay = replay
        self.recorder: Recorder | None = None
        self._record_to = record_to
        self.grouped = False
        self.pipeline = pipeline
        self.thresholds = thresholds
        self.clock = clock
        self.handle_signals = handle_signals
        self.panel = "feed"
        self._status = ""
        self.tailing = False
        self._workers_started = False
        self._stopping = False
        self._halt = threading.Event()  # tells thread workers to finish their loop
        self._records_since_repaint = False
        self._skipped_tick = False
        # The Parquet history (and pyarrow, ~45 MB) is read only once, and only while, its view is shown.
        self._history_started = False
        self._history_shown = False
        self._history_wake = threading.Event()  # the view was shown, or the app ends
        self._children_stopped = threading.Event()
        self.confirm_quit = confirm_quit  # ask before stopping running children (off with --yes)
        self._quit_asked = False
        self._backfill: tuple[int, int] | None = None  # (read, to read) while a backfill runs
        self._views: list[ProcessView] = []  # the supervised processes as last polled (_poll_processes)

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
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self._on_signal)
            # Not through the event loop: once the terminal is gone, Textual's writes block the loop.
            signal.signal(signal.SIGHUP, self._on_hangup)
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
        self._stop_recording()
        self.stop_operators()
        if self.pipeline is not None:
            self.pipeline.stop()  # idempotent: a no-op after q

    # ---- clocks -------------------------------------------------------------------------------------

    def on_processes_polled(self, message: ProcessesPolled) -> None:
        """Take the children's states; start the Kafka workers once the topics exist."""
        if self.pipeline is None or self._stopping:
            return
        self._views = message.views
        self.model.apply_processes(message.views, message.at)
        if not self._workers_started and self.pipeline.topics_ready:
            self._workers_started = True
            config = self.pipeline.client_config
            self._tail(config)
            self._count_produced(config)
            self.start_operators(config)

    def _repaint_tick(self) -> None:
        """The repaint clock: every tick while records arrive, every other tick while none do."""
        if not self._records_since_repaint and not self._skipped_tick:
            self._skipped_tick = True  # only clocks move (rates decay, uptimes): a second is soon enough
            return
        self.repaint()

    def repaint(self) -> None:
        """Repaint every visible panel from one model snapshot (twice a second, whatever the arrival rate)."""
        if self._exit or not self.is_running:
            # Exiting: Textual removes the screens while queued messages may still ask for a repaint.
            return
        self._records_since_repaint = self._skipped_tick = False
        snap = self.model.snapshot(self.clock())
        if self.outlets is not None:
            self.outlets.publish(snap)  # the totals the Prometheus endpoint serves
        pipeline = self.pipeline
        views = self._views  # as last polled: reading them reads the broker's log, off the event loop
        status = present.status_line(snap, pipeline, views, self.tailing, self._stopping)
        if self._backfill is not None:
            status += f" · backfill {self._backfill[0]:,}/{self._backfill[1]:,} alerts"
        if self.replay is not None:
            status = f"txmon · {self.replay.describe()}"
        elif self.recorder is not None:
            status += f" · ● rec {self.recorder.path.name}"
        if status != self._status:  # an unchanged update would still cost a repaint
            self._status = status
            self.query_one("#status", Static).update(status, layout=False)  # one line, always
        startup = self.query_one(StartupView)
        startup.display = present.starting(pipeline, snap)
        if startup.display:
            startup.show(present.steps(pipeline))
        self._follow_rules()
        triage, now = self.triage_state(), self.clock()
        feed = self.query_one(AlertFeed)
        if feed.display and self.grouped:
            feed.show_groups(self.model.groups(MAX_RENDERED_ROWS),
                             present.feed_status(snap, self.model.filter))
        elif feed.display:
            rows = self.model.feed(MAX_RENDERED_ROWS * (OVERSCAN if triage is not None else 1))
            triaged = triage_feed(rows, triage, now, self.show_silenced, MAX_RENDERED_ROWS)
            status = present.feed_status(snap, self.model.filter)
            if extra := triage_status(triaged, self.show_silenced, len(silence_lines(triage, now))):
                status = f"{status} · {extra}"
            feed.show(present.triaged_lines(triaged), status)
        throughput = self.query_one(ThroughputPanel)
        if throughput.display:
            throughput.show(present.gauges(snap))
        health = self.query_one(HealthPanel)
        if health.display:
            outlets = self.outlets
            sinks = present.sink_lines(outlets.health(), self.clock()) if outlets is not None else []
            health.show((snap.latency_p50, snap.latency_p99), present.funnel(snap),
                        present.warnings(snap, pipeline), sinks, silence_lines(triage, now),
                        (snap.to_batch, snap.batch_to_here))
        processes = self.query_one(ProcessesPanel)
        if processes.display:
            steps = pipeline.steps if pipeline is not None else []
            processes.show([present.process_line(view, steps) for view in views])
        self.query_one("#hist-live", AmountsPlot).set_bins(
            snap.bin_edges, snap.live_bins, self.thresholds, f"last minute, {sum(snap.live_bins):,} tx")

    def _follow_rules(self) -> None:
        """The histogram's threshold lines and the help's rules follow the version in force."""
        version = self.rules_in_force()
        if version is None:
            return
        rules = version.rules
        thresholds = (rules.large_threshold, rules.alert_threshold)
        # The live histogram gets them on this repaint, the history's at its next read.
        self.thresholds = thresholds
        self.rules_text = f"rules version {version.version}: {rules.describe()}"

    def replot(self) -> None:
        """Give the shown histogram its new bins, if they changed (about once a second).

        The costly part, plotext's build, runs in render(), which Textual skips while the panel is hidden.
        """
        if not self.is_running:
            return  # shutting down: the panels are being removed while the clock still ticks
        switcher = self.query_one(ContentSwitcher)
        if switcher.current:
            self.query_one(f"#{switcher.current}", AmountsPlot).replot()

    # ---- workers: blocking Kafka and file I/O, posting messages only --------------------------------

    @work(thread=True, exclusive=True, group="tail", exit_on_error=False)
    def _tail(self, client_config: dict[str, str]) -> None:
        """Read `alerts` and `metrics` in batches and post them."""
        config = self.pipeline.config if self.pipeline is not None else None
        outlets = self.outlets  # delivery resumes where the last run's delivered alerts were read up to
        tail = Tail(client_config, names=config.topic_names if config else None,
                    since_ms=config.since_ms if config else None,
                    resume=outlets.resume_positions() if outlets is not None else None)
        deliveries = Deliveries(DELIVER_SECONDS)
        self.post_message(TailStarted())
        try:
            while not self._halt.is_set():
                batch = tail.poll(deliveries.wait(TAIL_POLL_SECONDS))
                recorder = self.recorder
                if batch:
                    if (outlets := self.outlets) is not None:
                        outlets.take(batch)  # alert delivery: queued; waits only when far behind
                    deliveries.add(batch)
                    if recorder is not None:
                        recorder.add(batch)
                if batches := deliveries.take():
                    self.post_message(RecordsReceived(batches))
                if recorder is not None:
                    recorder.flush_if_due()  # here, off the event loop: one write a second
        finally:
            tail.close()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll_processes(self, pipeline: Pipeline) -> None:
        """Refresh the children's states (escalating stops, restarting failed ones) and post their views.

        In a thread: a poll may reap a child's process group, and the views read the broker's log file.
        """
        while not self._halt.is_set():
            pipeline.poll()
            self.post_message(ProcessesPolled(pipeline.processes, self.clock()))
            self._halt.wait(POLL_SECONDS)

    @work(thread=True, exclusive=True, group="offsets", exit_on_error=False)
    def _count_produced(self, client_config: dict[str, str]) -> None:
        """Read the end offsets of `transactions` (produced tx/s, whoever produces) and the broker count."""
        watcher = OffsetWatcher(client_config)
        transactions = self.pipeline.config.topic_names.transactions if self.pipeline is not None else ""
        try:
            sample = 0
            while not self._halt.wait(OFFSETS_SECONDS):
                brokers = watcher.broker_count() if sample % BROKERS_EVERY == 0 else None
                sample += 1
                total = watcher.end_offset_total(transactions)
                at = self.clock()
                self.post_message(ProducedCounted(total, at, brokers))
                if (recorder := self.recorder) is not None:
                    recorder.add_produced(total, at)
        finally:
            watcher.close()

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def _read_history(self, data_dir: Path, edges: list[float]) -> None:
        """Read the committed Parquet data now and then, and bin its amounts."""
        bins = AmountBins(edges[0], edges[-1], len(edges) - 1)  # the live histogram's bins: shapes compare
        reader = HistoryReader(data_dir / PARQUET_DIR_NAME, bins)
        while True:
            if self._history_shown:
                try:
                    history = reader.refresh()
                    note = f"{history.summary.rows:,} rows in Parquet"
                    self.post_message(HistoryLoaded(history.edges, history.counts, note))
                except (HistoryError, OSError) as exc:  # e.g. a file removed while read: try again later
                    self.post_message(HistoryLoaded([], [], f"unreadable: {exc}"))
            # While the live view is up, sleep until the history is shown again (or the app ends).
            self._history_wake.wait(HISTORY_SECONDS if self._history_shown else None)
            self._history_wake.clear()
            if self._halt.is_set():
                return

    @work(thread=True, group="logs", exit_on_error=False)
    def _read_log(self, name: str) -> None:
        """Read the end of one child's log file."""
        self.post_message(LogLoaded(name, present.read_log(self.pipeline, name)))

    @work(thread=True, exclusive=True, group="replay", exit_on_error=False)
    def _replay(self, replay: Replay) -> None:
        """Deliver a recorded session's records on its own clock, as the tail and offsets workers would."""
        player = Player(replay.recording)
        if play(player, replay.control, self._halt, lambda batch: self.post_message(RecordsReceived([batch])),
                lambda total, at: self.post_message(ProducedCounted(total, at))):
            self.post_message(ReplayFinished(player.skipped))

    @work(thread=True, group="export", exit_on_error=False)
    def _write_export(self, view: str, records: list[dict[str, object]], fields: tuple[str, ...]) -> None:
        """Write an export file and say where."""
        path = export_path(self.data_dir / EXPORT_DIR_NAME, view, self.export_format, time.time())
        write_export(path, records, fields, self.export_format)
        self.post_message(ExportWritten(str(path), len(records)))

    @work(thread=True, exclusive=True, group="stop", exit_on_error=False)
    def _stop_pipeline(self) -> None:
        """Stop producer, Spark job and broker, gracefully then forcibly."""
        errors: list[str] = []
        if self.pipeline is not None:
            try:
                self.pipeline.stop()
            except OSError as exc:  # a child we cannot signal any more; the CLI retries on exit
                errors.append(str(exc))
        self._children_stopped.set()
        self.post_message(PipelineStopped(errors))

    # ---- messages -------------------------------------------------------------------------------------

    def on_records_received(self, message: RecordsReceived) -> None:
        """Aggregate on arrival; the screen catches up on the next repaint."""
        self._records_since_repaint = True
        for batch in message.batches:
            self.model.apply(batch)
            if batch.backfill is not None:
                self._backfill = batch.backfill if batch.backfill[0] < batch.backfill[1] else None

    def on_tail_started(self) -> None:
        """From now on every alert and metrics record reaches the model."""
        self.tailing = True

    def on_produced_counted(self, message: ProducedCounted) -> None:
        """Feed the produced total to the model's rate."""
        self.model.apply_produced(message.total, message.at)
        if message.brokers is not None:
            self.model.apply_brokers(message.brokers)

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        """Show the Parquet history's bins."""
        self.query_one("#hist-history", AmountsPlot).set_bins(
            message.edges, message.counts, self.thresholds, message.note)
        self.replot()

    def on_log_loaded(self, message: LogLoaded) -> None:
        """Hand a log that was read to the log view, if it is still open."""
        if isinstance(self.screen, LogScreen):
            self.screen.show_log(message.name, message.text)

    def on_export_written(self, message: ExportWritten) -> None:
        """Say where the export went."""
        self.notify(f"Exported {message.rows:,} rows to {message.path}", title="Export", timeout=10,
                    markup=False)

    def on_replay_finished(self, message: ReplayFinished) -> None:
        """Say that the recording was shown to its end."""
        skipped = f" ({message.skipped:,} damaged lines skipped)" if message.skipped else ""
        self.notify(f"Replay finished{skipped}", severity="warning" if message.skipped else "information")
        self.repaint()

    def on_pipeline_stopped(self, message: PipelineStopped) -> None:
        """Exit once the children are gone."""
        self.exit(1 if message.errors else 0, message="\n".join(message.errors) or None)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place worker errors surface: shown to the user, never swallowed."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            error = event.worker.error
            self.notify(f"{event.worker.name}: {type(error).__name__}: {error}", title="Error",
                        severity="error", timeout=30, markup=False)
            if event.worker.group == "stop":
                self.exit(1, message=str(error))

    @on(FeedTable.RowSelected, "#feed-table")
    @on(GroupTable.RowSelected, "#groups-table")
    def _row_selected(self) -> None:
        self.action_details()

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

    def action_toggle_producer(self) -> None:
        """Stop or start the producer process (restarts a failed one)."""
        if self.pipeline is not None:
            starting = self.pipeline.toggle_producer()
            self.notify("Producer starting" if starting else "Producer stopping", timeout=3)
            self.repaint()

    def action_change_rate(self, factor: float) -> None:
        """Multiply the producer's rate (a running producer restarts with it)."""
        if self.pipeline is not None:
            rate = max(1.0, round(self.pipeline.config.rate * factor))
            self.pipeline.set_rate(rate)
            self.notify(f"Producer rate {rate:g} tx/s", timeout=3)

    def action_inject(self, command: str) -> None:
        """Ask the running producer to inject a pattern the account rules (the version in force) look for."""
        version = self.rules_in_force()
        line = command if version is None else command_for(command, version.rules).line()
        if self.pipeline is not None and self.pipeline.inject(line):
            self.notify(f"Producer: {command} injected (its reply is in the Processes panel)", timeout=4)
        else:
            self.notify("No producer running to inject into", severity="warning", timeout=3)

    def action_toggle_spark(self) -> None:
        """Stop or start the Spark job (restarts a failed one)."""
        if self.pipeline is not None:
            starting = self.pipeline.toggle_spark()
            self.notify("Spark job starting" if starting else "Spark job stopping", timeout=3)
            self.repaint()

    def action_toggle_pause(self) -> None:
        """Pause the feed (counting what arrives), or resume at the newest."""
        self.model.toggle_pause()
        self.repaint()

    def action_filter(self) -> None:
        """Open the filter form; the feed shows only what matches."""

        def apply(values: FilterValues | None) -> None:
            if values is not None:
                self.model.set_filter(present.to_filter(values))
                self.repaint()

        self.push_screen(FilterScreen(present.filter_values(self.model.filter)), apply)

    def action_details(self) -> None:
        """Open the selected alert with that account's recent flagged transactions."""
        feed = self.query_one(AlertFeed)
        tx_id = (feed.query_one(GroupTable) if self.grouped else feed).selected_tx_id()
        row = next((r for r in self.model.feed() if r.alert.tx_id == tx_id), None) if tx_id else None
        if row is None:
            self.notify("No alert selected", timeout=2)
            return
        recent = [present.feed_line(r) for r in self.model.account_rows(row.alert.account_id)]
        self.push_screen(DetailsScreen(present.feed_line(row), row.alert.rule, row.alert.detected_at, recent))

    def action_switch_histogram(self) -> None:
        """Switch the histogram between the live minute and all Parquet history."""
        switcher = self.query_one(ContentSwitcher)
        switcher.current = "hist-history" if switcher.current == "hist-live" else "hist-live"
        self.query_one(f"#{switcher.current}", AmountsPlot).replot()
        self._history_shown = switcher.current == "hist-history"
        if self._history_shown and self.pipeline is not None:
            if not self._history_started:
                self._history_started = True
                self._read_history(self.pipeline.data_dir, self.model.snapshot(self.clock()).bin_edges)
            self._history_wake.set()

    def action_logs(self) -> None:
        """Open the full log view of the child processes."""
        names = [view.name for view in self._views]
        if not names:
            self.notify("No child processes", timeout=2)
            return
        self.push_screen(LogScreen(names, names[0]))

    def load_log(self, name: str) -> None:
        """Read a child's log off the main thread (the log view asks for it)."""
        self._read_log(name)

    def action_show_panel(self, name: str) -> None:
        """Show one panel (compact layout) by selecting its tab."""
        self.query_one("#panel-tabs", Tabs).active = f"tab-{name}"

    def action_clear(self) -> None:
        """Clear counters, feed and histogram."""
        self.model.clear(self.clock())
        self.repaint()
        self.notify("Counters cleared", timeout=2)

    def action_toggle_grouped(self) -> None:
        """Switch the feed between its newest rows and one row per account and rule."""
        self.grouped = not self.grouped
        feed = self.query_one(AlertFeed)
        feed.set_class(self.grouped, "-grouped")
        feed.border_title = "Alert feed · by account and rule" if self.grouped else "Alert feed"
        self.repaint()

    def action_export(self) -> None:
        """Export the feed as shown (filtered, frozen while paused; grouped in the grouped view)."""
        if self.grouped:
            self._write_export("groups", group_records(self.model.groups(EXPORT_LIMIT)), GROUP_FIELDS)
        else:
            self._write_export("feed", feed_records(self.model.feed(EXPORT_LIMIT)), FEED_FIELDS)

    def action_toggle_recording(self) -> None:
        """Start recording to a new file under the data dir, or stop and say where it went."""
        if self.recorder is not None:
            path = self._stop_recording()
            self.notify(f"Recording saved to {path}", title="Recording", timeout=10, markup=False)
        else:
            self._start_recording(new_recording_path(self.data_dir / RECORDINGS_DIR_NAME, time.time()))
        self.repaint()

    def _start_recording(self, path: Path) -> None:
        try:
            # The tail stamps batches with the wall clock: offsets are counted from it.
            self.recorder = Recorder(path, started_at=time.time())
        except OSError as exc:
            self.notify(f"Cannot record to {path}: {exc.strerror or exc}", severity="error", timeout=15,
                        markup=False)
            return
        self.notify(f"Recording to {path}", title="Recording", timeout=5, markup=False)

    def _stop_recording(self) -> Path | None:
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        recorder.close()  # writes at most the last second's lines
        return recorder.path

    def action_replay_pause(self) -> None:
        """Pause or resume the replay."""
        if self.replay is not None:
            self.replay.control.toggle_pause()
            self.repaint()

    def action_replay_step(self) -> None:
        """Pause the replay and deliver one more batch."""
        if self.replay is not None:
            self.replay.control.step()
            self.repaint()

    def action_replay_speed(self, steps: int) -> None:
        """Replay faster (positive steps) or slower."""
        if self.replay is not None:
            speed = self.replay.control.change_speed(steps)
            self.notify(f"Replay speed {speed_text(speed)}", timeout=2)
            self.repaint()

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

    def _runs_children(self) -> bool:
        """Whether quitting would stop something: the embedded broker, a Spark job or a producer."""
        return self.pipeline is not None and any(
            view.pid is not None for view in self.pipeline.processes)

    async def action_quit(self) -> None:
        """Quit: at once when nothing runs; else ask once (q again or y), then stop the children."""
        if self._stopping:
            return
        if self.confirm_quit and not self._quit_asked and self._runs_children():
            self._quit_asked = True
            self.refresh_bindings()
            self.notify("Quitting stops the processes this monitor started. Press q again or y to quit.",
                        title="Quit?", timeout=10)
            return
        await self._quit()

    async def action_interrupt(self) -> None:
        """Ctrl+C: quit without asking."""
        await self._quit()

    async def action_confirm_quit(self) -> None:
        """y, once quitting was asked for."""
        if self._quit_asked:
            await self._quit()

    async def _quit(self) -> None:
        """Stop the children (gracefully, then forcibly), then exit."""
        if self._stopping:
            return
        self._stopping = True
        self._halt.set()
        if self.pipeline is None:
            self.exit(0)
            return
        self.repaint()
        self._stop_pipeline()

    def _on_signal(self) -> None:
        """SIGTERM or SIGINT: leave as a confirmed q does (a signal is not asked twice)."""
        self.call_later(self._quit)

    def _on_hangup(self, signum: int, _frame: FrameType | None) -> None:
        """SIGHUP (the ssh connection dropped): stop the children, then exit without touching the terminal.

        There is no terminal left to restore, and Textual's writes to it would block its event loop
        forever, so this runs in a plain thread and ends the process itself.
        """
        threading.Thread(target=self._stop_and_exit, args=(128 + signum,), name="txmon-hangup").start()

    def _stop_and_exit(self, code: int) -> None:
        self._halt.set()
        if self._stopping:
            self._children_stopped.wait(STOP_WAIT_SECONDS)  # q was pressed just before: let it finish
        elif self.pipeline is not None:
            self.pipeline.stop()
        os._exit(code)

    # ---- keys, for the help panel and the command palette --------------------------------------------

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
    pipeline = Pipeline(config) if supervise else None
    account_rules = configured_rules(config.settings_path)
    app = MonitorApp(model, pipeline, thresholds=(config.large_threshold, config.alert_threshold),
                     clock=clock, handle_signals=handle_signals, data_dir=config.data_dir,
                     export_format=export_format, record_to=record_to, replay=replay,
                     rules_text=account_rules.describe(config.large_threshold), confirm_quit=confirm_quit)
    # The operator's name and whether R may edit ([triage]); version 1 of the rules when none exists yet.
    app.triage_settings = TriageSettings.from_settings(load(config.settings_path))
    app.start_rules = Rules(config.large_threshold, config.alert_threshold, account_rules)
    return app
