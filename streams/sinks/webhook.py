"""The webhook sink: each alert POSTed as JSON to one URL, through a durable outbox.

`deliver` acknowledges once the alerts are in the outbox; a background thread
POSTs them one per request (the contract's alert object, `Content-Type:
application/json`), with `Authorization: Bearer <token>` when
EXFIL_WEBHOOK_TOKEN is set and `Idempotency-Key: <alert_id>:<revision>`.
Delivery is at least once (a crash after the receiver's 2xx re-sends that
alert): a receiver drops re-deliveries by that key. Revisions of one alert may
arrive out of order after failures; `revision` tells which is newest.

Never logs an alert's body (employee ids, evidence): only its alert id.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from streams.config import ConfigError, WebhookSinkConfig
from streams.metrics import ServiceMetrics
from streams.sinks.outbox import OutboxSink, post

USER_AGENT = "exfil-detector"


def idempotency_key(alert: dict) -> str:
    """`<alert_id>:<revision>`: the same for every re-delivery of one version of one alert."""
    return f"{alert.get('alert_id', '')}:{alert.get('revision', 0)}"


class WebhookSink(OutboxSink):
    name = "webhook"

    def __init__(self, config: WebhookSinkConfig, outbox_path: Path, metrics: ServiceMetrics | None = None) -> None:
        if not config.url:
            raise ConfigError("config key sinks.webhook.url is empty: the webhook sink needs a URL")
        self.url = config.url
        self._timeout = config.timeout_s
        self._headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if config.token:
            self._headers["Authorization"] = f"Bearer {config.token}"
        super().__init__(outbox_path, encode=orjson.dumps, send=self._send, describe=_describe,
                         timeout_s=config.timeout_s, max_backoff_s=config.max_backoff_s, batch_size=1,
                         metrics=metrics)

    def _send(self, payloads: list[bytes]) -> None:
        for payload in payloads:
            key = idempotency_key(orjson.loads(payload))
            post(self.url, payload, {**self._headers, "Idempotency-Key": key}, self._timeout)


def _describe(payload: bytes) -> str:
    alert = orjson.loads(payload)
    return f"alert {alert.get('alert_id')} revision {alert.get('revision', 0)}"
