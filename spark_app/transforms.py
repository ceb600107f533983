"""Pure DataFrame→DataFrame steps of the job: parse, validate, classify, and shape the sink rows.

Every function works the same on a batch DataFrame (the unit tests) and on a streaming one (the job).
Spark 4 runs ANSI SQL, where a failing cast kills the query, so untrusted input goes only through
`try_` functions and the VARIANT type, which also tells a JSON number from a JSON string. That exact
path is costly per field, so records written the plain way producers write them are read by a typed
parse instead, and only the rest take the VARIANT path (see `typed_fields`). What a valid transaction
is: the Transaction wire format (ARCHITECTURE.md, "Wire formats") within the limits of a
`validation.Validation`; dead_letter.REASONS names every way to miss it.
"""

from __future__ import annotations

import functools
from datetime import timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from spark_app.validation import Validation
from txmon_core import large_table
from txmon_core.records import dead_letter, transaction
from txmon_core.records.alert import LEVEL_ALERT, LEVEL_LARGE, rule_text

# Timestamps leave the job as ISO 8601 UTC with milliseconds, like the transactions' own `ts`.
ISO_UTC_MS = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
# JSON numbers as VARIANT reports them; booleans and strings are not amounts even if castable.
NUMERIC_TYPE = r"^(TINYINT|SMALLINT|INT|BIGINT|FLOAT|DOUBLE|DECIMAL\(\d+,\d+\))$"
# Readers need every field present, null or not: to_json drops null fields unless told otherwise.
JSON_KEEP_NULLS = {"ignoreNullFields": "false"}

# The Spark type of each field's Python type in the wire format.
SPARK_TYPES = {str: "string", float: "double"}
# The same fields with the types a plainly well-formed record gives them, and its parsed `ts`.
TYPED_COLUMNS = (*((name, SPARK_TYPES[kind]) for name, kind in transaction.FIELD_TYPES),
                 ("event_time", "timestamp"))
# The wire format's `ts`: ISO 8601 UTC with milliseconds and `Z` (and then a real instant).
TS_LAYOUT = r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z"
# A transaction written the plain way producers write it, no spaces: `{"tx_id":"…","account_id":"…",
# "merchant":"…","amount":<number>,"currency":"…","ts":"…"}`. A string here holds no quote, no
# backslash (so no escapes), no control character (JSON forbids them raw) and no U+FFFD (which is what
# bytes that are not UTF-8 turn into when Spark reads them as text).
_PLAIN_CHAR = r'[^"\\\x00-\x1f\uFFFD]'
# A number without sign or exponent, with at most 2 decimals.
_PLAIN_AMOUNT = r"(?:0|[1-9][0-9]*)(?:\.[0-9]{1,2})?"


@functools.lru_cache(maxsize=8)
def plain_layout(limits: Validation) -> str:
    """The regular expression of a plain record that also keeps every limit a regular expression can.

    On top of the layout: the amount's form, `ts` in TS_LAYOUT, text fields not blank and within their
    caps, the currency one of the allowed ones (codes are three capital letters: no regex syntax). The
    match that checks the layout checks these for free; what is left are the values' own tests.
    """
    caps = {"tx_id": limits.max_tx_id_chars, "account_id": limits.max_account_id_chars,
            "merchant": limits.max_merchant_chars}
    patterns = {
        **{name: f'"(?! *"){_PLAIN_CHAR}{{1,{cap}}}"' for name, cap in caps.items()},
        "amount": _PLAIN_AMOUNT,
        "currency": '"(?:' + "|".join(limits.currencies) + ')"',
        "ts": f'"{TS_LAYOUT}"',
    }
    return "^\\{" + ",".join(f'"{name}":{patterns[name]}' for name in transaction.FIELDS) + "\\}\\z"


def _plain_parts() -> dict[str, int]:
    """Where each field's value is among the pieces of a plain record split at its quotes."""
    parts, index = {}, 1  # piece 0 is `{`, piece 1 the first field's name
    for name, kind in transaction.FIELD_TYPES:
        # A text value is quoted (`":"` comes between), a number lies in the piece `:<number>,` itself.
        step = 2 if kind is str else 1
        parts[name] = index + step
        index += 2 * step
    return parts


# Where each field is among the pieces of a plain record split at its quotes.
PLAIN_PARTS = _plain_parts()


