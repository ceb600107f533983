"""The [sinks.*], [storage] and [prometheus] tables of txmon.toml, checked into plain dataclasses.

Every mistake raises SettingsError naming the table and key, never echoing a secret's value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from txmon_core.backoff import Backoff
from txmon_core.settings import SettingsError, section

OUTBOX_FILE = "outbox.sqlite"
DELIVERY_DIR = "delivery"
ALERTS_DB_FILE = "alerts.sqlite"
JSONL_FILE = "alerts.jsonl"
SINK_KINDS = ("jsonl", "webhook", "email")
TLS_NONE, TLS_STARTTLS, TLS_IMPLICIT = "none", "starttls", "implicit"
TLS_MODES = {TLS_NONE: 25, TLS_STARTTLS: 587, TLS_IMPLICIT: 465}  # each mode with its usual port
_RETRY_KEYS = {"backoff_initial_s", "backoff_max_s", "down_after_s", "quarantine_after"}
_COMMON_KEYS = {"enabled", "max_per_minute"} | _RETRY_KEYS


@dataclass(frozen=True)
class Retry:
    """How a failing sink retries, after how long failing it counts as down, and after how many refusals
    of one alert that alert is set aside (quarantined) so that the ones behind it flow."""

    backoff: Backoff = Backoff()
    down_after: float = 60.0
    quarantine_after: int = 3


@dataclass(frozen=True)
class JsonlConfig:
    """[sinks.jsonl]: one alert JSON per line, appended to a file."""

    path: Path
    fsync: bool = True
    max_per_minute: int = 0
    batch_max: int = 1000
    retry: Retry = Retry()


@dataclass(frozen=True)
class WebhookConfig:
    """[sinks.webhook]: an HTTP POST of each alert's JSON (a digest when over the rate limit)."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold a token
    ca_file: Path | None = None
    timeout: float = 10.0
    max_per_minute: int = 60
    digest_max: int = 1000
    retry: Retry = Retry()


