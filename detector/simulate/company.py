"""The simulated company: its people, their database accounts and their habits.

Every person gets individual traits (`Persona`): how much they work, which tasks
they favour, their hours, machines, tools and typing accuracy. Colleagues in the
same role differ as much as real ones do; that spread is what keeps a detector
from learning "the customer-service employee" instead of each employee.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from detector.simulate import fakes
from detector.simulate.config import SimulationConfig
from detector.simulate.dice import Dice, cumulative
from detector.simulate.fakes import CITIES, City

CS, DISPATCH, SALES, ANALYST, FINANCE, DBA, DEVELOPER = (
    "customer_service", "dispatch", "sales", "analyst", "finance", "dba", "developer")
SERVICE = "service_account"
HUMAN_ROLES = (CS, DISPATCH, SALES, ANALYST, FINANCE, DBA, DEVELOPER)
SHIFT_ROLES = frozenset({CS, DISPATCH})
OFFICE_ROLES = frozenset({SALES, ANALYST, FINANCE, DBA, DEVELOPER})

ROLE_SHARE = {CS: 0.30, DISPATCH: 0.15, SALES: 0.14, ANALYST: 0.10, FINANCE: 0.08, DBA: 0.04, DEVELOPER: 0.19}
DEPARTMENTS = {
    CS: ("cs-shanghai", "cs-hangzhou"), DISPATCH: ("logistics",), SALES: ("sales-east", "sales-south"),
    ANALYST: ("bi",), FINANCE: ("finance",), DBA: ("it-platform",), DEVELOPER: ("it-dev",), SERVICE: ("it-platform",),
}
SUBNETS = {
    "cs-shanghai": "10.12", "cs-hangzhou": "10.14", "logistics": "10.20", "sales-east": "10.31", "sales-south": "10.33",
    "bi": "10.40", "finance": "10.41", "it-platform": "10.8", "it-dev": "10.9",
}
BASTIONS = ("10.8.0.10", "10.8.0.11")
# Median statements per working day for a typical person of the role.
ROLE_VOLUME = {CS: 420, DISPATCH: 300, SALES: 190, ANALYST: 150, FINANCE: 210, DBA: 110, DEVELOPER: 220}
ROLE_DAY_SIGMA = {CS: 0.22, DISPATCH: 0.25, SALES: 0.3, ANALYST: 0.45, FINANCE: 0.3, DBA: 0.75, DEVELOPER: 0.4}
HABITS = {  # habit -> share of the role's people who have it
    CS: {"verifies_id": 0.4, "team_lead": 0.12},
    DISPATCH: {"handles_pickups": 0.6, "sql_client": 0.06},
    SALES: {"exports_clients": 0.45, "uses_excel": 0.3},
    ANALYST: {"explores_pii": 0.5, "python": 0.45, "tableau": 0.7},
    FINANCE: {"refunds": 0.6, "reconciles": 0.5, "uses_excel": 0.5},
    DBA: {"mariadb": 0.7},
    DEVELOPER: {"samples_customers": 0.35, "prod_debug": 0.6, "python": 0.35, "logistics_team": 0.35},
}
SQL_CLIENTS = ("DBeaver 24.1.5", "DBeaver 23.3.5", "DataGrip 2024.2.3", "Navicat Premium 16.3", "psql", "pgAdmin 4")
SERVICE_KINDS = ("crm_web", "backup", "dispatch_api", "etl", "billing", "notify", "monitor", "search_sync", "report")


@dataclass(frozen=True)
class Persona:
    """How one person does one role."""

    role: str
    department: str
    volume: float                       # typical statements on a working day
    day_sigma: float                    # day-to-day spread (log scale)
    tasks: tuple[str, ...]              # the role's tasks this person does ...
    task_cum: tuple[float, ...]         # ... and how often (cumulative weights)
    sql_app: str | None                 # their SQL client, if they use one
    addrs: tuple[str, ...]              # usual client addresses, desk first
    start_min: int                      # office: arrival; shifts: usual shift start (minutes after midnight)
    length_min: int                     # working span including the meal break
    lunch_min: int                      # start of the meal break
    lunch_len: int
    shift_starts: tuple[int, ...]       # shift workers: the shifts they may be rostered on
    off_days: tuple[int, ...]           # shift workers: usual weekdays off
    overtime: float                     # chance of an evening on a working day
    weekend_work: float                 # office roles: chance of working a weekend/holiday day
    wfh: float                          # chance of a day on the VPN
    typo: float                         # chance a login is mistyped first
    err: float                          # chance a hand-typed statement fails
    page: int                           # usual list size
    habits: frozenset[str]
    cities: tuple[City, ...]            # territory
    stations: tuple[int, ...]           # dispatch stations / stores they look after
    script: int                         # DBeaver's script counter at the start


@dataclass
class Employee:
    index: int
    employee_id: str
    name: str
    accounts: tuple[str, ...]           # personal account first
    role: str                           # as in the directory (the current role)
    department: str
    start_date: date
    personas: dict[str, Persona] = field(default_factory=dict)
    first_role: str = ""
    role_since: date | None = None      # a role change on this day (first_role before it)
    notice_date: date | None = None
    end_date: date | None = None
    service: str | None = None          # service-account kind
    new_hire: bool = False
    benign_departure: bool = False

    @property
    def account(self) -> str:
        return self.accounts[0]

    @property
    def human(self) -> bool:
        return self.service is None

    def role_on(self, day: date) -> str:
        if self.role_since is not None and day < self.role_since:
            return self.first_role
        return self.role

    def persona_on(self, day: date) -> Persona:
        return self.personas[self.role_on(day)]

    def active_on(self, day: date) -> bool:
        return day >= self.start_date and (self.end_date is None or day <= self.end_date)

    def admin_account(self) -> str:
        return self.accounts[1] if len(self.accounts) > 1 else self.accounts[0]

    def directory_row(self) -> dict[str, str]:
        return {
            "employee_id": self.employee_id,
            "department": self.department,
            "role": self.role,
            "db_accounts": ";".join(self.accounts),
            "notice_date": self.notice_date.isoformat() if self.notice_date else "",
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat() if self.end_date else "",
        }


class AddressBook:
    """Hands out client addresses nobody else has: desks, laptops, VPN leases."""

    def __init__(self, d: Dice) -> None:
        self.d = d
        self.used: set[str] = set()

    def desk(self, department: str) -> str:
        return self._fresh(lambda: f"{SUBNETS[department]}.{self.d.between(1, 9)}.{self.d.between(10, 250)}")

    def laptop(self, department: str) -> str:
        return self._fresh(lambda: f"{SUBNETS[department]}.{self.d.between(101, 109)}.{self.d.between(10, 250)}")

    def vpn(self) -> str:
        return self._fresh(lambda: f"172.20.{self.d.between(0, 15)}.{self.d.between(2, 254)}")

    def outside(self) -> str:
        """An address from a network no employee normally works from."""
        makers = (
            lambda: f"192.168.{self.d.between(0, 3)}.{self.d.between(2, 254)}",
            lambda: f"10.99.{self.d.between(0, 255)}.{self.d.between(2, 254)}",
            lambda: f"172.20.{self.d.between(16, 31)}.{self.d.between(2, 254)}",
        )
        maker = self.d.pick(makers)
        return self._fresh(maker)

    def _fresh(self, make) -> str:
        for _ in range(1000):
            addr = make()
            if addr not in self.used:
                self.used.add(addr)
                return addr
        raise RuntimeError("address space exhausted")


def _allocate(humans: int) -> dict[str, int]:
    """Head count per role: shares by largest remainder, every role staffed."""
    counts = {r: 1 for r in HUMAN_ROLES}
    if humans >= 30:
        counts[DBA] = 2
    rest = humans - sum(counts.values())
    raw = {r: ROLE_SHARE[r] * humans - counts[r] for r in HUMAN_ROLES}
    extra = {r: max(0, int(raw[r])) for r in HUMAN_ROLES}
    while sum(extra.values()) > rest:
        r = max(extra, key=lambda k: extra[k])
        extra[r] -= 1
    left = rest - sum(extra.values())
    order = sorted(HUMAN_ROLES, key=lambda r: -(raw[r] - extra[r]))
    for i in range(left):
        extra[order[i % len(order)]] += 1
    return {r: counts[r] + extra[r] for r in HUMAN_ROLES}


def _account_name(sur: str, given: str, taken: set[str]) -> str:
    base = f"{sur}_{given}"
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}{n}"
    taken.add(name)
    return name


def make_persona(role: str, department: str, d: Dice, book: AddressBook, task_weights: dict[str, dict[str, float]],
                 task_habits: dict[str, str]) -> Persona:
    habits = frozenset(h for h, share in HABITS.get(role, {}).items() if d.chance(share))
    weights = task_weights[role]
    names, ws = [], []
    for name, w in weights.items():
        need = task_habits.get(name)
        if need and need not in habits:
            continue
        names.append(name)
        ws.append(w * d.lognormal(1.0, 0.45))          # individual task mix
    desk = book.desk(department)
    addrs = [desk]
    if d.chance(0.35):
        addrs.append(book.laptop(department))
    if role == DBA:
        addrs.append(d.pick(BASTIONS))
    sql_app = None
    if role in (ANALYST, FINANCE, DBA, DEVELOPER) or "team_lead" in habits or "sql_client" in habits:
        pool = {DBA: ("psql", "psql", "pgAdmin 4", "DBeaver 24.1.5"), DEVELOPER: ("DataGrip 2024.2.3", "DBeaver 24.1.5", "psql", "DBeaver 23.3.5"),
                ANALYST: ("DBeaver 24.1.5", "DBeaver 23.3.5", "DataGrip 2024.2.3"), FINANCE: ("DBeaver 24.1.5", "Navicat Premium 16.3")}
        sql_app = d.pick(pool.get(role, ("DBeaver 24.1.5", "Navicat Premium 16.3")))
    if role in SHIFT_ROLES:
        options = ((480, 510), (540, 540), (780, 510), (810, 510)) if role == CS else ((420, 540), (480, 540), (600, 540))
        usual = d.pick(options)
        start, length = usual
        shift_starts = tuple(o[0] for o in options)
        first_off = d.below(7)
        second_off = (first_off + 1) % 7 if d.chance(0.6) else d.below(7)
        if second_off == first_off:
            second_off = (first_off + 3) % 7
        off_days = (first_off, second_off)
        lunch = start + length // 2 - 30 + d.between(-20, 20)
    else:
        start = int(min(630, max(480, 540 + 25 * d.normal())))
        length = int(540 + 35 * d.normal())
        shift_starts, off_days = (), ()
        lunch = int(720 + 12 * d.normal())
    cities = tuple(d.sample(CITIES[:7] if role != SALES else CITIES, d.between(1, 3)))
    if department == "cs-hangzhou" or department == "sales-east":
        cities = (CITIES[1],) + tuple(c for c in cities if c is not CITIES[1])
    stations = tuple(sorted(d.sample(range(101, 999), d.between(1, 3))))
    overtime = {DEVELOPER: 0.12, ANALYST: 0.08, FINANCE: 0.06, SALES: 0.05, DBA: 0.1, CS: 0.02, DISPATCH: 0.03}[role]
    weekend = {DEVELOPER: 0.05, DBA: 0.04, ANALYST: 0.02, FINANCE: 0.01, SALES: 0.01}.get(role, 0.0)
    wfh = {DEVELOPER: 0.08, ANALYST: 0.06, DBA: 0.05, FINANCE: 0.02, SALES: 0.04}.get(role, 0.0)
    return Persona(
        role=role, department=department,
        volume=ROLE_VOLUME[role] * d.lognormal(1.0, 0.42),
        day_sigma=ROLE_DAY_SIGMA[role] * d.uniform(0.75, 1.3),
        tasks=tuple(names), task_cum=tuple(cumulative(ws)),
        sql_app=sql_app, addrs=tuple(addrs),
        start_min=start, length_min=length, lunch_min=lunch, lunch_len=d.between(50, 80),
        shift_starts=shift_starts, off_days=off_days,
        overtime=overtime * d.uniform(0.3, 2.0), weekend_work=weekend * d.uniform(0.3, 2.0), wfh=wfh * d.uniform(0.0, 2.0),
        typo=d.uniform(0.005, 0.06), err=d.uniform(0.002, 0.02) if sql_app else 0.001,
        page=d.pick((20, 50, 50, 100, 200)) if role != DISPATCH else d.pick((100, 200, 200, 500)),
        habits=habits, cities=cities, stations=stations, script=d.between(1, 40),
    )


def build_company(config: SimulationConfig, task_weights: dict[str, dict[str, float]],
                  task_habits: dict[str, str]) -> list[Employee]:
    """Everyone in the directory: humans first, then service accounts."""
    d = Dice.of(config.seed, 1)
    book = AddressBook(Dice.of(config.seed, 2))
    n_service = max(2, round(config.employees * 0.04))
    humans = config.employees - n_service
    counts = _allocate(humans)
    roles = [r for r in HUMAN_ROLES for _ in range(counts[r])]
    roles = d.shuffled(roles)
    ids = sorted(d.sample(range(10001, 10001 + 40 * config.employees), humans))
    taken: set[str] = set()
    people: list[Employee] = []
    for i, role in enumerate(roles):
        sur, given = d.pick(fakes.SURNAMES), d.pick(fakes.GIVEN)
        account = _account_name(sur[1], given[1], taken)
        department = d.pick(DEPARTMENTS[role])
        accounts = [account]
        if role == DBA:
            accounts.append(f"dba_{account}")
        elif role == ANALYST and d.chance(0.6):
            accounts.append(f"{account}_rpt")
        elif role == FINANCE and d.chance(0.3):
            accounts.append(f"{account}_rpt")
        hired = config.start - timedelta(days=40 + d.below(9 * 365))
        e = Employee(index=i, employee_id=f"E{ids[i]}", name=sur[0] + given[0], accounts=tuple(accounts), role=role,
                     department=department, start_date=hired, first_role=role)
        e.personas[role] = make_persona(role, department, d, book, task_weights, task_habits)
        people.append(e)
    _plan_careers(config, people, d, book, task_weights, task_habits)
    for k in range(n_service):
        kind = SERVICE_KINDS[k % len(SERVICE_KINDS)]
        suffix = "" if k < len(SERVICE_KINDS) else str(k // len(SERVICE_KINDS) + 1)
        people.append(Employee(index=humans + k, employee_id=f"SA{k + 1:03d}", name=kind, accounts=(f"svc_{kind}{suffix}",),
                               role=SERVICE, department="it-platform", start_date=date(2019, 3, 1), first_role=SERVICE,
                               service=kind))
    return people


def _plan_careers(config: SimulationConfig, people: list[Employee], d: Dice, book: AddressBook,
                  task_weights: dict[str, dict[str, float]], task_habits: dict[str, str]) -> None:
    """New hires, role changes and (benign) resignations inside the simulated range."""
    humans = len(people)
    pool = d.shuffled(list(range(humans)))
    train, test_start, end = config.train_days, config.test_start, config.end
    # New hires: one starts during training, one during the test period, more in big companies.
    n_hires = max(2, round(0.02 * humans))
    for k in range(n_hires):
        e = people[pool.pop()]
        if e.role in (DBA,):
            continue
        offset = d.between(2, max(2, train - 3)) if k % 2 == 0 else train + d.between(0, config.test_days - 4)
        e.start_date = config.day(offset)
        e.new_hire = True
    # Role changes (the directory shows the new role).
    moves = ((CS, SALES), (DISPATCH, CS), (SALES, ANALYST), (DEVELOPER, DBA), (ANALYST, FINANCE), (CS, DISPATCH),
             (DEVELOPER, ANALYST), (FINANCE, ANALYST))
    n_moves = max(1, round(0.015 * humans))
    done = 0
    for idx in list(pool):
        if done >= n_moves:
            break
        e = people[idx]
        targets = [to for frm, to in moves if frm == e.role]
        if not targets:
            continue
        pool.remove(idx)
        new_role = d.pick(targets)
        since = config.day(d.between(max(4, train // 2), config.days - 3) if done % 2 == 0 else d.between(train, config.days - 3))
        new_department = d.pick(DEPARTMENTS[new_role])
        e.first_role, e.role, e.department, e.role_since = e.role, new_role, new_department, since
        e.personas[new_role] = make_persona(new_role, new_department, d, book, task_weights, task_habits)
        if new_role == DBA and len(e.accounts) == 1:
            e.accounts = (e.account, f"dba_{e.account}")
        done += 1
    # Benign departures: notice given, nothing wrong done.
    n_leavers = max(2, round(0.012 * humans))
    for k in range(n_leavers):
        e = people[pool.pop()]
        e.notice_date = config.day(d.between(1, max(2, config.days - 10)))
        e.end_date = e.notice_date + timedelta(days=d.between(14, 30))
        e.benign_departure = True

