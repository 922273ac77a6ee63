"""Complete lines of a growing log file, like `tail -F`, with byte positions.

Why this module exists
----------------------
The shipper must know exactly which bytes it has handed to an adapter, survive the
database rotating its log, and resume after a restart. A `FollowedFile` hands out only
complete lines (a line still being written stays buffered) with the byte offset of
each line's start. At the end of the data it checks the path:

* a different file at the path (device + inode changed: the log was rotated): the old
  file is read to its end, its last unterminated line included, and reported as
  `ROTATED`; the caller finishes with it, then `switch()`es to the new file at offset 0;
* the same file, now shorter than what was read (truncated, e.g. copytruncate):
  `TRUNCATED`; the caller finishes, then `switch()`es to read it again from 0.

A saved position names its file by device and inode. On resume, if the path holds
another file now, the saved file is looked for in the same directory under its rotated
name and finished first; if it is gone, the path is read from its start (and a note says
so). Standard input (`-`) is read the same way, without positions or rotation.

It never decodes more than one line at a time into text, never logs a line, and never
loses a line to a rotation as long as the rotated file stays in the same directory.
"""

from __future__ import annotations

import os
import select
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

ROTATED = "rotated"
TRUNCATED = "truncated"
CLOSED = "closed"          # standard input reached its end
CHUNK = 1 << 20


class Line(NamedTuple):
    text: str
    offset: int
    length: int


@dataclass(frozen=True)
class FilePosition:
    """Where reading stopped: the file (device, inode) and the next byte to read."""

    path: str
    device: int
    inode: int
    offset: int

    def to_dict(self) -> dict:
        return {"path": self.path, "device": self.device, "inode": self.inode, "offset": self.offset}

    @classmethod
    def from_dict(cls, data: dict) -> "FilePosition":
        return cls(str(data["path"]), int(data["device"]), int(data["inode"]), int(data["offset"]))


def _lines(data: bytes, base: int) -> list[Line]:
    """Lines of `data` (which ends with a line break) starting at file offset `base`."""
    out: list[Line] = []
    start = 0
    for raw in data.split(b"\n")[:-1]:
        length = len(raw) + 1
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("utf-8", "replace")
        out.append(Line(text, base + start, length))
        start += length
    return out


class _LineBuffer:
    """Complete lines out of arbitrary chunks; the unterminated rest waits for the next chunk."""

    def __init__(self) -> None:
        self._pending = b""          # an unterminated line at the end of what was read
        self._offset = 0             # input offset of the first byte of `_pending`

    def _split(self, data: bytes) -> list[Line]:
        buffer = self._pending + data
        cut = buffer.rfind(b"\n")
        if cut < 0:
            self._pending = buffer
            return []
        lines = _lines(buffer[:cut + 1], self._offset)
        self._offset += cut + 1
        self._pending = buffer[cut + 1:]
        return lines


class FollowedFile(_LineBuffer):
    """A log file read line by line through rotation and truncation (see the module docstring)."""

    def __init__(self, path: Path | str, resume: FilePosition | None = None) -> None:
        self.path = Path(path)
        self.notes: list[str] = []
        self._file = None
        self._identity: tuple[int, int] | None = None
        super().__init__()
        self._open(resume)

    # -- state ------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self._file is not None

    @property
    def offset(self) -> int:
        """The offset of the first byte not yet handed out as part of a line."""
        return self._offset

    def position(self, offset: int) -> FilePosition | None:
        """The current file with a byte offset (the adapter's safe offset)."""
        if self._identity is None:
            return None
        return FilePosition(os.path.abspath(self.path), self._identity[0], self._identity[1], offset)

    # -- reading ----------------------------------------------------------------

    def read(self) -> list[Line]:
        """Complete lines that arrived since the last call (one chunk at most)."""
        if self._file is None:
            self._open(None)
            if self._file is None:
                return []
        data = self._file.read(CHUNK)
        if not data:
            return []
        return self._split(data)

    def check(self) -> str | None:
        """At the end of the data: has the file been rotated away or truncated?"""
        if self._file is None:
            return None
        try:
            size = os.fstat(self._file.fileno()).st_size
        except OSError:
            size = None
        if size is not None and size < self._offset + len(self._pending):
            return TRUNCATED
        try:
            st = os.stat(self.path)
        except OSError:
            return None              # moved away and not recreated yet: keep reading the old file
        if (st.st_dev, st.st_ino) != self._identity:
            return ROTATED
        return None

    def finish(self) -> list[Line]:
        """The rest of a rotated file, its last unterminated line included."""
        lines: list[Line] = []
        while True:
            more = self.read()
            if not more:
                break
            lines.extend(more)
        if self._pending:
            lines.extend(_lines(self._pending + b"\n", self._offset))
            self._offset += len(self._pending)
            self._pending = b""
        return lines

    def switch(self) -> None:
        """Read the path from offset 0: the new file after a rotation, or the truncated one."""
        self.close()
        self._pending, self._offset = b"", 0
        self._open(None)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- internals ----------------------------------------------------------------

    def _open(self, resume: FilePosition | None) -> None:
        try:
            handle = open(self.path, "rb", buffering=0)
        except FileNotFoundError:
            if resume is None:
                return
            handle = None
        current = os.fstat(handle.fileno()) if handle is not None else None
        identity = (current.st_dev, current.st_ino) if current is not None else None
        if resume is not None and identity != (resume.device, resume.inode):
            old = self._find_rotated(resume)
            if old is not None:
                if handle is not None:
                    handle.close()
                handle, identity, current = old, (resume.device, resume.inode), os.fstat(old.fileno())
            else:
                self.notes.append(f"{self.path}: the file of the saved position (inode {resume.inode}) is gone; "
                                  f"reading the current file from its start")
                resume = None
        if handle is None:
            return
        offset = 0
        if resume is not None:
            offset = resume.offset
            if offset > current.st_size:
                self.notes.append(f"{self.path}: shorter than the saved position (truncated); reading from its start")
                offset = 0
        handle.seek(offset)
        self._file, self._identity, self._offset, self._pending = handle, identity, offset, b""

    def _find_rotated(self, resume: FilePosition):
        """The saved file under its rotated name in the same directory, opened, or None."""
        directory = self.path.parent
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return None
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (resume.device, resume.inode) and entry.is_file(follow_symlinks=False):
                try:
                    return open(entry.path, "rb", buffering=0)
                except OSError:
                    return None
        return None


class StdinLines(_LineBuffer):
    """Standard input as lines with offsets (no rotation, no resume)."""

    def __init__(self, stream=None) -> None:
        self._stream = stream if stream is not None else sys.stdin.buffer
        self.notes: list[str] = []
        super().__init__()
        self._eof = False
        self.path = Path("-")

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def is_open(self) -> bool:
        return not self._eof

    def position(self, offset: int) -> FilePosition | None:
        return None

    def read(self, timeout: float = 0.0) -> list[Line]:
        if self._eof:
            return []
        try:
            ready, _, _ = select.select([self._stream], [], [], timeout)
        except (OSError, ValueError, TypeError):
            ready = [self._stream]   # not selectable (a test's BytesIO): just read
        if not ready:
            return []
        reader = getattr(self._stream, "read1", self._stream.read)
        data = reader(CHUNK)
        if not data:
            self._eof = True
            if self._pending:
                lines = _lines(self._pending + b"\n", self._offset)
                self._pending = b""
                return lines
            return []
        return self._split(data)

    def check(self) -> str | None:
        return CLOSED if self._eof else None

    def finish(self) -> list[Line]:
        return []

    def switch(self) -> None:
        return None

    def close(self) -> None:
        return None
