"""`exfil-detector ship`: follow a database audit log and ship contract events.

Why this module exists
----------------------
It moves bytes only: lines from the followed file(s) go to the format's adapter
(streams/sources), the events it emits go to a JSONL file or a Kafka topic (keyed by
employee id when known, else by database account), bad records go to a dead-letter JSONL
file with their reason. Nothing ever stops on a bad line.

Durability, in this order, at each commit: the events are made durable (the output file
flushed and fsynced, or every record acknowledged by the broker), then the dead letters,
and only then is the position written (temp file, fsync, rename): for each input, its
file (device + inode) and the adapter's safe offset, with what the adapter must remember
across a restart (a session's end user, a connection's database). A restart resumes there: nothing is
lost, and with a JSONL output nothing is repeated either (the output is cut back to the
size recorded with the position, so events written after the last commit are written
again exactly once). With Kafka a crash between the broker's acknowledgement and the
position write can repeat those records (at least once).

It never logs an event or a statement.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from streams.sources import MAIN, Adapter, Batch, SourceSettings, make_adapter
from streams.tail import CLOSED, ROTATED, FilePosition, FollowedFile, Line, StdinLines

POSITION_VERSION = 1


class ShipError(RuntimeError):
    """A problem that stops shipping (bad position file, unwritable output, broker down)."""


@dataclass
class ShipOptions:
    format: str
    path: str                                  # a file, or "-" for standard input
    output: Path | None = None
    kafka: object | None = None                # streams.config.KafkaConfig when producing to Kafka
    topic: str | None = None
    slow_log: Path | None = None
    position: Path | None = None
    dead_letter: Path | None = None
    follow: bool = False
    source: SourceSettings = field(default_factory=SourceSettings)
    poll_interval_s: float = 0.2
    idle_flush_s: float = 2.0
    commit_interval_s: float = 1.0
    commit_events: int = 20_000
    retry_limit: int = 3                       # delivery attempts before giving up (without --follow)

    def resolved_position(self) -> Path | None:
        """The position file: as given, else beside the output, else in the working directory."""
        if self.path == "-":
            return None
        if self.position is not None:
            return self.position
        if self.output is not None:
            return self.output.with_name(self.output.name + ".position.json")
        return Path(f"exfil-ship-{Path(self.path).name}.position.json")

    def resolved_dead_letter(self) -> Path:
        if self.dead_letter is not None:
            return self.dead_letter
        position = self.resolved_position()
        if position is not None:
            stem = position.name.removesuffix(".json").removesuffix(".position")
            return position.with_name(stem + ".dead-letter.jsonl")
        if self.output is not None:
            return self.output.with_name(self.output.name + ".dead-letter.jsonl")
        return Path("exfil-ship-stdin.dead-letter.jsonl")


@dataclass
class ShipReport:
    events: int = 0
    bad: int = 0
    commits: int = 0
    notes: list[str] = field(default_factory=list)


# -- outputs ------------------------------------------------------------------------

class JsonlOutput:
    """Events as JSON lines, fsynced at each commit; `size` is what is durable."""

    def __init__(self, path: Path, durable_size: int | None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("ab")
        if durable_size is not None and 0 <= durable_size < self._file.seek(0, os.SEEK_END):
            self._file.truncate(durable_size)   # written after the last commit: written again below
            self._file.seek(durable_size)
        self.size = self._file.tell()

    def write(self, records: list[dict]) -> None:
        if records:
            self._file.write(b"".join(orjson.dumps(r) + b"\n" for r in records))

    def commit(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self.size = self._file.tell()

    def deliver(self, events: list[dict]) -> None:
        """Written and fsynced when this returns."""
        self.write(events)
        self.commit()

    def close(self) -> None:
        self._file.close()


class KafkaOutput:
    """Events produced to a topic, keyed by employee id (else account); committed = acknowledged."""

    def __init__(self, config, topic: str) -> None:
        from streams.kafka import make_producer

        self.topic = topic
        self._producer = make_producer(config)

    def deliver(self, events: list[dict]) -> None:
        """Acknowledged by the broker (acks=all) when this returns; SinkError otherwise."""
        from streams.kafka import produce_and_wait

        topic = self.topic
        produce_and_wait(self._producer, f"events topic {self.topic}",
                         [(topic, (e.get("employee_id") or e["db_user"]).encode(), orjson.dumps(e), None)
                          for e in events])

    def close(self) -> None:
        self._producer.close(timeout=5)


class DeadLetterOutput:
    """Bad records: `reason` (a sentence, no literal), `raw` (the original text), `source`.

    The file is created on the first bad record only."""

    def __init__(self, path: Path, durable_size: int | None, sources: dict[str, str]) -> None:
        self.path, self.sources, self.count = path, sources, 0
        self._durable_size = durable_size
        self._file: JsonlOutput | None = None
        if path.exists() and durable_size is not None and path.stat().st_size > durable_size:
            self._open()
        self.size = path.stat().st_size if path.exists() else 0

    def add(self, bad: list, input_name: str) -> None:
        if bad:
            self.count += len(bad)
            where = self.sources.get(input_name, input_name)
            self._open().write([{"reason": b.reason, "raw": b.raw, "source": where} for b in bad])

    def commit(self) -> None:
        if self._file is not None:
            self._file.commit()
            self.size = self._file.size

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def _open(self) -> JsonlOutput:
        if self._file is None:
            self._file = JsonlOutput(self.path, self._durable_size)
        return self._file


# -- the position file ---------------------------------------------------------------

def load_position(path: Path | None) -> dict | None:
    if path is None or not path.exists():
        return None
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ShipError(f"position file {path} cannot be read ({exc}); move it away to start over") from None
    if not isinstance(data, dict) or data.get("version") != POSITION_VERSION or not isinstance(data.get("inputs"), dict):
        raise ShipError(f"position file {path} is not a version {POSITION_VERSION} position; move it away to start over")
    return data


def save_position(path: Path, data: dict) -> None:
    """Write temp, fsync, rename, fsync the directory: the old or the new position, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(path.name + ".tmp")
    with temp.open("wb") as handle:
        handle.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- the shipper -------------------------------------------------------------------

