"""`python -m bench tail-delay`: the delay the monitor's Tail adds to each record.

Writes 200 alert records 20 ms apart to a fresh embedded broker, twice, and times, per record,
produce → received by Tail.poll(0.2), what the monitor does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

from bench.consumer import alert_values
from bench.pipeline import percentiles, save
from txmon_core import topics
from txmon_core.broker import EmbeddedBroker
from txmon_tui.monitor.tail import Tail, TailBatch

RECORDS, GAP_S = 200, 0.02


def delays(
    client: dict[str, str], poll: Callable[[Tail], TailBatch], records: list[tuple[bytes, bytes]]
) -> list[float]:
    """Seconds from produce() to the tail's batch, per record."""
    tail = Tail(client)
    sent: dict[str, float] = {}
    producer = Producer({**client, "linger.ms": 0})
    done = threading.Event()

    def produce() -> None:
        for key, value in records:
            sent[key.decode()] = time.time()
            producer.produce(topics.ALERTS, value, key)
            producer.poll(0)
            time.sleep(GAP_S)  # the pace of the workload, not a wait for a condition
        producer.flush(10)
        done.set()

    writer = threading.Thread(target=produce, daemon=True)
    writer.start()
    found: list[float] = []
    deadline = time.monotonic() + 60
    try:
        while (not done.is_set() or len(found) < len(records)) and time.monotonic() < deadline:
            batch = poll(tail)
            found += [batch.received_at - sent[a.tx_id] for a in batch.alerts]
    finally:
        writer.join(10)
        tail.close()
    return found


def main(argv: list[str] | None = None) -> int:
    """Measure both ways, print and save the percentiles."""
    from bench import machine

    parser = argparse.ArgumentParser(prog="python -m bench tail-delay", description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    result: dict[str, Any] = {"kind": "tail-delay", "machine": machine.machine()}
    ways: dict[str, Callable[[Tail], TailBatch]] = {"tail_poll_0.2": lambda t: t.poll(0.2)}
    with tempfile.TemporaryDirectory(prefix="txmon-bench-") as tmp, EmbeddedBroker(Path(tmp)) as broker:
        client = {"bootstrap.servers": broker.bootstrap}
        topics.ensure_topics(client, topics.ALL)
        records = alert_values(RECORDS * 2)
        found: dict[str, list[float]] = {name: [] for name in ways}
        for n in range(2):
            name = list(ways)[n % len(ways)]
            found[name] += delays(client, ways[name], records[n * RECORDS : (n + 1) * RECORDS])
    result.update({name: percentiles(values) for name, values in found.items()})
    result["load_at_end"] = machine.load()
    print(f"saved {save(result, 'tail-delay')}", file=sys.stderr)
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
