"""The monitor's CPU and memory at set alert rates, sampled from outside while it runs in tmux.

`python -m bench.monitor [--rates 0,1000,5000] [--seconds 60] [--json]` starts the embedded broker,
runs `txmon-tui --no-producer --no-spark` in a real terminal (tmux, 120x40), feeds the `alerts` topic
(plus one `metrics` record per second per query) from a separate feeder process at each rate, and
samples the monitor's CPU (cpu_times delta over the window, after a warm-up) and peak RSS with psutil.
It also checks that the screen changes within 0.5 s while data flows. Results go to bench/results/.

`--soak 600 [--soak-rate 5000]` then feeds one rate for that long after a warm-up of SOAK_WARMUP_S,
samples RSS every SOAK_SAMPLE_S and reports the least-squares slope (MB per minute): memory is flat when
the slope is near zero.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil
from confluent_kafka import Consumer, Producer, TopicPartition

from txmon_core import topics
from txmon_core.broker import EmbeddedBroker
from txmon_core.lifetime import die_with_parent
from txmon_core.records.alert import LEVEL_ALERT, LEVEL_LARGE, Alert
from txmon_core.records.metrics import QUERY_ALERTS, QUERY_PARQUET, BatchMetrics

RESULTS_DIR = Path(__file__).with_name("results")
WIDTH, HEIGHT = 120, 40
WARMUP_S = 10.0
TICK_S = 0.01
SAMPLE_S = 0.5
CPU_GOALS_PCT = {0: 0.5, 1000: 15.0, 5000: 25.0}  # issue 3, % of one core
RSS_GOAL_MB = 120.0
SOAK_WARMUP_S = 60.0  # the de-duplication window (200,000 tx ids) fills in 40 s at 5,000/s
SOAK_SAMPLE_S = 5.0
SOAK_FLAT_MB_PER_MIN = 0.2  # 2 MB over 10 minutes: flat, within the allocator's noise
ACCOUNTS = [f"ACC{n:05d}" for n in range(2000)]
MERCHANTS = ["Acme Stores", "Globex", "Initech", "Umbrella", "Hooli", "Stark Retail", "Wayne Fuel", "Soylent"]


def iso_now() -> str:
    """Now in UTC as `YYYY-mm-ddTHH:MM:SS.mmmZ`."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def make_alert(tx_id: str, ts: str, rng: random.Random) -> bytes:
    """One `alerts` record: ~30% level alert (900.01-1000), the rest large (500.01-900)."""
    if rng.random() < 0.3:
        level, rule, amount = LEVEL_ALERT, "amount>900", round(rng.uniform(900.01, 1000.0), 2)
    else:
        level, rule, amount = LEVEL_LARGE, "amount>500", round(rng.uniform(500.01, 900.0), 2)
    alert = Alert(tx_id=tx_id, account_id=rng.choice(ACCOUNTS), merchant=rng.choice(MERCHANTS),
                  amount=amount, currency="EUR", ts=ts, level=level, rule=rule, detected_at=ts)
    return orjson.dumps(alert)


def feed(bootstrap: str, rate: float) -> int:
    """Feeder process: produce alerts at `rate`/s in 10 ms batches plus metrics each second, until SIGTERM."""
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "compression.type": "lz4",
                         "queue.buffering.max.messages": 1_000_000})
    rng = random.Random(7)
    prefix = f"bench-{os.getpid()}-{time.time_ns()}-"
    start = time.monotonic()
    sent = 0
    batch_id = 0
    counts = {LEVEL_ALERT: 0, LEVEL_LARGE: 0}
    next_metrics = start + 1.0
    next_tick = start
    while not stopping:
        now = time.monotonic()
        due = int(rate * (now - start)) - sent
        if due > 0:
            ts = iso_now()
            for _ in range(due):
                tx_id = f"{prefix}{sent}"
                value = make_alert(tx_id, ts, rng)
                counts[LEVEL_ALERT if b'"level":"alert"' in value else LEVEL_LARGE] += 1
                try:
                    producer.produce(topics.ALERTS, value, key=tx_id.encode())
                except BufferError:
                    producer.poll(0.05)
                    producer.produce(topics.ALERTS, value, key=tx_id.encode())
                sent += 1
        producer.poll(0)
        if now >= next_metrics:
            flagged = counts[LEVEL_ALERT] + counts[LEVEL_LARGE]
            for query in (QUERY_ALERTS, QUERY_PARQUET):
                metrics = BatchMetrics(
                    query=query, batch_id=batch_id, timestamp=iso_now(), num_input_rows=flagged * 10,
                    input_rows_per_second=flagged * 10.0, processed_rows_per_second=flagged * 10.0,
                    batch_duration_ms=200, end_offsets={"0": sent * 10}, large=counts[LEVEL_LARGE],
                    alerts=counts[LEVEL_ALERT], dead_letters=0)
                producer.produce(topics.METRICS, orjson.dumps(metrics), key=query.encode())
            batch_id += 1
            counts = {LEVEL_ALERT: 0, LEVEL_LARGE: 0}
            next_metrics += 1.0
        next_tick += TICK_S
        time.sleep(max(0.0, next_tick - time.monotonic()))
    producer.flush(10)
    elapsed = time.monotonic() - start
    print(orjson.dumps({"sent": sent, "elapsed_s": round(elapsed, 3)}).decode(), flush=True)
    return 0


