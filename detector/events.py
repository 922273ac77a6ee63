"""The contract's access event: decode and validate, or reject with a reason.

Validation happens once, here, at the boundary; everything after it trusts an
`AccessEvent`. A rejection never raises out of `decode_event`: bad input is data
(a `Rejection` naming the problem), routed to the dead-letter output by the caller.

Two paths, one contract: msgspec decodes a valid event and checks its types in C,
straight into an `AccessEvent` (the hot path of every replay and of the service);
anything it refuses is decoded again with orjson and checked field by field in
Python, which finds the first problem and names it. The msgspec types are exactly
as strict as those checks (integers within 64 bits, no bool for a number), so both
paths accept the same events.
This module must never log or return a statement literal except inside the
event itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Annotated

import msgspec
import orjson

MAX_EVENT_BYTES = 1024 * 1024
ACTIONS = frozenset(
    {"SELECT", "INSERT", "UPDATE", "DELETE", "COPY", "EXPORT", "DDL", "LOGIN", "LOGIN_FAILED", "OTHER"}
)
_OPTIONAL_STRINGS = ("employee_id", "client_addr", "application", "database", "statement", "session_id", "source")
_COUNTS = ("rows", "bytes")


_Count = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]       # orjson reads a larger number as a float
_Epoch = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class AccessEvent(msgspec.Struct, gc=False):
    """One validated database access event. `ts_ms` is epoch milliseconds, UTC.

    A msgspec Struct, so that JSON is decoded and type-checked into it in one step in C;
    `__post_init__` does the rest of the contract (the timestamp, the action's case).
    Built only by `decode_event` and `event_from_mapping`, which validate first."""

    ts_ms: _Epoch | str = msgspec.field(name="ts")    # as written in JSON; epoch ms after __post_init__
    db_user: Annotated[str, msgspec.Meta(min_length=1)]
    action: str
    employee_id: str | None = None
    client_addr: str | None = None
    application: str | None = None
    database: str | None = None
    objects: tuple[str, ...] | None = None
    columns: tuple[str, ...] | None = None
    rows: _Count | None = None
    bytes: _Count | None = None
    statement: str | None = None
    success: bool | None = True
    session_id: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        if type(self.ts_ms) is not int:
            self.ts_ms = parse_ts(self.ts_ms)
        if self.action not in ACTIONS:
            action = self.action.upper()
            if action not in ACTIONS:
                raise _Invalid("unknown action")      # `decode_event` then names it on the slow path
            self.action = action
        if self.success is None:
            self.success = True


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why an input record is not an event; `raw` is kept byte-for-byte for the dead letter."""

    reason: str
    raw: bytes


class _Invalid(ValueError):
    pass


_DECODER = msgspec.json.Decoder(AccessEvent)


def decode_event(raw: bytes | str) -> AccessEvent | Rejection:
    """Decode one JSON event; bad input becomes a `Rejection`, never an exception."""
    data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw
    if len(data) > MAX_EVENT_BYTES:
        return Rejection(f"event is {len(data)} bytes, larger than the 1 MiB limit", data)
    try:
        return _DECODER.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return decode_checking_each_field(data)


def decode_checking_each_field(data: bytes) -> AccessEvent | Rejection:
    """The slow path of `decode_event`: orjson, then one check after another, to name the problem."""
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return Rejection(_json_reason(data, exc), data)
    if not isinstance(obj, dict):
        return Rejection(f"event is a JSON {type(obj).__name__}, not an object", data)
    try:
        return event_from_mapping(obj)
    except _Invalid as exc:
        return Rejection(str(exc), data)


def event_from_mapping(obj: dict) -> AccessEvent:
    """Validate an already-decoded mapping (used by adapters and the simulator).

    Almost every event is valid, so one cheap pass checks the types of all plain
    fields at once; only an event that fails it goes through `_checked_fields`,
    which finds the first problem and names it (the same checks, one at a time)."""
    get = obj.get
    action, db_user = get("action"), get("db_user")
    employee_id, client_addr, application, database, statement, session_id, source = (
        get("employee_id"), get("client_addr"), get("application"), get("database"), get("statement"),
        get("session_id"), get("source"))
    rows, size, success = get("rows"), get("bytes"), get("success", True)
    if not (type(action) is str and (action in ACTIONS or action.upper() in ACTIONS)
            and type(db_user) is str and db_user
            and (employee_id is None or type(employee_id) is str) and (client_addr is None or type(client_addr) is str)
            and (application is None or type(application) is str) and (database is None or type(database) is str)
            and (statement is None or type(statement) is str) and (session_id is None or type(session_id) is str)
            and (source is None or type(source) is str)
            and (rows is None or (type(rows) is int and rows >= 0))
            and (size is None or (type(size) is int and size >= 0))
            and (success is True or success is False or success is None)):
        _checked_fields(obj)     # raises, naming the problem
    objects, columns = get("objects"), get("columns")
    return AccessEvent(parse_ts(get("ts")), db_user, action if action in ACTIONS else action.upper(), employee_id,
                       client_addr, application, database,
                       None if objects is None else _string_list(obj, "objects"),
                       None if columns is None else _string_list(obj, "columns"),
                       rows, size, statement, True if success is None else success, session_id, source)


def _checked_fields(obj: dict) -> None:
    """Raise `_Invalid` for the first field, in contract order, that breaks the contract."""
    get = obj.get
    action = get("action")
    if type(action) is not str or action.upper() not in ACTIONS:
        action = _required_str(obj, "action").upper()
        raise _Invalid(f"field 'action' has unknown value {action[:40]!r}; expected one of {', '.join(sorted(ACTIONS))}")
    db_user = get("db_user")
    if type(db_user) is not str or not db_user:
        _required_str(obj, "db_user")
    for name in _OPTIONAL_STRINGS:
        value = get(name)
        if value is not None and type(value) is not str:
            raise _Invalid(f"field '{name}' must be a string, got {_type_name(value)}")
    for name in _COUNTS:
        value = get(name)
        if value is not None and (type(value) is not int or value < 0):
            if type(value) is not int:
                raise _Invalid(f"field '{name}' must be an integer, got {_type_name(value)}")
            raise _Invalid(f"field '{name}' must be >= 0, got {value}")
    success = get("success", True)
    if success is not None and type(success) is not bool:
        raise _Invalid(f"field 'success' must be a boolean, got {_type_name(success)}")


_HOUR_BASES: dict[str, int] = {}
_MINUTE_BASES: dict[str, int] = {}


def parse_ts(value: object) -> int:
    """RFC 3339 with an offset, or epoch milliseconds, to epoch milliseconds.

    The common shape `YYYY-MM-DDTHH:MM:SS.mmm+HH:MM` (or `Z`) takes a fast path:
    the epoch of its date, hour and offset is cached, minutes and seconds added.
    Each minute so validated is cached too (events come in time order, so most
    share their minute with the previous one): then only `SSmmm` is left to read."""
    if type(value) is str and len(value) in (24, 29) and value[19] == "." and value[13] == ":" and value[16] == ":":
        zone = value[23:]
        minute_key = value[:16] + zone
        minute_base = _MINUTE_BASES.get(minute_key)
        if minute_base is not None:
            digits = value[17:19] + value[20:23]
            if digits.isdigit() and digits.isascii() and digits[0] < "6":
                return minute_base + int(digits)      # "SSmmm" is the milliseconds into the minute
        key = value[:13] + zone
        base = _HOUR_BASES.get(key)
        if base is None and len(_HOUR_BASES) < 100_000:
            base = _HOUR_BASES[key] = _parse_ts_slow(value[:13] + ":00:00" + zone)
        digits = value[14:16] + value[17:19] + value[20:23]
        if base is not None and digits.isdigit() and digits.isascii():
            minutes, seconds, millis = int(digits[:2]), int(digits[2:4]), int(digits[4:])
            if minutes < 60 and seconds < 60:
                if len(_MINUTE_BASES) >= 100_000:
                    _MINUTE_BASES.clear()
                _MINUTE_BASES[minute_key] = base + minutes * 60_000
                return base + (minutes * 60 + seconds) * 1000 + millis
    return _parse_ts_slow(value)


def _parse_ts_slow(value: object) -> int:
    if value is None:
        raise _Invalid("required field 'ts' is missing")
    if type(value) is int:
        return value
    if not isinstance(value, str):
        raise _Invalid(f"field 'ts' must be an RFC 3339 string or epoch milliseconds, got {_type_name(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"field 'ts' is not an RFC 3339 timestamp: {value[:40]!r}") from None
    if moment.tzinfo is None:
        raise _Invalid(f"field 'ts' has no UTC offset: {value[:40]!r}")
    return int(moment.timestamp() * 1000)


def format_ts(ts_ms: int) -> str:
    """Epoch milliseconds to RFC 3339 in UTC, millisecond precision."""
    moment = datetime.fromtimestamp(ts_ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _required_str(obj: dict, name: str) -> str:
    value = obj.get(name)
    if value is None:
        raise _Invalid(f"required field '{name}' is missing")
    if not isinstance(value, str) or not value:
        raise _Invalid(f"field '{name}' must be a non-empty string, got {_type_name(value)}")
    return value


def _string_list(obj: dict, name: str) -> tuple[str, ...] | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _Invalid(f"field '{name}' must be an array of strings")
    return tuple(value)


def _json_reason(data: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        return f"event is not valid UTF-8 (byte {err.start})"
    return f"event is not valid JSON: {exc.msg} at position {exc.pos}"


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__
