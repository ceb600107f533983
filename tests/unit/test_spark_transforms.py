"""The job's pure transforms on small batch DataFrames: dead-letter reasons, strict thresholds, sink rows.

Valid `ts` values are near the test's own clock: the job dead-letters a `ts` more than a week old.
"""

from __future__ import annotations

import base64
import datetime as dt
import re

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from producer.generator import TransactionGenerator
from spark_app import transforms
from spark_app.validation import Validation
from txmon_core import large_table
from txmon_core.records import dead_letter
from txmon_core.records.alert import ALERT_FIELDS, decode_alert
from txmon_core.records.transaction import MAX_AMOUNT, format_ts

SOURCE_SCHEMA = "key binary, value binary, topic string, partition int, offset long"
TODAY = dt.datetime.now(dt.timezone.utc).date()
YESTERDAY = TODAY - dt.timedelta(days=1)
TS = f"{YESTERDAY.isoformat()}T12:00:00.123Z"


def ts_from_now(offset: dt.timedelta) -> str:
    """A wire-format `ts` this far from the test's clock (negative: in the past)."""
    return format_ts(int((dt.datetime.now(dt.timezone.utc) + offset).timestamp() * 1000))
ISO_UTC_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def tx(tx_id: str = "t-1", amount: object = 742.15, **overrides: object) -> bytes:
    """A transaction's JSON as the producer writes it, with fields overridden or removed (None)."""
    record = {"tx_id": tx_id, "account_id": "RO49RZBR0000060012345678", "merchant": "Mega Image",
              "amount": amount, "currency": "RON", "ts": TS}
    record.update(overrides)
    return orjson.dumps({k: v for k, v in record.items() if v is not ...})


def with_amount_text(amount: str) -> bytes:
    """A transaction whose amount is the literal JSON number text `amount` (beyond Python's floats)."""
    return tx(amount=0).replace(b'"amount":0', b'"amount":' + amount.encode())


def source(spark: SparkSession, values: list[bytes | None]) -> DataFrame:
    """Kafka source rows of `transactions`, offsets 0..n-1, in partition 0."""
    rows = [(b"acct", value, "transactions", 0, offset) for offset, value in enumerate(values)]
    return spark.createDataFrame(rows, SOURCE_SCHEMA)


def classified(spark: SparkSession, values: list[bytes | None], large: float = 500.0,
               alert: float = 900.0) -> DataFrame:
    """Parse and classify `values`."""
    return transforms.classify(transforms.parse_transactions(source(spark, values)), large, alert)


