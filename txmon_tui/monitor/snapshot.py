"""What the model hands out at each repaint: every figure of the screen at one instant, read-only.

The screen, the headless summary and the metrics endpoint all read a Snapshot; none reads the model's
internals. No Textual, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from txmon_tui.monitor.health import FunnelStage


@dataclass(frozen=True)
class Snapshot:
    """Every figure of the screen at one instant (totals since start or the last clear)."""

    at: float
    produced: int
    processed: int
    flagged: int
    alerts: int
    alerts_large: int
    alerts_alert: int
    alerts_rule: int  # velocity and pattern alerts of the account rules
    dead_letters: int
    parquet_rows: int
    duplicates: int
    undecodable: int
    batches: int
    produced_rate: float
    input_rate: float
    processed_rate: float
    flagged_rate: float
    alerts_rate: float
    dead_letter_rate: float
    batch_duration_ms: int | None
    backlog: int | None
    latency_p50: float | None
    latency_p99: float | None
    # Where the latency goes, (p50, p99) each: event time → Spark's batch start (waiting for a
    # batch), batch start → received here (the batch itself and delivery through `alerts`).
    to_batch: tuple[float | None, float | None]
    batch_to_here: tuple[float | None, float | None]
    bin_edges: list[float]
    live_bins: list[int]
    total_bins: list[int]
    sparklines: dict[str, list[float]]
    funnel: list[FunnelStage]
    warnings: list[str]
    paused: bool
    new_while_paused: int
    broker_reachable: bool
    brokers: int | None = None
