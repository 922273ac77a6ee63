"""How long does `StatementAnalyzer.analyze` take once a statement's shape is cached?

The detector must replay >= 50,000 events/s on one core (20 us per event for everything), and
every event with SQL text goes through `analyze`. This times the cached path only (each shape
is parsed once, before timing) for statement kinds seen in real workloads, in two forms:

* ``varying``  - the literal values change on every call (a new phone, offset, id list):
                 the statement is scanned, then its shape is found by fingerprint;
* ``verbatim`` - the exact same text repeats. Statements without literals (bind
                 parameters) are then found by their text without a scan; statements with
                 literals are never kept by text (no cache holds a literal value), so for
                 them this is the same work as ``varying``.

    python benchmarks/sql_fingerprint.py [--calls 4000] [--repeats 25]
    python benchmarks/sql_fingerprint.py --baseline path/to/old/sql.py   # before/after table

Times are CPU time per call (best of ``--repeats`` runs: on a shared machine slower runs
measure the neighbours). With ``--baseline`` both versions are timed in the same process,
their runs interleaved, so a busy machine slows both alike.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from collections.abc import Callable
from types import ModuleType

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def point_lookup(i: int) -> str:
    return f"SELECT id, name, phone, id_card_no FROM customers WHERE phone = '1380000{i:04d}'"


def page(i: int) -> str:
    return f"SELECT * FROM customers ORDER BY id LIMIT 50 OFFSET {i * 50}"


def in_list(i: int) -> str:
    ids = ", ".join(str(i * 20 + k) for k in range(20))
    return f"SELECT id, name, phone FROM customers WHERE id IN ({ids})"


def report(i: int) -> str:
    """About 420 characters, three joins, a comment and a line break."""
    return (
        "SELECT c.id, c.name, c.phone, c.city, o.order_no, o.total, p.method, p.paid_at "
        "FROM customers c JOIN orders o ON o.customer_id = c.id "
        "LEFT JOIN payments p ON p.order_id = o.id AND p.status = 'settled' "
        f"WHERE o.created_at >= '2026-{i % 12 + 1:02d}-01' AND o.created_at < '2026-12-01' "
        f"AND c.region IN ('north', 'east') AND o.total > {100 + i} "
        f"AND p.amount BETWEEN {i} AND 5000 -- monthly settlement report\n"
        "ORDER BY o.created_at DESC, c.id LIMIT 500"
    )


def bind_lookup(_: int) -> str:
    return "SELECT id, name, phone FROM customers WHERE id = $1"


CASES: dict[str, Callable[[int], str]] = {
    "point lookup, quoted phone": point_lookup,
    "LIMIT/OFFSET page": page,
    "IN list of 20 ids": in_list,
    "report query with joins": report,
    "bind-parameter lookup": bind_lookup,
}


def load(path: str | None) -> ModuleType:
    """detector.sql, or another copy of sql.py (e.g. an older version) loaded from a path."""
    if path is None:
        from detector import sql

        return sql
    spec = importlib.util.spec_from_file_location(f"sql_at_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def run_us(analyze: Callable[[str], object], texts: list[str]) -> float:
    """CPU microseconds per call over texts."""
    start = time.process_time_ns()
    for text in texts:
        analyze(text)
    return (time.process_time_ns() - start) / len(texts) / 1000


def measure(modules: list[ModuleType], make: Callable[[int], str], verbatim: bool,
            calls: int, repeats: int) -> list[float]:
    """Best us per call for each module; runs interleaved, fresh texts for every run."""
    analyzers = [module.StatementAnalyzer() for module in modules]
    for analyzer in analyzers:
        analyzer.analyze(make(0))  # the shape is cached before timing
    best = [float("inf")] * len(modules)
    for run in range(repeats):
        texts = [make(0)] * calls if verbatim else [make(1 + run * calls + i) for i in range(calls)]
        for k, analyzer in enumerate(analyzers):
            best[k] = min(best[k], run_us(analyzer.analyze, texts))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4000, help="calls per timed run")
    parser.add_argument("--repeats", type=int, default=25, help="timed runs; the best counts")
    parser.add_argument("--baseline", default=None, help="path of another sql.py to compare")
    args = parser.parse_args()
    modules = [load(None)] + ([load(args.baseline)] if args.baseline else [])
    if args.baseline:
        print(f"{'us per call':32} {'chars':>5} {'varying':>17} {'verbatim':>17}")
        print(f"{'':32} {'':5} {'before':>8} {'after':>8} {'before':>8} {'after':>8}")
    else:
        print(f"{'us per call':32} {'chars':>5} {'varying':>8} {'verbatim':>8}")
    for name, make in CASES.items():
        varying = measure(modules, make, False, args.calls, args.repeats)
        verbatim = measure(modules, make, True, args.calls, args.repeats)
        if args.baseline:
            print(f"{name:32} {len(make(1)):5d} {varying[1]:8.2f} {varying[0]:8.2f} "
                  f"{verbatim[1]:8.2f} {verbatim[0]:8.2f}")
        else:
            print(f"{name:32} {len(make(1)):5d} {varying[0]:8.2f} {verbatim[0]:8.2f}")


if __name__ == "__main__":
    main()
