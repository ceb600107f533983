"""The embedded Apache Kafka broker (KRaft) on 127.0.0.1, run from Maven jars with `java`.

One node; txmon_core.cluster runs several. Used by `txmon-broker` (txmon_core.broker_cli), by the
monitor when no broker is named, by the tests and by the benchmarks.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from txmon_core import jars
from txmon_core.lifetime import Running, die_with_parent
from txmon_core.secure import BrokerSecurity, LocalLogin, redact_text, write_private

HOST = "127.0.0.1"
DEFAULT_PORT = 9092
LOG4J_CONFIG = Path(__file__).with_name("broker-log4j2.properties")
JVM_OPTIONS = ["-Xms256m", "-Xmx768m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]
QUIET = logging.getLogger("txmon.broker.admin")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


LOGIN_FILE = "client-login.conf"  # in the broker's data dir: the client settings of its login, 0600


class BrokerError(RuntimeError):
    """The broker could not be started or stopped; the message carries the end of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_taken(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:`port` (binding as the JVM does, SO_REUSEADDR,
    so the TIME_WAIT connections a killed broker leaves behind do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def new_cluster_id() -> str:
    """16 random bytes in URL-safe base64, as Kafka's own Uuid.randomUuid makes them.

    Like Kafka, draw again when the text starts with '-': the storage tool would take it for a flag.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class Voter:
    """One controller of a quorum: its node id, controller port and metadata directory id."""

    node_id: int
    controller_port: int
    directory_id: str


@dataclass(frozen=True)
class Quorum:
    """The controller quorum of a multi-node cluster; every node is formatted with the same one."""

    cluster_id: str
    voters: tuple[Voter, ...]

    @property
    def bootstrap(self) -> str:
        """controller.quorum.bootstrap.servers: every voter's controller listener."""
        return ",".join(f"{HOST}:{v.controller_port}" for v in self.voters)

    @property
    def initial_controllers(self) -> str:
        """The storage tool's --initial-controllers: `id@host:port:directoryId` for every voter."""
        return ",".join(f"{v.node_id}@{HOST}:{v.controller_port}:{v.directory_id}" for v in self.voters)

    @property
    def replication(self) -> int:
        """Replicas per partition: every node, up to three."""
        return min(3, len(self.voters))


def server_properties(
    port: int,
    controller_port: int,
    log_dir: Path,
    *,
    node_id: int = 1,
    quorum_bootstrap: str | None = None,
    replication: int = 1,
    overrides: Mapping[str, str] | None = None,
) -> str:
    """The settings of a broker+controller node on loopback (one node unless a quorum is named)."""
    # A write is acknowledged once this many replicas have it: with 3 replicas one node may be down.
    min_isr = 2 if replication >= 3 else 1
    settings = {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.bootstrap.servers": quorum_bootstrap or f"{HOST}:{controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        # Kafka's defaults (3) assume three brokers; with them consumer groups never work on one node.
        "offsets.topic.replication.factor": str(replication),
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": str(replication),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(replication),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        # Topics created with replication -1 (ensure_topics on a cluster) take these defaults.
        "default.replication.factor": str(replication),
        "min.insync.replicas": str(min_isr),
        "group.initial.rebalance.delay.ms": "0",
        # Every part creates its topics itself; auto-creation would hide a part that forgot to.
        "auto.create.topics.enable": "false",
        "num.partitions": "1",
        "num.network.threads": "2",
        "num.io.threads": "2",
        # A demo left running at tens of thousands of tx/s must not fill the disk.
        "log.retention.bytes": str(1 << 30),
        "log.segment.bytes": str(128 << 20),
        **(overrides or {}),  # a secured broker's listeners and TLS/SASL settings
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def format_storage(
    java: str, classpath: str, properties: Path, cluster_id: str, initial_controllers: str | None = None,
    secret_args: Sequence[str] = (),
) -> None:
    """Format a node's storage: a one-node quorum (--standalone) or the named initial controllers.

    `secret_args` (e.g. `--add-scram` with passwords) reach the tool through a 0600 @file (its argument
    parser reads one argument per line), so they never show in a process listing or an error.
    """
    quorum = ["--initial-controllers", initial_controllers] if initial_controllers else ["--standalone"]
    argv = [java, "-cp", classpath, f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
            "kafka.tools.StorageTool", "format", *quorum, "-t", cluster_id, "-c", str(properties)]
    argfile = properties.with_name("format.args")
    if secret_args:
        write_private(argfile, "".join(f"{arg}\n" for arg in secret_args))
        argv.append(f"@{argfile}")
    try:
        result = subprocess.run(argv, capture_output=True, text=True)
    finally:
        argfile.unlink(missing_ok=True)
    if result.returncode != 0:
        output = redact_text(result.stdout + result.stderr, known=secret_args)
        raise BrokerError(f"formatting Kafka storage failed:\n{output}")


class EmbeddedBroker(Running):
    """One Kafka broker process with its data in `data_dir`; a restart on the same folder keeps the data."""

    def __init__(
        self, data_dir: Path, port: int = 0, controller_port: int = 0, *, node_id: int = 1,
        quorum: Quorum | None = None, security: BrokerSecurity | None = None, login: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir)
        # Secured: the client listener is SASL_SSL (SCRAM-SHA-512), users added when storage is formatted;
        # or, with `login`, SASL_PLAINTEXT on loopback with one SCRAM-SHA-256 user (see LocalLogin).
        self.security: BrokerSecurity | LocalLogin | None = security
        self.login = login
        self._requested = (port, controller_port)
        self.node_id = node_id
        self.quorum = quorum  # None: a one-node cluster of its own
        self.port = 0
        self.controller_port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The bootstrap.servers string clients use."""
        return f"{HOST}:{self.port}"

    @property
    def client_config(self) -> dict[str, str]:
        """librdkafka settings an admin client of this broker needs (its own user when secured)."""
        security = self.security.client_settings() if self.security else {}
        return {**security, "bootstrap.servers": self.bootstrap}

    @property
    def login_path(self) -> Path:
        """With `login`: the 0600 file of client settings (`--config FILE`) every client needs."""
        return self.data_dir / LOGIN_FILE

    def _prepare_login(self, log_dir: Path) -> None:
        """The login kept in the data dir, made (with the storage) on the first start with `login`."""
        if not self.login_path.exists() and (log_dir / "meta.properties").exists():
            raise BrokerError(f"the broker data in {self.data_dir} was made without a login, which cannot be "
                              "added to it: use another data dir, or remove this one (its topics go with it)")
        self.security = LocalLogin.load_or_create(self.login_path)

    @property
    def log_path(self) -> Path:
        """The broker's own log (stdout and stderr of the JVM)."""
        return self.data_dir / "broker.log"

    @property
    def pid_path(self) -> Path:
        """A file holding the running broker JVM's process id, for users and tools."""
        return self.data_dir / "broker.pid"

    @property
    def pid(self) -> int | None:
        """The broker JVM's process id while it runs."""
        return self.process.pid if self.process else None

    def _choose_ports(self) -> None:
        # The controller's address is written into the metadata log when storage is formatted, so a
        # restart must reuse it; the client port is kept too, so clients can reconnect.
        saved_path = self.data_dir / "ports.json"
        saved = json.loads(saved_path.read_text()) if saved_path.exists() else {}
        port, controller_port = self._requested
        self.port = port or saved.get("port") or free_port()
        self.controller_port = saved.get("controller_port") or controller_port or free_port()
        saved_path.write_text(json.dumps({"port": self.port, "controller_port": self.controller_port}))

    def _format_storage(self, java: str, classpath: str, properties: Path, log_dir: Path) -> None:
        if (log_dir / "meta.properties").exists():
            return
        quorum = self.quorum
        scram = self.security.scram_format_args() if self.security else []
        if quorum is None:
            format_storage(java, classpath, properties, new_cluster_id(), secret_args=scram)
        else:
            format_storage(java, classpath, properties, quorum.cluster_id, quorum.initial_controllers,
                           secret_args=scram)

    def start(self) -> None:
        """Start the broker process (formatting its storage the first time); returns at once."""
        if self.process and self.process.poll() is None:
            return
        java = jars.find_tool("java")
        classpath = jars.broker_classpath()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._choose_ports()
        for port in (self.port, self.controller_port):
            # Otherwise the JVM starts, fails to bind, and leaves only a stack trace in its log.
            if port_taken(port):
                raise BrokerError(f"port {HOST}:{port} is already in use (another broker?); "
                                  "choose another with --port, or 0 for a free one")
        log_dir = self.data_dir / "kraft-logs"
        properties = self.data_dir / "server.properties"
        if self.login:
            self._prepare_login(log_dir)
        quorum = self.quorum
        security = self.security
        # 0600: a secured broker's settings hold its keystore password and its own SCRAM login.
        write_private(properties, server_properties(
            self.port, self.controller_port, log_dir, node_id=self.node_id,
            quorum_bootstrap=quorum.bootstrap if quorum else None,
            replication=quorum.replication if quorum else 1,
            overrides=security.broker_settings(self.port, self.controller_port) if security else None,
        ))
        self._format_storage(java, classpath, properties, log_dir)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [java, *JVM_OPTIONS, f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", "-cp", classpath,
                 "kafka.Kafka", str(properties)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                # Its own session: a Ctrl+C in the terminal reaches only us, and we stop it in order.
                start_new_session=True, preexec_fn=die_with_parent(),
            )
        self.pid_path.write_text(f"{self.process.pid}\n")

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the broker's log, for error messages."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Block until an admin client can list topics; return the seconds waited."""
        started = time.monotonic()
        # Connection-refused noise while the JVM starts is expected: keep librdkafka quiet.
        admin = AdminClient(self.client_config, logger=QUIET)
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise BrokerError(f"the broker exited (code {code}) before it was ready:\n{self.log_tail()}")
            try:
                admin.list_topics(timeout=1.0)
                return time.monotonic() - started
            except KafkaException:
                pass
            if time.monotonic() - started > timeout:
                raise BrokerError(f"the broker was not ready within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop the broker cleanly (SIGTERM), forcibly after `timeout`; return its exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a paused broker cannot act on SIGTERM
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.pid_path.unlink(missing_ok=True)
        return self.process.returncode

    def kill(self) -> None:
        """Kill the broker with SIGKILL, as a crash would (for fault tests)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP), as a hung machine would (for fault tests)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused broker run again (SIGCONT)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
