"""Property-based tests (hypothesis) of every decoder the monitor uses and of the job's transforms.

Whatever bytes arrive: nothing crashes, every record is processed or a dead letter with a reason, and
the counts add up; the typed read and the exact path give every record the same reason and fields;
a transaction the Python decoder accepts gets the reason the job's limits (spark_app.validation) say.
Plus the bad-input matrix: a 1 MB value, a tombstone, a non-UTF-8 key, duplicate tx_ids, far-future
and far-past `ts`, foreign currencies, sub-cent amounts, near-1 MiB fields, unicode merchants,
reordered and extra fields.
"""

from __future__ import annotations

import dataclasses
import string
import time
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from producer.transaction import FormatError, Transaction, decode, format_cents, format_ts, parse_ts
from spark_app import formats, transforms
from spark_app.validation import Validation
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.tail import TailBatch

SOURCE_SCHEMA = "key binary, value binary, topic string, partition int, offset long"
# What the monitor's Tail catches around the format decoders: anything else would kill its worker.
DECODE_ERRORS = (orjson.JSONDecodeError, KeyError, TypeError, ValueError)
# The Kafka client's default max.request.size: a sink record above it fails the query, on every restart.
MAX_REQUEST_SIZE = 1_048_576

# orjson writes integers within 64 bits; bigger ones come as raw bytes (st.binary) and JSON text below.
json_scalars = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
                | st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
LIMITS = Validation()
START_MS = time.time_ns() // 1_000_000
timestamps = st.datetimes().map(lambda d: f"{d.year:04d}" + d.strftime("-%m-%dT%H:%M:%S.")
                                + f"{d.microsecond // 1000:03d}Z")
# Event times near the clock, inside and on both sides of the job's window (a week back, 5 minutes ahead).
recent_timestamps = st.integers(-8 * 86_400_000, 10 * 60_000).map(lambda ms: format_ts(START_MS + ms))
tx_ids = st.text(string.ascii_letters + string.digits + "-", min_size=1, max_size=24)
merchants = st.text(max_size=40)  # every unicode character, RTL, emoji and combining marks included


def around(cap: int) -> st.SearchStrategy[str]:
    """Texts just within and just beyond a field cap."""
    return st.text(min_size=cap - 2, max_size=cap + 2)


@st.composite
def transactions(draw: st.DrawFn) -> Transaction:
    """A transaction the Python decoder accepts: any unicode text fields, any ts from year 1 to 9999.

    Mostly within the job's limits, with fields and amounts drawn on both sides of each limit.
    """
    cents = draw(st.integers(1, int(formats.MAX_AMOUNT * 100)))
    amount = draw(st.just(float(format_cents(cents))) | st.integers(1, 10**7).map(lambda m: m / 1000))
    return Transaction(draw(tx_ids | around(LIMITS.max_tx_id_chars)),
                       draw(st.text(max_size=30) | around(LIMITS.max_account_id_chars)),
                       draw(merchants | around(LIMITS.max_merchant_chars)), amount,
                       draw(st.sampled_from(["RON", "RON", "RON", "EUR", "ron", ""])),
                       draw(recent_timestamps | recent_timestamps | timestamps))


# How close to an edge of the ts window the clock's progress during a test could move a record across.
EDGE_MARGIN_MS = 60_000


def limit_reason(tx: Transaction) -> str | None:
    """The reason the job gives a transaction the Python decoder accepted (None: valid), from the limits.

    "unsure" for a ts too near an edge of the window to tell what the batch's clock said.
    """
    if not tx.tx_id.strip(" "):  # Spark's trim takes spaces only
        return formats.REASON_MISSING_TX_ID
    if len(tx.tx_id) > LIMITS.max_tx_id_chars:
        return formats.REASON_TX_ID_TOO_LONG
    if tx.amount > LIMITS.max_amount:
        return formats.REASON_AMOUNT_TOO_LARGE
    if float(Decimal(repr(tx.amount)).quantize(Decimal("0.01"), ROUND_HALF_UP)) != tx.amount:
        return formats.REASON_AMOUNT_TOO_PRECISE
    ahead_ms = parse_ts(tx.ts).timestamp() * 1000 - time.time_ns() // 1_000_000
    skew_ms, age_ms = (limit / timedelta(milliseconds=1) for limit in (LIMITS.max_clock_skew, LIMITS.max_age))
    if abs(ahead_ms - skew_ms) < EDGE_MARGIN_MS or abs(-ahead_ms - age_ms) < EDGE_MARGIN_MS:
        return "unsure"
    if ahead_ms > skew_ms:
        return formats.REASON_TS_IN_FUTURE
    if -ahead_ms > age_ms:
        return formats.REASON_TS_TOO_OLD
    for name, cap, bad, too_long in (
            ("account_id", LIMITS.max_account_id_chars, formats.REASON_BAD_ACCOUNT_ID,
             formats.REASON_ACCOUNT_ID_TOO_LONG),
            ("merchant", LIMITS.max_merchant_chars, formats.REASON_BAD_MERCHANT,
             formats.REASON_MERCHANT_TOO_LONG)):
        text = getattr(tx, name)
        if not text.strip(" "):
            return bad
        if len(text) > cap:
            return too_long
    if tx.currency not in LIMITS.currencies:
        return formats.REASON_CURRENCY_NOT_ALLOWED
    return None


