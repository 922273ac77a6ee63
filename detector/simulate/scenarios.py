"""Exfiltration scenarios: who, when, how hard, and the statements they run.

Incidents are planned after the training period has been generated, so each one
is calibrated against the perpetrator's *own* history (`History`): a subtle
incident is small in absolute terms but still clearly unlike that person's past,
a blatant one is unmistakable. Every incident lands in the test period, on a day
the person is at work unless the scenario says otherwise, and its statements are
interleaved with that day's ordinary work. An incident's label spans its first
to its last malicious event.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from statistics import median

from detector.simulate import fakes
from detector.simulate.activity import Activity
from detector.simulate.company import (
    ANALYST, CS, DBA, DEVELOPER, DISPATCH, FINANCE, SALES, SHIFT_ROLES, AddressBook, Employee, Persona,
)
from detector.simulate.config import SimulationConfig
from detector.simulate.dice import Dice
from detector.simulate.plans import DAY_MS, HOUR, MIN, DayContext, DayPlan
from detector.simulate.clients import CRM_WEB, DISPATCH_APP, FINANCE_PORTAL, WAYBILL_CONSOLE, client
from detector.simulate.schema import (
    BILLING, CRM, LOGISTICS, O_ADDRESSES, O_COURIERS, O_CUSTOMERS, O_INVOICES, O_ORDERS, O_PAYMENTS, O_PICKUPS,
    O_REFUNDS, O_WAYBILLS, RELATIONS,
)

SCENARIOS = ("bulk_dump", "copy_export", "rapid_enumeration", "paging_export", "low_and_slow", "unusual_columns",
             "offhours_new_address", "departing_employee", "credential_misuse", "slow_enumeration")
INTENSITIES = ("subtle", "moderate", "blatant")
_INTENSITY_CUM = (0.4, 0.75, 1.0)


@dataclass
class History:
    """What a person did during the training period (ordinary work only)."""

    active_days: int = 0
    statements: list[int] = field(default_factory=list)
    sens_rows: list[int] = field(default_factory=list)
    max_sens: int = 0
    cats: set[str] = field(default_factory=set)
    addrs: set[str] = field(default_factory=set)
    apps: set[str | None] = field(default_factory=set)
    dbs: set[str] = field(default_factory=set)

    def usual_sens(self) -> float:
        """Typical personal-data rows on a working day (never below a small floor)."""
        return max(40.0, median(self.sens_rows)) if self.sens_rows else 40.0


@dataclass(frozen=True)
class Target:
    """A relation worth stealing, as an exfiltrator would query it."""

    db: str
    table: str                    # as written in SQL on that database
    cols: str                     # the personal columns selected
    obj: tuple[str, ...]
    size: int
    cat: str                      # "I" (national id), "B" (bank card) or ""
    key: str                      # ordering / paging key
    filters: tuple[str, ...]      # WHERE clauses ({city} {cshort} {prov} {since} {until} {stations})
    all_cols: str = "*"


TARGETS: dict[str, Target] = {
    "customers": Target(CRM, "customers", "id, name, phone, id_card_no, address", O_CUSTOMERS, 2_400_000, "I", "id",
                        ("city = '{city}'", "province = '{prov}'", "created_at >= '{since}'", "member_level >= 4",
                         "last_order_at >= '{since}'")),
    "customers_card": Target(CRM, "customers", "id, name, phone, id_card_no, bank_card, address", O_CUSTOMERS, 2_400_000, "IB",
                             "id", ("city = '{city}'", "province = '{prov}'", "member_level >= 3", "last_order_at >= '{since}'")),
    "orders": Target(CRM, "orders", "order_no, ship_name, ship_phone, ship_address, total_amount", O_ORDERS, 31_000_000, "",
                     "id", ("created_at >= '{since}' AND created_at < '{until}'", "store_id IN ({stations})")),
    "addresses": Target(CRM, "customer_addresses", "customer_id, receiver_name, receiver_phone, city, detail_address",
                        O_ADDRESSES, 3_900_000, "", "id", ("city = '{city}'", "created_at >= '{since}'")),
    "waybills": Target(LOGISTICS, "waybills", "waybill_no, receiver_name, receiver_phone, receiver_address", O_WAYBILLS,
                       19_000_000, "", "waybill_no",
                       ("created_at >= '{since}' AND created_at < '{until}'", "receiver_city = '{cshort}'",
                        "dest_station_id IN ({stations})")),
    "pickups": Target(LOGISTICS, "pickup_requests", "id, contact_name, contact_phone, pickup_address", O_PICKUPS, 2_300_000,
                      "", "id", ("city = '{cshort}'", "created_at >= '{since}'")),
    "couriers": Target(LOGISTICS, "couriers", "courier_id, name, phone, id_card_no", O_COURIERS, 14_000, "I", "courier_id",
                       ("status = 'ON_DUTY'", "hired_at >= '2020-01-01'")),
    "payments": Target(BILLING, "finance.payments", "id, card_holder, bank_card, amount, paid_at", O_PAYMENTS, 29_000_000, "B",
                       "id", ("paid_at >= '{since}' AND paid_at < '{until}'", "method = 'bank_card' AND amount > 500")),
    "refunds": Target(BILLING, "finance.refunds", "id, card_holder, bank_card, amount", O_REFUNDS, 1_100_000, "B", "id",
                      ("created_at >= '{since}'", "status = 'PAID'")),
    "invoices": Target(BILLING, "finance.invoices", "id, buyer_name, buyer_phone, buyer_address", O_INVOICES, 6_000_000, "",
                       "id", ("issued_at >= '{since}'",)),
}
ROLE_TARGETS = {
    CS: ("customers", "orders", "waybills", "customers_card"), DISPATCH: ("waybills", "pickups", "couriers"),
    SALES: ("customers", "customers_card", "addresses"), ANALYST: ("customers_card", "orders", "waybills", "payments"),
    FINANCE: ("payments", "refunds", "invoices", "customers_card"), DBA: ("customers_card", "payments", "waybills"),
    DEVELOPER: ("customers_card", "orders", "waybills"),
}
_ROLE_WEIGHTS: dict[str, dict[str, float]] = {
    "bulk_dump": {CS: 1, DISPATCH: 1, SALES: 1, ANALYST: 1, FINANCE: 1, DBA: 0.7, DEVELOPER: 1},
    "copy_export": {CS: 0.5, DISPATCH: 0.4, SALES: 0.5, ANALYST: 1.5, FINANCE: 1, DBA: 1.5, DEVELOPER: 1.5},
    "rapid_enumeration": {CS: 1.5, DISPATCH: 1, SALES: 1, ANALYST: 0.7, FINANCE: 0.7, DBA: 0.5, DEVELOPER: 1},
    "paging_export": {CS: 1, DISPATCH: 1, SALES: 1.2, ANALYST: 1, FINANCE: 1, DBA: 0.6, DEVELOPER: 1},
    "low_and_slow": {CS: 1.5, DISPATCH: 1.5, SALES: 1.5, ANALYST: 0.6, FINANCE: 1},
    "unusual_columns": {CS: 1, DISPATCH: 1.5, SALES: 1.5, ANALYST: 1, FINANCE: 0.5, DBA: 0.3, DEVELOPER: 1},
    "offhours_new_address": {CS: 1, DISPATCH: 1, SALES: 1, ANALYST: 1, FINANCE: 1, DBA: 0.5, DEVELOPER: 1},
    "departing_employee": {CS: 1.3, DISPATCH: 1, SALES: 1.5, ANALYST: 1, FINANCE: 1, DBA: 0.5, DEVELOPER: 1},
    "credential_misuse": {CS: 1, DISPATCH: 1, SALES: 1, ANALYST: 0.8, FINANCE: 0.5, DBA: 0.2, DEVELOPER: 1},
    "slow_enumeration": {CS: 1.5, DISPATCH: 1, SALES: 1, ANALYST: 0.7, FINANCE: 0.7, DBA: 0.4, DEVELOPER: 1},
}
NEW_TOOLS_PG = ("DBeaver 24.1.5 - SQLEditor <Script-1.sql>", None, "psql", "DataGrip 2024.2.3", "DBeaver 23.3.5 - SQLEditor <Script.sql>")
NEW_TOOLS_MY = ("DBeaver 24.1.5 - SQLEditor <Script-1.sql>", None, "mysql", "pymysql", "Navicat Premium 16.3")


@dataclass
class Incident:
    index: int
    incident_id: str
    scenario: str
    employee: Employee
    intensity: str
    days: tuple[int, ...]               # day indices with malicious activity
    params: dict
    detail: str = ""


@dataclass
class Planner:
    config: SimulationConfig
    people: list[Employee]
    plans: dict[int, list[DayPlan]]
    days: list[DayContext]
    history: dict[int, History]
    book: AddressBook
    d: Dice

    def test_workdays(self, e: Employee) -> list[int]:
        out = []
        for ctx in self.days:
            if not ctx.test:
                continue
            plan = self.plans[e.index][ctx.index]
            if plan.works and plan.spans and "ramp" not in plan.flags:
                out.append(ctx.index)
        return out

    def work_time(self, plan: DayPlan) -> int:
        spans = [s for s in plan.spans if s[1] - s[0] > 40 * MIN]
        s, b = self.d.pick(spans or plan.spans)
        return s + self.d.below(max(1, b - s - 30 * MIN))

    def consecutive(self, workdays: list[int], n: int) -> list[int]:
        n = max(1, min(n, len(workdays)))
        start = self.d.below(len(workdays) - n + 1)
        return workdays[start:start + n]


def _intensity(d: Dice) -> str:
    return d.pick_cum(INTENSITIES, _INTENSITY_CUM)


def _scaled(d: Dice, intensity: str, base: float, subtle: tuple[float, float], moderate: tuple[float, float],
            blatant: tuple[float, float], floors: tuple[int, int, int]) -> int:
    lo, hi = {"subtle": subtle, "moderate": moderate, "blatant": blatant}[intensity]
    floor = floors[INTENSITIES.index(intensity)]
    return int(max(base * d.loguniform(lo, hi), floor * d.uniform(1.0, 1.6)))


def _target(d: Dice, role: str, exclude: tuple[str, ...] = ()) -> str:
    options = [t for t in ROLE_TARGETS[role] if t not in exclude] or list(ROLE_TARGETS[role])
    return d.pick(options)


def _attack_tool(d: Dice, p: Persona, db: str, new: bool) -> tuple[str | None, bool]:
    """(application, is_sql_client_of_their_own)."""
    if p.sql_app and not new:
        return "__own__", True
    return d.pick(NEW_TOOLS_MY if db == LOGISTICS else NEW_TOOLS_PG), False


def _set_app(a: Activity, p: Persona, db: str, app: str | None) -> None:
    if app == "__own__":
        client(a, p, db)
    elif app == "psql" and db == LOGISTICS:
        a.app = "mysql"
    elif app in ("mysql", "pymysql") and db != LOGISTICS:
        a.app = "psql"
    elif app == "Navicat Premium 16.3":
        a.app = None
    else:
        a.app = app


def _where(a: Activity, t: Target, p: Persona, clause: str) -> str:
    d = a.d
    city = d.pick(fakes.CITIES)
    return clause.format(city=city.name, cshort=city.short, prov=d.pick(fakes.PROVINCES),
                         since=a.ago(d.between(20, 400)), until=a.ago(d.between(0, 19)),
                         stations=", ".join(str(d.between(101, 998)) for _ in range(d.between(3, 12))))


# ---------------------------------------------------------------- planning

def plan_incidents(pl: Planner) -> list[Incident]:
    """incidents_per_scenario incidents of every scenario, each on its own person where possible."""
    d = pl.d
    incidents: list[Incident] = []
    used: dict[int, int] = {}
    role_count: dict[str, int] = {}
    busy: dict[int, set[int]] = {}
    base_pool = [e for e in pl.people if e.human and not e.new_hire and e.role_since is None and not e.benign_departure
                 and pl.history[e.index].active_days >= 4 and pl.test_workdays(e)]
    order = [s for _ in range(pl.config.incidents_per_scenario) for s in SCENARIOS]
    for scenario in order:
        planner = _PLANNERS[scenario]
        weights = _ROLE_WEIGHTS[scenario]
        candidates = [e for e in base_pool if e.role in weights and _eligible(pl, scenario, e)]
        if not candidates:
            candidates = [e for e in base_pool if e.role in weights]
        if not candidates:
            continue
        fresh = [e for e in candidates if e.index not in used] or candidates
        w = [weights[e.role] / (1.0 + role_count.get(e.role, 0)) / (1.0 + 3 * used.get(e.index, 0)) for e in fresh]
        cum, acc = [], 0.0
        for x in w:
            acc += x
            cum.append(acc)
        for attempt in range(40):
            e = d.pick_cum(fresh, cum)
            inc = planner(pl, e, len(incidents), _intensity(d))
            if inc is None:
                continue
            if busy.get(e.index, set()).intersection(inc.days) and attempt < 30:
                continue                # a tiny company may have to give someone two overlapping incidents
            busy.setdefault(e.index, set()).update(inc.days)
            if scenario == "departing_employee":
                e.notice_date, e.end_date = inc.params["notice"], inc.params["end"]
            incidents.append(inc)
            used[e.index] = used.get(e.index, 0) + 1
            role_count[e.role] = role_count.get(e.role, 0) + 1
            break
    return incidents


def _eligible(pl: Planner, scenario: str, e: Employee) -> bool:
    h = pl.history[e.index]
    if scenario == "low_and_slow":
        return h.usual_sens() >= 60 and len(pl.test_workdays(e)) >= 3
    if scenario == "unusual_columns":
        return bool({"I", "B"} - h.cats)
    if scenario == "departing_employee":
        return e.notice_date is None
    return True


def _new(pl: Planner, e: Employee, index: int, scenario: str, intensity: str, days: list[int], detail: str,
         **params) -> Incident:
    return Incident(index=index, incident_id=f"INC-{index + 1:04d}", scenario=scenario, employee=e, intensity=intensity,
                    days=tuple(days), params=params, detail=detail)


def _plan_bulk(pl: Planner, e: Employee, index: int, intensity: str) -> Incident | None:
    d, h = pl.d, pl.history[e.index]
    workdays = pl.test_workdays(e)
    if not workdays:
        return None
    day = d.pick(workdays)
    p = e.persona_on(pl.days[day].day)
    tkey = _target(d, e.role)
    t = TARGETS[tkey]
    rows = min(t.size, _scaled(d, intensity, h.usual_sens(), (4, 8), (10, 40), (50, 400), (800, 6000, 50_000)))
    n = d.between(1, 3) if intensity != "blatant" else d.between(1, 2)
    web = p.sql_app is None and t.db == CRM and e.role in (CS, SALES) and d.chance(0.4)
    app, _own = _attack_tool(d, p, t.db, new=p.sql_app is None)
    start = pl.work_time(pl.plans[e.index][day]) if d.chance(0.8) else d.between(18 * 60 + 30, 22 * 60) * MIN
    via = "crm-web export" if web else (app if app != "__own__" else "own SQL client") or "unnamed client"
    return _new(pl, e, index, "bulk_dump", intensity, [day], f"{n} statement(s) reading {rows} rows of {t.obj[0]} via {via}",
                target=tkey, rows=rows, n=n, web=web, app=app, start=start)


def _plan_copy(pl: Planner, e: Employee, index: int, intensity: str) -> Incident | None:
    d, h = pl.d, pl.history[e.index]
    workdays = pl.test_workdays(e)
    if not workdays:
        return None
    day = d.pick(workdays)
    p = e.persona_on(pl.days[day].day)
    tkey = _target(d, e.role)
    t = TARGETS[tkey]
    if t.db == LOGISTICS:
        variant = d.pick(("outfile", "mysqldump"))
    else:
        variant = d.pick(("copy_query", "copy_query", "copy_table", "pg_dump"))
    whole = variant in ("copy_table", "pg_dump") or (intensity == "blatant" and d.chance(0.6))
    rows = t.size if whole else min(t.size, _scaled(d, intensity, h.usual_sens(), (4, 10), (10, 50), (50, 300),
                                                    (1000, 8000, 60_000)))
    known = d.chance(0.5)
    app, _own = _attack_tool(d, p, t.db, new=p.sql_app is None or variant in ("pg_dump", "mysqldump"))
    start = pl.work_time(pl.plans[e.index][day]) if d.chance(0.75) else d.between(18 * 60 + 30, 23 * 60) * MIN
    return _new(pl, e, index, "copy_export", intensity, [day],
                f"{variant} of {t.obj[0]} ({rows} rows{'' if known else ', count not logged'})",
                target=tkey, variant=variant, whole=whole, rows=rows, known=known, app=app, start=start)


_KEYS = {CS: ("customer_id", "phone", "waybill"), DISPATCH: ("waybill", "courier"), SALES: ("customer_id", "phone"),
         ANALYST: ("customer_id", "waybill", "payment"), FINANCE: ("payment", "customer_id"),
         DBA: ("customer_id", "payment"), DEVELOPER: ("customer_id", "waybill")}


def _plan_rapid(pl: Planner, e: Employee, index: int, intensity: str) -> Incident | None:
    d = pl.d
    workdays = pl.test_workdays(e)
    if not workdays:
        return None
    day = d.pick(workdays)
    n = {"subtle": d.between(150, 400), "moderate": d.between(400, 2000), "blatant": d.between(2000, 12000)}[intensity]
    rate = {"subtle": d.uniform(0.15, 0.8), "moderate": d.uniform(0.8, 5), "blatant": d.uniform(5, 25)}[intensity]
    kind = d.pick(_KEYS[e.role])
    own_app = intensity == "subtle" and d.chance(0.6) or d.chance(0.2)
    scripts = (None, "mysql", "pymysql") if kind in ("waybill", "courier") else (None, "psql", "python3")
    app = None if own_app else d.pick(scripts)
    start = pl.work_time(pl.plans[e.index][day]) if d.chance(0.75) else d.between(19 * 60, 22 * 60) * MIN
    step = 1 if d.chance(0.7) else d.between(2, 7)
    return _new(pl, e, index, "rapid_enumeration", intensity, [day],
                f"{n} single-row lookups by sequential {kind} at ~{rate:.1f}/s via {'their usual tool' if own_app else app or 'unnamed script'}",
                n=n, rate=rate, kind=kind, own_app=own_app, app=app, start=start, step=step, first=_first_key(d, kind))


def _first_key(d: Dice, kind: str) -> int:
    return {"customer_id": d.between(100_000, 2_000_000), "phone": int(d.pick(fakes.MOBILE_PREFIXES)) * 10**8 + d.below(10**8),
            "waybill": 7_310_000_000_000 + d.below(90_000_000_000), "payment": fakes.payment_id(d),
            "courier": d.between(20000, 30000)}[kind]


def _plan_paging(pl: Planner, e: Employee, index: int, intensity: str) -> Incident | None:
    d, h = pl.d, pl.history[e.index]
    workdays = pl.test_workdays(e)
    if not workdays:
        return None
    day = d.pick(workdays)
    p = e.persona_on(pl.days[day].day)
    tkey = _target(d, e.role, exclude=("couriers",))
    t = TARGETS[tkey]
    size = {"subtle": d.pick((50, 100, 200)), "moderate": d.pick((200, 500, 1000)), "blatant": d.pick((1000, 2000, 5000))}[intensity]
    rows = min(t.size, _scaled(d, intensity, h.usual_sens(), (4, 10), (10, 40), (40, 300), (1500, 10_000, 60_000)))
    pages = max(8, min(3000, rows // size))
    manual = d.chance(0.4 if intensity == "subtle" else 0.15)
    pace = d.uniform(15, 60) if manual else d.uniform(0.3, 3.0)
    web = t.db == CRM and e.role in (CS, SALES) and p.sql_app is None and d.chance(0.6)
    mode = "offset" if web or d.chance(0.6) else "keyset"
    app, _own = _attack_tool(d, p, t.db, new=p.sql_app is None and not web)
    start = pl.work_time(pl.plans[e.index][day]) if d.chance(0.8) else d.between(18 * 60, 22 * 60) * MIN
    return _new(pl, e, index, "paging_export", intensity, [day],
                f"{pages} {mode} pages of {size} rows over {t.obj[0]}, one every ~{pace:.0f}s",
                target=tkey, size=size, pages=pages, pace=pace, mode=mode, web=web, app=app, start=start)


def _plan_low_slow(pl: Planner, e: Employee, index: int, intensity: str) -> Incident | None:
    d, h = pl.d, pl.history[e.index]
    workdays = pl.test_workdays(e)
    if len(workdays) < 2:
        return None
    days = pl.consecutive(workdays, d.between(3, 7))
    factor = {"subtle": d.uniform(1.6, 2.2), "moderate": d.uniform(2.2, 3.0), "blatant": d.uniform(3.0, 4.0)}[intensity]
    surplus = int(h.usual_sens() * (factor - 1.0))
    return _new(pl, e, index, "low_and_slow", intensity, days,
                f"{len(days)} working days at ~{factor:.1f}x own usual personal-data rows (+{surplus}/day) in ordinary-looking queries",
                surplus=surplus)


def _plan_unusual(pl: Planner, e: Employee, index: int, intensity: str) -> Incident | None:
    d, h = pl.d, pl.history[e.index]
    missing = sorted({"I", "B"} - h.cats)
    if not missing:
        return None
    workdays = pl.test_workdays(e)
    if not workdays:
        return None
    cat = d.pick(missing)
    n_days = {"subtle": 1, "moderate": d.between(1, 2), "blatant": d.between(1, 3)}[intensity]
    days = pl.consecutive(workdays, n_days)
    total = {"subtle": d.between(10, 30), "moderate": d.between(30, 100), "blatant": d.between(100, 400)}[intensity]
    column = "id_card_no" if cat == "I" else "bank_card"
    return _new(pl, e, index, "unusual_columns", intensity, days,
                f"{total} statements reading {column}, a column this person never read before", cat=cat, total=total)


def _plan_offhours(pl: Planner, e: Employee, index: int, intensity: str) -> Incident | None:
    d, h = pl.d, pl.history[e.index]
    test_days = [c.index for c in pl.days if c.test]
    off = [k for k in test_days if not pl.plans[e.index][k].works]
    shift = e.role in SHIFT_ROLES
    if off and d.chance(0.4):
        day = d.pick(off)
        start = d.between(10 * 60, 22 * 60) * MIN if d.chance(0.4) else d.between(30, 300) * MIN
    else:
        day = d.pick(test_days)
        if shift or d.chance(0.5):
            start = d.between(30, 300) * MIN
        else:
            start = d.between(int(21.5 * 60), 23 * 60 + 20) * MIN
        if not shift:
            plan = pl.plans[e.index][day]
            if plan.spans and plan.spans[-1][1] > start - HOUR and start > 12 * HOUR:
                start = d.between(30, 300) * MIN
    tkey = _target(d, e.role)
    t = TARGETS[tkey]
    rows = min(t.size, _scaled(d, intensity, h.usual_sens(), (2, 5), (8, 40), (40, 300), (300, 3000, 30_000)))
    n = {"subtle": d.between(5, 20), "moderate": d.between(3, 10), "blatant": d.between(1, 4)}[intensity]
    addr = pl.book.outside() if d.chance(0.7) else pl.book.vpn()
    p = e.persona_on(pl.days[day].day)
    app, _own = _attack_tool(d, p, t.db, new=p.sql_app is None or d.chance(0.3))
    when = "holiday/day off" if not pl.plans[e.index][day].works else "night"
    return _new(pl, e, index, "offhours_new_address", intensity, [day],
                f"{n} statement(s), {rows} rows of {t.obj[0]} at {start // HOUR:02d}h ({when}) from never-seen {addr}",
                target=tkey, rows=rows, n=n, addr=addr, app=app, start=start, failures=d.between(0, 2))


def _plan_departing(pl: Planner, e: Employee, index: int, intensity: str) -> Incident | None:
    d, h = pl.d, pl.history[e.index]
    workdays = pl.test_workdays(e)
    if len(workdays) < 2:
        return None
    notice = max(pl.config.start + timedelta(days=2), pl.config.test_start - timedelta(days=d.between(0, 14)))
    pattern = d.pick(("gradual", "gradual", "final", "steady"))
    days = pl.consecutive(workdays, {"gradual": d.between(2, 5), "final": d.between(1, 2), "steady": d.between(3, 5)}[pattern])
    factor = {"subtle": d.uniform(1.8, 2.5), "moderate": d.uniform(2.5, 4), "blatant": d.uniform(4, 8)}[intensity]
    pull = _scaled(d, intensity, h.usual_sens(), (3, 6), (10, 40), (50, 300), (1000, 10_000, 50_000))
    tkey = _target(d, e.role)
    pull = min(pull, TARGETS[tkey].size)
    p = e.persona_on(pl.days[days[-1]].day)
    app, _own = _attack_tool(d, p, TARGETS[tkey].db, new=p.sql_app is None)
    end = notice + timedelta(days=30)
    if end <= pl.config.end:
        end = pl.config.end + timedelta(days=d.between(3, 20))
    return _new(pl, e, index, "departing_employee", intensity, days,
                f"notice {notice.isoformat()}; {pattern}: " +
                (f"+{factor - 1:.1f}x usual personal-data rows on {len(days)} day(s)" if pattern != "final" else "") +
                (f"{'; ' if pattern != 'final' else ''}final pull of {pull} rows of {TARGETS[tkey].obj[0]}" if pattern != "steady" else ""),
                notice=notice, end=end, pattern=pattern, surplus=int(h.usual_sens() * (factor - 1)), pull=pull,
                target=tkey, app=app, final_at=pl.work_time(pl.plans[e.index][days[-1]]))


def _plan_misuse(pl: Planner, e: Employee, index: int, intensity: str) -> Incident | None:
    d, h = pl.d, pl.history[e.index]
    workdays = pl.test_workdays(e)
    if not workdays:
        return None
    unusual = [k for k, t in TARGETS.items() if t.db not in h.dbs or not set(t.cat) <= h.cats]
    if not unusual:
        return None
    tkey = d.pick(unusual)
    t = TARGETS[tkey]
    day = d.pick(workdays)
    plan = pl.plans[e.index][day]
    u = d.u()
    if u < 0.5:
        start = pl.work_time(plan)
    elif u < 0.7:
        start = plan.spans[0][1] + d.below(30 * MIN) if len(plan.spans) > 1 else pl.work_time(plan)
    else:
        start = d.between(19 * 60 + 30, 23 * 60) * MIN
    if d.chance(0.5):
        addr = pl.book.outside()
    else:
        others = [dep for dep in ("cs-shanghai", "cs-hangzhou", "logistics", "sales-east", "bi", "it-dev")
                  if dep != e.department]
        addr = pl.book.desk(d.pick(others))
    apps = [a for a in (NEW_TOOLS_MY if t.db == LOGISTICS else NEW_TOOLS_PG) if a not in h.apps]
    app = d.pick(apps) if apps else "psql"
    rows = min(t.size, {"subtle": d.between(100, 600), "moderate": d.between(1000, 10_000),
                        "blatant": d.between(10_000, 200_000)}[intensity])
    n = {"subtle": d.between(5, 20), "moderate": d.between(3, 10), "blatant": d.between(1, 5)}[intensity]
    return _new(pl, e, index, "credential_misuse", intensity, [day],
                f"account used from {addr} with {app or 'an unnamed client'}: {n} statement(s), {rows} rows of {t.obj[0]}, "
                "which the owner never reads",
                target=tkey, rows=rows, n=n, addr=addr, app=app, start=start, failures=d.between(0, 4),
                probes=d.between(0, 2))


def _plan_slow(pl: Planner, e: Employee, index: int, intensity: str) -> Incident | None:
    d = pl.d
    workdays = pl.test_workdays(e)
    if not workdays:
        return None
    n_days = {"subtle": 1, "moderate": d.between(1, 2), "blatant": d.between(2, 3)}[intensity]
    days = pl.consecutive(workdays, n_days)
    interval = {"subtle": d.uniform(90, 120), "moderate": d.uniform(45, 90), "blatant": d.uniform(30, 45)}[intensity]
    kind = d.pick(_KEYS[e.role])
    own_app = d.chance(0.5)
    window = {"subtle": "part", "moderate": "workday", "blatant": "allday"}[intensity]
    return _new(pl, e, index, "slow_enumeration", intensity, days,
                f"sequential {kind} lookups every ~{interval:.0f}s ({window}) for {len(days)} day(s) via "
                f"{'their usual tool' if own_app else 'a script'}",
                interval=interval, kind=kind, own_app=own_app, window=window, first=_first_key(d, kind),
                app=None if own_app else d.pick((None, "mysql", "pymysql") if kind in ("waybill", "courier") else (None, "python3", "psql")))


_PLANNERS: dict[str, Callable[[Planner, Employee, int, str], Incident | None]] = {
    "bulk_dump": _plan_bulk, "copy_export": _plan_copy, "rapid_enumeration": _plan_rapid, "paging_export": _plan_paging,
    "low_and_slow": _plan_low_slow, "unusual_columns": _plan_unusual, "offhours_new_address": _plan_offhours,
    "departing_employee": _plan_departing, "credential_misuse": _plan_misuse, "slow_enumeration": _plan_slow,
}


# ---------------------------------------------------------------- emission

@dataclass
class Scene:
    """Everything an incident needs to write one of its days."""

    inc: Incident
    day_index: int
    ctx: DayContext
    plan: DayPlan
    persona: Persona
    a: Activity


def emit(scene: Scene) -> None:
    _EMITTERS[scene.inc.scenario](scene)


def _select(t: Target, cols: str, where: str | None, extra: str = "") -> str:
    sql = f"SELECT {cols} FROM {t.table}"
    if where:
        sql += f" WHERE {where}"
    return sql + extra


def _split(d: Dice, total: int, n: int) -> list[int]:
    if n <= 1:
        return [total]
    w = [d.uniform(0.3, 1.0) for _ in range(n)]
    s = sum(w)
    parts = [max(1, int(total * x / s)) for x in w]
    parts[-1] = max(1, total - sum(parts[:-1]))
    return parts


def _emit_bulk(sc: Scene) -> None:
    a, d, p = sc.a, sc.a.d, sc.persona
    prm = sc.inc.params
    t = TARGETS[prm["target"]]
    a.t = prm["start"]
    if prm["web"]:
        a.app = CRM_WEB
        for rows in _split(d, prm["rows"], prm["n"]):
            city = d.pick(fakes.CITIES)
            a.q(CRM, "select c1_0.id,c1_0.name,c1_0.phone,c1_0.address,c1_0.id_card_no,c1_0.member_level from customers c1_0 "
                     f"where c1_0.city='{city.name}' order by c1_0.id fetch first {max(rows, 10000)} rows only",
                rows, obj=O_CUSTOMERS, sens=True, cat="I")
            a.wait(30, 600)
        return
    _set_app(a, p, t.db, prm["app"])
    whole = sc.inc.intensity == "blatant" and prm["rows"] >= t.size * 0.9
    if d.chance(0.5):
        a.q(t.db, f"SELECT count(*) FROM {t.table}", 1, obj=t.obj)
        a.wait(10, 120)
    for rows in _split(d, prm["rows"], prm["n"]):
        where = None if whole else _where(a, t, p, d.pick(t.filters))
        cols = t.all_cols if d.chance(0.35) else t.cols
        a.q(t.db, _select(t, cols, where), rows, obj=t.obj, sens=True, cat=t.cat if cols != "*" else "IB")
        a.wait(30, 900)


def _emit_copy(sc: Scene) -> None:
    a, d, p = sc.a, sc.a.d, sc.persona
    prm = sc.inc.params
    t = TARGETS[prm["target"]]
    a.t = prm["start"]
    variant, rows = prm["variant"], prm["rows"]
    logged = rows if prm["known"] else None
    where = None if prm["whole"] else _where(a, t, p, d.pick(t.filters))
    if variant == "copy_query":
        _set_app(a, p, t.db, prm["app"])
        inner = _select(t, t.cols, where)
        a.q(t.db, f"COPY ({inner}) TO STDOUT WITH (FORMAT csv, HEADER)", logged, "COPY", t.obj, sens=True, cat=t.cat)
    elif variant == "copy_table":
        _set_app(a, p, t.db, prm["app"])
        schema_table = t.table if "." in t.table else f"public.{t.table}"
        a.q(t.db, f"COPY {schema_table} TO STDOUT WITH CSV HEADER", logged, "COPY", t.obj, sens=True, cat="IB")
    elif variant == "pg_dump":
        a.app = "pg_dump"
        for sql, r, action in (("SET statement_timeout = 0", None, "OTHER"), ("SET lock_timeout = 0", None, "OTHER"),
                               ("SELECT pg_catalog.set_config('search_path', '', false)", 1, "SELECT"),
                               ("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY", None, "OTHER")):
            a.q(t.db, sql, r, action)
        for _ in range(d.between(5, 15)):
            a.q(t.db, "SELECT c.tableoid, c.oid, c.relname, c.relnamespace, c.relkind FROM pg_class c "
                      "WHERE c.relkind IN ('r', 'p') ORDER BY c.oid", d.between(20, 300))
        schema_table = t.table if "." in t.table else f"public.{t.table}"
        a.q(t.db, f"LOCK TABLE {schema_table} IN ACCESS SHARE MODE", None, "OTHER", t.obj)
        cols = ", ".join(RELATIONS[t.obj[0]].columns)
        a.q(t.db, f"COPY {schema_table} ({cols}) TO stdout;", logged, "COPY", t.obj, sens=True, cat="IB")
        a.wait(rows / 60_000, rows / 30_000 + 1)
        a.q(t.db, "COMMIT", None, "OTHER")
    elif variant == "outfile":
        _set_app(a, p, t.db, prm["app"])
        path = d.pick(("/tmp", "/var/lib/mysql-files", "/home/" + a.account)) + f"/{d.pick(('wb', 'export', 'data', 'x'))}_{a.day:%m%d}.csv"
        a.q(t.db, _select(t, t.cols, where, f" INTO OUTFILE '{path}' FIELDS TERMINATED BY ',' ENCLOSED BY '\"'"),
            logged, "EXPORT", t.obj, sens=True, cat=t.cat)
    else:                                                        # mysqldump
        a.app = "mysqldump"
        a.q(t.db, "SHOW VARIABLES LIKE 'gtid\\_mode'", 1, "OTHER")
        a.q(t.db, f"SHOW CREATE TABLE `{t.table}`", 1, "OTHER", t.obj)
        extra = f" WHERE {where}" if where else ""
        a.q(t.db, f"SELECT /*!40001 SQL_NO_CACHE */ * FROM `{t.table}`{extra}", rows, obj=t.obj, sens=True, cat="IB")


def _lookup(a: Activity, kind: str, key: int, web: bool) -> None:
    d = a.d
    hit = d.u()
    if kind == "customer_id":
        rows = 1 if hit < 0.95 else 0
        if web:
            a.q(CRM, "select c1_0.id,c1_0.name,c1_0.gender,c1_0.phone,c1_0.email,c1_0.province,c1_0.city,c1_0.address,"
                     f"c1_0.member_level,c1_0.points,c1_0.created_at from customers c1_0 where c1_0.id={key}", rows,
                obj=O_CUSTOMERS, sens=True)
        else:
            a.q(CRM, f"select name, phone, id_card_no, address from customers where id = {key}", rows, obj=O_CUSTOMERS,
                sens=True, cat="I")
    elif kind == "phone":
        rows = 1 if hit < 0.35 else 0
        if web:
            a.q(CRM, "select c1_0.id,c1_0.name,c1_0.phone,c1_0.member_level,c1_0.city from customers c1_0 "
                     f"where c1_0.phone='{key}'", rows, obj=O_CUSTOMERS, sens=True)
        else:
            a.q(CRM, f"SELECT id, name, id_card_no, address FROM customers WHERE phone = '{key}'", rows, obj=O_CUSTOMERS,
                sens=True, cat="I")
    elif kind == "waybill":
        rows = 1 if hit < 0.9 else 0
        if web and a.app == WAYBILL_CONSOLE:
            a.q(LOGISTICS, "SELECT waybill_no, order_no, status, sender_name, receiver_name, receiver_phone, receiver_address, "
                           f"courier_id, dest_station_id, updated_at FROM waybills WHERE waybill_no = 'ZX{key:013d}'",
                rows, obj=O_WAYBILLS, sens=True)
        elif web:
            a.q(LOGISTICS, f"SELECT * FROM waybills WHERE waybill_no = 'ZX{key:013d}'", rows, obj=O_WAYBILLS, sens=True)
        else:
            a.q(LOGISTICS, "SELECT receiver_name, receiver_phone, receiver_address FROM waybills "
                           f"WHERE waybill_no = 'ZX{key:013d}'", rows, obj=O_WAYBILLS, sens=True)
    elif kind == "courier":
        a.q(LOGISTICS, f"SELECT courier_id, name, phone, id_card_no FROM couriers WHERE courier_id = {key}",
            1 if hit < 0.97 else 0, obj=O_COURIERS, sens=True, cat="I")
    else:
        a.q(BILLING, f"SELECT id, card_holder, bank_card, amount FROM finance.payments WHERE id = {key}",
            1 if hit < 0.97 else 0, obj=O_PAYMENTS, sens=True, cat="B")


def _lookup_app(a: Activity, p: Persona, kind: str, own: bool, app: str | None) -> bool:
    """Sets the tool for an enumeration; True when it uses the person's usual web/app shapes."""
    db = LOGISTICS if kind in ("waybill", "courier") else (BILLING if kind == "payment" else CRM)
    if own:
        if p.role == DISPATCH and db == LOGISTICS:
            a.app = DISPATCH_APP
            return True
        if p.role in (CS, SALES) and db == CRM:
            a.app = CRM_WEB
            return True
        if p.role == CS and db == LOGISTICS:
            a.app = WAYBILL_CONSOLE
            return True
        if p.role == FINANCE and db == BILLING:
            a.app = FINANCE_PORTAL
            return False
        if p.sql_app:
            client(a, p, db)
            return False
    _set_app(a, p, db, app)
    return False