def tmux(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a tmux command on our private server."""
    return subprocess.run(["tmux", "-L", socket, "-f", "/dev/null", *args],
                          capture_output=True, text=True, timeout=15, check=False)


def capture(socket: str) -> str:
    """The pane's visible text."""
    return tmux(socket, "capture-pane", "-p", "-t", "bench").stdout


def find_monitor(socket: str, timeout: float = 30.0) -> psutil.Process:
    """The python process running txmon_tui inside the tmux pane."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = tmux(socket, "list-panes", "-t", "bench", "-F", "#{pane_pid}").stdout.split()
        if out:
            try:
                pane = psutil.Process(int(out[0]))
                for proc in [pane, *pane.children(recursive=True)]:
                    cmdline = proc.cmdline()
                    # The python process itself, not the `sh -c` tmux may wrap it in.
                    if "python" in Path(cmdline[0]).name and "txmon_tui" in cmdline:
                        return proc
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.2)
    raise RuntimeError("txmon_tui process not found in the tmux pane")


def alerts_end(consumer: Consumer) -> int:
    """Sum of the `alerts` topic's end offsets."""
    meta = consumer.list_topics(topics.ALERTS, timeout=10).topics[topics.ALERTS]
    return sum(consumer.get_watermark_offsets(TopicPartition(topics.ALERTS, p), timeout=10)[1]
               for p in meta.partitions)


def screen_changes(socket: str) -> dict[str, Any]:
    """Capture the pane twice, 0.5 s apart; how many lines differ."""
    first = capture(socket).splitlines()
    time.sleep(0.5)
    second = capture(socket).splitlines()
    differing = sum(1 for a, b in zip(first, second, strict=False) if a != b) + abs(len(first) - len(second))
    return {"changed": differing > 0, "lines_changed": differing}


def measure(socket: str, monitor: psutil.Process, consumer: Consumer, bootstrap: str,
            rate: int, seconds: float) -> dict[str, Any]:
    """One rate: feed, warm up, then CPU and RSS over the window and the screen check."""
    feeder: subprocess.Popen[str] | None = None
    try:
        if rate > 0:
            feeder = subprocess.Popen(
                [sys.executable, "-m", "bench.monitor", "--feed", str(rate), "--bootstrap", bootstrap],
                stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, preexec_fn=die_with_parent())
        time.sleep(WARMUP_S)
        rss_start = monitor.memory_info().rss
        peak_rss = rss_start
        offset0 = alerts_end(consumer)
        t0 = time.monotonic()
        cpu0 = monitor.cpu_times()
        screen: dict[str, Any] | None = None
        while time.monotonic() - t0 < seconds:
            time.sleep(SAMPLE_S)
            peak_rss = max(peak_rss, monitor.memory_info().rss)
            if screen is None and time.monotonic() - t0 >= seconds / 2:
                screen = screen_changes(socket)
        cpu1 = monitor.cpu_times()
        window = time.monotonic() - t0
        offset1 = alerts_end(consumer)
        rss_end = monitor.memory_info().rss
        load = os.getloadavg()
    finally:
        feeder_out = ""
        if feeder is not None:
            feeder.terminate()
            try:
                feeder_out, _ = feeder.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                feeder.kill()
                feeder.communicate()
    cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    cpu_pct = 100.0 * cpu_s / window
    cpu_goal = CPU_GOALS_PCT.get(rate)
    rss_mb = peak_rss / 2**20
    return {
        "rate": rate,
        "achieved_alerts_per_s": round((offset1 - offset0) / window, 1),
        "window_s": round(window, 2),
        "cpu_pct_of_core": round(cpu_pct, 2),
        "cpu_goal_pct": cpu_goal,
        "cpu_ok": None if cpu_goal is None else cpu_pct <= cpu_goal,
        "rss_peak_mb": round(rss_mb, 1),
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_goal_mb": RSS_GOAL_MB,
        "rss_ok": rss_mb <= RSS_GOAL_MB,
        "screen_changed": screen["changed"] if screen else None,
        "screen_lines_changed": screen["lines_changed"] if screen else None,
        "screen_ok": None if rate == 0 or screen is None else screen["changed"],
        "loadavg": [round(x, 2) for x in load],
        "feeder": orjson.loads(feeder_out.strip().splitlines()[-1]) if feeder_out.strip() else None,
    }


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (v - mean_v) for t, v in samples)
    return 60.0 * cov / var if var else 0.0


