"""The HTTP sinks (webhook, Alertmanager) lose nothing and duplicate nothing a receiver cannot drop.

Everything here talks to real parts: a real HTTP server on a loopback port that
can fail or be down, and a real Prometheus Alertmanager process (the Debian
package `prometheus-alertmanager`; its tests skip when the binary is missing).
"""

from __future__ import annotations

import http.server
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType

import orjson
import pytest

from streams.broker import _child_setup, free_port
from streams.config import AlertmanagerSinkConfig, WebhookSinkConfig
from streams.metrics import ServiceMetrics
from streams.sinks.alertmanager import ALERTNAME, AlertmanagerSink, postable_alert
from streams.sinks.outbox import Outbox, backoff_delay
from streams.sinks.webhook import WebhookSink

DEADLINE_S = 15.0
ROOT = Path(__file__).resolve().parents[1]
FAST = {"timeout_s": 5.0, "max_backoff_s": 0.2}   # retries within a fraction of a second


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(0.02)


def make_alert(n: int, revision: int = 0, employee_id: str = "E1234", detected_at: datetime | None = None) -> dict:
    when = detected_at or datetime(2026, 9, 2, 13, 30, 13, 796000, tzinfo=timezone.utc)
    return {
        "alert_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"alert-{n}")),
        "employee_id": employee_id,
        "db_accounts": ["zhang_wei"],
        "detected_at": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "window_start": "2026-09-02T13:00:00.000Z",
        "window_end": "2026-09-02T13:30:13.796Z",
        "score": 0.8123,
        "severity": "high" if revision else "medium",
        "detector": "bulk_sensitive_read",
        "detectors": ["bulk_sensitive_read"],
        "reasons": [{"feature": "sensitive_rows_today", "value": 52000, "baseline": 40,
                     "detail": "Read 52000 rows of personal data today, usually 40."},
                    {"feature": "off_hours", "value": 1, "baseline": 0, "detail": "Outside working hours."}],
        "evidence": {"statements_today": 3, "sensitive_rows_today": 52000,
                     "objects": [{"relation": "crm.public.customers", "rows": 50000},
                                 {"relation": "crm.public.orders", "rows": 2000}],
                     "categories": ["phone"], "fingerprints": []},
        "model_version": "test",
        "revision": revision,
    }


