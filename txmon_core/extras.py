"""The optional parts of an install (pyproject's extras) and the one line that says how to get one."""

from __future__ import annotations

import importlib.util
from collections.abc import Collection

SPARK, POSTGRES = "spark", "postgres"
# What each extra brings that a command checks for before it needs it: (import name, package name).
MODULES: dict[str, tuple[tuple[str, str], ...]] = {
    SPARK: (("pyspark", "pyspark"),),
    POSTGRES: (("psycopg", "psycopg"),),
}


def install_hint(extra: str) -> str:
    """The pip command that adds `extra` to an install."""
    return f"pip install 'txmon[{extra}]'"


def missing(extra: str, modules: Collection[str] | None = None) -> str | None:
    """`<package> is not installed: pip install 'txmon[<extra>]'` for the first absent module, or None.

    `modules` narrows the check to the import names a command needs from the extra.
    """
    for module, package in MODULES[extra]:
        if (modules is None or module in modules) and importlib.util.find_spec(module) is None:
            return f"{package} is not installed: {install_hint(extra)}"
    return None
