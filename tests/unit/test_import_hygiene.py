"""The UI-free parts load without Textual, and nothing but the Spark job's modules imports pyspark."""

from __future__ import annotations

import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("producer", "spark_app", "txmon_core", "txmon_tui", "txmon_sinks")
# The only modules allowed to import Textual (the UI) or pyspark (the running job).
UI_MODULES = {"txmon_tui.app", "txmon_tui.messages", "txmon_tui.widgets"}
# The monitor's UI-free layer: driven by the app, the headless mode and the benchmark alike.
UI_FREE_PACKAGES = ("txmon_tui.monitor", "txmon_tui.supervise")
SPARK_JOB_MODULES = {"spark_app.job", "spark_app.progress", "spark_app.flagged", "spark_app.transforms",
                     "spark_app.session", "spark_app.realtime", "spark_app.replay",
                     "spark_app.class_archive"}


def _modules() -> list[str]:
    """Every module of the packages, found on disk so modules added later are covered too."""
    names = []
    for package in PACKAGES:
        names.append(package)
        for info in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            names.append(info.name)
    return sorted(names)


def _is_ui(name: str) -> bool:
    return any(name == ui or name.startswith(f"{ui}.") for ui in UI_MODULES)


def _loaded_by(modules: list[str]) -> set[str]:
    """Top-level packages in sys.modules after importing `modules` in a fresh interpreter."""
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def test_there_is_something_to_check() -> None:
    modules = _modules()
    assert "producer.cli" in modules and "txmon_core.records.alert" in modules and "txmon_tui.cli" in modules
    assert {"txmon_tui.monitor.session", "txmon_tui.supervise.pipeline"} <= set(modules)


@pytest.mark.parametrize("name", [m for m in _modules() if not _is_ui(m) and m not in SPARK_JOB_MODULES
                                  and not m.endswith(".__main__")])
def test_module_loads_without_textual_or_pyspark(name: str) -> None:
    loaded = _loaded_by([name])
    assert "textual" not in loaded, f"{name} imports Textual"
    assert "pyspark" not in loaded, f"{name} imports pyspark"


def test_only_the_spark_job_imports_pyspark() -> None:
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if module in SPARK_JOB_MODULES:
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(n == "pyspark" or n.startswith("pyspark.") for n in names):
                    offenders.append(module)
    assert offenders == [], f"pyspark imported outside the Spark job: {sorted(set(offenders))}"


def test_only_the_ui_modules_import_textual() -> None:
    offenders = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            if _is_ui(module):
                continue
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                if any(n.split(".")[0] in ("textual", "textual_plotext") for n in names):
                    offenders.append(module)
    assert offenders == [], f"Textual imported outside the UI modules: {sorted(set(offenders))}"


def _imported_names(path: Path) -> list[str]:
    """Every module an `import` or `from … import` in the file names (relative imports as written)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names += [f"{node.module}.{alias.name}" if node.module else alias.name for alias in node.names]
    return names


@pytest.mark.parametrize("package", UI_FREE_PACKAGES)
def test_the_ui_free_layer_imports_no_ui_module(package: str) -> None:
    """Not even lazily: the headless mode and the benchmark run it with no screen (and no Textual)."""
    offenders = []
    for path in (ROOT / package.replace(".", "/")).rglob("*.py"):
        for name in _imported_names(path):
            if _is_ui(name) or name.split(".")[0] in ("textual", "textual_plotext"):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == [], f"{package} imports UI modules: {offenders}"


def test_supervise_is_below_the_monitor() -> None:
    """The monitor reads the processes' views; the supervision never reads the monitor (no circle)."""
    offenders = [f"{path.relative_to(ROOT)}: {name}"
                 for path in (ROOT / "txmon_tui" / "supervise").rglob("*.py")
                 for name in _imported_names(path) if name.startswith("txmon_tui.monitor")]
    assert offenders == [], f"txmon_tui.supervise imports the monitor: {offenders}"