# One record per reason, each breaking exactly the rule named (and, where the order matters, later
# rules too, to prove the first broken rule wins).
BAD_RECORDS: list[tuple[bytes | None, str]] = [
    (None, dead_letter.REASON_NULL_VALUE),
    (b"", dead_letter.REASON_EMPTY_VALUE),
    (b"\xff\xfe{\"tx_id\": 1}", dead_letter.REASON_NOT_UTF8),
    (b"\xc3\x28", dead_letter.REASON_NOT_UTF8),
    (b"{\"tx_id\": \"t\", \"amount\": ", dead_letter.REASON_NOT_JSON),
    (b"hello", dead_letter.REASON_NOT_JSON),
    (b"   ", dead_letter.REASON_NOT_JSON),
    (b"[1, 2]", dead_letter.REASON_NOT_OBJECT),
    (b"42", dead_letter.REASON_NOT_OBJECT),
    (b"\"text\"", dead_letter.REASON_NOT_OBJECT),
    (b"null", dead_letter.REASON_NOT_OBJECT),
    (tx(tx_id=...), dead_letter.REASON_MISSING_TX_ID),
    (tx(tx_id=None, amount="x"), dead_letter.REASON_MISSING_TX_ID),
    (tx(tx_id=""), dead_letter.REASON_MISSING_TX_ID),
    (tx(tx_id="   "), dead_letter.REASON_MISSING_TX_ID),
    (tx(tx_id=42), dead_letter.REASON_TX_ID_NOT_STRING),  # never coerced to "42"
    (tx(tx_id=4.2, amount="x"), dead_letter.REASON_TX_ID_NOT_STRING),
    (tx(tx_id=True), dead_letter.REASON_TX_ID_NOT_STRING),
    (tx(tx_id=["t-1"]), dead_letter.REASON_TX_ID_NOT_STRING),
    (tx(tx_id="t" * 65), dead_letter.REASON_TX_ID_TOO_LONG),
    (tx(tx_id="é" * 65, amount=-1), dead_letter.REASON_TX_ID_TOO_LONG),  # characters, not bytes
    (tx(amount=...), dead_letter.REASON_MISSING_AMOUNT),
    (tx(amount=None, ts=None), dead_letter.REASON_MISSING_AMOUNT),
    (tx(amount="950"), dead_letter.REASON_AMOUNT_NOT_NUMBER),
    (tx(amount=True), dead_letter.REASON_AMOUNT_NOT_NUMBER),
    (tx(amount=[950]), dead_letter.REASON_AMOUNT_NOT_NUMBER),
    (tx(amount=0), dead_letter.REASON_AMOUNT_NOT_POSITIVE),
    (tx(amount=-0.0), dead_letter.REASON_AMOUNT_NOT_POSITIVE),
    (tx(amount=-12.5), dead_letter.REASON_AMOUNT_NOT_POSITIVE),
    (with_amount_text("-1e999"), dead_letter.REASON_AMOUNT_NOT_POSITIVE),
    (with_amount_text("1e999"), dead_letter.REASON_AMOUNT_TOO_LARGE),
    (tx(amount=MAX_AMOUNT * 10), dead_letter.REASON_AMOUNT_TOO_LARGE),
    (with_amount_text("1" + "0" * 40), dead_letter.REASON_AMOUNT_TOO_LARGE),
    (tx(amount=500.001), dead_letter.REASON_AMOUNT_TOO_PRECISE),  # was flagged and shown as 500.00
    (with_amount_text("0.015"), dead_letter.REASON_AMOUNT_TOO_PRECISE),
    (with_amount_text("500.005"), dead_letter.REASON_AMOUNT_TOO_PRECISE),
    (with_amount_text("5.00001e2"), dead_letter.REASON_AMOUNT_TOO_PRECISE),
    (with_amount_text("123.456789012345678901234567890123456789"), dead_letter.REASON_AMOUNT_TOO_PRECISE),
    (tx(amount=500.001, ts=None), dead_letter.REASON_AMOUNT_TOO_PRECISE),
    (tx(ts=...), dead_letter.REASON_MISSING_TS),
    (tx(ts=None), dead_letter.REASON_MISSING_TS),
    (tx(ts="yesterday"), dead_letter.REASON_BAD_TS),
    (tx(ts="2026-13-45T99:00:00.000Z"), dead_letter.REASON_BAD_TS),
    (tx(ts="2026-02-30T12:00:00.000Z"), dead_letter.REASON_BAD_TS),
    (tx(ts=1764072000), dead_letter.REASON_BAD_TS),
    (tx(ts=TS.replace(".123Z", "Z")), dead_letter.REASON_BAD_TS),  # no milliseconds
    (tx(ts=TS[:-1]), dead_letter.REASON_BAD_TS),  # no Z
    (tx(ts=TS.replace("Z", "+00:00")), dead_letter.REASON_BAD_TS),
    (tx(ts=TS.replace("T", " ")), dead_letter.REASON_BAD_TS),
    (tx(ts=TS.replace(".123", ".1234")), dead_letter.REASON_BAD_TS),
    (tx(ts=TS + "\n"), dead_letter.REASON_BAD_TS),
    (tx(ts=" " + TS), dead_letter.REASON_BAD_TS),
    (tx(ts="9999-12-31T23:59:59.999Z"), dead_letter.REASON_TS_IN_FUTURE),
    (tx(ts=ts_from_now(dt.timedelta(hours=1))), dead_letter.REASON_TS_IN_FUTURE),
    # Hours ahead: these are made when the module loads, and the suite may reach them much later.
    (tx(ts=ts_from_now(dt.timedelta(hours=2)), account_id=None), dead_letter.REASON_TS_IN_FUTURE),
    (tx(ts="0001-01-01T00:00:00.000Z"), dead_letter.REASON_TS_TOO_OLD),
    (tx(ts=ts_from_now(-dt.timedelta(days=8))), dead_letter.REASON_TS_TOO_OLD),
    (tx(account_id=...), dead_letter.REASON_MISSING_ACCOUNT_ID),
    (tx(account_id=None, merchant=None), dead_letter.REASON_MISSING_ACCOUNT_ID),
    (tx(account_id=""), dead_letter.REASON_BAD_ACCOUNT_ID),
    (tx(account_id="  "), dead_letter.REASON_BAD_ACCOUNT_ID),
    (tx(account_id=49), dead_letter.REASON_BAD_ACCOUNT_ID),
    (tx(account_id={"iban": "RO49"}), dead_letter.REASON_BAD_ACCOUNT_ID),
    (tx(account_id="R" * 65), dead_letter.REASON_ACCOUNT_ID_TOO_LONG),
    (tx(merchant=...), dead_letter.REASON_MISSING_MERCHANT),
    (tx(merchant=None, currency="EUR"), dead_letter.REASON_MISSING_MERCHANT),
    (tx(merchant=""), dead_letter.REASON_BAD_MERCHANT),
    (tx(merchant=7), dead_letter.REASON_BAD_MERCHANT),
    (tx(merchant="m" * 201), dead_letter.REASON_MERCHANT_TOO_LONG),
    (tx(merchant="☕" * 201), dead_letter.REASON_MERCHANT_TOO_LONG),
    (tx(currency=...), dead_letter.REASON_MISSING_CURRENCY),
    (tx(currency=None), dead_letter.REASON_MISSING_CURRENCY),
    (tx(currency="EUR"), dead_letter.REASON_CURRENCY_NOT_ALLOWED),  # was judged as RON
    (tx(currency="ron"), dead_letter.REASON_CURRENCY_NOT_ALLOWED),
    (tx(currency=""), dead_letter.REASON_CURRENCY_NOT_ALLOWED),
    (tx(currency=946), dead_letter.REASON_CURRENCY_NOT_ALLOWED),
    (tx(currency="RON" * 100_000), dead_letter.REASON_CURRENCY_NOT_ALLOWED),
]


