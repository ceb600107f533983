"""Alert delivery: sinks (JSONL, webhook, email), storage in a database, and the Prometheus endpoint.

UI-free (no Textual, no pyspark). The monitor and headless mode use it through Outlets:

    outlets = Outlets.from_settings(settings, data_dir, metrics_port); outlets.start()
    outlets.take(batch)          # each tail batch: its alerts go to delivery; never blocks
    outlets.publish(snapshot)    # each repaint: the totals the Prometheus endpoint exports
    outlets.health()             # -> list[SinkHealth], from any thread
    outlets.close()

Names load on first use, so that `txmon_sinks.options` (imported by every `txmon-tui` start) does not
pull in SQLAlchemy and prometheus_client.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DOWN": "health", "OK": "health", "RETRYING": "health", "SinkHealth": "health",
    "AlertStore": "store", "StoredAlert": "store", "StoreError": "store",
    "Delivery": "delivery",
    "DeliveryConfig": "config", "PrometheusConfig": "config", "delivery_config": "config",
    "prometheus_config": "config",
    "MetricsBoard": "metrics", "MetricsSample": "metrics", "MetricsServer": "metrics",
    "Outlets": "outlets", "OutletsError": "outlets",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'txmon_sinks' has no attribute {name!r}")
    return getattr(importlib.import_module(f"txmon_sinks.{module}"), name)
