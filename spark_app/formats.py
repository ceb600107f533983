"""The formats the Spark job writes (alerts, dead letters, metrics), defined once for every reader.

Imports neither pyspark nor Textual: the monitor and the tests read these formats through this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from txmon_core import large_table

DEFAULT_LARGE_THRESHOLD = 500.0
DEFAULT_ALERT_THRESHOLD = 900.0

# Levels of a flagged transaction: "large" is above the large threshold and not above the alert
# threshold; "alert" is above the alert threshold. Both comparisons are strict.
LEVEL_LARGE = "large"
LEVEL_ALERT = "alert"
TRANSACTION_LEVELS = (LEVEL_LARGE, LEVEL_ALERT)
# Levels of an account rule's alert (txmon_core.rules): `velocity` is too many flagged transactions in
# a window, `pattern` a small transaction followed by a large one (card testing).
LEVEL_VELOCITY = "velocity"
LEVEL_PATTERN = "pattern"
RULE_LEVELS = (LEVEL_VELOCITY, LEVEL_PATTERN)
LEVELS = TRANSACTION_LEVELS + RULE_LEVELS

# Why a record went to the dead-letter topic. One reason per record: the first rule it breaks, in this order
# (the limits, from spark_app.validation: clock skew and age of `ts`, allowed currencies, field caps).
REASON_NULL_VALUE = "null value"
REASON_EMPTY_VALUE = "empty value"
REASON_NOT_UTF8 = "not UTF-8"
REASON_NOT_JSON = "not JSON"
REASON_NOT_OBJECT = "not a JSON object"
REASON_MISSING_TX_ID = "missing or null tx_id"
REASON_TX_ID_NOT_STRING = "tx_id not a string"
REASON_TX_ID_TOO_LONG = "tx_id too long"
REASON_MISSING_AMOUNT = "missing or null amount"
REASON_AMOUNT_NOT_NUMBER = "amount not a number"
REASON_AMOUNT_NOT_POSITIVE = "amount not positive"
REASON_AMOUNT_TOO_LARGE = "amount not finite or too large"
REASON_AMOUNT_TOO_PRECISE = "amount with more than 2 decimals"
REASON_MISSING_TS = "missing or null ts"
REASON_BAD_TS = "ts not ISO 8601 UTC with milliseconds and Z"
REASON_TS_IN_FUTURE = "ts in the future"
REASON_TS_TOO_OLD = "ts too old"
REASON_MISSING_ACCOUNT_ID = "missing or null account_id"
REASON_BAD_ACCOUNT_ID = "account_id not a non-blank string"
REASON_ACCOUNT_ID_TOO_LONG = "account_id too long"
REASON_MISSING_MERCHANT = "missing or null merchant"
REASON_BAD_MERCHANT = "merchant not a non-blank string"
REASON_MERCHANT_TOO_LONG = "merchant too long"
REASON_MISSING_CURRENCY = "missing or null currency"
REASON_CURRENCY_NOT_ALLOWED = "currency not allowed"
REASONS = (
    REASON_NULL_VALUE,
    REASON_EMPTY_VALUE,
    REASON_NOT_UTF8,
    REASON_NOT_JSON,
    REASON_NOT_OBJECT,
    REASON_MISSING_TX_ID,
    REASON_TX_ID_NOT_STRING,
    REASON_TX_ID_TOO_LONG,
    REASON_MISSING_AMOUNT,
    REASON_AMOUNT_NOT_NUMBER,
    REASON_AMOUNT_NOT_POSITIVE,
    REASON_AMOUNT_TOO_LARGE,
    REASON_AMOUNT_TOO_PRECISE,
    REASON_MISSING_TS,
    REASON_BAD_TS,
    REASON_TS_IN_FUTURE,
    REASON_TS_TOO_OLD,
    REASON_MISSING_ACCOUNT_ID,
    REASON_BAD_ACCOUNT_ID,
    REASON_ACCOUNT_ID_TOO_LONG,
    REASON_MISSING_MERCHANT,
    REASON_BAD_MERCHANT,
    REASON_MERCHANT_TOO_LONG,
    REASON_MISSING_CURRENCY,
    REASON_CURRENCY_NOT_ALLOWED,
)
# Amounts above this are not card transactions but corrupt data (or an attack): dead letters.
MAX_AMOUNT = 1_000_000_000.0

# How a dead letter's `raw` is spelled: the value's text, its base64 when it was not UTF-8, or None
# for a null value (a tombstone).
RAW_ENCODING_TEXT = "utf-8"
RAW_ENCODING_BASE64 = "base64"
RAW_ENCODING_NONE = "none"
# A dead letter keeps at most this many characters of the raw value (a multiple of 4, so that a cut
# base64 text still decodes): escaped into JSON, even a value of quotes or control characters stays
# below the broker's default message.max.bytes (1 MiB), which would otherwise fail the whole batch.
MAX_RAW_CHARS = 100_000
# A dead letter keeps at most this many bytes of the source record's key, for the same reason: a record
# of a near-1 MiB key and a value of control characters would otherwise make a dead letter above it.
MAX_KEY_BYTES = 1_024

# The Parquet output under <data-dir>/large/: one row per transaction above the large threshold,
# partitioned by the UTC date of its event time (folders event_date=YYYY-MM-DD). `ts` is the text the
# transaction carried, `event_time` the parsed instant (UTC), `amount` a double.
# Layout and commit protocol: txmon_core.large_table.
PARQUET_DIR_NAME = large_table.DIR_NAME
PARQUET_PARTITION_COLUMN = large_table.PARTITION_COLUMN
PARQUET_COLUMNS = (
    "tx_id",
    "account_id",
    "merchant",
    "amount",
    "currency",
    "ts",
    "event_time",
    "level",
    PARQUET_PARTITION_COLUMN,
)

# Names of the streaming queries, as they appear in metrics. The alerts query also fills the Parquet
# table; each flush into the table is reported under QUERY_PARQUET (batch id = the last one it covers).
QUERY_ALERTS = "alerts"
QUERY_PARQUET = "parquet"
QUERY_RULES = "rules"
QUERY_REALTIME = "alerts-realtime"  # --mode realtime: alerts and dead letters in Real-time Mode
# Every query that keeps a checkpoint (under <data-dir>/checkpoints/<name>).
QUERIES = (QUERY_ALERTS, QUERY_REALTIME, QUERY_RULES)


@dataclass(frozen=True, slots=True)
class Alert:
    """A flagged transaction or an account rule's alert, as written to the `alerts` topic (key = tx_id).

    A rule alert (level velocity | pattern) carries the fields of the transaction that completed the
    rule, except `tx_id`, which is the alert's own id (rule_alert_id) so that the key still equals
    `tx_id` and readers that drop repeats by `tx_id` keep every alert; `tx_ids` lists the transactions
    that make up the match, oldest first. A flagged transaction has no `tx_ids` (empty).
    Decoded (decode_alert), a text field that was null on the wire is "" and none holds a control character.
    """

    tx_id: str
    account_id: str
    merchant: str
    amount: float
    currency: str
    ts: str
    level: str
    rule: str
    detected_at: str
    tx_ids: tuple[str, ...] = ()
    rules_version: int | None = None  # the rules version that judged it (`txmon-spark --live-rules`)


def rule_alert_id(level: str, tx_id: str) -> str:
    """The id (and key) of a rule alert: its level, then the tx_id of the transaction that completed it.

    Stable, so a re-delivered alert has the same id; the level comes first, so no rule alert's id
    starts like a transaction's.
    """
    return f"{level}:{tx_id}"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record of `transactions` that could not be processed, as written to `transactions.dlq`.

    `raw` is the value as text, base64 when it was not UTF-8 (`raw_encoding` says which), or None for
    a null value (a tombstone).
    """

    raw: str | None
    raw_encoding: str
    reason: str
    topic: str
    partition: int
    offset: int
    detected_at: str


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


