"""Versions of the rules on Kafka: thresholds and account rules, who changed them, when and why.

The topic `txmon.rules` (compacted, one partition) holds one record per version. Its key is the version
number, zero-padded (`0000000042`): every version has a key of its own, so compaction never drops one
and the topic is the whole history (who, when, old → new, why) for as long as it exists. The version in
force is the record at the last offset: a reader finds it with one fetch from the high watermark minus
one, without reading the history, and a follower (RulesWatcher) keeps the last one it read. A single
"latest" key would make the latest cheap too, but compaction would then erase the history it exists to
keep; two keys per version (history + latest) would cost two writes that can be seen half done.

Versions are numbered by the writer from the latest it read. Two operators publishing in the same
instant would both write the same number; the later record (by offset) is in force and replaces the
earlier one at compaction. That race needs two people changing rules within a second of each other.

No pyspark, no Textual: the Spark job's driver, the monitor and the CLI all use this module.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from typing import Any

import orjson

from txmon_core import compacted
from txmon_core.rules import RuleSettings, format_number
from txmon_core.topics import RULES

KEY_DIGITS = 10
THRESHOLD_KEYS = ("large_threshold", "alert_threshold")
ACCOUNT_KEYS = tuple(f.name for f in fields(RuleSettings))
KEYS = THRESHOLD_KEYS + ACCOUNT_KEYS  # every setting a version holds, in the order they are shown
FLOAT_KEYS = frozenset({"large_threshold", "alert_threshold", "velocity_window", "small_amount",
                        "pattern_window", "lateness"})


class RulesError(ValueError):
    """A rules change or record that cannot be used; the message is one line naming the key."""


def utc_now() -> str:
    """Now as the wire writes times: ISO 8601 UTC with milliseconds and Z."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Rules:
    """The settings one version holds: the two thresholds and the account rules' settings."""

    large_threshold: float
    alert_threshold: float
    account: RuleSettings = RuleSettings()  # frozen: one default shared safely

    def __post_init__(self) -> None:
        for key in THRESHOLD_KEYS:
            value = getattr(self, key)
            if not _is_number(value) or not 0 < value < math.inf:
                raise RulesError(f"{key}: must be a number > 0, got {value!r}")
        if not self.alert_threshold > self.large_threshold:
            raise RulesError(f"alert_threshold: must be above large_threshold ({self.large_threshold:g}), "
                             f"got {self.alert_threshold:g}")

    def values(self) -> dict[str, Any]:
        """Every setting by key (the wire's `settings` object)."""
        return {"large_threshold": self.large_threshold, "alert_threshold": self.alert_threshold,
                **asdict(self.account)}

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Rules:
        """Rules from every key of KEYS; RulesError naming the first key that is missing, unknown or bad."""
        unknown = sorted(set(values) - set(KEYS))
        if unknown:
            raise RulesError(f"{unknown[0]}: unknown setting; known: {', '.join(KEYS)}")
        missing = [key for key in KEYS if key not in values]
        if missing:
            raise RulesError(f"{missing[0]}: missing")
        account = {key: values[key] for key in ACCOUNT_KEYS}
        for key in ACCOUNT_KEYS:
            problem = _account_problem(key, account[key])
            if problem:
                raise RulesError(f"{key}: {problem}, got {account[key]!r}")
            if key in FLOAT_KEYS:
                account[key] = float(account[key])
        large, alert = values["large_threshold"], values["alert_threshold"]
        return cls(float(large) if _is_number(large) else large, float(alert) if _is_number(alert) else alert,
                   RuleSettings(**account))

    def with_changes(self, changes: Mapping[str, Any]) -> Rules:
        """These rules with some settings changed (values already typed); RulesError when invalid."""
        return Rules.from_values({**self.values(), **changes})

    def describe(self) -> str:
        """One line: thresholds and account rules, e.g. for the help screen."""
        return (f"thresholds: large > {format_number(self.large_threshold)}, alert > "
                f"{format_number(self.alert_threshold)}; {self.account.describe(self.large_threshold)}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _account_problem(key: str, value: object) -> str | None:
    """What is wrong with one account-rule value, or None (the same limits as RuleSettings)."""
    if key == "enabled":
        return None if isinstance(value, bool) else "must be true or false"
    if key == "velocity_count":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        return None if ok else "must be a whole number >= 1"
    if key == "lateness":
        return None if _is_number(value) and 0 <= value < math.inf else "must be a number >= 0"  # type: ignore[operator]
    return None if _is_number(value) and 0 < value < math.inf else "must be a number > 0"  # type: ignore[operator]


def parse_value(key: str, text: str) -> object:
    """A setting typed from text (`800`, `true`, `3`); RulesError naming the key when it is not one."""
    text = text.strip()
    if key not in KEYS:
        raise RulesError(f"{key}: unknown setting; known: {', '.join(KEYS)}")
    if key == "enabled":
        words = {"true": True, "on": True, "yes": True, "false": False, "off": False, "no": False}
        if text.lower() not in words:
            raise RulesError(f"enabled: must be true or false, got {text!r}")
        return words[text.lower()]
    if key == "velocity_count":
        try:
            return int(text)
        except ValueError:
            raise RulesError(f"velocity_count: must be a whole number >= 1, got {text!r}") from None
    try:
        value = float(text)
    except ValueError:
        raise RulesError(f"{key}: must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise RulesError(f"{key}: must be a finite number, got {text!r}")
    return value


def parse_assignments(items: Iterable[str]) -> dict[str, object]:
    """`key=value` words (as `rules set` and the editor take them) as typed changes; RulesError if bad."""
    changes: dict[str, object] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RulesError(f"{item!r}: expected key=value, e.g. alert_threshold=800")
        changes[key] = parse_value(key, text)
    if not changes:
        raise RulesError("nothing to change: give key=value, e.g. alert_threshold=800")
    return changes


@dataclass(frozen=True)
class RulesVersion:
    """One version of the rules: its number, settings, author, time (ISO UTC ms) and reason."""

    version: int
    rules: Rules
    author: str
    at: str
    reason: str

    def encode(self) -> bytes:
        """The record's value on `txmon.rules`."""
        return orjson.dumps({"version": self.version, "settings": self.rules.values(), "author": self.author,
                             "at": self.at, "reason": self.reason})

    @property
    def key(self) -> str:
        """The record's key: the version, zero-padded (so compaction keeps every version)."""
        return version_key(self.version)

    def changes_from(self, previous: RulesVersion | None) -> list[tuple[str, object, object]]:
        """(key, old, new) for every setting that differs from `previous` (all, as None → value, if none)."""
        new = self.rules.values()
        old = previous.rules.values() if previous is not None else {}
        return [(key, old.get(key), new[key]) for key in KEYS if old.get(key) != new[key]]


def version_key(version: int) -> str:
    """The key of a version's record."""
    return f"{version:0{KEY_DIGITS}d}"


def decode(value: bytes) -> RulesVersion:
    """A `txmon.rules` record's value; RulesError naming the field when it is not a valid version."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise RulesError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RulesError("not a JSON object")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RulesError(f"version: must be a whole number >= 1, got {version!r}")
    settings = data.get("settings")
    if not isinstance(settings, dict):
        raise RulesError("settings: must be an object")
    for name in ("author", "at", "reason"):
        if not isinstance(data.get(name), str):
            raise RulesError(f"{name}: must be a string")
    return RulesVersion(version, Rules.from_values(settings), data["author"], data["at"], data["reason"])


def _decoded(records: Iterable[compacted.Record]) -> list[RulesVersion]:
    """The valid versions among records, in offset order (a foreign or damaged record is skipped)."""
    found = []
    for record in records:
        if record.value is None:
            continue
        try:
            found.append(decode(record.value))
        except RulesError:
            continue
    return found


def ensure_topic(client_config: Mapping[str, str]) -> None:
    """Create `txmon.rules` (compacted) if it is missing."""
    compacted.ensure(client_config, RULES)


def history(client_config: Mapping[str, str], limit: int | None = None) -> list[RulesVersion]:
    """Every version on the topic, oldest first (the last `limit` when given)."""
    ensure_topic(client_config)
    versions = _decoded(compacted.read_range(client_config, RULES))
    return versions[-limit:] if limit else versions


def latest(client_config: Mapping[str, str], create: bool = True) -> RulesVersion | None:
    """The version in force (the record at the last offset), or None when the topic is empty (or, with
    `create` False, missing: a reader that must not write to the cluster leaves it so)."""
    if create:
        ensure_topic(client_config)
    elif not compacted.exists(client_config, RULES):
        return None
    last = _decoded(compacted.read_range(client_config, RULES, start_back=1))
    if last:
        return last[-1]
    # The last record is not a version (a foreign write): the newest valid one before it is in force.
    versions = _decoded(compacted.read_range(client_config, RULES))
    return versions[-1] if versions else None


def publish(client_config: Mapping[str, str], new_rules: Rules | Mapping[str, Any], author: str,
            reason: str) -> RulesVersion:
    """Write the next version: `new_rules` in full, or changes over the latest. RulesError when the change
    is invalid, changes nothing, has no reason, or there is no version to change yet."""
    if not reason.strip():
        raise RulesError("reason: say why the rules change")
    if not author.strip():
        raise RulesError("author: must not be empty")
    current = latest(client_config)
    if isinstance(new_rules, Rules):
        rules = new_rules
    elif current is None:
        raise RulesError("no rules version yet: the first one comes from the settings file (seed)")
    else:
        rules = current.rules.with_changes(new_rules)
    if current is not None and rules == current.rules:
        raise RulesError(f"nothing changes: version {current.version} already says so")
    version = RulesVersion((current.version if current else 0) + 1, rules, author.strip(), utc_now(),
                           reason.strip())
    compacted.write(client_config, RULES, [(version.key, version.encode())])
    return version


def seed_if_empty(client_config: Mapping[str, str], rules_from_file: Rules,
                  author: str = "settings file") -> RulesVersion:
    """Version 1 from the settings file when the topic has no version yet; else the version in force."""
    current = latest(client_config)
    if current is not None:
        return current
    version = RulesVersion(1, rules_from_file, author, utc_now(), "seeded from the settings file")
    compacted.write(client_config, RULES, [(version.key, version.encode())])
    # Two starters may seed at once: whichever record is last is version 1 for everybody.
    return latest(client_config) or version


class RulesWatcher:
    """Follows `txmon.rules` in a background thread and keeps the version in force.

    `current()` is one attribute read (cheap, safe from any thread): the Spark job's driver calls it at
    the start of each micro-batch. Use as a context manager, or start() and close().
    """

    def __init__(self, client_config: Mapping[str, str]) -> None:
        self.client_config = dict(client_config)
        self._current: RulesVersion | None = None
        self._history: list[RulesVersion] = []  # every version read, in offset order (a few per day)
        self._changed = threading.Condition()
        self._follower = compacted.Follower(self.client_config, RULES, self._apply, "txmon-rules-watcher")

    def _apply(self, record: compacted.Record) -> None:
        versions = _decoded([record])
        if versions:
            with self._changed:
                self._current = versions[0]  # the last offset is in force, whatever its number
                self._history = [*self._history, versions[0]]  # a new list: readers keep a stable one
                self._changed.notify_all()

    def start(self, create: bool = True) -> RulesWatcher:
        """Create the topic if missing (unless not to `create`) and start following it."""
        if create:
            ensure_topic(self.client_config)
        self._follower.start()
        return self

    def current(self) -> RulesVersion | None:
        """The newest version read so far (None before the first one)."""
        return self._current

    def history(self) -> list[RulesVersion]:
        """Every version read so far, oldest first."""
        return self._history

    @property
    def error(self) -> str | None:
        """The last client error, if reading is failing now."""
        return self._follower.error

    def wait_caught_up(self, timeout: float) -> bool:
        """Wait until every version present at the start was read; False on timeout."""
        return self._follower.caught_up.wait(timeout)

    def wait_for_version(self, version: int, timeout: float) -> RulesVersion | None:
        """Wait until a version >= `version` is in force; it, or None on timeout."""
        with self._changed:
            self._changed.wait_for(lambda: self._current is not None and self._current.version >= version,
                                   timeout)
            current = self._current
        return current if current is not None and current.version >= version else None

    def close(self) -> None:
        """Stop following."""
        self._follower.close()

    def __enter__(self) -> RulesWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def changes_text(changes: Iterable[tuple[str, object, object]]) -> str:
    """`alert_threshold 900 → 800, enabled true → false` for a history line."""
    text = ", ".join(f"{key} {show_value(old)} → {show_value(new)}" for key, old, new in changes)
    return text or "no change"


def show_value(value: object) -> str:
    """A setting as the history and the rules screen show it."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def history_lines(versions: list[RulesVersion]) -> list[str]:
    """One line per version, newest first: number, when, who, old → new, why."""
    lines = []
    previous: RulesVersion | None = None
    rows = []
    for version in versions:
        rows.append((version, version.changes_from(previous)))
        previous = version
    for version, changes in reversed(rows):
        what = "initial" if version.version == 1 and len(changes) == len(KEYS) else changes_text(changes)
        lines.append(f"v{version.version}  {version.at}  {version.author}: {what} — {version.reason}")
    return lines


def show_lines(version: RulesVersion) -> list[str]:
    """The settings of a version, one `key = value` a line, under a heading."""
    head = f"rules version {version.version} by {version.author} at {version.at}: {version.reason}"
    return [head, *(f"  {key} = {show_value(value)}" for key, value in version.rules.values().items())]

