"""MariaDB server_audit, joined with the slow query log for row counts -> contract events.

Why this module exists
----------------------
server_audit (server_audit_events=CONNECT,QUERY,TABLE) says who ran what, on which
tables, and whether it failed, but never how many rows came back. The slow query log
with long_query_time=0 has the row counts (`Rows_sent`, `Rows_affected`) for every
statement. This adapter reads both files as they grow (two inputs: `main` for the audit
log, `slow` for the slow log) and joins them per connection (`Thread_id`) on the query
text. An audit record is held until its slow-log partner arrives; when none has arrived
within the join window of input time (default 5 s), or at a flush, it is emitted with
rows=None (unknown). Slow-log entries are never events by themselves (they hold
unmasked passwords of CREATE USER, which server_audit masks); unmatched ones are dropped
after the window.

Transaction control (BEGIN, COMMIT, ROLLBACK, ...) touches no data and is not an event.
Nothing here logs or raises on a record; a statement never appears in a reason.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from streams.sources.base import (MAIN, NEVER, Adapter, Clock, IdentityRule, SET_STATEMENT, Slot,
                                  action_of_statement, make_event)

SOURCE = "mariadb_audit"
SLOW = "slow"
TABLE_OPERATIONS = frozenset({"READ", "WRITE", "CREATE", "ALTER", "RENAME", "DROP"})
TRANSACTION_CONTROL = re.compile(r"\s*(?:begin|commit|rollback|start\s+transaction|savepoint|release\s+savepoint|xa\s)\b",
                                 re.I)
ROWS_SENT_ACTIONS = frozenset({"SELECT", "EXPORT", "OTHER", "COPY"})
ROWS_AFFECTED_ACTIONS = frozenset({"INSERT", "UPDATE", "DELETE"})

_AUDIT_LINE = re.compile(r"(?P<ts>\d{8} \d\d:\d\d:\d\d),(?P<host>[^,]*),(?P<user>[^,]*),(?P<client>[^,]*),"
                         r"(?P<conn>\d+),(?P<qid>\d+),(?P<op>[A-Z_]+),(?P<db>[^,]*),(?P<rest>.*)\Z", re.S)
_ESCAPE = re.compile(r"\\(.)", re.S)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "0": "\0", "Z": "\x1a", "b": "\b"}
_SLOW_HEADER = re.compile(r"# (?:Time|User@Host):")
_SLOW_THREAD = re.compile(r"# Thread_id: (\d+)")
_SLOW_SENT = re.compile(r"Rows_sent: (\d+)\s+Rows_examined: (\d+)")
_SLOW_AFFECTED = re.compile(r"Rows_affected: (\d+)")
_SLOW_TIMESTAMP = re.compile(r"SET timestamp=(\d+);\Z")
_SLOW_USE = re.compile(r"use [^;]+;\Z")
_SLOW_PREAMBLE = re.compile(r"use [^;]+;\Z|SET (?:last_insert_id|insert_id)=[\d,=a-z_]+;\Z")
_SLOW_BANNER = re.compile(r"\S.*, Version: .* started with:\Z|Tcp port: \d+\s+Unix socket: |Time\s+Id\s+Command\s+Argument\Z")


def unescape(text: str) -> str:
    """server_audit's quoted query text (backslash escapes) back to the statement."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), text)


def normalise(text: str) -> str:
    """The join key of a query text: whitespace and trailing semicolons do not count."""
    return text.strip().rstrip(";").rstrip()


