"""Painting the monitor: every visible panel from one model snapshot on the repaint clock (twice a second,
whatever the arrival rate), the histograms on their own slower clock, the Parquet history only while shown.

A base class of MonitorApp, as OperatorApp is: it reads the model and the pipeline's views and hands the
widgets what they show (through `present`); it computes no figure.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from textual import work
from textual.app import App
from textual.widgets import ContentSwitcher, Static

from spark_app.formats import PARQUET_DIR_NAME
from txmon_core.rules_log import RulesVersion
from txmon_core.triage import TriageState
from txmon_tui.messages import HistoryLoaded
from txmon_tui.monitor.history import HistoryError, HistoryReader
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.replay import Replay
from txmon_tui.monitor.session import MonitorSession
from txmon_tui.monitor.stats import AmountBins
from txmon_tui.monitor.triage_view import OVERSCAN, silence_lines, triage_feed, triage_status
from txmon_tui.supervise.children import ProcessView
from txmon_tui.supervise.pipeline import Pipeline
from txmon_tui.widgets import present
from txmon_tui.widgets.feed import MAX_RENDERED_ROWS, AlertFeed
from txmon_tui.widgets.histogram import AmountsPlot
from txmon_tui.widgets.panels import HealthPanel, ProcessesPanel, StartupView, ThroughputPanel

HISTORY_SECONDS = 15.0  # the Parquet history changes only when Spark commits a batch


class Painter(App[int]):
    """The base of MonitorApp that repaints the panels (see the module docstring)."""

    # Provided by MonitorApp and OperatorApp.
    session: MonitorSession
    model: MonitorModel
    pipeline: Pipeline | None
    replay: Replay | None
    grouped: bool
    show_silenced: bool
    clock: Callable[[], float]
    thresholds: tuple[float, float]
    rules_text: str
    _halt: threading.Event
    _stopping: bool
    _views: list[ProcessView]
    triage_state: Callable[[], TriageState | None]
    rules_in_force: Callable[[], RulesVersion | None]
    tailing = False  # every alert and metrics record reaches the model from now on
    _status = ""  # the status line as last shown
    _backfill: tuple[int, int] | None = None  # (read, to read) while a backfill runs
    _records_since_repaint = False
    _skipped_tick = False
    # The Parquet history (and pyarrow, ~45 MB) is read only once, and only while, its view is shown.
    _history_started = False
    _history_shown = False
    _history_wake: threading.Event  # the view was shown, or the app ends

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
        elif (recorder := self.session.recorder) is not None:
            status += f" · ● rec {recorder.path.name}"
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

    def on_history_loaded(self, message: HistoryLoaded) -> None:
        """Show the Parquet history's bins."""
        self.query_one("#hist-history", AmountsPlot).set_bins(
            message.edges, message.counts, self.thresholds, message.note)
        self.replot()
