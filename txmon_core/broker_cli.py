"""`txmon-broker`: run the embedded Kafka broker, or a cluster (--nodes N), until SIGTERM or Ctrl+C."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from txmon_core import jars
from txmon_core.broker import DEFAULT_PORT, LOGIN_FILE, BrokerError, EmbeddedBroker
from txmon_core.cluster import KafkaCluster
from txmon_core.options import add_version, positive_int
from txmon_core.paths import default_data_dir, private_data_dir
from txmon_core.records import ready

DESCRIPTION = "The embedded Apache Kafka broker (KRaft) on 127.0.0.1, run from Maven jars with `java`."


def _on_signals(handler: Callable[[int], None]) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: handler(signum))


def _start(running: EmbeddedBroker | KafkaCluster) -> float | None:
    """Start and wait until ready: the seconds it took, or None after saying why it failed and stopping."""
    try:
        running.start()
        return running.wait_ready()
    except (jars.MissingToolError, jars.FetchError, BrokerError) as exc:
        print(f"txmon-broker: error: {exc}", file=sys.stderr)
        running.stop()
        return None


def main(argv: list[str] | None = None) -> int:
    """`txmon-broker`: run the embedded broker (or a cluster, --nodes N) until SIGTERM or Ctrl+C."""
    parser = argparse.ArgumentParser(prog="txmon-broker", description=DESCRIPTION)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help="client port; with --nodes N, ports PORT..PORT+N-1 (default %(default)s; "
                        "0 picks free ports)")
    parser.add_argument("--nodes", type=positive_int, default=1,
                        help="run a cluster of N broker+controller nodes, all controller voters "
                        "(default %(default)s); topics then get min(N, 3) replicas")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"storage (default {default_data_dir() / 'broker'}, "
                        f"or {default_data_dir() / 'cluster'} with --nodes above 1)")
    parser.add_argument("--login", action="store_true",
                        help="require a SCRAM-SHA-256 login: a random password is made on first use and "
                        f"kept with the client settings in DATA_DIR/{LOGIN_FILE} (0600); clients pass "
                        "--config that file (one node only)")
    add_version(parser)
    args = parser.parse_args(argv)
    if args.login and args.nodes > 1:
        parser.error("--login runs one node: not with --nodes")
    private_data_dir(args.data_dir or default_data_dir())  # log segments and credentials: the user's only
    if not 0 <= args.port <= 65535 - (args.nodes - 1):
        parser.error(f"--port must be 0..{65535 - (args.nodes - 1)}, got {args.port}")

    stop_requested = threading.Event()
    _on_signals(lambda _signum: stop_requested.set())
    if args.nodes > 1:
        return _run_cluster(args.nodes, args.port, args.data_dir or default_data_dir() / "cluster",
                            stop_requested)
    broker = EmbeddedBroker(args.data_dir or default_data_dir() / "broker", port=args.port, login=args.login)
    waited = _start(broker)
    if waited is None:
        return 1
    print(ready.broker_line(broker.bootstrap), flush=True)
    print(f"broker ready in {waited:.1f} s; data {broker.data_dir}; log {broker.log_path}", file=sys.stderr)
    if broker.login:
        print(f"login required: clients pass --config {broker.login_path}", file=sys.stderr)
    assert broker.process is not None
    while not stop_requested.wait(0.5):
        if broker.process.poll() is not None:
            code = broker.process.returncode
            print(f"txmon-broker: error: the broker exited (code {code}):\n{broker.log_tail()}",
                  file=sys.stderr)
            return 1
    code = broker.stop()
    print(f"broker stopped (exit {code})", file=sys.stderr)
    return 0


def _run_cluster(nodes: int, port: int, data_dir: Path, stop_requested: threading.Event) -> int:
    """`txmon-broker --nodes N`: run the cluster; a node that dies is reported, the rest keep serving."""
    ports = [port + i for i in range(nodes)] if port else []
    try:
        cluster = KafkaCluster(data_dir, nodes, ports)
    except BrokerError as exc:
        print(f"txmon-broker: error: {exc}", file=sys.stderr)
        return 1
    waited = _start(cluster)
    if waited is None:
        return 1
    print(ready.broker_line(cluster.bootstrap), flush=True)
    print(f"cluster of {nodes} nodes ready in {waited:.1f} s; data {cluster.data_dir}", file=sys.stderr)
    reported: set[int] = set()
    code = 0
    while not stop_requested.wait(0.5):
        running = set(cluster.running())
        for node in cluster.nodes:
            if node.node_id not in running and node.node_id not in reported:
                reported.add(node.node_id)
                exit_code = node.process.returncode if node.process else None
                print(f"txmon-broker: node {node.node_id} exited (code {exit_code}); log {node.log_path}",
                      file=sys.stderr, flush=True)
        if not running:
            code = 1
            break
    codes = cluster.stop()
    print(f"cluster stopped (exit codes {codes})", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
