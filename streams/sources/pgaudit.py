"""PostgreSQL + pgaudit logs -> contract events, from any of the three log destinations.

Why this module exists
----------------------
pgaudit writes one `AUDIT:` CSV payload per statement (and per relation, and once more
per object-audit match) into PostgreSQL's own log. The same records arrive as stderr text
(with a configurable `log_line_prefix`, multi-line messages continued by a tab), as
csvlog (quoted newlines) or as jsonlog (PostgreSQL 15). Each destination is read into
one `LogRecord`; from there one interpretation turns records into events:

* the OBJECT and SESSION lines of one statement (same session, statement id and
  substatement id), and a join's per-relation lines, are one event whose `objects` are
  all the relations named; rows are the statement's, never added up;
* a wrapper that repeats its inner query's text (`COPY (SELECT ...) TO`) is the same
  client statement: one COPY event carrying the inner query's row count;
* pgaudit logs rows 0 for COPY, FETCH, DECLARE CURSOR and utility commands: those rows
  are unknown (None), never 0;
* ERROR + STATEMENT is a failed statement (success false); FATAL authentication
  failures are LOGIN_FAILED; `connection authorized` (log_connections) is LOGIN;
* bind parameters (pgaudit.log_parameter) are written into the `$n` placeholders as
  quoted literals, so the detector sees the key values an application looked up.

Transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT) touches no data and is not an
event. Nothing here logs or raises on a record; a statement never appears in a reason.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass

import orjson

from streams.sources.base import (MAIN, Adapter, Clock, IdentityRule, Slot, action_of_statement, iso_utc,
                                  make_event)

SOURCE = "pgaudit"
DEFAULT_PREFIX = "%m [%p] "
PLACEHOLDERS = frozenset({"<not logged>", "<previously logged>", "<none>"})
RELATION_TYPES = frozenset({"TABLE", "VIEW", "MATERIALIZED VIEW", "FOREIGN TABLE", "PARTITIONED TABLE"})
ROWS_MEANINGFUL = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"})
TRANSACTION_CONTROL = frozenset({"BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE",
                                 "ROLLBACK TO SAVEPOINT", "RELEASE SAVEPOINT", "END"})
COMMAND_ACTIONS = {"SELECT": "SELECT", "DECLARE CURSOR": "SELECT", "INSERT": "INSERT", "UPDATE": "UPDATE",
                   "DELETE": "DELETE", "MERGE": "UPDATE", "TRUNCATE TABLE": "DELETE", "COPY": "COPY"}
ATTACHED_SEVERITIES = frozenset({"DETAIL", "HINT", "CONTEXT", "QUERY", "LOCATION"})
UNKNOWN = frozenset({None, "", "[unknown]"})

_AUTH_FAILED = re.compile(
    r'authentication failed for user "(?P<a>[^"]*)"'
    r'|no pg_hba\.conf entry for (?:replication connection from )?host "[^"]*", user "(?P<b>[^"]*)"'
    r'|pg_hba\.conf rejects connection for host "[^"]*", user "(?P<c>[^"]*)"'
    r'|^role "(?P<d>[^"]*)" does not exist'
    r'|^role "(?P<e>[^"]*)" is not permitted to log in')
_AUTHORIZED = re.compile(r"connection authorized: user=(?P<user>\S+)(?: database=(?P<db>\S+))?"
                         r"(?: application_name=(?P<app>.*?))?(?: SSL enabled| GSS | identity=|$)")


def pg_action(klass: str, command: str) -> str:
    """pgaudit's class and command tag -> the contract action."""
    action = COMMAND_ACTIONS.get(command)
    if action is not None:
        return action
    return "DDL" if klass in ("DDL", "ROLE") else "OTHER"


def pg_rows(command: str, rows: int | None) -> int | None:
    """pgaudit logs 0 rows for commands it cannot count (COPY, FETCH, utilities): unknown."""
    return rows if command in ROWS_MEANINGFUL else None


