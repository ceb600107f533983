"""`txmon-tui check-settings [FILE]`: every problem of a txmon.toml, each with its line.

Each table is checked by the code that reads it (so the check and the commands never disagree), one
table at a time, so that one bad table does not hide the problems of the next.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomllib
from confluent_kafka import KafkaException, Producer

from txmon_core.options import KAFKA_SECTION, kafka_settings, kafka_table_problems
from txmon_core.rules import SECTION as RULES_SECTION
from txmon_core.rules import RuleSettings
from txmon_core.secure import redact_text
from txmon_core.settings import SettingsError, key_lines
from txmon_core.topics import (
    TOPICS_SECTION,
    KafkaAccessError,
    access_admin,
    check_access,
    topics_table_problems,
)
from txmon_tui.attach import MONITOR_SECTION, monitor_table_problems

SINK_KINDS = ("jsonl", "webhook", "email")
TABLES = (KAFKA_SECTION, TOPICS_SECTION, MONITOR_SECTION, RULES_SECTION, "sinks", "storage", "prometheus")
CONNECT_TIMEOUT = 5.0
_TABLE = re.compile(r"^\[([^\]]+)\]")


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong in the file, and the line it is on (None when it has no line, e.g. unreadable)."""

    line: int | None
    message: str

    def describe(self, path: Path) -> str:
        """`FILE:LINE: message`, as compilers print it."""
        return f"{path}:{self.line}: {self.message}" if self.line else f"{path}: {self.message}"


def check_file(path: Path, *, connect: bool = False, data_dir: Path | None = None) -> list[Problem]:
    """Every problem of the settings file at `path`, in line order; [] when it is good."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return [Problem(None, f"cannot read it: {exc.strerror}")]
    except UnicodeDecodeError:
        return [Problem(None, "not UTF-8 text")]
    return check_text(text, connect=connect, data_dir=data_dir or Path("/nonexistent"))


def check_text(text: str, *, connect: bool = False, data_dir: Path = Path("/nonexistent")) -> list[Problem]:
    """Every problem of a settings text, in line order."""
    try:
        settings = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        return [Problem(int(line.group(1)) if line else None, f"not valid TOML: {exc}")]
    lines = key_lines(text)
    found: list[tuple[tuple[str, ...], str]] = []  # (where, message)
    for name, value in settings.items():
        if name not in TABLES:
            found.append(((name,), f"unknown table or key {name!r} (known tables: {', '.join(TABLES)})"))
        elif not isinstance(value, Mapping):
            found.append(((name,), f"[{name}] must be a table, not {type(value).__name__}"))
    tables = {name: value for name, value in settings.items()
              if name in TABLES and isinstance(value, Mapping)}
    found += _keyed(KAFKA_SECTION, kafka_table_problems(tables.get(KAFKA_SECTION, {})))
    found += _keyed(TOPICS_SECTION, topics_table_problems(tables.get(TOPICS_SECTION, {})))
    found += _keyed(MONITOR_SECTION, monitor_table_problems(tables.get(MONITOR_SECTION, {})))
    if KAFKA_SECTION in tables and not kafka_table_problems(tables[KAFKA_SECTION]):
        found += _librdkafka_problems(kafka_settings(tables))
    for name, table, check in _reader_checks(tables, data_dir):
        try:
            check()
        except SettingsError as exc:
            found.append((_where(name, table, str(exc)), str(exc)))
    if connect:
        found += _reachability(tables)
    problems = {Problem(_line(lines, where), message) for where, message in found}
    return sorted(problems, key=lambda p: (p.line or 0, p.message))


def _keyed(table: str, problems: Iterable[tuple[str | None, str]]) -> list[tuple[tuple[str, ...], str]]:
    return [((table, *(key.split(".") if key else ())), message) for key, message in problems]


def _line(lines: Mapping[tuple[str, ...], int], where: tuple[str, ...]) -> int | None:
    """The line of `where`, else of the nearest enclosing table that has one."""
    for end in range(len(where), 0, -1):
        # A dotted key may be written as one quoted key ("sasl.password" = …) of its table.
        for candidate in (where[:end], (where[0], ".".join(where[1:end]))):
            if (line := lines.get(candidate)) is not None:
                return line
    return None


def _where(name: str, table: Mapping[str, Any], message: str) -> tuple[str, ...]:
    """The table and key a reader's message is about: its [table], and the first of its keys it names."""
    if match := _TABLE.match(message):
        path = tuple(match.group(1).split("."))
        rest = message[match.end():]
        inner: Any = table.get(path[0], {})
        for part in path[1:]:
            inner = inner.get(part, {}) if isinstance(inner, Mapping) else {}
        keys = inner if isinstance(inner, Mapping) else {}
        named = [(found.start(), key) for key in keys
                 if (found := re.search(rf"\b{re.escape(key)}\b", rest)) is not None]
        if named:
            return (*path, min(named)[1])  # the key the message names first
        return path
    return (name,)


