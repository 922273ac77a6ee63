"""How many log lines per second does each database-log adapter turn into events?

The real captures in tests/data/samples are replicated to about `--lines` lines per format
(each copy moved later in time, with its own session and connection ids, so that nothing
merges across copies and the join windows behave as on a live log), then:

* ``adapter``: `Adapter.feed` over every line plus `flush()`, in memory (CPU time);
* ``ship``: the whole `exfil-detector ship` path from a file to a JSONL output (wall time,
  fsync at each commit included).

    python benchmarks/adapter_throughput.py [--lines 200000] [--repeats 2] [--no-ship]

Figures are the best of `--repeats` runs: on a shared machine slower runs measure the
neighbours.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from streams.ship import ShipOptions, Shipper  # noqa: E402
from streams.sources import SourceSettings, make_adapter  # noqa: E402

SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data" / "samples"
PREFIX = "%m [%p] user=%u db=%d app=%a client=%h session=%c line=%l vxid=%v txid=%x tag=%i: "
SHIFT_S = 200
CASES = [  # (label, format, main file, slow log)
    ("pgaudit-stderr", "pgaudit-stderr", "pg15_pgaudit_stderr.log", None),
    ("pgaudit-csv", "pgaudit-csv", "pg15_pgaudit_csvlog.csv", None),
    ("pgaudit-json", "pgaudit-json", "pg15_pgaudit_jsonlog.json", None),
    ("mariadb-audit + slow", "mariadb-audit", "mariadb_server_audit.log", "mariadb_slow.log"),
    ("mysql-enterprise-json", "mysql-enterprise-json", "mysql_enterprise_audit.json", None),
    ("aws-das (Aurora PG)", "aws-das", "aws_das_aurora_postgresql.jsonl", None),
    ("aws-das (Aurora MySQL)", "aws-das", "aws_das_aurora_mysql.json", None),
]

_ISO = re.compile(r"2026-11-28 (\d\d:\d\d:\d\d)")
_COMPACT = re.compile(r"\b(20)?261128 (\d\d:\d\d:\d\d)")
_EPOCH = re.compile(r"SET timestamp=(\d+);")
_PG_SESSION = re.compile(r"\b(6b0ae|5ce[0-9a-f]{2})(?=[0-9a-f]{3}\.[0-9a-f]+)")
_AUDIT_CONN = re.compile(r"^(\d{8} [\d:]+,[^,]*,[^,]*,[^,]*,)(\d+),", re.M)
_THREAD = re.compile(r"Thread_id: (\d+)")
_CONN_ID = re.compile(r'("connection_id": ?)(\d+)')
_DAS_SESSION = re.compile(r'("sessionId": ?")(\d+)"')


def _shift_clock(match: re.Match, seconds: int, compact: bool) -> str:
    if compact:
        century, clock = match.group(1), match.group(2)
        moment = datetime.strptime(f"20261128 {clock}", "%Y%m%d %H:%M:%S") + timedelta(seconds=seconds)
        return moment.strftime("%Y%m%d %H:%M:%S") if century else moment.strftime("%y%m%d %H:%M:%S")
    moment = datetime.strptime(f"2026-11-28 {match.group(1)}", "%Y-%m-%d %H:%M:%S") + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def copy_of(text: str, k: int) -> str:
    """The k-th copy: later by k * SHIFT_S seconds, with its own session and connection ids."""
    seconds = k * SHIFT_S
    text = _ISO.sub(lambda m: _shift_clock(m, seconds, False), text)
    text = _COMPACT.sub(lambda m: _shift_clock(m, seconds, True), text)
    text = _EPOCH.sub(lambda m: f"SET timestamp={int(m.group(1)) + seconds};", text)
    text = _PG_SESSION.sub(lambda m: f"{k:05x}", text)
    text = _AUDIT_CONN.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + k * 1000},", text)
    text = _THREAD.sub(lambda m: f"Thread_id: {int(m.group(1)) + k * 1000}", text)
    text = _CONN_ID.sub(lambda m: f"{m.group(1)}{int(m.group(2)) + k * 1000}", text)
    return _DAS_SESSION.sub(lambda m: f'{m.group(1)}{int(m.group(2)) + k * 1000}"', text)


def replicate(name: str, lines: int, copies: int | None = None) -> tuple[str, int]:
    text = (SAMPLES / name).read_text()
    if text.startswith("[\n"):
        text = text[2:]           # the JSON array opens once, at the top of the file
    per_copy = text.count("\n")
    copies = copies or max(1, -(-lines // per_copy))
    head = "[\n" if (SAMPLES / name).read_text().startswith("[\n") else ""
    return head + "".join(copy_of(text, k) for k in range(copies)), copies


def as_lines(text: str) -> list[tuple[str, int, int]]:
    out, offset = [], 0
    for raw in text.encode().splitlines(keepends=True):
        out.append((raw.decode().rstrip("\n"), offset, len(raw)))
        offset += len(raw)
    return out


def time_adapter(fmt: str, main: list, slow: list | None) -> tuple[float, int]:
    adapter = make_adapter(fmt, SourceSettings(log_line_prefix=PREFIX))
    feed = adapter.feed
    events = 0
    started = time.process_time()
    if slow is None:
        for line in main:
            events += len(feed(*line).events)
    else:   # as the shipper does: a chunk of each file in turn
        step = 2000
        for i in range(0, max(len(main), len(slow)), step):
            for line in main[i:i + step]:
                events += len(feed(*line).events)
            for line in slow[i:i + step]:
                events += len(feed(line[0], line[1], line[2], "slow").events)
    events += len(adapter.flush().events)
    return time.process_time() - started, events


def time_ship(fmt: str, main_text: str, slow_text: str | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "audit.log").write_text(main_text)
        slow = None
        if slow_text is not None:
            slow = root / "slow.log"
            slow.write_text(slow_text)
        options = ShipOptions(format=fmt, path=str(root / "audit.log"), output=root / "events.jsonl", slow_log=slow,
                              source=SourceSettings(log_line_prefix=PREFIX))
        started = time.perf_counter()
        Shipper(options, warn=lambda _: None).run()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=200_000, help="lines per format (the main file)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-ship", action="store_true", help="time the adapters only")
    args = parser.parse_args()
    print(f"{'format':24} {'lines':>9} {'events':>9} {'adapter lines/s':>16} {'events/s':>10} {'ship lines/s':>13}")
    print("-" * 86)
    for label, fmt, name, slow_name in CASES:
        main_text, copies = replicate(name, args.lines)
        slow_text = replicate(slow_name, 0, copies)[0] if slow_name else None
        main, slow = as_lines(main_text), (as_lines(slow_text) if slow_text else None)
        total_lines = len(main) + (len(slow) if slow else 0)
        best, events = min(time_adapter(fmt, main, slow) for _ in range(args.repeats))
        ship = "-" if args.no_ship else f"{total_lines / min(time_ship(fmt, main_text, slow_text) for _ in range(args.repeats)):,.0f}"
        print(f"{label:24} {total_lines:>9,} {events:>9,} {total_lines / best:>16,.0f} {events / best:>10,.0f} {ship:>13}")


if __name__ == "__main__":
    main()