def _utc(timestamp: Column) -> Column:
    # Spark renders timestamps in the session time zone; shifting by it renders them in UTC whatever
    # the session says (the job also sets the session to UTC).
    return F.to_utc_timestamp(timestamp, F.current_timezone())


def _missing(field: Column) -> Column:
    # A VARIANT field is SQL null when absent and a "variant null" when the JSON says null.
    return field.isNull() | F.is_variant_null(field)


def _blank(text: Column) -> Column:
    return F.trim(text) == ""


def _millis(span: timedelta) -> int:
    """A timedelta in whole milliseconds (what unix_millis counts)."""
    return span // timedelta(milliseconds=1)


# The job's clock as each record is read, in milliseconds since the epoch (see `with_clock`).
CLOCK = "_clock"
# The columns of Spark's Kafka source that the job reads.
SOURCE_COLUMNS = ("key", "value", "topic", "partition", "offset")


def with_clock(source: DataFrame) -> DataFrame:
    """The Kafka source rows the job reads, each with the job's clock (CLOCK) as it reads the row.

    Not current_timestamp: in a streaming query that is the batch's start, a constant that Spark writes
    into the code it generates, so every micro-batch compiled its plan anew (one Janino run, 50-100 ms
    of CPU per batch, most of a small batch's cost). `reflect` is called through a reference from that
    code, which then stays the same from batch to batch. Spark does not fuse such an expression into
    its generated code either (the projection holding it runs on its own), hence this projection of
    its own, which is small; and as the clock is not deterministic, Spark does not merge it into the
    projections that use it, so these keep their generated code.
    """
    clock = F.reflect(F.lit("java.lang.System"), F.lit("currentTimeMillis")).cast("long")
    return source.select(*SOURCE_COLUMNS, clock.alias(CLOCK))


def _ahead_of_clock(event_time: Column) -> Column:
    return F.unix_millis(event_time) - F.col(CLOCK)


def typed_fields(source: DataFrame, validation: Validation | None = None) -> DataFrame:
    """Kafka source rows with the clock (`with_clock`) + each field read once with its final type, and
    `_vouched`.

    `_vouched` is true only for a valid transaction written the plain way producers write it (one
    regular expression, `plain_layout`, checks that): an object of exactly those six keys in that order,
    strings without escapes or control characters, valid UTF-8. Such a record means the same to any
    JSON parser, so its fields are cut out between the quotes, with no parser at all; it is vouched for
    if its values also keep every limit of `validation`. Every other record takes the exact path, which
    alone names reasons.
    """
    limits = validation or Validation()
    raw = F.col("value").cast("string")
    parts = F.split(raw, '"')  # a plain record splits into PLAIN_PARTS pieces
    typed = source.select(
        *SOURCE_COLUMNS, CLOCK,
        raw.rlike(plain_layout(limits)).alias("_plain"),
        # `get` is null past the end: a record that is not plain may split into fewer pieces.
        *(F.get(parts, index).alias(f"_f_{name}") for name, index in PLAIN_PARTS.items()),
    )
    # The amount's piece is `:<number>,`: the number is what lies between.
    amount_part = F.col("_f_amount")
    fields = typed.select(
        *SOURCE_COLUMNS, CLOCK, "_plain",
        *(F.col(f"_f_{name}") for name in transaction.FIELDS if name != "amount"),
        F.substring(amount_part, 2, F.length(amount_part) - 2).try_cast("double").alias("_f_amount"),
        F.try_to_timestamp(F.col("_f_ts")).alias("_f_event_time"),
    )
    f = {name: F.col(f"_f_{name}") for name in (*transaction.FIELDS, "event_time")}
    ahead = _ahead_of_clock(f["event_time"])
    # The exact path's rules the layout cannot settle (see `parse_transactions`).
    valid = (
        (f["amount"] > 0)
        & (f["amount"] <= limits.max_amount)
        & f["event_time"].isNotNull()
        & (ahead <= _millis(limits.max_clock_skew))
        & (-ahead <= _millis(limits.max_age))
    )
    return fields.select(
        *SOURCE_COLUMNS, CLOCK,
        *(F.col(f"_f_{name}") for name, _ in TYPED_COLUMNS),
        F.coalesce(F.col("_plain") & valid, F.lit(False)).alias("_vouched"),
    )


