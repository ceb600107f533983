"""The account rules over the alerts query's batches, decided in the driver, exactly once per batch.

Every transaction that can matter to a rule (valid, of an account, flagged or small) reaches the driver
with the batch's other rows (spark_app.flagged), so the rules need no read of the topic of their own.
AccountRules (spark_app.account_rules) runs over them with one AccountState per account. The states
live in SQLite inside the alerts query's checkpoint folder (so they go wherever the checkpoint goes)
and are committed with the id of the last batch they include, after that batch's alerts are
acknowledged:
- a batch Spark runs again after a crash, at or below the committed id, raises nothing again;
- a batch whose states were not committed is decided again from the same states: the same alerts
  with the same ids (readers drop repeats by id).
Event time works as a Spark watermark: a transaction more than `lateness` seconds behind the newest
event time of the earlier batches is too late for the rules, and an account's state is dropped once
the watermark passes the time after which it can no longer matter.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from spark_app.account_rules import AccountRules, AccountState, Event, RuleHit
from txmon_core.records.alert import Alert, encode_alert
from txmon_core.rules import RuleSettings

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Decision:
    """What one batch changed, kept until it is committed."""

    batch_id: int
    states: dict[str, tuple[str, int]]  # account → (encoded state, expires at ms)
    expired: list[str]
    newest_ms: int | None


class RuleEngine:
    """Decides a batch's rule hits (`decide`), then makes its states durable (`commit`)."""

    def __init__(self, path: Path, settings: RuleSettings, large_threshold: float) -> None:
        self.rules = AccountRules(settings, large_threshold)
        self.lateness_ms = round(settings.lateness * 1000)
        # Autocommit mode: each commit is one explicit transaction.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS account (id TEXT PRIMARY KEY, state TEXT NOT NULL,"
            " expires_ms INTEGER NOT NULL);"
            "CREATE TABLE IF NOT EXISTS progress (name TEXT PRIMARY KEY, value INTEGER);"
        )
        progress = dict(self.db.execute("SELECT name, value FROM progress").fetchall())
        self.applied: int = progress.get("batch", -1)
        self.newest_ms: int | None = progress.get("newest_ms")
        self.states: dict[str, tuple[str, int]] = {
            account: (state, expires) for account, state, expires in self.db.execute("SELECT * FROM account")
        }
        self._pending: Decision | None = None

    def watermark_ms(self) -> int | None:
        """Event times below this are too late for the rules (None before any event)."""
        return None if self.newest_ms is None else self.newest_ms - self.lateness_ms

    def decide(self, batch_id: int, events: Iterable[tuple[str, Event]]) -> list[tuple[str, RuleHit]]:
        """The hits of one batch's (account, event) pairs; nothing for a batch already committed."""
        if batch_id <= self.applied:
            self._pending = None
            return []
        watermark = self.watermark_ms()
        by_account: dict[str, list[Event]] = defaultdict(list)
        newest = self.newest_ms
        for account, event in events:
            if watermark is not None and event.ts_ms < watermark:
                continue  # too late: as Spark's watermark would drop it
            by_account[account].append(event)
            newest = event.ts_ms if newest is None else max(newest, event.ts_ms)
        hits: list[tuple[str, RuleHit]] = []
        changed: dict[str, tuple[str, int]] = {}
        for account, account_events in by_account.items():
            stored = self.states.get(account)
            state = AccountState.decode(stored[0] if stored else None)
            hits.extend((account, hit) for hit in self.rules.process(state, account_events))
            changed[account] = (state.encode(), self.rules.expires_at(state))
        expired = []
        if newest is not None:
            after = newest - self.lateness_ms
            expired = [a for a, (_, expires) in self.states.items() if expires < after and a not in changed]
        self._pending = Decision(batch_id, changed, expired, newest)
        return hits

    def commit(self) -> None:
        """Make the last decided batch durable (after its alerts were acknowledged)."""
        decision, self._pending = self._pending, None
        if decision is None:
            return
        with self.db:  # one transaction
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT INTO account VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET state = excluded.state,"
                " expires_ms = excluded.expires_ms",
                [(account, state, expires) for account, (state, expires) in decision.states.items()],
            )
            self.db.executemany("DELETE FROM account WHERE id = ?", [(a,) for a in decision.expired])
            self.db.executemany(
                "INSERT INTO progress VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                [("batch", decision.batch_id), ("newest_ms", decision.newest_ms)],
            )
        self.states.update(decision.states)
        for account in decision.expired:
            del self.states[account]
        self.applied, self.newest_ms = decision.batch_id, decision.newest_ms

    def close(self) -> None:
        """Close the database."""
        self.db.close()


def rule_events(rows: pa.Table) -> list[tuple[str, Event]]:
    """(account, Event) of every valid transaction of an account among a batch's Arrow rows."""
    import pyarrow as pa
    import pyarrow.compute as pc

    valid = rows.filter(pc.and_(pc.is_valid(rows.column("tx_id")), pc.is_valid(rows.column("account_id"))))
    ts_ms = pc.divide(valid.column("event_time").cast(pa.int64()), 1000).to_pylist()
    columns = (valid.column(name).to_pylist()
               for name in ("account_id", "tx_id", "amount", "merchant", "currency", "ts"))
    return [
        (account, Event(tx_id, ms, amount, merchant, currency, ts))
        for (account, tx_id, amount, merchant, currency, ts), ms in zip(zip(*columns, strict=True), ts_ms,
                                                                         strict=True)
    ]


def alert_records(hits: list[tuple[str, RuleHit]], rule_text: dict[str, str], detected_at: str,
                  topic: str, rules_version: int | None = None) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) of each hit's alert, as records.alert.Alert spells it (key = the alert's id)."""
    records = []
    for account, hit in hits:
        trigger = hit.trigger
        alert = Alert(hit.alert_id, account, trigger.merchant, trigger.amount, trigger.currency,
                              trigger.ts, hit.level, rule_text[hit.level], detected_at, hit.tx_ids,
                              rules_version)
        records.append((topic, hit.alert_id.encode(), encode_alert(alert)))
    return records
