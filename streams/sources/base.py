"""What every database-log adapter shares: the line-fed protocol, in-order release, identity.

Why this module exists
----------------------
`exfil-detector ship` follows growing log files and must be able to stop and restart
anywhere without losing or repeating an event. So every adapter is fed one line at a time
with the line's byte position, emits contract events (plain dicts, contract section 1) in
the order their records appear in the input, and tells up to which byte of each input
everything has been emitted (`safe_offset`): the shipper stores that position only once
the events it covers are durable. Records that take several lines, or that wait for a
partner (pgaudit's OBJECT and SESSION lines, the MariaDB slow log), sit in a
`ReleaseQueue` until they and everything before them are finished.

What an adapter must never do
-----------------------------
Log, raise on bad input, or put a statement in a reason or an exception message: SQL
text may hold personal data as literals. A bad record is returned as
`BadRecord(reason, raw)`, where the reason names the problem and only `raw` (which goes
to the dead-letter output alone) carries the text.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson

MAIN = "main"
"""The name of an adapter's primary input (the audit log)."""

NEVER = math.inf
CONTEXT_LIMIT = 10_000       # sessions remembered in a position file


@dataclass(slots=True)
class BadRecord:
    """An input record that is not an event: why (no literal from it), and the original text."""

    reason: str
    raw: str


@dataclass(slots=True)
class Batch:
    """What one call produced: events in input order, and bad records."""

    events: list[dict] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)

    def extend(self, other: "Batch") -> None:
        self.events.extend(other.events)
        self.bad.extend(other.bad)

    def __bool__(self) -> bool:
        return bool(self.events or self.bad)


class Adapter:
    """The protocol every source follows (subclasses implement `_feed`, and as needed `_flush`,
    `_finish`, `_partial_start`, `_held_offsets`).

    * `feed(line, offset, length, input)`: one line without its line break, the byte offset
      of its start and its length in bytes including the line break.
    * `caught_up(input)`: the input has been read to its current end (a join may stop
      waiting for it).
    * `flush()`: end of input or idle: emit everything pending.
    * `safe_offset(input)`: every record before this byte is emitted and none after it is.
    * `start_at(input, offset)`: reading (re)starts at this offset (a restart, or 0 for a
      rotated or truncated file); call it after `flush()`.
    """

    source: str = ""
    inputs: tuple[str, ...] = (MAIN,)

    def __init__(self) -> None:
        self.queue = ReleaseQueue(self._safe_finish)
        self.consumed: dict[str, int] = {name: 0 for name in self.inputs}
        self.latest: dict[str, float] = {name: -NEVER for name in self.inputs}
        self.idle: dict[str, bool] = {name: False for name in self.inputs}
        self._bad: list[BadRecord] = []

    # -- the protocol -----------------------------------------------------------

    def feed(self, line: str, offset: int, length: int, input: str = MAIN) -> Batch:
        self.idle[input] = False
        try:
            self._feed(line, offset, length, input)
        except Exception as exc:  # a record no rule foresaw must not stop the shipper: it is reported
            self.bad(f"record cannot be read ({type(exc).__name__})", line)
        self.consumed[input] = offset + length
        return self._drain()

    def caught_up(self, input: str = MAIN) -> Batch:
        self.idle[input] = True
        self.queue.expire(self.clock())
        return self._drain()

    def flush(self) -> Batch:
        self._flush()
        self.queue.expire(NEVER)
        return self._drain()

    def safe_offset(self, input: str = MAIN) -> int:
        held = [self.consumed[input]]
        partial = self._partial_start(input)
        if partial is not None:
            held.append(partial)
        if input == MAIN and self.queue.slots:
            held.append(self.queue.slots[0].start)
        held.extend(self._held_offsets(input))
        return min(held)

    def start_at(self, input: str, offset: int) -> None:
        self.consumed[input] = offset

    def context(self) -> dict:
        """What the adapter learned from records before the safe offset and needs after it (who
        a session's end user is, a connection's database): saved with the position."""
        identity = getattr(self, "identity", None)
        return {"employees": identity.sessions(CONTEXT_LIMIT)} if identity is not None and identity.enabled else {}

    def restore_context(self, context: dict) -> None:
        identity = getattr(self, "identity", None)
        if identity is not None:
            identity.restore(context.get("employees") or {})

    def pending(self) -> int:
        """Records not yet emitted (for an idle flush decision)."""
        return len(self.queue.slots) + (0 if self._partial_start(MAIN) is None else 1)

    # -- for subclasses -----------------------------------------------------------

    def _feed(self, line: str, offset: int, length: int, input: str) -> None:
        raise NotImplementedError

    def _flush(self) -> None:
        """Finish partial records and close open groups (the queue then expires everything)."""

    def _finish(self, value: Any) -> dict | None:
        """The event a finished slot's value stands for, or None."""
        return value

    def _safe_finish(self, value: Any) -> dict | None:
        try:
            return self._finish(value)
        except Exception as exc:  # a bug must not stop the shipper; the record is reported, not lost silently
            self.bad(f"internal error while building an event ({type(exc).__name__})", type(value).__name__)
            return None

    def _partial_start(self, input: str) -> int | None:
        """Start offset of a record still being assembled from lines, if any."""
        return None

    def _held_offsets(self, input: str) -> list[int]:
        """Start offsets of other records held back (e.g. slow-log entries waiting to join)."""
        return []

    def bad(self, reason: str, raw: str) -> None:
        self._bad.append(BadRecord(reason, raw))

    def see_time(self, input: str, epoch_s: float) -> None:
        if epoch_s > self.latest[input]:
            self.latest[input] = epoch_s

    def clock(self) -> float:
        """Input time: the slowest input that may still have data to read (one that never
        showed a time holds the clock back); when every input is idle, the newest."""
        if len(self.inputs) == 1:
            return self.latest[MAIN]
        busy = [t for name, t in self.latest.items() if not self.idle[name]]
        if busy:
            return min(busy)
        return max(self.latest.values())

    def _drain(self) -> Batch:
        slots = self.queue.slots
        if slots and slots[0].ready:
            limit = self._partial_start(MAIN)
            events = self.queue.release(NEVER if limit is None else limit)
        else:
            events = []
        bad = self._bad
        if bad:
            self._bad = []
        else:
            bad = []
        return Batch(events, bad)

    def expire(self) -> None:
        self.queue.expire(self.clock())


