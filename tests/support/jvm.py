"""The environment in which `java` refuses to start: what tests without the `jvm` marker run under."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REFUSING_JAVA_HOME = Path(__file__).parent / "no_jvm"  # its bin/java says which marker is missing


def refuse_jvm(environ: Mapping[str, str]) -> dict[str, str]:
    """The JAVA_HOME and PATH under which `java` refuses to start (JAVA_HOME: Spark and the broker)."""
    return {"JAVA_HOME": str(REFUSING_JAVA_HOME),
            "PATH": f"{REFUSING_JAVA_HOME / 'bin'}{os.pathsep}{environ.get('PATH', '')}"}
