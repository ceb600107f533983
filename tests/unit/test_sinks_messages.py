"""How webhook and email messages are built: bodies, digests, idempotency keys, Retry-After."""

from __future__ import annotations

import orjson

from txmon_core.records.alert import Alert
from txmon_sinks.identity import id_of, payload
from txmon_sinks.mail import body, message_id, subject
from txmon_sinks.outbox import OutboxItem
from txmon_sinks.webhook import digest_body, message_key, retry_after


def _item(seq: int, level: str = "alert", merchant: str = "Metro") -> OutboxItem:
    alert = Alert(f"t{seq}", "RO49RZBR0000060012345678", merchant, 943.16, "RON", "2026-11-25T12:00:00.123Z",
                  level, "amount>900", "2026-11-25T12:00:01.000Z")
    return OutboxItem(seq, id_of(alert), payload(alert))


def test_a_digest_is_json_holding_every_alert() -> None:
    data = orjson.loads(digest_body([_item(1), _item(2), _item(3)]))
    assert data["digest"] is True and data["count"] == 3
    assert [alert["tx_id"] for alert in data["alerts"]] == ["t1", "t2", "t3"]


def test_keys_are_stable_and_differ_between_messages() -> None:
    assert message_key([_item(1)]) == "t1:alert"
    assert message_key([_item(1), _item(2)]) == message_key([_item(1), _item(2)])
    assert message_key([_item(1), _item(2)]) != message_key([_item(1), _item(3)])
    assert message_id([_item(1)]) == message_id([_item(1)]) != message_id([_item(2)])


def test_retry_after_in_seconds_or_unreadable() -> None:
    assert retry_after("7") == 7.0
    assert retry_after(None) is None and retry_after("soon") is None
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: no wait


def test_mail_subject_and_body() -> None:
    assert subject([_item(1)], "[txmon]") == "[txmon] ALERT 943.16 RON at Metro"
    assert subject([_item(1), _item(2)], "[txmon]") == "[txmon] 2 alerts (digest)"
    text = body([_item(1)])
    assert "merchant     Metro" in text and '"tx_id":"t1"' in text


def test_a_subject_is_one_clean_line_whatever_the_merchant_holds() -> None:
    hostile = "Evil\r\nBcc: victim@example.org\x00\x1b]0;title\x07\u202eQ\u2028R" + "x" * 500
    line = subject([_item(1, merchant=hostile)], "[txmon]")
    assert line.startswith("[txmon] ALERT 943.16 RON at Evil Bcc: victim@example.org ]0;title Q R")
    assert len(line) == 200 and line.endswith("…")
    assert not any(ord(c) < 0x20 or c in "\x7f\u202e\u2028" for c in line)


def test_body_fields_carry_no_control_characters() -> None:
    text = body([_item(1, merchant="Evil\x1b[2J\rshop")])
    assert "merchant     Evil [2J shop" in text and "\x1b" not in text and "\r" not in text
