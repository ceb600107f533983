"""The settings file, txmon.toml: rules, validation, alert sinks and storage in one place.

Each section belongs to the module that uses it ([rules] to the rules, [validation] to the Spark job's
spark_app.validation, [sinks.*] and [storage] to alert delivery); this module only finds, reads and
checks the file's syntax, so that every command reports a bad file the same way. Command-line flags
override what the file says.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
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
    """The file's tables; empty when no path is given and the default file does not exist."""
    explicit = path is not None
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
        help=f"rules, validation, alert sinks and storage (TOML; default {default_settings_path()} when "
        f"present, env {SETTINGS_ENV})",
    )


def resolve(parsed: dict[str, Any] | None) -> dict[str, Any]:
    """What --settings gave, or the default file's tables when the flag was not used."""
    return parsed if parsed is not None else load()