# -- a real HTTP receiver -------------------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """An HTTP server on a loopback port that records POSTs; it can answer 500, hang, or be down.

    `down()` closes the listening socket (connections are refused); `up()`
    listens again on the same port.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/alerts"
        self.requests: list[Received] = []
        self.status = 200
        self.delay_s = 0.0
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def up(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                status = receiver.status
                if status < 300:
                    with receiver._lock:
                        receiver.requests.append(Received(self.path, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self) -> list[Received]:
        with self._lock:
            return list(self.requests)

    def keys(self) -> list[str]:
        return [r.headers.get("Idempotency-Key", "") for r in self.accepted()]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.up()
    yield r
    r.down()


def webhook(receiver: Receiver, outbox: Path, metrics: ServiceMetrics | None = None) -> WebhookSink:
    return WebhookSink(WebhookSinkConfig(url=receiver.url, **FAST), outbox, metrics)


def sample(metrics: ServiceMetrics, name: str, sink: str) -> float:
    return metrics.registry.get_sample_value(f"exfil_detector_{name}", {"sink": sink}) or 0.0


# -- the outbox -------------------------------------------------------------------


def test_outbox_keeps_appended_payloads_across_reopen_until_done(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    outbox = Outbox(path)
    outbox.append([b"a", b"b", b"c"])
    outbox.close()

    reopened = Outbox(path)
    rows = reopened.due(time.time(), 10)
    assert [(payload, attempts) for _, payload, attempts in rows] == [(b"a", 0), (b"b", 0), (b"c", 0)]
    reopened.done([rows[0][0]])
    assert len(reopened) == 2
    assert reopened._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert reopened._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    reopened.close()


def test_outbox_append_survives_the_process_being_killed_right_after_it_returns(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    script = ("import os, signal, sys\n"
              "from pathlib import Path\n"
              "from streams.sinks.outbox import Outbox\n"
              "Outbox(Path(sys.argv[1])).append([b'first', b'second'])\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, timeout=30)
    assert done.returncode == -signal.SIGKILL
    outbox = Outbox(path)
    assert [payload for _, payload, _ in outbox.due(time.time(), 10)] == [b"first", b"second"]
    outbox.close()


def test_outbox_retry_waits_with_capped_exponential_backoff(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite", initial_backoff_s=1.0, max_backoff_s=8.0)
    outbox.append([b"x"])
    (id, _, _), = outbox.due(1000.0, 10)
    delays = [outbox.retry_later(id, 1000.0) for _ in range(6)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(8.0, 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert outbox.due(1000.0 + delays[-1] - 0.01, 10) == []
    assert outbox.due(1000.0 + delays[-1], 10) == [(id, b"x", 6)]
    assert backoff_delay(100, 1.0, 60.0) <= 60.0
    outbox.close()


# -- the webhook sink ---------------------------------------------------------------


def test_webhook_receiver_down_then_failing_then_up_gets_every_alert_once_after_dedup(
        receiver: Receiver, tmp_path: Path) -> None:
    metrics = ServiceMetrics()
    receiver.down()
    sink = webhook(receiver, tmp_path / "webhook.sqlite", metrics)
    alerts = [make_alert(n) for n in range(20)] + [make_alert(n, revision=1) for n in range(0, 20, 5)]
    try:
        sink.deliver(alerts[:12])
        sink.deliver(alerts[12:])
        assert sink.pending() == len(alerts)
        wait_until(lambda: sample(metrics, "sink_failures_total", "webhook") >= 2, "failed attempts while down")

        receiver.status = 500
        failed_while_down = sample(metrics, "sink_failures_total", "webhook")
        receiver.up()
        wait_until(lambda: sample(metrics, "sink_failures_total", "webhook") >= failed_while_down + 2,
                   "failed attempts answered 500")
        assert receiver.accepted() == []
        receiver.status = 200

        wait_until(lambda: sink.pending() == 0, "the outbox to drain")
    finally:
        sink.close()

    expected = {f"{a['alert_id']}:{a['revision']}" for a in alerts}
    keys = receiver.keys()
    assert set(keys) == expected                          # nothing lost
    assert len(keys) == len(expected)                     # and, here, nothing sent twice
    by_key = {r.headers["Idempotency-Key"]: r for r in receiver.accepted()}
    for alert in alerts:
        request = by_key[f"{alert['alert_id']}:{alert['revision']}"]
        assert orjson.loads(request.body) == alert
        assert request.path == "/hooks/alerts"
        assert request.headers["Content-Type"] == "application/json"
        assert "Authorization" not in request.headers
    assert sample(metrics, "sink_deliveries_total", "webhook") == len(alerts)
    assert sample(metrics, "sink_outbox_depth", "webhook") == 0


def test_webhook_restart_delivers_alerts_left_pending(receiver: Receiver, tmp_path: Path) -> None:
    outbox = tmp_path / "webhook.sqlite"
    receiver.down()
    first = webhook(receiver, outbox)
    alerts = [make_alert(n) for n in range(5)]
    first.deliver(alerts)
    first.close()                                         # stopped with everything pending
    left = Outbox(outbox)
    assert len(left) == 5
    left.close()

    receiver.up()
    second = webhook(receiver, outbox)
    try:
        wait_until(lambda: second.pending() == 0, "the restarted sink to drain its outbox")
    finally:
        second.close()
    assert sorted(receiver.keys()) == sorted(f"{a['alert_id']}:0" for a in alerts)


def test_webhook_sends_bearer_token_from_environment(receiver: Receiver, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXFIL_WEBHOOK_TOKEN", "s3cret-token")
    sink = webhook(receiver, tmp_path / "webhook.sqlite")
    try:
        sink.deliver([make_alert(1)])
        wait_until(lambda: len(receiver.accepted()) == 1, "the alert to arrive")
    finally:
        sink.close()
    assert receiver.accepted()[0].headers["Authorization"] == "Bearer s3cret-token"


def test_webhook_failure_logs_name_the_alert_id_never_its_content(receiver: Receiver, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    receiver.status = 503
    metrics = ServiceMetrics()
    alert = make_alert(7, employee_id="E9876543")
    with caplog.at_level(logging.WARNING, logger="streams.sinks.outbox"):
        sink = webhook(receiver, tmp_path / "webhook.sqlite", metrics)
        try:
            sink.deliver([alert])
            wait_until(lambda: sample(metrics, "sink_failures_total", "webhook") >= 1, "a failed attempt")
        finally:
            sink.close()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert alert["alert_id"] in text and "503" in text
    assert "E9876543" not in text and "52000" not in text


def test_webhook_close_returns_within_the_timeout_when_the_receiver_hangs(receiver: Receiver,
                                                                          tmp_path: Path) -> None:
    receiver.delay_s = 3.0
    sink = WebhookSink(WebhookSinkConfig(url=receiver.url, timeout_s=0.3, max_backoff_s=0.2),
                       tmp_path / "webhook.sqlite")
    sink.deliver([make_alert(1)])
    time.sleep(0.1)                                       # let the request start
    started = time.monotonic()
    sink.close()
    assert time.monotonic() - started < 1.5


# -- a real Prometheus Alertmanager ------------------------------------------------------

ALERTMANAGER_BIN = os.environ.get("EXFIL_TEST_ALERTMANAGER_BIN") or shutil.which("prometheus-alertmanager") \
    or shutil.which("alertmanager")


class AlertmanagerProcess:
    """A private Alertmanager on a free loopback port, no clustering, a null receiver, temporary storage.

    `start()` returns once `GET /-/ready` answers 200; `stop()` ends it. The
    port is chosen at construction, so a sink can be pointed at it before it runs.
    """

    def __init__(self, workdir: Path, binary: str) -> None:
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "alertmanager.log"
        self._process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "alertmanager.yml").write_text(
            'route:\n  receiver: "null"\n  group_wait: 1h\nreceivers:\n  - name: "null"\n', encoding="utf-8")

    def start(self, timeout_s: float = DEADLINE_S) -> None:
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [self.binary, f"--config.file={self.workdir / 'alertmanager.yml'}",
             f"--storage.path={self.workdir / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--cluster.listen-address=", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_child_setup())  # noqa: PLW1509 - own process group, killed if pytest dies
        log.close()
        deadline = time.monotonic() + timeout_s
        while not self._ready():
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"Alertmanager did not become ready on port {self.port}:\n{tail}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)
        self._process = None

    def alerts(self) -> list[dict]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=2) as response:
            return orjson.loads(response.read())

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=0.5) as response:
                return response.status == 200
        except OSError:
            return False

    def __enter__(self) -> "AlertmanagerProcess":
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def alertmanager_process(tmp_path: Path) -> AlertmanagerProcess:
    if ALERTMANAGER_BIN is None:
        pytest.skip("Prometheus Alertmanager is not installed (apt-get install -y prometheus-alertmanager)")
    return AlertmanagerProcess(tmp_path / "alertmanager", ALERTMANAGER_BIN)


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[AlertmanagerProcess]:
    """A running private Alertmanager, stopped after the test."""
    with alertmanager_process(tmp_path) as process:
        yield process


def test_postable_alert_has_the_v2_shape() -> None:
    alert = make_alert(3)
    posted = postable_alert(alert, resolve_after_s=3600)
    assert set(posted) == {"labels", "annotations", "startsAt", "endsAt"}
    assert all(isinstance(v, str) for part in ("labels", "annotations") for v in posted[part].values())
    assert posted["startsAt"] == "2026-09-02T13:30:13.796Z"
    assert posted["endsAt"] == "2026-09-02T14:30:13.796Z"
    assert posted["annotations"]["summary"] == "E1234: bulk_sensitive_read (medium)"


def test_a_revision_starts_when_its_incident_opened_and_ends_after_its_latest_trigger() -> None:
    alert = make_alert(3, revision=2) | {"first_detected_at": "2026-09-02T09:00:00.000Z"}
    posted = postable_alert(alert, resolve_after_s=3600)
    assert posted["startsAt"] == "2026-09-02T09:00:00.000Z"
    assert posted["endsAt"] == "2026-09-02T14:30:13.796Z"


def test_alertmanager_receives_the_alert_with_its_labels(alertmanager: AlertmanagerProcess, tmp_path: Path) -> None:
    metrics = ServiceMetrics()
    detected = datetime.now(timezone.utc).replace(microsecond=123000)
    alert = make_alert(1, detected_at=detected)
    sink = AlertmanagerSink(AlertmanagerSinkConfig(url=alertmanager.url + "/", resolve_after_s=3600, **FAST),
                            tmp_path / "am.sqlite", metrics)
    try:
        sink.deliver([alert, alert])                      # a re-delivery refreshes the same Alertmanager alert
        wait_until(lambda: sink.pending() == 0, "the sink to drain")
    finally:
        sink.close()

    found = [a for a in alertmanager.alerts() if a["labels"].get("alert_id") == alert["alert_id"]]
    assert len(found) == 1
    got = found[0]
    assert got["labels"] == {"alertname": ALERTNAME, "severity": "medium", "detector": "bulk_sensitive_read",
                             "employee_id": "E1234", "alert_id": alert["alert_id"]}
    assert got["annotations"]["summary"] == "E1234: bulk_sensitive_read (medium)"
    assert got["annotations"]["description"] == ("Read 52000 rows of personal data today, usually 40. "
                                                 "Outside working hours.")
    assert got["annotations"]["evidence_objects"] == "crm.public.customers, crm.public.orders"
    assert datetime.fromisoformat(got["startsAt"]) == detected
    assert datetime.fromisoformat(got["endsAt"]) == detected + timedelta(hours=1)
    assert got["status"]["state"] == "active"
    assert sample(metrics, "sink_deliveries_total", "alertmanager") == 2


def test_alertmanager_started_late_still_gets_alerts_delivered_while_it_was_down(tmp_path: Path) -> None:
    process = alertmanager_process(tmp_path)
    now = datetime.now(timezone.utc)
    alerts = [make_alert(n, detected_at=now) for n in range(3)]
    sink = AlertmanagerSink(AlertmanagerSinkConfig(url=process.url, **FAST), tmp_path / "am.sqlite")
    try:
        sink.deliver(alerts)
        assert sink.pending() == 3
        with process:
            wait_until(lambda: sink.pending() == 0, "delivery once Alertmanager is up")
            ids = {a["labels"]["alert_id"] for a in process.alerts()}
    finally:
        sink.close()
    assert ids == {a["alert_id"] for a in alerts}
