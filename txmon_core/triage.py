"""Shared triage of alerts: acknowledgements, silences and notes, as records of `txmon.triage`.

Pure: the record format (defined once here), the state every monitor rebuilds from the topic, the one
silence test delivery applies (`is_silenced`), the audit lines, and the [triage] settings. The Kafka
side is txmon_core.triage_service. No Textual, no pyspark.

Keys of `txmon.triage` (compacted): `ack:<tx_id>` for one alert, `ack-group:<account>␟<level>␟<rule>`
for a group of the grouped view, `silence:<id>` and `note:<id>` (ids are unique per action), and
`undo:<id>` for the record of an undo. Undo writes back what the key held before (a tombstone when it
held nothing), so compaction forgets an undone action while the undo record keeps the audit. Silences
carry their end (`until`) and expire by the clock of each reader: nobody has to delete them, every
monitor agrees when they end, and the expired record stays as history.
"""

from __future__ import annotations

import getpass
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Protocol

import orjson

from txmon_core.settings import SettingsError, known_keys, section

ACK, SILENCE, NOTE, UNDO = "ack", "silence", "note", "undo"
KINDS = (ACK, SILENCE, NOTE, UNDO)
SCOPE_ALERT, SCOPE_GROUP = "alert", "group"  # what an ack covers
SCOPE_ACCOUNT, SCOPE_RULE = "account", "rule"  # what a silence covers
SILENCE_SCOPES = (SCOPE_ACCOUNT, SCOPE_RULE)
# The durations the silence form offers (custom ones are typed in minutes).
DURATIONS = {"15 m": 15 * 60.0, "1 h": 3600.0, "4 h": 4 * 3600.0}
MAX_SILENCE_SECONDS = 7 * 24 * 3600.0  # a forgotten silence must not hide an account for good
MAX_TEXT = 500  # characters of a reason or a note
GROUP_SEPARATOR = "\x1f"
SECTION = "triage"


class TriageError(ValueError):
    """A triage action or record that cannot be used; one line naming the field."""


class TriagedAlert(Protocol):
    """What triage looks at in an alert (txmon_core.records.alert.Alert has it all)."""

    tx_id: str
    account_id: str
    level: str
    rule: str
    detected_at: str


def iso(epoch: float) -> str:
    """Unix seconds as ISO 8601 UTC with milliseconds and Z (as the wire writes times)."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@lru_cache(maxsize=4096)
def epoch(text: str) -> float | None:
    """An ISO 8601 time as Unix seconds (naive means UTC), None when it is not one."""
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).timestamp()


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """Text typed by an operator or read from Kafka, without control characters, at most `limit` long."""
    return "".join(c if c.isprintable() else " " for c in text).strip()[:limit]


@dataclass(frozen=True)
class TriageRecord:
    """One operator action. Fields that do not apply to its kind are empty."""

    kind: str
    id: str
    operator: str
    at: str  # ISO 8601 UTC, ms
    reason: str = ""
    scope: str = ""  # ack: alert | group; silence: account | rule
    tx_id: str = ""  # ack of one alert; the alert a note is about
    account_id: str = ""  # group ack; the account a note is about
    level: str = ""  # group ack
    rule: str = ""  # group ack
    target: str = ""  # silence: the account id or the rule text it covers
    until: str = ""  # silence: when it ends (ISO 8601 UTC)
    before: str = ""  # group ack: covers the group's alerts detected at or before this time
    text: str = ""  # note
    undoes: str = ""  # undo: the key whose action was undone

    @property
    def key(self) -> str:
        """The record's key on `txmon.triage`."""
        if self.kind == ACK and self.scope == SCOPE_GROUP:
            return "ack-group:" + GROUP_SEPARATOR.join((self.account_id, self.level, self.rule))
        if self.kind == ACK:
            return f"ack:{self.tx_id}"
        return f"{self.kind}:{self.id}"

    def encode(self) -> bytes:
        """The record's value (only the fields that are set)."""
        return orjson.dumps({name: value for name, value in asdict(self).items() if value})

    def ends(self) -> float | None:
        """A silence's end in Unix seconds."""
        return epoch(self.until) if self.until else None

    def describe(self) -> str:
        """What was done, in a few words (for the audit and notifications); data is plain text."""
        if self.kind == ACK and self.scope == SCOPE_GROUP:
            return f"acknowledged group {self.account_id} {self.level} {self.rule} (up to {self.before})"
        if self.kind == ACK:
            return f"acknowledged alert {self.tx_id}"
        if self.kind == SILENCE:
            return f"silenced {self.scope} {self.target} until {self.until}"
        if self.kind == NOTE:
            return f"noted on {self.tx_id or self.account_id}: {self.text}"
        return f"undid {self.undoes}"


