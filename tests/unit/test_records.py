"""The wire formats of txmon_core.records against each other and against what their writers really write."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from producer.generator import TransactionGenerator
from spark_app import transforms
from txmon_core import large_table
from txmon_core.records import alert, dead_letter, metrics, ready, transaction

SAMPLE = transaction.Transaction("p7f3a-000000000042", "RO49RZBR0000060012345678", "Mega Image", 742.15,
                                 "RON", "2026-11-25T12:00:00.123Z")


def test_the_field_list_is_the_contract_with_its_types() -> None:
    assert transaction.FIELD_TYPES == (("tx_id", str), ("account_id", str), ("merchant", str),
                                       ("amount", float), ("currency", str), ("ts", str))
    assert tuple(f.name for f in dataclasses.fields(transaction.Transaction)) == transaction.FIELDS


def test_a_transaction_round_trips_through_json_with_the_schemas_field_names() -> None:
    value = SAMPLE.encode()
    assert tuple(orjson.loads(value)) == transaction.FIELDS
    assert transaction.decode(value) == SAMPLE
    # The Spark job's typed read: the same names in the same order, then the parsed `ts`.
    assert tuple(name for name, _ in transforms.TYPED_COLUMNS) == (*transaction.FIELDS, "event_time")
    assert dict(transforms.TYPED_COLUMNS)[transaction.AMOUNT] == "double"


def test_the_typed_read_finds_each_field_where_the_generator_writes_it() -> None:
    generator = TransactionGenerator(7)
    for value in generator.batch(50)[1]:
        decoded = transaction.decode(value)
        pieces = value.decode().split('"')
        for name, index in transforms.PLAIN_PARTS.items():
            piece = pieces[index].strip(":,") if name == transaction.AMOUNT else pieces[index]
            expected = getattr(decoded, name)
            assert (float(piece) if name == transaction.AMOUNT else piece) == expected, name
        assert transaction.leading_tx_id(value).decode() == decoded.tx_id


def test_alerts_and_the_parquet_table_carry_the_transactions_fields_first() -> None:
    assert alert.ALERT_FIELDS[: len(transaction.FIELDS)] == transaction.FIELDS
    assert large_table.COLUMNS[: len(transaction.FIELDS)] == transaction.FIELDS
    flagged = alert.Alert(*dataclasses.astuple(SAMPLE), level=alert.LEVEL_ALERT, rule=alert.rule_text(900),
                          detected_at="2026-11-25T12:00:00.200Z")
    assert alert.decode_alert(alert.encode_alert(flagged)) == flagged


def test_metrics_and_dead_letters_round_trip() -> None:
    batch = metrics.BatchMetrics(metrics.QUERY_ALERTS, 3, "2026-11-25T12:00:00.000Z", 10, 5.0, 6.5, 250,
                                 {"0": 42}, 2, 1, 1, "q-1")
    assert metrics.decode_metrics(metrics.encode_metrics(batch)) == batch
    letter = dead_letter.DeadLetter("nope", dead_letter.RAW_ENCODING_TEXT, dead_letter.REASON_NOT_JSON,
                                    "transactions", 0, 7, "2026-11-25T12:00:00.000Z")
    assert dead_letter.decode_dead_letter(orjson.dumps(letter)) == letter


@pytest.mark.parametrize(("value", "text"), [(900.0, "900"), (500, "500"), (250.5, "250.5"), (0.1, "0.1"),
                                             (60.0, "60")])
def test_numbers_in_rule_text(value: float, text: str) -> None:
    assert alert.format_number(value) == text
    assert alert.rule_text(value) == f"amount>{text}"


def test_ready_lines_are_the_contract() -> None:
    # The spellings users and scripts rely on (ARCHITECTURE.md, "Processes and commands").
    assert ready.broker_line("127.0.0.1:9092") == "ready bootstrap.servers=127.0.0.1:9092"
    assert ready.producer_line("127.0.0.1:9092", "transactions", "max") == (
        "producing to 127.0.0.1:9092 topic transactions at max tx/s")
    assert ready.JOB_LINE == "spark job running: queries alerts, parquet"


def test_ready_lines_formatted_then_recognised() -> None:
    assert ready.broker_bootstrap(ready.broker_line("127.0.0.1:41234") + "\n") == "127.0.0.1:41234"
    assert ready.broker_bootstrap("broker ready in 3.1 s") is None
    assert ready.is_producer_line(ready.producer_line("h:1", "t", "100"))
    assert not ready.is_producer_line(ready.JOB_LINE)
    assert ready.is_job_line(ready.JOB_LINE) and not ready.is_job_line(ready.broker_line("h:1"))
