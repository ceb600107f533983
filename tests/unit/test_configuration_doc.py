"""docs/configuration.md against the code: every flag it names exists, in the command it names it for."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from producer import cli as producer_cli
from spark_app import cli as spark_cli
from txmon_core import broker_cli
from txmon_core.topics import TOPIC_KEYS
from txmon_tui import cli as tui_cli
from txmon_tui.attach import MONITOR_KEYS

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*[a-z0-9]|-[a-zA-Z])(?![\w-])")


def options_of(parser: argparse.ArgumentParser) -> set[str]:
    """Every option string of a parser and of its subcommands."""
    found: set[str] = set()
    for action in parser._actions:
        found.update(action.option_strings)
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= options_of(sub)
    return found


def broker_options(capsys: pytest.CaptureFixture[str]) -> set[str]:
    """txmon-broker builds its parser inside main(): read its --help."""
    with pytest.raises(SystemExit):
        broker_cli.main(["--help"])
    return set(FLAG.findall(capsys.readouterr().out))


def sections() -> dict[str, str]:
    """The doc's text by `## ` heading (its `### ` subsections stay in their section)."""
    parts = re.split(r"^## (.+)$", DOC.read_text(), flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def flags_in(text: str) -> set[str]:
    """The flags named in code: `inline spans` and the lines of ``` blocks."""
    code = re.findall(r"`([^`\n]+)`", text) + re.findall(r"^txmon-\S+.*$", text, flags=re.M)
    return {flag for span in code for flag in FLAG.findall(span)}


@pytest.fixture
def commands(capsys: pytest.CaptureFixture[str]) -> dict[str, set[str]]:
    return {
        "txmon-tui": options_of(tui_cli.build_parser()),
        "txmon-producer": options_of(producer_cli.build_parser()),
        "txmon-spark": options_of(spark_cli.build_parser()),
        "txmon-broker": broker_options(capsys),
    }


def test_each_commands_section_names_only_its_flags(commands: dict[str, set[str]]) -> None:
    doc = sections()
    for command, known in commands.items():
        named = flags_in(doc[command])
        assert named, f"no flags found in the {command} section"
        assert named <= known, f"{command} has no {sorted(named - known)}"


def test_shared_flags_exist_in_every_kafka_command(commands: dict[str, set[str]]) -> None:
    named = flags_in(sections()["Flags shared by every command"])
    assert {"-b", "-X", "-F", "--client-config", "--config", "--settings"} <= named
    # The generator has no data dir and writes only the transactions topic (the doc says so).
    not_producer = {"--data-dir", "--alerts-topic", "--dead-letters-topic", "--metrics-topic"}
    for command in ("txmon-tui", "txmon-producer", "txmon-spark"):
        missing = named - commands[command] - (not_producer if command == "txmon-producer" else set())
        assert not missing, f"{command} has no {sorted(missing)}"


def test_every_flag_anywhere_in_the_doc_exists(commands: dict[str, set[str]]) -> None:
    known = set().union(*commands.values())
    named = flags_in(DOC.read_text())
    assert named - known == set()


def test_every_settings_key_and_topic_flag_is_documented() -> None:
    text = DOC.read_text()
    for key, flag, default in TOPIC_KEYS:
        assert f"`{key}`" in text and f"`{flag} NAME`" in text and f"`{default}`" in text
    for key in MONITOR_KEYS:
        assert f"`{key}`" in text
    for table in ("kafka", "topics", "monitor", "rules", "sinks", "storage", "prometheus"):
        assert f"### {table}" in text