def test_every_reason_is_covered() -> None:
    assert {reason for _, reason in BAD_RECORDS} == set(dead_letter.REASONS)


@pytest.mark.parametrize("fast_path", [True, False], ids=["typed read", "exact path"])
def test_each_bad_record_gets_its_first_broken_rule(spark: SparkSession, fast_path: bool) -> None:
    values = [value for value, _ in BAD_RECORDS]
    parsed = transforms.parse_transactions(source(spark, values), fast_path=fast_path)
    got = {row.offset: row.reason for row in parsed.select("offset", "reason").collect()}
    expected = {offset: reason for offset, (_, reason) in enumerate(BAD_RECORDS)}
    mismatches = {values[o]: (got.get(o), expected[o]) for o in expected if got.get(o) != expected[o]}
    assert not mismatches, f"value: (got, expected) {mismatches}"


def test_valid_and_dead_letters_add_up_to_the_input(spark: SparkSession) -> None:
    values = [value for value, _ in BAD_RECORDS] + [tx(f"ok-{i}", amount=i + 0.5) for i in range(20)]
    parsed = transforms.parse_transactions(source(spark, values))
    valid = transforms.valid_transactions(parsed).count()
    dead = transforms.dead_letters(parsed).count()
    assert (valid, dead) == (20, len(BAD_RECORDS))
    assert valid + dead == len(values)


def test_thresholds_are_strict(spark: SparkSession) -> None:
    amounts = [1, 500, 500.0, 500.01, 900, 900.0, 900.01, 1000]
    frame = classified(spark, [tx(f"b-{i}", amount=a) for i, a in enumerate(amounts)])
    expected = spark.createDataFrame(
        [
            ("b-0", 1.0, None, None),
            ("b-1", 500.0, None, None),
            ("b-2", 500.0, None, None),
            ("b-3", 500.01, "large", "amount>500"),
            ("b-4", 900.0, "large", "amount>500"),
            ("b-5", 900.0, "large", "amount>500"),
            ("b-6", 900.01, "alert", "amount>900"),
            ("b-7", 1000.0, "alert", "amount>900"),
        ],
        "tx_id string, amount double, level string, rule string",
    )
    assertDataFrameEqual(frame.select("tx_id", "amount", "level", "rule"), expected)


def test_rules_name_the_configured_thresholds(spark: SparkSession) -> None:
    frame = classified(spark, [tx("a", amount=120), tx("b", amount=300)], large=100, alert=250.5)
    rules = {row.tx_id: (row.level, row.rule) for row in frame.collect()}
    assert rules == {"a": ("large", "amount>100"), "b": ("alert", "amount>250.5")}


