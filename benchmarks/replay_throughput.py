"""Replay throughput (events/s on one core) and memory per 10,000 employees.

    python benchmarks/replay_throughput.py WORKLOAD_DIR MODEL_DIR      # throughput of `replay` on real files
    python benchmarks/replay_throughput.py --memory 10000              # state memory for N synthetic employees

Throughput is measured in one process (Python uses one core), three ways: decoding
only, the pipeline on pre-decoded events, and the whole replay path (decode +
pipeline + scoring + alerts). Not a test: figures go in the README.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time
from pathlib import Path

from detector.artifacts import load_bundle
from detector.calendar import WorkCalendar
from detector.catalog import Catalog
from detector.directory import Directory, Employee
from detector.pipeline import DetectionPipeline, ReferenceData, Scoring, settle_heap
from streams.files import DeadLetterFile, read_event_batches


def throughput(workload: Path, model: Path, limit: int) -> None:
    refs = ReferenceData(Directory.load(workload / "directory.csv"), Catalog.load(workload / "catalog.yaml"),
                         WorkCalendar.load(workload / "calendar.yaml"))
    bundle = load_bundle(model)
    started = time.perf_counter()
    batches, n = [], 0
    for batch in read_event_batches(workload / "test.jsonl", DeadLetterFile(None)):
        batches.append(batch)
        n += len(batch)
        if n >= limit:
            break
    decode = time.perf_counter() - started
    warm_profiler = None
    for label, warm in (("cold SQL cache", False), ("warm SQL cache", True)):
        pipeline = DetectionPipeline(refs, bundle.scoring)
        if warm:
            pipeline.profiler = warm_profiler
        pipeline.restore(load_bundle(model).states)
        settle_heap()          # as `replay` does
        started = time.perf_counter()
        alerts = sum(len(pipeline.process(b)) for b in batches) + len(pipeline.finish())
        elapsed = time.perf_counter() - started
        warm_profiler = pipeline.profiler
        print(f"pipeline ({label}): {n:,} events in {elapsed:.2f}s = {n / elapsed:,.0f} events/s; "
              f"{pipeline.stats.snapshots:,} snapshots; {alerts} alerts")
    print(f"decode + validate: {n / decode:,.0f} events/s")
    print(f"whole replay path (decode + pipeline, warm): {n / (decode + elapsed):,.0f} events/s")


def memory(employees: int) -> None:
    from tests.factories import CATALOG, normal_day

    people = [Employee(f"E{i:06d}", f"dept{i % 20}", "customer_service", (f"user{i}",)) for i in range(employees)]
    refs = ReferenceData(Directory(people), Catalog.from_mapping(CATALOG), WorkCalendar("Asia/Shanghai"))
    from detector.training import _flat_peers

    pipeline = DetectionPipeline(refs, Scoring(peers=_flat_peers()))
    gc.collect()
    before = _rss_mib()
    for day in range(1, 11):
        if day in (5, 6):
            continue
        for start in range(0, employees, 500):
            batch = [e for i in range(start, min(start + 500, employees)) for e in normal_day(day, f"user{i}", lookups=12, start_id=i)]
            batch.sort(key=lambda e: e.ts_ms)
            pipeline.process(batch)
    pipeline.finish()
    gc.collect()
    grown = _rss_mib() - before
    print(f"{employees:,} employees with 8 active days of history: state grew the process by {grown:,.0f} MiB "
          f"({grown * 1024 / employees:,.1f} KiB per employee; {grown * 10_000 / employees:,.0f} MiB per 10,000)")
    print(f"peak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")


def _rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() / 2**20


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", nargs="?", type=Path)
    parser.add_argument("model", nargs="?", type=Path)
    parser.add_argument("--limit", type=int, default=300_000)
    parser.add_argument("--memory", type=int)
    args = parser.parse_args()
    if args.memory:
        memory(args.memory)
    else:
        throughput(args.workload, args.model, args.limit)
