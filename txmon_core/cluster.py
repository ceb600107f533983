"""A multi-node Apache Kafka cluster (KRaft, combined broker+controller nodes) on 127.0.0.1, for tests.

Each node is an `EmbeddedBroker` in `<data-dir>/node-<id>`; all of them are voters of one controller quorum,
formatted once with the same `--initial-controllers`. The cluster's identity (cluster id, ports, directory
ids) is kept in `<data-dir>/cluster.json`, so a node, or the whole cluster, restarts on the same folder.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from txmon_core.broker import QUIET, BrokerError, EmbeddedBroker, Quorum, Voter, free_port, new_cluster_id
from txmon_core.lifetime import Running

DEFAULT_NODES = 3


class KafkaCluster(Running):
    """`nodes` Kafka nodes on loopback forming one cluster; data in `data_dir`, kept across restarts."""

    def __init__(self, data_dir: Path, nodes: int = DEFAULT_NODES, ports: Sequence[int] = ()) -> None:
        if nodes < 1:
            raise ValueError(f"a cluster needs at least one node, got {nodes}")
        if ports and len(ports) != nodes:
            raise ValueError(f"{nodes} nodes need {nodes} client ports, got {len(ports)}")
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        quorum, client_ports = self._identity(nodes, list(ports))
        self.quorum = quorum
        self.nodes = [
            EmbeddedBroker(self.data_dir / f"node-{v.node_id}", port, v.controller_port, node_id=v.node_id,
                           quorum=quorum)
            for v, port in zip(quorum.voters, client_ports, strict=True)
        ]

    def _identity(self, nodes: int, ports: list[int]) -> tuple[Quorum, list[int]]:
        # The quorum is written into every node's metadata log when formatted: a restart must reuse it.
        path = self.data_dir / "cluster.json"
        if path.exists():
            saved = json.loads(path.read_text())
            voters = tuple(Voter(*v) for v in saved["voters"])
            if len(voters) != nodes:
                raise BrokerError(f"{self.data_dir} holds a {len(voters)}-node cluster, not {nodes} nodes")
            return Quorum(saved["cluster_id"], voters), ports or saved["ports"]
        # A directory id is a Kafka Uuid, made like a cluster id.
        voters = tuple(Voter(i, free_port(), new_cluster_id()) for i in range(1, nodes + 1))
        ports = ports or [free_port() for _ in range(nodes)]
        quorum = Quorum(new_cluster_id(), voters)
        path.write_text(json.dumps({
            "cluster_id": quorum.cluster_id,
            "voters": [[v.node_id, v.controller_port, v.directory_id] for v in voters],
            "ports": ports,
        }))
        return quorum, ports

    @property
    def bootstrap(self) -> str:
        """The bootstrap.servers string clients use: every node."""
        return ",".join(node.bootstrap for node in self.nodes)

    def node(self, node_id: int) -> EmbeddedBroker:
        """The node with this id (1..N)."""
        for candidate in self.nodes:
            if candidate.node_id == node_id:
                return candidate
        raise KeyError(f"no node {node_id} in a {len(self.nodes)}-node cluster")

    def start(self) -> None:
        """Start every node (formatting storage the first time); returns at once."""
        try:
            for node in self.nodes:
                node.start()
        except BaseException:
            self.stop()
            raise

    def running(self) -> list[int]:
        """The ids of the nodes whose process is alive."""
        return [n.node_id for n in self.nodes if n.process is not None and n.process.poll() is None]

    def brokers_seen(self, timeout: float = 1.0) -> set[int]:
        """The node ids an admin client sees registered as brokers right now (empty if none answers)."""
        admin = AdminClient({"bootstrap.servers": self.bootstrap}, logger=QUIET)
        try:
            return set(admin.list_topics(timeout=timeout).brokers)
        except KafkaException:
            return set()

    def wait_ready(self, timeout: float = 120.0, expect: Sequence[int] | None = None) -> float:
        """Block until an admin client sees every node (or those in `expect`); return the seconds waited."""
        started = time.monotonic()
        wanted = set(expect if expect is not None else (n.node_id for n in self.nodes))
        while True:
            for node in self.nodes:
                if node.node_id in wanted and (node.process is None or node.process.poll() is not None):
                    code = None if node.process is None else node.process.returncode
                    raise BrokerError(
                        f"node {node.node_id} exited (code {code}) before it was ready:\n{node.log_tail()}"
                    )
            seen = self.brokers_seen()
            if wanted <= seen:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                tails = "\n".join(f"--- node {n.node_id}:\n{n.log_tail(8)}" for n in self.nodes)
                raise BrokerError(
                    f"the cluster did not show nodes {sorted(wanted)} within {timeout:.0f} s "
                    f"(seen {sorted(seen)}):\n{tails}"
                )
            time.sleep(0.2)

    def stop(self, timeout: float = 30.0) -> dict[int, int | None]:
        """Stop every node cleanly (SIGTERM, SIGKILL after `timeout`); return each node's exit code."""
        # SIGTERM all first: nodes shut down in parallel, and the last ones still find a quorum for a while.
        for node in self.nodes:
            if node.process is not None and node.process.poll() is None:
                node.process.terminate()
        return {node.node_id: node.stop(timeout) for node in self.nodes}

    def kill(self, node_id: int) -> None:
        """Kill one node with SIGKILL, as a crash would."""
        self.node(node_id).kill()

    def restart(self, node_id: int, timeout: float = 120.0) -> float:
        """Start a stopped or killed node again on its data and wait until the cluster sees it."""
        node = self.node(node_id)
        node.stop()
        node.start()
        return self.wait_ready(timeout, expect=[node_id])