# Alert fields every alert carries. The job requires every transaction field, but alerts written by
# earlier versions may hold null account_id, merchant or currency: readers still accept those.
_ALERT_REQUIRED_TEXT = ("tx_id", "ts", "level")
# Alert fields that records written before they existed lack: they decode to the field's default.
_ALERT_OPTIONAL = ("tx_ids", "rules_version")
# Characters that must never reach a terminal, an email header or a log line as they came: C0 and C1
# controls and DEL (escape sequences, CR/LF, BEL), line/paragraph separators, and the bidi controls that
# reorder what is shown (Trojan Source, CVE-2021-42574).
_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_text(value: str | None) -> str:
    """Text from a record, safe to show: null as "", each unsafe character as a visible `\\xNN`/`\\uNNNN`.

    Escaped rather than dropped, so an operator sees that a record carried them. Decoding applies it to
    every text field of an alert; readers of other stores (the report) apply it to what they print.
    """
    if value is None:
        return ""
    if value.isascii() and value.isprintable():
        return value  # the common case, without the regular expression
    return _UNSAFE_TEXT.sub(_escape, value)


def decode_alert(value: bytes) -> Alert:
    """Decode one `alerts` record; raises ValueError, TypeError or KeyError on a malformed one.

    Field types are checked here, so that a foreign or corrupt record is counted as undecodable by the
    monitor instead of breaking its counters. Every text field comes out through safe_text(): a null
    optional field is "", and no control or bidi character reaches any reader.
    """
    data = orjson.loads(value)
    if not isinstance(data, dict):
        raise TypeError("alert is not a JSON object")
    tx_ids = data.get("tx_ids")
    tx_ids = [] if tx_ids is None else tx_ids
    if not isinstance(tx_ids, list) or not all(isinstance(t, str) for t in tx_ids):
        raise TypeError("alert tx_ids is not a list of strings")
    rules_version = data.get("rules_version")
    if rules_version is not None and (isinstance(rules_version, bool) or not isinstance(rules_version, int)):
        raise TypeError("alert rules_version is not a whole number")
    fields: dict[str, Any] = {}
    for name in Alert.__slots__:
        if name in _ALERT_OPTIONAL:
            continue
        field_value = data[name]
        if name == "amount":
            if isinstance(field_value, bool) or not isinstance(field_value, int | float):
                raise TypeError("alert amount is not a number")
        elif name in _ALERT_REQUIRED_TEXT and not isinstance(field_value, str):
            raise TypeError(f"alert {name} is not a string")
        elif field_value is not None and not isinstance(field_value, str):
            raise TypeError(f"alert {name} is neither a string nor null")
        else:
            field_value = safe_text(field_value)
        fields[name] = field_value
    if fields["level"] not in LEVELS:
        raise ValueError(f"alert level {fields['level']!r} is not one of {LEVELS}")
    return Alert(**fields, tx_ids=tuple(map(safe_text, tx_ids)), rules_version=rules_version)


