"""The Alert wire format, defined once: topic `alerts`, key = tx_id, JSON in UTF-8.

A flagged transaction (level large | alert) or an account rule's alert (level velocity | pattern); the
levels, the default thresholds and the `rule` text are part of the format.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import orjson

from txmon_core.records.text import safe_text
from txmon_core.records.transaction import AMOUNT, TS, TX_ID, TransactionFields

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


def format_number(value: float) -> str:
    """A threshold or setting as rule text shows it: 900.0 → "900", 0.5 → "0.5"."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def rule_text(threshold: float) -> str:
    """The rule a flagged transaction broke, e.g. "amount>900"."""
    return f"{AMOUNT}>{format_number(threshold)}"


@dataclass(frozen=True, slots=True)
class Alert(TransactionFields):
    """A flagged transaction or an account rule's alert, as written to the `alerts` topic (key = tx_id).

    The transaction's fields (TransactionFields, in that order), then the alert's own.
    A rule alert (level velocity | pattern) carries the fields of the transaction that completed the
    rule, except `tx_id`, which is the alert's own id (rule_alert_id) so that the key still equals
    `tx_id` and readers that drop repeats by `tx_id` keep every alert; `tx_ids` lists the transactions
    that make up the match, oldest first. A flagged transaction has no `tx_ids` (empty).
    Decoded (decode_alert), a text field that was null on the wire is "" and none holds a control character.
    """

    level: str
    rule: str
    detected_at: str
    tx_ids: tuple[str, ...] = ()
    rules_version: int | None = None  # the rules version that judged it (`txmon-spark --live-rules`)


ALERT_FIELDS = tuple(field.name for field in fields(Alert))


def rule_alert_id(level: str, tx_id: str) -> str:
    """The id (and key) of a rule alert: its level, then the tx_id of the transaction that completed it.

    Stable, so a re-delivered alert has the same id; the level comes first, so no rule alert's id
    starts like a transaction's.
    """
    return f"{level}:{tx_id}"


# Alert fields every alert carries. The job requires every transaction field, but alerts written by
# earlier versions may hold null account_id, merchant or currency: readers still accept those.
_REQUIRED_TEXT = (TX_ID, TS, "level")
# Alert fields that records written before they existed lack: they decode to the field's default.
_OPTIONAL = ("tx_ids", "rules_version")


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
    decoded: dict[str, Any] = {}
    for name in ALERT_FIELDS:
        if name in _OPTIONAL:
            continue
        field_value = data[name]
        if name == AMOUNT:
            if isinstance(field_value, bool) or not isinstance(field_value, int | float):
                raise TypeError("alert amount is not a number")
        elif name in _REQUIRED_TEXT and not isinstance(field_value, str):
            raise TypeError(f"alert {name} is not a string")
        elif field_value is not None and not isinstance(field_value, str):
            raise TypeError(f"alert {name} is neither a string nor null")
        else:
            field_value = safe_text(field_value)
        decoded[name] = field_value
    if decoded["level"] not in LEVELS:
        raise ValueError(f"alert level {decoded['level']!r} is not one of {LEVELS}")
    return Alert(**decoded, tx_ids=tuple(map(safe_text, tx_ids)), rules_version=rules_version)


def encode_alert(alert: Alert) -> bytes:
    """Encode one `alerts` record (the Spark job encodes flagged transactions in the JVM, alike)."""
    return orjson.dumps(alert)