_FIELDS = {f.name for f in fields(TriageRecord)}


def decode(value: bytes) -> TriageRecord:
    """A `txmon.triage` record's value; TriageError naming the field when it is not a valid record."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise TriageError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise TriageError("not a JSON object")
    known = {name: data[name] for name in _FIELDS if name in data}
    for name, field_value in known.items():
        if not isinstance(field_value, str):
            raise TriageError(f"{name}: must be a string")
    record = TriageRecord(**{name: clean(text, 2 * MAX_TEXT) for name, text in known.items()})
    if record.kind not in KINDS:
        raise TriageError(f"kind: must be one of {', '.join(KINDS)}, got {record.kind!r}")
    for name in ("id", "operator", "at"):
        if not getattr(record, name):
            raise TriageError(f"{name}: missing")
    if record.kind == SILENCE and (record.scope not in SILENCE_SCOPES or record.ends() is None
                                   or not record.target):
        raise TriageError("silence: needs scope (account|rule), target and until")
    if record.kind == ACK and not (record.tx_id or record.scope == SCOPE_GROUP):
        raise TriageError("ack: needs tx_id or a group")
    return record


def silence_seconds(text: str) -> float:
    """A duration as the silence form and `15m`/`1h`/`90` (minutes) spell it; TriageError if not one."""
    spelled = text.strip().lower().replace(" ", "")
    units = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
    number, unit = spelled, "m"
    for suffix in sorted(units, key=len, reverse=True):
        if spelled.endswith(suffix):
            number, unit = spelled[: -len(suffix)], suffix
            break
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise TriageError(f"duration: expected minutes or e.g. 15m, 1h, 4h, got {text!r}") from None
    if not 0 < seconds <= MAX_SILENCE_SECONDS or math.isnan(seconds):
        raise TriageError(f"duration: must be more than 0 and at most 7 days, got {text!r}")
    return seconds


class TriageState:
    """The current triage: what each key of `txmon.triage` holds now. Not thread-safe: copy() to share."""

    def __init__(self) -> None:
        self._records: dict[str, TriageRecord] = {}
        self._groups: dict[tuple[str, str, str], str] = {}  # group → its ack's `before`

    def apply(self, key: str, record: TriageRecord | None) -> None:
        """One record read from the topic: a value replaces what the key held, a tombstone removes it."""
        old = self._records.pop(key, None)
        if old is not None and old.kind == ACK and old.scope == SCOPE_GROUP:
            self._groups.pop((old.account_id, old.level, old.rule), None)
        if record is None:
            return
        self._records[key] = record
        if record.kind == ACK and record.scope == SCOPE_GROUP:
            self._groups[(record.account_id, record.level, record.rule)] = record.before

    def get(self, key: str) -> TriageRecord | None:
        """What a key holds now."""
        return self._records.get(key)

    def records(self) -> list[TriageRecord]:
        """Every record held now."""
        return list(self._records.values())

    def is_acked(self, alert: TriagedAlert) -> bool:
        """Whether the alert was acknowledged, alone or with its group."""
        if f"ack:{alert.tx_id}" in self._records:
            return True
        before = self._groups.get((alert.account_id or "", alert.level, alert.rule or ""))
        # ISO 8601 UTC times of one format compare correctly as text.
        return before is not None and (alert.detected_at or "") <= before

    def active_silences(self, now: float) -> list[TriageRecord]:
        """Silences in force at `now`, the one ending first first."""
        found = [r for r in self._records.values() if r.kind == SILENCE and (r.ends() or 0) > now]
        return sorted(found, key=lambda r: (r.ends() or 0, r.id))

    def silence_of(self, alert: TriagedAlert, now: float) -> TriageRecord | None:
        """The silence in force at `now` that covers the alert, if any."""
        for silence in self.active_silences(now):
            covered = alert.account_id if silence.scope == SCOPE_ACCOUNT else alert.rule
            if covered == silence.target:
                return silence
        return None

    def notes_about(self, tx_id: str, account_id: str) -> list[TriageRecord]:
        """Notes on the alert or its account, oldest first."""
        found = [r for r in self._records.values()
                 if r.kind == NOTE and (r.tx_id == tx_id or (not r.tx_id and r.account_id == account_id))]
        return sorted(found, key=lambda r: r.at)

    def has_note(self, tx_id: str) -> bool:
        """Whether some note is about this alert."""
        return any(r.kind == NOTE and r.tx_id == tx_id for r in self._records.values())

    def copy(self) -> TriageState:
        """An independent copy (for another thread)."""
        other = TriageState()
        other._records = dict(self._records)
        other._groups = dict(self._groups)
        return other


def is_silenced(alert: TriagedAlert, state: TriageState | None, now: float) -> bool:
    """Whether a silence in force at `now` covers the alert: the one test every sink and view applies."""
    return state is not None and state.silence_of(alert, now) is not None


def time_left(seconds: float) -> str:
    """`3 h 59 m`, `14 m 5 s`, `40 s`: a silence's time left."""
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} m"
    return f"{minutes} m {secs:02d} s" if minutes else f"{secs} s"