class _Statement:
    """A QUERY record (and the TABLE records before it), waiting for its slow-log rows."""

    __slots__ = ("ts", "epoch", "user", "client", "database", "conn", "qid", "employee", "tables", "text", "key",
                 "success", "rows_sent", "rows_affected", "slow")

    def __init__(self, ts: str, epoch: float, user: str, client: str, database: str, conn: str, qid: str) -> None:
        self.ts, self.epoch, self.user, self.client, self.database = ts, epoch, user, client, database
        self.conn, self.qid = conn, qid
        self.employee: str | None = None
        self.tables: list[str] = []
        self.text: str | None = None
        self.key: str | None = None
        self.success = True
        self.rows_sent: int | None = None
        self.rows_affected: int | None = None
        self.slow: _SlowEntry | None = None

    def event(self) -> dict | None:
        if self.text is None:
            if not self.tables:
                return None
            action, statement = ("SELECT" if self.tables_read_only else "OTHER"), None
        else:
            statement = self.text
            if TRANSACTION_CONTROL.match(statement):
                return None
            action = action_of_statement(statement)
        rows = None
        if action in ROWS_SENT_ACTIONS:
            rows = self.rows_sent
            if action == "EXPORT" and self.rows_affected:
                rows = self.rows_affected
        elif action in ROWS_AFFECTED_ACTIONS:
            rows = self.rows_affected
        return make_event(self.ts, self.user, action, SOURCE, employee_id=self.employee,
                          client_addr=self.client or None, database=self.database or None,
                          objects=[t for t, _ in self.tables] or None, rows=rows, statement=statement,
                          success=self.success, session_id=self.conn)

    @property
    def tables_read_only(self) -> bool:
        return all(op == "READ" for _, op in self.tables)


@dataclass(slots=True)
class _SlowEntry:
    start: int
    end: int = 0
    thread: str = ""
    epoch: float = -NEVER
    rows_sent: int | None = None
    rows_affected: int | None = None
    lines: list[str] | None = None      # query lines, once `SET timestamp=` was seen
    key: str = ""
    matched: bool = False


@dataclass(frozen=True)
class MariadbSettings:
    log_timezone: str = "UTC"            # server_audit writes the server's local time, without a zone
    identity_pattern: str | None = None
    join_window_s: float = 5.0           # input time an audit record waits for its slow-log partner
    query_log_limit: int = 1024          # server_audit_query_log_limit: longer queries are cut
    logins: bool = True


