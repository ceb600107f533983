"""Fixtures shared by every test folder: one real Kafka broker per test session, and the `jvm` guard.

A test that starts a JVM (the Kafka broker, a Spark job or session) carries the `jvm` marker, so that
`pytest -m "not jvm"` is the fast run. Tests using a JVM fixture get the marker here. A run that selects
no `jvm` test gets a `java` that refuses to start (tests/support/no_jvm), from its start, for every
fixture and child process; in a mixed run, each unmarked test gets it for its own duration. Either way
an unmarked JVM start fails loudly instead of slowing the fast run down.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.jvm import refuse_jvm
from txmon_core.broker import EmbeddedBroker

# Fixtures that start a JVM, here or in a folder's conftest: the Kafka broker, Spark, a fault rig's broker.
JVM_FIXTURES = frozenset({"broker", "spark", "rig"})


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if JVM_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.jvm)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.items and not any(item.get_closest_marker("jvm") for item in session.items):
        os.environ.update(refuse_jvm(os.environ))  # before any fixture, whatever its scope


@pytest.fixture(autouse=True)
def no_jvm_unless_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """Outside `jvm` tests, `java` (from JAVA_HOME or PATH, in this process and its children) refuses."""
    # A MonkeyPatch of its own: the test's `monkeypatch` must stay free to be undone in the test's order.
    with pytest.MonkeyPatch.context() as patch:
        if request.node.get_closest_marker("jvm") is None:
            for name, value in refuse_jvm(os.environ).items():
                patch.setenv(name, value)
        yield


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A real single-node Kafka broker on 127.0.0.1, started once and stopped at the end, pass or fail."""
    with EmbeddedBroker(Path(tmp_path_factory.mktemp("broker"))) as running:
        yield running
