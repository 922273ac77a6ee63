"""Events keyed by database account are re-keyed by employee before scoring, and a
re-sent copy (a repartitioner that crashed before committing) is applied once."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaProducer

from detector.directory import Directory
from streams.broker import create_topics, free_port
from streams.changelog import ChangelogReader
from streams.config import KafkaConfig
from streams.repartition import ORIGIN_HEADER, employee_key
from tests.factories import DIRECTORY_CSV, normal_day
from tests.service_harness import ALERTS, DEAD, EVENTS, ServiceProcess, event_record, produce, read_topic, write_config

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
KEYED = "exfil-test-events-by-employee"
CHANGELOG = "exfil-test-state-changelog"


def test_employee_key_resolves_accounts_and_marks_unknown_ones():
    directory = Directory.parse(DIRECTORY_CSV)
    assert employee_key(b'{"db_user": "chen_jie_rpt"}', directory) == b"E004"
    assert employee_key(b'{"db_user": "nobody"}', directory) == b"account:nobody"
    assert employee_key(b"{not json", directory) is None


def test_one_person_with_two_accounts_is_scored_on_one_partition_and_duplicates_count_once(
        tmp_path, tansu, trained_model):
    bootstrap = tansu.bootstrap_servers
    create_topics(bootstrap, {EVENTS: 4, ALERTS: 1, DEAD: 1, KEYED: 4, CHANGELOG: 4})
    events = sorted(normal_day(22, "chen_jie", lookups=40) + normal_day(22, "chen_jie_rpt", lookups=40, start_id=9000)
                    + normal_day(22, "zhang_wei", lookups=30), key=lambda e: e.ts_ms)
    produce(bootstrap, [event_record(e) for e in events])            # keyed by account: E004 spans partitions
    config = write_config(tmp_path / "svc.toml", bootstrap, trained_model, tmp_path / "state", free_port())
    config.write_text(config.read_text().replace("[kafka]", "[kafka]\nrepartition = true")
                      .replace("[state]", "[state]\ncheckpoint_interval_s = 0.2"))
    service = ServiceProcess(config, tmp_path / "svc.log").start()
    service.wait_ready(60)
    forwarded = read_topic(bootstrap, KEYED, expected=len(events))
    copy = forwarded[0]                                              # as if re-sent after a crash
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(KEYED, key=copy.key, value=copy.value, headers=copy.headers, partition=copy.partition).get(10)
    producer.close()
    deadline = time.monotonic() + 30
    while service.metric("exfil_detector_repartition_duplicates_skipped_total") < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)                                                  # one more checkpoint interval
    assert service.terminate() == 0

    assert all(dict(r.headers)[ORIGIN_HEADER].startswith(f"{EVENTS}/".encode()) for r in forwarded)
    assert {r.key for r in forwarded} == {b"E004", b"E001"}
    reader = ChangelogReader(KafkaConfig(bootstrap_servers=bootstrap), CHANGELOG)
    try:
        restored = [reader.restore(p, 0) for p in range(4)]
    finally:
        reader.close()
    assert sum(r.progress.events for r in restored) == len(events)   # the copy was not applied
    holders = [r for r in restored if "E004" in r.states]
    assert len(holders) == 1
    assert holders[0].states["E004"].day_accounts == {"chen_jie", "chen_jie_rpt"}


def test_topic_layout_mirrors_the_events_partitions_and_compacts_the_changelog():
    from streams.config import Config
    from streams.topics import topic_layout

    config = Config()
    config.kafka.events_partitions, config.kafka.repartition = 12, True
    topics, settings = topic_layout(config)
    assert topics["exfil-detector-state-changelog"] == topics["exfil-detector-events-by-employee"] == 12
    assert settings["exfil-detector-state-changelog"]["cleanup.policy"] == "compact"
    assert settings["exfil-detector-events-by-employee"]["cleanup.policy"] == "delete"
    config.state.changelog, config.kafka.repartition = False, False
    assert set(topic_layout(config)[0]) == {"db-access", "exfil-alerts", "db-access-dead-letter"}
