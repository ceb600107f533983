"""A test without the `jvm` marker cannot start a JVM: `java` refuses, from PATH and from JAVA_HOME."""

from __future__ import annotations

import subprocess

from tests.support.jvm import REFUSING_JAVA_HOME
from txmon_core import jars


def test_java_refuses_naming_the_marker() -> None:
    result = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 97
    assert "mark it @pytest.mark.jvm" in result.stderr


def test_the_broker_and_spark_find_the_refusing_java() -> None:
    # The broker takes `java` from jars.find_tool; Spark's launcher from JAVA_HOME.
    assert jars.find_tool("java") == str(REFUSING_JAVA_HOME / "bin" / "java")
