"""Topic names (the contract between the parts) and their idempotent creation."""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from txmon_core.settings import SettingsError, section

TRANSACTIONS = "transactions"
ALERTS = "alerts"
DEAD_LETTERS = "transactions.dlq"
METRICS = "metrics"
ALL = (TRANSACTIONS, ALERTS, DEAD_LETTERS, METRICS)
# Operators' topics, compacted: the versions of the rules (txmon_core.rules_log) and the shared triage
# state (txmon_core.triage). Created by whoever uses them first, with COMPACTED.
RULES = "txmon.rules"
TRIAGE = "txmon.triage"
COMPACTED = {"cleanup.policy": "compact"}


# Errors that retrying cannot mend: wrong credentials, a certificate that does not verify.
FATAL_CLIENT_ERRORS = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED,
                                 KafkaError._SSL})


class KafkaAccessError(KafkaException):
    """Kafka could not be reached or refused us; str() is one plain line without secrets."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


def describe_fatal(error: KafkaError, client_config: Mapping[str, str]) -> str:
    """One line for an authentication or TLS error, naming the user (never the password)."""
    if error.code() == KafkaError._SSL:
        return f"TLS handshake failed (check ssl.ca.location): {error.str()}"
    user = client_config.get("sasl.username", "?")
    mechanism = client_config.get("sasl.mechanisms", client_config.get("sasl.mechanism", "PLAIN"))
    return f"authentication failed for user {user!r} ({mechanism}): check sasl.username and sasl.password"


def check_access(admin: AdminClient, client_config: Mapping[str, str], fatal: list[KafkaError],
                 timeout: float) -> set[str]:
    """The topic names, once the broker answers; KafkaAccessError at once on a fatal error (`fatal`
    is filled by the admin client's error_cb), or when nothing answered within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return set(admin.list_topics(timeout=min(1.0, max(deadline - time.monotonic(), 0.1))).topics)
        except KafkaException as exc:
            admin.poll(0)  # serves error_cb, which records a refused login
            if fatal:
                raise KafkaAccessError(describe_fatal(fatal[0], client_config)) from None
            if time.monotonic() >= deadline:
                servers = client_config.get("bootstrap.servers", "?")
                raise KafkaAccessError(
                    f"cannot reach Kafka at {servers} within {timeout:g} s: "
                    f"{exc.args[0].str() if exc.args and isinstance(exc.args[0], KafkaError) else exc}"
                ) from None


def access_admin(client_config: Mapping[str, str]) -> tuple[AdminClient, list[KafkaError]]:
    """An admin client that records fatal errors instead of logging every retry of them."""
    fatal: list[KafkaError] = []

    def on_error(error: KafkaError) -> None:
        if error.code() in FATAL_CLIENT_ERRORS:
            fatal.append(error)

    # librdkafka's own lines (one per retry, purged events on close) are not the user's concern: the
    # errors that matter come back as one KafkaAccessError.
    return AdminClient({"log_level": 2, **client_config, "error_cb": on_error}), fatal


def ensure_topics(
    client_config: Mapping[str, str],
    names: Iterable[str] = ALL,
    partitions: int = 1,
    timeout: float = 30.0,
    config: Mapping[str, str] | None = None,
) -> list[str]:
    """Create the topics that are missing (with `config`); return the names created. Safe to call
    concurrently.

    `config`: topic settings of the topics created here, e.g. COMPACTED (an existing topic is left alone).

    Raises KafkaAccessError at once when the broker refuses our credentials or certificate.
    """
    admin, fatal = access_admin(client_config)
    existing = check_access(admin, client_config, fatal, timeout)
    missing = [n for n in names if n not in existing]
    if not missing:
        return []
    # -1: the cluster's own default.replication.factor (1 on the embedded broker, 3 on `--nodes 3`).
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=-1, config=dict(config or {}))
         for n in missing],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            # Another part may have created it between our listing and our request: that is success.
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise
    return created


# --- names configured per cluster: [topics] of the settings, overridden by flags --------------------

