"""Every distinct alert in a database (SQLAlchemy Core: SQLite by default, any URL it supports;
PostgreSQL through psycopg 3, the [postgres] extra), the queries the history view and
`txmon-tui report --alerts` use, and the sink that fills it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DataError, SQLAlchemyError

from txmon_core import extras
from txmon_sinks.config import StorageConfig
from txmon_sinks.identity import decode, epoch
from txmon_sinks.outbox import OutboxItem
from txmon_sinks.sink import DeliveryFailed, Rejected

_METADATA = sa.MetaData()
ALERTS = sa.Table(
    "alerts",
    _METADATA,
    sa.Column("alert_id", sa.String(200), primary_key=True),  # tx_id:level
    sa.Column("tx_id", sa.String(160), nullable=False),
    sa.Column("level", sa.String(32), nullable=False),
    sa.Column("account_id", sa.String(64)),
    sa.Column("merchant", sa.String(200)),
    sa.Column("amount", sa.Float),
    sa.Column("currency", sa.String(8)),
    sa.Column("ts", sa.String(40)),
    sa.Column("event_time", sa.Float),  # `ts` as Unix seconds: what time-range queries filter on
    sa.Column("rule", sa.String(200)),
    sa.Column("detected_at", sa.String(40)),
    sa.Column("payload", sa.Text, nullable=False),  # the whole alert JSON, fields added later included
    sa.Index("ix_alerts_account_time", "account_id", "event_time"),
    sa.Index("ix_alerts_level_time", "level", "event_time"),
    sa.Index("ix_alerts_time", "event_time"),
)
_IN_CHUNK = 500


class StoreError(Exception):
    """The database cannot be opened or queried; the message hides any password in the URL."""


@dataclass(frozen=True)
class StoredAlert:
    """One alert as stored."""

    alert_id: str
    tx_id: str
    level: str
    account_id: str | None
    merchant: str | None
    amount: float | None
    currency: str | None
    ts: str | None
    event_time: float | None
    rule: str | None
    detected_at: str | None


def safe_url(url: str) -> str:
    """The URL with its password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unreadable database URL)"


