"""Several real detector processes in one consumer group: state follows its partition.

Three instances share a 6-partition events topic; one is killed with SIGKILL in
mid-stream and a fourth joins later. Afterwards the changelog must hold, for every
person, exactly the state one uninterrupted pipeline computes from the same
partitions (nothing applied twice, nothing skipped), every partition's event count
must equal what was produced, and each injected incident must have exactly one
alert id, the same one an uninterrupted pipeline gives it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson
import pytest
import yaml

from detector.artifacts import save_bundle
from detector.calendar import WorkCalendar
from detector.catalog import Catalog
from detector.directory import Directory
from detector.model import ForestSettings
from detector.pipeline import ReferenceData
from detector.rules import RuleSettings
from detector.training import train
from streams.broker import create_topics, free_port
from streams.changelog import ChangelogReader
from streams.config import KafkaConfig
from tests.factories import CATALOG, at, event, normal_day
from tests.service_harness import (ALERTS, DEAD, EVENTS, ServiceProcess, committed_total, read_topic,
                                   uninterrupted_run, write_config)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PARTITIONS = 6
PEOPLE = [f"E{100 + i}" for i in range(36)]
CHANGELOG = "exfil-test-state-changelog"
TRAIN_DAYS = [d for d in range(1, 12) if d not in (5, 6)]
TEST_DAYS = [14, 15, 16, 17, 18, 21]
INSIDERS = {"E103": 15, "E117": 17, "E128": 21}          # who pulls customers in bulk, on which day
RUNS = int(os.environ.get("EXFIL_SCALE_OUT_RUNS", "1"))


def _account(employee: str) -> str:
    return "u" + employee[1:]


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """36 clerks in two departments, a model trained on their ordinary lookups."""
    root = tmp_path_factory.mktemp("company")
    lines = ["employee_id,department,role,db_accounts"]
    lines += [f"{e},cs-{i % 2},customer_service,{_account(e)}" for i, e in enumerate(PEOPLE)]
    (root / "directory.csv").write_text("\n".join(lines) + "\n")
    (root / "catalog.yaml").write_text(yaml.safe_dump(CATALOG))
    (root / "calendar.yaml").write_text("timezone: Asia/Shanghai\n")
    refs = _refs(root)
    events = sorted((e for d in TRAIN_DAYS for i, p in enumerate(PEOPLE)
                     for e in normal_day(d, _account(p), lookups=20 + i % 7)), key=lambda e: e.ts_ms)
    result = train(lambda: [events], refs, ForestSettings(n_estimators=20), RuleSettings())
    save_bundle(root / "model", result.anomaly, result.scoring.peers, result.states, result.summary,
                {"alert_budget_per_1000_days": 1.0})
    return {"model": root / "model", "directory": root / "directory.csv", "catalog": root / "catalog.yaml",
            "calendar": root / "calendar.yaml"}


def _refs(root: Path) -> ReferenceData:
    return ReferenceData(Directory.load(root / "directory.csv"), Catalog.load(root / "catalog.yaml"),
                         WorkCalendar("Asia/Shanghai", holidays=set(), workdays=set()))


def _day_records(day: int) -> list[tuple[bytes, bytes]]:
    """One working day: everybody's lookups, and the insider of the day pulling customers in bulk."""
    events = [e for i, p in enumerate(PEOPLE) for e in normal_day(day, _account(p), lookups=20 + i % 7)]
    events += [event(at(day, 14, m), _account(p), "SELECT name, phone, id_card_no FROM customers", rows=30_000 + m)
               for p, d in INSIDERS.items() if d == day for m in range(3)]
    events.sort(key=lambda e: e.ts_ms)
    return [(_employee_of(e.db_user).encode(), _event_bytes(e)) for e in events]


def _employee_of(account: str) -> str:
    return "E" + account[1:]


def _event_bytes(e) -> bytes:
    from detector.events import format_ts

    return orjson.dumps({"ts": format_ts(e.ts_ms), "db_user": e.db_user, "action": e.action, "database": e.database,
                         "client_addr": e.client_addr, "application": e.application, "statement": e.statement,
                         "rows": e.rows})


