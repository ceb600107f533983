"""The Transaction wire format: encoding, decoding and its rules, without a broker."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from producer.generator import TransactionGenerator
from txmon_core.records.transaction import (
    FIELDS,
    TS_PATTERN,
    FormatError,
    Transaction,
    decode,
    format_cents,
    format_ts,
    parse_ts,
)
from txmon_core.topics import TRANSACTIONS

SAMPLE = Transaction(
    tx_id="p7f3a-000000000042",
    account_id="RO49RZBR0000060012345678",
    merchant="Mega Image",
    amount=742.15,
    currency="RON",
    ts="2026-11-25T12:00:00.123Z",
)


def test_topic_is_the_contract_name() -> None:
    assert TRANSACTIONS == "transactions"


def test_fields_are_the_contract_in_order() -> None:
    assert FIELDS == ("tx_id", "account_id", "merchant", "amount", "currency", "ts")
    assert tuple(f.name for f in dataclasses.fields(Transaction)) == FIELDS


def test_transaction_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        SAMPLE.amount = 1.0  # type: ignore[misc]


def test_encode_decode_round_trip() -> None:
    assert decode(SAMPLE.encode()) == SAMPLE
    assert SAMPLE.key == b"RO49RZBR0000060012345678"


def test_generated_record_decodes_with_exact_fields_and_types() -> None:
    keys, values = TransactionGenerator(seed=3).batch(50)
    for key, value in zip(keys, values, strict=True):
        raw = orjson.loads(value)
        assert list(raw) == list(FIELDS)
        assert [type(raw[name]) for name in FIELDS] == [str, str, str, float, str, str]
        tx = decode(value)
        assert dataclasses.astuple(tx) == tuple(raw[name] for name in FIELDS)
        assert tx.currency == "RON"
        assert key == tx.key
        assert TS_PATTERN.fullmatch(tx.ts)


def test_generated_values_are_utf8_json_with_merchant_diacritics() -> None:
    values = TransactionGenerator(seed=1).batch(20_000)[1]
    merchants = {decode(v).merchant for v in values}
    assert "Cărturești" in merchants
    assert any("Cărturești".encode() in v for v in values)  # raw UTF-8, not \u escapes


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "null value"),
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (
            b'{"account_id": "RO1", "merchant": "m", "amount": 1, "currency": "RON", '
            b'"ts": "2026-11-25T12:00:00.123Z"}',
            "missing or null tx_id",
        ),
        (
            b'{"tx_id": "t", "account_id": "RO1", "merchant": "m", "amount": null, "currency": "RON", '
            b'"ts": "2026-11-25T12:00:00.123Z"}',
            "missing or null amount",
        ),
        (
            b'{"tx_id": "t", "account_id": "RO1", "merchant": "m", "amount": "950", "currency": "RON", '
            b'"ts": "2026-11-25T12:00:00.123Z"}',
            "amount is not a number",
        ),
        (
            b'{"tx_id": "t", "account_id": "RO1", "merchant": "m", "amount": true, "currency": "RON", '
            b'"ts": "2026-11-25T12:00:00.123Z"}',
            "amount is not a number",
        ),
        (
            b'{"tx_id": "t", "account_id": "RO1", "merchant": "m", "amount": -5, "currency": "RON", '
            b'"ts": "2026-11-25T12:00:00.123Z"}',
            "not positive",
        ),
        (
            b'{"tx_id": 7, "account_id": "RO1", "merchant": "m", "amount": 5, "currency": "RON", '
            b'"ts": "2026-11-25T12:00:00.123Z"}',
            "tx_id is not a string",
        ),
        (
            b'{"tx_id": "t", "account_id": "RO1", "merchant": "m", "amount": 5, "currency": "RON", '
            b'"ts": "2026-11-25 12:00:00"}',
            "ts",
        ),
    ],
)
def test_decode_rejects_bad_records(value: bytes | None, reason: str) -> None:
    with pytest.raises(FormatError, match=reason):
        decode(value)


def test_decode_ignores_extra_fields_and_accepts_integer_amounts() -> None:
    raw = orjson.loads(SAMPLE.encode()) | {"amount": 500, "extra": [1]}
    tx = decode(orjson.dumps(raw))
    assert tx.amount == 500.0 and isinstance(tx.amount, float)


def test_format_ts_is_iso_utc_with_milliseconds() -> None:
    assert format_ts(0) == "1970-01-01T00:00:00.000Z"
    assert format_ts(1_795_608_000_123) == "2026-11-25T12:00:00.123Z"
    assert parse_ts("2026-11-25T12:00:00.123Z").timestamp() == 1_795_608_000.123


@pytest.mark.parametrize(
    "text", ["2026-11-25T12:00:00Z", "2026-11-25T12:00:00.123", "2026-13-25T12:00:00.123Z"]
)
def test_parse_ts_rejects_other_shapes(text: str) -> None:
    with pytest.raises(FormatError):
        parse_ts(text)


@pytest.mark.parametrize(
    ("cents", "text"), [(1, "0.01"), (100, "1.00"), (74215, "742.15"), (100000, "1000.00")]
)
def test_format_cents(cents: int, text: str) -> None:
    assert format_cents(cents) == text
    assert round(float(text) * 100) == cents
