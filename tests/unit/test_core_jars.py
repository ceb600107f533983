"""How Maven is run to fetch the jars: strict checksums, and a command line this Maven accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from txmon_core import jars


@pytest.mark.jvm  # the installed Maven runs on a JVM
def test_maven_fails_on_a_checksum_mismatch_rather_than_warning(tmp_path: Path) -> None:
    for kind in ("broker", "spark"):
        command = jars.maven_command("mvn", kind, tmp_path / kind)
        assert "--strict-checksums" in command
        assert f"-DoutputDirectory={tmp_path / kind}" in command
    # The installed Maven takes the options (an unknown one would end the run with a usage error).
    options = [arg for arg in command[1:] if arg.startswith("-") and not arg.startswith(("-D", "-f"))]
    result = subprocess.run([jars.find_tool("mvn"), *options, "--version"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