def test_extra_fields_are_ignored_and_order_does_not_matter(spark: SparkSession) -> None:
    reordered = b'{"ts": "' + TS.encode() + b'", "amount": 950.5, "zzz": {"nested": [1, 2]}, "tx_id": "r-1",'
    reordered += b' "currency": "RON", "merchant": "Lidl", "account_id": "ACC", "note": null}'
    frame = classified(spark, [reordered, tx("e-1", amount=600, extra="x", more=[1])])
    rows = {row.tx_id: row for row in frame.collect()}
    assert rows["r-1"].reason is None and rows["r-1"].level == "alert" and rows["r-1"].merchant == "Lidl"
    assert rows["e-1"].reason is None and rows["e-1"].level == "large"
    assert rows["r-1"].event_time == dt.datetime.combine(YESTERDAY, dt.time(12, 0, 0, 123000))


def test_alert_records_decode_as_formats_alert(spark: SparkSession) -> None:
    frame = classified(spark, [tx("a-1", amount=950.25), tx("l-1", amount=700), tx("n-1", amount=10)])
    records = transforms.kafka_records(frame, "alerts", "transactions.dlq").collect()
    assert {r.topic for r in records} == {"alerts"}
    alerts = {r.key.decode(): decode_alert(r.value.encode()) for r in records}
    assert set(alerts) == {"a-1", "l-1"}
    alert = alerts["a-1"]
    assert (alert.tx_id, alert.amount, alert.level, alert.rule) == ("a-1", 950.25, "alert", "amount>900")
    assert (alert.account_id, alert.merchant, alert.currency, alert.ts) == (
        "RO49RZBR0000060012345678", "Mega Image", "RON", TS)
    assert ISO_UTC_MS.match(alert.detected_at), alert.detected_at
    assert alerts["l-1"].level == "large" and alerts["l-1"].rule == "amount>500"
    # Exactly the format's fields, no more: readers may be strict (`tx_ids` belongs to rule alerts only).
    assert set(orjson.loads(records[0].value)) == set(ALERT_FIELDS) - {"tx_ids"}


def test_limits_are_the_validation_given(spark: SparkSession) -> None:
    recent = ts_from_now(-dt.timedelta(minutes=1))
    values = [tx("v-eur", currency="EUR", ts=recent), tx("v-usd", currency="USD", ts=recent),
              tx("v-ahead", ts=ts_from_now(dt.timedelta(minutes=2))),
              tx("v-old", ts=ts_from_now(-dt.timedelta(hours=2))),
              tx("v-ids", account_id="A" * 31, ts=recent), tx("v" * 9, ts=recent),
              tx("v-shop", merchant="M" * 13, ts=recent)]
    limits = Validation(max_clock_skew=dt.timedelta(minutes=1), max_age=dt.timedelta(hours=1),
                        currencies=("RON", "EUR"), max_tx_id_chars=8, max_account_id_chars=30,
                        max_merchant_chars=12)
    for fast_path in (True, False):
        parsed = transforms.parse_transactions(source(spark, values), limits, fast_path=fast_path)
        reasons = [row.reason for row in parsed.orderBy("offset").collect()]
        assert reasons == [None, dead_letter.REASON_CURRENCY_NOT_ALLOWED, dead_letter.REASON_TS_IN_FUTURE,
                           dead_letter.REASON_TS_TOO_OLD, dead_letter.REASON_ACCOUNT_ID_TOO_LONG,
                           dead_letter.REASON_TX_ID_TOO_LONG, dead_letter.REASON_MERCHANT_TOO_LONG], fast_path
    # The defaults take all but the foreign currencies.
    default = [row.reason for row in transforms.parse_transactions(source(spark, values)).orderBy("offset")
               .collect()]
    assert default == [dead_letter.REASON_CURRENCY_NOT_ALLOWED] * 2 + [None] * 5


def test_ts_window_edges_follow_the_job_clock(spark: SparkSession) -> None:
    # A second inside each edge is valid, a minute beyond it is not (the clock is read per record).
    # Inside an edge by a margin that only shrinks (ahead) or stays (behind) while the job runs.
    values = [tx("e-1", ts=ts_from_now(dt.timedelta(minutes=4, seconds=59))),
              tx("e-2", ts=ts_from_now(dt.timedelta(minutes=30))),
              tx("e-3", ts=ts_from_now(-dt.timedelta(days=7) + dt.timedelta(minutes=20))),
              tx("e-4", ts=ts_from_now(-dt.timedelta(days=7, minutes=1)))]
    parsed = transforms.parse_transactions(source(spark, values))
    assert [row.reason for row in parsed.orderBy("offset").collect()] == [
        None, dead_letter.REASON_TS_IN_FUTURE, None, dead_letter.REASON_TS_TOO_OLD]


