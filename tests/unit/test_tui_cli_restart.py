"""`--no-restart`: automatic restarts are on by default, in the screen and headless alike."""

from __future__ import annotations

from txmon_tui import cli


def test_restarts_are_on_by_default_and_no_restart_turns_them_off() -> None:
    assert cli.pipeline_config(cli.build_parser().parse_args([])).auto_restart is True
    assert cli.pipeline_config(cli.build_parser().parse_args(["--no-restart"])).auto_restart is False
    headless = ["--headless", "--duration", "5", "--no-restart"]
    assert cli.pipeline_config(cli.build_parser().parse_args(headless)).auto_restart is False


def test_the_help_says_what_no_restart_does() -> None:
    text = " ".join(cli.build_parser().format_help().split())
    assert "--no-restart do not restart a producer or Spark job that dies on its own" in text
