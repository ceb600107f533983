"""The Transaction wire format, defined once: topic `transactions`, key = account_id, JSON in UTF-8.

    {"tx_id": "p3f9a1c04b2e7-000000000042", "account_id": "RO49RZBR0000060012345678",
     "merchant": "Mega Image", "amount": 742.15, "currency": "RON", "ts": "2026-11-25T12:00:00.123Z"}

`tx_id` is unique across producer runs (a random per-run prefix and a sequence number); `amount` is a
positive number with at most 2 decimals; `ts` is the event time, ISO 8601 UTC with milliseconds and `Z`.
Readers (the tests, the monitor) decode with `decode`; the generator writes the same bytes by hand, fast,
and the Spark job reads them with a schema made from FIELD_TYPES.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, get_type_hints

import orjson

CURRENCY = "RON"
# Amounts above this are not card transactions but corrupt data (or an attack): dead letters.
MAX_AMOUNT = 1_000_000_000.0

TX_ID = "tx_id"
ACCOUNT_ID = "account_id"
MERCHANT = "merchant"
AMOUNT = "amount"
CURRENCY_FIELD = "currency"
TS = "ts"
# The wire format of `ts`: ISO 8601 UTC with milliseconds and `Z`.
TS_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


class FormatError(ValueError):
    """A record that is not a valid Transaction; the message says which rule it breaks."""


@dataclass(frozen=True, slots=True)
class TransactionFields:
    """A transaction's fields in the order they are written; an alert carries them first, then its own."""

    tx_id: str
    account_id: str
    merchant: str
    amount: float
    currency: str
    ts: str


# Each field with the Python type of its value, in the order they are written: every producer record
# starts with VALUE_PREFIX, which lets a delivery callback find the tx_id by slicing instead of parsing.
FIELD_TYPES: tuple[tuple[str, type], ...] = tuple(get_type_hints(TransactionFields).items())
FIELDS = tuple(name for name, _ in FIELD_TYPES)
TEXT_FIELDS = tuple(name for name, kind in FIELD_TYPES if kind is str)
VALUE_PREFIX = f'{{"{TX_ID}":"'


def field_values(record: TransactionFields) -> tuple[Any, ...]:
    """The transaction's fields of a record (a Transaction, an alert), in the order they are written."""
    return tuple(getattr(record, name) for name in FIELDS)


@dataclass(frozen=True, slots=True)
class Transaction(TransactionFields):
    """One card transaction as written to the `transactions` topic (key = account_id)."""

    @property
    def key(self) -> bytes:
        """The record key: the account id, so one account's transactions stay in order."""
        return self.account_id.encode()

    def encode(self) -> bytes:
        """The record value (JSON, UTF-8). Slow path for tests and tools; the generator has its own."""
        return orjson.dumps(asdict(self))


def leading_tx_id(value: bytes) -> bytes:
    """The tx_id of a value that starts with VALUE_PREFIX (as every value the generator writes does)."""
    start = len(VALUE_PREFIX)
    return value[start : value.index(b'"', start)]


def format_ts(epoch_ms: int) -> str:
    """Milliseconds since the epoch as ISO 8601 UTC with milliseconds and `Z`."""
    seconds, millis = divmod(epoch_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def parse_ts(text: str) -> datetime:
    """An aware UTC datetime from a `ts` value; FormatError if it is not in the wire format."""
    if not TS_PATTERN.fullmatch(text):
        raise FormatError(f"ts {text!r} is not ISO 8601 UTC with milliseconds")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError as exc:
        raise FormatError(f"ts {text!r}: {exc}") from None


def format_cents(cents: int) -> str:
    """A JSON number for an amount in integer cents, always two decimals (742.15, 1.00)."""
    return f"{cents // 100}.{cents % 100:02d}"


def decode(value: bytes | str | None) -> Transaction:
    """The Transaction in a record value, extra fields ignored; FormatError names the first broken rule."""
    if value is None:
        raise FormatError("null value")
    try:
        data: Any = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FormatError("not a JSON object")
    for name in FIELDS:
        if data.get(name) is None:
            raise FormatError(f"missing or null {name}")
    for name in TEXT_FIELDS:
        if not isinstance(data[name], str):
            raise FormatError(f"{name} is not a string")
    amount = data[AMOUNT]
    # bool is an int subclass, and "950" must not pass as a number.
    if isinstance(amount, bool) or not isinstance(amount, int | float):
        raise FormatError("amount is not a number")
    if not math.isfinite(amount) or amount <= 0:
        raise FormatError(f"amount {amount!r} is not positive")
    parse_ts(data[TS])
    return Transaction(**{name: data[name] for name in FIELDS if name != AMOUNT}, amount=float(amount))
