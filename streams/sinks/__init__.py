"""Alert sinks: where alerts go, each acknowledging only what is durable.

`deliver(alerts)` returns once the alerts are durable in the sink (written and
fsynced, acknowledged by the broker, or stored in the sink's durable outbox);
it raises `SinkError` otherwise. The service commits source offsets only after
every sink has returned. Sinks with an outbox deliver in the background from
`poll()`, retrying with backoff, so an unreachable receiver loses nothing.
"""

from __future__ import annotations

from typing import Protocol


class SinkError(RuntimeError):
    """A sink could not make alerts durable; the batch must be retried."""


class AlertSink(Protocol):
    name: str

    def deliver(self, alerts: list[dict]) -> None: ...

    def poll(self) -> None: ...

    def pending(self) -> int: ...

    def close(self) -> None: ...