def encode_alert(alert: Alert) -> bytes:
    """Encode one `alerts` record (the Spark job encodes flagged transactions in the JVM, alike)."""
    return orjson.dumps(alert)


def decode_dead_letter(value: bytes) -> DeadLetter:
    """Decode one `transactions.dlq` record."""
    data = orjson.loads(value)
    return DeadLetter(**{name: data[name] for name in DeadLetter.__slots__})


_METRICS_INTS = ("batch_id", "num_input_rows", "batch_duration_ms", "large", "alerts", "dead_letters")
_METRICS_FLOATS = ("input_rows_per_second", "processed_rows_per_second")


def decode_metrics(value: bytes) -> BatchMetrics:
    """Decode one `metrics` record; raises ValueError, TypeError or KeyError on a malformed one.

    Field types are checked here, as for alerts: a foreign record must not break the monitor's counters.
    """
    data = orjson.loads(value)
    if not isinstance(data, dict):
        raise TypeError("metrics record is not a JSON object")
    fields: dict[str, Any] = {name: data[name] for name in BatchMetrics.__slots__ if name != "query_id"}
    fields["query_id"] = data.get("query_id") or ""
    for name in _METRICS_INTS:
        if isinstance(fields[name], bool) or not isinstance(fields[name], int):
            raise TypeError(f"metrics {name} is not a whole number")
    for name in _METRICS_FLOATS:
        if isinstance(fields[name], bool) or not isinstance(fields[name], int | float):
            raise TypeError(f"metrics {name} is not a number")
    for name in ("query", "timestamp", "query_id"):
        if not isinstance(fields[name], str):
            raise TypeError(f"metrics {name} is not a string")
    offsets = fields["end_offsets"]
    if not isinstance(offsets, dict) or not all(isinstance(o, int) and not isinstance(o, bool)
                                                for o in offsets.values()):
        raise TypeError("metrics end_offsets is not a map of partition to offset")
    return BatchMetrics(**fields)


def encode_metrics(metrics: BatchMetrics) -> bytes:
    """Encode one `metrics` record."""
    return orjson.dumps(metrics)
