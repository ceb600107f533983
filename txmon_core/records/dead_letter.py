"""The DeadLetter wire format, defined once: topic `transactions.dlq`, JSON in UTF-8, and every reason.

Every record read from `transactions` is either processed or written here with the first rule it
breaks: nothing is silently dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import orjson

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


_FIELDS = tuple(field.name for field in fields(DeadLetter))


def decode_dead_letter(value: bytes) -> DeadLetter:
    """Decode one `transactions.dlq` record."""
    data = orjson.loads(value)
    return DeadLetter(**{name: data[name] for name in _FIELDS})