def qualify(database: str | None, relation: str) -> str:
    """`public.customers` in database `crm` -> `crm.public.customers`."""
    return f"{database}.{relation}" if database and relation.count(".") < 2 else relation


# -- log_line_prefix -------------------------------------------------------------------

_TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
_ZONE = r"(?: [A-Za-z0-9+\-]+)?"
_ESCAPES = {
    "a": r".*?", "u": r".*?", "d": r".*?", "r": r".*?", "h": r".*?", "b": r".*?", "i": r".*?",
    "p": r"\d+", "P": r"\d*", "t": _TIME + _ZONE, "m": _TIME + r"\.\d{3}" + _ZONE, "n": r"\d+\.\d+",
    "s": _TIME + _ZONE, "e": r"[0-9A-Z]{5}", "c": r"[0-9a-f]+\.[0-9a-f]+", "l": r"\d+",
    "v": r"(?:\d+/-?\d+)?", "x": r"\d+", "Q": r"-?\d+",
}
_ESCAPE_TOKEN = re.compile(r"%(-?\d+)?(.)")


def compile_prefix(prefix: str) -> re.Pattern:
    """A regex for whole first lines: the prefix's fields as groups `f_<letter>`, then
    `severity` and `message`. Built once; `%q` makes the rest of the prefix optional."""
    parts: list[str] = []
    tail_from: int | None = None
    named: set[str] = set()
    pos = 0
    for m in _ESCAPE_TOKEN.finditer(prefix):
        parts.append(re.escape(prefix[pos:m.start()]))
        pos = m.end()
        padding, letter = m.group(1), m.group(2)
        if letter == "%":
            parts.append("%")
            continue
        if letter == "q":
            tail_from = len(parts)
            continue
        body = _ESCAPES.get(letter)
        if body is None:
            continue  # PostgreSQL writes nothing for an unknown escape
        group = f"(?P<f_{letter}>{body})" if letter not in named else f"(?:{body})"
        named.add(letter)
        parts.append(rf"\s*{group}\s*" if padding else group)
    parts.append(re.escape(prefix[pos:]))
    if tail_from is not None:
        parts[tail_from:] = ["(?:" + "".join(parts[tail_from:]) + ")?"]
    if not named & {"m", "t", "n"}:
        raise ValueError("log_line_prefix must contain a timestamp (%m, %t or %n) to ship events")
    return re.compile("".join(parts) + r"(?P<severity>[A-Z][A-Z0-9]*):  (?P<message>.*)\Z", re.S)


# -- records -------------------------------------------------------------------------

@dataclass(slots=True)
class LogRecord:
    """One PostgreSQL log message, whatever the destination it was read from."""

    start: int
    end: int
    ts: str
    epoch: float
    user: str | None
    database: str | None
    application: str | None
    client: str | None
    session: str
    tag: str | None
    severity: str
    message: str
    statement: str | None = None     # csvlog/jsonlog carry an error's statement in the record
    raw: str = ""


