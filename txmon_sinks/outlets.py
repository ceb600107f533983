"""Alert delivery and the metrics endpoint together, as the monitor and headless mode run them."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from spark_app.formats import Alert
from txmon_sinks.config import delivery_config
from txmon_sinks.delivery import Delivery, DeliveryBusy
from txmon_sinks.health import SinkHealth
from txmon_sinks.metrics import MetricsBoard, MetricsServer, PipelineTotals


class AlertBatch(Protocol):
    """What the monitor's tail yields per poll (txmon_tui.monitor.tail.TailBatch)."""

    alerts: list[Alert]  # read live: shown on the screen and delivered
    missed: list[Alert]  # raised while no monitor was reading: delivered only
    positions: dict[int, int]  # the alerts topic's next offset per partition, after this batch
    received_at: float


class OutletsError(RuntimeError):
    """Delivery or the metrics endpoint could not start; the message is one line."""


class Outlets:
    """Where alerts and numbers leave the monitor: start(), take(batch), publish(snapshot), close()."""

    def __init__(self, delivery: Delivery, metrics_port: int = 0, metrics_host: str = "127.0.0.1") -> None:
        self.delivery = delivery
        self.board = MetricsBoard(delivery)
        self.server = MetricsServer(self.board.sample, metrics_port, metrics_host) if metrics_port else None

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], data_dir: Path,
                      metrics_port: int | None = None) -> Outlets:
        """As txmon.toml says; `metrics_port` (a command-line flag) overrides [prometheus] port."""
        config = delivery_config(settings, data_dir)
        port = config.prometheus.port if metrics_port is None else metrics_port
        return cls(Delivery(config), port, config.prometheus.host)

    def start(self) -> None:
        """Start delivery, then the endpoint; OutletsError (one line) when either cannot start."""
        try:
            self.delivery.start()
        except DeliveryBusy as exc:
            raise OutletsError(str(exc)) from None
        except (sqlite3.Error, OSError) as exc:
            path = self.delivery.config.outbox_path
            raise OutletsError(f"cannot open the alert outbox {path}: {exc}") from None
        if self.server is not None:
            try:
                self.server.start()
            except OSError as exc:
                self.delivery.close()
                where = f"{self.server.host}:{self.server.port}"
                raise OutletsError(f"cannot serve metrics on {where}: {exc.strerror or exc}") from None

    def take(self, batches: AlertBatch | Sequence[AlertBatch]) -> None:
        """Hand the alerts of tail batches, and how far they were read, to delivery; returns at once unless
        delivery is far behind (then it waits: nothing is dropped)."""
        for batch in batches if isinstance(batches, Sequence) else [batches]:
            alerts = batch.missed + batch.alerts if batch.missed else batch.alerts
            if alerts or batch.positions:
                self.delivery.offer(alerts, batch.received_at or None, batch.positions)

    def resume_positions(self) -> dict[int, int] | None:
        """Where the tail should start reading the alerts topic for delivery (see Delivery.positions)."""
        return self.delivery.positions()

    def publish(self, totals: PipelineTotals) -> None:
        """Give the endpoint the monitor's current totals (a Snapshot)."""
        self.board.update(totals)

    def health(self) -> list[SinkHealth]:
        """Each sink's health now (database first); safe from any thread."""
        return self.delivery.health()

    @property
    def metrics_url(self) -> str | None:
        """Where Prometheus scrapes, when the endpoint is on."""
        return self.server.url if self.server is not None else None

    def summary(self) -> dict[str, Any]:
        """For headless mode's JSON summary."""
        return {"metrics_url": self.metrics_url,
                "sinks": [dataclasses.asdict(health) for health in self.health()]}

    def close(self) -> None:
        """Stop the endpoint, then delivery (what is undelivered stays in the outbox)."""
        if self.server is not None:
            self.server.close()
        self.delivery.close()
