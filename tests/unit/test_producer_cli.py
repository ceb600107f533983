"""txmon-producer's command line: flags, their errors and their defaults (no broker needed)."""

from __future__ import annotations

import pytest

from producer import cli
from txmon_core.options import BOOTSTRAP_ENV
from txmon_core.topics import TRANSACTIONS, resolve_topics


@pytest.fixture(autouse=True)
def no_bootstrap_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BOOTSTRAP_ENV, raising=False)


def parse_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The error line argparse prints for `argv` (it exits with status 2)."""
    with pytest.raises(SystemExit) as exited:
        cli.main(list(argv))
    assert exited.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize("rate", ["abc", "0", "-5", "inf", "nan"])
def test_bad_rate_names_the_flag(capsys: pytest.CaptureFixture[str], rate: str) -> None:
    assert "--rate" in parse_error(capsys, "-b", "h:1", "--rate", rate)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--count", "0"], "--count"),
        (["--count", "1.5"], "--count"),
        (["--seed", "x"], "--seed"),
        (["--min-amount", "1.001"], "--min-amount"),
        (["--max-amount", "0"], "--max-amount"),
        (["--min-amount", "20", "--max-amount", "10"], "--min-amount"),
        (["--startup-timeout", "0"], "--startup-timeout"),
        (["-X", "novalue"], "-X"),
    ],
)
def test_bad_flags_name_the_flag(capsys: pytest.CaptureFixture[str], argv: list[str], flag: str) -> None:
    assert flag in parse_error(capsys, "-b", "h:1", *argv)


def test_bootstrap_servers_are_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert "-b/--bootstrap-servers" in parse_error(capsys, "--count", "1")


def test_bootstrap_servers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BOOTSTRAP_ENV, "broker:9092")
    args = cli.build_parser().parse_args([])
    assert args.bootstrap_servers == "broker:9092"


def test_defaults() -> None:
    args = cli.build_parser().parse_args(["-b", "h:1"])
    assert args.rate == 100.0
    assert args.count is None and args.seed is None and args.ack_log is None
    assert resolve_topics({}, args).transactions == TRANSACTIONS
    assert (args.min_amount, args.max_amount) == (None, None)  # people-like spending in 1.00..1,000.00


def test_topic_comes_from_flags_then_settings() -> None:
    settings = {"topics": {"transactions": "payments.card"}}
    args = cli.build_parser().parse_args(["-b", "h:1"])
    assert resolve_topics(settings, args).transactions == "payments.card"
    for flag in ("--topic", "--transactions-topic"):
        args = cli.build_parser().parse_args(["-b", "h:1", flag, "tx.v2"])
        assert resolve_topics(settings, args).transactions == "tx.v2"


def test_rate_max_means_unthrottled() -> None:
    assert cli.build_parser().parse_args(["-b", "h:1", "--rate", "max"]).rate is None
    assert cli.build_parser().parse_args(["-b", "h:1", "--rate", "2.5e4"]).rate == 25_000.0


@pytest.mark.parametrize(("text", "cents"), [("1", 100), ("742.15", 74215), ("0.01", 1), ("1000.0", 100_000)])
def test_amounts_are_parsed_exactly_in_cents(text: str, cents: int) -> None:
    assert cli.amount_cents(text) == cents


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("txmon-producer ")


def test_producer_config_is_idempotent_and_x_overrides_defaults() -> None:
    config = cli.producer_config({"bootstrap.servers": "h:1", "linger.ms": "50"})
    assert config["enable.idempotence"] is True
    assert config["linger.ms"] == "50"
    assert config["bootstrap.servers"] == "h:1"
    # Without an ack log only failures need a report; with one, every acknowledged record does.
    assert config["delivery.report.only.error"] is True
    assert cli.producer_config({}, ack_log=True)["delivery.report.only.error"] is False


def test_bad_client_setting_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-b", "h:1", "-X", "no.such.setting=1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no.such.setting" in err[0]