class _Statement:
    """The lines pgaudit wrote for one (sub)statement, merged."""

    __slots__ = ("ts", "user", "database", "application", "client", "session", "employee", "stmt_id", "sub_id",
                 "klass", "command", "text", "params", "rows", "objects", "success", "copy")

    def __init__(self, rec: LogRecord, employee: str | None, fields: list[str], text: str | None,
                 params: list[str] | None, rows: int | None) -> None:
        self.ts, self.user, self.database, self.application = rec.ts, rec.user, rec.database, rec.application
        self.client, self.session, self.employee = rec.client, rec.session, employee
        self.stmt_id, self.sub_id, self.klass, self.command = fields[1], fields[2], fields[3], fields[4]
        self.text, self.params, self.success, self.copy = text, params, True, fields[4] == "COPY"
        self.rows = pg_rows(self.command, rows)
        self.objects: list[str] = []
        self.add_object(fields[5], fields[6])

    def add_object(self, object_type: str, name: str) -> None:
        if name and object_type in RELATION_TYPES:
            relation = qualify(self.database, name)
            if relation not in self.objects:
                self.objects.append(relation)

    def absorb(self, fields: list[str], rows: int | None, wrapper: bool) -> None:
        """Another line of the same statement: a twin, a further relation, or a wrapper."""
        self.add_object(fields[5], fields[6])
        counted = pg_rows(fields[4], rows)
        if counted is not None and (self.rows is None or counted > self.rows):
            self.rows = counted
        if wrapper and fields[4] == "COPY":
            self.copy = True

    def event(self, inline: bool) -> dict | None:
        if self.command in TRANSACTION_CONTROL or not self.user:
            return None
        action = "COPY" if self.copy else pg_action(self.klass, self.command)
        statement = self.text
        if statement is not None and inline and self.params:
            statement = inline_parameters(statement, self.params)
        return make_event(self.ts, self.user, action, SOURCE, employee_id=self.employee, client_addr=self.client,
                          application=self.application, database=self.database, objects=self.objects or None,
                          rows=self.rows, statement=statement, success=self.success, session_id=self.session)


class _Failure:
    """An ERROR record waiting for its STATEMENT line."""

    __slots__ = ("rec", "employee", "statement")

    def __init__(self, rec: LogRecord, employee: str | None) -> None:
        self.rec, self.employee, self.statement = rec, employee, None

    def event(self, inline: bool) -> dict | None:
        rec, statement = self.rec, self.statement
        if statement is None or not rec.user:
            return None  # an error outside a client statement (or log_min_error_statement above ERROR)
        action = COMMAND_ACTIONS.get(rec.tag or "") or action_of_statement(statement)
        return make_event(rec.ts, rec.user, action, SOURCE, employee_id=self.employee, client_addr=rec.client,
                          application=rec.application, database=rec.database, statement=statement,
                          success=False, session_id=rec.session)


class _Session:
    __slots__ = ("group", "failure", "last_id", "last_text")

    def __init__(self) -> None:
        self.group: Slot | None = None
        self.failure: Slot | None = None
        self.last_id: str | None = None
        self.last_text: str | None = None


@dataclass(frozen=True)
class PgauditSettings:
    destination: str = "stderr"              # stderr, csv, json
    log_line_prefix: str = DEFAULT_PREFIX
    log_timezone: str = "UTC"                # for zone abbreviations such as CST in %m/%t
    identity_pattern: str | None = None
    group_window_s: float = 2.0              # input time a statement's lines may take to arrive
    inline_parameters: bool = True
    logins: bool = True


