"""The [sinks.*], [storage] and [prometheus] tables: defaults, every sink, and mistakes named clearly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from txmon_core.settings import SettingsError
from txmon_sinks.config import delivery_config, prometheus_config

DATA = Path("/srv/txmon")
SECRET = "s3cret-Pa55"


def test_no_file_means_nothing_on() -> None:
    config = delivery_config({}, DATA)
    assert (config.jsonl, config.webhook, config.email, config.storage) == (None, None, None, None)
    assert config.outbox_path == DATA / "delivery" / "outbox.sqlite"
    assert config.prometheus.port == 0 and config.prometheus.host == "127.0.0.1"
    assert not config.anything_on


def test_an_empty_storage_table_means_sqlite_in_the_data_dir() -> None:
    config = delivery_config({"storage": {}}, DATA)
    assert config.storage is not None and config.storage.url == "sqlite:////srv/txmon/alerts.sqlite"
    assert config.anything_on


def test_every_sink_with_its_keys() -> None:
    config = delivery_config({
        "sinks": {
            "remember_hours": 2,
            "jsonl": {"path": "/tmp/a.jsonl", "fsync": False},
            "webhook": {"url": "https://hooks.example/alerts", "headers": {"Authorization": "Bearer x"},
                        "max_per_minute": 30, "timeout_s": 3, "backoff_initial_s": 1, "backoff_max_s": 30},
            "email": {"host": "smtp.example", "starttls": True, "username": "txmon", "password": SECRET,
                      "from": "txmon@example.org", "to": "ops@example.org", "max_per_minute": 5},
        },
        "storage": {"url": "postgresql://txmon:pw@db/txmon"},
        "prometheus": {"port": 9464},
    }, DATA)
    assert config.remember_seconds == 7200.0
    assert config.jsonl is not None and config.jsonl.path == Path("/tmp/a.jsonl") and not config.jsonl.fsync
    assert config.webhook is not None and config.webhook.max_per_minute == 30
    assert config.webhook.retry.backoff.initial == 1.0 and config.webhook.retry.backoff.maximum == 30.0
    assert config.email is not None and config.email.port == 587
    assert config.email.recipients == ("ops@example.org",)
    assert config.storage is not None and config.storage.url.startswith("postgresql://")
    assert config.prometheus.port == 9464
    assert SECRET not in repr(config) and "Bearer" not in repr(config) and "pw@" not in repr(config)


def test_defaults_of_a_bare_jsonl_table_and_disabled_tables() -> None:
    config = delivery_config({"sinks": {"jsonl": {}, "webhook": {"enabled": False}},
                              "storage": {"enabled": False}}, DATA)
    assert config.jsonl is not None and config.jsonl.path == DATA / "alerts.jsonl" and config.jsonl.fsync
    assert config.webhook is None and config.storage is None


def test_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TXMON_TEST_SMTP_PASSWORD", SECRET)
    email = {"host": "h", "username": "u", "password_env": "TXMON_TEST_SMTP_PASSWORD", "tls": "starttls",
             "from": "a@b", "to": ["c@d"]}
    config = delivery_config({"sinks": {"email": email}}, DATA)
    assert config.email is not None and config.email.password == SECRET and config.email.port == 587


@pytest.mark.parametrize(("keys", "tls", "port"), [
    ({}, "none", 25), ({"starttls": True}, "starttls", 587), ({"starttls": False}, "none", 25),
    ({"tls": "starttls"}, "starttls", 587), ({"tls": "implicit"}, "implicit", 465),
    ({"tls": "implicit", "port": 2465}, "implicit", 2465),
])
def test_email_tls_modes_and_their_ports(keys: dict[str, Any], tls: str, port: int) -> None:
    config = delivery_config({"sinks": {"email": {**MAIL, **keys}}}, DATA)
    assert config.email is not None and (config.email.tls, config.email.port) == (tls, port)


def test_webhook_headers_over_https_with_a_private_ca() -> None:
    webhook = {"url": "https://127.0.0.1:8443/x", "ca_file": "/etc/ca.pem",
               "headers": {"Authorization": "Bearer x"}}
    config = delivery_config({"sinks": {"webhook": webhook}}, DATA)
    assert config.webhook is not None and config.webhook.ca_file == Path("/etc/ca.pem")


HOOK = "http://x"
MAIL = {"host": "h", "from": "a@b", "to": "c@d"}


@pytest.mark.parametrize(("settings", "message"), [
    ({"sinks": {"jsonl": {"pth": "x"}}}, "[sinks.jsonl] unknown key 'pth'"),
    ({"sinks": {"slack": {}}}, "[sinks.slack] is not a sink txmon knows"),
    ({"sinks": {"webhook": {}}}, "[sinks.webhook] url is required"),
    ({"sinks": {"webhook": {"url": "ftp://x/y"}}}, "expected an http:// or https:// URL"),
    ({"sinks": {"webhook": {"url": HOOK, "headers": {"a": 1}}}}, "headers: expected a table of strings"),
    ({"sinks": {"webhook": {"url": HOOK, "max_per_minute": "10"}}}, "max_per_minute: expected a whole"),
    ({"sinks": {"webhook": {"url": HOOK, "max_per_minute": -1}}}, "max_per_minute: expected 0.."),
    ({"sinks": {"webhook": {"url": HOOK, "timeout_s": 0}}}, "timeout_s: expected a number of seconds"),
    ({"sinks": {"webhook": {"url": HOOK, "backoff_initial_s": 9, "backoff_max_s": 2}}}, "backoff_max_s"),
    ({"sinks": {"jsonl": {"fsync": "yes"}}}, "fsync: expected true or false"),
    ({"sinks": {"jsonl": []}}, "[sinks.jsonl] must be a table"),
    ({"sinks": {"email": {"host": "h", "from": "a@b"}}}, "to: expected an address"),
    ({"sinks": {"email": {"host": "h", "from": "nobody", "to": "c@d"}}}, "from: expected an address"),
    ({"sinks": {"email": {"from": "a@b", "to": "c@d"}}}, "[sinks.email] host is required"),
    ({"sinks": {"email": {**MAIL, "password": SECRET}}}, "needs a username"),
    ({"sinks": {"email": {**MAIL, "username": "u", "password": SECRET, "password_env": "X"}}}, "not both"),
    ({"sinks": {"email": {**MAIL, "username": "u", "password_env": "TXMON_TEST_NOT_SET"}}},
     "TXMON_TEST_NOT_SET is not set"),
    ({"sinks": {"email": {**MAIL, "username": "u", "password": 42}}}, "password: expected a string, not int"),
    ({"sinks": {"webhook": {"url": "http://hooks.example/x", "headers": {"Authorization": SECRET}}}},
     "[sinks.webhook] url: headers are configured, so the URL must be https://"),
    ({"sinks": {"webhook": {"url": "https://h/x", "headers": {"X-A": "a\r\nX-B: b"}}}},
     "[sinks.webhook] headers: a name or value holds a control character"),
    ({"sinks": {"email": {**MAIL, "username": "u", "password": SECRET}}},
     "[sinks.email] password: refused without TLS"),
    ({"sinks": {"email": {**MAIL, "username": "u", "password": SECRET, "starttls": False}}},
     "[sinks.email] password: refused without TLS"),
    ({"sinks": {"email": {**MAIL, "tls": "ssl"}}}, "[sinks.email] tls: expected one of none, starttls"),
    ({"sinks": {"email": {**MAIL, "tls": "implicit", "starttls": True}}}, "give tls or starttls, not both"),
    ({"sinks": {"email": {**MAIL, "subject_prefix": "[txmon]\r\nBcc: x@y"}}},
     "[sinks.email] subject_prefix: holds a control character"),
    ({"sinks": {"email": {**MAIL, "to": ["ops@example.org\r\nBcc: x@y"]}}}, "to: expected an address"),
    ({"storage": {"url": "alerts.db"}}, "[storage] url: expected a database URL"),
    ({"storage": "sqlite://"}, "[storage] must be a table"),
    ({"prometheus": {"port": 70000}}, "[prometheus] port: expected 0..65535"),
    ({"sinks": {"remember_max": 5}}, "[sinks] remember_max: expected 1000.."),
])
def test_mistakes_name_table_and_key_never_the_secret(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        delivery_config(settings, DATA)
    assert message in str(caught.value)
    assert SECRET not in str(caught.value)


def test_prometheus_table_alone() -> None:
    assert prometheus_config({"prometheus": {"port": 9100, "host": "0.0.0.0"}}).host == "0.0.0.0"
