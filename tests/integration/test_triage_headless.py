"""`--headless` delivery honours the silences every monitor shares: a silenced account's alerts are
stored but never written to the JSONL file."""

from __future__ import annotations

import dataclasses
import io
import threading
import time
import uuid
from pathlib import Path

import orjson
from confluent_kafka import Producer

from spark_app.formats import Alert
from tests.conditions import wait_until
from txmon_core.broker import EmbeddedBroker
from txmon_core.topics import ALERTS, ensure_topics
from txmon_core.triage import SCOPE_ACCOUNT, iso
from txmon_core.triage_service import TriageService
from txmon_sinks import AlertStore, Delivery, Outlets
from txmon_sinks.config import delivery_config
from txmon_tui.monitor import headless
from txmon_tui.supervise.config import PipelineConfig


def feed(bootstrap: str, accounts: tuple[str, str], stop: threading.Event) -> None:
    """Stand in for Spark: one alert per account every 0.2 s."""
    producer = Producer({"bootstrap.servers": bootstrap})
    n = 0
    while not stop.wait(0.2):
        now = iso(time.time())
        for account in accounts:
            alert = Alert(f"{account}-{n}", account, "Lidl", 950.0, "RON", now, "alert", "amount>900", now)
            producer.produce(ALERTS, key=alert.tx_id.encode(), value=orjson.dumps(dataclasses.asdict(alert)))
        n += 1
        producer.poll(0)
    producer.flush(10)


def test_headless_keeps_a_silenced_account_out_of_the_jsonl_file(broker: EmbeddedBroker,
                                                                 tmp_path: Path) -> None:
    client = {"bootstrap.servers": broker.bootstrap}
    ensure_topics(client)
    run = uuid.uuid4().hex[:8]
    quiet, loud = f"RO49HQUIET{run}", f"RO49HLOUD{run}"
    with TriageService(client, "alice") as alice:
        assert alice.wait_caught_up(20)
        alice.silence(SCOPE_ACCOUNT, quiet, 600, "outage at the merchant")
    config = PipelineConfig(bootstrap=broker.bootstrap, data_dir=tmp_path, run_producer=False,
                            run_spark=False)
    settings = {"sinks": {"jsonl": {"fsync": False}}, "storage": {}}
    outlets = Outlets(Delivery(delivery_config(settings, tmp_path)))
    outlets.start()
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(broker.bootstrap, (quiet, loud), stop))
    feeder.start()
    try:
        headless.run(config, duration=6.0, out=io.StringIO(), err=io.StringIO(), outlets=outlets)
    finally:
        stop.set()
        feeder.join(30)
    # What was pending at the end goes out on the next start: the database then holds every alert.
    with Delivery.from_settings(settings, tmp_path) as after:
        wait_until(lambda: all(h.pending == 0 for h in after.health()), 20, "the outbox drained")
    lines = (tmp_path / "alerts.jsonl").read_bytes().splitlines()
    accounts = [orjson.loads(line)["account_id"] for line in lines]
    assert accounts and set(accounts) == {loud}, "the silenced account reached the file"
    storage = delivery_config(settings, tmp_path).storage
    assert storage is not None
    store = AlertStore(storage.url)
    try:
        assert sum(store.counts_per_level(account=quiet).values()) > 0  # stored all the same
    finally:
        store.close()
