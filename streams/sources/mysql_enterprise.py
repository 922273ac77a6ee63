"""MySQL Enterprise Audit, JSON format (audit_log_format=JSON) -> contract events.

Why this module exists
----------------------
Oracle's audit log plugin (and component) writes a JSON array of event objects,
pretty-printed over several lines or one per line; `[`, `]` and the commas between
objects are skipped. What becomes an event:

* `class: general`, `event: status` with a query: the statement (`general_data.query`,
  `sql_command`, `status` non-zero = failed), with the rows the client received from
  `query_statistics.rows_sent` when the audit filter adds the query statistics
  (MySQL 8.0.30+), otherwise rows unknown;
* the `table_access` records written just before it on the same connection name the
  tables (`db.table`) of that statement;
* `class: connection`, `event: connect` / `change_user`: LOGIN, or LOGIN_FAILED when its
  `connection_data.status` is non-zero. The database and `program_name` connection
  attribute of a connection are remembered for its later statements (and saved with the
  shipper's position, so a restart still knows them).

The account is `login.user` (the user the client logged in as), else `account.user`;
the client is `login.ip`, else `account.host`. Timestamps are UTC (`timestamp`, or the
epoch `time` when audit_log_format_unix_timestamp is on). Nothing here logs or raises on a
record; a statement never appears in a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from streams.sources.base import (CONTEXT_LIMIT, MAIN, Clock, IdentityRule, JsonDocumentAdapter, SET_STATEMENT,
                                  action_of_statement, iso_utc, make_event)

SOURCE = "mysql_enterprise_audit"
SQL_COMMAND_ACTIONS = {
    "select": "SELECT", "insert": "INSERT", "insert_select": "INSERT", "replace": "INSERT",
    "replace_select": "INSERT", "load": "INSERT", "update": "UPDATE", "update_multi": "UPDATE",
    "delete": "DELETE", "delete_multi": "DELETE", "truncate": "DELETE", "grant": "DDL", "revoke": "DDL",
    "rename_table": "DDL", "grant_role": "DDL", "revoke_role": "DDL",
}
TRANSACTION_COMMANDS = frozenset({"begin", "commit", "rollback", "savepoint", "release_savepoint",
                                  "rollback_to_savepoint", "xa_start", "xa_end", "xa_prepare", "xa_commit",
                                  "xa_rollback"})
READS = frozenset({"SELECT", "EXPORT", "OTHER"})
_CLOCK = Clock("UTC")       # timestamps are UTC


def mysql_action(sql_command: str, query: str | None) -> str:
    """`general_data.sql_command` -> contract action; `create_*`, `alter_*`, `drop_*` are DDL."""
    action = SQL_COMMAND_ACTIONS.get(sql_command)
    if action is None:
        if sql_command.startswith(("create_", "alter_", "drop_")):
            return "DDL"
        return action_of_statement(query) if query else "OTHER"
    if action == "SELECT" and query:
        return action_of_statement(query) if "into" in query.lower() else action
    return action


@dataclass(slots=True)
class _Connection:
    database: str | None = None
    application: str | None = None


class _Statement:
    __slots__ = ("record", "tables")

    def __init__(self, record: dict | None) -> None:
        self.record = record
        self.tables: list[str] = []


@dataclass(frozen=True)
class MysqlEnterpriseSettings:
    identity_pattern: str | None = None
    group_window_s: float = 2.0
    logins: bool = True


class MysqlEnterpriseAdapter(JsonDocumentAdapter):
    """MySQL Enterprise Audit JSON -> contract events (see the module docstring)."""

    kind = "audit log"
    source = SOURCE

    def __init__(self, settings: MysqlEnterpriseSettings | None = None) -> None:
        super().__init__()
        self.settings = settings = settings or MysqlEnterpriseSettings()
        self.identity = IdentityRule(settings.identity_pattern)
        self._connections: dict[str, _Connection] = {}

    def _finish(self, value) -> dict | None:
        if value is None or type(value) is dict:
            return value
        return self._statement_event(value)

    def _document(self, text: str, start: int, end: int, record=None) -> None:
        if record is None:
            try:
                record = orjson.loads(text)
            except orjson.JSONDecodeError:
                self.bad("audit record is not valid JSON", text)
                return
        if not isinstance(record, dict) or "class" not in record:
            self.bad("audit record is not an object with a 'class'", text)
            return
        try:
            self._record(record, start, end)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            self.bad(f"audit record cannot be read ({type(exc).__name__})", text)

    def _record(self, record: dict, start: int, end: int) -> None:
        ts, epoch = self._time(record)
        self.see_time(MAIN, epoch)
        self.expire()
        klass, conn = record.get("class"), str(record.get("connection_id", ""))
        if klass == "table_access":
            self._table_access(record, conn, start, end, epoch)
        elif klass == "general":
            self._general(record, conn, start, end)
        elif klass == "connection":
            self._close(conn)
            self._connection(record, conn, ts, start, end)

    def _table_access(self, record: dict, conn: str, start: int, end: int, epoch: float) -> None:
        data = record.get("table_access_data") or {}
        slot = self._open.get(conn)
        if slot is None:
            slot = self._open[conn] = self.queue.add(start, end, _Statement(None), False,
                                                     epoch + self.settings.group_window_s)
        slot.end = end
        name = ".".join(p for p in (data.get("db"), data.get("table")) if p)
        if name and name not in slot.value.tables:
            slot.value.tables.append(name)

    def _general(self, record: dict, conn: str, start: int, end: int) -> None:
        data = record.get("general_data") or {}
        query = data.get("query")
        slot = self._open.pop(conn, None)
        if not query:
            if slot is not None:
                slot.ready = True
            return
        if slot is None:
            slot = self.queue.add(start, end, _Statement(record))
        else:
            slot.value.record, slot.end, slot.ready = record, end, True
        if SET_STATEMENT.match(query):
            self.identity.observe_set(conn, query)

    def _connection(self, record: dict, conn: str, ts: str, start: int, end: int) -> None:
        event = record.get("event")
        data = record.get("connection_data") or {}
        if event not in ("connect", "change_user"):
            return   # a disconnect keeps the connection's facts: records before it may be re-read after a restart
        attributes = data.get("connection_attributes") or {}
        state = _Connection(data.get("db") or None, attributes.get("program_name") or None)
        self._remember(conn, state)
        failed = int(data.get("status") or 0) != 0
        user, client = self._who(record)
        if not user or (not failed and not self.settings.logins):
            return
        self.queue.add(start, end, make_event(
            ts, user, "LOGIN_FAILED" if failed else "LOGIN", SOURCE,
            employee_id=self.identity.employee(conn, state.application), client_addr=client,
            application=state.application, database=state.database, success=not failed, session_id=conn))

    def _remember(self, conn: str, state: _Connection) -> None:
        self._connections.pop(conn, None)
        self._connections[conn] = state
        if len(self._connections) > 100_000:
            del self._connections[next(iter(self._connections))]

    def context(self) -> dict:
        context = super().context()
        newest = list(self._connections.items())[-CONTEXT_LIMIT:]
        context["connections"] = {conn: [c.database, c.application] for conn, c in newest}
        return context

    def restore_context(self, context: dict) -> None:
        super().restore_context(context)
        for conn, facts in (context.get("connections") or {}).items():
            if isinstance(facts, list) and len(facts) == 2:
                self._remember(str(conn), _Connection(*facts))

    def _statement_event(self, statement: _Statement) -> dict | None:
        record = statement.record
        if record is None:
            return None   # table_access records whose statement record never came
        data = record.get("general_data") or {}
        query, sql_command = data.get("query"), str(data.get("sql_command") or "")
        if sql_command in TRANSACTION_COMMANDS:
            return None
        user, client = self._who(record)
        if not user:
            return None
        conn = str(record.get("connection_id", ""))
        state = self._connections.get(conn) or _Connection()
        action = mysql_action(sql_command, query)
        stats = record.get("query_statistics") or {}
        rows = stats.get("rows_sent") if action in READS else None
        size = stats.get("bytes_sent")
        ts, _ = self._time(record)
        return make_event(ts, user, action, SOURCE, employee_id=self.identity.employee(conn, state.application),
                          client_addr=client, application=state.application, database=state.database,
                          objects=statement.tables or None, rows=rows if isinstance(rows, int) else None,
                          bytes=size if isinstance(size, int) and size >= 0 else None, statement=query,
                          success=int(data.get("status") or 0) == 0, session_id=conn)

    def _close(self, conn: str) -> None:
        slot = self._open.pop(conn, None)
        if slot is not None:
            slot.ready = True

    @staticmethod
    def _who(record: dict) -> tuple[str | None, str | None]:
        login, account = record.get("login") or {}, record.get("account") or {}
        user = login.get("user") or account.get("user") or None
        client = login.get("ip") or account.get("host") or None
        return user, client

    @staticmethod
    def _time(record: dict) -> tuple[str, float]:
        epoch = record.get("time")
        if isinstance(epoch, (int, float)) and not isinstance(epoch, bool):
            return iso_utc(float(epoch)), float(epoch)
        stamp = str(record.get("timestamp", ""))
        if len(stamp) < 19:
            raise ValueError("no timestamp")
        return _CLOCK.local(stamp[:10], stamp[11:19], stamp[19:])
