"""What identifies an alert for delivery (tx_id plus level) and its JSON payload as sinks send it."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import Any

import orjson

from txmon_core.records.alert import Alert


def alert_id(tx_id: str, level: str) -> str:
    """The delivery id of an alert: one transaction may raise several levels, each delivered once."""
    return f"{tx_id}:{level}"


def id_of(alert: Alert) -> str:
    """The delivery id of an Alert."""
    return alert_id(alert.tx_id, alert.level)


def payload(alert: Alert) -> bytes:
    """The alert's JSON as it travels on the `alerts` topic (every field of the wire format)."""
    return orjson.dumps(dataclasses.asdict(alert))


def decode(data: bytes) -> dict[str, Any]:
    """A payload back as a dict."""
    value: dict[str, Any] = orjson.loads(data)
    return value


def epoch(text: object) -> float | None:
    """An ISO 8601 timestamp as Unix seconds (naive means UTC), or None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=timezone.utc).timestamp()
    return parsed.timestamp()
