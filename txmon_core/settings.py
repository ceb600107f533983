"""The settings file, txmon.toml: Kafka, topics, monitor, rules, validation, sinks and storage in one place.

Each section belongs to the module that uses it ([rules] to the rules, [validation] to the Spark job's
spark_app.validation, [sinks.*] and [storage] to alert delivery); this module only finds, reads and
checks the file's syntax, so that every command reports a bad file the same way. Command-line flags
override what the file says.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tomllib

SETTINGS_ENV = "TXMON_SETTINGS"
FILE_NAME = "txmon.toml"


class Settings(dict[str, Any]):
    """The tables of one settings file, and the file they came from (for child processes)."""

    def __init__(self, tables: Mapping[str, Any], path: Path | None = None) -> None:
        super().__init__(tables)
        self.path = path


class SettingsError(ValueError):
    """The settings file cannot be read or says something txmon cannot use; the message says where."""


def default_settings_path() -> Path:
    """$TXMON_SETTINGS, else $XDG_CONFIG_HOME/txmon/txmon.toml, else ~/.config/txmon/txmon.toml."""
    if env := os.environ.get(SETTINGS_ENV):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "txmon" / FILE_NAME


def load(path: Path | None = None) -> Settings:
    """The file's tables; empty when no path is given and the default file does not exist.

    A file named by --settings or by $TXMON_SETTINGS must exist: a typo there must not silently run
    without the settings the user meant.
    """
    explicit = path is not None or bool(os.environ.get(SETTINGS_ENV))
    path = path if path is not None else default_settings_path()
    if not explicit and not path.exists():
        return Settings({})
    try:
        with open(path, "rb") as file:
            return Settings(tomllib.load(file), path)
    except OSError as exc:
        raise SettingsError(f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: {exc}") from None


def section(settings: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """One table of the settings ({} when absent), e.g. section(s, "rules")."""
    value = settings.get(name, {})
    if not isinstance(value, Mapping):
        raise SettingsError(f"[{name}] must be a table, not {type(value).__name__}")
    return value


def known_keys(name: str, table: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """A copy of the [name] table; SettingsError naming its unknown keys, and the known ones."""
    known = sorted(known)
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise SettingsError(f"[{name}]: unknown key(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return dict(table)


def settings_file(text: str) -> dict[str, Any]:
    """An argparse type for --settings FILE: the file's tables, or one clear line on what is wrong."""
    try:
        return load(Path(text))
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_settings_option(parser: argparse.ArgumentParser) -> None:
    """Add --settings FILE (default: the txmon.toml of default_settings_path(), when present)."""
    parser.add_argument(
        "--settings",
        metavar="FILE",
        type=settings_file,
        default=None,
        help=f"the settings file: kafka, topics, monitor, rules, validation, alert sinks, storage (TOML; "
        f"default {default_settings_path()} when present, env {SETTINGS_ENV}, which must then exist)",
    )


def path_of(parsed: Mapping[str, Any] | None) -> Path | None:
    """The file the settings came from (None when there was none)."""
    return getattr(parsed, "path", None)


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_PART_TEXT = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""  # a bare or quoted key
_KEY = re.compile(rf"^\s*({_PART_TEXT}(?:\s*\.\s*{_PART_TEXT})*)\s*=")
_PART = re.compile(_PART_TEXT)


def _parts(dotted: str) -> tuple[str, ...]:
    return tuple(part.strip("\"'") for part in _PART.findall(dotted))


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Where each table and key of a TOML text is defined: (table..., key) -> line number (1-based).

    A table's own entry is its header's line. Good enough to point at a line, not a TOML parser:
    lines inside multi-line strings are skipped.
    """
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    in_string = False
    for number, line in enumerate(text.splitlines(), 1):
        if in_string:
            in_string = line.count('"""') % 2 == 0 and line.count("'''") % 2 == 0
            continue
        if (header := _HEADER.match(line)) and "=" not in line.split("]")[0]:
            table = _parts(header.group(1))
            lines.setdefault(table, number)
            continue
        if key := _KEY.match(line):
            lines.setdefault(table + _parts(key.group(1)), number)
            rest = line[key.end():]
            in_string = rest.count('"""') % 2 == 1 or rest.count("'''") % 2 == 1
    return lines


def resolve(parsed: dict[str, Any] | None) -> dict[str, Any]:
    """What --settings gave, or the default file's tables when the flag was not used."""
    return parsed if parsed is not None else load()