@st.composite
def perturbed(draw: st.DrawFn) -> bytes:
    """A transaction's JSON with fields dropped, retyped, added or reordered."""
    record: dict[str, Any] = dataclasses.asdict(draw(transactions()))
    for name in list(record):
        action = draw(st.sampled_from(["keep", "keep", "keep", "drop", "null", "retype"]))
        if action == "drop":
            del record[name]
        elif action == "null":
            record[name] = None
        elif action == "retype":
            record[name] = draw(json_values)
    record.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3)))
    items = draw(st.permutations(list(record.items())))
    return orjson.dumps(dict(items))


raw_values = (
    st.none()
    | st.binary(max_size=60)
    | json_values.map(orjson.dumps)
    | transactions().map(Transaction.encode)
    | perturbed()
)


# --- decoders (pure Python, cheap: many examples) ---------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(raw_values)
def test_transaction_decode_returns_or_says_why(value: bytes | None) -> None:
    try:
        tx = decode(value)
    except FormatError as exc:
        assert str(exc)  # a reason, never an empty message
        return
    assert tx.amount > 0 and tx.tx_id is not None


@settings(max_examples=200, deadline=None)
@given(transactions())
def test_transaction_round_trips(tx: Transaction) -> None:
    assert decode(tx.encode()) == tx


@settings(max_examples=300, deadline=None)
@given(raw_values)
def test_format_decoders_fail_only_as_the_monitor_expects(value: bytes | None) -> None:
    for decoder in (formats.decode_alert, formats.decode_dead_letter, formats.decode_metrics):
        try:
            decoder(value if value is not None else b"null")
        except DECODE_ERRORS:
            pass


alert_fields = st.fixed_dictionaries({name: json_values for name in formats.Alert.__slots__})


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(alert_fields | st.builds(dict, tx_id=tx_ids, account_id=st.text(), merchant=merchants,
                                         amount=st.floats(0.01, 1e9), currency=st.just("RON"),
                                         ts=timestamps, level=st.sampled_from(formats.LEVELS),
                                         rule=st.just("amount>900"), detected_at=timestamps),
                max_size=8))
def test_the_monitor_survives_any_decodable_alert(records: list[dict[str, Any]]) -> None:
    """An alert decoded from the topic, whatever its field types, never breaks the monitor's model."""
    model = MonitorModel()
    alerts = []
    for record in records:
        try:
            alerts.append(formats.decode_alert(orjson.dumps(record)))
        except DECODE_ERRORS:
            continue
    model.apply(TailBatch(alerts=alerts))
    snapshot = model.snapshot()
    assert snapshot.alerts_large + snapshot.alerts_alert <= len(alerts)


@settings(max_examples=100, deadline=None)
@given(st.builds(formats.BatchMetrics, query=st.sampled_from([formats.QUERY_ALERTS, formats.QUERY_PARQUET]),
                 batch_id=st.integers(0, 2**62), timestamp=timestamps,
                 num_input_rows=st.integers(0, 2**40),
                 input_rows_per_second=st.floats(0, 1e9), processed_rows_per_second=st.floats(0, 1e9),
                 batch_duration_ms=st.integers(0, 2**40),
                 end_offsets=st.dictionaries(st.integers(0, 99).map(str), st.integers(0, 2**62)),
                 large=st.integers(0, 2**31), alerts=st.integers(0, 2**31),
                 dead_letters=st.integers(0, 2**31)))
def test_metrics_round_trip(metrics: formats.BatchMetrics) -> None:
    assert formats.decode_metrics(formats.encode_metrics(metrics)) == metrics


# --- the Spark transforms on batch DataFrames (a JVM round trip per example: few examples) ----------

def source(spark: SparkSession, rows: list[tuple[bytes | None, bytes | None]]) -> DataFrame:
    """Kafka source rows (key, value) of `transactions`, offsets 0..n-1."""
    records = [(k, v, "transactions", 0, i) for i, (k, v) in enumerate(rows)]
    return spark.createDataFrame(records, SOURCE_SCHEMA)


