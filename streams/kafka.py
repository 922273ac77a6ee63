"""Kafka in and out: the events consumer, the dead-letter and alerts producers.

Offsets are never auto-committed: the service commits a partition's offset only
after the effects of every event before it are durable (alerts acknowledged by
all sinks, dead letters flushed, state checkpointed). The consumer seeks to the
offsets saved with the state checkpoint on assignment, so state and position
can never disagree after a crash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import orjson
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from streams.config import KafkaConfig
from streams.sinks import SinkError

log = logging.getLogger(__name__)


def client_settings(config: KafkaConfig) -> dict:
    """Connection and security settings shared by every client (TLS, SASL)."""
    settings: dict = {"bootstrap_servers": config.bootstrap_servers.split(","), "client_id": config.client_id,
                      "security_protocol": config.security_protocol,
                      "reconnect_backoff_max_ms": config.reconnect_backoff_max_ms}
    if config.security_protocol in ("SSL", "SASL_SSL"):
        settings.update({k: v for k, v in (("ssl_cafile", config.ssl_cafile), ("ssl_certfile", config.ssl_certfile),
                                           ("ssl_keyfile", config.ssl_keyfile)) if v})
    if config.sasl_mechanism:
        settings.update(sasl_mechanism=config.sasl_mechanism, sasl_plain_username=config.sasl_username,
                        sasl_plain_password=config.sasl_password)
    return settings


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, on_revoked: Callable[[set[int]], None], on_assigned: Callable[[set[int]], None]) -> None:
        self._on_revoked, self._on_assigned = on_revoked, on_assigned

    def on_partitions_revoked(self, revoked) -> None:
        self._on_revoked({tp.partition for tp in revoked})

    def on_partitions_assigned(self, assigned) -> None:
        self._on_assigned({tp.partition for tp in assigned})


class EventConsumer:
    """The events topic, consumed in a group with manual commits."""

    def __init__(self, config: KafkaConfig, on_revoked: Callable[[set[int]], None],
                 on_assigned: Callable[[set[int]], None], topic: str | None = None) -> None:
        self.topic = topic or config.events_topic
        self.max_records = config.max_poll_records
        self.poll_timeout_ms = config.poll_timeout_ms
        self._consumer = KafkaConsumer(
            group_id=config.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            session_timeout_ms=config.session_timeout_ms, heartbeat_interval_ms=config.heartbeat_interval_ms,
            max_poll_records=config.max_poll_records, fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024, fetch_max_wait_ms=100, **client_settings(config))
        self._consumer.subscribe([self.topic], listener=_Rebalance(on_revoked, on_assigned))

    def poll(self) -> dict[int, list]:
        """Records by partition, in partition order."""
        batches = self._consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=self.max_records)
        return {tp.partition: records for tp, records in batches.items()}

    def hold(self) -> None:
        """Keep group membership while a batch is held: pause everything and poll (returns nothing)."""
        assigned = self._consumer.assignment()
        if assigned:
            self._consumer.pause(*assigned)
            self._consumer.poll(timeout_ms=0)

    def release(self) -> None:
        paused = self._consumer.paused()
        if paused:
            self._consumer.resume(*paused)

    def pause_partitions(self, partitions: list[int]) -> None:
        if partitions:
            self._consumer.pause(*(TopicPartition(self.topic, p) for p in partitions))

    def resume_partitions(self, partitions: list[int]) -> None:
        if partitions:
            self._consumer.resume(*(TopicPartition(self.topic, p) for p in partitions))

    def seek(self, partition: int, offset: int) -> None:
        self._consumer.seek(TopicPartition(self.topic, partition), offset)

    def commit(self, offsets: dict[int, int]) -> None:
        if offsets:
            self._consumer.commit({TopicPartition(self.topic, p): OffsetAndMetadata(o, "", -1)
                                   for p, o in offsets.items()})

    def lag(self, positions: dict[int, int]) -> dict[int, int]:
        """Approximate lag from the high-water marks seen in fetch responses (no extra request)."""
        lags = {}
        for partition, position in positions.items():
            high = self.highwater(partition)
            if high is not None:
                lags[partition] = max(0, high - position)
        return lags

    def highwater(self, partition: int) -> int | None:
        return self._consumer.highwater(TopicPartition(self.topic, partition))

    def assignment(self) -> set[int]:
        return {tp.partition for tp in self._consumer.assignment()}

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def make_producer(config: KafkaConfig) -> KafkaProducer:
    return KafkaProducer(acks="all", linger_ms=5, retries=5, max_in_flight_requests_per_connection=1,
                         request_timeout_ms=15_000, max_block_ms=15_000, **client_settings(config))


def produce_and_wait(producer: KafkaProducer, what: str, records: list[tuple]) -> None:
    """Send (topic, key, value, headers) records and block until the broker acknowledged all of them."""
    if not records:
        return
    try:
        futures = [producer.send(topic, key=key, value=value, headers=headers) for topic, key, value, headers in records]
        producer.flush()
        for future in futures:
            future.get(timeout=0)
    except Exception as exc:  # kafka-python raises KafkaError subclasses and timeouts
        raise SinkError(f"{what}: {exc}") from exc


class KafkaAlertSink:
    """The alerts topic, keyed by employee; acknowledged when the broker has the records."""

    name = "kafka"

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self._producer, self.topic = producer, topic

    def deliver(self, alerts: list[dict]) -> None:
        produce_and_wait(self._producer, f"alerts topic {self.topic}",
                         [(self.topic, a["employee_id"].encode(), orjson.dumps(a), None) for a in alerts])

    def poll(self) -> None:
        return None

    def pending(self) -> int:
        return 0

    def close(self) -> None:
        return None


class DeadLetterTopic:
    """Rejected events: the original bytes untouched, the reason in a header."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self._producer, self.topic = producer, topic

    def send_all(self, rejected: list[tuple]) -> None:
        """Produce (record, reason) pairs and wait for the broker; raise SinkError if any failed."""
        produce_and_wait(self._producer, f"dead-letter topic {self.topic}",
                         [(self.topic, record.key, record.value or b"", _dead_letter_headers(record, reason))
                          for record, reason in rejected])


def _dead_letter_headers(record, reason: str) -> list[tuple[str, bytes]]:
    source = f"{record.topic}/{record.partition}/{record.offset}"
    return list(record.headers or []) + [("exfil.reason", reason.encode()), ("exfil.source", source.encode())]
