"""A day-chunked, compact, read-only sequence of contract events.

Millions of events as Python dicts would cost gigabytes; the simulator keeps
each day as one block of serialised JSON lines instead, and decodes an event
only when it is read. Writing a JSONL file is then a copy of the blocks.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Sequence
from typing import IO, overload

import numpy as np
import orjson


class DayChunk:
    """One local day of events, sorted by time."""

    __slots__ = ("blob", "offsets", "ts_ms", "incidents")

    def __init__(self, lines: list[bytes], ts_ms: list[int], incidents: list[int]) -> None:
        self.blob = b"\n".join(lines) + b"\n" if lines else b""
        lengths = np.array(list(map(len, lines)), dtype=np.int64) + 1
        self.offsets = np.concatenate((np.zeros(1, dtype=np.int64), np.cumsum(lengths)))
        self.ts_ms = np.asarray(ts_ms, dtype=np.int64)
        self.incidents = np.asarray(incidents, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.ts_ms)

    def line(self, i: int) -> bytes:
        return self.blob[self.offsets[i]:self.offsets[i + 1] - 1]


class EventLog(Sequence[dict]):
    """Events in time order; each item is a contract event dict, decoded on access."""

    def __init__(self, chunks: list[DayChunk]) -> None:
        self.chunks = [c for c in chunks if len(c)]
        self._starts = [0]
        for c in self.chunks:
            self._starts.append(self._starts[-1] + len(c))

    def __len__(self) -> int:
        return self._starts[-1]

    @overload
    def __getitem__(self, i: int) -> dict: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("event index out of range")
        c = bisect_right(self._starts, i) - 1
        return orjson.loads(self.chunks[c].line(i - self._starts[c]))

    def __iter__(self) -> Iterator[dict]:
        loads = orjson.loads
        for chunk in self.chunks:
            for line in chunk.blob.splitlines():
                yield loads(line)

    def lines(self) -> Iterator[bytes]:
        """The raw JSON lines, without their newline."""
        for chunk in self.chunks:
            yield from chunk.blob.splitlines()

    def write(self, fh: IO[bytes]) -> None:
        for chunk in self.chunks:
            fh.write(chunk.blob)

    @property
    def ts_ms(self) -> np.ndarray:
        """Epoch milliseconds (UTC) of every event."""
        return np.concatenate([c.ts_ms for c in self.chunks]) if self.chunks else np.zeros(0, dtype=np.int64)

    @property
    def incident_index(self) -> np.ndarray:
        """For every event, the index of the incident it belongs to, or -1 for ordinary activity."""
        return np.concatenate([c.incidents for c in self.chunks]) if self.chunks else np.zeros(0, dtype=np.int32)
