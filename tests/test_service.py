"""The service against a real broker (Tansu): alerts once per incident, dead letters with
reasons, clean SIGTERM with offsets committed, and kill -9 then restart without loss."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import orjson
import pytest

from streams.broker import create_topics, free_port
from tests.conftest import ACCOUNTS
from tests.factories import at, event, normal_day
from tests.service_harness import (ALERTS, DEAD, EVENTS, ServiceProcess, committed_total, event_record, produce,
                                   read_topic, uninterrupted_run, write_config)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _bulk_pull(day: int, account: str = "li_na") -> list:
    return [event(at(day, 15, m), account, "SELECT name, phone, id_card_no FROM customers WHERE district = 'Pudong-7731'",
                  rows=40_000 + m) for m in range(3)]


def _service(tmp_path: Path, tansu, trained_model, name: str = "svc", fetch_process: bool = True) -> ServiceProcess:
    config = write_config(tmp_path / f"{name}.toml", tansu.bootstrap_servers, trained_model, tmp_path / "state",
                          free_port(), fetch_process, jsonl=f'path = "{tmp_path / "alerts.jsonl"}"')
    return ServiceProcess(config, tmp_path / f"{name}.log")


@pytest.mark.parametrize("fetch_process", [True, False], ids=["fetch-process", "fetch-in-process"])
def test_events_in_alerts_out_once_per_incident_and_bad_events_to_dead_letters(tmp_path, tansu, trained_model,
                                                                               fetch_process):
    create_topics(tansu.bootstrap_servers, {EVENTS: 3, ALERTS: 1, DEAD: 1})
    good = [event_record(e) for e in normal_day(22, "zhang_wei", lookups=30) + _bulk_pull(22)]
    bad = [(b"x", b"{not json"), (b"y", b'{"ts":"2026-09-22T10:00:00+08:00","db_user":"li_na","action":"STEAL"}'),
           (b"z", b'\xff\xfe')]
    produce(tansu.bootstrap_servers, good[:20] + bad + good[20:])
    service = _service(tmp_path, tansu, trained_model, fetch_process=fetch_process).start()
    service.wait_ready()

    alerts = read_topic(tansu.bootstrap_servers, ALERTS, expected=1)
    dead = read_topic(tansu.bootstrap_servers, DEAD, expected=3)
    deadline = time.monotonic() + 20
    while committed_total(tansu.bootstrap_servers) < len(good) + len(bad) and time.monotonic() < deadline:
        time.sleep(0.3)
    consumed = service.metric("exfil_detector_events_consumed_total")
    assert service.terminate() == 0

    bodies = [orjson.loads(r.value) for r in alerts]
    assert len({a["alert_id"] for a in bodies}) == 1             # revisions share the incident's id
    assert [a["revision"] for a in bodies] == list(range(len(bodies)))
    alert = bodies[0]
    assert alert["employee_id"] == "E002" and alert["detector"] == "bulk_sensitive_read"
    assert {r.key for r in alerts} == {b"E002"}
    assert not any(b"Pudong" in r.value or b"7731" in r.value for r in alerts)
    reasons = {dict(r.headers)["exfil.reason"].decode() for r in dead}
    assert any("not valid JSON" in r for r in reasons) and any("unknown value 'STEAL'" in r for r in reasons)
    assert any("not valid UTF-8" in r for r in reasons)
    assert {r.value for r in dead} == {v for _, v in bad}          # original bytes untouched
    assert consumed == len(good) + len(bad)
    assert committed_total(tansu.bootstrap_servers) == len(good) + len(bad)
    assert len((tmp_path / "alerts.jsonl").read_text().splitlines()) == len(alerts)


def _service_mid_stream(tmp_path: Path, tansu, trained_model) -> tuple[ServiceProcess, list]:
    """A service that has consumed at least 200 of the first half of eight days of events; the
    records of all of them, the second half not yet produced."""
    create_topics(tansu.bootstrap_servers, {EVENTS: 3, ALERTS: 1, DEAD: 1})
    days = [e for d in range(21, 29) for i, a in enumerate(ACCOUNTS) for e in normal_day(d, a, lookups=30 + 5 * i)]
    stream = sorted(days + _bulk_pull(22) + _bulk_pull(24, "zhang_wei"), key=lambda e: e.ts_ms)
    records = [event_record(e) for e in stream]
    produce(tansu.bootstrap_servers, records[: len(records) // 2])
    service = _service(tmp_path, tansu, trained_model).start()
    service.wait_ready()
    deadline = time.monotonic() + 20
    while service.metric("exfil_detector_events_consumed_total") < 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    return service, records


def test_kill_9_mid_stream_then_restart_skips_nothing_and_keeps_alert_ids(tmp_path, tansu, trained_model):
    service, records = _service_mid_stream(tmp_path, tansu, trained_model)
    produce(tansu.bootstrap_servers, records[len(records) // 2:])
    service.kill()

    restarted = _service(tmp_path, tansu, trained_model, "svc2").start()
    restarted.wait_ready()
    deadline = time.monotonic() + 30
    while committed_total(tansu.bootstrap_servers) < len(records) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert restarted.terminate() == 0

    assert committed_total(tansu.bootstrap_servers) == len(records)
    alerts = [orjson.loads(r.value) for r in read_topic(tansu.bootstrap_servers, ALERTS, expected=2)]
    served = {(a["employee_id"], a["alert_id"]) for a in alerts}
    assert served == _reference_alert_ids(tansu.bootstrap_servers, trained_model)
    assert {"E001", "E002"} <= {employee for employee, _ in served}


def _reference_alert_ids(bootstrap: str, trained_model: dict) -> set[tuple[str, str]]:
    """What one uninterrupted pipeline raises on the same partitions, in the same order."""
    from tests.factories import reference_data

    pipeline, alerts, _ = uninterrupted_run(bootstrap, reference_data(), trained_model["model"])
    alerts += pipeline.finish()
    return {(a["employee_id"], a["alert_id"]) for a in alerts}


def test_a_fetch_process_killed_mid_stream_is_replaced_and_nothing_is_lost(tmp_path, tansu, trained_model):
    """SIGKILL the child that fetches from Kafka: the service starts another, which rejoins the group;
    every event is committed, and the alerts are those of an uninterrupted run."""
    service, records = _service_mid_stream(tmp_path, tansu, trained_model)
    [fetcher] = service.fetch_processes()
    os.kill(fetcher, signal.SIGKILL)
    produce(tansu.bootstrap_servers, records[len(records) // 2:])
    deadline = time.monotonic() + 40
    while committed_total(tansu.bootstrap_servers) < len(records) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert len(service.fetch_processes()) == 1 and service.fetch_processes() != [fetcher]
    assert service.terminate() == 0
    assert committed_total(tansu.bootstrap_servers) == len(records)
    alerts = [orjson.loads(r.value) for r in read_topic(tansu.bootstrap_servers, ALERTS, expected=2)]
    assert {(a["employee_id"], a["alert_id"]) for a in alerts} == _reference_alert_ids(tansu.bootstrap_servers, trained_model)
    assert "the Kafka fetch process" in (tmp_path / "svc.log").read_text()
