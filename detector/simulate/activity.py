"""Statements as a person runs them, and their turning into contract events.

`Activity` is the pen every role, service and scenario writes with: it records
statements at a moving clock (`t`, local milliseconds since midnight) with the
account, tool and address in use, occasionally fumbles one the way people do
(a typo, a timeout) and keeps the day's tally of personal-data rows.
`to_events` then groups statements into sessions, adds their LOGIN (and mistyped
LOGIN_FAILED) events and serialises everything to contract JSON lines.
"""

from __future__ import annotations

from datetime import date, timedelta

import orjson

from detector.simulate.dice import Dice
from detector.simulate.plans import DAY_MS, DayContext
from detector.simulate.schema import DATABASES

# Record layout (a tuple, for speed):
T, DB, APP, ADDR, ACTION, SQL, ROWS, OK, OBJ, INC, ACCOUNT, SKEY = range(12)
MACHINE_APPS = frozenset({"crm-web", "waybill-console", "dispatch-app", "finance-portal", "Tableau 2024.2", "psqlODBC",
                          "pg_dump", "mysqldump"})
NO_LOGIN = -1          # session key of records that are themselves connection attempts (LOGIN_FAILED bursts)
_SOURCE = {name: db.source for name, db in DATABASES.items()}
_TYPOS = (("SELECT", "SELCT"), ("FROM", "FORM"), ("WHERE", "WHER"), ("select", "selct"), ("from", "form"),
          ("ORDER BY", "ORDER BY BY"), ("GROUP BY", "GROUPBY"), ("customers", "customer"), ("waybills", "waybill"))


