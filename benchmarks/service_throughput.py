"""Service throughput against a bare kafka-python consumer, and event-to-alert latency.

    python benchmarks/service_throughput.py WORKLOAD_DIR MODEL_DIR [--events 200000]

1. Starts Tansu, produces the first N events of WORKLOAD_DIR/test.jsonl to a 3-partition topic.
2. A bare kafka-python consumer (group, no processing) reads them all: events/s.
3. The service (`DetectorService`, in this process) consumes the same topic with its own group;
   the clock runs from its first consumed event until the broker holds a commit of every event
   (so each event's effects are durable): events/s, and the ratio to the bare consumer. With
   --warmup N, also the rate from the moment N events were processed to the end: the sustained
   rate, once the SQL shapes seen first are cached.
4. Latency: a steady 5,000 events/s stream with a single-statement bulk pull (rule-triggering)
   every second; time from producing the pull to its alert appearing on the alerts topic (p50, p99).
Not a test: figures go in the README.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import threading
import time
from pathlib import Path

import orjson
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from streams.broker import TansuBroker, create_topics, free_port
from streams.config import local_config
from streams.service import DetectorService

TOPIC, ALERTS = "db-access", "exfil-alerts"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--latency-seconds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=0,
                        help="also report the rate after this many events: sustained, once the SQL shapes are cached")
    args = parser.parse_args()
    lines = [line.rstrip(b"\n") for line in itertools.islice((args.workload / "test.jsonl").open("rb"), args.events)]
    with tempfile.TemporaryDirectory() as tmp, TansuBroker() as broker:
        create_topics(broker.bootstrap_servers, {TOPIC: 3, ALERTS: 1, "db-access-dead-letter": 1})
        _produce(broker.bootstrap_servers, lines)
        bare = _bare_consumer(broker.bootstrap_servers, len(lines))
        print(f"bare kafka-python consumer: {len(lines):,} events in {bare:.1f}s = {len(lines) / bare:,.0f} events/s "
              f"(mean size {sum(map(len, lines)) / len(lines):.0f} bytes)")
        service, elapsed, sustained = _service_run(Path(tmp), broker.bootstrap_servers, args, len(lines))
        print(f"service: {len(lines):,} events committed in {elapsed:.1f}s = {len(lines) / elapsed:,.0f} events/s; "
              f"ratio to bare consumer {bare / elapsed:.2f}")
        if sustained:
            print(f"service after its first {args.warmup:,} events (caches warm): {sustained:,.0f} events/s; "
                  f"ratio to bare consumer {sustained * bare / len(lines):.2f}")
        latencies = _latency(broker.bootstrap_servers, lines, args.latency_seconds)
        service.request_stop()
        if latencies:
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
            print(f"event-to-alert latency at 5,000 events/s: {len(latencies)} bulk pulls, "
                  f"p50 {statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")


def _produce(bootstrap: str, lines: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    for line in lines:
        record = orjson.loads(line)
        producer.send(TOPIC, key=(record.get("employee_id") or record["db_user"]).encode(), value=line)
    producer.flush()
    producer.close()


def _bare_consumer(bootstrap: str, expected: int) -> float:
    consumer = KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id="bare", auto_offset_reset="earliest",
                             enable_auto_commit=False, max_poll_records=5000, fetch_max_bytes=64 * 1024 * 1024,
                             max_partition_fetch_bytes=16 * 1024 * 1024, session_timeout_ms=2000,
                             heartbeat_interval_ms=600)
    seen, started = 0, None
    while seen < expected:
        batches = consumer.poll(timeout_ms=500)
        if batches and started is None:
            started = time.perf_counter()
        seen += sum(len(b) for b in batches.values())
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def _service_run(root: Path, bootstrap: str, args, expected: int):
    config = local_config(bootstrap, args.model, args.workload, root / "state", free_port())
    config.kafka.group_id, config.kafka.max_poll_records, config.model.watch_interval_s = "bench", 5000, 0
    service = DetectorService(config)
    threading.Thread(target=service.run, daemon=True).start()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    started = warm = None
    warm_events = 0.0
    while True:
        consumed = service.metrics.events_consumed._value.get()
        if started is None and consumed:
            started = time.perf_counter()
        if warm is None and args.warmup and consumed >= args.warmup:
            warm, warm_events = time.perf_counter(), consumed
        if started is not None and _committed(admin, "bench") >= expected:     # every event's effects durable
            admin.close()
            ended = time.perf_counter()
            sustained = (expected - warm_events) / (ended - warm) if warm is not None and ended > warm else None
            return service, ended - started, sustained
        time.sleep(0.05)


def _committed(admin: KafkaAdminClient, group: str) -> int:
    """Events committed by a group on the events topic (offsets start at 0 and are contiguous here)."""
    offsets = admin.list_group_offsets(group).get(group, {})
    return sum(o.offset for tp, o in offsets.items() if tp.topic == TOPIC and o.offset > 0)


def _latency(bootstrap: str, lines: list[bytes], seconds: int) -> list[float]:
    records = [orjson.loads(line) for line in lines[:50_000]]
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    watcher = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    watcher.assign([TopicPartition(ALERTS, 0)])
    watcher.seek_to_end()
    watcher.position(TopicPartition(ALERTS, 0))
    sent: dict[str, float] = {}
    arrivals: dict[str, float] = {}
    stop = threading.Event()
    seen_alerts: list[dict] = []

    def watch() -> None:
        while not stop.is_set():
            for batch in watcher.poll(timeout_ms=100).values():
                for record in batch:
                    alert = orjson.loads(record.value)
                    seen_alerts.append(alert)
                    marker = alert.get("evidence", {}).get("trigger", {}).get("application") or ""
                    if marker.startswith("bench-") and marker not in arrivals:
                        arrivals[marker] = time.perf_counter()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    base_ts = records[-1]["ts"]
    started = time.perf_counter()
    for second in range(seconds):
        for i in range(5000):
            record = records[(second * 5000 + i) % len(records)]
            producer.send(TOPIC, key=(record.get("employee_id") or record["db_user"]).encode(), value=orjson.dumps(record))
            if i % 250 == 0:
                time.sleep(max(0.0, started + second + i / 5000 - time.perf_counter()))
        marker = f"bench-{second}"
        # a new (unresolved) account per pull: one new incident each
        pull = {"ts": base_ts, "db_user": f"bench_{second}", "database": "crm", "action": "SELECT", "rows": 60_000,
                "application": marker, "statement": "SELECT name, phone, id_card_no FROM customers"}
        producer.flush()
        sent[marker] = time.perf_counter()
        producer.send(TOPIC, key=pull["db_user"].encode(), value=orjson.dumps(pull))
    producer.flush()
    deadline = time.perf_counter() + 10
    while len(arrivals) < len(sent) and time.perf_counter() < deadline:
        time.sleep(0.1)
    stop.set()
    thread.join(2)
    producer.close()
    watcher.close()
    print(f"latency probe: {len(sent)} bulk pulls sent, {len(arrivals)} of them alerted ({len(seen_alerts)} alerts seen)")
    if seen_alerts:
        print("last alert:", seen_alerts[-1]["employee_id"], seen_alerts[-1]["detector"], seen_alerts[-1]["evidence"].get("trigger"))
    return [arrivals[m] - sent[m] for m in sent if m in arrivals]


if __name__ == "__main__":
    main()
