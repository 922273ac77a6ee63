"""The JSONL alerts file: one alert per line, fsynced before acknowledging."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from streams.sinks import SinkError


class JsonlSink:
    name = "jsonl"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("ab")

    def deliver(self, alerts: list[dict]) -> None:
        if not alerts:
            return
        try:
            self._file.write(b"".join(orjson.dumps(a) + b"\n" for a in alerts))
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            raise SinkError(f"cannot write alerts to {self.path}: {exc}") from exc

    def poll(self) -> None:
        return None

    def pending(self) -> int:
        return 0

    def close(self) -> None:
        self._file.close()
