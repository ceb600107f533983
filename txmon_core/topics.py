"""Topic names (the contract between the parts) and their idempotent creation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

TRANSACTIONS = "transactions"
ALERTS = "alerts"
DEAD_LETTERS = "transactions.dlq"
METRICS = "metrics"
ALL = (TRANSACTIONS, ALERTS, DEAD_LETTERS, METRICS)


def ensure_topics(
    client_config: Mapping[str, str],
    names: Iterable[str] = ALL,
    partitions: int = 1,
    timeout: float = 30.0,
) -> list[str]:
    """Create the topics that are missing; return the names created. Safe to call concurrently."""
    # librdkafka's informational lines (purged background events on close) are not the user's concern.
    admin = AdminClient({"log_level": 3, **client_config})
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [n for n in names if n not in existing]
    if not missing:
        return []
    # -1: the cluster's own default.replication.factor (1 on the embedded broker, 3 on `--nodes 3`).
    futures = admin.create_topics(
        [NewTopic(n, num_partitions=partitions, replication_factor=-1) for n in missing],
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