def test_a_valid_alert_holds_every_field(spark: SparkSession) -> None:
    frame = classified(spark, [tx("f-1", amount=990), tx("f-2", amount=990, merchant=None)])
    records = transforms.kafka_records(frame, "alerts", "transactions.dlq").collect()
    by_topic = {r.topic: r for r in records}
    alert = decode_alert(by_topic["alerts"].value.encode())
    assert None not in (alert.account_id, alert.merchant, alert.currency)
    assert dead_letter.decode_dead_letter(by_topic["transactions.dlq"].value.encode()).reason == (
        dead_letter.REASON_MISSING_MERCHANT)


# The Kafka client's default max.request.size: a sink record above it fails the query, on every restart.
MAX_REQUEST_SIZE = 1_048_576


def test_a_near_1_mib_record_makes_a_bounded_dead_letter(spark: SparkSession) -> None:
    # Valid but for a field's length: the alert's key and value both held the 600 KB tx_id (1.2 MB).
    long_id = tx("h" * 600_000, amount=990)
    long_merchant = tx("h-2", amount=990, merchant="\x01" * 150_000)  # 900 KB of escapes
    controls = b"\x01" * 1_000_000  # each escaped to six bytes in the dead letter's JSON, under a 900 KB key
    values = [long_id, long_merchant, controls]
    keys = [b"acct", b"acct", b"k" * 900_000]
    rows = [(key, value, "transactions", 0, offset)
            for offset, (key, value) in enumerate(zip(keys, values, strict=True))]
    frame = transforms.classify(transforms.parse_transactions(spark.createDataFrame(rows, SOURCE_SCHEMA)),
                                500.0, 900.0)
    records = transforms.kafka_records(frame, "alerts", "transactions.dlq").collect()
    assert {r.topic for r in records} == {"transactions.dlq"}
    for record in records:
        size = len(record.key) + len(record.value.encode())
        assert size < MAX_REQUEST_SIZE - 1024, f"a dead letter of {size} bytes"
    letters = [dead_letter.decode_dead_letter(r.value.encode()) for r in records]
    assert sorted((d.offset, d.reason) for d in letters) == [
        (0, dead_letter.REASON_TX_ID_TOO_LONG), (1, dead_letter.REASON_MERCHANT_TOO_LONG),
        (2, dead_letter.REASON_NOT_JSON)]
    assert sorted(len(r.key) for r in records) == [4, 4, dead_letter.MAX_KEY_BYTES]


def test_dead_letter_records_decode_as_formats_dead_letter(spark: SparkSession) -> None:
    values: list[bytes | None] = [None, b"", b"\xff\xfeoops", b"nope", tx(amount="950")]
    frame = classified(spark, values)
    records = transforms.kafka_records(frame, "alerts", "transactions.dlq").collect()
    assert len(records) == len(values) and {r.topic for r in records} == {"transactions.dlq"}
    letters = {d.offset: d for d in (dead_letter.decode_dead_letter(r.value.encode()) for r in records)}
    assert all(r.key == b"acct" for r in records)  # a dead letter keeps the source record's key
    assert letters[0].raw is None and letters[0].raw_encoding == dead_letter.RAW_ENCODING_NONE
    assert letters[1].raw == "" and letters[1].raw_encoding == dead_letter.RAW_ENCODING_TEXT
    assert letters[2].raw_encoding == dead_letter.RAW_ENCODING_BASE64
    assert base64.b64decode(letters[2].raw) == b"\xff\xfeoops"
    assert letters[3].raw == "nope" and letters[3].reason == dead_letter.REASON_NOT_JSON
    assert orjson.loads(letters[4].raw) == orjson.loads(values[4])
    assert letters[4].reason == dead_letter.REASON_AMOUNT_NOT_NUMBER
    for offset, letter in letters.items():
        assert (letter.topic, letter.partition, letter.offset) == ("transactions", 0, offset)
        assert ISO_UTC_MS.match(letter.detected_at), letter.detected_at


