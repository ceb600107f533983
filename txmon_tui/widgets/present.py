"""From the core's state (model snapshot, pipeline views) to what the widgets show; no computation of figures.

The model computes every number; this module only picks, labels and formats them for the panels.
"""

from __future__ import annotations

from collections.abc import Sequence

from spark_app.formats import safe_text
from txmon_sinks.health import SinkHealth
from txmon_tui.monitor.feed import FeedFilter, FeedRow
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.snapshot import Snapshot
from txmon_tui.monitor.triage_view import TriagedFeed
from txmon_tui.supervise.children import ProcessView
from txmon_tui.supervise.config import PipelineConfig
from txmon_tui.supervise.pipeline import Pipeline
from txmon_tui.supervise.steps import Step, StepState
from txmon_tui.widgets import formatting as fmt
from txmon_tui.widgets.feed import FeedLine
from txmon_tui.widgets.panels import Gauge, ProcessLine, StepLine
from txmon_tui.widgets.screens import FilterValues

PANEL_TITLES = {"feed": "1 Feed", "throughput": "2 Rates", "histograms": "3 Histogram", "health": "4 Health",
                "processes": "5 Processes"}


def feed_line(row: FeedRow) -> FeedLine:
    """One feed row as the table shows it."""
    alert = row.alert
    return FeedLine(alert.tx_id, alert.account_id, alert.merchant, alert.amount, alert.currency, alert.ts,
                    alert.level, row.latency)


def triaged_lines(feed: TriagedFeed) -> list[FeedLine]:
    """The feed's rows with their triage marks; silenced ones (when shown) dimmed."""
    return [FeedLine(a.tx_id, a.account_id, a.merchant, a.amount, a.currency, a.ts, a.level, r.row.latency,
                     r.mark, r.silenced) for r in feed.rows if (a := r.row.alert)]


def feed_lines(model: MonitorModel, limit: int) -> list[FeedLine]:
    """The newest `limit` rows (frozen while paused, filtered), newest first."""
    return [feed_line(row) for row in model.feed(limit)]


def feed_status(snap: Snapshot, feed_filter: FeedFilter) -> str:
    """The line above the feed: paused with +N new, the filter, totals by level."""
    parts = [f"{snap.alerts_alert:,} ALERT · {snap.alerts_large:,} large"]
    if snap.alerts_rule:
        parts.append(f"{snap.alerts_rule:,} rule")
    if snap.duplicates:
        parts.append(f"{snap.duplicates:,} repeats dropped")
    if feed_filter.active:
        parts.append("filter: " + filter_text(feed_filter))
    if snap.paused:
        parts.insert(0, f"PAUSED +{snap.new_while_paused:,} new (space resumes)")
    return " · ".join(parts)


def filter_text(feed_filter: FeedFilter) -> str:
    """The active filter in a few words."""
    words = []
    if feed_filter.account:
        words.append(f"account~{feed_filter.account}")
    if feed_filter.merchant:
        words.append(f"merchant~{feed_filter.merchant}")
    if feed_filter.min_amount is not None:
        words.append(f"amount≥{feed_filter.min_amount:g}")
    if feed_filter.level:
        words.append(f"level={feed_filter.level}")
    return " ".join(words)


def filter_values(feed_filter: FeedFilter) -> FilterValues:
    """The form's values for the active filter."""
    return FilterValues(feed_filter.account or "", feed_filter.merchant or "", feed_filter.min_amount,
                        feed_filter.level)


def to_filter(values: FilterValues) -> FeedFilter:
    """The model's filter for what the form returned."""
    return FeedFilter(values.account, values.merchant, values.min_amount, values.level)


def gauges(snap: Snapshot) -> list[Gauge]:
    """The throughput panel's lines."""
    spark = snap.sparklines
    batch = f"{snap.batch_duration_ms:,} ms" if snap.batch_duration_ms is not None else "–"
    return [
        Gauge("produced", fmt.rate(snap.produced_rate), spark.get("produced", ())),
        Gauge("spark input", fmt.rate(snap.input_rate), spark.get("input", ())),
        Gauge("processed", fmt.rate(snap.processed_rate), spark.get("processed", ())),
        Gauge("batch", batch, spark.get("batch_ms", ())),
        Gauge("backlog", fmt.count(snap.backlog), spark.get("backlog", ())),
        Gauge("flagged", fmt.rate(snap.flagged_rate), spark.get("flagged", ())),
        Gauge("alerts", fmt.rate(snap.alerts_rate), spark.get("alerts", ())),
        Gauge("dead letters", fmt.rate(snap.dead_letter_rate), spark.get("dead_letters", ())),
        Gauge("total produced", fmt.count(snap.produced)),
        Gauge("total processed", fmt.count(snap.processed)),
        Gauge("total flagged", fmt.count(snap.flagged)),
        Gauge("total alerts", fmt.count(snap.alerts)),
        Gauge("total dead", fmt.count(snap.dead_letters)),
    ]


