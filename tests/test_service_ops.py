"""Operating the service: a real Prometheus scrapes it, Alertmanager receives its alerts,
SIGTERM exits cleanly with offsets committed, a broker restart is survived, and a webhook
receiver that is down and comes back gets every alert once."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import orjson
import pytest

from streams.broker import create_topics, free_port
from tests.conftest import ACCOUNTS
from tests.factories import at, event, normal_day
from tests.service_harness import (ALERTS, DEAD, EVENTS, ServiceProcess, committed_total, event_record, produce,
                                   read_topic, write_config)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _bulk(day: int, account: str, hour: int = 15) -> list:
    return [event(at(day, hour, m), account, "SELECT name, id_card_no FROM customers WHERE city = 'Xuhui'",
                  rows=30_000 + m) for m in range(2)]


def _ordinary(days: range) -> list:
    return [e for d in days for i, a in enumerate(ACCOUNTS) for e in normal_day(d, a, lookups=30 + 5 * i)]


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_prometheus_scrapes_the_service_metrics(tmp_path, tansu, trained_model):
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("Prometheus is not installed (apt-get install -y prometheus)")
    create_topics(tansu.bootstrap_servers, {EVENTS: 1, ALERTS: 1, DEAD: 1})
    port = free_port()
    service = ServiceProcess(write_config(tmp_path / "svc.toml", tansu.bootstrap_servers, trained_model,
                                          tmp_path / "state", port), tmp_path / "svc.log").start()
    service.wait_ready()
    produce(tansu.bootstrap_servers, [event_record(e) for e in normal_day(22, "zhang_wei", lookups=30)])
    prom_port = free_port()
    (tmp_path / "prometheus.yml").write_text(
        f"global: {{scrape_interval: 1s}}\nscrape_configs:\n- job_name: exfil\n  static_configs:\n"
        f"  - targets: ['127.0.0.1:{port}']\n")
    proc = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def consumed() -> float:
            url = f"http://127.0.0.1:{prom_port}/api/v1/query?query=exfil_detector_events_consumed_total"
            try:
                result = json.load(urllib.request.urlopen(url, timeout=2))["data"]["result"]
            except OSError:
                return 0.0
            return float(result[0]["value"][1]) if result else 0.0

        _wait(lambda: consumed() == 30, 40, "Prometheus to report 30 consumed events")
    finally:
        proc.terminate()
        proc.wait(10)
        assert service.terminate() == 0


def test_sigterm_finishes_the_batch_commits_and_exits_promptly(tmp_path, tansu, trained_model):
    create_topics(tansu.bootstrap_servers, {EVENTS: 3, ALERTS: 1, DEAD: 1})
    records = [event_record(e) for e in _ordinary(range(21, 25))]
    produce(tansu.bootstrap_servers, records)
    service = ServiceProcess(write_config(tmp_path / "svc.toml", tansu.bootstrap_servers, trained_model,
                                          tmp_path / "state", free_port()), tmp_path / "svc.log").start()
    service.wait_ready()
    _wait(lambda: service.metric("exfil_detector_events_consumed_total") > 0, 20, "consumption to start")
    started = time.monotonic()
    assert service.terminate() == 0
    assert time.monotonic() - started < 15
    consumed = committed_total(tansu.bootstrap_servers)
    assert 0 < consumed <= len(records)
    again = ServiceProcess(service.config, tmp_path / "svc2.log").start()
    again.wait_ready()
    _wait(lambda: committed_total(tansu.bootstrap_servers) == len(records), 30, "the rest to be committed")
    assert again.metric("exfil_detector_events_consumed_total") == len(records) - consumed
    assert again.terminate() == 0


def test_service_survives_a_broker_restart(tmp_path, tansu_s3, trained_model):
    broker = tansu_s3
    create_topics(broker.bootstrap_servers, {EVENTS: 1, ALERTS: 1, DEAD: 1})
    first = [event_record(e) for e in normal_day(22, "zhang_wei", lookups=30) + _bulk(22, "li_na")]
    produce(broker.bootstrap_servers, first)
    service = ServiceProcess(write_config(tmp_path / "svc.toml", broker.bootstrap_servers, trained_model,
                                          tmp_path / "state", free_port()), tmp_path / "svc.log").start()
    service.wait_ready()
    _wait(lambda: committed_total(broker.bootstrap_servers) == len(first), 30, "the first events")
    broker.restart(kill=True)
    second = [event_record(e) for e in normal_day(23, "zhang_wei", lookups=30) + _bulk(23, "wang_fang")]
    produce(broker.bootstrap_servers, second)
    _wait(lambda: committed_total(broker.bootstrap_servers) == len(first) + len(second), 60,
          "events produced after the broker restart")
    assert service.proc.poll() is None
    alerts = [orjson.loads(r.value) for r in read_topic(broker.bootstrap_servers, ALERTS, expected=2)]
    assert {a["employee_id"] for a in alerts if a["detector"] == "bulk_sensitive_read"} == {"E002", "E003"}
    assert service.terminate() == 0


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append({"key": self.headers.get("Idempotency-Key"), "alert": json.loads(body)})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args) -> None:
        return None


def test_webhook_receiver_down_then_up_gets_every_alert_once(tmp_path, tansu, trained_model):
    create_topics(tansu.bootstrap_servers, {EVENTS: 1, ALERTS: 1, DEAD: 1})
    port = free_port()
    config = write_config(tmp_path / "svc.toml", tansu.bootstrap_servers, trained_model, tmp_path / "state",
                          free_port(), webhook=f'url = "http://127.0.0.1:{port}/hook"\nmax_backoff_s = 1.0')
    produce(tansu.bootstrap_servers, [event_record(e) for e in _bulk(22, "li_na") + _bulk(22, "zhang_wei", 16)])
    service = ServiceProcess(config, tmp_path / "svc.log").start()
    service.wait_ready()
    _wait(lambda: committed_total(tansu.bootstrap_servers) == 4, 30, "events committed while the receiver is down")
    assert service.metric("exfil_detector_sink_outbox_depth") >= 2
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", port), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _wait(lambda: service.metric("exfil_detector_sink_outbox_depth") == 0, 30, "the outbox to drain")
    finally:
        server.shutdown()
    keys = [r["key"] for r in _Receiver.received]
    assert len(keys) == len(set(keys))
    assert {r["alert"]["employee_id"] for r in _Receiver.received} == {"E001", "E002"}
    assert service.terminate() == 0


def test_a_service_left_running_by_a_failed_test_is_stopped_with_its_fetch_process(tmp_path, tansu, trained_model):
    """What the autouse fixture in conftest does after every test."""
    create_topics(tansu.bootstrap_servers, {EVENTS: 1, ALERTS: 1, DEAD: 1})
    service = ServiceProcess(write_config(tmp_path / "svc.toml", tansu.bootstrap_servers, trained_model,
                                          tmp_path / "state", free_port()), tmp_path / "svc.log").start()
    service.wait_ready()
    children = service.fetch_processes()
    assert children
    assert ServiceProcess.stop_leftovers() == [service.proc.pid]
    assert service.proc.returncode is not None
    _wait(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children), 10, "the fetch process to go")
    assert ServiceProcess.stop_leftovers() == []
