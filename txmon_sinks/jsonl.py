"""The JSONL sink: each alert's JSON on its own line, appended to a file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import BinaryIO

import orjson

from txmon_sinks.config import JsonlConfig
from txmon_sinks.identity import alert_id
from txmon_sinks.outbox import OutboxItem
from txmon_sinks.sink import DeliveryFailed

_TAIL_BYTES = 4 << 20  # recover() looks this far back: far more than one batch of lines


class JsonlSink:
    """Appends to `config.path`; a failed write is cut back so the file never holds half a line."""

    name = "jsonl"
    digests = False

    def __init__(self, config: JsonlConfig) -> None:
        self.config = config
        self._file: BinaryIO | None = None

    def _open(self) -> BinaryIO:
        if self._file is None:
            self.config.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.config.path, "ab")  # kept open across sends
        return self._file

    def send(self, items: Sequence[OutboxItem]) -> None:
        """Append the alerts, flushed (and fsynced unless `fsync = false`) before returning."""
        try:
            file = self._open()
            start = file.tell()
            try:
                file.write(b"".join(item.payload + b"\n" for item in items))
                file.flush()
                if self.config.fsync:
                    os.fsync(file.fileno())
            except OSError:
                file.truncate(start)  # e.g. a full disk: no partial line, the batch is retried whole
                raise
        except OSError as exc:
            self.close()
            raise DeliveryFailed(f"cannot write {self.config.path}: {exc.strerror or exc}") from None

    def recover(self, items: Sequence[OutboxItem]) -> int:
        """How many of the first pending alerts are already the file's last lines (written, then a crash)."""
        try:
            with open(self.config.path, "rb") as file:
                size = file.seek(0, os.SEEK_END)
                file.seek(max(size - _TAIL_BYTES, 0))
                tail = file.read().splitlines()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise DeliveryFailed(f"cannot read {self.config.path}: {exc.strerror or exc}") from None
        written: set[str] = set()
        for line in tail[-len(items) - 1:] if items else []:
            try:
                data = orjson.loads(line)
                written.add(alert_id(data["tx_id"], data["level"]))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut by the start of the tail read, or not ours
        count = 0
        for item in items:
            if item.alert_id not in written:
                break
            count += 1
        return count

    def close(self) -> None:
        """Close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None