def sink_lines(healths: Sequence[SinkHealth], now: float) -> list[tuple[str, str]]:
    """Each alert sink's state and one line about it (sent, pending, the last error), for the health panel.

    The last error may quote a server's answer (an SMTP reply, a webhook's response): shown as safe text.
    """
    return [(health.state, safe_text(health.describe(now))) for health in healths]


def funnel(snap: Snapshot) -> list[tuple[str, int | None]]:
    """The funnel's stages, produced → Parquet rows."""
    return [(stage.name, stage.count) for stage in snap.funnel]


def warnings(snap: Snapshot, pipeline: Pipeline | None) -> list[str]:
    """The model's warnings, plus a startup failure if there was one."""
    found = list(snap.warnings)
    if pipeline is not None and pipeline.error:
        found.insert(0, f"startup failed: {pipeline.error}")
    if not snap.broker_reachable and not any("unreachable" in w for w in found):
        found.append("Kafka broker not answering")
    return [safe_text(warning) for warning in found]  # errors may quote a child's or a server's text


# The startup step that starts each child: until it ran, a child that is not running is "waiting".
STARTED_BY = {"broker": "broker", "spark": "spark session", "producer": "producer"}


def process_state(view: ProcessView, steps: Sequence[Step]) -> str:
    """The state word for a process: `waiting` while its startup step has not run yet."""
    step = next((s for s in steps if s.name == STARTED_BY.get(view.name)), None)
    if view.pid is None and step is not None and step.state in (StepState.PENDING, StepState.RUNNING):
        return "waiting" if step.state is StepState.PENDING else "starting"
    return view.state.value


def process_line(view: ProcessView, steps: Sequence[Step]) -> ProcessLine:
    """One process as the panel shows it; a failed one shows its last error first."""
    lines = list(view.last_lines)
    if view.last_error:
        lines = [*lines[-1:], f"error: {view.last_error}"]
    note = view.restart.text() if view.restart is not None else ""
    return ProcessLine(view.name, process_state(view, steps), view.pid, view.uptime, lines, note)


def steps(pipeline: Pipeline | None) -> list[StepLine]:
    """The startup steps, with a failed step's reason in its name."""
    if pipeline is None:
        return []
    return [StepLine(step.name if not step.detail else f"{step.name}: {step.detail}", step.state.value,
                     step.elapsed) for step in pipeline.steps]


def starting(pipeline: Pipeline | None, snap: Snapshot) -> bool:
    """Whether the startup view should be up: until every step ended, or a step failed."""
    if pipeline is None:
        return False
    data_flows = snap.alerts > 0 or snap.batches > 0
    return any(_still_starting(step, pipeline.config, data_flows) for step in pipeline.steps)


def _still_starting(step: Step, config: PipelineConfig, data_flows: bool) -> bool:
    if step.state is StepState.FAILED:
        return True
    if step.name == "first batch":
        # Without our Spark job a first batch may never come: that is a health matter, not startup.
        # Its metrics come only once the batch is done, after its alerts: alerts on screen say enough.
        return config.run_spark and not data_flows and step.state in (StepState.PENDING, StepState.RUNNING)
    return step.state in (StepState.PENDING, StepState.RUNNING)


def status_line(snap: Snapshot, pipeline: Pipeline | None, views: Sequence[ProcessView], tailing: bool,
                stopping: bool) -> str:
    """The top line: where we are connected and what the children do."""
    if stopping:
        return "Stopping producer, Spark job and broker…"
    if pipeline is None:
        where = "not connected"
    elif pipeline.bootstrap is None:
        where = "starting the broker…"
    else:
        attached = pipeline.config.bootstrap is not None  # a broker the user named, not our own
        where = f"{'attached to' if attached else 'kafka'} {pipeline.bootstrap}"
        where += "" if tailing else " (connecting)"
        if snap.brokers is not None and snap.brokers != 1:
            where += f" ({snap.brokers} brokers)"
        if pipeline.config.read_only:
            where += " · read-only"
    parts = [f"txmon · {where}"]
    if pipeline is not None:
        steps = pipeline.steps
        for view in views:
            if view.name != "broker":
                parts.append(f"{view.name} {process_state(view, steps)}")
        if pipeline.config.run_producer:
            parts.append(f"rate {pipeline.config.rate:g}/s")
    if snap.warnings:
        parts.append(f"⚠ {len(snap.warnings)}")
    return " · ".join(parts)