def _emit_rapid(sc: Scene) -> None:
    a, d = sc.a, sc.a.d
    prm = sc.inc.params
    a.t = prm["start"]
    web = _lookup_app(a, sc.persona, prm["kind"], prm["own_app"], prm["app"])
    key, step = prm["first"], prm["step"]
    mean_gap = 1000.0 / prm["rate"]
    for _ in range(prm["n"]):
        _lookup(a, prm["kind"], key, web)
        key += step
        a.t += max(20, int(mean_gap * d.uniform(0.5, 1.5)))


def _emit_paging(sc: Scene) -> None:
    a, d, p = sc.a, sc.a.d, sc.persona
    prm = sc.inc.params
    t = TARGETS[prm["target"]]
    a.t = prm["start"]
    size, pages = prm["size"], prm["pages"]
    if prm["web"]:
        a.app = CRM_WEB
        city = d.pick(fakes.CITIES)
        for i in range(pages):
            a.q(CRM, "select c1_0.id,c1_0.name,c1_0.phone,c1_0.city,c1_0.member_level,c1_0.points,c1_0.last_order_at "
                     f"from customers c1_0 where c1_0.city='{city.name}' order by c1_0.id offset {i * size} rows "
                     f"fetch first {size} rows only", size, obj=O_CUSTOMERS, sens=True)
            a.t += int(prm["pace"] * 1000 * d.uniform(0.5, 1.6))
        return
    _set_app(a, p, t.db, prm["app"])
    cols = t.cols if d.chance(0.6) else "*"
    mysql_style = t.db == LOGISTICS and d.chance(0.5)
    last = 0 if t.key != "waybill_no" else 7_310_000_000_000
    for i in range(pages):
        rows = size if i < pages - 1 else d.between(1, size)
        if prm["mode"] == "offset":
            tail = f" ORDER BY {t.key} LIMIT {i * size}, {size}" if mysql_style else f" ORDER BY {t.key} LIMIT {size} OFFSET {i * size}"
            sql = _select(t, cols, None, tail)
        else:
            bound = f"'ZX{last:013d}'" if t.key == "waybill_no" else str(last)
            sql = _select(t, cols, f"{t.key} > {bound}", f" ORDER BY {t.key} LIMIT {size}")
            last += size + d.below(max(1, size // 20))
        a.q(t.db, sql, rows, obj=t.obj, sens=True, cat=t.cat if cols != "*" else "IB")
        a.t += int(prm["pace"] * 1000 * d.uniform(0.5, 1.6))


def _harvest(a: Activity, p: Persona, e: Employee) -> None:
    """One statement of extra personal data dressed as the person's ordinary work."""
    d = a.d
    role = p.role
    if role == CS:
        a.app = CRM_WEB
        if d.chance(0.6):
            city = d.pick(fakes.CITIES)
            a.q(CRM, "select c1_0.id,c1_0.name,c1_0.phone,c1_0.city,c1_0.member_level from customers c1_0 "
                     f"where c1_0.name like '{fakes.surname(d)}%' and c1_0.city='{city.name}' fetch first 20 rows only",
                d.between(15, 20), obj=O_CUSTOMERS, sens=True)
        else:
            a.q(CRM, "select c1_0.id,c1_0.name,c1_0.phone,c1_0.member_level,c1_0.city from customers c1_0 "
                     f"where c1_0.phone='{fakes.phone(d)}'", 1, obj=O_CUSTOMERS, sens=True)
            a.tick()
            a.q(CRM, "select c1_0.id,c1_0.name,c1_0.gender,c1_0.phone,c1_0.email,c1_0.province,c1_0.city,c1_0.address,"
                     f"c1_0.member_level,c1_0.points,c1_0.created_at from customers c1_0 where c1_0.id={fakes.customer_id(d)}",
                1, obj=O_CUSTOMERS, sens=True)
    elif role == DISPATCH:
        a.app = DISPATCH_APP
        page = p.page
        a.q(LOGISTICS, "SELECT waybill_no, receiver_name, receiver_phone, receiver_address, weight_g, priority, status "
                       f"FROM waybills WHERE dest_station_id = {d.between(101, 998)} AND status IN ('ARRIVED', 'OUT_FOR_DELIVERY') "
                       f"AND created_at >= '{a.ago(3)}' ORDER BY priority DESC, created_at LIMIT {page}",
            int(page * d.uniform(0.7, 1.0)), obj=O_WAYBILLS, sens=True)
    elif role == SALES:
        a.app = CRM_WEB
        page = min(p.page, 100)
        city = d.pick(fakes.CITIES)
        a.q(CRM, "select c1_0.id,c1_0.name,c1_0.phone,c1_0.city,c1_0.member_level,c1_0.points,c1_0.last_order_at "
                 f"from customers c1_0 where c1_0.city='{city.name}' and c1_0.member_level>={d.between(1, 3)} "
                 f"order by c1_0.last_order_at desc offset {d.between(0, 6) * page} rows fetch first {page} rows only",
            page, obj=O_CUSTOMERS, sens=True)
    elif role == FINANCE:
        a.app = FINANCE_PORTAL
        if d.chance(0.5):
            a.q(BILLING, "SELECT r.id, r.order_id, r.amount, r.reason, r.card_holder, r.bank_card, r.created_at FROM finance.refunds r "
                         f"WHERE r.status = '{d.pick(('PENDING', 'APPROVED', 'PAID'))}' ORDER BY r.created_at LIMIT 50",
                50, obj=O_REFUNDS, sens=True, cat="B")
        else:
            a.q(BILLING, "SELECT id, buyer_name, buyer_tax_no, amount, tax_amount, issued_at FROM finance.invoices "
                         f"WHERE order_id = {fakes.order_id(d, a.day)}", 1, obj=O_INVOICES, sens=True)
    elif role == ANALYST:
        client(a, p, CRM)
        a.q(CRM, f"SELECT * FROM orders WHERE created_at >= '{a.ago(d.between(1, 30))}' LIMIT 200", 200, obj=O_ORDERS, sens=True)
    else:
        client(a, p, CRM)
        a.q(CRM, f"SELECT * FROM customers WHERE id > {fakes.customer_id(d)} ORDER BY id LIMIT 100", 100, obj=O_CUSTOMERS,
            sens=True, cat="IB")


def _surplus_day(sc: Scene, surplus: int) -> None:
    a, d = sc.a, sc.a.d
    plan = sc.plan
    start = a.sens_rows
    guard = 0
    while a.sens_rows - start < surplus and guard < 5000:
        guard += 1
        s, b = d.pick(plan.spans)
        a.t = s + d.below(max(1, b - s))
        a.addr = plan.alt_addr if (plan.alt_addr is not None and a.t >= plan.alt_from) else plan.addr
        _harvest(a, sc.persona, sc.inc.employee)
        if d.chance(0.3):
            a.wait(5, 60)
            _harvest(a, sc.persona, sc.inc.employee)


def _emit_low_slow(sc: Scene) -> None:
    _surplus_day(sc, max(20, int(sc.inc.params["surplus"] * sc.a.d.uniform(0.8, 1.2))))


def _emit_unusual(sc: Scene) -> None:
    a, d, p = sc.a, sc.a.d, sc.persona
    prm = sc.inc.params
    n = max(1, prm["total"] // len(sc.inc.days))
    col = "id_card_no" if prm["cat"] == "I" else "bank_card"
    for _ in range(n):
        s, b = d.pick(sc.plan.spans)
        a.t = s + d.below(max(1, b - s))
        a.addr = sc.plan.addr
        role = p.role
        if role == CS:
            a.app = CRM_WEB
            a.q(CRM, f"select c1_0.id,c1_0.name,c1_0.phone,c1_0.{col},c1_0.city from customers c1_0 "
                     f"where c1_0.phone='{fakes.phone(d)}'", 1, obj=O_CUSTOMERS, sens=True, cat=prm["cat"])
        elif role == SALES:
            a.app = CRM_WEB
            page = min(p.page, 100)
            a.q(CRM, f"select c1_0.id,c1_0.name,c1_0.phone,c1_0.{col},c1_0.city,c1_0.member_level from customers c1_0 "
                     f"where c1_0.city='{d.pick(p.cities).name}' and c1_0.member_level>={d.between(2, 4)} "
                     f"order by c1_0.last_order_at desc fetch first {page} rows only", d.between(page // 2, page),
                obj=O_CUSTOMERS, sens=True, cat=prm["cat"])
        elif role == DISPATCH and prm["cat"] == "I":
            a.app = DISPATCH_APP
            a.q(LOGISTICS, "SELECT courier_id, name, phone, id_card_no, vehicle_plate FROM couriers "
                           f"WHERE station_id = {d.pick(p.stations)}", d.between(4, 40), obj=O_COURIERS, sens=True, cat="I")
        elif role == DISPATCH:
            a.app = d.pick(("DBeaver 24.1.5 - SQLEditor <Script-1.sql>", "psql"))
            a.q(CRM, f"SELECT name, phone, address, bank_card FROM customers WHERE phone = '{fakes.phone(d)}'", 1,
                obj=O_CUSTOMERS, sens=True, cat="B")
        elif role == ANALYST and prm["cat"] == "B":
            client(a, p, BILLING)
            a.q(BILLING, f"SELECT card_holder, bank_card, amount FROM finance.payments WHERE paid_at >= '{a.ago(d.between(1, 30))}' "
                         "LIMIT 100", 100, obj=O_PAYMENTS, sens=True, cat="B")
        elif role == FINANCE:
            client(a, p, CRM)
            a.q(CRM, f"SELECT c.id, c.name, c.{col}, c.phone FROM customers c WHERE c.id = {fakes.customer_id(d)}", 1,
                obj=O_CUSTOMERS, sens=True, cat=prm["cat"])
        else:
            client(a, p, CRM)
            if d.chance(0.5):
                a.q(CRM, f"SELECT id, name, phone, {col} FROM customers WHERE id = {fakes.customer_id(d)}", 1,
                    obj=O_CUSTOMERS, sens=True, cat=prm["cat"])
            else:
                a.q(CRM, f"SELECT id, name, {col} FROM customers WHERE member_level = 5 LIMIT {d.pick((20, 50, 100))}",
                    d.between(20, 100), obj=O_CUSTOMERS, sens=True, cat=prm["cat"])


def _emit_offhours(sc: Scene) -> None:
    a, d, p = sc.a, sc.a.d, sc.persona
    prm = sc.inc.params
    t = TARGETS[prm["target"]]
    a.t = prm["start"]
    a.addr = prm["addr"]
    _set_app(a, p, t.db, prm["app"])
    if prm["failures"]:
        a.login_failures(t.db, prm["failures"])
    if d.chance(0.5):
        a.q(t.db, f"SELECT count(*) FROM {t.table}", 1, obj=t.obj)
        a.wait(5, 60)
    for rows in _split(d, prm["rows"], prm["n"]):
        where = _where(a, t, p, d.pick(t.filters))
        extra = f" LIMIT {rows}" if d.chance(0.5) else ""
        a.q(t.db, _select(t, t.cols, where, extra), rows, obj=t.obj, sens=True, cat=t.cat)
        a.wait(20, 400)


def _emit_departing(sc: Scene) -> None:
    a, d, p = sc.a, sc.a.d, sc.persona
    prm = sc.inc.params
    last = sc.day_index == sc.inc.days[-1]
    if prm["pattern"] in ("gradual", "steady"):
        _surplus_day(sc, max(20, int(prm["surplus"] * d.uniform(0.7, 1.3))))
    if last and prm["pattern"] in ("gradual", "final"):
        t = TARGETS[prm["target"]]
        a.t = prm["final_at"]
        a.addr = sc.plan.addr
        _set_app(a, p, t.db, prm["app"])
        for rows in _split(d, prm["pull"], d.between(1, 3)):
            where = _where(a, t, p, d.pick(t.filters))
            if t.db == LOGISTICS or d.chance(0.6):
                a.q(t.db, _select(t, t.cols, where), rows, obj=t.obj, sens=True, cat=t.cat)
            else:
                a.q(t.db, f"COPY ({_select(t, t.cols, where)}) TO STDOUT WITH CSV HEADER", rows if d.chance(0.5) else None,
                    "COPY", t.obj, sens=True, cat=t.cat)
            a.wait(60, 900)


def _emit_misuse(sc: Scene) -> None:
    a, d, p = sc.a, sc.a.d, sc.persona
    prm = sc.inc.params
    t = TARGETS[prm["target"]]
    a.t = prm["start"]
    a.addr = prm["addr"]
    a.app = prm["app"]
    if t.db == LOGISTICS and a.app == "psql":
        a.app = "mysql"
    if prm["failures"]:
        a.login_failures(t.db, prm["failures"])
    if a.app and a.app.startswith("DBeaver") and t.db != LOGISTICS:
        a.q(t.db, "SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN pg_catalog.pg_description d "
                  "ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass ORDER BY nspname", d.between(6, 9))
    for _ in range(prm["probes"]):
        a.fail(t.db, d.pick(("SELECT * FROM finance.gl_accounts", "SELECT * FROM payroll", "SELECT * FROM staff_salaries",
                             "SELECT * FROM customers_archive LIMIT 10")))
        a.wait(5, 40)
    for rows in _split(d, prm["rows"], prm["n"]):
        where = _where(a, t, p, d.pick(t.filters))
        a.q(t.db, _select(t, t.cols, where, f" LIMIT {rows}" if d.chance(0.4) else ""), rows, obj=t.obj, sens=True, cat=t.cat)
        a.wait(15, 300)


def _emit_slow(sc: Scene) -> None:
    a, d = sc.a, sc.a.d
    prm = sc.inc.params
    plan = sc.plan
    k = sc.inc.days.index(sc.day_index)
    window = prm["window"]
    if window == "allday":
        start, end = (d.between(0, 30) * MIN if k > 0 else plan.spans[0][0] + d.below(HOUR)), DAY_MS - 1000
    elif window == "workday":
        start, end = plan.spans[0][0] + d.below(20 * MIN), plan.spans[-1][1]
    else:
        s, b = max(plan.spans, key=lambda x: x[1] - x[0])
        start = s + d.below(max(1, (b - s) // 3))
        end = min(DAY_MS - 1000, start + d.between(4 * 60, 6 * 60) * MIN)
    web = _lookup_app(a, sc.persona, prm["kind"], prm["own_app"], prm["app"])
    gap = prm["interval"] * 1000
    per_day = int((end - start) / gap) + 1
    key = prm["first"] + k * per_day
    a.t = start
    a.addr = plan.addr
    while a.t < end:
        _lookup(a, prm["kind"], key, web)
        key += 1
        a.t += int(gap * d.uniform(0.6, 1.4))


_EMITTERS: dict[str, Callable[[Scene], None]] = {
    "bulk_dump": _emit_bulk, "copy_export": _emit_copy, "rapid_enumeration": _emit_rapid, "paging_export": _emit_paging,
    "low_and_slow": _emit_low_slow, "unusual_columns": _emit_unusual, "offhours_new_address": _emit_offhours,
    "departing_employee": _emit_departing, "credential_misuse": _emit_misuse, "slow_enumeration": _emit_slow,
}