@dataclass(frozen=True)
class EmailConfig:
    """[sinks.email]: one mail per alert through SMTP (a digest when over the rate limit)."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    tls: str = TLS_NONE  # none, starttls (upgrade after connecting) or implicit (TLS from the first byte)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    subject_prefix: str = "[txmon]"
    timeout: float = 10.0
    max_per_minute: int = 10
    digest_max: int = 1000
    retry: Retry = Retry()


@dataclass(frozen=True)
class StorageConfig:
    """[storage]: every distinct alert in a database (SQLAlchemy URL; SQLite in the data dir by default)."""

    url: str = field(repr=False)  # may carry a password
    batch_max: int = 1000
    retry: Retry = Retry()


@dataclass(frozen=True)
class PrometheusConfig:
    """[prometheus]: the metrics endpoint; port 0 means off."""

    port: int = 0
    host: str = "127.0.0.1"


@dataclass(frozen=True)
class DeliveryConfig:
    """Everything alert delivery needs: the outbox, the sinks that are on, storage, metrics."""

    outbox_path: Path
    remember_seconds: float = 24 * 3600.0
    remember_max: int = 200_000
    jsonl: JsonlConfig | None = None
    webhook: WebhookConfig | None = None
    email: EmailConfig | None = None
    storage: StorageConfig | None = None
    prometheus: PrometheusConfig = PrometheusConfig()

    @property
    def anything_on(self) -> bool:
        """True when some sink, storage or the metrics endpoint is configured."""
        return any((self.jsonl, self.webhook, self.email, self.storage)) or self.prometheus.port > 0


class _Table:
    """Typed reads from one table, remembering which keys were read so the rest can be reported."""

    def __init__(self, name: str, values: Mapping[str, Any], known: set[str]) -> None:
        self.name = name
        self.values = values
        unknown = sorted(set(values) - known)
        if unknown:
            raise SettingsError(f"[{name}] unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")

    def _fail(self, key: str, expected: str) -> SettingsError:
        # The value is not shown: the key may be a password.
        kind = type(self.values[key]).__name__
        return SettingsError(f"[{self.name}] {key}: expected {expected}, not {kind}")

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.values.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def required_text(self, key: str) -> str:
        value = self.text(key)
        if not value:
            raise SettingsError(f"[{self.name}] {key} is required")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.values.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value

    def integer(self, key: str, default: int, minimum: int = 0, maximum: int = 2**31) -> int:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._fail(key, "a whole number")
        if not minimum <= value <= maximum:
            raise SettingsError(f"[{self.name}] {key}: expected {minimum}..{maximum}, got {value}")
        return value

    def seconds(self, key: str, default: float) -> float:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._fail(key, "a number of seconds")
        if not 0 < value < float("inf"):
            raise SettingsError(f"[{self.name}] {key}: expected a number of seconds > 0, got {value}")
        return float(value)

    def retry(self) -> Retry:
        initial = self.seconds("backoff_initial_s", 0.5)
        maximum = self.seconds("backoff_max_s", 60.0)
        if maximum < initial:
            raise SettingsError(f"[{self.name}] backoff_max_s must not be below backoff_initial_s")
        return Retry(Backoff(initial=initial, maximum=maximum), self.seconds("down_after_s", 60.0),
                     self.integer("quarantine_after", 3, minimum=1, maximum=1000))


def _has_control(text: str) -> bool:
    """Whether `text` holds a C0/C1 control character or DEL (CR and LF would split a header)."""
    return any(ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0 for char in text)


def _sink_table(sinks: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    value = sinks.get(kind)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise SettingsError(f"[sinks.{kind}] must be a table, not {type(value).__name__}")
    return value


def _jsonl(values: Mapping[str, Any], data_dir: Path) -> JsonlConfig:
    table = _Table("sinks.jsonl", values, _COMMON_KEYS | {"path", "fsync", "batch_max"})
    path = Path(table.text("path") or data_dir / JSONL_FILE).expanduser()
    return JsonlConfig(path=path, fsync=table.flag("fsync", True),
                       max_per_minute=table.integer("max_per_minute", 0),
                       batch_max=table.integer("batch_max", 1000, minimum=1), retry=table.retry())


def _webhook(values: Mapping[str, Any]) -> WebhookConfig:
    keys = _COMMON_KEYS | {"url", "headers", "ca_file", "timeout_s", "digest_max"}
    table = _Table("sinks.webhook", values, keys)
    url = table.required_text("url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError("[sinks.webhook] url: expected an http:// or https:// URL with a host")
    headers = values.get("headers", {})
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise SettingsError("[sinks.webhook] headers: expected a table of strings")
    if any(_has_control(k) or _has_control(v) for k, v in headers.items()):
        raise SettingsError("[sinks.webhook] headers: a name or value holds a control character")
    if headers and parts.scheme != "https":
        # Headers such as Authorization would cross the network in clear text.
        raise SettingsError("[sinks.webhook] url: headers are configured, so the URL must be https:// "
                            "(they would be sent in clear text over http://)")
    ca_file = table.text("ca_file")
    return WebhookConfig(url=url, headers=dict(headers),
                         ca_file=Path(ca_file).expanduser() if ca_file else None,
                         timeout=table.seconds("timeout_s", 10.0),
                         max_per_minute=table.integer("max_per_minute", 60),
                         digest_max=table.integer("digest_max", 1000, minimum=1), retry=table.retry())


def _recipients(values: Mapping[str, Any]) -> tuple[str, ...]:
    value = values.get("to")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(
        isinstance(v, str) and "@" in v and not _has_control(v) for v in value
    ):
        raise SettingsError("[sinks.email] to: expected an address or a list of addresses")
    return tuple(value)


def _tls_mode(table: _Table) -> str:
    """`tls = "none" | "starttls" | "implicit"`; the older `starttls = true/false` still reads."""
    tls = table.text("tls")
    if tls is not None and "starttls" in table.values:
        raise SettingsError('[sinks.email] give tls or starttls, not both '
                            '(starttls = true is tls = "starttls")')
    if tls is None:
        return TLS_STARTTLS if table.flag("starttls", False) else TLS_NONE
    if tls not in TLS_MODES:
        raise SettingsError(f"[sinks.email] tls: expected one of {', '.join(TLS_MODES)}, got {tls!r}")
    return tls


def _email(values: Mapping[str, Any]) -> EmailConfig:
    keys = _COMMON_KEYS | {"host", "port", "tls", "starttls", "username", "password", "password_env",
                           "ca_file", "from", "to", "subject_prefix", "timeout_s", "digest_max"}
    table = _Table("sinks.email", values, keys)
    tls = _tls_mode(table)
    password = table.text("password")
    password_env = table.text("password_env")
    if password is not None and password_env is not None:
        raise SettingsError("[sinks.email] give password or password_env, not both")
    if password_env is not None:
        password = os.environ.get(password_env)
        if password is None:
            raise SettingsError(f"[sinks.email] password_env: the variable {password_env} is not set")
    username = table.text("username")
    if password is not None and not username:
        raise SettingsError("[sinks.email] a password needs a username")
    if password is not None and tls == TLS_NONE:
        raise SettingsError('[sinks.email] password: refused without TLS, the login would cross the network '
                            'in clear text; set tls = "starttls" (port 587) or tls = "implicit" (port 465)')
    sender = table.required_text("from")
    if "@" not in sender or _has_control(sender):
        raise SettingsError("[sinks.email] from: expected an address")
    subject_prefix = table.text("subject_prefix", "[txmon]") or ""
    if _has_control(subject_prefix):
        raise SettingsError("[sinks.email] subject_prefix: holds a control character")
    ca_file = table.text("ca_file")
    return EmailConfig(
        host=table.required_text("host"),
        port=table.integer("port", TLS_MODES[tls], minimum=1, maximum=65535),
        sender=sender,
        recipients=_recipients(values),
        tls=tls,
        username=username,
        password=password,
        ca_file=Path(ca_file).expanduser() if ca_file else None,
        subject_prefix=subject_prefix,
        timeout=table.seconds("timeout_s", 10.0),
        max_per_minute=table.integer("max_per_minute", 10),
        digest_max=table.integer("digest_max", 1000, minimum=1),
        retry=table.retry(),
    )


def storage_config(settings: Mapping[str, Any], data_dir: Path) -> StorageConfig | None:
    """The [storage] table alone (None when `enabled = false`), for readers such as `report --alerts`."""
    table = _Table("storage", section(settings, "storage"), {"enabled", "url", "batch_max"} | _RETRY_KEYS)
    if not table.flag("enabled", True):
        return None
    url = table.text("url") or f"sqlite:///{data_dir / ALERTS_DB_FILE}"
    if "://" not in url:
        raise SettingsError("[storage] url: expected a database URL such as sqlite:///path/alerts.sqlite")
    return StorageConfig(url=url, batch_max=table.integer("batch_max", 1000, minimum=1), retry=table.retry())


def prometheus_config(settings: Mapping[str, Any]) -> PrometheusConfig:
    """The [prometheus] table: port (0 = off) and host (127.0.0.1 unless said otherwise)."""
    table = _Table("prometheus", section(settings, "prometheus"), {"port", "host"})
    return PrometheusConfig(port=table.integer("port", 0, maximum=65535),
                            host=table.text("host", "127.0.0.1") or "127.0.0.1")


def delivery_config(settings: Mapping[str, Any], data_dir: Path) -> DeliveryConfig:
    """Read every delivery table; each sink, and storage, is on only when its table is given.

    Nothing is on by default: delivery costs the monitor CPU per alert (every alert passes through the
    SQLite outbox), and a monitor nobody configured should stay as light as it can.
    """
    sinks = section(settings, "sinks")
    unknown = sorted(k for k, v in sinks.items() if isinstance(v, Mapping) and k not in SINK_KINDS)
    if unknown:
        raise SettingsError(f"[sinks.{unknown[0]}] is not a sink txmon knows ({', '.join(SINK_KINDS)})")
    scalars = {k: v for k, v in sinks.items() if not isinstance(v, Mapping) and k not in SINK_KINDS}
    top = _Table("sinks", scalars, {"remember_hours", "remember_max"})
    built: dict[str, Any] = {}
    for kind, build in (("jsonl", lambda v: _jsonl(v, data_dir)), ("webhook", _webhook), ("email", _email)):
        values = _sink_table(sinks, kind)
        if values is not None and _Table(f"sinks.{kind}", {"enabled": values.get("enabled", True)},
                                         {"enabled"}).flag("enabled", True):
            built[kind] = build(values)
    return DeliveryConfig(
        outbox_path=data_dir / DELIVERY_DIR / OUTBOX_FILE,
        remember_seconds=top.seconds("remember_hours", 24.0) * 3600.0,
        remember_max=top.integer("remember_max", 200_000, minimum=1000),
        storage=storage_config(settings, data_dir) if "storage" in settings else None,
        prometheus=prometheus_config(settings),
        **built,
    )
