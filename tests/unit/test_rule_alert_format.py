"""The rule alert levels in the `alerts` format: decoded like any alert, and read by the monitor's model."""

from __future__ import annotations

import orjson
import pytest

from spark_app import formats
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.tail import TailBatch

FLAGGED = {"tx_id": "p1-000000000003", "account_id": "RO49RZBR0000060012345678", "merchant": "eMAG",
           "amount": 912.4, "currency": "RON", "ts": "2026-11-25T12:00:00.123Z", "level": "alert",
           "rule": "amount>900", "detected_at": "2026-11-25T12:00:00.400Z"}
VELOCITY = {**FLAGGED, "tx_id": formats.rule_alert_id(formats.LEVEL_VELOCITY, "p1-000000000003"),
            "level": "velocity", "rule": "count(amount>500)>=3 in 60s",
            "tx_ids": ["p1-000000000001", "p1-000000000002", "p1-000000000003"]}


def test_a_rule_alert_decodes_with_its_transactions() -> None:
    alert = formats.decode_alert(orjson.dumps(VELOCITY))
    assert alert.level == formats.LEVEL_VELOCITY
    assert alert.tx_id == "velocity:p1-000000000003"
    assert alert.tx_ids == ("p1-000000000001", "p1-000000000002", "p1-000000000003")


def test_a_flagged_transaction_without_tx_ids_still_decodes() -> None:
    assert formats.decode_alert(orjson.dumps(FLAGGED)).tx_ids == ()
    assert formats.decode_alert(orjson.dumps({**FLAGGED, "tx_ids": None})).tx_ids == ()


@pytest.mark.parametrize("tx_ids", ["p1", [1, 2], {"a": "b"}, ["p1", None]])
def test_malformed_tx_ids_are_a_type_error(tx_ids: object) -> None:
    with pytest.raises(TypeError):
        formats.decode_alert(orjson.dumps({**VELOCITY, "tx_ids": tx_ids}))


def test_a_non_object_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        formats.decode_alert(b'["not", "an", "object"]')


def test_rule_alert_ids_never_start_like_a_transaction_s() -> None:
    assert formats.rule_alert_id(formats.LEVEL_PATTERN, "p1-7") == "pattern:p1-7"
    assert set(formats.LEVELS) == set(formats.TRANSACTION_LEVELS) | set(formats.RULE_LEVELS)


def test_the_monitor_keeps_a_rule_alert_next_to_the_flagged_transaction_that_completed_it() -> None:
    model = MonitorModel()
    alerts = [formats.decode_alert(orjson.dumps(record)) for record in (FLAGGED, VELOCITY, VELOCITY)]
    model.apply(TailBatch(alerts=alerts))
    snapshot = model.snapshot()
    assert snapshot.alerts == 2  # the re-delivered velocity alert is dropped, the flagged one is kept
    assert snapshot.duplicates == 1
    assert (snapshot.alerts_alert, snapshot.alerts_large) == (1, 0)
