"""Alert storage on a real PostgreSQL server (Debian's postgresql, a throwaway cluster per module):
schema creation, idempotent re-delivery, and a server restart mid-stream with nothing lost or repeated.

The server refuses to run as root, so the cluster is created and run as the `postgres` user in a temp
folder it owns, on a free port on 127.0.0.1; it is stopped and removed however the tests end.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.support.waiting import wait_until
from txmon_core.records.alert import Alert
from txmon_sinks import DOWN, OK, AlertStore, Delivery
from txmon_sinks.identity import id_of, payload
from txmon_sinks.outbox import OutboxItem
from txmon_sinks.store import StoreError

pytestmark = pytest.mark.integration
FAST_RETRY = {"backoff_initial_s": 0.05, "backoff_max_s": 0.5, "down_after_s": 0.5}


def postgres_bin() -> Path:
    """The newest installed server's bin folder (.ci/run installs postgresql when there is none)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    assert found, "PostgreSQL is not installed: apt-get install postgresql"
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A PostgreSQL cluster in `folder`, run as the postgres user; pg_ctl start/stop."""

    bin: Path
    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg(self, tool: str, *args: str) -> None:
        result = subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / tool), *args],
                                capture_output=True, text=True, timeout=120, cwd=self.folder)
        assert result.returncode == 0, f"{tool} {args}: {result.stdout}{result.stderr}"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self.pg("pg_ctl", "-D", str(self.folder / "data"), "-l", str(self.folder / "server.log"),
                "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg("pg_ctl", "-D", str(self.folder / "data"), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        return (self.folder / "data" / "postmaster.pid").exists()

    def sql(self, statement: str) -> list[tuple[object, ...]]:
        # Autocommit: CREATE and DROP DATABASE refuse to run inside a transaction.
        engine = sa.create_engine(self.url.replace("postgresql://", "postgresql+psycopg://"),
                                  isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                result = connection.execute(sa.text(statement))
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """A fresh cluster (trust auth on loopback only), stopped and removed at the end, pass or fail."""
    # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
    folder = Path(tempfile.mkdtemp(prefix="txmon-pg-"))
    postgres = pwd.getpwnam("postgres")
    os.chown(folder, postgres.pw_uid, postgres.pw_gid)
    running = Server(postgres_bin(), folder, free_port())
    try:
        running.pg("initdb", "-D", str(folder / "data"), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                   "--no-sync")
        running.start()
        yield running
    finally:
        if running.running():
            running.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def database(server: Server) -> Iterator[str]:
    """An empty database of its own for each test."""
    name = f"t{os.urandom(4).hex()}"
    server.sql(f"CREATE DATABASE {name}")
    yield server.url.rsplit("/", 1)[0] + f"/{name}"
    if server.running():
        server.sql(f"DROP DATABASE {name} WITH (FORCE)")


def alert(n: int, level: str = "alert") -> Alert:
    return Alert(f"pg-{n:012d}", f"RO49RZBR00000600{n % 7:08d}", "Metro", 950.0 + n % 50, "RON",
                 f"2026-11-25T12:{n // 60 % 60:02d}:{n % 60:02d}.000Z", level, "amount>900",
                 "2026-11-25T13:00:00.000Z")


def item(n: int, level: str = "alert") -> OutboxItem:
    one = alert(n, level)
    return OutboxItem(0, id_of(one), payload(one))


def stored_ids(url: str) -> list[str]:
    store = AlertStore(url)
    try:
        with store._engine.connect() as connection:  # every row, repeats included if there were any
            return [row[0] for row in connection.execute(sa.text("SELECT tx_id FROM alerts"))]
    finally:
        store.close()


def test_the_schema_is_created_on_an_empty_database(database: str) -> None:
    store = AlertStore(database)  # a plain postgresql:// URL: psycopg 3, the [postgres] extra's driver
    try:
        assert store.insert_new([item(1), item(2, "large"), item(3)]) == 3
        inspector = sa.inspect(store._engine)
        assert "alerts" in inspector.get_table_names()
        assert inspector.get_pk_constraint("alerts")["constrained_columns"] == ["alert_id"]
        assert {index["name"] for index in inspector.get_indexes("alerts")} == {
            "ix_alerts_account_time", "ix_alerts_level_time", "ix_alerts_time"}
        assert store.counts_per_level() == {"alert": 2, "large": 1}
        assert [a.tx_id for a in store.alerts(level="alert")] == ["pg-000000000003", "pg-000000000001"]
    finally:
        store.close()
    again = AlertStore(database)  # the schema exists now: opening again changes nothing
    try:
        assert again.counts_per_level() == {"alert": 2, "large": 1}
    finally:
        again.close()


def test_redelivery_stores_each_alert_once(database: str, tmp_path: Path) -> None:
    store = AlertStore(database)
    try:
        assert store.insert_new([item(n) for n in range(5)]) == 5
        # A batch repeated after a crash, with repeats inside it and new alerts after them.
        assert store.insert_new([item(n) for n in (3, 4, 4, 5, 6)]) == 2
        assert store.insert_new([item(n) for n in range(7)]) == 0
    finally:
        store.close()
    # Through delivery: alerts offered twice (the topic is at-least-once), then a second run of the
    # monitor with a fresh outbox offering them all again.
    batch = [alert(n) for n in range(10, 20)]
    for run in ("first", "second"):
        with Delivery.from_settings({"storage": {"url": database, **FAST_RETRY}}, tmp_path / run) as delivery:
            delivery.offer(batch)
            delivery.offer(batch[:5])
            wait_until(lambda d=delivery: d.health()[0].pending == 0 and d.health()[0].sent == 10, 20,
                       "ten alerts through the database sink")
    ids = stored_ids(database)
    assert len(ids) == len(set(ids)) == 17


def test_a_server_restart_mid_stream_loses_nothing_and_repeats_nothing(
    server: Server, database: str, tmp_path: Path
) -> None:
    total, step = 600, 20
    stop_feeding = threading.Event()
    settings = {"storage": {"url": database, "batch_max": 50, **FAST_RETRY}}
    with Delivery.from_settings(settings, tmp_path) as delivery:
        sink = lambda: delivery.health()[0]  # noqa: E731

        def feed() -> None:
            for start in range(0, total, step):
                delivery.offer([alert(n) for n in range(start, start + step)])
                if stop_feeding.wait(0.02):
                    return

        feeder = threading.Thread(target=feed)
        feeder.start()
        try:
            wait_until(lambda: sink().sent >= 100, 30, "a first part stored")
            server.stop("immediate")  # a crash: no shutdown checkpoint, clients cut off mid-transaction
            wait_until(lambda: sink().state == DOWN, 30, "the database sink reported down")
            down_at = sink().sent
            server.start()
            wait_until(lambda: sink().state == OK and sink().sent > down_at, 60,
                       "storing again after the restart")
            feeder.join(60)
            wait_until(lambda: sink().sent == total and sink().pending == 0, 60, f"all {total} alerts stored")
        finally:
            stop_feeding.set()
            feeder.join(60)
            if not server.running():
                server.start()
    ids = stored_ids(database)
    assert len(ids) == total, f"{total - len(set(ids))} lost, {len(ids) - len(set(ids))} repeated"
    assert set(ids) == {alert(n).tx_id for n in range(total)}


def test_a_postgresql_url_without_the_driver_says_which_extra_to_install(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # psycopg cannot be uninstalled for one test: hide it from imports (a missing package, as in a
    # monitor-only install; tests/unit/test_install_extras.py checks such an install for real).
    monkeypatch.setitem(__import__("sys").modules, "psycopg", None)
    with pytest.raises(StoreError) as raised:
        AlertStore(database)
    assert str(raised.value).endswith("psycopg is not installed: pip install 'txmon[postgres]'")