TOPICS_SECTION = "topics"
# (settings key, flag, default): each of the four names is configured under these spellings only.
TOPIC_KEYS = (
    ("transactions", "--transactions-topic", TRANSACTIONS),
    ("alerts", "--alerts-topic", ALERTS),
    ("dead_letters", "--dead-letters-topic", DEAD_LETTERS),
    ("metrics", "--metrics-topic", METRICS),
)
_LEGAL = re.compile(r"[A-Za-z0-9._-]{1,249}")


@dataclass(frozen=True)
class TopicNames:
    """The four topic names a pipeline uses (defaults: transactions, alerts, transactions.dlq, metrics)."""

    transactions: str = TRANSACTIONS
    alerts: str = ALERTS
    dead_letters: str = DEAD_LETTERS
    metrics: str = METRICS

    @property
    def all(self) -> tuple[str, str, str, str]:
        """The four names, in the order of ALL."""
        return (self.transactions, self.alerts, self.dead_letters, self.metrics)

    def flags(self, only: Iterable[str] | None = None) -> list[str]:
        """The flags that name these topics for a child process: the non-default ones (of `only`)."""
        argv = []
        for key, flag, default in TOPIC_KEYS:
            if getattr(self, key) != default and (only is None or key in only):
                argv += [flag, getattr(self, key)]
        return argv


def topic_problem(name: object) -> str | None:
    """Why `name` cannot be a Kafka topic name, or None."""
    if not isinstance(name, str):
        return f"expected a topic name (text), not {type(name).__name__}"
    if name in (".", "..") or not _LEGAL.fullmatch(name):
        return f"not a legal Kafka topic name: {name!r} (letters, digits, '.', '_', '-'; at most 249)"
    return None


def topic_name(text: str) -> str:
    """An argparse type for a topic name."""
    if problem := topic_problem(text):
        raise argparse.ArgumentTypeError(problem)
    return text


def add_topic_options(parser: argparse.ArgumentParser, only: Iterable[str] | None = None,
                      aliases: Mapping[str, Iterable[str]] | None = None) -> None:
    """Add --transactions-topic, --alerts-topic, --dead-letters-topic and --metrics-topic (or `only`
    those keys), each with the extra spellings of `aliases` (e.g. the producer's --topic)."""
    group = parser.add_argument_group("topics", "topic names, for clusters with their own naming "
                                      "(default: [topics] of the settings, else the name shown)")
    wanted = set(only) if only is not None else None
    for key, flag, default in TOPIC_KEYS:
        if wanted is None or key in wanted:
            group.add_argument(flag, *(aliases or {}).get(key, ()), dest=f"{key}_topic", type=topic_name,
                               default=None, metavar="NAME", help=f"default: {default}")


def topics_table_problems(table: Mapping[str, Any]) -> list[tuple[str | None, str]]:
    """(key, problem) for each thing wrong in a [topics] table."""
    known = {key for key, _flag, _default in TOPIC_KEYS}
    problems: list[tuple[str | None, str]] = [
        (key, f"[{TOPICS_SECTION}] unknown key {key!r} (known: {', '.join(sorted(known))})")
        for key in table if key not in known]
    for key in known & set(table):
        if problem := topic_problem(table[key]):
            problems.append((key, f"[{TOPICS_SECTION}] {key}: {problem}"))
    return problems


def resolve_topics(settings: Mapping[str, Any], args: argparse.Namespace | None = None) -> TopicNames:
    """The topic names: the flags of `args`, else the settings' [topics] table, else the defaults.

    Raises SettingsError naming the key when the table holds something that is not a topic name.
    """
    table = section(settings, TOPICS_SECTION)
    if problems := topics_table_problems(table):
        raise SettingsError(problems[0][1])
    names = {key: table.get(key, default) for key, _flag, default in TOPIC_KEYS}
    for key in names:
        if args is not None and (flag := getattr(args, f"{key}_topic", None)) is not None:
            names[key] = flag
    return TopicNames(**names)
