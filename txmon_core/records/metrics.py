"""The BatchMetrics wire format, defined once: topic `metrics`, key = query name, JSON in UTF-8."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import orjson

# Names of the streaming queries, as they appear in metrics. The alerts query also fills the Parquet
# table; each flush into the table is reported under QUERY_PARQUET (batch id = the last one it covers).
QUERY_ALERTS = "alerts"
QUERY_PARQUET = "parquet"
QUERY_RULES = "rules"
QUERY_REALTIME = "alerts-realtime"  # --mode realtime: alerts and dead letters in Real-time Mode
# Every query that keeps a checkpoint (under <data-dir>/checkpoints/<name>).
QUERIES = (QUERY_ALERTS, QUERY_REALTIME, QUERY_RULES)


@dataclass(frozen=True, slots=True)
class BatchMetrics:
    """One micro-batch of one query, as published to the `metrics` topic (key = query name).

    Built from Spark's StreamingQueryProgress. `end_offsets` maps partition → next offset to read from
    `transactions` once the batch is done, so a reader can compute the backlog against the topic's end.
    `large`, `alerts` and `dead_letters` count the batch's records (zero where the query does not route
    that kind); for the rules query, `alerts` counts the rule alerts the batch raised. `query_id` is Spark's
    id of the query, kept across restarts from its checkpoint (a re-run batch has the same id and batch
    id) and new with a fresh checkpoint (whose batch ids start again at 0); "" in older records.
    """

    query: str
    batch_id: int
    timestamp: str
    num_input_rows: int
    input_rows_per_second: float
    processed_rows_per_second: float
    batch_duration_ms: int
    end_offsets: dict[str, int]
    large: int
    alerts: int
    dead_letters: int
    query_id: str = ""


_FIELDS = tuple(field.name for field in fields(BatchMetrics))
_INTS = ("batch_id", "num_input_rows", "batch_duration_ms", "large", "alerts", "dead_letters")
_FLOATS = ("input_rows_per_second", "processed_rows_per_second")


def decode_metrics(value: bytes) -> BatchMetrics:
    """Decode one `metrics` record; raises ValueError, TypeError or KeyError on a malformed one.

    Field types are checked here, as for alerts: a foreign record must not break the monitor's counters.
    """
    data = orjson.loads(value)
    if not isinstance(data, dict):
        raise TypeError("metrics record is not a JSON object")
    decoded: dict[str, Any] = {name: data[name] for name in _FIELDS if name != "query_id"}
    decoded["query_id"] = data.get("query_id") or ""
    for name in _INTS:
        if isinstance(decoded[name], bool) or not isinstance(decoded[name], int):
            raise TypeError(f"metrics {name} is not a whole number")
    for name in _FLOATS:
        if isinstance(decoded[name], bool) or not isinstance(decoded[name], int | float):
            raise TypeError(f"metrics {name} is not a number")
    for name in ("query", "timestamp", "query_id"):
        if not isinstance(decoded[name], str):
            raise TypeError(f"metrics {name} is not a string")
    offsets = decoded["end_offsets"]
    if not isinstance(offsets, dict) or not all(isinstance(o, int) and not isinstance(o, bool)
                                                for o in offsets.values()):
        raise TypeError("metrics end_offsets is not a map of partition to offset")
    return BatchMetrics(**decoded)


def encode_metrics(metrics: BatchMetrics) -> bytes:
    """Encode one `metrics` record."""
    return orjson.dumps(metrics)
