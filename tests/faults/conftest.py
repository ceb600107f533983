"""Fault tests: each on its own broker and data folder. Long ones run only with TXMON_LONG_TESTS=1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.rig import FaultRig

LONG_ENV = "TXMON_LONG_TESTS"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(LONG_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"long fault test: set {LONG_ENV}=1 to run it")
    for item in items:
        if "long" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[FaultRig]:
    """A started FaultRig (own broker, topics, monitor probe); everything it started stops at the end."""
    running = FaultRig(tmp_path)
    try:
        yield running.start()
    finally:
        running.close()
