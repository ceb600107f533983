"""Fixtures for the monitor's tests: a writer of known records and the app, on the session's broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.records import Records
from txmon_core.broker import EmbeddedBroker
from txmon_core.topics import ensure_topics
from txmon_tui.app import MonitorApp, create_app
from txmon_tui.supervise.config import PipelineConfig


@pytest.fixture
def records(broker: EmbeddedBroker) -> Iterator[Records]:
    """A writer of known records; the topics exist before the test starts."""
    ensure_topics({"bootstrap.servers": broker.bootstrap})
    writer = Records(broker.bootstrap)
    yield writer
    writer.flush()


@pytest.fixture
def config(broker: EmbeddedBroker, tmp_path: Path) -> PipelineConfig:
    """The monitor on the test broker, starting no children."""
    return PipelineConfig(bootstrap=broker.bootstrap, data_dir=tmp_path, run_producer=False, run_spark=False)


@pytest.fixture
def app(config: PipelineConfig) -> MonitorApp:
    """The monitor as the CLI builds it, on the test broker."""
    return create_app(config)


