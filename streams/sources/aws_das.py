"""AWS RDS / Aurora Database Activity Streams, already decrypted -> contract events.

Why this module exists
----------------------
Database Activity Streams deliver, through Kinesis, encrypted batches whose decrypted
form is a JSON object with a `databaseActivityEventList` array (inside
`databaseActivityEvents`, as an object or as a JSON string). The decryption (KMS) is the
consumer's job; this adapter reads the decrypted documents, one per line or
pretty-printed, and turns each activity record into events:

* Aurora PostgreSQL records are pgaudit's (class READ/WRITE/DDL/..., `command`,
  `objectName`, `rowCount`, `statementId`/`substatementId`): the records of one
  (sub)statement are one event, relations merged, and the same row rules as pgaudit
  (rows 0 for COPY, FETCH and utilities are unknown; so are writes, whose `rowCount`
  AWS documents as always 0); `paramList` is written into the `$n` placeholders;
* Aurora MySQL writes a MAIN record (the statement, `rowCount` for DML) and AUX records
  (the tables), in any order, with the same `statementId`: merged into one event;
* CONNECT is LOGIN; a failed connect (FAILED_CONNECT, or an error on CONNECT) is
  LOGIN_FAILED; DISCONNECT and heartbeats are not events.

A record whose `errorMessage` is set, or whose MySQL `exitCode` is non-zero, failed.
Times are `logTime` (the end of the statement), UTC. Nothing here logs or raises on a
record; a statement never appears in a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from streams.sources.base import (MAIN, Clock, IdentityRule, JsonDocumentAdapter, SET_STATEMENT,
                                  action_of_statement, make_event)
from streams.sources.pgaudit import (PLACEHOLDERS, RELATION_TYPES, TRANSACTION_CONTROL, inline_parameters, pg_action,
                                     pg_rows, qualify)

SOURCE = "aws_das"
_OFFSET = re.compile(r"([+-])(\d\d):?(\d\d)?")
MYSQL_TRANSACTION = frozenset({"BEGIN", "COMMIT", "ROLLBACK", "START", "SAVEPOINT", "RELEASE", "XA"})


class _Group:
    """The records of one statement in one session."""

    __slots__ = ("main", "objects", "rows", "key", "mysql", "failed")

    def __init__(self, key: tuple, mysql: bool) -> None:
        self.main: dict | None = None
        self.objects: list[str] = []
        self.rows: int | None = None
        self.key, self.mysql, self.failed = key, mysql, False


@dataclass(frozen=True)
class AwsDasSettings:
    identity_pattern: str | None = None
    group_window_s: float = 2.0
    logins: bool = True
    inline_parameters: bool = True


class AwsDasAdapter(JsonDocumentAdapter):
    """Decrypted Database Activity Stream documents -> contract events."""

    kind = "activity stream"
    source = SOURCE

    def __init__(self, settings: AwsDasSettings | None = None) -> None:
        super().__init__()
        self.settings = settings = settings or AwsDasSettings()
        self.identity = IdentityRule(settings.identity_pattern)

    def _finish(self, value) -> dict | None:
        if value is None or type(value) is dict:
            return value
        return self._group_event(value)

    # -- documents -------------------------------------------------------------------

    def _document(self, text: str, start: int, end: int, document=None) -> None:
        try:
            records = activity_records(orjson.loads(text) if document is None else document)
        except orjson.JSONDecodeError:
            self.bad("activity stream document is not valid JSON", text)
            return
        except ValueError as exc:   # the reason names the shape problem, never the content
            self.bad(str(exc), text)
            return
        for record in records:
            try:
                self._record(record, start, end)
            except (ValueError, TypeError, AttributeError, KeyError) as exc:
                self.bad(f"activity record cannot be read ({type(exc).__name__})", orjson.dumps(record).decode())

    def _record(self, record: dict, start: int, end: int) -> None:
        if record.get("type") == "heartbeat":
            return
        ts, epoch = das_time(str(record.get("logTime") or record.get("startTime") or ""))
        record["_ts"] = ts
        self.see_time(MAIN, epoch)
        self.expire()
        mysql = is_mysql(record)
        command = str(record.get("command") or "").upper()
        session = str(record.get("sessionId") or record.get("pid") or "")
        if command in ("CONNECT", "FAILED_CONNECT", "AUTH FAILURE", "DISCONNECT"):
            self._close(session)
            self._connection(record, command, session, start, end, mysql)
            return
        statement_id = record.get("statementId")
        key = (statement_id,) if mysql else (statement_id, record.get("substatementId"))
        slot = self._open.get(session)
        if slot is None or slot.ready or slot.value.key != key:
            self._close(session)
            slot = self._open[session] = self.queue.add(start, end, _Group(key, mysql), False,
                                                        epoch + self.settings.group_window_s)
        slot.end = end
        self._absorb(slot.value, record)

    def _absorb(self, group: _Group, record: dict) -> None:
        database = record.get("databaseName") or None
        names = str(record.get("objectName") or "")
        object_type = str(record.get("objectType") or "TABLE").upper()
        for name in (n.strip() for n in names.split(",")):
            if name and (group.mysql or object_type in RELATION_TYPES):
                relation = (f"{database}.{name}" if database and "." not in name else name) if group.mysql \
                    else qualify(database, name)
                if relation not in group.objects:
                    group.objects.append(relation)
        if failed(record):
            group.failed = True
        if group.mysql:
            if str(record.get("class") or "").upper() == "AUX":
                return
            group.main = record
            rows = record.get("rowCount")
            group.rows = rows if isinstance(rows, int) and not isinstance(rows, bool) else None
            return
        command = str(record.get("command") or "").upper()
        rows = record.get("rowCount")
        counted = pg_rows(command, rows if isinstance(rows, int) and not isinstance(rows, bool) else None)
        if str(record.get("class") or "").upper() == "WRITE":
            counted = None   # "For INSERT or UPDATE statements, rowCount is 0": unknown, not zero
        if group.main is None:
            group.main = record
            group.rows = counted
        elif counted is not None and (group.rows is None or counted > group.rows):
            group.rows = counted

    def _connection(self, record: dict, command: str, session: str, start: int, end: int, mysql: bool) -> None:
        if command == "DISCONNECT":
            return
        bad = command != "CONNECT" or failed(record)
        user = record.get("dbUserName")
        if not user or (not bad and not self.settings.logins):
            return
        application = record.get("clientApplication") or None
        self.queue.add(start, end, make_event(
            record["_ts"], str(user), "LOGIN_FAILED" if bad else "LOGIN", SOURCE,
            employee_id=self.identity.employee(session, application), client_addr=record.get("remoteHost") or None,
            application=application, database=record.get("databaseName") or None, success=not bad,
            session_id=session))

    def _group_event(self, group: _Group) -> dict | None:
        record = group.main
        if record is None:
            return None       # AUX records whose MAIN record never came
        text = record.get("commandText")
        statement = text if isinstance(text, str) and text and text not in PLACEHOLDERS else None
        command = str(record.get("command") or "").upper()
        if group.mysql:
            action = action_of_statement(statement)
            if statement and statement.split(None, 1)[0].upper() in MYSQL_TRANSACTION:
                return None
            rows = group.rows if action in ("SELECT", "EXPORT", "INSERT", "UPDATE", "DELETE") else None
        else:
            if command in TRANSACTION_CONTROL:
                return None
            action = pg_action(str(record.get("class") or "").upper(), command)
            rows = group.rows
            params = record.get("paramList")
            if statement and self.settings.inline_parameters and isinstance(params, list) and params:
                statement = inline_parameters(statement, [str(p) for p in params])
        user = record.get("dbUserName")
        if not user:
            return None
        session = str(record.get("sessionId") or record.get("pid") or "")
        if statement is not None and SET_STATEMENT.match(statement):
            self.identity.observe_set(session, statement)
        application = record.get("clientApplication") or None
        return make_event(record["_ts"], str(user), action, SOURCE,
                          employee_id=self.identity.employee(session, application),
                          client_addr=record.get("remoteHost") or None, application=application,
                          database=record.get("databaseName") or None, objects=group.objects or None, rows=rows,
                          statement=statement, success=not group.failed, session_id=session)

    def _close(self, session: str) -> None:
        slot = self._open.pop(session, None)
        if slot is not None:
            slot.ready = True


def activity_records(document) -> list[dict]:
    """The activity records of a decrypted document, whichever wrapping it came in."""
    if isinstance(document, list):
        return [r for item in document for r in activity_records(item)]
    if not isinstance(document, dict):
        raise ValueError("activity stream document is not a JSON object")
    events = document.get("databaseActivityEvents")
    if isinstance(events, str):
        try:
            events = orjson.loads(events)
        except orjson.JSONDecodeError:
            raise ValueError("databaseActivityEvents is a string that is not decrypted JSON") from None
    if isinstance(events, dict):
        return activity_records(events)
    listed = document.get("databaseActivityEventList")
    if isinstance(listed, list):
        return [r for r in listed if isinstance(r, dict)]
    if "dbUserName" in document or document.get("type") in ("record", "heartbeat"):
        return [document]
    raise ValueError("activity stream document has no databaseActivityEventList")


def is_mysql(record: dict) -> bool:
    kind = str(record.get("serverType") or record.get("dbProtocol") or "")
    return "mysql" in kind.lower() or str(record.get("class") or "").upper() in ("MAIN", "AUX")


def failed(record: dict) -> bool:
    message = record.get("errorMessage")
    if message:
        return True
    code = record.get("exitCode")
    if is_mysql(record) and code not in (None, "", 0, "0"):
        return True
    return False


_DAS_CLOCK = Clock("UTC")


def das_time(text: str) -> tuple[str, float]:
    """'2019-10-30 00:39:49.990579+00' -> RFC 3339 with milliseconds."""
    if len(text) < 19:
        raise ValueError("activity record has no logTime")
    date_part, time_part, rest = text[:10], text[11:19], text[19:]
    fraction = ""
    if rest.startswith("."):
        cut = next((i for i, c in enumerate(rest[1:], 1) if not c.isdigit()), len(rest))
        fraction, rest = rest[:cut], rest[cut:]
    rest = rest.strip()
    if rest in ("+00", "+00:00", "+0000", "Z", "UTC"):
        rest = ""
    elif rest and _OFFSET.fullmatch(rest) is None:
        raise ValueError("activity record's logTime has an unknown zone")
    return _DAS_CLOCK.local(date_part, time_part, fraction, rest)