class PgauditAdapter(Adapter):
    """pgaudit in stderr, csvlog or jsonlog format -> contract events (see the module docstring)."""

    source = SOURCE

    def __init__(self, settings: PgauditSettings | None = None) -> None:
        super().__init__()
        self.settings = settings = settings or PgauditSettings()
        if settings.destination not in ("stderr", "csv", "json"):
            raise ValueError(f"unknown PostgreSQL log destination {settings.destination!r}")
        self.clock_ = Clock(settings.log_timezone)
        self.identity = IdentityRule(settings.identity_pattern)
        self._line_re = compile_prefix(settings.log_line_prefix) if settings.destination == "stderr" else None
        self._sessions: dict[str, _Session] = {}
        self._parts: list[str] = []          # lines of the record being assembled
        self._part_start = 0
        self._part_end = 0
        self._quotes = 0
        self._first: re.Match | None = None
        self._feed_line = {"stderr": self._feed_stderr, "csv": self._feed_csv, "json": self._feed_json}[
            settings.destination]
        self._reader = {"stderr": self._stderr_record, "csv": self._csv_record, "json": self._json_record}[
            settings.destination]

    # -- the adapter protocol ------------------------------------------------------

    def _feed(self, line: str, offset: int, length: int, input: str) -> None:
        self._feed_line(line, offset, length)

    def _flush(self) -> None:
        self._complete()
        for state in self._sessions.values():
            self._close(state)

    def _partial_start(self, input: str) -> int | None:
        return self._part_start if self._parts else None

    def _finish(self, value) -> dict | None:
        if value is None or type(value) is dict:
            return value
        return value.event(self.settings.inline_parameters)

    # -- stderr: first line matches the prefix, continuation lines start with a tab -----

    def _feed_stderr(self, line: str, offset: int, length: int) -> None:
        if line[:1] == "\t":
            if self._parts:
                self._parts.append(line[1:])
                self._part_end = offset + length
            else:
                self.bad("continuation line (starting with a tab) without a log record before it", line)
            return
        self._complete()
        match = self._line_re.match(line)
        if match is None:
            self.bad("line does not match the configured log_line_prefix", line)
            return
        self._first, self._parts = match, [line]
        self._part_start, self._part_end = offset, offset + length

    def _stderr_record(self) -> LogRecord | None:
        m, parts = self._first, self._parts
        fields = m.groupdict()
        message = fields["message"]
        if len(parts) > 1:
            message = "\n".join([message, *parts[1:]])
        stamp = fields.get("f_m") or fields.get("f_t")
        if stamp:
            ts, epoch = self._pg_time(stamp)
        else:
            epoch = float(fields["f_n"])
            ts = iso_utc(epoch)
        client = fields.get("f_h") or fields.get("f_r")
        if client in UNKNOWN:
            client = None
        elif client[-1] == ")" and "(" in client:
            client = client[:client.rindex("(")]
        session = fields.get("f_c") or fields.get("f_p") or ""
        user, database, application = fields.get("f_u"), fields.get("f_d"), fields.get("f_a")
        return LogRecord(self._part_start, self._part_end, ts, epoch, None if user in UNKNOWN else user,
                         None if database in UNKNOWN else database, None if application in UNKNOWN else application,
                         client, session, fields.get("f_i") or None, fields["severity"], message, None,
                         "\n".join(parts) if len(parts) > 1 else parts[0])

    # -- csvlog: a record ends where its quotes balance -------------------------------

    def _feed_csv(self, line: str, offset: int, length: int) -> None:
        if not self._parts:
            self._part_start = offset
        self._parts.append(line)
        self._part_end = offset + length
        self._quotes += line.count('"')
        if self._quotes % 2 == 0:
            self._complete()

    def _csv_record(self) -> LogRecord | None:
        raw = "\n".join(self._parts)
        try:
            row = next(csv.reader([raw]))
        except (csv.Error, StopIteration):
            self.bad("csvlog record is not valid CSV", raw)
            return None
        if len(row) < 23:
            self.bad(f"csvlog record has {len(row)} columns; expected 23 to 26 (PostgreSQL 12-15 csvlog)", raw)
            return None
        ts, epoch = self._pg_time(row[0])
        client = row[4] or None
        if client and client != "[local]" and ":" in client:
            client = client.rsplit(":", 1)[0]
        return LogRecord(self._part_start, self._part_end, ts, epoch, _known(row[1]), _known(row[2]),
                         _known(row[22]), client, row[5] or row[3], row[7] or None, row[11], row[13],
                         row[19] or None, raw)

    # -- jsonlog: one object per line ------------------------------------------------

    def _feed_json(self, line: str, offset: int, length: int) -> None:
        if not line.strip():
            return
        self._parts, self._part_start, self._part_end = [line], offset, offset + length
        self._complete()

    def _json_record(self) -> LogRecord | None:
        raw = self._parts[0]
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.bad("jsonlog line is not valid JSON", raw)
            return None
        if not isinstance(obj, dict) or "timestamp" not in obj or "message" not in obj:
            self.bad("jsonlog line is not a PostgreSQL log object (no timestamp or message)", raw)
            return None
        ts, epoch = self._pg_time(str(obj["timestamp"]))
        get = obj.get
        session = get("session_id") or str(get("pid", ""))
        return LogRecord(self._part_start, self._part_end, ts, epoch, _known(get("user")), _known(get("dbname")),
                         _known(get("application_name")), _known(get("remote_host")), session, get("ps") or None,
                         str(get("error_severity", "")), str(get("message", "")), get("statement"), raw)

    # -- interpretation (shared by the three destinations) ---------------------------

    def _complete(self) -> None:
        """The record being assembled is whole: read it and act on it."""
        if not self._parts:
            return
        try:
            rec = self._reader()
            if rec is not None:
                self.see_time(MAIN, rec.epoch)
                self.expire()
                self._record(rec)
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            self.bad(f"log record cannot be read ({type(exc).__name__})", "\n".join(self._parts))
        finally:
            self._parts, self._quotes, self._first = [], 0, None

    def _record(self, rec: LogRecord) -> None:
        message, severity = rec.message, rec.severity
        if message.startswith("AUDIT: "):
            self._audit(rec)
        elif severity == "STATEMENT":
            self._statement(rec)
        elif severity in ATTACHED_SEVERITIES:
            return
        elif severity == "ERROR":
            self._error(rec)
        else:
            state = self._sessions.get(rec.session)
            if state is not None:
                self._close(state)
            if severity == "FATAL":
                self._fatal(rec)
            elif severity == "LOG":
                if message.startswith("connection authorized: "):
                    self._login(rec)
                elif message.startswith("disconnection: "):
                    self._sessions.pop(rec.session, None)

    def _audit(self, rec: LogRecord) -> None:
        try:
            fields = next(csv.reader([rec.message[7:]]))
        except (csv.Error, StopIteration):
            self.bad("pgaudit payload is not valid CSV", rec.raw)
            return
        if len(fields) not in (7, 8, 9, 10):
            self.bad(f"pgaudit record has {len(fields)} fields; expected 9 or 10 "
                     f"(7 or 8 with pgaudit.log_statement off)", rec.raw)
            return
        text = params = rows = None
        if len(fields) >= 9:
            text, params = fields[7], _parameters(fields[8])
        if len(fields) in (8, 10):
            rows = int(fields[-1]) if fields[-1].isdigit() else None
        state = self._state(rec.session)
        stmt_id, key = fields[1], (fields[1], fields[2])
        logged = text is not None and text not in PLACEHOLDERS
        if text in PLACEHOLDERS:   # pgaudit.log_statement_once: the text came with the first line of this key
            text = state.last_text if state.last_id == key else None
        elif text is not None:
            state.last_id, state.last_text = key, text
        if text is not None and fields[4] == "SET":
            self.identity.observe_set(rec.session, text)
        slot = state.group
        if slot is not None and not slot.ready:
            group: _Statement = slot.value
            same = group.sub_id == fields[2] and group.stmt_id == stmt_id
            wrapper = not same and logged and group.stmt_id == stmt_id and text == group.text
            if same or wrapper:
                group.absorb(fields, rows, wrapper)
                slot.end = rec.end
                return
        self._close(state)
        employee = self.identity.employee(rec.session, rec.application)
        group = _Statement(rec, employee, fields, text, params, rows)
        state.group = self.queue.add(rec.start, rec.end, group, False, rec.epoch + self.settings.group_window_s)

    def _error(self, rec: LogRecord) -> None:
        state = self._state(rec.session)
        if state.failure is not None:
            state.failure.ready = True
        failure = _Failure(rec, self.identity.employee(rec.session, rec.application))
        state.failure = self.queue.add(rec.start, rec.end, failure, False, rec.epoch + self.settings.group_window_s)
        if rec.statement is not None:
            self._attach(state, rec.statement, rec.end)

    def _statement(self, rec: LogRecord) -> None:
        state = self._sessions.get(rec.session)
        if state is not None and state.failure is not None and not state.failure.ready:
            self._attach(state, rec.message, rec.end)

    def _attach(self, state: _Session, statement: str, end: int) -> None:
        """The failed statement's text: if pgaudit already logged it, that event failed."""
        failure = state.failure
        failure.end = max(failure.end, end)
        group = state.group
        if group is not None and not group.ready and group.value.text == statement:
            group.value.success = False
            failure.value = None
        else:
            failure.value.statement = statement
        self._close(state)

    def _fatal(self, rec: LogRecord) -> None:
        m = _AUTH_FAILED.search(rec.message)
        if m is None:
            return
        user = next((g for g in m.groups() if g is not None), None) or rec.user
        if not user:
            return
        event = make_event(rec.ts, user, "LOGIN_FAILED", SOURCE, client_addr=rec.client, database=rec.database,
                           success=False, session_id=rec.session)
        self.queue.add(rec.start, rec.end, event)

    def _login(self, rec: LogRecord) -> None:
        if not self.settings.logins:
            return
        m = _AUTHORIZED.match(rec.message)
        user = (m.group("user") if m else None) or rec.user
        if not user:
            return
        application = (m.group("app") if m else None) or rec.application
        database = (m.group("db") if m else None) or rec.database
        event = make_event(rec.ts, user, "LOGIN", SOURCE,
                           employee_id=self.identity.employee(rec.session, application), client_addr=rec.client,
                           application=application, database=database, success=True, session_id=rec.session)
        self.queue.add(rec.start, rec.end, event)

    def _state(self, session: str) -> _Session:
        state = self._sessions.get(session)
        if state is None:
            if len(self._sessions) > 200_000:   # sessions whose disconnection was never logged
                self._sessions.clear()
            state = self._sessions[session] = _Session()
        return state

    @staticmethod
    def _close(state: _Session) -> None:
        for slot in (state.group, state.failure):
            if slot is not None:
                slot.ready = True
        state.group = state.failure = None

    def _pg_time(self, text: str) -> tuple[str, float]:
        """'2026-11-28 15:09:34.539 UTC' (%m, csvlog, jsonlog) or without milliseconds (%t)."""
        date_part, time_part, rest = text[:10], text[11:19], text[19:]
        fraction = ""
        if rest[:1] == ".":
            space = rest.find(" ")
            fraction, rest = (rest, "") if space < 0 else (rest[:space], rest[space:])
        ts, epoch = self.clock_.local(date_part, time_part, fraction, rest.strip())
        return ts, epoch