class Slot:
    """One record's place in the input order: its bytes span [start, end)."""

    __slots__ = ("start", "end", "value", "ready", "expires")

    def __init__(self, start: int, end: int, value: Any, ready: bool, expires: float) -> None:
        self.start, self.end, self.value, self.ready, self.expires = start, end, value, ready, expires


class ReleaseQueue:
    """Records in input order; a record is released once it and everything before it is finished.

    A record may absorb later lines (an OBJECT line's SESSION twin, a query's slow-log
    partner), so its bytes can overlap another record's. Released records must never own a
    byte after the safe offset (a restart would repeat them), so a run of finished records
    is released only up to a point where no released byte lies beyond the next held one.
    """

    def __init__(self, finish: Callable[[Any], dict | None]) -> None:
        self.slots: deque[Slot] = deque()
        self._finish = finish

    def add(self, start: int, end: int, value: Any, ready: bool = True, expires: float = NEVER) -> Slot:
        slot = Slot(start, end, value, ready, expires)
        self.slots.append(slot)
        return slot

    def expire(self, clock: float) -> None:
        """Mark waiting records whose deadline (input time) has passed as finished, head first."""
        for slot in self.slots:
            if slot.ready:
                continue
            if slot.expires > clock:
                return
            slot.ready = True

    def release(self, limit: float) -> list[dict]:
        """Events of the releasable finished head; `limit` is where unqueued partial input starts."""
        slots = self.slots
        if not slots or not slots[0].ready:
            return []
        cut, count, max_end = 0, 0, -1
        for slot in slots:
            if count and max_end <= slot.start:
                cut = count
            if not slot.ready:
                break
            max_end = max(max_end, slot.end)
            count += 1
        else:
            if max_end <= limit:
                cut = count
        out: list[dict] = []
        finish = self._finish
        for _ in range(cut):
            event = finish(slots.popleft().value)
            if event is not None:
                out.append(event)
        return out


# -- identity ---------------------------------------------------------------------