class Activity:
    """Records one entity's statements for one local day."""

    __slots__ = ("d", "out", "t", "account", "app", "addr", "incident", "err", "skey", "n",
                 "sens_rows", "max_sens", "cats", "day", "iso", "_ago")

    def __init__(self, d: Dice, out: list, ctx: DayContext, account: str, app: str | None, addr: str,
                 incident: int = -1, err: float = 0.0) -> None:
        self.d, self.out = d, out
        self.t = 0
        self.account, self.app, self.addr = account, app, addr
        self.incident, self.err = incident, err
        self.skey: int | None = None
        self.n = 0
        self.sens_rows = 0
        self.max_sens = 0
        self.cats: set[str] = set()
        self.day: date = ctx.day
        self.iso = ctx.iso
        self._ago: dict[int, str] = {}

    def q(self, db: str, sql: str, rows: int | None = None, action: str = "SELECT",
          obj: tuple[str, ...] | None = None, sens: bool = False, cat: str = "") -> None:
        """One statement at the current time; the clock moves on a few milliseconds."""
        if self.err and self.d.u() < self.err:
            self._fumble(db, sql, action, obj)
        self.out.append((self.t, db, self.app, self.addr, action, sql, rows, True, obj, self.incident, self.account, self.skey))
        self.n += 1
        if sens and rows:
            self.sens_rows += rows
            if rows > self.max_sens:
                self.max_sens = rows
        if cat:
            self.cats.update(cat)
        self.t += 2 + int(self.d.u() * 40)

    def fail(self, db: str, sql: str, action: str = "SELECT", obj: tuple[str, ...] | None = None) -> None:
        """A statement the server refused (permission denied, missing relation ...)."""
        self.out.append((self.t, db, self.app, self.addr, action, sql, None, False, obj, self.incident, self.account, self.skey))
        self.n += 1
        self.t += 2 + int(self.d.u() * 40)

    def login_failures(self, db: str, n: int) -> None:
        """n rejected connection attempts just before now (a wrong or guessed password)."""
        t = self.t
        for _ in range(n):
            t = max(0, t - 2000 - self.d.below(25_000))
            self.out.append((t, db, self.app, self.addr, "LOGIN_FAILED", None, None, False, None, self.incident,
                             self.account, NO_LOGIN))

    def _fumble(self, db: str, sql: str, action: str, obj: tuple[str, ...] | None) -> None:
        d = self.d
        bad = sql
        if self.app in MACHINE_APPS:
            if d.chance(0.1):                  # an application's statement timed out or deadlocked
                self.fail(db, sql, action, obj)
                self.wait(1, 8)
            return
        if d.chance(0.7):
            for good, typo in d.shuffled(_TYPOS):
                if good in sql:
                    bad = sql.replace(good, typo, 1)
                    break
        self.fail(db, bad, action, obj)
        self.wait(4, 45)

    def wait(self, lo_s: float, hi_s: float) -> None:
        self.t += int((lo_s + (hi_s - lo_s) * self.d.u()) * 1000)

    def tick(self) -> None:
        """The next statement of the same page load."""
        self.t += 5 + int(self.d.u() * 120)

    def ago(self, days: int) -> str:
        s = self._ago.get(days)
        if s is None:
            s = self._ago[days] = (self.day - timedelta(days=days)).isoformat()
        return s

    def stamp(self, days_back: int = 0) -> str:
        """A 'YYYY-MM-DD HH:MM:SS' literal around the current time."""
        h, m = divmod((self.t // 60_000) % 1440, 60)
        return f"{self.ago(days_back)} {h:02d}:{m:02d}:{(self.t // 1000) % 60:02d}"


class SessionRules:
    """How an entity's statements become sessions and how complete its events are."""

    __slots__ = ("gap_ms", "typo", "id_share", "objects_share")

    def __init__(self, gap_ms: int, typo: float, id_share: dict[str, float], objects_share: float) -> None:
        self.gap_ms, self.typo, self.id_share, self.objects_share = gap_ms, typo, id_share, objects_share


def to_events(records: list[tuple], employee_id: str, rules: SessionRules, ctx: DayContext, d: Dice,
              sink: list[tuple[int, bytes, int]]) -> None:
    """Sessions, logins and JSON for one entity-day; appends (utc_ms, line, incident) to `sink`."""
    if not records:
        return
    groups: dict[tuple, list[tuple]] = {}
    for r in records:
        if r[T] >= DAY_MS:
            r = (DAY_MS - 1 - d.below(60_000),) + r[1:]
        key = (r[ACCOUNT], r[DB], r[APP], r[ADDR], r[SKEY])
        g = groups.get(key)
        if g is None:
            groups[key] = [r]
        else:
            g.append(r)
    base = ctx.base_ms
    prefix = b'{"ts":"' + ctx.ts_prefix.encode()
    suffix = ctx.ts_suffix.encode() + b'",'
    dumps = orjson.dumps
    clock, millis = _CLOCK, _MILLIS
    gap = rules.gap_ms
    share = rules.objects_share
    for key in sorted(groups, key=lambda k: (groups[k][0][T], str(k))):
        rs = groups[key]
        rs.sort(key=_by_time)
        account, db, app, addr, _ = key
        source = _SOURCE[db]
        mariadb = source == "mariadb_audit"
        start = 0
        while start < len(rs):
            end = start + 1
            while end < len(rs) and rs[end][T] - rs[end - 1][T] <= gap:
                end += 1
            session = rs[start:end]
            start = end
            t0 = session[0][T]
            incs = {r[INC] for r in session}
            inc = incs.pop() if len(incs) == 1 else -1
            login_t = max(0, t0 - 200 - d.below(2500))
            if source == "pgaudit":
                sid = f"{(base + login_t) // 1000:x}.{d.between(1200, 4_190_000):x}"
            else:
                sid = str(d.between(100_000, 9_999_999))
            head: dict = {"db_user": account}
            if d.u() < rules.id_share[source]:
                head["employee_id"] = employee_id
            head["client_addr"] = addr
            if app is not None and (not mariadb or d.u() < 0.6):
                head["application"] = app
            head["database"] = db
            # Every event of the session shares these bytes; only time, action and statement change.
            middle = dumps(head)[1:-1] + b',"action":"'
            tail = b',"session_id":' + dumps(sid) + b',"source":"' + source.encode() + b'"}'
            if key[4] != NO_LOGIN:
                if d.u() < rules.typo:
                    for k in range(1 if d.u() < 0.8 else d.between(2, 3)):
                        ft = max(0, login_t - 4000 - d.below(30_000) - 15_000 * k)
                        sec, ms = divmod(ft, 1000)
                        sink.append((base + ft, b"".join((prefix, clock[sec], millis[ms], suffix, middle,
                                                         b'LOGIN_FAILED","success":false', tail)), inc))
                sec, ms = divmod(login_t, 1000)
                sink.append((base + login_t, b"".join((prefix, clock[sec], millis[ms], suffix, middle,
                                                      b'LOGIN","success":true', tail)), inc))
            for r in session:
                t = r[T]
                sec, ms = divmod(t, 1000)
                parts = [prefix, clock[sec], millis[ms], suffix, middle, _ACTIONS[r[ACTION]]]
                obj = r[OBJ]
                if obj is not None and d.u() < share:
                    parts.append(_objects_json(obj))
                rows = r[ROWS]
                if rows is not None and not (mariadb and d.u() < 0.05):
                    parts.append(b',"rows":%d' % rows)
                sql = r[SQL]
                if sql is not None:
                    parts.append(b',"statement":' + dumps(sql))
                parts.append(b',"success":true' if r[OK] else b',"success":false')
                parts.append(tail)
                sink.append((base + t, b"".join(parts), r[INC]))


_ACTIONS = {a: a.encode() + b'"' for a in ("SELECT", "INSERT", "UPDATE", "DELETE", "COPY", "EXPORT", "DDL", "LOGIN",
                                           "LOGIN_FAILED", "OTHER")}
_OBJECTS_JSON: dict[tuple[str, ...], bytes] = {}


def _objects_json(obj: tuple[str, ...]) -> bytes:
    found = _OBJECTS_JSON.get(obj)
    if found is None:
        found = _OBJECTS_JSON[obj] = b',"objects":' + orjson.dumps(list(obj))
    return found


def _by_time(r: tuple) -> int:
    return r[T]


_CLOCK = [f"{h:02d}:{m:02d}:{s:02d}.".encode() for h in range(24) for m in range(60) for s in range(60)]
_MILLIS = [f"{i:03d}".encode() for i in range(1000)]
