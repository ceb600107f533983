"""Where txmon keeps its data and its downloaded jars (XDG folders, overridable), kept private: each
command starts with `private_files()` (or `private_data_dir()`), so what it writes is the user's only."""

from __future__ import annotations

import os
from pathlib import Path


def default_data_dir() -> Path:
    """The data folder: $TXMON_DATA_DIR, else $XDG_DATA_HOME/txmon, else ~/.local/share/txmon."""
    if env := os.environ.get("TXMON_DATA_DIR"):
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "txmon"


PRIVATE_UMASK = 0o077  # new files 0600, new folders 0700: alerts, logs and credentials are nobody else's


def private_files() -> None:
    """Make every file and folder this process (and its children: broker, Spark, producer) creates from
    now on readable by the user only. Called once, first thing, by each command."""
    os.umask(PRIVATE_UMASK)


def private_data_dir(data_dir: Path) -> Path:
    """`private_files()`, and `data_dir` created 0700 (an existing one of ours is narrowed to 0700):
    other local users cannot list or read anything below it, whoever wrote it."""
    private_files()
    data_dir.mkdir(parents=True, exist_ok=True)
    status = data_dir.stat()
    if status.st_mode & 0o077 and status.st_uid == os.getuid():
        os.chmod(data_dir, 0o700)
    return data_dir


def cache_dir() -> Path:
    """The cache for jars: $TXMON_CACHE_DIR, else $XDG_CACHE_HOME/txmon, else ~/.cache/txmon."""
    if env := os.environ.get("TXMON_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "txmon"