def _known(value) -> str | None:
    if value is None:
        return None
    value = str(value)
    return None if value in UNKNOWN else value


def _parameters(field: str) -> list[str] | None:
    if field in PLACEHOLDERS or not field:
        return None
    try:
        return next(csv.reader([field]))
    except (csv.Error, StopIteration):
        return None


_PARAM_TOKENS = re.compile(r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|--[^\n]*|/\*.*?(?:\*/|\Z)"
                           r"|\$(?:[A-Za-z_]\w*)?\$|(?<![\w$])\$(\d+)\b", re.S)


def inline_parameters(statement: str, params: list[str]) -> str:
    """Write bind parameters into `$n` placeholders as quoted literals; text in quotes,
    comments and dollar-quoted bodies is left alone."""
    out: list[str] = []
    pos = 0
    while True:
        m = _PARAM_TOKENS.search(statement, pos)
        if m is None:
            break
        if m.group(1) is not None:
            number = int(m.group(1))
            if 1 <= number <= len(params):
                out.append(statement[pos:m.start()])
                out.append("'" + params[number - 1].replace("'", "''") + "'")
                pos = m.end()
                continue
        elif m.group().startswith("$"):
            close = statement.find(m.group(), m.end())
            end = len(statement) if close < 0 else close + len(m.group())
            out.append(statement[pos:end])
            pos = end
            continue
        out.append(statement[pos:m.end()])
        pos = m.end()
    out.append(statement[pos:])
    return "".join(out)