def test_parquet_rows_hold_only_flagged_transactions_with_their_event_date(spark: SparkSession) -> None:
    values = [tx("p-1", amount=500), tx("p-2", amount=500.01, ts=f"{YESTERDAY}T23:59:59.999Z"),
              tx("p-3", amount=901, ts=f"{TODAY}T00:00:00.000Z"), b"junk"]
    rows = transforms.parquet_rows(classified(spark, values))
    assert tuple(rows.columns) == large_table.COLUMNS
    expected = spark.createDataFrame(
        [("p-2", 500.01, "large", YESTERDAY), ("p-3", 901.0, "alert", TODAY)],
        f"tx_id string, amount double, level string, {large_table.PARTITION_COLUMN} date",
    )
    assertDataFrameEqual(rows.select("tx_id", "amount", "level", large_table.PARTITION_COLUMN), expected)


def test_event_date_is_the_utc_date_whatever_the_session_zone(spark: SparkSession) -> None:
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "Asia/Tokyo")
    try:
        evening = tx("z-1", amount=999, ts=f"{YESTERDAY}T20:00:00.000Z")
        rows = transforms.parquet_rows(classified(spark, [evening]))
        (row,) = rows.collect()
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)
    assert row[large_table.PARTITION_COLUMN] == YESTERDAY


def test_alert_lines(spark: SparkSession) -> None:
    frame = classified(spark, [tx("c-1", amount=950.5, account_id="ACC9"), tx("c-2", amount=600)])
    lines = [row.line for row in transforms.alert_lines(frame).collect()]
    assert lines == ["ALERT c-1 950.50 RON account ACC9"]


def test_batch_counts(spark: SparkSession) -> None:
    values = [tx("k-1", amount=600), tx("k-2", amount=950), tx("k-3", amount=960), b"bad", None,
              tx("k-4", amount=10)]
    (row,) = classified(spark, values).agg(*transforms.batch_counts()).collect()
    assert (row.large, row.alerts, row.dead_letters) == (1, 2, 2)


def plain(tx_id: str = "f-1", amount: str = "742.15", merchant: str = '"Mega Image"', ts: str = f'"{TS}"',
          account_id: str = '"RO49"', currency: str = '"RON"') -> bytes:
    """A record in the producers' own layout (no spaces), each field given as its raw JSON text."""
    return (f'{{"tx_id":"{tx_id}","account_id":{account_id},"merchant":{merchant},"amount":{amount},'
            f'"currency":{currency},"ts":{ts}}}').encode()


# Records that look like the producers' layout but are not plainly valid (or not quite that layout):
# the typed read must not vouch for them, and the exact path decides.
NEAR_PLAIN: list[bytes] = [
    plain(amount='"600"'),  # a string amount
    plain(amount="007"), plain(amount="+5"), plain(amount=".5"), plain(amount="5."),  # not JSON numbers
    plain(amount="NaN"), plain(amount="Infinity"), plain(amount="-1"), plain(amount="0"),
    plain(amount="1e999"), plain(amount="1" + "0" * 40), plain(amount="true"), plain(amount="[600]"),
    plain(amount='600,"amount":700'),  # a duplicate key
    plain().replace(b"}", b',"x":1,"x":2}'),  # a duplicate extra key
    plain().replace(b"}", b',"x":{"a":1,"a":2}}'),  # a duplicate key deeper down
    plain(tx_id="  "), plain(tx_id=r"t\u0031"), plain(merchant=r'"Caf\u00e9"'), plain(merchant=r'"a\"b"'),
    plain(merchant="null"), plain(merchant="42"), plain(account_id="1.0e2"), plain(currency="{}"),
    plain(ts='"yesterday"'), plain(ts="1764072000"), plain(ts="null"),
    plain().replace(b'"tx_id":"f-1"', b'"tx_id":12'),
    plain() + b" ", plain() + b"\n", plain() + b"x", b" " + plain(), plain().replace(b"{", b"{ ", 1),
    plain().replace(b'"', b"'"),  # single quotes
    plain(merchant='"Mega\x01Image"'),  # a raw control character
    plain().replace(b"Mega", b"Me\xffga"), plain().replace(b"Mega", b"Meg\xc3"),  # not UTF-8
    # Valid, but not plain: an exponent, or trailing zeros beyond 2 decimals (the exact path decides).
    plain(amount="5E2"), plain(amount="742.150"),
    # Plain, but outside the limits: the typed read must leave the reason to the exact path.
    plain(amount="500.001"), plain(amount="0.00"), plain(ts=f'"{TS[:-5]}Z"'),
    plain(ts='"9999-12-31T23:59:59.999Z"'), plain(ts='"2000-01-01T00:00:00.000Z"'),
    plain(currency='"EUR"'), plain(currency='"ron"'), plain(currency='""'),
    plain(tx_id="t" * 65), plain(account_id='""'), plain(account_id='" "'), plain(account_id=f'"{"A" * 65}"'),
    plain(merchant='""'), plain(merchant=f'"{"m" * 201}"'),
]
# Of those, the ones the exact path accepts.
NEAR_PLAIN_VALID = [plain(amount="5E2"), plain(amount="742.150")]


