"""The monitor's UI-free core loads without Textual (and without pyspark)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CORE = ["supervisor", "pipeline", "tail", "stats", "health", "model", "history", "report", "headless"]


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_neither_textual_nor_pyspark(module: str) -> None:
    code = (
        f"import sys, txmon_tui.{module}; "
        "roots = ('textual', 'pyspark', 'textual_plotext'); "
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in roots); "
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
