"""How long does `StatementAnalyzer.analyze` take once a statement's shape is cached?

The detector must replay >= 50,000 events/s on one core (20 us per event for everything), and
every event with SQL text goes through `analyze`. This measures the cached path only (the
shape is parsed once, before timing) for four statement kinds seen in real workloads, each
in two forms:

* ``varying``  - the literal values change on every call (a new phone, offset, id list),
                 so only the fingerprint cache can help;
* ``verbatim`` - the exact same text repeats (bind-parameter statements, a report re-run).

    python benchmarks/sql_fingerprint.py [--calls 10000] [--repeats 15] [--module path/to/sql.py]

``--module`` times another copy of sql.py (e.g. an older version) for a before/after table.
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

VARIANTS = 4096  # distinct texts per case in the `varying` form


def point_lookup(i: int) -> str:
    return f"SELECT id, name, phone, id_card_no FROM customers WHERE phone = '1380000{i:04d}'"


def page(i: int) -> str:
    return f"SELECT * FROM customers ORDER BY id LIMIT 50 OFFSET {i * 50}"


def in_list(i: int) -> str:
    ids = ", ".join(str(i * 20 + k) for k in range(20))
    return f"SELECT id, name, phone FROM customers WHERE id IN ({ids})"


def report(i: int) -> str:
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
    if path is None:
        from detector import sql

        return sql
    spec = importlib.util.spec_from_file_location("sql_under_test", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def per_call_us(analyze: Callable[[str], object], texts: list[str], calls: int, repeats: int) -> float:
    """Best of `repeats` runs of the mean time per call, in microseconds.

    The minimum, as timeit recommends: on a shared machine slower runs measure the neighbours.
    """
    n = len(texts)
    work = [texts[i % n] for i in range(calls)]
    for text in texts:  # warm: every shape (and, verbatim, every text) seen once
        analyze(text)
    runs = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for text in work:
            analyze(text)
        runs.append((time.perf_counter_ns() - start) / calls / 1000)
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--module", default=None, help="path of a sql.py to time instead")
    args = parser.parse_args()
    sql = load(args.module)
    print(f"{'case':32} {'chars':>5} {'varying us':>11} {'verbatim us':>12}")
    for name, make in CASES.items():
        texts = [make(i) for i in range(VARIANTS)]
        analyzer = sql.StatementAnalyzer()
        varying = per_call_us(analyzer.analyze, texts, args.calls, args.repeats)
        analyzer = sql.StatementAnalyzer()
        verbatim = per_call_us(analyzer.analyze, texts[:1], args.calls, args.repeats)
        print(f"{name:32} {len(texts[1]):5d} {varying:11.2f} {verbatim:12.2f}")


if __name__ == "__main__":
    main()