class Shipper:
    """Reads the input(s), feeds the adapter, delivers events and commits positions."""

    def __init__(self, options: ShipOptions, stop: threading.Event | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        self.options = options
        self.stop = stop or threading.Event()
        self.warn = warn or (lambda text: print(text, file=sys.stderr))
        self.report = ShipReport()
        self.adapter: Adapter = make_adapter(options.format, options.source)
        if options.slow_log is not None and "slow" not in self.adapter.inputs:
            raise ShipError(f"--slow-log applies to mariadb-audit only, not {options.format}")
        self._position_path = options.resolved_position()
        saved = load_position(self._position_path)
        if saved is not None and saved.get("format") != options.format:
            raise ShipError(f"position file {self._position_path} was written for format {saved.get('format')}, "
                            f"not {options.format}; use another --position")
        if saved is not None:
            self.adapter.restore_context(saved.get("context") or {})
        self.inputs: dict[str, FollowedFile | StdinLines] = self._open_inputs(saved)
        dead_path = options.resolved_dead_letter()
        sources = {MAIN: options.path, "slow": str(options.slow_log)}
        self.dead = DeadLetterOutput(dead_path, saved.get("dead_letter_bytes") if saved else None, sources)
        self.output = self._open_output(saved)
        self._events: list[dict] = []          # emitted, not yet committed
        self._dirty = False

    # -- setup ---------------------------------------------------------------------

    def _open_inputs(self, saved: dict | None) -> dict:
        options, inputs = self.options, {}
        paths = {MAIN: options.path}
        if "slow" in self.adapter.inputs and options.slow_log is not None:
            paths["slow"] = str(options.slow_log)
        for name, path in paths.items():
            if path == "-":
                inputs[name] = StdinLines()
                continue
            resume = None
            if saved is not None and name in saved["inputs"]:
                try:
                    resume = FilePosition.from_dict(saved["inputs"][name])
                except (KeyError, TypeError, ValueError):
                    raise ShipError(f"position file {self._position_path} has a malformed entry for {name}; "
                                    f"move it away to start over") from None
                if os.path.abspath(resume.path) != os.path.abspath(path):
                    raise ShipError(f"position file {self._position_path} is for {resume.path}, not {path}; "
                                    f"use another --position")
            if not options.follow and not Path(path).exists() and resume is None:
                raise FileNotFoundError(2, "No such file or directory", path)
            source = FollowedFile(path, resume)
            self.adapter.start_at(name, source.offset)
            for note in source.notes:
                self._note(note)
            inputs[name] = source
        for name in self.adapter.inputs:
            if name not in inputs:
                self.adapter.caught_up(name)   # e.g. no slow log: never wait for it
        return inputs

    def _open_output(self, saved: dict | None):
        options = self.options
        if options.output is not None:
            return JsonlOutput(options.output, saved.get("output_bytes") if saved else None)
        if options.kafka is None or not options.topic:
            raise ShipError("an output is required: --output FILE, or --bootstrap-servers and --topic")
        return KafkaOutput(options.kafka, options.topic)

    # -- the loop ------------------------------------------------------------------

    def run(self) -> ShipReport:
        """Ship until the input ends (no --follow), standard input closes, or `stop` is set."""
        options = self.options
        reads_stdin = any(isinstance(s, StdinLines) for s in self.inputs.values())
        last_data = last_commit = time.monotonic()
        try:
            while True:
                fed, closed = self._round()
                now = time.monotonic()
                if fed:
                    last_data = now
                if self.stop.is_set():
                    break                                   # pending records are re-read after a restart
                if closed or (not fed and not options.follow and not reads_stdin):
                    self._take(self.adapter.flush(), MAIN)  # the end of the input
                    break
                if fed:
                    if len(self._events) >= options.commit_events or now - last_commit >= options.commit_interval_s:
                        self._commit()
                        last_commit = now
                    continue
                if self.adapter.pending() and now - last_data >= options.idle_flush_s:
                    self._take(self.adapter.flush(), MAIN)
                if self._dirty:
                    self._commit()
                    last_commit = now
                self.stop.wait(options.poll_interval_s)
            self._commit()
        finally:
            self._close()
        return self.report

    def _round(self) -> tuple[int, bool]:
        """One chunk from each input; at an input's end, rotation and truncation are handled."""
        fed, closed = 0, True
        for name, source in self.inputs.items():
            lines = source.read()
            self._feed(name, lines)
            fed += len(lines)
            if lines:
                closed = False
                continue
            self._take(self.adapter.caught_up(name), name)
            change = source.check()
            if change == CLOSED:
                continue
            closed = False
            if change is not None:
                self._new_file(name, source, change)
                fed += 1          # the new file may already hold lines: read it before stopping
        return fed, closed and all(isinstance(s, StdinLines) for s in self.inputs.values())

    def _feed(self, name: str, lines: list[Line]) -> None:
        feed = self.adapter.feed
        for line in lines:
            batch = feed(line.text, line.offset, line.length, name)
            if batch.events or batch.bad:
                self._take(batch, name)
        if lines:
            self._dirty = True

    def _new_file(self, name: str, source: FollowedFile, change: str) -> None:
        """Finish the old file (rotated) or the old contents (truncated), commit, start at 0."""
        if change == ROTATED:
            self._feed(name, source.finish())
        self._take(self.adapter.flush(), name)
        self._commit()
        self._note(f"{source.path}: {change}; reading the new file from its start")
        source.switch()
        self.adapter.start_at(name, 0)
        self._dirty = True

    def _take(self, batch: Batch, name: str) -> None:
        if batch.events:
            self._events.extend(batch.events)
            self._dirty = True
        if batch.bad:
            self.dead.add(batch.bad, name)
            self.report.bad += len(batch.bad)
            self._dirty = True

    # -- commit ------------------------------------------------------------------------

    def _commit(self) -> None:
        """Events durable, then dead letters, then the position: in that order."""
        events, attempt = self._events, 0
        while True:
            try:
                self.output.deliver(events)
                break
            except Exception as exc:   # broker down, disk full: hold the position, retry or stop
                attempt += 1
                retry = isinstance(self.output, KafkaOutput) and not self.stop.is_set() and (
                    self.options.follow or attempt < self.options.retry_limit)
                if not retry:
                    raise ShipError(f"cannot deliver events: {exc}") from None
                self.warn(f"exfil-detector ship: delivery failed ({exc}); retrying")
                self.stop.wait(min(30.0, 0.5 * 2 ** attempt))
        self.report.events += len(events)
        self._events = []
        self.dead.commit()
        if self._position_path is not None:
            save_position(self._position_path, self._position_record())
        self.report.commits += 1
        self._dirty = False

    def _position_record(self) -> dict:
        inputs = {}
        for name, source in self.inputs.items():
            position = source.position(self.adapter.safe_offset(name))
            if position is not None:
                inputs[name] = position.to_dict()
        record = {"version": POSITION_VERSION, "format": self.options.format, "inputs": inputs,
                  "dead_letter_bytes": self.dead.size, "context": self.adapter.context()}
        if isinstance(self.output, JsonlOutput):
            record["output_bytes"] = self.output.size
        return record

    def _note(self, text: str) -> None:
        self.report.notes.append(text)
        self.warn(f"exfil-detector ship: {text}")

    def _close(self) -> None:
        for source in self.inputs.values():
            source.close()
        for closing in (self.output.close, self.dead.close):
            try:
                closing()
            except Exception:  # closing after a failure must not hide it
                pass
