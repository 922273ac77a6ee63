"""The local state store: per-partition employee state and the progress it reflects, saved together.

One SQLite file (WAL, synchronous=FULL). A checkpoint writes the changed
employees' state, their open incidents and each partition's progress (next
source offset, event counts, and the changelog offset it mirrors) in ONE
transaction, so after any crash the stored state reflects exactly the events
before the stored offsets. With the changelog on (streams/changelog.py) this
store is a cache: on assignment it is brought up to date from the changelog
offset it records. Needs no server; the path is configurable.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path

import orjson

from detector.alerts import Incident
from detector.counters import COUNTER_NAMES
from detector.inputs import InputError
from detector.state import EmployeeState
from streams.changelog import PartitionProgress

SCHEMA = """
CREATE TABLE IF NOT EXISTS employee_state (key TEXT PRIMARY KEY, partition INTEGER, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS incident (employee TEXT PRIMARY KEY, partition INTEGER, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS partition_progress (topic TEXT, partition INTEGER, progress BLOB NOT NULL,
                                               changelog_next INTEGER NOT NULL, PRIMARY KEY (topic, partition));
CREATE TABLE IF NOT EXISTS fingerprint (id TEXT PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""


class StateStore:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "state.sqlite3"
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._check_layout()

    def _check_layout(self) -> None:
        """State written with other behaviour counters cannot be read by this version: say so, at start."""
        layout = ",".join(COUNTER_NAMES)
        stored = self.get_meta("counters")
        if stored is None:
            self.set_meta("counters", layout)
        elif stored != layout:
            raise InputError(f"state store {self.path} was written by a detector version with other behaviour "
                             f"counters; move it aside (the changelog topic too, or set kafka.changelog_topic "
                             f"to a new name) to start from the model's baselines")

    def checkpoint(self, topic: str, states: Iterable[tuple[int, EmployeeState]],
                   incidents: Iterable[tuple[int, str, Incident | None]],
                   progress: dict[int, tuple[PartitionProgress, int]], fingerprints: dict[str, str] | None = None) -> None:
        """Atomically save changed states, incidents (None = closed), (progress, changelog offset) per
        partition, and fingerprint texts."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT OR REPLACE INTO employee_state VALUES (?, ?, ?)",
                           [(s.key, p, orjson.dumps(s.to_dict())) for p, s in states])
            for partition, employee, incident in incidents:
                if incident is None:
                    db.execute("DELETE FROM incident WHERE employee = ?", (employee,))
                else:
                    db.execute("INSERT OR REPLACE INTO incident VALUES (?, ?, ?)",
                               (employee, partition, orjson.dumps(incident.to_dict())))
            db.executemany("INSERT OR REPLACE INTO fingerprint VALUES (?, ?)", list((fingerprints or {}).items()))
            db.executemany("INSERT OR REPLACE INTO partition_progress VALUES (?, ?, ?, ?)",
                           [(topic, p, orjson.dumps(pr.to_dict()), c) for p, (pr, c) in progress.items()])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def load_states(self, partitions: Iterable[int] | None = None) -> dict[str, EmployeeState]:
        rows = self._select("SELECT data FROM employee_state", partitions)
        states = (EmployeeState.from_dict(orjson.loads(data)) for (data,) in rows)
        return {s.key: s for s in states}

    def load_incidents(self, partitions: Iterable[int] | None = None) -> dict[str, Incident]:
        rows = self._select("SELECT employee, data FROM incident", partitions)
        return {employee: Incident.from_dict(orjson.loads(data)) for employee, data in rows}

    def load_fingerprints(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT id, text FROM fingerprint").fetchall())

    def progress(self, topic: str) -> dict[int, tuple[PartitionProgress, int]]:
        """Per partition: what its stored state reflects, and the changelog offset it mirrors."""
        rows = self._db.execute("SELECT partition, progress, changelog_next FROM partition_progress WHERE topic = ?",
                                (topic,))
        return {p: (PartitionProgress.from_dict(orjson.loads(data)), c) for p, data, c in rows.fetchall()}

    def offsets(self, topic: str) -> dict[int, int]:
        return {p: pr.next_offset for p, (pr, _) in self.progress(topic).items() if pr.next_offset is not None}

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self._db.close()

    def _select(self, query: str, partitions: Iterable[int] | None) -> list[tuple]:
        if partitions is None:
            return self._db.execute(query).fetchall()
        wanted = sorted(set(partitions))
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        return self._db.execute(f"{query} WHERE partition IN ({marks})", wanted).fetchall()
