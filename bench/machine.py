"""The machine a benchmark ran on: cores, memory, load, Java and Python versions."""

from __future__ import annotations

import os
import platform
import subprocess
from functools import cache
from typing import Any

import psutil

from txmon_core import jars


@cache
def java_version() -> str:
    """The first line of `java -version` (it prints to stderr)."""
    try:
        result = subprocess.run(
            [jars.find_tool("java"), "-version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired, jars.MissingToolError) as exc:
        return f"unknown ({exc})"
    return (result.stderr or result.stdout).splitlines()[0].strip()


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages: other work may share these cores."""
    return [round(value, 2) for value in os.getloadavg()]


def machine() -> dict[str, Any]:
    """Everything a reader needs to compare runs across machines."""
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "java": java_version(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_at_start": load(),
    }