def parse_transactions(
    source: DataFrame, validation: Validation | None = None, fast_path: bool = True
) -> DataFrame:
    """Kafka source rows → one row each: the transaction's fields, `reason` (null when valid) and CLOCK.

    Needs the columns key, value, topic, partition and offset of Spark's Kafka source. Nothing is
    dropped: a bad record keeps its raw value and names the first rule it breaks (dead_letter.REASONS),
    the limits being those of `validation` (its defaults when None). Records that `typed_fields` vouches
    for skip the exact VARIANT path, which decides every other record; `fast_path=False` sends every
    record through the exact path (to compare the two).
    """
    limits = validation or Validation()
    text = F.col("value").cast("string")  # a plain reinterpretation of the bytes: never fails
    clocked = with_clock(source)
    if fast_path:
        typed = typed_fields(clocked, limits)
    else:
        typed = clocked.select(
            *SOURCE_COLUMNS, CLOCK,
            *(F.lit(None).cast(kind).alias(f"_f_{name}") for name, kind in TYPED_COLUMNS),
            F.lit(False).alias("_vouched"),
        )
    vouched = F.col("_vouched")
    # Separate projections, so that the JSON is parsed once and each field looked up once: Spark does
    # not merge projections that would repeat an expensive expression. The VARIANT parse runs only for
    # the records the typed read could not vouch for; for the others every VARIANT column is null.
    docs = typed.select("*", F.when(~vouched, F.try_parse_json(text)).alias("_doc"))
    fields = docs.select(
        "*",
        *(F.try_variant_get("_doc", f"$.{name}", "variant").alias(f"_{name}")
          for name in transaction.FIELDS),
    )
    # try_variant_get(…, "string") also turns a number into text: a text field must be a JSON string.
    strings = {name: F.try_variant_get(f"_{name}", "$", "string") for name in transaction.TEXT_FIELDS}

    def not_string(name: str) -> Column:
        return F.schema_of_variant(f"_{name}") != "STRING"

    tx_id, account_id, merchant, currency, ts_text = (
        strings[name] for name in transaction.TEXT_FIELDS)
    amount = F.try_variant_get("_amount", "$", "double")
    # The amount rounded to cents (VARIANT keeps a JSON decimal exactly): 500.001 becomes 500.00, which
    # as a double is no longer the amount. Null only above 1e36, which is no valid amount anyway.
    cents = F.try_variant_get("_amount", "$", "decimal(38,2)").cast("double")
    event_time = F.try_to_timestamp(ts_text)
    ahead = _ahead_of_clock(event_time)

    exact_reason = (
        F.when(F.col("value").isNull(), dead_letter.REASON_NULL_VALUE)
        .when(F.length("value") == 0, dead_letter.REASON_EMPTY_VALUE)
        .when(~F.is_valid_utf8(text), dead_letter.REASON_NOT_UTF8)
        .when(F.col("_doc").isNull(), dead_letter.REASON_NOT_JSON)
        # Only a record without tx_id can be a non-object; testing that first spares the (costly)
        # schema walk for every valid record.
        .when(_missing(F.col("_tx_id")) & ~F.schema_of_variant("_doc").startswith("OBJECT<"),
              dead_letter.REASON_NOT_OBJECT)
        .when(_missing(F.col("_tx_id")), dead_letter.REASON_MISSING_TX_ID)
        .when(not_string("tx_id"), dead_letter.REASON_TX_ID_NOT_STRING)
        .when(_blank(tx_id), dead_letter.REASON_MISSING_TX_ID)
        .when(F.length(tx_id) > limits.max_tx_id_chars, dead_letter.REASON_TX_ID_TOO_LONG)
        .when(_missing(F.col("_amount")), dead_letter.REASON_MISSING_AMOUNT)
        .when(~F.schema_of_variant("_amount").rlike(NUMERIC_TYPE), dead_letter.REASON_AMOUNT_NOT_NUMBER)
        .when(amount <= 0, dead_letter.REASON_AMOUNT_NOT_POSITIVE)
        # A number too big for a double (1e999) arrives as Infinity, which is > max_amount; Spark
        # orders NaN above every number too, but isnan says so plainly.
        .when(F.isnan(amount) | (amount > limits.max_amount), dead_letter.REASON_AMOUNT_TOO_LARGE)
        .when(~F.coalesce(cents == amount, F.lit(False)), dead_letter.REASON_AMOUNT_TOO_PRECISE)
        .when(_missing(F.col("_ts")), dead_letter.REASON_MISSING_TS)
        # Only a JSON string can be a timestamp here: a bare number would parse as a year.
        .when(not_string("ts") | ~ts_text.rlike(f"^{TS_LAYOUT}\\z") | event_time.isNull(),
              dead_letter.REASON_BAD_TS)
        .when(ahead > _millis(limits.max_clock_skew), dead_letter.REASON_TS_IN_FUTURE)
        .when(-ahead > _millis(limits.max_age), dead_letter.REASON_TS_TOO_OLD)
        .when(_missing(F.col("_account_id")), dead_letter.REASON_MISSING_ACCOUNT_ID)
        .when(not_string("account_id") | _blank(account_id), dead_letter.REASON_BAD_ACCOUNT_ID)
        .when(F.length(account_id) > limits.max_account_id_chars, dead_letter.REASON_ACCOUNT_ID_TOO_LONG)
        .when(_missing(F.col("_merchant")), dead_letter.REASON_MISSING_MERCHANT)
        .when(not_string("merchant") | _blank(merchant), dead_letter.REASON_BAD_MERCHANT)
        .when(F.length(merchant) > limits.max_merchant_chars, dead_letter.REASON_MERCHANT_TOO_LONG)
        .when(_missing(F.col("_currency")), dead_letter.REASON_MISSING_CURRENCY)
        .when(not_string("currency") | ~currency.isin(*limits.currencies),
              dead_letter.REASON_CURRENCY_NOT_ALLOWED)
    )

    def pick(name: str, exact: Column) -> Column:
        return F.when(vouched, F.col(f"_f_{name}")).otherwise(exact).alias(name)

    return fields.select(
        *SOURCE_COLUMNS,
        CLOCK,
        F.when(~vouched, exact_reason).alias("reason"),
        pick("tx_id", tx_id),
        pick("account_id", account_id),
        pick("merchant", merchant),
        pick("amount", amount),
        pick("currency", currency),
        pick("ts", ts_text),
        pick("event_time", event_time),
    )


