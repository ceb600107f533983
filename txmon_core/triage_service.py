"""The Kafka side of triage: follow `txmon.triage` into a TriageState, write operator actions, undo.

Blocking calls (the actions write and wait for the broker): call them from a worker thread in the UI.
No Textual, no pyspark; the screens never see a Kafka error raw (KafkaAccessError is one line).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from txmon_core import compacted, rules_log
from txmon_core.topics import TRIAGE
from txmon_core.triage import (
    ACK,
    NOTE,
    SCOPE_ALERT,
    SCOPE_GROUP,
    SILENCE,
    SILENCE_SCOPES,
    UNDO,
    AuditEntry,
    TriagedAlert,
    TriageError,
    TriageRecord,
    TriageState,
    clean,
    decode,
    is_silenced,
    iso,
)

CATCH_UP_WAIT = 15.0  # seconds delivery waits, once, for the silences already on the topic


@dataclass(frozen=True)
class _Done:
    """An action of this service, as undo needs it: the key and what it held before."""

    key: str
    before: TriageRecord | None
    record: TriageRecord


class TriageService:
    """Follows `txmon.triage` (every monitor sees every other's actions) and writes this operator's."""

    def __init__(self, client_config: Mapping[str, str], operator: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._config = dict(client_config)
        self.operator = operator
        self._clock = clock
        self._lock = threading.Lock()
        self._state = TriageState()
        self._shared: TriageState | None = None  # a copy for readers, made again after each change
        self.changes = 0  # records applied so far: a view repaints when it moved
        self._done: list[_Done] = []
        self._follower = compacted.Follower(self._config, TRIAGE, self._apply, "txmon-triage")
        self._writer: compacted.Writer | None = None  # made on the first action: a viewer may never act

    def start(self, create: bool = True) -> TriageService:
        """Create the topic if missing (unless not to `create`) and start following it."""
        if create:
            compacted.ensure(self._config, TRIAGE)
        self._follower.start()
        return self

    def close(self) -> None:
        """Stop following; close the producer."""
        self._follower.close()
        with self._lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def _put(self, records: list[tuple[str, bytes | None]]) -> None:
        with self._lock:
            if self._writer is None:
                self._writer = compacted.Writer(self._config)
            writer = self._writer
        writer.write(TRIAGE, records)

    def __enter__(self) -> TriageService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _apply(self, record: compacted.Record) -> None:
        if record.value is None:
            parsed = None
        else:
            try:
                parsed = decode(record.value)
            except TriageError:
                return  # a foreign or damaged record changes nothing
            if parsed.kind == UNDO:
                return  # kept for the audit only
        with self._lock:
            self._state.apply(record.key, parsed)
            self._shared = None
            self.changes += 1

    def state(self) -> TriageState:
        """The triage now, as a copy that is safe to read in any thread (copied only after a change)."""
        with self._lock:
            if self._shared is None:
                self._shared = self._state.copy()
            return self._shared

    @property
    def error(self) -> str | None:
        """The last client error, if reading is failing now."""
        return self._follower.error

    def wait_caught_up(self, timeout: float) -> bool:
        """Wait until the state holds every record present at the start; False on timeout."""
        return self._follower.caught_up.wait(timeout)

    # ---- actions (blocking: they return once the broker has the record) ----------------------------

    def _new(self, kind: str, **values: str) -> TriageRecord:
        return TriageRecord(kind, uuid.uuid4().hex[:12], self.operator, iso(self._clock()), **values)

    def _write(self, record: TriageRecord) -> TriageRecord:
        with self._lock:
            before = self._state.get(record.key)
        self._put([(record.key, record.encode())])
        with self._lock:
            self._done.append(_Done(record.key, before, record))
        return record

    def acknowledge(self, alert: TriagedAlert, reason: str = "") -> TriageRecord:
        """Acknowledge one alert."""
        return self._write(self._new(ACK, scope=SCOPE_ALERT, tx_id=alert.tx_id, account_id=alert.account_id,
                                     reason=clean(reason)))

    def acknowledge_group(self, account_id: str, level: str, rule: str, reason: str = "") -> TriageRecord:
        """Acknowledge every alert of a group of the grouped view detected until now."""
        return self._write(self._new(ACK, scope=SCOPE_GROUP, account_id=account_id, level=level, rule=rule,
                                     before=iso(self._clock()), reason=clean(reason)))

    def silence(self, scope: str, target: str, seconds: float, reason: str) -> TriageRecord:
        """Silence an account or a rule for `seconds`; TriageError without a reason or a target."""
        if scope not in SILENCE_SCOPES:
            raise TriageError(f"scope: must be one of {', '.join(SILENCE_SCOPES)}, got {scope!r}")
        if not target:
            raise TriageError(f"{scope}: nothing to silence")
        if not clean(reason):
            raise TriageError("reason: say why the silence is needed")
        return self._write(self._new(SILENCE, scope=scope, target=target, reason=clean(reason),
                                     until=iso(self._clock() + seconds)))

    def note(self, tx_id: str, account_id: str, text: str) -> TriageRecord:
        """Add a note about an alert (or an account, with no tx id)."""
        if not clean(text):
            raise TriageError("note: must not be empty")
        return self._write(self._new(NOTE, tx_id=tx_id, account_id=account_id, text=clean(text)))

    def undo(self) -> TriageRecord | None:
        """Undo this operator's last action (here): the key gets back what it held; None if nothing left."""
        with self._lock:
            if not self._done:
                return None
            done = self._done.pop()
        undo = self._new(UNDO, undoes=done.key, reason=done.record.describe())
        restored = done.before.encode() if done.before is not None else None
        try:
            self._put([(done.key, restored), (undo.key, undo.encode())])
        except BaseException:
            with self._lock:
                self._done.append(done)  # not undone: it may be tried again
            raise
        return undo

    @property
    def can_undo(self) -> bool:
        """Whether this operator has an action here left to undo."""
        with self._lock:
            return bool(self._done)


class _SilenceTest:
    """Delivery's question (did a silence cover this alert when it arrived?) answered by the shared triage.

    The first question waits (up to CATCH_UP_WAIT s, once) until the service has read the silences
    already on the topic: alerts taken at start-up must not slip past a silence not yet read.
    """

    def __init__(self, service: TriageService) -> None:
        self._service = service
        self._waited = False

    def __call__(self, alert: TriagedAlert, at: float) -> bool:
        if not self._waited:
            self._service.wait_caught_up(CATCH_UP_WAIT)  # delivery's intake thread: the screen never waits
            self._waited = True
        return is_silenced(alert, self._service.state(), at)


def silence_test(service: TriageService) -> Callable[[TriagedAlert, float], bool]:
    """The test delivery asks of each alert it takes (Delivery.silenced)."""
    return _SilenceTest(service)


def read_records(client_config: Mapping[str, str]) -> list[TriageRecord]:
    """Every triage record on the topic now (undone ones too, until compaction), in offset order."""
    compacted.ensure(client_config, TRIAGE)
    found = []
    for record in compacted.read_range(client_config, TRIAGE):
        if record.value is not None:
            try:
                found.append(decode(record.value))
            except TriageError:
                continue
    return found


def rule_changes(client_config: Mapping[str, str]) -> list[AuditEntry]:
    """Each version of the rules as an audit entry (old → new)."""
    entries = []
    previous = None
    for version in rules_log.history(client_config):
        what = rules_log.changes_text(version.changes_from(previous))
        entries.append(AuditEntry(version.at, version.author, f"rules v{version.version}: {what}",
                                  version.reason))
        previous = version
    return entries