def _produce(bootstrap: str, records: list[tuple[bytes, bytes]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for key, value in records:
        producer.send(EVENTS, key=key, value=value)
    producer.flush()
    producer.close()


def _instance(tmp_path: Path, bootstrap: str, company: dict, name: str, checkpoint_s: float = 0.3) -> ServiceProcess:
    config = write_config(tmp_path / f"{name}.toml", bootstrap, company, tmp_path / f"state-{name}", free_port(),
                          jsonl=f'path = "{tmp_path / f"alerts-{name}.jsonl"}"')
    config.write_text(config.read_text().replace("[state]", f"[state]\ncheckpoint_interval_s = {checkpoint_s}"))
    return ServiceProcess(config, tmp_path / f"{name}.log")


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.parametrize("run", range(RUNS))
def test_kill_one_of_three_instances_and_add_one_later_loses_nothing_and_alerts_once(tmp_path, tansu, company, run):
    bootstrap = tansu.bootstrap_servers
    create_topics(bootstrap, {EVENTS: PARTITIONS, ALERTS: 1, DEAD: 1, CHANGELOG: PARTITIONS},
                  {CHANGELOG: {"cleanup.policy": "compact"}})
    days = {day: _day_records(day) for day in TEST_DAYS}
    # the victim checkpoints rarely, so that it dies holding processed, alerted but uncommitted work
    instances = [_instance(tmp_path, bootstrap, company, name, checkpoint_s=4.0 if name == "b" else 0.3).start()
                 for name in ("a", "b", "c")]
    for instance in instances:
        instance.wait_ready(60)
    _produce(bootstrap, days[14] + days[15])
    victim = instances[1]
    _wait(lambda: victim.metric("exfil_detector_offset_commits_total") > 0, 30, "the victim's first checkpoint")
    consumed = victim.metric("exfil_detector_events_consumed_total")
    _produce(bootstrap, days[16])
    _wait(lambda: victim.metric("exfil_detector_events_consumed_total") > consumed, 30, "the victim to go on")
    victim.kill()                                        # mid-stream, between two checkpoints
    _produce(bootstrap, days[17])
    late = _instance(tmp_path, bootstrap, company, "d").start()
    late.wait_ready(60)
    _produce(bootstrap, days[18] + days[21])
    produced = sum(len(r) for r in days.values())
    _wait(lambda: committed_total(bootstrap) >= produced, 90, "every event to be committed")
    for instance in (instances[0], instances[2], late):
        assert instance.terminate() == 0

    reference, alerts, counts = uninterrupted_run(bootstrap, _refs(company["directory"].parent), company["model"])
    expected_alerts = {(a["employee_id"], a["alert_id"]) for a in alerts}
    reader = ChangelogReader(KafkaConfig(bootstrap_servers=bootstrap), CHANGELOG)
    try:
        restored = {p: reader.restore(p, 0) for p in range(PARTITIONS)}
    finally:
        reader.close()
    for partition, state in restored.items():
        assert state.progress.events == counts.get(partition, 0), f"partition {partition}: events skipped or doubled"
        assert state.progress.next_offset == counts.get(partition, 0)
    saved = {key: s for r in restored.values() for key, s in r.states.items()}
    assert set(saved) == set(reference.states)
    for key, state in reference.states.items():
        assert saved[key].to_dict() == state.to_dict(), f"state of {key} differs from an uninterrupted run"

    alerts = [orjson.loads(r.value) for r in read_topic(bootstrap, ALERTS, expected=len(expected_alerts))]
    served = {(a["employee_id"], a["alert_id"]) for a in alerts}
    assert served == expected_alerts
    shown = [fp for a in alerts for fp in a["evidence"].get("fingerprints", [])]
    assert shown and all(fp["fingerprint"] for fp in shown), "evidence lost a fingerprint's text after a move"
    for insider, day in INSIDERS.items():
        ids = {a["alert_id"] for a in alerts if a["employee_id"] == insider and a["detected_at"].startswith(f"2026-09-{day}")}
        assert len(ids) == 1, f"{insider}: {len(ids)} alert ids for one incident"
