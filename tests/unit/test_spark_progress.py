"""Spark's progress reports → the BatchMetrics records of the `metrics` topic."""

from __future__ import annotations

from typing import Any

from spark_app.progress import batch_metrics
from txmon_core.records.metrics import BatchMetrics, decode_metrics, encode_metrics

# The shape of StreamingQueryProgress.json, trimmed to what matters (Spark 4.2).
PROGRESS: dict[str, Any] = {
    "id": "5c1f1a57-0000-0000-0000-000000000000",
    "runId": "a2b3c4d5-0000-0000-0000-000000000000",
    "name": "alerts",
    "timestamp": "2026-11-25T12:00:00.000Z",
    "batchId": 7,
    "batchDuration": 184,
    "numInputRows": 1200,
    "inputRowsPerSecond": 5000.0,
    "processedRowsPerSecond": 6521.7,
    "durationMs": {"addBatch": 150, "triggerExecution": 184},
    "observedMetrics": {"counts": {"large": 400, "alerts": 110, "dead_letters": 3}},
    "sources": [
        {
            "description": "KafkaV2[Subscribe[transactions]]",
            "startOffset": {"transactions": {"0": 800}},
            "endOffset": {"transactions": {"0": 2000, "1": 5}},
            "latestOffset": {"transactions": {"0": 2000, "1": 5}},
            "numInputRows": 1200,
        }
    ],
    "sink": {"description": "ForeachBatchSink", "numOutputRows": -1},
}


def test_progress_becomes_batch_metrics() -> None:
    metrics = batch_metrics(PROGRESS)
    assert metrics == BatchMetrics(
        query="alerts",
        batch_id=7,
        timestamp="2026-11-25T12:00:00.000Z",
        num_input_rows=1200,
        input_rows_per_second=5000.0,
        processed_rows_per_second=6521.7,
        batch_duration_ms=184,
        end_offsets={"0": 2000, "1": 5},
        large=400,
        alerts=110,
        dead_letters=3,
        query_id="5c1f1a57-0000-0000-0000-000000000000",
    )
    assert decode_metrics(encode_metrics(metrics)) == metrics


def test_idle_progress_without_counts_or_rates() -> None:
    idle = {**PROGRESS, "numInputRows": 0, "inputRowsPerSecond": float("nan"), "processedRowsPerSecond": None,
            "observedMetrics": {}, "name": "parquet"}
    metrics = batch_metrics(idle)
    assert (metrics.query, metrics.num_input_rows, metrics.input_rows_per_second) == ("parquet", 0, 0.0)
    assert metrics.processed_rows_per_second == 0.0
    assert (metrics.large, metrics.alerts, metrics.dead_letters) == (0, 0, 0)


def test_end_offsets_given_as_json_text() -> None:
    source = {**PROGRESS["sources"][0], "endOffset": '{"transactions":{"0":42}}'}
    assert batch_metrics({**PROGRESS, "sources": [source]}).end_offsets == {"0": 42}


def test_a_first_batch_has_no_offsets_for_other_topics() -> None:
    source = {**PROGRESS["sources"][0], "endOffset": {"other": {"0": 1}}}
    assert batch_metrics({**PROGRESS, "sources": [source]}).end_offsets == {}
