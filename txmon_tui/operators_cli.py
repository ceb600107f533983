"""`txmon-tui rules show|set|history` and `txmon-tui report --triage`: the operators' topics for scripts.

Each prints to stdout and returns an exit status; a refused change or an unreachable broker is one line
on stderr (exit 2). No Textual.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from txmon_core import rules_log
from txmon_core.rules import RuleSettings
from txmon_core.rules_log import Rules, RulesError
from txmon_core.settings import SettingsError, section
from txmon_core.topics import KafkaAccessError
from txmon_core.triage import TriageSettings, audit
from txmon_core.triage_service import read_records, rule_changes

PROG = "txmon-tui"
BROKER_NEEDED = "needs a broker: give -b HOST:PORT (or set TXMON_BOOTSTRAP_SERVERS)"


def add_broker_option(parser: argparse.ArgumentParser) -> None:
    """-b after the subcommand too (`rules show -b HOST:PORT`), not resetting one given before it."""
    parser.add_argument("-b", "--bootstrap-servers", metavar="HOST:PORT", default=argparse.SUPPRESS,
                        help="Kafka bootstrap servers (env TXMON_BOOTSTRAP_SERVERS)")


def add_rules_command(commands: Any) -> None:
    """The `rules` subcommand and its own subcommands."""
    about = "show, change or list the versions of the rules on the txmon.rules topic"
    rules = commands.add_parser("rules", help=about, description=about.capitalize() + ".")
    actions = rules.add_subparsers(dest="rules_command", metavar="{show,set,history}", required=True)
    show = actions.add_parser("show", help="the version in force and its settings")
    change = actions.add_parser("set", help="publish a new version, e.g. set alert_threshold=800 --reason …",
                                description="Publish a new version of the rules. Settings: "
                                + ", ".join(rules_log.KEYS) + ".")
    change.add_argument("assignments", nargs="+", metavar="KEY=VALUE", help="settings to change")
    change.add_argument("--reason", required=True, help="why the rules change (kept in the history)")
    change.add_argument("--author", default=None,
                        help="who changes them (default: [triage] operator of the settings, else $USER)")
    listing = actions.add_parser("history", help="every version: who, when, old → new, why")
    listing.add_argument("--limit", type=int, default=None, metavar="N", help="only the newest N")
    for action in (show, change, listing):
        add_broker_option(action)


def add_triage_report_options(report: argparse.ArgumentParser) -> None:
    """`report --triage` (uses the report's --since)."""
    report.add_argument("--triage", action="store_true",
                        help="print the audit trail: who acknowledged, silenced, noted or changed a rule, "
                        "when and why (with --since: from then on)")
    add_broker_option(report)


def _fail(message: str, err: TextIO) -> int:
    print(f"{PROG}: {message}", file=err)
    return 2


def file_rules(settings: Mapping[str, Any], large_threshold: float, alert_threshold: float) -> Rules:
    """The rules the settings file and the threshold flags describe (version 1 when the topic is empty)."""
    return Rules(large_threshold, alert_threshold, RuleSettings.from_table(section(settings, "rules")))


def rules_main(args: argparse.Namespace, client_config: Mapping[str, str], settings: Mapping[str, Any],
               out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run `rules show|set|history`; 0 done, 1 nothing to show, 2 refused or unreachable."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        # A bad value is refused before any broker is asked.
        changes = rules_log.parse_assignments(args.assignments) if args.rules_command == "set" else {}
    except RulesError as exc:
        return _fail(f"rules: {exc}", err)
    if not client_config.get("bootstrap.servers"):
        return _fail(f"rules {BROKER_NEEDED}", err)
    try:
        if args.rules_command == "show":
            current = rules_log.latest(client_config)
            if current is None:
                print("no rules version on txmon.rules yet (the first monitor or job seeds it)", file=out)
                return 1
            print("\n".join(rules_log.show_lines(current)), file=out)
            return 0
        if args.rules_command == "history":
            versions = rules_log.history(client_config, args.limit)
            if not versions:
                print("no rules version on txmon.rules yet", file=out)
                return 1
            print("\n".join(rules_log.history_lines(versions)), file=out)
            return 0
        author = args.author or TriageSettings.from_settings(settings).operator
        base = file_rules(settings, args.large_threshold, args.alert_threshold)
        base.with_changes(changes)  # refuse a bad value before anything is written
        rules_log.seed_if_empty(client_config, base)
        version = rules_log.publish(client_config, changes, author, args.reason)
        print(f"published rules version {version.version}: "
              f"{rules_log.changes_text(version.changes_from(_previous(client_config, version)))}", file=out)
        return 0
    except (RulesError, SettingsError, KafkaAccessError) as exc:
        return _fail(f"rules: {exc}", err)


def _previous(client_config: Mapping[str, str],
              version: rules_log.RulesVersion) -> rules_log.RulesVersion | None:
    history = rules_log.history(client_config)
    older = [v for v in history if v.version < version.version]
    return older[-1] if older else None


def triage_report(client_config: Mapping[str, str], since: float | None, out: TextIO | None = None,
                  err: TextIO | None = None) -> int:
    """Print the audit trail; 0 when there is something, 1 when nothing happened, 2 when unreachable."""
    out, err = out or sys.stdout, err or sys.stderr
    if not client_config.get("bootstrap.servers"):
        return _fail(f"report --triage {BROKER_NEEDED}", err)
    try:
        entries = audit(read_records(client_config), rule_changes(client_config), since)
    except KafkaAccessError as exc:
        return _fail(f"report --triage: {exc}", err)
    if not entries:
        print("no triage actions or rule changes" + (" since then" if since is not None else ""), file=out)
        return 1
    for entry in entries:
        print(entry.line(), file=out)
    return 0