class IdentityRule:
    """Finds the person behind a shared account, so that `employee_id` can be set.

    The pattern (a regex with a named group `employee`) is tried on the application name,
    then on the session variables the session set (`SET ...` statements, remembered per
    session). No match leaves `employee_id` absent: the detector then resolves the
    database account through the directory.
    """

    def __init__(self, pattern: str | None) -> None:
        try:
            self._regex = re.compile(pattern) if pattern else None
        except re.error as exc:
            raise ValueError(f"the identity pattern is not a valid regular expression: {exc}") from None
        if self._regex is not None and "employee" not in self._regex.groupindex:
            raise ValueError("the identity pattern needs a named group (?P<employee>...)")
        self._by_text: dict[str, str | None] = {}
        self._by_session: dict[str, str] = {}

    @property
    def enabled(self) -> bool:
        return self._regex is not None

    def match(self, text: str | None) -> str | None:
        if self._regex is None or not text:
            return None
        found = self._by_text.get(text, "")
        if found == "":
            if len(self._by_text) > 50_000:
                self._by_text.clear()
            m = self._regex.search(text)
            found = self._by_text[text] = (m.group("employee") or None) if m else None
        return found

    def observe_set(self, session: str | None, statement: str) -> None:
        """A SET statement: remember the person it names for the rest of the session."""
        if self._regex is None or session is None:
            return
        m = self._regex.search(statement)
        if m and m.group("employee"):
            self._by_session.pop(session, None)
            self._by_session[session] = m.group("employee")
            if len(self._by_session) > 100_000:      # sessions are never told to end: keep the newest
                del self._by_session[next(iter(self._by_session))]

    def employee(self, session: str | None, application: str | None) -> str | None:
        if self._regex is None:
            return None
        return self.match(application) or (self._by_session.get(session) if session is not None else None)

    def sessions(self, limit: int) -> dict[str, str]:
        """The newest `limit` sessions' end users (for the position file)."""
        items = list(self._by_session.items())[-limit:]
        return dict(items)

    def restore(self, sessions: dict) -> None:
        for session, employee in sessions.items():
            if isinstance(session, str) and isinstance(employee, str):
                self._by_session[session] = employee


SET_STATEMENT = re.compile(r"\s*set\s", re.I)


# -- shared helpers -------------------------------------------------------------------

def make_event(ts: str, db_user: str, action: str, source: str, **fields: Any) -> dict:
    """A contract event; optional fields that are None are left out, `rows` is always present."""
    event = {"ts": ts, "db_user": db_user, "action": action}
    for name, value in fields.items():
        if value is not None and value != ():
            event[name] = value
    event.setdefault("rows", None)
    event["source"] = source
    return event


_LEAD_WORD = re.compile(r"\s*(?:(?:--[^\n]*\n|/\*.*?\*/)\s*)*\(*\s*([A-Za-z]+)", re.S)
_OUTFILE = re.compile(r"\binto\s+(?:out|dump)file\b", re.I)
_STATEMENT_ACTIONS = {
    "select": "SELECT", "with": "SELECT", "table": "SELECT", "values": "SELECT", "show": "OTHER",
    "insert": "INSERT", "replace": "INSERT", "load": "INSERT", "merge": "UPDATE", "upsert": "INSERT",
    "update": "UPDATE", "delete": "DELETE", "truncate": "DELETE", "copy": "COPY",
    "create": "DDL", "alter": "DDL", "drop": "DDL", "rename": "DDL", "grant": "DDL", "revoke": "DDL",
    "comment": "DDL",
}


def action_of_statement(statement: str | None) -> str:
    """The contract action a statement's leading keyword implies (OUTFILE dumps are EXPORT)."""
    if not statement:
        return "OTHER"
    m = _LEAD_WORD.match(statement)
    action = _STATEMENT_ACTIONS.get(m.group(1).lower(), "OTHER") if m else "OTHER"
    if action == "SELECT" and "into" in statement.lower() and _OUTFILE.search(statement):
        return "EXPORT"
    return action


_ZONES: dict[str, Any] = {}


def zone(name: str):
    """A tzinfo for an IANA name; ValueError names the bad setting."""
    found = _ZONES.get(name)
    if found is None:
        if name.upper() in ("UTC", "Z", "GMT"):
            found = timezone.utc
        else:
            try:
                found = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {name!r} (use an IANA name such as UTC or Asia/Shanghai)") from None
        _ZONES[name] = found
    return found


