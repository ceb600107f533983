"""Fixtures shared by every test folder: one real Kafka broker per test session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from txmon_core.broker import EmbeddedBroker


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A real single-node Kafka broker on 127.0.0.1, started once and stopped at the end, pass or fail."""
    with EmbeddedBroker(Path(tmp_path_factory.mktemp("broker"))) as running:
        yield running
