"""The Alertmanager sink: alerts as Prometheus Alertmanager alerts, through a durable outbox.

Posts to Alertmanager's API v2, `POST {url}/api/v2/alerts`, a JSON list of
`postableAlert` objects (api/v2/openapi.yaml: `labels` required, a map of
strings; `annotations` a map of strings; `startsAt`, `endsAt` RFC 3339
date-times; `generatorURL` optional). Each alert becomes:

* labels: `alertname="InsiderDataExfiltration"`, `severity`, `detector`,
  `employee_id`, `alert_id`; Alertmanager identifies an alert by its labels,
  so re-posting one (a re-delivery) only refreshes it;
* annotations: `summary` (one line), `description` (the reasons' sentences),
  `evidence_objects` (the relations read, comma-separated), `score`;
* `startsAt` = `detected_at`, `endsAt` = `detected_at` + `resolve_after_s`, so
  alerts resolve by themselves (a replay of old events posts them resolved).

The payload kept in the outbox is the postable alert, so what is sent after a
restart is what was acknowledged. Never logs an alert's content: its id only.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from streams.config import AlertmanagerSinkConfig, ConfigError
from streams.metrics import ServiceMetrics
from streams.sinks.outbox import OutboxSink, post

ALERTNAME = "InsiderDataExfiltration"
API_PATH = "/api/v2/alerts"
BATCH_SIZE = 64


def postable_alert(alert: dict, resolve_after_s: float, now: float | None = None) -> dict:
    """The contract's alert as an Alertmanager v2 `postableAlert`.

    The alert starts at the incident's `first_detected_at` (a revision's own
    `detected_at` is its latest trigger) and ends `resolve_after_s` after the
    latest trigger. A missing or unreadable `detected_at` is taken as `now` (the
    time of conversion), never an error: a sink must not reject what the core produced.
    """
    employee = str(alert.get("employee_id", ""))
    detector = str(alert.get("detector", ""))
    severity = str(alert.get("severity", ""))
    latest = _parse_ts(alert.get("detected_at"))
    if latest is None:
        latest = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    started = _parse_ts(alert.get("first_detected_at")) or latest      # a revision keeps its incident's start
    ends = latest + timedelta(seconds=resolve_after_s)
    reasons = [str(r.get("detail", "")).strip() for r in alert.get("reasons") or [] if isinstance(r, dict)]
    objects = (alert.get("evidence") or {}).get("objects") or []
    relations = [str(o.get("relation", "")) if isinstance(o, dict) else str(o) for o in objects]
    return {
        "labels": {
            "alertname": ALERTNAME,
            "severity": severity,
            "detector": detector,
            "employee_id": employee,
            "alert_id": str(alert.get("alert_id", "")),
        },
        "annotations": {
            "summary": f"{employee}: {detector} ({severity})",
            "description": " ".join(r for r in reasons if r),
            "evidence_objects": ", ".join(r for r in relations if r),
            "score": str(alert.get("score", "")),
        },
        "startsAt": _format_ts(started),
        "endsAt": _format_ts(ends),
    }


class AlertmanagerSink(OutboxSink):
    name = "alertmanager"

    def __init__(self, config: AlertmanagerSinkConfig, outbox_path: Path,
                 metrics: ServiceMetrics | None = None) -> None:
        if not config.url:
            raise ConfigError("config key sinks.alertmanager.url is empty: the Alertmanager sink needs a URL")
        if config.resolve_after_s <= 0:
            raise ConfigError(f"config key sinks.alertmanager.resolve_after_s: must be > 0, "
                              f"got {config.resolve_after_s}")
        self.url = config.url.rstrip("/") + API_PATH
        self._timeout = config.timeout_s
        self._resolve_after_s = config.resolve_after_s
        super().__init__(outbox_path, encode=self._encode_alert, send=self._send, describe=_describe,
                         timeout_s=config.timeout_s, max_backoff_s=config.max_backoff_s, batch_size=BATCH_SIZE,
                         metrics=metrics)

    def _encode_alert(self, alert: dict) -> bytes:
        return orjson.dumps(postable_alert(alert, self._resolve_after_s))

    def _send(self, payloads: list[bytes]) -> None:
        body = b"[" + b",".join(payloads) + b"]"
        post(self.url, body, {"Content-Type": "application/json", "User-Agent": "exfil-detector"}, self._timeout)


def _describe(payload: bytes) -> str:
    return f"alert {orjson.loads(payload)['labels'].get('alert_id')}"


def _parse_ts(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _format_ts(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
