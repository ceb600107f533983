"""Where txmon keeps its data and its downloaded jars (XDG folders, overridable)."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """The data folder: $TXMON_DATA_DIR, else $XDG_DATA_HOME/txmon, else ~/.local/share/txmon."""
    if env := os.environ.get("TXMON_DATA_DIR"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "txmon"


def cache_dir() -> Path:
    """The cache for jars: $TXMON_CACHE_DIR, else $XDG_CACHE_HOME/txmon, else ~/.cache/txmon."""
    if env := os.environ.get("TXMON_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "txmon"
