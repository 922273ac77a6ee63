"""Throughput of 1, 2, 3 ... detector processes sharing one consumer group.

    PYTHONPATH=. python benchmarks/scaling.py WORKLOAD_DIR MODEL_DIR [--events 200000] [--instances 1,2,3]

For each instance count: a fresh Tansu broker, a 6-partition events topic holding the
first N events of WORKLOAD_DIR/test.jsonl keyed by employee, then K real
`exfil-detector run` processes (state changelog on). The clock starts when every
instance reports ready (partitions assigned) and stops when the group's committed
offsets cover every event: events/s = events processed in between / seconds.
Not a test: the figures and the scaling model go in the README's operations section.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from kafka import KafkaProducer

from detector.directory import Directory
from streams.broker import TansuBroker, create_topics, free_port
from streams.changelog import TOPIC_CONFIG
from tests.service_harness import ALERTS, DEAD, EVENTS, ServiceProcess, committed_total, write_config
from streams.repartition import employee_key

PARTITIONS = 6
CHANGELOG = "exfil-test-state-changelog"


def produce_workload(bootstrap: str, workload: Path, limit: int) -> int:
    directory = Directory.load(workload / "directory.csv")
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, batch_size=256 * 1024)
    count = 0
    with (workload / "test.jsonl").open("rb") as lines:
        for line in lines:
            value = line.rstrip(b"\n")
            producer.send(EVENTS, key=employee_key(value, directory), value=value)
            count += 1
            if count >= limit:
                break
    producer.flush()
    producer.close()
    return count


def run(workload: Path, model: Path, events: int, instances: int) -> tuple[float, int]:
    inputs = {"model": model, "directory": workload / "directory.csv", "catalog": workload / "catalog.yaml",
              "calendar": workload / "calendar.yaml"}
    with tempfile.TemporaryDirectory() as tmp_name, TansuBroker(log_path=Path(tmp_name) / "tansu.log") as broker:
        tmp = Path(tmp_name)
        bootstrap = broker.bootstrap_servers
        create_topics(bootstrap, {EVENTS: PARTITIONS, ALERTS: 1, DEAD: 1, CHANGELOG: PARTITIONS}, {CHANGELOG: TOPIC_CONFIG})
        total = produce_workload(bootstrap, workload, events)
        procs = []
        for i in range(instances):
            config = write_config(tmp / f"i{i}.toml", bootstrap, inputs, tmp / f"state{i}", free_port())
            procs.append(ServiceProcess(config, tmp / f"i{i}.log").start())
        try:
            for proc in procs:
                proc.wait_ready(120)
            started, before = time.perf_counter(), committed_total(bootstrap)
            while (done := committed_total(bootstrap)) < total:
                time.sleep(0.2)
            seconds = time.perf_counter() - started
        finally:
            for proc in procs:
                proc.terminate(60)
        return (done - before) / seconds, total


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--instances", default="1,2,3")
    args = parser.parse_args()
    print("| instances | events/s | per instance |")
    print("|---|---|---|")
    for k in (int(x) for x in args.instances.split(",")):
        rate, total = run(args.workload, args.model, args.events, k)
        print(f"| {k} | {rate:,.0f} | {rate / k:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