def silence_line(silence: TriageRecord, now: float) -> str:
    """One active silence for the Health panel: what, how long still, by whom, why."""
    left = time_left((silence.ends() or now) - now)
    return f"{silence.scope} {silence.target} · {left} left · {silence.operator}: {silence.reason}"


# ---- settings and the audit trail --------------------------------------------------------------------

@dataclass(frozen=True)
class TriageSettings:
    """The [triage] table: `operator` (default $USER) and `can_edit_rules` (default: unless read-only)."""

    operator: str
    can_edit_rules: bool | None = None  # None: a monitor edits rules unless it is read-only (attached)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any],
                      env: Mapping[str, str] | None = None) -> TriageSettings:
        """From the settings' [triage] table; SettingsError naming the key when it is wrong."""
        table = known_keys(SECTION, section(settings, SECTION), ("operator", "can_edit_rules"))
        operator = table.get("operator")
        if operator is not None and (not isinstance(operator, str) or not clean(operator, 64)):
            raise SettingsError(f"[{SECTION}] operator: must be a non-empty string")
        editing = table.get("can_edit_rules")
        if editing is not None and not isinstance(editing, bool):
            raise SettingsError(f"[{SECTION}] can_edit_rules: must be true or false")
        return cls(clean(operator, 64) if operator else default_operator(env), editing)


def default_operator(env: Mapping[str, str] | None = None) -> str:
    """$USER (or the login name), else "operator"."""
    env = os.environ if env is None else env
    name = env.get("USER") or env.get("LOGNAME")
    if not name and env is os.environ:
        try:
            name = getpass.getuser()
        except (OSError, KeyError):
            name = None
    return clean(name or "operator", 64) or "operator"


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit trail: when, who, what, why."""

    at: str
    operator: str
    what: str
    reason: str

    def line(self) -> str:
        """As `report --triage` prints it."""
        why = f" — {self.reason}" if self.reason else ""
        return f"{self.at}  {self.operator:<12} {self.what}{why}"


def audit(triage_records: Iterable[TriageRecord], rule_changes: Iterable[AuditEntry],
          since: float | None = None) -> list[AuditEntry]:
    """Every action in time order (from `since`, Unix seconds): triage records and rule changes."""
    entries = [AuditEntry(r.at, r.operator, r.describe(), r.reason) for r in triage_records]
    entries.extend(rule_changes)
    if since is not None:
        entries = [e for e in entries if (epoch(e.at) or 0) >= since]
    return sorted(entries, key=lambda e: e.at)