PARSED_COLUMNS = ("offset", "reason", *transforms.TRANSACTION_FIELDS, "event_time")


def parsed_rows(frame: DataFrame) -> dict[int, tuple]:
    """Parsed rows by offset, `event_time` as text (Python's datetime cannot hold year 1 in every zone)."""
    rows = frame.withColumn("event_time", F.col("event_time").cast("string")).select(*PARSED_COLUMNS)
    return {row.offset: tuple(row) for row in rows.collect()}


def run_transforms(spark: SparkSession, rows: list[tuple[bytes | None, bytes | None]]) -> dict[str, Any]:
    """Parse, classify and shape the sink rows of one batch; collect what each sink would get.

    Also parses the batch through the exact path alone (`exact`), to compare with the typed read.
    """
    frame = source(spark, rows)
    parsed = transforms.parse_transactions(frame)
    classified = transforms.classify(parsed, 500.0, 900.0).cache()
    try:
        return {
            "rows": classified.select("offset", "reason", "tx_id", "amount", "level").collect(),
            "kafka": transforms.kafka_records(classified, "alerts", "dlq").collect(),
            "parquet": transforms.parquet_rows(classified).count(),
            "typed": parsed_rows(classified),
            "exact": parsed_rows(transforms.parse_transactions(frame, fast_path=False)),
        }
    finally:
        classified.unpersist()


def check_batch(rows: list[tuple[bytes | None, bytes | None]], out: dict[str, Any]) -> None:
    """Every record processed or a dead letter with a reason; sinks get exactly their share."""
    assert sorted(r.offset for r in out["rows"]) == list(range(len(rows))), "a record vanished or doubled"
    bad = [r for r in out["rows"] if r.reason is not None]
    good = [r for r in out["rows"] if r.reason is None]
    assert all(r.reason in formats.REASONS for r in bad)
    for r in good:
        assert r.tx_id and 0 < r.amount <= formats.MAX_AMOUNT
        assert r.level == (formats.LEVEL_ALERT if r.amount > 900 else formats.LEVEL_LARGE if r.amount > 500
                           else None)
    flagged = [r for r in good if r.level is not None]
    topics_ = [k.topic for k in out["kafka"]]
    assert topics_.count("dlq") == len(bad) and topics_.count("alerts") == len(flagged)
    assert out["parquet"] == len(flagged)
    for record in out["kafka"]:
        size = len(record.key or b"") + len(record.value)
        assert size < MAX_REQUEST_SIZE, f"a {record.topic} record of {size} bytes"
        if record.topic == "alerts":
            assert formats.decode_alert(record.value).level in formats.LEVELS
        else:
            assert formats.decode_dead_letter(record.value).reason in formats.REASONS
    # The typed read only vouches for what the exact path accepts with the same values: both paths give
    # every record the same reason and fields (a record near a ts edge may see two clocks: skipped).
    by_offset = {r.offset: r for r in out["rows"]}
    differ = {o: (rows[o][1], out["typed"][o], out["exact"][o]) for o in out["typed"]
              if out["typed"][o] != out["exact"][o]}
    # Where the Python decoder accepts a record, the job gives the reason the limits say.
    for offset, (_key, value) in enumerate(rows):
        try:
            tx = decode(value)
        except FormatError:
            continue
        expected = limit_reason(tx)
        if expected == "unsure":
            differ.pop(offset, None)
            continue
        assert by_offset[offset].reason == expected, (value, by_offset[offset].reason, expected)
        if expected is None:
            assert by_offset[offset].amount == tx.amount
    assert not differ, f"value: (typed, exact) {differ}"


keys = st.none() | st.binary(max_size=12)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(keys, raw_values), min_size=1, max_size=20))
def test_transforms_route_every_record(spark: SparkSession,
                                       rows: list[tuple[bytes | None, bytes | None]]) -> None:
    check_batch(rows, run_transforms(spark, rows))


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(st.tuples(keys, transactions().map(Transaction.encode)), min_size=1, max_size=40))
def test_both_paths_judge_decodable_transactions_alike(spark: SparkSession,
                                                      rows: list[tuple[bytes | None, bytes | None]]) -> None:
    """Records in the producers' layout, on both sides of every limit: the typed read's own ground."""
    check_batch(rows, run_transforms(spark, rows))


# --- the bad-input matrix --------------------------------------------------------------------------

RECENT_TS = format_ts(START_MS - 60_000)


