"""How fast can a bare kafka-python consumer read from a local Tansu broker?

The ceiling for the detector's consumer loop: no decoding, no scoring, just
records off the wire. Also times broker start, group join and graceful stop.

    python benchmarks/bare_consumer.py [--messages 200000] [--size 330] [--partitions 3] [--s3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kafka import KafkaConsumer, KafkaProducer  # noqa: E402

from streams.broker import MotoS3, TansuBroker, create_topics  # noqa: E402

TOPIC = "bench"
FETCH_SETTINGS: dict[str, Any] = {
    "max_poll_records": 2000,
    "fetch_min_bytes": 1,
    "fetch_max_wait_ms": 100,
    "fetch_max_bytes": 64 * 1024 * 1024,
    "max_partition_fetch_bytes": 16 * 1024 * 1024,
    "receive_buffer_bytes": 4 * 1024 * 1024,
}
GROUP_SETTINGS: dict[str, Any] = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 600,
                                  "auto_offset_reset": "earliest", "enable_auto_commit": False}


def timed_start(storage: str, env: dict[str, str], runs: int = 5) -> list[float]:
    """Seconds from spawn to the first successful Kafka request, `runs` times."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        with TansuBroker(storage=storage, env=env):
            times.append(time.perf_counter() - started)
    return times


def timed_stop(broker: TansuBroker, with_client: bool) -> float:
    """Seconds for a graceful (SIGTERM) stop, optionally while a consumer is connected."""
    consumer = KafkaConsumer(TOPIC, bootstrap_servers=broker.bootstrap_servers) if with_client else None
    if consumer:
        consumer.poll(timeout_ms=200)
    started = time.perf_counter()
    broker.restart()
    elapsed = time.perf_counter() - started
    if consumer:
        consumer.close()
    return elapsed


def timed_joins(bootstrap: str, runs: int = 3) -> list[float]:
    """Seconds from subscribe to a non-empty assignment, for fresh groups."""
    times = []
    for i in range(runs):
        started = time.perf_counter()
        consumer = KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id=f"join-{i}", **GROUP_SETTINGS)
        while not consumer.assignment():
            consumer.poll(timeout_ms=20, max_records=1)
        times.append(time.perf_counter() - started)
        consumer.close()
    return times


def produce(bootstrap: str, count: int, size: int) -> float:
    """Produce `count` keyed messages of `size` bytes; returns messages per second."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=20,
                             batch_size=512 * 1024, max_request_size=8 * 1024 * 1024)
    payload = b"x" * size
    started = time.perf_counter()
    for i in range(count):
        producer.send(TOPIC, key=f"user-{i % 1000}".encode(), value=payload)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return count / elapsed


def consume(bootstrap: str, count: int, group: str) -> dict[str, float]:
    """Read `count` records in a consumer group; returns timings and rates."""
    started = time.perf_counter()
    consumer = KafkaConsumer(TOPIC, bootstrap_servers=bootstrap, group_id=group,
                             **GROUP_SETTINGS, **FETCH_SETTINGS)
    seen, first, polls = 0, None, 0
    while seen < count:
        batches = consumer.poll(timeout_ms=500)
        polls += 1
        got = sum(len(b) for b in batches.values())
        if got and first is None:
            first = time.perf_counter()
        seen += got
    done = time.perf_counter()
    consumer.close()
    assert first is not None
    return {"records": seen, "polls": polls, "join_s": first - started, "read_s": done - first,
            "rate_incl_join": seen / (done - started), "rate_steady": seen / (done - first)}


@contextlib.contextmanager
def storage(use_s3: bool) -> Iterator[tuple[str, dict[str, str]]]:
    if not use_s3:
        yield "memory://", {}
        return
    with MotoS3() as s3:
        yield s3.storage_url, s3.env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--size", type=int, default=330)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="consumer runs (fresh group each)")
    parser.add_argument("--s3", action="store_true", help="s3:// storage on a moto server")
    args = parser.parse_args()
    with storage(args.s3) as (url, env):
        starts = timed_start(url, env)
        print(f"broker start: median {statistics.median(starts)*1000:.0f} ms, max {max(starts)*1000:.0f} ms")
        with TansuBroker(storage=url, env=env) as broker:
            bootstrap = broker.bootstrap_servers
            create_topics(bootstrap, {TOPIC: args.partitions})
            joins = timed_joins(bootstrap)
            print(f"group join (session 2000 ms): {', '.join(f'{t*1000:.0f}' for t in joins)} ms")
            rate = produce(bootstrap, args.messages, args.size)
            print(f"produce: {args.messages} x {args.size} B -> {rate:,.0f} msg/s")
            for i in range(args.rounds):
                r = consume(bootstrap, args.messages, f"bench-{i}")
                print(f"consume #{i}: {r['records']} records in {r['polls']} polls, join {r['join_s']:.2f} s, "
                      f"read {r['read_s']:.2f} s -> {r['rate_steady']:,.0f} msg/s steady "
                      f"({r['rate_steady'] * args.size / 1e6:.1f} MB/s), "
                      f"{r['rate_incl_join']:,.0f} msg/s incl. join")
            if not args.s3:
                print(f"graceful stop, idle: {timed_stop(broker, False):.2f} s (incl. restart); "
                      f"with a connected consumer: {timed_stop(broker, True):.2f} s")


if __name__ == "__main__":
    main()
