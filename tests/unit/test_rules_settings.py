"""Rule settings: defaults, the [rules] table of txmon.toml, flags over the file, clear errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from spark_app import cli as spark_cli
from txmon_core import settings
from txmon_core.rules import RuleSettings, add_rule_options, configured_rules, rule_settings


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_rule_options(parser)
    return parser.parse_args(argv)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "txmon.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_issue_s() -> None:
    rules = RuleSettings()
    assert (rules.enabled, rules.velocity_count, rules.velocity_window) == (True, 3, 60.0)
    assert (rules.small_amount, rules.pattern_window) == (1.0, 60.0)
    assert rules.velocity_rule(500.0) == "count(amount>500)>=3 in 60s"
    assert rules.pattern_rule(500.0) == "amount<1 then amount>500 in 60s"


def test_the_rules_table_sets_them(tmp_path: Path) -> None:
    path = write(tmp_path, "[rules]\nvelocity_count = 5\nvelocity_window = 120\nsmall_amount = 0.5\n"
                           "pattern_window = 30.5\nlateness = 0\n")
    rules = rule_settings(settings.section(settings.load(path), "rules"))
    assert rules == RuleSettings(velocity_count=5, velocity_window=120.0, small_amount=0.5,
                                 pattern_window=30.5, lateness=0.0)
    assert rules.pattern_rule(400.0) == "amount<0.5 then amount>400 in 30.5s"


def test_flags_override_the_file_and_absent_flags_keep_it() -> None:
    table = {"velocity_count": 5, "small_amount": 2, "enabled": False}
    rules = rule_settings(table, parse("--velocity-count", "7", "--pattern-window", "10", "--rules"))
    assert rules == RuleSettings(enabled=True, velocity_count=7, small_amount=2.0, pattern_window=10.0)
    assert rule_settings(table, parse()).velocity_count == 5
    assert not rule_settings({}, parse("--no-rules")).enabled
    assert rule_settings({}, parse("--rules-lateness", "0")).lateness == 0.0


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"velocity_cont": 3}, "unknown key(s) velocity_cont"),
        ({"velocity_count": 0}, "velocity_count must be at least 1"),
        ({"velocity_count": 2.5}, "velocity_count must be a whole number"),
        ({"velocity_count": True}, "velocity_count must be a whole number"),
        ({"velocity_window": "60s"}, "velocity_window must be a number > 0"),
        ({"small_amount": -1}, "small_amount must be a number > 0"),
        ({"pattern_window": float("inf")}, "pattern_window must be a number > 0"),
        ({"lateness": -1}, "lateness must be a number >= 0"),
        ({"enabled": "yes"}, "enabled must be true or false"),
    ],
)
def test_bad_tables_say_what_is_wrong(table: dict[str, object], message: str) -> None:
    with pytest.raises(settings.SettingsError, match=r"^\[rules\]: .*" + message.replace("(", r"\(")
                       .replace(")", r"\)")):
        RuleSettings.from_table(table)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [(["--velocity-count", "0"], "--velocity-count"), (["--velocity-window", "-1"], "--velocity-window"),
     (["--small-amount", "x"], "--small-amount"), (["--rules-lateness", "-2"], "--rules-lateness")],
)
def test_bad_flags_name_the_flag(capsys: pytest.CaptureFixture[str], argv: list[str], flag: str) -> None:
    with pytest.raises(SystemExit):
        parse(*argv)
    assert flag in capsys.readouterr().err


def test_the_spark_job_reports_a_bad_rules_table_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "[rules]\nvelocity_count = 0\n")
    with pytest.raises(SystemExit) as exit_info:
        spark_cli.main(["-b", "127.0.0.1:1", "--settings", str(path)])
    assert exit_info.value.code == 2
    assert "[rules]: velocity_count must be at least 1" in capsys.readouterr().err


def test_the_spark_job_refuses_a_small_amount_above_the_large_threshold(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        spark_cli.main(["-b", "127.0.0.1:1", "--small-amount", "600", "--settings", "/dev/null"])
    assert "must not be above --large-threshold" in capsys.readouterr().err


def test_the_monitor_shows_the_rules_its_file_sets_and_hands_the_file_to_its_children(tmp_path: Path) -> None:
    from txmon_tui import cli as tui_cli
    from txmon_tui.supervise.pipeline import Pipeline

    path = write(tmp_path, "[rules]\nvelocity_count = 5\nvelocity_window = 120\n")
    args = tui_cli.build_parser().parse_args(["-b", "127.0.0.1:9", "--settings", str(path)])
    config = tui_cli.pipeline_config(args)
    assert config.settings_path == path
    assert "count(amount>500)>=5 in 120s" in configured_rules(config.settings_path).describe(500)
    pipeline = Pipeline(config)
    for child in ("producer", "spark"):
        argv = pipeline._argv(child)
        assert argv[argv.index("--settings") + 1] == str(path), child