def classify(parsed: DataFrame, large_threshold: float, alert_threshold: float) -> DataFrame:
    """Add `level` (large | alert | null) and `rule` to parsed rows; both thresholds are strict."""
    valid = F.col("reason").isNull()
    level = (
        F.when(valid & (F.col("amount") > alert_threshold), LEVEL_ALERT)
        .when(valid & (F.col("amount") > large_threshold), LEVEL_LARGE)
    )
    rule = (
        F.when(level == LEVEL_ALERT, rule_text(alert_threshold))
        .when(level == LEVEL_LARGE, rule_text(large_threshold))
    )
    return parsed.withColumn("level", level).withColumn("rule", rule)


def valid_transactions(parsed: DataFrame) -> DataFrame:
    """The rows that passed every rule."""
    return parsed.where(F.col("reason").isNull())


def dead_letters(parsed: DataFrame) -> DataFrame:
    """The rows that broke a rule."""
    return parsed.where(F.col("reason").isNotNull())


def flagged(classified: DataFrame) -> DataFrame:
    """The transactions above the large threshold (level large or alert)."""
    return classified.where(F.col("level").isNotNull())


def _clock_text() -> Column:
    # When the job read the record, as the wire formats spell `detected_at`.
    return F.date_format(_utc(F.timestamp_millis(F.col(CLOCK))), ISO_UTC_MS)


def alert_value(rules_version: int | None = None) -> Column:
    """The JSON of a flagged row as records.alert.Alert spells it."""
    fields = [F.col(name) for name in transaction.FIELDS]
    detected_at = _clock_text().alias("detected_at")
    version = F.lit(rules_version).cast("int").alias("rules_version")
    return F.to_json(F.struct(*fields, "level", "rule", detected_at, version), JSON_KEEP_NULLS)