def iso_utc(epoch_s: float) -> str:
    """Epoch seconds to RFC 3339 UTC with milliseconds."""
    moment = datetime.fromtimestamp(epoch_s, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_local(date_part: str, time_part: str, fraction: str, tz) -> tuple[str, float]:
    """'2026-11-28', '15:09:34', '.539' in zone `tz` -> (RFC 3339 string, epoch seconds)."""
    millis = (fraction + "000")[1:4] if fraction else "000"
    moment = datetime.fromisoformat(f"{date_part}T{time_part}.{millis}").replace(tzinfo=tz)
    text = moment.isoformat(timespec="milliseconds")
    return (text[:-6] + "Z" if text.endswith("+00:00") else text), moment.timestamp()


_OFFSET_ZONE = re.compile(r"[+-]\d\d(?::?\d\d)?$")


class Clock:
    """Converts a server's timestamps to RFC 3339, caching the conversion per second."""

    def __init__(self, default_zone: str = "UTC") -> None:
        self._tz = zone(default_zone)
        self._cache: dict[tuple[str, str], tuple[str, float]] = {}

    def local(self, date_part: str, time_part: str, fraction: str = "", zone_name: str = "") -> tuple[str, float]:
        """A wall-clock reading (optionally with a zone abbreviation or numeric offset)."""
        key = (date_part + " " + time_part, zone_name)
        base = self._cache.get(key)
        if base is None:
            base = self._cache[key] = self._convert(date_part, time_part, zone_name)
            if len(self._cache) > 10_000:
                self._cache.clear()
                self._cache[key] = base
        text, epoch = base
        if fraction and fraction != ".000":
            millis = (fraction + "000")[1:4]
            text = text[:20] + millis + text[23:]
            epoch += int(millis) / 1000
        return text, epoch

    def _convert(self, date_part: str, time_part: str, zone_name: str) -> tuple[str, float]:
        if not zone_name or zone_name.upper() in ("UTC", "GMT", "Z", "UCT"):
            tz = self._tz if not zone_name else timezone.utc
        elif _OFFSET_ZONE.match(zone_name):
            digits = zone_name.replace(":", "")
            hours, minutes = int(digits[1:3]), int(digits[3:5] or 0)
            sign = -1 if digits[0] == "-" else 1
            tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        else:
            tz = self._tz   # an abbreviation (CST, EET ...): ambiguous, read in the configured zone
        return iso_local(date_part, time_part, "", tz)


# -- JSON documents that span lines --------------------------------------------------

_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[{}]')


class JsonDocuments:
    """Reassembles JSON objects from lines: one per line (JSONL) or pretty-printed over many,
    bare or inside a top-level array (`[`, `,` and `]` between objects are skipped)."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._depth = 0
        self.start: int | None = None   # offset of the line where the open object began

    def feed(self, line: str, offset: int, length: int) -> tuple[list[tuple[str, int, Any]], str | None]:
        """(complete objects as (text, start offset, parsed value or None), a reason if the line
        held junk). A whole object on one line is parsed here already (the common case)."""
        if self._depth == 0:
            text = line.strip().lstrip("[").strip().rstrip(",]").strip()
            if not text:
                return [], None
            if text[0] == "{" and text[-1] == "}":
                try:
                    return [(text, offset, orjson.loads(text))], None
                except orjson.JSONDecodeError:
                    pass    # several objects on the line, or junk: tokenise below
        docs: list[tuple[str, int, Any]] = []
        junk = None
        begin = 0
        for m in _JSON_TOKENS.finditer(line):
            token = m.group()
            if token == "{":
                if self._depth == 0:
                    gap = line[begin:m.start()].strip().strip("[],").strip()
                    if gap:
                        junk = "text outside a JSON object"
                    self.start, begin = offset, m.start()
                self._depth += 1
            elif token == "}" and self._depth > 0:
                self._depth -= 1
                if self._depth == 0:
                    self._parts.append(line[begin:m.end()])
                    docs.append(("\n".join(self._parts), self.start if self.start is not None else offset, None))
                    self._parts, self.start, begin = [], None, m.end()
        if self._depth > 0:
            self._parts.append(line[begin:])
        elif line[begin:].strip().strip("[],").strip():
            junk = "text outside a JSON object"
        return docs, junk

    def flush(self) -> str | None:
        """An object left open at the end of input (its text), if any."""
        if self._depth == 0:
            return None
        text = "\n".join(self._parts)
        self._parts, self._depth, self.start = [], 0, None
        return text


class JsonDocumentAdapter(Adapter):
    """An adapter whose input is a stream of JSON documents (pretty-printed or one per line),
    where records of one statement are grouped in slots until the group is complete."""

    kind = "input"          # how bad-record reasons name the input

    def __init__(self) -> None:
        super().__init__()
        self._documents = JsonDocuments()
        self._open: dict = {}

    def _feed(self, line: str, offset: int, length: int, input: str) -> None:
        docs, junk = self._documents.feed(line, offset, length)
        if junk:
            self.bad(f"{self.kind} line has {junk}", line)
        for text, start, parsed in docs:
            self._document(text, start, offset + length, parsed)

    def _flush(self) -> None:
        left = self._documents.flush()
        if left is not None:
            self.bad(f"{self.kind} ends inside a JSON object", left)
        for slot in self._open.values():
            slot.ready = True
        self._open.clear()

    def _partial_start(self, input: str) -> int | None:
        return self._documents.start

    def _document(self, text: str, start: int, end: int, parsed=None) -> None:
        raise NotImplementedError