def soak(socket: str, monitor: psutil.Process, consumer: Consumer, bootstrap: str,
         rate: int, seconds: float) -> dict[str, Any]:
    """One long run at one rate: RSS every SOAK_SAMPLE_S after SOAK_WARMUP_S, its slope, CPU, screen."""
    feeder = subprocess.Popen(
        [sys.executable, "-m", "bench.monitor", "--feed", str(rate), "--bootstrap", bootstrap],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, preexec_fn=die_with_parent())
    try:
        time.sleep(SOAK_WARMUP_S)
        offset0 = alerts_end(consumer)
        t0 = time.monotonic()
        cpu0 = monitor.cpu_times()
        samples: list[tuple[float, float]] = []
        screens: list[bool] = []
        while (elapsed := time.monotonic() - t0) < seconds:
            samples.append((elapsed, monitor.memory_info().rss / 2**20))
            if len(samples) % 12 == 0:  # once a minute: does the screen still move?
                screens.append(screen_changes(socket)["changed"])
            time.sleep(SOAK_SAMPLE_S)
        samples.append((time.monotonic() - t0, monitor.memory_info().rss / 2**20))
        cpu1 = monitor.cpu_times()
        window = time.monotonic() - t0
        offset1 = alerts_end(consumer)
        load = os.getloadavg()
    finally:
        feeder.terminate()
        try:
            feeder.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            feeder.kill()
            feeder.communicate()
    rss = [mb for _, mb in samples]
    half = len(samples) // 2
    slope = slope_per_minute(samples)
    cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {
        "rate": rate,
        "achieved_alerts_per_s": round((offset1 - offset0) / window, 1),
        "warmup_s": SOAK_WARMUP_S,
        "window_s": round(window, 1),
        "cpu_pct_of_core": round(100.0 * cpu_s / window, 2),
        "rss_first_mb": round(rss[0], 1),
        "rss_last_mb": round(rss[-1], 1),
        "rss_min_mb": round(min(rss), 1),
        "rss_peak_mb": round(max(rss), 1),
        "rss_slope_mb_per_min": round(slope, 3),
        "rss_slope_second_half_mb_per_min": round(slope_per_minute(samples[half:]), 3),
        "rss_flat": abs(slope) <= SOAK_FLAT_MB_PER_MIN,
        "rss_ok": max(rss) <= RSS_GOAL_MB,
        "screen_changed_every_minute": all(screens) if screens else None,
        "loadavg": [round(x, 2) for x in load],
        "samples": [(round(t, 1), round(mb, 2)) for t, mb in samples],
    }


