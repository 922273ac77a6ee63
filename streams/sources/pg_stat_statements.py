"""pg_stat_statements -> the row counts pgaudit cannot see (COPY ... TO, cursor FETCH).

Why this module exists
----------------------
pgaudit logs `COPY table TO` and cursor reads with rows 0, so the pgaudit adapter emits
them with `rows: null` (unknown). PostgreSQL's `pg_stat_statements` does count their rows
(per user, database and queryid, cumulatively). `RowCountTracker` takes successive
snapshots of that view and, for those statements only, turns the increase of `rows`
since the previous snapshot into one contract event per (user, database, queryid):
`action` COPY (COPY ... TO) or SELECT (FETCH, DECLARE ... CURSOR), `rows` the increase,
`ts` the time of the snapshot, `source` "pg_stat_statements". Statements pgaudit counts
itself are never emitted, so nothing is counted twice: plain SELECT/INSERT/..., and
`COPY (query) TO`, whose inner query pgaudit logs with its rows.

Counters only grow during an entry's life, so:

* the first snapshot is the baseline: nothing is emitted for what happened before;
* an entry absent from the previous snapshot was created since (new statement, or one
  re-created after `pg_stat_statements_reset()` or eviction, "dealloc"): all its counts
  happened since the previous snapshot and are emitted;
* a counter lower than in the previous snapshot means the entry was reset and re-created
  since: its current counts (those since the reset) are emitted, never a negative number
  and never the pre-reset counts again;
* `stats_reset` of `pg_stat_statements_info` changing means every entry was removed since:
  every entry counts from zero;
* a different server (system identifier) starts a new baseline.

`read_snapshot` takes a snapshot by running `psql` (no Python driver needed); text fields
travel base64-encoded, so a query with tabs or newlines stays on its line.

Nothing here logs or raises with a query text: it may hold personal data as literals.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from streams.sources.base import iso_utc, make_event

SOURCE = "pg_stat_statements"
STATE_VERSION = 1

# Leading whitespace and comments, then the statement's first words.
_LEAD = r"\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*"
_IDENT = r'(?:"(?:[^"]|"")*"|[^\s()",;.]+)'
_COPY_TO = re.compile(
    _LEAD + r"copy\s+(?:only\s+)?" + _IDENT + r"(?:\s*\.\s*" + _IDENT + r")*"   # a relation, not "(query)"
    + r'(?:\s*\((?:"(?:[^"]|"")*"|[^)"])*\)\s*|\s+)'                             # column list, or a space
    + r"to\b", re.I | re.S)
_CURSOR_READ = re.compile(_LEAD + r"(?:fetch\b|declare\s+(?:" + _IDENT + r"\s+)+?cursor\b)", re.I | re.S)
# A cheap superset of the above for the server-side filter (the exact test is `classify`).
SQL_PREFILTER = "(copy|fetch|declare)"


def classify(query: str | None) -> str | None:
    """The contract action for a statement whose rows pgaudit cannot count, else None.

    COPY relation TO -> "COPY"; FETCH and DECLARE ... CURSOR -> "SELECT". Everything else
    (plain SELECT, COPY ... FROM, `COPY (query) TO`, which pgaudit counts) -> None.
    """
    if not query:
        return None
    if _COPY_TO.match(query):
        return "COPY"
    if _CURSOR_READ.match(query):
        return "SELECT"
    return None


@dataclass(frozen=True, slots=True)
class StatementStats:
    """One row of pg_stat_statements: who, where, which statement, and its cumulative counters."""

    user: str
    database: str
    queryid: int
    query: str
    calls: int
    rows: int
    toplevel: bool = True        # PostgreSQL 14+: the same queryid may also run nested (track = all)


@dataclass(slots=True)
class Snapshot:
    """pg_stat_statements at one moment (`taken_at`, epoch seconds, the server's clock)."""

    rows: list[StatementStats]
    taken_at: float = field(default_factory=time.time)
    stats_reset: str | None = None   # pg_stat_statements_info.stats_reset, when known
    dealloc: int | None = None       # pg_stat_statements_info.dealloc, when known
    server: str | None = None        # the server's identity (system identifier), when known
    privileged: bool = True          # the reader sees every user's statements (pg_read_all_stats)


_Key = tuple[str, str, int, bool]    # user, database, queryid, toplevel


@dataclass(slots=True)
class Baseline:
    """What the previous snapshot said about the statements of interest."""

    counters: dict[_Key, tuple[int, int]]      # key -> (calls, rows)
    taken_at: float
    stats_reset: str | None = None
    dealloc: int | None = None
    server: str | None = None

    def to_dict(self) -> dict:
        return {"version": STATE_VERSION, "taken_at": self.taken_at, "stats_reset": self.stats_reset,
                "dealloc": self.dealloc, "server": self.server,
                "entries": [[u, d, q, t, c, r] for (u, d, q, t), (c, r) in self.counters.items()]}

    @classmethod
    def from_dict(cls, data: dict) -> "Baseline":
        """ValueError (naming no statement) when the data is not a baseline of this version."""
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"not a version {STATE_VERSION} pg_stat_statements baseline")
        counters: dict[_Key, tuple[int, int]] = {}
        try:
            for user, database, queryid, toplevel, calls, rows in data["entries"]:
                if not (isinstance(user, str) and isinstance(database, str) and type(queryid) is int
                        and type(toplevel) is bool and type(calls) is int and type(rows) is int):
                    raise TypeError
                counters[(user, database, queryid, toplevel)] = (calls, rows)
            taken_at = float(data["taken_at"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("malformed pg_stat_statements baseline") from None
        dealloc = data.get("dealloc")
        return cls(counters, taken_at, data.get("stats_reset"), dealloc if type(dealloc) is int else None,
                   data.get("server"))


@dataclass(slots=True)
class Observation:
    """What one snapshot yields: events, the baseline to keep once they are delivered, notes."""

    events: list[dict]
    baseline: Baseline
    notes: list[str] = field(default_factory=list)   # for the operator; never a query text


class RowCountTracker:
    """Snapshots in, contract events out (pure: no I/O, no clock of its own).

    `observe(snapshot)` returns the events and advances the baseline. A caller that must
    deliver the events before forgetting the old baseline uses `diff(snapshot)` and then
    `accept(observation.baseline)` once they are durable (a failed delivery is then
    recomputed, not lost, at the next snapshot).
    """

    def __init__(self, baseline: Baseline | None = None) -> None:
        self.baseline = baseline

    def observe(self, snapshot: Snapshot | Sequence) -> list[dict]:
        observation = self.diff(snapshot)
        self.accept(observation.baseline)
        return observation.events

    def accept(self, baseline: Baseline) -> None:
        self.baseline = baseline

    def diff(self, snapshot: Snapshot | Sequence) -> Observation:
        if not isinstance(snapshot, Snapshot):
            snapshot = Snapshot(rows=list(snapshot))
        stats = [_coerce(row) for row in snapshot.rows]
        current: dict[_Key, tuple[int, int]] = {}
        described: dict[_Key, tuple[str, str]] = {}       # key -> (action, query text)
        for s in stats:
            action = classify(s.query)
            if action is None:
                continue
            key = (s.user, s.database, s.queryid, s.toplevel)
            calls, rows = current.get(key, (0, 0))          # duplicates cannot happen; add up if they do
            current[key] = (calls + s.calls, rows + s.rows)
            described.setdefault(key, (action, s.query))
        baseline = Baseline(current, snapshot.taken_at, snapshot.stats_reset, snapshot.dealloc, snapshot.server)
        old, notes = self.baseline, []
        if old is None:
            return Observation([], baseline, ["first snapshot: baseline recorded, nothing emitted"])
        if old.server is not None and snapshot.server is not None and old.server != snapshot.server:
            notes.append("a different PostgreSQL server than the saved baseline: new baseline, nothing emitted")
            return Observation([], baseline, notes)
        everything_reset = (old.stats_reset is not None and snapshot.stats_reset is not None
                            and old.stats_reset != snapshot.stats_reset)
        if everything_reset:
            notes.append("pg_stat_statements was reset since the previous snapshot: counting from the reset")
        elif old.dealloc is not None and snapshot.dealloc is not None and snapshot.dealloc > old.dealloc:
            notes.append(f"pg_stat_statements evicted {snapshot.dealloc - old.dealloc} entries since the previous "
                         "snapshot (pg_stat_statements.max too small?): rows of evicted statements may be undercounted")
        totals: dict[tuple[str, str, int], list] = {}
        for key, (calls, rows) in current.items():
            before = None if everything_reset else old.counters.get(key)
            if before is not None and calls >= before[0] and rows >= before[1]:
                rows -= before[1]
            # else: new since the previous snapshot, or reset and re-created since: all of it is new
            if rows <= 0:
                continue
            user, database, queryid, _ = key
            action, query = described[key]
            total = totals.setdefault((user, database, queryid), [0, action, query])
            total[0] += rows
        ts = iso_utc(snapshot.taken_at)
        events = [make_event(ts, user, action, SOURCE, database=database or None, rows=rows, statement=query)
                  for (user, database, _), (rows, action, query) in sorted(totals.items(), key=lambda kv: kv[0])]
        return Observation(events, baseline, notes)


def _coerce(row) -> StatementStats:
    if isinstance(row, StatementStats):
        return row
    if isinstance(row, dict):
        return StatementStats(**row)
    return StatementStats(*row)


# -- reading a snapshot with psql ---------------------------------------------------

SNAPSHOT_SQL = rf"""
WITH info AS (SELECT stats_reset, dealloc FROM pg_stat_statements_info)
SELECT 'I', extract(epoch FROM statement_timestamp())::text, (SELECT stats_reset::text FROM info),
       (SELECT dealloc::text FROM info),
       (SELECT system_identifier::text FROM pg_control_system()) || ':' || current_setting('port'),
       pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')::text, NULL, NULL
UNION ALL
SELECT 'S', s.queryid::text, s.toplevel::text, s.calls::text, s.rows::text,
       translate(encode(convert_to(coalesce(r.rolname, s.userid::text), 'UTF8'), 'base64'), E'\n', ''),
       translate(encode(convert_to(coalesce(d.datname, s.dbid::text), 'UTF8'), 'base64'), E'\n', ''),
       translate(encode(convert_to(s.query, 'UTF8'), 'base64'), E'\n', '')
  FROM pg_stat_statements s
  LEFT JOIN pg_roles r ON r.oid = s.userid
  LEFT JOIN pg_database d ON d.oid = s.dbid
 WHERE s.queryid IS NOT NULL AND s.query ~* '{SQL_PREFILTER}'
"""
APPLICATION_NAME = "exfil-detector poll-row-counts"


class SnapshotError(RuntimeError):
    """pg_stat_statements could not be read (the message names no query text)."""


def psql_command(dsn: str, psql: str = "psql") -> list[str]:
    return [psql, "-X", "-At", "-F", "\t", "-w", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", SNAPSHOT_SQL]


def read_snapshot(dsn: str, psql: str = "psql", timeout: float = 60.0, env: dict[str, str] | None = None) -> Snapshot:
    """One snapshot of pg_stat_statements over `dsn` (a libpq connection string or URI).

    The password comes from the environment (PGPASSWORD) or ~/.pgpass, as for any libpq
    client; psql never prompts (-w). SnapshotError names what failed.
    """
    environment = dict(os.environ if env is None else env)
    environment.setdefault("PGAPPNAME", APPLICATION_NAME)
    environment.setdefault("PGCONNECT_TIMEOUT", "10")
    try:
        done = subprocess.run(psql_command(dsn, psql), capture_output=True, timeout=timeout, env=environment,
                              stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise SnapshotError(f"psql not found ({psql}); install the PostgreSQL client or pass --psql") from None
    except subprocess.TimeoutExpired:
        raise SnapshotError(f"psql did not answer within {timeout:.0f} s") from None
    if done.returncode != 0:
        raise SnapshotError(_psql_failure(done.returncode, done.stderr.decode("utf-8", "replace")))
    return parse_snapshot(done.stdout.decode("utf-8", "replace"))


def _psql_failure(status: int, stderr: str) -> str:
    """The first line of psql's complaint; never the SQL it echoes (LINE n: ...)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    first = next((line for line in lines if not line.startswith(("LINE ", "^", "HINT:", "QUERY:", "CONTEXT:"))),
                 f"status {status}")
    text = " ".join(first.split())[:300]
    hint = ""
    if "pg_stat_statements" in text and ("does not exist" in text or "shared_preload_libraries" in text):
        hint = (" (the server needs shared_preload_libraries including pg_stat_statements and, in the database "
                "polled, CREATE EXTENSION pg_stat_statements; version 1.9+, PostgreSQL 14+)")
    return f"psql failed: {text}{hint}"


def parse_snapshot(text: str) -> Snapshot:
    """psql's output of SNAPSHOT_SQL -> a Snapshot (SnapshotError on anything unexpected)."""
    snapshot: Snapshot | None = None
    rows: list[StatementStats] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) != 8 or fields[0] not in ("I", "S"):
            raise SnapshotError(f"unexpected psql output (line {number} has {len(fields)} fields)")
        try:
            if fields[0] == "I":
                snapshot = Snapshot([], float(fields[1]), fields[2] or None,
                                    int(fields[3]) if fields[3] else None, fields[4] or None, fields[5] == "true")
            else:
                rows.append(StatementStats(_b64(fields[5]), _b64(fields[6]), int(fields[1]), _b64(fields[7]),
                                           int(fields[3]), int(fields[4]), fields[2] != "false"))
        except (ValueError, binascii.Error):
            raise SnapshotError(f"unexpected psql output (line {number} cannot be read)") from None
    if snapshot is None:
        raise SnapshotError("unexpected psql output (no pg_stat_statements_info line)")
    snapshot.rows = rows
    return snapshot


def _b64(text: str) -> str:
    return base64.b64decode(text, validate=True).decode("utf-8", "replace")


_URI_PASSWORD = re.compile(r"^postgres(?:ql)?://[^/?#@]*:[^/?#@]*@", re.I)
_URI_PARAM_PASSWORD = re.compile(r"[?&]password=", re.I)
_KV_PASSWORD = re.compile(r"(?:^|\s)password\s*=", re.I)


def dsn_has_password(dsn: str) -> bool:
    """True when a connection string carries a password (it belongs in PGPASSWORD, not a flag)."""
    text = dsn.strip()
    if re.match(r"^postgres(?:ql)?://", text, re.I):
        return bool(_URI_PASSWORD.match(text) or _URI_PARAM_PASSWORD.search(text))
    return bool(_KV_PASSWORD.search(text))


def relevant(stats: Iterable[StatementStats]) -> list[StatementStats]:
    """The rows whose row counts this source reports (for diagnostics and tests)."""
    return [s for s in stats if classify(s.query) is not None]