def dead_letter_value() -> Column:
    """The JSON of a bad row as records.dead_letter.DeadLetter spells it (raw text, or base64)."""
    binary = F.col("reason") == dead_letter.REASON_NOT_UTF8
    raw = F.substring(F.when(binary, F.base64("value")).otherwise(F.col("value").cast("string")),
                      1, dead_letter.MAX_RAW_CHARS)
    encoding = (
        F.when(F.col("value").isNull(), dead_letter.RAW_ENCODING_NONE)
        .when(binary, dead_letter.RAW_ENCODING_BASE64)
        .otherwise(dead_letter.RAW_ENCODING_TEXT)
    )
    detected_at = _clock_text()
    return F.to_json(
        F.struct(
            raw.alias("raw"),
            encoding.alias("raw_encoding"),
            "reason",
            "topic",
            "partition",
            "offset",
            detected_at.alias("detected_at"),
        ),
        JSON_KEEP_NULLS,
    )


def _kafka_columns(alerts_topic: str, dead_letter_topic: str,
                   rules_version: int | None = None) -> dict[str, Column]:
    # A dead letter keeps the source record's key; a flagged row is keyed by its tx_id.
    bad = F.col("reason").isNotNull()
    return {
        "key": F.when(bad, F.substring("key", 1, dead_letter.MAX_KEY_BYTES))
        .otherwise(F.col("tx_id").cast("binary")),
        "value": F.when(bad, dead_letter_value()).otherwise(alert_value(rules_version)),
        "topic": F.when(bad, F.lit(dead_letter_topic)).otherwise(F.lit(alerts_topic)),
    }


def _to_a_sink() -> Column:
    return F.col("reason").isNotNull() | F.col("level").isNotNull()


def kafka_records(classified: DataFrame, alerts_topic: str, dead_letter_topic: str,
                  rules_version: int | None = None) -> DataFrame:
    """Rows for Spark's Kafka sink: flagged rows to `alerts_topic` (key tx_id), bad rows to the DLQ.

    One projection with a per-row `topic` (not a union of two filters, which would read the source
    twice). A dead letter keeps the source record's key, cut to dead_letter.MAX_KEY_BYTES.
    """
    columns = _kafka_columns(alerts_topic, dead_letter_topic, rules_version)
    return classified.where(_to_a_sink()).select(*(column.alias(name) for name, column in columns.items()))


def sink_rows(classified: DataFrame, alerts_topic: str, dead_letter_topic: str,
              small_amount: float | None = None, rules_version: int | None = None) -> DataFrame:
    """Every row some sink needs, once: its Kafka record (key, value, topic) and its fields.

    Flagged rows and dead letters have a Kafka record; with `small_amount`, valid transactions of an
    account under it come too (for the account rules), with a null record. A dead letter's fields
    (`parquet_rows`' columns, the event date as text) are null: it only goes to the dead-letter topic.
    """
    bad = F.col("reason").isNotNull()
    needed = bad | F.col("level").isNotNull()
    if small_amount is not None:
        needed = needed | (~bad & F.col("account_id").isNotNull() & (F.col("amount") < small_amount))
    record = F.col("level").isNotNull() | bad
    field_names = (*transaction.FIELDS, "event_time", "level")
    return classified.where(needed).select(
        *(F.when(record, column).alias(name)
          for name, column in _kafka_columns(alerts_topic, dead_letter_topic, rules_version).items()),
        *(F.when(~bad, F.col(name)).alias(name) for name in field_names),
        F.when(~bad, F.date_format(_utc(F.col("event_time")), "yyyy-MM-dd"))
        .alias(large_table.PARTITION_COLUMN),
    )


def alert_lines(classified: DataFrame) -> DataFrame:
    """The console line of each alert-level transaction: `ALERT <tx_id> <amount> <currency> account <id>`."""
    return classified.where(F.col("level") == LEVEL_ALERT).select(
        F.format_string(
            "ALERT %s %.2f %s account %s",
            "tx_id",
            "amount",
            "currency",
            "account_id",
        ).alias("line")
    )


def parquet_rows(classified: DataFrame) -> DataFrame:
    """Rows for the Parquet sink: every transaction above the large threshold, with its event date."""
    return flagged(classified).select(
        *transaction.FIELDS,
        "event_time",
        "level",
        F.to_date(_utc(F.col("event_time"))).alias(large_table.PARTITION_COLUMN),
    )


def batch_counts() -> list[Column]:
    """Aggregates for `DataFrame.observe`: large, alerts and dead letters in a batch."""
    return [
        F.count_if(F.col("level") == LEVEL_LARGE).alias("large"),
        F.count_if(F.col("level") == LEVEL_ALERT).alias("alerts"),
        F.count_if(F.col("reason").isNotNull()).alias("dead_letters"),
    ]