def _reader_checks(tables: Mapping[str, Any], data_dir: Path) -> list[tuple[str, Mapping[str, Any],
                                                                            Callable[[], object]]]:
    """(table, its values, a call that raises SettingsError) for each table its reader checks."""
    from txmon_sinks.config import delivery_config, prometheus_config, storage_config

    checks: list[tuple[str, Mapping[str, Any], Callable[[], object]]] = []
    if RULES_SECTION in tables:
        rules = tables[RULES_SECTION]
        known = {f.name for f in fields(RuleSettings)}
        checks.append((RULES_SECTION, tables, lambda: RuleSettings.from_table(rules)))  # unknown keys
        # …and, apart from those, the values
        checks.append((RULES_SECTION, tables,
                       lambda: RuleSettings.from_table({k: v for k, v in rules.items() if k in known})))
    sinks = tables.get("sinks", {})
    for kind, values in sinks.items():  # one sink at a time: each sink's first problem is reported
        if isinstance(values, Mapping):
            one = {"sinks": {kind: values}}
            checks.append(("sinks", tables, lambda one=one: delivery_config(one, data_dir)))
    scalars = {k: v for k, v in sinks.items() if not isinstance(v, Mapping)}
    if scalars:
        checks.append(("sinks", tables, lambda: delivery_config({"sinks": scalars}, data_dir)))
    if "storage" in tables:
        checks.append(("storage", tables, lambda: storage_config(tables, data_dir)))
    if "prometheus" in tables:
        checks.append(("prometheus", tables, lambda: prometheus_config(tables)))
    return checks


def _librdkafka_problems(settings: Mapping[str, str]) -> list[tuple[tuple[str, ...], str]]:
    """What librdkafka itself refuses in [kafka]: unknown properties, bad values (secrets redacted)."""
    quiet = {"log_level": 0}
    checked = {key: value for key, value in settings.items() if key != "bootstrap.servers"}
    try:
        Producer({**quiet, **checked})  # without bootstrap.servers: no broker is contacted
        return []
    except KafkaException as exc:
        whole = _kafka_text(exc)
    problems = []
    for key, value in checked.items():  # which keys librdkafka refuses by name
        try:
            Producer({**quiet, key: value})
        except KafkaException as exc:
            text = _kafka_text(exc)
            if f'"{key}"' in text:
                problems.append(((KAFKA_SECTION, *key.split(".")),
                                 f"[{KAFKA_SECTION}] {key}: {_hide(text, value)}"))
    # No single key to blame: the settings do not go together (e.g. a SASL mechanism not built in).
    return problems or [((KAFKA_SECTION,), f"[{KAFKA_SECTION}] {_hide(whole, *checked.values())}")]


def _hide(text: str, *values: str) -> str:
    """librdkafka quotes the value it refuses: never print it (it may be a password)."""
    text = redact_text(text)
    for value in values:
        if value:
            text = text.replace(value, "…")
    return text


def _kafka_text(exc: KafkaException) -> str:
    first = exc.args[0] if exc.args else exc
    return first.str() if hasattr(first, "str") else str(first)


def _reachability(tables: Mapping[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """--connect: the Kafka cluster answers, and the webhook's and mail server's ports accept."""
    problems: list[tuple[tuple[str, ...], str]] = []
    if KAFKA_SECTION in tables and not kafka_table_problems(tables[KAFKA_SECTION]):
        config = kafka_settings(tables)
        if config.get("bootstrap.servers"):
            admin, fatal = access_admin(config)
            try:
                check_access(admin, config, fatal, CONNECT_TIMEOUT)
            except (KafkaAccessError, KafkaException) as exc:
                problems.append(((KAFKA_SECTION, "bootstrap", "servers"), f"[{KAFKA_SECTION}] {exc}"))
    sinks = tables.get("sinks", {})
    targets = []
    if isinstance(webhook := sinks.get("webhook"), Mapping) and isinstance(webhook.get("url"), str):
        url = urlsplit(webhook["url"])
        if url.hostname:
            port = url.port or (443 if url.scheme == "https" else 80)
            targets.append(("webhook", "url", url.hostname, port))
    if isinstance(email := sinks.get("email"), Mapping) and isinstance(email.get("host"), str):
        port = email.get("port", 587 if email.get("starttls") else 25)
        targets.append(("email", "host", email["host"], port if isinstance(port, int) else 25))
    for kind, key, host, port in targets:
        try:
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT).close()
        except OSError as exc:
            problems.append((("sinks", kind, key),
                             f"[sinks.{kind}] {key}: cannot connect to {host}:{port}: {exc.strerror or exc}"))
    return problems
