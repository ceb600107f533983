"""Attaching to a running cluster writes nothing: no record, no topic, whatever keys are pressed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient

from tests.support.kafka import end_offsets
from tests.support.records import make_alert
from tests.support.screen import tailing
from tests.support.waiting import until, wait_until
from txmon_core.broker import EmbeddedBroker
from txmon_core.topics import ALERTS, TRANSACTIONS, ensure_topics
from txmon_tui import cli
from txmon_tui.app import create_app

pytestmark = [pytest.mark.integration, pytest.mark.jvm]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A broker of its own, set up as a cluster whose job already runs: topics exist, records in them."""
    with EmbeddedBroker(Path(tmp_path_factory.mktemp("cluster"))) as broker:
        client = {"bootstrap.servers": broker.bootstrap}
        ensure_topics(client)
        producer = Producer(client)
        for n in range(5):
            producer.produce(ALERTS, orjson.dumps(make_alert(f"attach-{n}", 950.0)), key=f"attach-{n}")
            producer.produce(TRANSACTIONS, b'{"tx_id": "x"}')
        assert producer.flush(10) == 0
        # Any consumer, ours included, asks for a group coordinator, and a broker creates its internal
        # __consumer_offsets topic on the first such request: on a real cluster it has long existed.
        wait_until(lambda: "__consumer_offsets" in cluster_state(broker.bootstrap), 30,
                   "the broker's __consumer_offsets topic")
        yield broker


def cluster_state(bootstrap: str) -> dict[str, list[int]]:
    """Every topic of the cluster (internal ones too) with the end offset of each partition."""
    names = sorted(AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics)
    return {name: [end for _p, end in sorted(end_offsets(bootstrap, name).items())] for name in names}


def quiet_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user with no settings file and no broker variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TXMON_")}
    return {**env, "PYTHONPATH": str(ROOT), "XDG_CONFIG_HOME": str(tmp_path / "config")}


def test_headless_attach_writes_nothing(cluster: EmbeddedBroker, tmp_path: Path) -> None:
    before = cluster_state(cluster.bootstrap)
    run = subprocess.run(
        [sys.executable, "-m", "txmon_tui", "-b", cluster.bootstrap, "--headless", "--duration", "4",
         "--data-dir", str(tmp_path / "data")],
        env=quiet_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert run.returncode in (0, 3), run.stderr  # ran (stalled is fine: nothing is produced), started
    summary = orjson.loads(run.stdout)
    assert summary["steps"]["producer"]["state"] == "skipped", summary["steps"]
    assert summary["steps"]["spark session"]["state"] == "skipped", summary["steps"]
    assert cluster_state(cluster.bootstrap) == before


async def test_attached_monitor_writes_nothing_whatever_is_pressed(cluster: EmbeddedBroker,
                                                                   tmp_path: Path) -> None:
    before = cluster_state(cluster.bootstrap)
    os.environ.pop("TXMON_SETTINGS", None)
    args = cli.build_parser().parse_args(["-b", cluster.bootstrap, "--data-dir", str(tmp_path),
                                          "--settings", str(write_empty(tmp_path))])
    app = create_app(cli.pipeline_config(args), confirm_quit=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await tailing(pilot, app)
        for key in ("p", "s", "plus", "minus", "b", "t", "p", "s"):
            await pilot.press(key)
        await pilot.pause(1.0)
        assert app.pipeline is not None and app.pipeline.processes == []  # nothing started
        await pilot.press("q")  # nothing runs: q closes the viewer at once, without asking
        await until(pilot, lambda: not app.is_running, "the monitor to close on one q")
    assert cluster_state(cluster.bootstrap) == before


def write_empty(tmp_path: Path) -> Path:
    """An empty settings file (so the user's own file plays no part)."""
    path = tmp_path / "txmon.toml"
    path.write_text("")
    return path
