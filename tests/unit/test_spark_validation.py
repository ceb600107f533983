"""The job's validation limits: defaults, the [validation] table, the flags on top, bad values named."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from spark_app import validation
from spark_app.cli import build_parser, main
from spark_app.validation import Validation, format_duration, parse_duration, validation_settings
from txmon_core.settings import SettingsError


def test_defaults() -> None:
    limits = validation_settings({}, build_parser().parse_args(["-b", "h:1"]))
    assert limits == Validation()
    assert (limits.max_clock_skew, limits.max_age, limits.currencies) == (
        timedelta(minutes=5), timedelta(days=7), ("RON",))
    assert (limits.max_tx_id_chars, limits.max_account_id_chars, limits.max_merchant_chars) == (64, 64, 200)


def test_flags_override_the_table() -> None:
    table = {"max_age": "1d", "currencies": ["EUR"], "max_merchant_chars": 80, "max_clock_skew": "90s"}
    args = build_parser().parse_args(["-b", "h:1", "--currencies", "RON, EUR,RON", "--max-clock-skew", "30s",
                                      "--max-tx-id-chars", "40"])
    assert validation_settings(table, args) == Validation(
        max_clock_skew=timedelta(seconds=30), max_age=timedelta(days=1), currencies=("RON", "EUR"),
        max_tx_id_chars=40, max_merchant_chars=80)


@pytest.mark.parametrize(("text", "value"), [("300s", timedelta(minutes=5)), ("5m", timedelta(minutes=5)),
                                             ("1.5h", timedelta(minutes=90)), ("7d", timedelta(days=7)),
                                             ("250ms", timedelta(milliseconds=250)), ("0s", timedelta(0))])
def test_durations(text: str, value: timedelta) -> None:
    assert parse_duration(text) == value
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--max-clock-skew", "5"], "--max-clock-skew"),
        (["--max-clock-skew", "-5m"], "--max-clock-skew"),
        (["--max-age", "0s"], "max_age"),
        (["--max-age", "a week"], "--max-age"),
        (["--max-age", "99999d"], "--max-age"),
        (["--currencies", "ron"], "--currencies"),
        (["--currencies", "RON,"], "--currencies"),
        (["--currencies", "EURO"], "--currencies"),
        (["--max-tx-id-chars", "0"], "--max-tx-id-chars"),
        (["--max-account-id-chars", "x"], "--max-account-id-chars"),
        (["--max-merchant-chars", str(validation.MAX_FIELD_CAP + 1)], "--max-merchant-chars"),
    ],
)
def test_bad_flags_name_themselves(argv: list[str], named: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["-b", "127.0.0.1:1", *argv])
    assert exit_info.value.code == 2
    assert named in capsys.readouterr().err


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"max_skew": "5m"}, "unknown key(s) max_skew"),
        ({"max_age": 7}, "[validation] max_age"),
        ({"max_clock_skew": "5 minutes"}, "[validation] max_clock_skew"),
        ({"currencies": "RON"}, "[validation] currencies"),
        ({"currencies": []}, "currencies must be"),
        ({"currencies": ["RON", 946]}, "currencies must be"),
        ({"max_tx_id_chars": True}, "max_tx_id_chars must be"),
        ({"max_merchant_chars": 0}, "max_merchant_chars must be"),
        ({"max_account_id_chars": 6.5}, "max_account_id_chars must be"),
    ],
)
def test_bad_table_values_name_themselves(table: dict[str, object], named: str) -> None:
    with pytest.raises(SettingsError, match=r"\[validation\]") as error:
        Validation.from_table(table)
    assert named in str(error.value)


def test_a_bad_settings_file_stops_the_job_before_spark(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "txmon.toml"
    path.write_text('[validation]\ncurrencies = ["RON", "eur"]\n')
    with pytest.raises(SystemExit) as exit_info:
        main(["-b", "127.0.0.1:1", "--settings", str(path)])
    assert exit_info.value.code == 2
    assert "[validation]: currencies must be" in capsys.readouterr().err
