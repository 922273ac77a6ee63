"""The state changelog against a real broker: only complete checkpoints are restored."""

from __future__ import annotations

import orjson
import pytest
from kafka import KafkaProducer

from detector.state import EmployeeState
from streams.broker import create_topics
from streams.changelog import ChangelogReader, ChangelogWriter, PartitionProgress, changelog_records
from streams.config import KafkaConfig
from tests.factories import lookup, at
from tests.test_pipeline import _pipeline

pytestmark = pytest.mark.kafka
TOPIC = "changelog-test"


def _state(key: str, lookups: int) -> EmployeeState:
    pipeline = _pipeline()
    pipeline.process([lookup(at(2, 10, m), 1000 + m, "zhang_wei") for m in range(lookups)])
    state = pipeline.states["E001"]
    state.key = key
    return state


@pytest.fixture
def changelog(tansu):
    create_topics(tansu.bootstrap_servers, {TOPIC: 2}, {TOPIC: {"cleanup.policy": "compact"}})
    producer = KafkaProducer(bootstrap_servers=tansu.bootstrap_servers, acks="all")
    reader = ChangelogReader(KafkaConfig(bootstrap_servers=tansu.bootstrap_servers), TOPIC)
    yield ChangelogWriter(producer, TOPIC), reader, producer
    reader.close()
    producer.close()


def test_restore_takes_the_newest_state_of_each_person_and_the_last_markers_progress(changelog):
    writer, reader, _ = changelog
    first = changelog_records(TOPIC, 1, [_state("E001", 3), _state("E002", 5)], [], PartitionProgress(10, 10),
                              {"4acf68ea53e5f909": "select name, phone from customers where id = ?"})
    second = changelog_records(TOPIC, 1, [_state("E001", 7)], [], PartitionProgress(25, 25))
    after = writer.write({1: first})
    writer.write({1: second})

    restored = reader.restore(1, 0)
    assert restored.progress.next_offset == 25 and restored.progress.events == 25
    assert restored.states["E001"].to_dict() == _state("E001", 7).to_dict()
    assert restored.states["E002"].to_dict() == _state("E002", 5).to_dict()
    assert restored.fingerprints == {"4acf68ea53e5f909": "select name, phone from customers where id = ?"}
    assert reader.restore(0, 0).states == {}                       # the other partition holds nothing

    caught_up = reader.restore(1, after[1], PartitionProgress(10, 10))   # from a local store at the first marker
    assert set(caught_up.states) == {"E001"} and caught_up.progress.next_offset == 25


def test_a_checkpoint_cut_short_by_a_crash_is_not_applied(changelog):
    writer, reader, producer = changelog
    writer.write({0: changelog_records(TOPIC, 0, [_state("E001", 3)], [], PartitionProgress(40, 40))})
    # a crash after producing a state but before the marker: that state reflects uncommitted events
    producer.send(TOPIC, key=b"s|E001", value=orjson.dumps(_state("E001", 9).to_dict()), partition=0)
    producer.flush()

    restored = reader.restore(0, 0)
    assert restored.progress.next_offset == 40
    assert restored.states["E001"].to_dict() == _state("E001", 3).to_dict()


def test_a_closed_incident_is_restored_as_closed(changelog):
    from detector.alerts import Incident

    writer, reader, _ = changelog
    incident = Incident("id-1", 1, 2, "high", ["bulk_sensitive_read"], {"alert_id": "id-1"})
    writer.write({0: changelog_records(TOPIC, 0, [], [("E001", incident)], PartitionProgress(5, 5))})
    assert reader.restore(0, 0).incidents["E001"].alert_id == "id-1"
    writer.write({0: changelog_records(TOPIC, 0, [], [("E001", None)], PartitionProgress(9, 9))})
    assert reader.restore(0, 0).incidents["E001"] is None