class MariadbAuditAdapter(Adapter):
    """server_audit (input `main`) joined with the slow query log (input `slow`)."""

    source = SOURCE
    inputs = (MAIN, SLOW)

    def __init__(self, settings: MariadbSettings | None = None) -> None:
        super().__init__()
        self.settings = settings = settings or MariadbSettings()
        self.clock_ = Clock(settings.log_timezone)
        self.identity = IdentityRule(settings.identity_pattern)
        self._open: dict[str, Slot] = {}                     # connection -> statement being assembled
        self._waiting: dict[str, deque[Slot]] = {}           # connection -> statements waiting for rows
        self._slow_by_thread: dict[str, list[_SlowEntry]] = {}
        self._slow_order: list[_SlowEntry] = []               # unmatched entries, oldest first
        self._held_slow: dict[int, int] = {}                 # id(entry) -> start: entries a restart must re-read
        self._entry: _SlowEntry | None = None                # slow-log entry being assembled

    # -- the adapter protocol ------------------------------------------------------

    def _feed(self, line: str, offset: int, length: int, input: str) -> None:
        if input == SLOW:
            self._feed_slow(line, offset, length)
        else:
            self._feed_audit(line, offset, length)

    def _flush(self) -> None:
        self._complete_entry()
        for slot in self._open.values():
            slot.ready = True
        self._open.clear()
        self._waiting.clear()
        self._slow_by_thread.clear()
        self._slow_order.clear()
        self._held_slow.clear()

    def _finish(self, value) -> dict | None:
        if value is None or type(value) is dict:
            return value
        if value.slow is not None:
            self._held_slow.pop(id(value.slow), None)
        return value.event()

    def _partial_start(self, input: str) -> int | None:
        if input == SLOW and self._entry is not None:
            return self._entry.start
        return None

    def _held_offsets(self, input: str) -> list[int]:
        if input != SLOW or not self._held_slow:
            return []
        return [min(self._held_slow.values())]

    # -- server_audit --------------------------------------------------------------

    def _feed_audit(self, line: str, offset: int, length: int) -> None:
        if not line.strip():
            return
        m = _AUDIT_LINE.match(line)
        if m is None:
            self.bad("line is not a server_audit record (timestamp,host,user,client,connection,query id,"
                     "operation,database,object,retcode)", line)
            return
        stamp = m.group("ts")
        ts, epoch = self.clock_.local(f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}", stamp[9:])
        self.see_time(MAIN, epoch)
        self.expire()
        self._expire_slow()
        op, conn, rest = m.group("op"), m.group("conn"), m.group("rest")
        end = offset + length
        if op == "QUERY":
            self._query(m, ts, epoch, rest, offset, end, line)
        elif op in TABLE_OPERATIONS:
            self._table(m, ts, epoch, rest, offset, end)
        elif op in ("CONNECT", "FAILED_CONNECT", "CHANGEUSER"):
            self._connect(m, ts, rest, offset, end)
        elif op == "DISCONNECT":
            self._close(conn)
            waiting = self._waiting.get(conn)
            if waiting is not None and all(slot.ready for slot in waiting):
                del self._waiting[conn]

    def _query(self, m: re.Match, ts: str, epoch: float, rest: str, start: int, end: int, line: str) -> None:
        comma = rest.rfind(",")
        text, retcode = rest[:comma], rest[comma + 1:]
        if comma < 0 or len(text) < 2 or text[0] != "'" or text[-1] != "'":
            self.bad("server_audit QUERY record has no quoted query text", line)
            return
        conn, qid = m.group("conn"), m.group("qid")
        slot = self._open.pop(conn, None)
        if slot is None or slot.value.qid != qid:
            if slot is not None:
                slot.ready = True
            slot = self.queue.add(start, end, self._statement(m, ts, epoch), False)
        statement: _Statement = slot.value
        slot.end = end
        statement.text = unescape(text[1:-1])
        statement.key = normalise(statement.text)
        statement.success = retcode.strip() in ("0", "")
        if SET_STATEMENT.match(statement.text):
            self.identity.observe_set(conn, statement.text)
        statement.employee = self.identity.employee(conn, None)
        entry = self._find_slow(conn, statement.key)
        if entry is not None:
            self._join(slot, entry)
        else:
            slot.expires = epoch + self.settings.join_window_s
            waiting = self._waiting.get(conn)
            if waiting is None:
                waiting = self._waiting[conn] = deque()
            while waiting and waiting[0].ready:
                waiting.popleft()            # expired: shipped without rows
            waiting.append(slot)

    def _table(self, m: re.Match, ts: str, epoch: float, rest: str, start: int, end: int) -> None:
        conn, qid = m.group("conn"), m.group("qid")
        slot = self._open.get(conn)
        if slot is None or slot.value.qid != qid:
            if slot is not None:
                slot.ready = True   # TABLE records without their QUERY (QUERY events not audited)
            slot = self._open[conn] = self.queue.add(start, end, self._statement(m, ts, epoch), False,
                                                     epoch + self.settings.join_window_s)
        slot.end = end
        database, table = m.group("db"), rest.rsplit(",", 1)[0]
        relation = f"{database}.{table}" if database else table
        if relation and all(relation != name for name, _ in slot.value.tables):
            slot.value.tables.append((relation, m.group("op")))

    def _connect(self, m: re.Match, ts: str, rest: str, start: int, end: int) -> None:
        failed = m.group("op") == "FAILED_CONNECT" or rest.rsplit(",", 1)[-1].strip() not in ("0", "")
        if not failed and not self.settings.logins:
            return
        user = m.group("user")
        if not user:
            return
        event = make_event(ts, user, "LOGIN_FAILED" if failed else "LOGIN", SOURCE, client_addr=m.group("client") or None,
                           database=m.group("db") or None, success=not failed, session_id=m.group("conn"))
        self.queue.add(start, end, event)

    def _statement(self, m: re.Match, ts: str, epoch: float) -> _Statement:
        return _Statement(ts, epoch, m.group("user"), m.group("client"), m.group("db"), m.group("conn"), m.group("qid"))

    def _close(self, conn: str) -> None:
        slot = self._open.pop(conn, None)
        if slot is not None:
            slot.ready = True

    # -- the slow log ----------------------------------------------------------------

    def _feed_slow(self, line: str, offset: int, length: int) -> None:
        entry = self._entry
        if line.startswith("# "):
            if _SLOW_HEADER.match(line):
                if entry is None or entry.lines is not None or line.startswith("# Time:") or entry.thread:
                    self._complete_entry()
                    entry = self._entry = _SlowEntry(offset)
            elif entry is not None and entry.lines is None:
                self._slow_header(entry, line)
            elif entry is not None:
                entry.lines.append(line)     # a `# ` comment inside a multi-line query
            if entry is not None:
                entry.end = offset + length
            return
        if _SLOW_BANNER.match(line):
            self._complete_entry()           # the server (re)opened the slow log
            return
        if entry is None:
            if line.strip():
                self.bad("slow-log line outside an entry (no '# User@Host:' header before it)", line)
            return
        entry.end = offset + length
        if entry.lines is None:
            stamp = _SLOW_TIMESTAMP.match(line)
            if stamp is None:
                if not _SLOW_PREAMBLE.match(line):    # `use db;` and `SET insert_id=` come before it
                    self.bad("slow-log entry has no 'SET timestamp=' line before its query", line)
                return
            entry.epoch = float(stamp.group(1))
            entry.lines = []
            self.see_time(SLOW, entry.epoch)
            self.expire()
        else:
            entry.lines.append(line)

    def _slow_header(self, entry: _SlowEntry, line: str) -> None:
        m = _SLOW_THREAD.match(line)
        if m:
            entry.thread = m.group(1)
            return
        m = _SLOW_SENT.search(line)
        if m:
            entry.rows_sent = int(m.group(1))
        m = _SLOW_AFFECTED.search(line)
        if m:
            entry.rows_affected = int(m.group(1))

    def _complete_entry(self) -> None:
        entry, self._entry = self._entry, None
        if entry is None or not entry.lines or not entry.thread:
            return
        lines = entry.lines
        if len(lines) > 1 and _SLOW_USE.match(lines[0]):
            lines = lines[1:]                # `use db;` written when the schema changed
        entry.key = normalise("\n".join(lines))
        entry.lines = []
        self._held_slow[id(entry)] = entry.start
        slot = self._find_waiting(entry.thread, entry.key)
        if slot is not None:
            self._join(slot, entry)
            return
        self._slow_by_thread.setdefault(entry.thread, []).append(entry)
        self._slow_order.append(entry)
        self._expire_slow()

    # -- the join ------------------------------------------------------------------

    def _join(self, slot: Slot, entry: _SlowEntry) -> None:
        statement: _Statement = slot.value
        statement.rows_sent, statement.rows_affected, statement.slow = entry.rows_sent, entry.rows_affected, entry
        entry.matched = True
        slot.ready = True

    def _matches(self, audit_key: str, slow_key: str) -> bool:
        if audit_key == slow_key:
            return True
        truncated = len(audit_key) >= self.settings.query_log_limit - 1
        return truncated and slow_key.startswith(audit_key)

    def _find_slow(self, conn: str, key: str) -> _SlowEntry | None:
        entries = self._slow_by_thread.get(conn)
        if not entries:
            return None
        for i, entry in enumerate(entries):
            if not entry.matched and self._matches(key, entry.key):
                del entries[i]
                return entry
        return None

    def _find_waiting(self, thread: str, key: str) -> Slot | None:
        slots = self._waiting.get(thread)
        if not slots:
            return None
        for i, slot in enumerate(slots):
            if not slot.ready and self._matches(slot.value.key, key):
                del slots[i]
                return slot
        return None

    def _expire_slow(self) -> None:
        """Drop slow-log entries that no audit record claimed within the join window."""
        order = self._slow_order
        if not order:
            return
        deadline = self.clock() - self.settings.join_window_s
        keep = 0
        while keep < len(order) and (order[keep].matched or order[keep].epoch < deadline):
            entry = order[keep]
            if not entry.matched:
                self._held_slow.pop(id(entry), None)
                thread = self._slow_by_thread.get(entry.thread)
                if thread and entry in thread:
                    thread.remove(entry)
            keep += 1
        if keep:
            del order[:keep]

    def caught_up(self, input: str = MAIN):
        batch = super().caught_up(input)
        self._expire_slow()
        return batch
