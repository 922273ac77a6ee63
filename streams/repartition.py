"""Re-key events by employee, so that one person's events share one partition.

A producer that keys events by database account (or not at all) scatters one
person over several partitions, and their state could not live in one place.
The repartitioner reads the events topic in its own consumer group, resolves
each event's employee through the directory, and re-publishes the original
bytes to an internal topic keyed by employee, with a header naming where the
event came from (`exfil.origin`: topic/partition/offset). It commits only what
the broker acknowledged. After a crash it re-sends what it had not committed;
the detector drops those copies by origin offset (kept per source partition in
each partition's checkpoint), so each event still counts once.
"""

from __future__ import annotations

import logging
import threading
import time

import orjson
from kafka import KafkaConsumer
from kafka.structs import OffsetAndMetadata

from detector.directory import Directory
from detector.pipeline import UNRESOLVED_PREFIX
from streams.config import KafkaConfig
from streams.kafka import client_settings, make_producer, produce_and_wait
from streams.metrics import ServiceMetrics
from streams.sinks import SinkError

log = logging.getLogger("exfil_detector.repartition")
ORIGIN_HEADER = "exfil.origin"



def origin_of(record) -> tuple[str, int] | None:
    """("topic/partition", offset) from a re-keyed record's origin header, or None."""
    for name, value in record.headers or ():
        if name == ORIGIN_HEADER:
            source, _, offset = value.decode().rpartition("/")
            return source, int(offset)
    return None


def employee_key(value: bytes, directory: Directory) -> bytes | None:
    """The state key the detector will use for this event, or None when the event cannot tell."""
    try:
        event = orjson.loads(value)
        employee = directory.resolve(event.get("employee_id"), event["db_user"])
    except Exception:  # not JSON, not an object, no db_user: the detector rejects it with the reason
        return None
    if employee is not None:
        return employee.employee_id.encode()
    return (UNRESOLVED_PREFIX + (event.get("employee_id") or event["db_user"])).encode()


class Repartitioner:
    """The events topic, re-keyed by employee onto the internal topic; runs in its own thread."""

    def __init__(self, config: KafkaConfig, directory: Directory, metrics: ServiceMetrics) -> None:
        self.config, self.directory, self.metrics = config, directory, metrics
        self.target = config.employee_keyed_topic
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="repartitioner", daemon=True)
        self._consumer = KafkaConsumer(
            group_id=f"{config.group_id}-repartition", enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=config.session_timeout_ms, heartbeat_interval_ms=config.heartbeat_interval_ms,
            max_poll_records=config.max_poll_records, **client_settings(config))
        self._consumer.subscribe([config.events_topic])
        self._producer = make_producer(config)

    def start(self) -> Repartitioner:
        self._thread.start()
        log.info("re-keying %s by employee onto %s", self.config.events_topic, self.target)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._consumer.close(autocommit=False)
        self._producer.close(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batches = self._consumer.poll(timeout_ms=self.config.poll_timeout_ms)
            except Exception as exc:  # broker gone: poll again
                self.metrics.broker_errors.labels("repartition_poll").inc()
                log.warning("repartitioner poll failed, retrying: %s", exc)
                time.sleep(1.0)
                continue
            if batches:
                self._forward(batches)

    def _forward(self, batches: dict) -> None:
        records, offsets = [], {}
        for tp, batch in batches.items():
            for record in batch:
                key = employee_key(record.value or b"", self.directory) or record.key
                origin = f"{tp.topic}/{tp.partition}/{record.offset}".encode()
                records.append((self.target, key, record.value, list(record.headers or []) + [(ORIGIN_HEADER, origin)]))
            offsets[tp] = OffsetAndMetadata(batch[-1].offset + 1, "", -1)
        backoff = 0.5
        while not self._stop.is_set():
            try:
                produce_and_wait(self._producer, f"repartition topic {self.target}", records)
                break
            except SinkError as exc:
                self.metrics.sink_failures.labels("repartition").inc()
                log.error("re-keyed events not acknowledged, retrying: %s", exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        else:
            return                  # stopping: uncommitted, re-sent after restart, dropped as duplicates
        self.metrics.events_repartitioned.inc(len(records))
        try:
            self._consumer.commit(offsets)
        except Exception as exc:  # re-sent after a restart; the detector drops the copies
            self.metrics.broker_errors.labels("repartition_commit").inc()
            log.warning("repartitioner commit failed: %s", exc)