def sqlite_path(url: str) -> Path | None:
    """The file behind a sqlite:/// URL (None for other databases and in-memory SQLite)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser()


def _checked(row: dict[str, Any]) -> dict[str, Any]:
    """The row, or Rejected naming the field that no database would take (too long, or a NUL)."""
    for column in ALERTS.columns:
        value = row.get(column.name)
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            raise Rejected(f"alert {row['alert_id'][:80]!r}: {column.name} holds a NUL character")
        length = getattr(column.type, "length", None)
        if length is not None and len(value) > length:
            raise Rejected(f"alert {row['alert_id'][:80]!r}: {column.name} has {len(value):,} characters, "
                           f"over the {length} the alerts table holds")
    return row


def _row(item: OutboxItem) -> dict[str, Any]:
    data = decode(item.payload)
    amount = data.get("amount")
    return _checked({
        "alert_id": item.alert_id,
        "tx_id": str(data.get("tx_id")),
        "level": str(data.get("level")),
        "account_id": data.get("account_id"),
        "merchant": data.get("merchant"),
        "amount": float(amount) if isinstance(amount, int | float) and not isinstance(amount, bool) else None,
        "currency": data.get("currency"),
        "ts": data.get("ts"),
        "event_time": epoch(data.get("ts")),
        "rule": data.get("rule"),
        "detected_at": data.get("detected_at"),
        "payload": item.payload.decode(),
    })


class AlertStore:
    """The alerts table behind one database URL (created when missing)."""

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            parsed = make_url(url)
            if (database := sqlite_path(url)) is not None:
                database.parent.mkdir(parents=True, exist_ok=True)
            self._engine: Engine = sa.create_engine(parsed)
            if parsed.get_backend_name() == "sqlite":
                sa.event.listen(self._engine, "connect", _sqlite_pragmas)
            _METADATA.create_all(self._engine)
        except ImportError as exc:
            # postgresql:// is psycopg 3 in SQLAlchemy 2.1, which only the [postgres] extra installs.
            hint = extras.missing(extras.POSTGRES) if parsed.get_backend_name() == "postgresql" else None
            raise StoreError(f"cannot open {safe_url(url)}: {hint or exc}") from None
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"cannot open {safe_url(url)}: {_short(exc)}") from None

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def insert_new(self, items: Sequence[OutboxItem]) -> int:
        """Insert the alerts whose id is not stored yet, in one transaction; return how many."""
        ids = list(dict.fromkeys(item.alert_id for item in items))
        with self._engine.begin() as connection:
            known: set[str] = set()
            for start in range(0, len(ids), _IN_CHUNK):
                chunk = ids[start:start + _IN_CHUNK]
                known.update(connection.scalars(
                    sa.select(ALERTS.c.alert_id).where(ALERTS.c.alert_id.in_(chunk))))
            rows = []
            for item in items:
                if item.alert_id not in known:
                    known.add(item.alert_id)
                    rows.append(_row(item))
            if rows:
                connection.execute(ALERTS.insert(), rows)
        return len(rows)

    def _where(self, account: str | None, level: str | None, since: float | None,
               until: float | None) -> list[sa.ColumnElement[bool]]:
        clauses = []
        if account is not None:
            clauses.append(ALERTS.c.account_id == account)
        if level is not None:
            clauses.append(ALERTS.c.level == level)
        if since is not None:
            clauses.append(ALERTS.c.event_time >= since)
        if until is not None:
            clauses.append(ALERTS.c.event_time < until)
        return clauses

    def alerts(self, account: str | None = None, level: str | None = None, since: float | None = None,
               until: float | None = None, limit: int = 100) -> list[StoredAlert]:
        """Alerts matching every given filter (event time in [since, until), Unix seconds), newest first."""
        query = (sa.select(*(ALERTS.c[name] for name in StoredAlert.__dataclass_fields__))
                 .where(*self._where(account, level, since, until))
                 .order_by(ALERTS.c.event_time.desc(), ALERTS.c.alert_id.desc())
                 .limit(limit))
        try:
            with self._engine.connect() as connection:
                return [StoredAlert(**row._mapping) for row in connection.execute(query)]
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot query {safe_url(self.url)}: {_short(exc)}") from None

    def counts_per_level(self, account: str | None = None, since: float | None = None,
                         until: float | None = None) -> dict[str, int]:
        """How many alerts of each level match (event time in [since, until))."""
        query = (sa.select(ALERTS.c.level, sa.func.count())
                 .where(*self._where(account, None, since, until))
                 .group_by(ALERTS.c.level).order_by(ALERTS.c.level))
        try:
            with self._engine.connect() as connection:
                return {level: int(count) for level, count in connection.execute(query)}
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot query {safe_url(self.url)}: {_short(exc)}") from None


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    # WAL: the history view and `report` read while the monitor writes, without blocking it.
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _short(exc: BaseException) -> str:
    """The driver's own message, first line only (SQLAlchemy appends the statement and a link)."""
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


class DatabaseSink:
    """Writes alerts into the store; opened on first use so a database down at start is retried."""

    name = "database"
    digests = False

    def __init__(self, config: StorageConfig) -> None:
        self.config = config
        self._store: AlertStore | None = None

    def send(self, items: Sequence[OutboxItem]) -> None:
        """Insert the batch; ids stored already are skipped, so a batch repeated after a crash is harmless."""
        try:
            if self._store is None:
                self._store = AlertStore(self.config.url)
            self._store.insert_new(items)
        except StoreError as exc:
            raise DeliveryFailed(str(exc)) from None
        except DataError as exc:  # a value this database refuses: the batch, not the database, is at fault
            raise Rejected(f"{safe_url(self.config.url)}: {_short(exc)}") from None
        except SQLAlchemyError as exc:
            raise DeliveryFailed(f"{safe_url(self.config.url)}: {_short(exc)}") from None

    def recover(self, items: Sequence[OutboxItem]) -> int:
        """Nothing to do: the insert skips stored ids."""
        return 0

    def close(self) -> None:
        """Close the pool."""
        if self._store is not None:
            self._store.close()
            self._store = None
