"""The monitor's tail as a process of its own, so the benchmark can measure its CPU and memory.

    python -m bench.tail -b HOST:PORT --out FILE

Does what the monitor does with Kafka (a txmon_tui.monitor.session.MonitorSession polled every 0.2 s,
each batch applied to its MonitorModel), and also keeps, for every flagged record received, its tx_id,
event time, detection time and the wall time the tail received it. Prints a status line (JSON) twice
a second on stdout; on SIGTERM writes everything to `--out` and exits.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from array import array
from typing import Any

import orjson

from spark_app.formats import LEVEL_ALERT
from txmon_tui.monitor.model import MonitorModel
from txmon_tui.monitor.session import MonitorSession
from txmon_tui.monitor.stats import TimestampParser

STATUS_EVERY = 0.5
# The monitor's poll timeout (txmon_tui.widgets.session_workers.TAIL_POLL_SECONDS, headless 0.2 too);
# importing it would load Textual, which the tail does not need.
TAIL_POLL_SECONDS = 0.2


class Recorder:
    """Every flagged record the tail received, once per tx_id, plus the repeats and Spark's metrics."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.tx_ids: list[str] = []
        self.levels = bytearray()  # 1 = alert, 0 = large
        self.event_s = array("d")  # transaction ts, epoch seconds
        self.detected_s = array("d")  # Spark's detected_at
        self.received_s = array("d")  # when the tail's poll returned the record
        self.duplicates = 0
        self.undecodable = 0
        self.metrics: list[dict[str, Any]] = []
        self.parser = TimestampParser()

    def add(self, batch: Any) -> None:
        """Keep one TailBatch's flagged records and metrics."""
        self.undecodable += batch.undecodable
        self.metrics.extend(
            {"received_s": batch.received_at, **orjson.loads(orjson.dumps(m))} for m in batch.metrics
        )
        fresh = []
        for alert in batch.alerts:
            if alert.tx_id in self.seen:
                self.duplicates += 1
            else:
                self.seen.add(alert.tx_id)
                fresh.append(alert)
        if not fresh:
            return
        nan = float("nan")
        self.tx_ids.extend(a.tx_id for a in fresh)
        self.levels.extend(1 if a.level == LEVEL_ALERT else 0 for a in fresh)
        self.event_s.extend(nan if e is None else e for e in self.parser.epochs(a.ts for a in fresh))
        self.detected_s.extend(
            nan if e is None else e for e in self.parser.epochs(a.detected_at for a in fresh)
        )
        self.received_s.extend([batch.received_at] * len(fresh))

    def status(self) -> dict[str, Any]:
        """The running figures the benchmark watches (to know when the pipeline has drained)."""
        ends: dict[str, dict[str, int]] = {}
        rows: dict[str, int] = {}
        for m in self.metrics:
            ends[m["query"]] = m["end_offsets"] or ends.get(m["query"], {})
            rows[m["query"]] = rows.get(m["query"], 0) + m["num_input_rows"]
        return {
            "at": time.time(),
            "unique": len(self.tx_ids),
            "duplicates": self.duplicates,
            "first_received_s": self.received_s[0] if self.received_s else None,
            "end_offsets": ends,
            "rows": rows,
        }

    def dump(self) -> bytes:
        """Everything, as one JSON document."""
        return orjson.dumps(
            {
                "tx_ids": self.tx_ids,
                "levels": list(self.levels),
                "event_s": list(self.event_s),
                "detected_s": list(self.detected_s),
                "received_s": list(self.received_s),
                "duplicates": self.duplicates,
                "undecodable": self.undecodable,
                "metrics": self.metrics,
            }
        )


def main(argv: list[str] | None = None) -> int:
    """Tail until SIGTERM, then write the record."""
    parser = argparse.ArgumentParser(prog="python -m bench.tail", description=__doc__.splitlines()[0])
    parser.add_argument("-b", "--bootstrap-servers", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: stop.set())
    session = MonitorSession(MonitorModel())
    session.open_tail({"bootstrap.servers": args.bootstrap_servers})
    recorder = Recorder()
    print("tail ready", flush=True)
    next_status = 0.0
    try:
        while not stop.is_set():
            batch = session.poll(TAIL_POLL_SECONDS)
            if batch:
                session.model.apply(batch)  # the monitor's own per-batch work, so its cost is counted
                recorder.add(batch)
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + STATUS_EVERY
                sys.stdout.write(orjson.dumps(recorder.status()).decode() + "\n")
                sys.stdout.flush()
    finally:
        session.close()
    with open(args.out, "wb") as out:
        out.write(recorder.dump())
    return 0


if __name__ == "__main__":
    sys.exit(main())
