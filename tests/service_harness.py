"""Run the real `exfil-detector run` as a child process against a real broker, for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition


EVENTS, ALERTS, DEAD = "db-access", "exfil-alerts", "db-access-dead-letter"


def write_config(path: Path, bootstrap: str, inputs: dict[str, Path], state: Path, port: int,
                 fetch_process: bool = True, **extra: str) -> Path:
    sinks = "\n".join(f"[sinks.{name}]\n{body}" for name, body in extra.items())
    path.write_text(f"""
[kafka]
bootstrap_servers = "{bootstrap}"
group_id = "exfil-test"
session_timeout_ms = 2000
heartbeat_interval_ms = 600
poll_timeout_ms = 200
max_poll_records = 2000
fetch_process = {str(fetch_process).lower()}

[model]
path = "{inputs['model']}"
watch_interval_s = 1

[inputs]
directory = "{inputs['directory']}"
catalog = "{inputs['catalog']}"
calendar = "{inputs['calendar']}"

[state]
path = "{state}"

[metrics]
port = {port}
host = "127.0.0.1"

[service]
shutdown_timeout_s = 5
{sinks}
""")
    return path


class ServiceProcess:
    started: list["ServiceProcess"] = []     # every service a test started, for `stop_leftovers`

    def __init__(self, config: Path, log: Path) -> None:
        self.config, self.log = config, log
        self.port = int(next(l for l in config.read_text().splitlines() if l.startswith("port")).split("=")[1])
        self.proc: subprocess.Popen | None = None

    def start(self) -> "ServiceProcess":
        handle = self.log.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "detector.cli", "run", "--config", str(self.config)],
                                     stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        ServiceProcess.started.append(self)
        return self

    @classmethod
    def stop_leftovers(cls) -> list[int]:
        """Kill the process group of every service still running (a test that failed before it
        stopped its service); return their process ids."""
        left = [s for s in cls.started if s.proc.poll() is None]
        for service in left:
            service.kill()
        cls.started.clear()
        return [s.proc.pid for s in left]

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            if http_status(self.port, "/readyz") == 200:
                return
            time.sleep(0.2)
        raise AssertionError(f"service not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def terminate(self, timeout: float = 20.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:       # the group is gone already
            pass
        self.proc.wait(10)

    def fetch_processes(self) -> list[int]:
        """Process ids of the service's spawned children (the Kafka fetch process; not multiprocessing's
        resource tracker)."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(pid) for pid in children
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]

    def metric(self, name: str) -> float:
        body = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5).read().decode()
        total = 0.0
        for line in body.splitlines():
            if line.startswith(name) and (line[len(name)] in " {"):
                total += float(line.rsplit(" ", 1)[1])
        return total


def http_status(port: int, path: str) -> int | None:
    try:
        return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2).status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def produce(bootstrap: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    for key, value in records:
        producer.send(EVENTS, key=key, value=value)
    producer.flush()
    producer.close()


def event_record(event) -> tuple[bytes, bytes]:
    from detector.events import format_ts

    body = {"ts": format_ts(event.ts_ms), "db_user": event.db_user, "action": event.action, "database": event.database,
            "client_addr": event.client_addr, "application": event.application, "statement": event.statement,
            "rows": event.rows, "success": event.success}
    return event.db_user.encode(), orjson.dumps({k: v for k, v in body.items() if v is not None})


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 30.0) -> list:
    """All records of a topic, waiting until at least `expected` arrived (or the deadline)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=500)
    deadline = time.monotonic() + timeout
    records: list = []
    try:
        while time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions:
                break
            time.sleep(0.2)
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions or [])])
        consumer.seek_to_beginning()
        while time.monotonic() < deadline and len(records) < expected:
            for batch in consumer.poll(timeout_ms=300).values():
                records.extend(batch)
        if expected == 0:
            for batch in consumer.poll(timeout_ms=1000).values():
                records.extend(batch)
    finally:
        consumer.close()
    return records


def committed_total(bootstrap: str, group: str = "exfil-test", topic: str = EVENTS) -> int:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        return sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in partitions)
    finally:
        consumer.close()


def uninterrupted_run(bootstrap: str, refs, model_dir: Path):
    """What one pipeline that never stopped computes from the events topic, partition by partition,
    in offset order: (pipeline, alerts, events per partition). The reference for restart tests."""
    from detector.artifacts import load_bundle
    from detector.events import decode_event
    from detector.pipeline import DetectionPipeline

    bundle = load_bundle(model_dir)
    pipeline = DetectionPipeline(refs, bundle.scoring)
    pipeline.seed(bundle.states)
    by_partition: dict[int, list] = {}
    for record in read_topic(bootstrap, EVENTS, expected=10**9, timeout=5):
        by_partition.setdefault(record.partition, []).append(record)
    alerts = []
    for partition, records in sorted(by_partition.items()):
        events = [decode_event(r.value) for r in sorted(records, key=lambda r: r.offset)]
        alerts += pipeline.process(events, stream=partition)
    return pipeline, alerts, {p: len(r) for p, r in by_partition.items()}
