"""Topic names (the contract between the parts) and their idempotent creation."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

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
