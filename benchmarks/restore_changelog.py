"""How long a partition's state takes to restore, for N employees, from the changelog and the local store.

    PYTHONPATH=. python benchmarks/restore_changelog.py [--employees 10000] [--days 35]

Builds one realistic employee state (DAYS working days of lookups through the real
pipeline, so its history, seen sets and baselines are full), clones it under N keys,
writes them to a changelog partition on a fresh Tansu broker in checkpoints of 1,000
people, then times (1) `ChangelogReader.restore` of that partition and (2) loading the
same states from the local SQLite store. Not a test: figures go in the README.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import orjson
from kafka import KafkaProducer

from detector.state import EmployeeState
from streams.broker import TansuBroker, create_topics
from streams.changelog import ChangelogReader, ChangelogWriter, PartitionProgress, changelog_records
from streams.config import KafkaConfig
from streams.statestore import StateStore
from tests.factories import normal_day
from tests.test_pipeline import _pipeline

TOPIC = "restore-benchmark"


def realistic_state(days: int) -> EmployeeState:
    pipeline = _pipeline()
    calendar_days = [d for d in range(1, 60) if d % 7 not in (5, 6)][:days]
    for day in calendar_days:
        pipeline.process(normal_day(day % 30 + 1 if day > 30 else day, lookups=40, start_id=1000 + day))
    pipeline.finish()
    return pipeline.states["E001"]


def clones(template: EmployeeState, n: int) -> list[EmployeeState]:
    data = template.to_dict()
    return [EmployeeState.from_dict({**data, "key": f"E{i:06d}", "employee_id": f"E{i:06d}"}) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=35)
    args = parser.parse_args()
    template = realistic_state(args.days)
    size = len(orjson.dumps(template.to_dict()))
    states = clones(template, args.employees)
    print(f"one state: {size:,} bytes of JSON, {len(template.history)} days of history")
    with tempfile.TemporaryDirectory() as tmp, TansuBroker(log_path=Path(tmp) / "tansu.log") as broker:
        create_topics(broker.bootstrap_servers, {TOPIC: 1}, {TOPIC: {"cleanup.policy": "compact"}})
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all", linger_ms=5,
                                 max_request_size=16 * 1024 * 1024, batch_size=1024 * 1024)
        writer = ChangelogWriter(producer, TOPIC)
        started = time.perf_counter()
        for start in range(0, len(states), 1000):
            chunk = states[start:start + 1000]
            writer.write({0: changelog_records(TOPIC, 0, chunk, [], PartitionProgress(start + 1000, start + 1000))})
        written = time.perf_counter() - started
        reader = ChangelogReader(KafkaConfig(bootstrap_servers=broker.bootstrap_servers), TOPIC)
        restored = reader.restore(0, 0)
        reader.close()
        producer.close()
        assert len(restored.states) == args.employees
        store = StateStore(Path(tmp) / "store")
        store.checkpoint(TOPIC, [(0, s) for s in states], [], {0: (restored.progress, restored.changelog_next)})
        started = time.perf_counter()
        local = store.load_states([0])
        local_s = time.perf_counter() - started
        assert len(local) == args.employees
    mib = size * args.employees / 2**20
    print(f"wrote {args.employees:,} states ({mib:,.0f} MiB) to the changelog in {written:.1f} s")
    print(f"restore from the changelog: {restored.seconds:.2f} s ({restored.records_read:,} records, "
          f"{args.employees / restored.seconds:,.0f} employees/s)")
    print(f"restore from the local store: {local_s:.2f} s ({args.employees / local_s:,.0f} employees/s)")


if __name__ == "__main__":
    main()
