"""Files in and out: JSONL events, the dead-letter file, the JSONL alerts file.

Reading never stops on a bad line: it becomes a dead-letter record naming the
file, the line and the problem, with the original text (or base64 when the
bytes are not UTF-8).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

from detector.events import AccessEvent, Rejection, decode_event


class DeadLetterFile:
    """Append-only JSONL of rejected records; counts what it wrote."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.count = 0
        self._file: BinaryIO | None = None

    def write(self, rejection: Rejection, where: str) -> None:
        self.count += 1
        if self.path is None:
            return
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("ab")
        self._file.write(orjson.dumps(dead_letter_record(rejection, where)) + b"\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def dead_letter_record(rejection: Rejection, where: str) -> dict:
    record: dict = {"reason": rejection.reason, "source": where}
    try:
        record["raw"] = rejection.raw.decode("utf-8")
    except UnicodeDecodeError:
        record["raw_base64"] = base64.b64encode(rejection.raw).decode("ascii")
    return record


def read_event_batches(path: Path, dead_letter: DeadLetterFile, batch_size: int = 10_000) -> Iterator[list[AccessEvent]]:
    """Valid events of a JSONL file in batches; invalid lines go to `dead_letter`."""
    batch: list[AccessEvent] = []
    number = 0
    with path.open("rb") as handle:
        for lines in _line_chunks(handle):
            for line in lines:
                number += 1
                line = line.rstrip(b"\r")
                if not line or line.isspace():     # no copy, unlike `line.strip()`
                    continue
                result = decode_event(line)
                if type(result) is Rejection:
                    dead_letter.write(result, f"{path}:{number}")
                    continue
                batch.append(result)
                if len(batch) >= batch_size:
                    yield batch
                    batch = []
    if batch:
        yield batch


READ_CHUNK = 4 * 1024 * 1024


def _line_chunks(handle: BinaryIO, chunk_size: int = READ_CHUNK) -> Iterator[list[bytes]]:
    """The lines of a binary file, without their b"\\n", a list per chunk read.

    Splitting a 4 MiB chunk in C costs far less than iterating the file, which
    hands over one line per Python-level step. A line cut by a chunk's end is
    completed from the next chunk (collected in pieces, so a huge line costs linear time)."""
    rest: list[bytes] = []           # the unfinished last line, in pieces
    while chunk := handle.read(chunk_size):
        lines = chunk.split(b"\n")
        if len(lines) == 1:
            rest.append(chunk)
            continue
        if rest:
            rest.append(lines[0])
            lines[0] = b"".join(rest)
        rest = [lines.pop()]
        yield lines
    tail = b"".join(rest)
    if tail:
        yield [tail]


def read_jsonl(path: Path) -> list[dict]:
    """Small JSONL files (labels, alerts): every line must be a JSON object."""
    records = []
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path} line {number}: not valid JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise ValueError(f"{path} line {number}: expected a JSON object")
                records.append(record)
    return records


class JsonlWriter:
    """Appends JSON objects as lines, flushed per call so that a reader sees whole lines."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("ab")

    def write(self, records: list[dict]) -> None:
        if records:
            self._file.write(b"".join(orjson.dumps(r) + b"\n" for r in records))
            self._file.flush()

    def close(self) -> None:
        self._file.close()
