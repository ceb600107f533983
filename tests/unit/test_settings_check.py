"""`txmon-tui check-settings`, the [kafka] table and the settings file's own rules."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from txmon_core import options
from txmon_core.settings import SETTINGS_ENV, SettingsError, key_lines, load
from txmon_tui import cli
from txmon_tui.settings_check import Problem, check_text

BAD = """\
# a settings file with one mistake per table
[kafka]
bootstrap.servers = "kafka1:9092"
security.protocol = "carrier-pigeon"
nosuch.property = "x"

[topics]
alerts = "card alerts"
dlq = "x"

[monitor]
with_producer = "yes"

[rules]
velocity_count = 0
colour = "blue"

[sinks.webhook]
url = "ftp://example.org"

[storage]
url = "nourl"

[prometheus]
port = 99999

[frobnicate]
x = 1
"""


def lines_of(problems: list[Problem]) -> dict[int | None, str]:
    return {problem.line: problem.message for problem in problems}


def test_every_problem_is_named_with_its_line() -> None:
    found = lines_of(check_text(BAD))
    assert sorted(found) == [4, 5, 8, 9, 12, 15, 16, 19, 22, 25, 27], found
    assert "security.protocol" in found[4] and "nosuch.property" in found[5]
    assert "'card alerts'" in found[8] and "unknown key 'dlq'" in found[9]
    assert "with_producer: expected true or false" in found[12]
    assert "velocity_count must be at least 1" in found[15] and "colour" in found[16]
    assert "[sinks.webhook] url" in found[19] and "[storage] url" in found[22]
    assert "[prometheus] port" in found[25] and "'frobnicate'" in found[27]


def test_a_good_file_has_no_problems() -> None:
    good = """\
[kafka]
bootstrap.servers = "kafka1:9092,kafka2:9092"
"security.protocol" = "SASL_SSL"
sasl.mechanisms = "SCRAM-SHA-512"
sasl.username = "alice"
sasl.password = "s3cret"
enable.idempotence = true

[topics]
transactions = "payments.card.v1"
alerts = "payments.card.alerts"

[monitor]
with_spark = true

[rules]
velocity_count = 4
"""
    assert check_text(good) == []


def test_a_refused_secret_is_never_printed() -> None:
    problems = check_text('[kafka]\nsecurity.protocol = "hunter2-secret"\n')
    assert problems and problems[0].line == 2
    assert "hunter2-secret" not in problems[0].message


def test_broken_toml_names_its_line() -> None:
    assert check_text("[kafka]\nbootstrap.servers = \n").pop().line == 2


def test_key_lines_knows_dotted_quoted_and_table_keys() -> None:
    text = 'top = 1\n[kafka]\nsasl.username = "a"\n"sasl.password" = "b"\n[sinks.email]\nhost = "x"\n'
    lines = key_lines(text)
    assert lines[("kafka", "sasl", "username")] == 3 and lines[("kafka", "sasl.password")] == 4
    assert lines[("sinks", "email")] == 5 and lines[("sinks", "email", "host")] == 6


def test_check_settings_command_exits_non_zero_with_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "txmon.toml"
    path.write_text(BAD)
    assert cli.main(["check-settings", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:4: [kafka] security.protocol" in out and f"{path}:27: " in out
    path.write_text("[rules]\nvelocity_count = 3\n")
    assert cli.main(["check-settings", str(path)]) == 0


def test_check_settings_of_a_missing_file_is_an_error(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check-settings", str(tmp_path / "none.toml")]) == 1
    assert capsys.readouterr().err.startswith("txmon-tui check-settings: error: no settings file at")


def test_a_missing_file_named_by_the_env_is_an_error(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SETTINGS_ENV, str(tmp_path / "typo.toml"))
    with pytest.raises(SettingsError, match="typo.toml"):
        load()


def test_the_kafka_table_feeds_every_commands_client_settings(tmp_path: Path) -> None:
    settings = {"kafka": {"bootstrap": {"servers": "file:9092"}, "security": {"protocol": "SSL"},
                          "enable.idempotence": True, "linger": {"ms": 5}}}
    parser = argparse.ArgumentParser()
    options.add_kafka_options(parser)
    conf = tmp_path / "client.conf"
    conf.write_text("security.protocol=SASL_SSL\n")
    assert options.client_config(parser.parse_args([]), settings) == {
        "bootstrap.servers": "file:9092", "security.protocol": "SSL", "enable.idempotence": "true",
        "linger.ms": "5"}
    # -F/--client-config (and its old name --config) over the table, -b over everything
    for flag in ("-F", "--client-config", "--config"):
        args = parser.parse_args([flag, str(conf), "-b", "flag:1"])
        assert options.client_config(args, settings)["security.protocol"] == "SASL_SSL"
        assert options.client_config(args, settings)["bootstrap.servers"] == "flag:1"
