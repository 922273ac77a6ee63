"""Experiment: how much faster is the service's processing loop when Kafka fetching runs in a child process?

    python benchmarks/fetch_process.py WORKLOAD_DIR MODEL_DIR [--events 600000]

The service runs kafka-python's record parsing on the same core as the engine (17 % of its
thread). This measures what moving it out would give, before anyone builds it for real:

1. Starts Tansu, produces the first N events of WORKLOAD_DIR/test.jsonl to a 3-partition topic, and
   times a bare kafka-python consumer reading them (as `service_throughput.py` does).
2. In-process: a KafkaConsumer polls, and the service's own `_process` (decode, pipeline, scoring)
   and sink delivery handle each poll's batches.
3. Child fetch: a child process polls and pipes each partition's batch as one pickle of
   (offset, value) pairs; this process unpickles it and runs the same `_process` and delivery.

Both variants, twice, alternately. Neither checkpoints nor commits (the service does, about 4 % of
its time), neither is in a consumer group (the partitions are assigned), so the ratios here are
upper bounds for the service; what they compare is the fetching. Not a test: figures go in the README.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import pickle
import tempfile
import time
from collections import namedtuple
from multiprocessing.connection import Connection
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from service_throughput import TOPIC, _bare_consumer, _produce
from streams.broker import TansuBroker, create_topics, free_port
from streams.config import local_config
from streams.service import DetectorService

PARTITIONS = 3
Record = namedtuple("Record", "offset value headers key partition topic")   # what `_process` reads


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", type=Path)
    parser.add_argument("model", type=Path)
    parser.add_argument("--events", type=int, default=600_000)
    args = parser.parse_args()
    lines = [line.rstrip(b"\n") for line in itertools.islice((args.workload / "test.jsonl").open("rb"), args.events)]
    with tempfile.TemporaryDirectory() as tmp, TansuBroker() as broker:
        bootstrap = broker.bootstrap_servers
        create_topics(bootstrap, {TOPIC: PARTITIONS, "exfil-alerts": 1, "db-access-dead-letter": 1})
        _produce(bootstrap, lines)
        bare = len(lines) / _bare_consumer(bootstrap, len(lines))
        print(f"bare kafka-python consumer: {bare:,.0f} events/s")
        for name, run in (("in-process fetch", _in_process), ("child-process fetch", _child_fetch)) * 2:
            service = _service(Path(tempfile.mkdtemp(dir=tmp)), bootstrap, args)
            rate = run(service, bootstrap, len(lines))
            service.store.close()
            print(f"{name}: {rate:,.0f} events/s, ratio to bare consumer {rate / bare:.2f}")


def _service(root: Path, bootstrap: str, args: argparse.Namespace) -> DetectorService:
    config = local_config(bootstrap, args.model, args.workload, root / "state", free_port())
    config.model.watch_interval_s = 0
    return DetectorService(config)


def _consumer(bootstrap: str) -> KafkaConsumer:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=5000,
                             fetch_max_bytes=64 * 1024 * 1024, max_partition_fetch_bytes=16 * 1024 * 1024,
                             fetch_max_wait_ms=100)
    partitions = [TopicPartition(TOPIC, p) for p in range(PARTITIONS)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    return consumer


def _handle(service: DetectorService, batches: dict[int, list]) -> int:
    alerts, _ = service._process(batches)
    for sink in service.sinks:
        sink.deliver(alerts)
    return sum(len(records) for records in batches.values())


def _in_process(service: DetectorService, bootstrap: str, expected: int) -> float:
    consumer = _consumer(bootstrap)
    seen, started = 0, None
    while seen < expected:
        polled = consumer.poll(timeout_ms=200, max_records=5000)
        if polled:
            started = started or time.perf_counter()
            seen += _handle(service, {tp.partition: records for tp, records in polled.items()})
    elapsed = time.perf_counter() - started
    consumer.close()
    return seen / elapsed


def _fetch_into(bootstrap: str, pipe: Connection, expected: int) -> None:
    consumer = _consumer(bootstrap)
    sent = 0
    while sent < expected:
        for tp, records in consumer.poll(timeout_ms=200, max_records=5000).items():
            pipe.send_bytes(pickle.dumps((tp.partition, [(r.offset, r.value) for r in records]), protocol=5))
            sent += len(records)
    pipe.send_bytes(b"")
    consumer.close()


def _child_fetch(service: DetectorService, bootstrap: str, expected: int) -> float:
    receiving, sending = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=_fetch_into, args=(bootstrap, sending, expected))
    child.start()
    seen, started = 0, None
    while data := receiving.recv_bytes():
        started = started or time.perf_counter()
        partition, pairs = pickle.loads(data)
        seen += _handle(service, {partition: [Record(o, v, (), None, partition, TOPIC) for o, v in pairs]})
    elapsed = time.perf_counter() - started
    child.join()
    return seen / elapsed


if __name__ == "__main__":
    main()