def vouched(spark: SparkSession, values: list[bytes | None]) -> list[bool]:
    """Whether the typed read vouches for each value, in order."""
    typed = transforms.typed_fields(transforms.with_clock(source(spark, values)))
    rows = typed.select("offset", "_vouched").collect()
    return [row._vouched for row in sorted(rows, key=lambda row: row.offset)]


def parse(frame: DataFrame, fast_path: bool) -> DataFrame:
    """parse_transactions, through the typed read or through the exact path alone."""
    return transforms.parse_transactions(frame, fast_path=fast_path)


def both_paths(spark: SparkSession, values: list[bytes | None]) -> tuple[dict[int, tuple], dict[int, tuple]]:
    """The parsed rows of `values` by offset, through the typed read and through the exact path alone."""
    frame = source(spark, values)
    # As text: Python's datetime cannot hold every instant Spark's can (year 1 in a local time zone).
    # The clock differs by when each path read the row.
    fast, exact = ({row.offset: tuple(row) for row in parse(frame, on).drop(transforms.CLOCK)
                    .withColumn("event_time", F.col("event_time").cast("string")).collect()}
                   for on in (True, False))
    return fast, exact


def test_the_typed_read_vouches_for_the_producers_records(spark: SparkSession) -> None:
    generator = TransactionGenerator(seed=3)
    values = generator.batch(300)[1] + [tx("o-1", amount=950.5), tx("o-2", merchant="Café ☕ 東京")]
    values += [plain(amount="1.00"), plain(amount="0.01"), plain(amount="999999999.99"), plain(amount="12.5")]
    values += [plain(tx_id="t" * 64, account_id=f'"{"A" * 64}"', merchant=f'"{"☕" * 200}"')]
    assert all(vouched(spark, values))


def test_the_typed_read_vouches_for_nothing_unplain(spark: SparkSession) -> None:
    values = NEAR_PLAIN + [value for value, _ in BAD_RECORDS]
    flags = vouched(spark, values)
    assert not any(flags), [values[i] for i, flag in enumerate(flags) if flag]
    reasons = [row.reason for row in transforms.parse_transactions(source(spark, NEAR_PLAIN_VALID)).collect()]
    assert reasons == [None] * len(NEAR_PLAIN_VALID)


def test_typed_read_and_exact_path_agree(spark: SparkSession) -> None:
    generator = TransactionGenerator(seed=4)
    values = NEAR_PLAIN + [value for value, _ in BAD_RECORDS] + generator.batch(50)[1]
    values += [tx("r-1"), plain(amount="5E2"), plain(amount="123.456789012345678901234567890123456789")]
    fast, exact = both_paths(spark, values)
    assert len(fast) == len(values)
    assert {o: (values[o], fast[o]) for o in fast if fast[o] != exact[o]} == {}


json_texts = st.sampled_from(['"x"', '" "', '""', "null", "0", "-0.0", "600", "950.5", "1e3", "1E+2", "true",
                              "[]", "{}", '"950"', f'"{TS}"', '"2026-11-25"', "1e999", r'"\u0041"', "NaN"])


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.builds(plain, tx_id=st.sampled_from(["a", " ", "", "a\\", 'a"', "é"]), amount=json_texts,
                          merchant=json_texts, ts=json_texts, account_id=json_texts, currency=json_texts),
                min_size=1, max_size=40))
def test_typed_read_and_exact_path_agree_on_any_field_texts(spark: SparkSession, values: list[bytes]) -> None:
    fast, exact = both_paths(spark, list(values))
    assert fast == exact