def tx_json(tx_id: object = "m-1", amount: float = 950.0, ts: str = RECENT_TS,
            merchant: str = "Mega Image", **extra: Any) -> bytes:
    return orjson.dumps({"tx_id": tx_id, "account_id": "RO49", "merchant": merchant, "amount": amount,
                         "currency": "RON", "ts": ts, **extra})


MATRIX: dict[str, tuple[tuple[bytes | None, bytes | None], str | None]] = {
    "1 MB garbage": ((b"k", b"x" * 1_000_000), formats.REASON_NOT_JSON),
    # Spark's JSON parser reads the leading `""` as a string and ignores the rest (Python's says "not
    # JSON"): a dead letter either way, which is what matters, and its JSON doubles in size.
    "1 MB of quotes": ((b"k", b'"' * 1_000_000), formats.REASON_NOT_OBJECT),
    "1 MB extra field": ((b"k", tx_json("m-big", pad="p" * 1_000_000)), None),
    "near-1 MiB tx_id": ((b"k", tx_json("m" * 1_000_000)), formats.REASON_TX_ID_TOO_LONG),
    "near-1 MiB merchant": ((b"k", tx_json("m-shop", merchant="\x7f" * 1_000_000)),
                            formats.REASON_MERCHANT_TOO_LONG),
    "near-1 MiB key": ((b"k" * 1_000_000, b"\x1b" * 40_000), formats.REASON_NOT_JSON),
    "tombstone": ((b"k", None), formats.REASON_NULL_VALUE),
    "non-UTF-8 key": ((b"\xff\xfe\x80", tx_json("m-key")), None),
    "non-UTF-8 key, bad value": ((b"\xff\xfe\x80", b"{"), formats.REASON_NOT_JSON),
    "far future ts": ((b"k", tx_json("m-future", ts="9999-12-31T23:59:59.999Z")),
                      formats.REASON_TS_IN_FUTURE),
    "far past ts": ((b"k", tx_json("m-past", ts="0001-01-01T00:00:00.000Z")), formats.REASON_TS_TOO_OLD),
    "ts without milliseconds": ((b"k", tx_json("m-sec", ts=RECENT_TS[:-5] + "Z")), formats.REASON_BAD_TS),
    "numeric tx_id": ((b"k", tx_json(42)), formats.REASON_TX_ID_NOT_STRING),
    "sub-cent amount": ((b"k", tx_json("m-cent", 500.001)), formats.REASON_AMOUNT_TOO_PRECISE),
    "foreign currency": ((b"k", tx_json("m-eur", currency="EUR")), formats.REASON_CURRENCY_NOT_ALLOWED),
    "unicode merchant": ((b"k", tx_json("m-uni", merchant="Café ☕ 東京 שלום 👩‍👩‍👧 e\u0301")), None),
    "reordered and extra fields": ((b"k", orjson.dumps({"ts": RECENT_TS, "x": [1], "currency": "RON",
                                                       "amount": 901, "tx_id": "m-re", "y": None,
                                                       "merchant": "eMAG", "account_id": "RO49"})), None),
}


def test_bad_input_matrix(spark: SparkSession) -> None:
    rows = [row for row, _ in MATRIX.values()]
    duplicates = [(b"k", tx_json("m-dup", 600.0)), (b"k", tx_json("m-dup", 600.0))]
    out = run_transforms(spark, rows + duplicates)
    check_batch(rows + duplicates, out)
    reasons = {r.offset: r.reason for r in out["rows"]}
    for offset, (name, (_row, reason)) in enumerate(MATRIX.items()):
        assert reasons[offset] == reason, name
    letters = [formats.decode_dead_letter(k.value) for k in out["kafka"] if k.topic == "dlq"]
    assert max(len(d.raw or "") for d in letters) == formats.MAX_RAW_CHARS
    # Duplicate tx_ids are two records: both processed (readers drop repeats by tx_id).
    assert [r.tx_id for r in out["rows"] if r.tx_id == "m-dup"] == ["m-dup", "m-dup"]
    alerts = {a.tx_id: a for a in (formats.decode_alert(k.value) for k in out["kafka"]
                                   if k.topic == "alerts")}
    assert alerts["m-uni"].merchant == "Café ☕ 東京 שלום 👩‍👩‍👧 e\u0301"
    assert set(alerts) == {"m-big", "m-key", "m-uni", "m-re", "m-dup"}


@pytest.mark.parametrize("value", [None, b"", b"\xff", b"{}", b"[]", b"1e999", tx_json(amount=-1.0)])
def test_decoders_on_matrix_edges(value: bytes | None) -> None:
    with pytest.raises(FormatError):
        decode(value)
