"""Per-partition state as changes on a compacted Kafka topic, so state follows its partition.

The changelog has as many partitions as the events topic it mirrors: changelog
partition p holds the state of the people whose events arrive on events
partition p. A checkpoint of partition p is a run of records

    s|<state key>  -> the employee's state (JSON)
    i|<state key>  -> their open incident (JSON), or a tombstone when it closed
    f|<id>         -> a statement fingerprint's literal-free text, for evidence
    __checkpoint__ -> {"next_offset": N, "events": E, "rejected": R, "sources": {...}}

produced and acknowledged before the source offsets are committed. The marker
comes last: records after the last marker belong to a checkpoint that never
completed (a crash between them) and are ignored on restore, so a restored
partition always reflects exactly the events before the marker's `next_offset`
— no event is applied twice, none is skipped. `sources` holds, for repartitioned
input, the newest original offset applied per original partition (see
streams/repartition.py). The topic is compacted: each key keeps its newest value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from detector.alerts import Incident
from detector.state import EmployeeState
from streams.config import KafkaConfig
from streams.kafka import client_settings
from streams.sinks import SinkError

MARKER_KEY = b"__checkpoint__"
STATE_PREFIX, INCIDENT_PREFIX, FINGERPRINT_PREFIX = b"s|", b"i|", b"f|"
TOPIC_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "3600000"}


@dataclass
class PartitionProgress:
    """What a partition's state reflects: the next source offset and how many events it took in."""

    next_offset: int | None = None
    events: int = 0
    rejected: int = 0
    sources: dict[str, int] = field(default_factory=dict)   # "topic/partition" -> newest applied offset
    watermark: int | None = None                             # the partition's latest event-time tick

    def to_dict(self) -> dict:
        return {"next_offset": self.next_offset, "events": self.events, "rejected": self.rejected,
                "sources": self.sources, "watermark": self.watermark}

    @classmethod
    def from_dict(cls, data: dict) -> PartitionProgress:
        return cls(data.get("next_offset"), int(data.get("events", 0)), int(data.get("rejected", 0)),
                   {str(k): int(v) for k, v in (data.get("sources") or {}).items()}, data.get("watermark"))


@dataclass
class RestoredPartition:
    """A partition's state as of its last complete checkpoint in the changelog."""

    states: dict[str, EmployeeState]
    incidents: dict[str, Incident | None]       # None: the incident closed (tombstone)
    fingerprints: dict[str, str]                # fingerprint id -> literal-free text
    progress: PartitionProgress
    changelog_next: int                         # changelog offset after the last marker applied
    records_read: int = 0
    seconds: float = 0.0


def changelog_records(topic: str, partition: int, states: list[EmployeeState],
                      incidents: list[tuple[str, Incident | None]], progress: PartitionProgress,
                      fingerprints: dict[str, str] | None = None) -> list[tuple]:
    """One checkpoint of one partition as (topic, partition, key, value) records, marker last."""
    records = [(topic, partition, FINGERPRINT_PREFIX + fp.encode(), text.encode())
               for fp, text in (fingerprints or {}).items()]
    records += [(topic, partition, STATE_PREFIX + s.key.encode(), orjson.dumps(s.to_dict())) for s in states]
    records += [(topic, partition, INCIDENT_PREFIX + key.encode(), None if inc is None else orjson.dumps(inc.to_dict()))
                for key, inc in incidents]
    records.append((topic, partition, MARKER_KEY, orjson.dumps(progress.to_dict())))
    return records


class ChangelogWriter:
    """Produces checkpoints and waits for the broker's acknowledgement of every record."""

    def __init__(self, producer: KafkaProducer, topic: str) -> None:
        self._producer, self.topic = producer, topic

    def write(self, checkpoints: dict[int, list[tuple]]) -> dict[int, int]:
        """Produce each partition's records; return, per partition, the changelog offset after its marker."""
        futures: dict[int, object] = {}
        try:
            for partition, records in checkpoints.items():
                for topic, part, key, value in records:
                    futures[partition] = self._producer.send(topic, key=key, value=value, partition=part)
            self._producer.flush()
            return {p: future.get(timeout=0).offset + 1 for p, future in futures.items()}
        except Exception as exc:  # kafka-python raises KafkaError subclasses and timeouts
            raise SinkError(f"state changelog {self.topic}: {exc}") from exc


class ChangelogReader:
    """Reads a changelog partition from a known offset to its end (no consumer group)."""

    def __init__(self, config: KafkaConfig, topic: str) -> None:
        self.topic = topic
        self._consumer = KafkaConsumer(enable_auto_commit=False, group_id=None, max_poll_records=50_000,
                                       fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=32 * 1024 * 1024,
                                       fetch_max_wait_ms=50, **client_settings(config))

    def partitions(self) -> set[int]:
        return set(self._consumer.partitions_for_topic(self.topic) or ())

    def end_offset(self, partition: int) -> int:
        tp = TopicPartition(self.topic, partition)
        return self._consumer.end_offsets([tp])[tp]

    def restore(self, partition: int, start: int, progress: PartitionProgress | None = None) -> RestoredPartition:
        """Apply complete checkpoints from `start` to the end; the incomplete tail is dropped."""
        began = time.monotonic()
        tp = TopicPartition(self.topic, partition)
        end = self._consumer.end_offsets([tp])[tp]
        restored = RestoredPartition({}, {}, {}, progress or PartitionProgress(), start)
        if end <= start:
            return restored
        self._consumer.assign([tp])
        self._consumer.seek(tp, start)
        complete: dict[bytes, bytes | None] = {}     # newest value per key, as of the last marker
        tail: dict[bytes, bytes | None] = {}
        while self._consumer.position(tp) < end:
            for record in self._consumer.poll(timeout_ms=500).get(tp, []):
                restored.records_read += 1
                if record.key == MARKER_KEY:
                    complete.update(tail)
                    tail = {}
                    restored.progress = PartitionProgress.from_dict(orjson.loads(record.value))
                    restored.changelog_next = record.offset + 1
                else:
                    tail[record.key] = record.value
        self._consumer.unsubscribe()
        _decode(restored, complete)
        restored.seconds = time.monotonic() - began
        return restored

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def _decode(restored: RestoredPartition, newest: dict[bytes, bytes | None]) -> None:
    """Decode only the newest value of each key: compaction by hand for a not-yet-compacted log."""
    for key, value in newest.items():
        name = key[2:].decode()
        if key.startswith(STATE_PREFIX):
            restored.states[name] = EmployeeState.from_dict(orjson.loads(value))
        elif key.startswith(INCIDENT_PREFIX):
            restored.incidents[name] = None if value is None else Incident.from_dict(orjson.loads(value))
        elif key.startswith(FINGERPRINT_PREFIX) and value is not None:
            restored.fingerprints[name] = value.decode()