def stop_monitor(socket: str, monitor: psutil.Process | None) -> dict[str, Any]:
    """Kill the tmux server (SIGHUP to the monitor), then make sure its whole tree is gone."""
    tree: list[psutil.Process] = []
    if monitor is not None:
        try:
            tree = [monitor, *monitor.children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
    tmux(socket, "kill-server")
    Path(f"/tmp/tmux-{os.getuid()}/{socket}").unlink(missing_ok=True)  # tmux may leave its socket file
    _, alive = psutil.wait_procs(tree, timeout=15)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    _, still = psutil.wait_procs(alive, timeout=5)
    return {"exited_on_sighup": not alive, "killed": [p.pid for p in alive], "left": [p.pid for p in still]}


def run(rates: list[int], seconds: float, soak_seconds: float = 0.0, soak_rate: int = 5000,
        settings: Path | None = None) -> dict[str, Any]:
    """The whole benchmark: broker, monitor in tmux, every rate; everything stopped at the end."""
    socket = f"txmon-bench-monitor-{os.getpid()}"
    results: list[dict[str, Any]] = []
    soaked: dict[str, Any] | None = None
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="txmon-bench-monitor-") as tmp:
        tmpdir = Path(tmp)
        with EmbeddedBroker(tmpdir / "broker") as broker:
            bootstrap = broker.bootstrap
            topics.ensure_topics({"bootstrap.servers": bootstrap})
            consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-monitor-offsets"})
            monitor: psutil.Process | None = None
            stop: dict[str, Any] = {}
            screen = ""
            try:
                # No redirection: Textual draws on stderr.
                command = (f"{sys.executable} -m txmon_tui -b {bootstrap} --no-producer --no-spark "
                           f"--data-dir {tmpdir / 'data'}")
                if settings is not None:
                    command += f" --settings {settings}"
                created = tmux(socket, "new-session", "-d", "-s", "bench",
                               "-x", str(WIDTH), "-y", str(HEIGHT), command)
                if created.returncode != 0:
                    raise RuntimeError(f"tmux new-session failed: {created.stderr.strip()}")
                monitor = find_monitor(socket)
                time.sleep(5.0)  # let the app draw its first screen
                if not monitor.is_running():
                    raise RuntimeError("the monitor exited at start")
                for rate in rates:
                    results.append(measure(socket, monitor, consumer, bootstrap, rate, seconds))
                if soak_seconds > 0:
                    soaked = soak(socket, monitor, consumer, bootstrap, soak_rate, soak_seconds)
                screen = capture(socket)
            finally:
                consumer.close()
                stop = stop_monitor(socket, monitor)
    return {
        "benchmark": "monitor",
        "started": started.isoformat(timespec="seconds"),
        "terminal": f"tmux {WIDTH}x{HEIGHT}",
        "settings": None if settings is None else {"path": str(settings), "text": settings.read_text()},
        "cpu_count": os.cpu_count(),
        "warmup_s": WARMUP_S,
        "seconds": seconds,
        "monitor_pid": monitor.pid if monitor else None,
        "results": results,
        "soak": soaked,
        "all_ok": all(r["cpu_ok"] is not False and r["rss_ok"] and r["screen_ok"] is not False
                      for r in results) and (soaked is None or (soaked["rss_flat"] and soaked["rss_ok"])),
        "stop": stop,
        "final_screen": screen,
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.monitor`."""
    parser = argparse.ArgumentParser(prog="python -m bench.monitor", description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="0,1000,5000", 
                        help="alerts/s, comma-separated (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=60.0, 
                        help="measured seconds per rate (default %(default)s)")
    parser.add_argument("--soak", type=float, default=0.0, metavar="S",
                        help="then feed --soak-rate for S seconds and report the RSS slope (default: none)")
    parser.add_argument("--soak-rate", type=int, default=5000,
                        help="alerts/s of the soak (default %(default)s)")
    parser.add_argument("--settings", type=Path, default=None, metavar="FILE",
                        help="txmon.toml for the monitor, e.g. '[storage]\\nenabled = false' to measure it "
                             "without storing alerts (default: none, whatever $TXMON_SETTINGS names)")
    parser.add_argument("--json", action="store_true", help="print the whole result as JSON")
    parser.add_argument("--feed", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.feed is not None:
        return feed(args.bootstrap, args.feed)
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    result = run(rates, args.seconds, args.soak, args.soak_rate, args.settings)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-monitor.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    if args.json:
        print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    else:
        for r in result["results"]:
            print(f"{r['rate']:>6}/s  fed {r['achieved_alerts_per_s']:>8}/s  "
                  f"cpu {r['cpu_pct_of_core']:6.2f}% "
                  f"(goal {r['cpu_goal_pct']})  rss {r['rss_peak_mb']:6.1f} MB  screen changed "
                  f"{r['screen_changed']}  load {r['loadavg'][0]}")
        if (s := result["soak"]) is not None:
            print(f"soak {s['rate']}/s for {s['window_s']:.0f} s after {s['warmup_s']:.0f} s: cpu "
                  f"{s['cpu_pct_of_core']:.2f}%  rss {s['rss_first_mb']} → {s['rss_last_mb']} MB (peak "
                  f"{s['rss_peak_mb']})  slope {s['rss_slope_mb_per_min']:+.3f} MB/min  "
                  f"load {s['loadavg'][0]}")
    print(f"written {path}", file=sys.stderr)
    return 0 if result["all_ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
