"""Who works when: the company's days and every person's plan for each day.

Plans are drawn before any statement is generated, so the day a scenario or a
benign anomaly lands on is known up front and generation order never changes
the outcome. Benign anomalies (festival peaks, month-end closes, maintenance
windows, on-call nights, VPN days, new hires ramping up) are decided here, in
the training period and the test period alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from detector.simulate.company import (
    ANALYST, CS, DBA, DEVELOPER, DISPATCH, FINANCE, SALES, SHIFT_ROLES, AddressBook, Employee,
)
from detector.simulate.config import SimulationConfig
from detector.simulate.dice import Dice
from detector.simulate.workdays import WorkCalendar

MIN = 60_000
HOUR = 3_600_000
DAY_MS = 86_400_000
FESTIVALS = ((6, 18), (9, 9), (11, 11), (12, 12))


@dataclass(frozen=True)
class DayContext:
    """One calendar day of the company."""

    index: int
    day: date
    iso: str
    workday: bool
    holiday: bool
    test: bool
    festival: bool          # a sales festival: 3-5x customer traffic
    post_festival: bool     # the parcel wave after it
    month_end: bool         # last three working days of the month (the close)
    month_close: bool       # first two working days (books closed)
    ts_prefix: str          # "2026-09-01T"
    ts_suffix: str          # "+08:00"
    base_ms: int            # UTC epoch ms of local midnight


@dataclass(frozen=True)
class DayPlan:
    """One person's day: when they work, how busy, from where, and what is special."""

    works: bool
    spans: tuple[tuple[int, int], ...] = ()     # local ms-of-day intervals at work
    volume: float = 0.0                         # multiplier on the persona's usual volume
    addr: str = ""
    alt_addr: str | None = None                 # a second address from `alt_from` on (DHCP renewal, VPN)
    alt_from: int = DAY_MS
    flags: frozenset[str] = frozenset()
    windows: tuple[tuple[str, int, int], ...] = ()   # special episodes at fixed times: (flag, start, end)
    night_addr: str | None = None                   # the VPN lease of an on-call night


OFF = DayPlan(False)


def _offset(tz: ZoneInfo, day: date) -> tuple[str, int]:
    off = datetime(day.year, day.month, day.day, 12, tzinfo=tz).utcoffset() or timedelta(0)
    minutes = int(off.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}", minutes * MIN


def build_days(config: SimulationConfig, cal: WorkCalendar) -> list[DayContext]:
    d = Dice.of(config.seed, 3)
    tz = ZoneInfo(config.timezone)
    days = [config.day(i) for i in range(config.days)]
    festival: set[date] = {day for day in days if (day.month, day.day) in FESTIVALS}
    for first, _last in cal.breaks():
        eve = first - timedelta(days=1)
        if eve in days:
            festival.add(eve)          # the pre-holiday sale
    train = days[: config.train_days]
    test = days[config.train_days:]
    for part in (train, test):
        if not festival.intersection(part):
            festival.add(part[d.between(1, len(part) - 2)])    # a flash sale
    month_end: set[date] = set()
    month_close: set[date] = set()
    for y, m in sorted({(day.year, day.month) for day in days}):
        month_end.update(cal.last_workdays_of_month(y, m, 3))
        month_close.update(cal.first_workdays_of_month(y, m, 2))
    out = []
    for i, day in enumerate(days):
        suffix, off_ms = _offset(tz, day)
        midnight = int(datetime(day.year, day.month, day.day).replace(tzinfo=ZoneInfo("UTC")).timestamp() * 1000)
        after = any((day - timedelta(days=k)) in festival for k in (1, 2)) and day not in festival
        out.append(DayContext(
            index=i, day=day, iso=day.isoformat(), workday=cal.is_workday(day), holiday=cal.is_holiday(day),
            test=i >= config.train_days, festival=day in festival, post_festival=after,
            month_end=day in month_end, month_close=day in month_close,
            ts_prefix=f"{day.isoformat()}T", ts_suffix=suffix, base_ms=midnight - off_ms,
        ))
    return out


def build_plans(config: SimulationConfig, people: list[Employee], days: list[DayContext],
                book: AddressBook) -> dict[int, list[DayPlan]]:
    """Day plans for every human (service accounts follow their own clock)."""
    plans: dict[int, list[DayPlan]] = {}
    for e in people:
        if e.human:
            plans[e.index] = _plans_for(e, days, Dice.of(config.seed, 4, e.index), book)
    return plans


def _plans_for(e: Employee, days: list[DayContext], d: Dice, book: AddressBook) -> list[DayPlan]:
    n = len(days)
    leave: set[int] = set()
    if d.chance(0.3):                          # a few days of annual leave
        first = d.below(n)
        leave.update(range(first, min(n, first + d.between(2, 5))))
    swaps = {w: d.chance(0.25) for w in range(n // 7 + 2)}
    maintenance: set[int] = set()
    if any(p.role == DBA for p in e.personas.values()):
        k = d.between(1, 9)
        while k < n:
            j = k
            while j < n and days[j].workday:
                j += 1
            if j < n:
                maintenance.add(j)
            k = j + d.between(9, 15)
    ramp_left = 5 if e.new_hire else 0
    out: list[DayPlan] = []
    for ctx in days:
        day = ctx.day
        if not e.active_on(day):
            out.append(OFF)
            continue
        p = e.persona_on(day)
        role = p.role
        flags: set[str] = set()
        volume = d.lognormal(1.0, p.day_sigma)
        spans: list[tuple[int, int]] = []
        if role in SHIFT_ROLES:
            weekday = (day.weekday() + (1 if swaps[ctx.index // 7] else 0)) % 7
            works = weekday not in p.off_days
            if ctx.holiday:
                works = d.chance(0.6)
            if ctx.festival and not works:
                works = d.chance(0.5)
            if ctx.index in leave or d.chance(0.02):
                works = False
            if works:
                start = p.start_min if d.chance(0.8) else d.pick(p.shift_starts)
                length = p.length_min + d.between(-15, 15)
                if ctx.festival and role == CS:
                    length += d.between(90, 180)
                meal = start + length // 2 - 30 + d.between(-25, 25)
                spans = [(start, meal), (meal + d.between(40, 60), min(start + length, 23 * 60 + 50))]
                if day.weekday() >= 5 and role == CS:
                    volume *= 1.15
        else:
            works = ctx.workday and ctx.index not in leave and not d.chance(0.025)
            if works:
                start = p.start_min + int(10 * d.normal())
                end = start + p.length_min + int(20 * d.normal())
                lunch = p.lunch_min + int(8 * d.normal())
                spans = [(start, lunch), (lunch + p.lunch_len, end)]
                if d.chance(p.overtime):
                    ev = end + d.between(30, 100)
                    spans.append((ev, min(ev + d.between(45, 180), 23 * 60 + 40)))
                volume *= (1.1, 1.0, 1.0, 1.0, 0.9, 0.9, 0.9)[day.weekday()]
            elif not ctx.workday and d.chance(p.weekend_work):
                works = True
                start = d.between(9 * 60, 15 * 60)
                spans = [(start, start + d.between(90, 240))]
                volume *= 0.3
                flags.add("weekend_work")
        if ctx.festival and role in (CS, SALES):
            if role == SALES and not works and d.chance(0.6):
                works = True
                spans = [(d.between(540, 600), d.between(1020, 1140))]
            volume *= d.uniform(3.0, 5.0)
            flags.add("festival")
        if ctx.post_festival and role in (CS, DISPATCH):
            volume *= d.uniform(1.4, 2.0)
        if role == FINANCE and ctx.month_end:
            volume *= d.uniform(1.5, 2.5)
            flags.add("month_end")
            if spans and d.chance(0.6):
                spans.append((spans[-1][1] + 40, min(spans[-1][1] + d.between(100, 200), 23 * 60)))
        if role == FINANCE and ctx.month_close:
            volume *= d.uniform(1.2, 1.6)
            flags.add("month_close")
        if role == ANALYST and works and ctx.workday and d.chance(1 / 12 + (0.3 if ctx.month_close else 0.0)):
            flags.add("big_report")
        if role == DEVELOPER and works and ctx.workday:
            if "samples_customers" in p.habits and d.chance(0.1):
                flags.add("sample_customers")
            if d.chance(0.03):
                flags.add("hotfix")
        if role == SALES and works and "exports_clients" in p.habits and d.chance(0.06):
            flags.add("export_clients")
        if e.benign_departure and e.notice_date and day >= e.notice_date:
            volume *= d.uniform(0.6, 0.9)
            if role == SALES and works and e.end_date and (e.end_date - day).days <= 7 and d.chance(0.4):
                flags.add("handover")
        if works and ramp_left and ctx.workday:
            k = 5 - ramp_left
            volume *= 0.25 + 0.15 * k
            flags.add("ramp")
            ramp_left -= 1
        if e.role_since is not None and works and 0 <= (day - e.role_since).days < 4:
            volume *= 0.6
            flags.add("ramp")
        alt_addr, alt_from = None, DAY_MS
        windows: list[tuple[str, int, int]] = []
        night_addr = None
        if role == DBA:
            if ctx.index in maintenance:
                a, b = (d.between(30, 90), d.between(200, 290)) if d.chance(0.5) else (d.between(1250, 1290), d.between(1400, 1430))
                windows.append(("maintenance", a * MIN, b * MIN))
                flags.add("maintenance")
            if works and ctx.workday and d.chance(0.05):
                flags.add("dq_check")
            if d.chance(0.035) and not windows:
                start = d.between(60, 240)
                windows.append(("oncall", start * MIN, (start + d.between(20, 80)) * MIN))
                flags.add("oncall")
                night_addr = book.vpn()
        if not works and not windows:
            out.append(OFF)
            continue
        if not works:
            spans, volume = [], 0.0
        addr = p.addrs[0] if (len(p.addrs) == 1 or d.chance(0.7)) else d.pick(p.addrs[1:])
        if role not in SHIFT_ROLES and ctx.workday and d.chance(p.wfh):
            addr = book.vpn()
            flags.add("wfh")
        elif alt_addr is None and d.chance(0.03):
            alt_addr = book.desk(p.department)           # a DHCP lease changed during the day
            alt_from = d.between(spans[0][0], max(spans[0][0], spans[-1][1] - 30)) * MIN if spans else DAY_MS
        out.append(DayPlan(
            works=True,
            spans=tuple((a * MIN, b * MIN) for a, b in sorted(spans) if b > a),
            volume=volume, addr=addr, alt_addr=alt_addr, alt_from=alt_from, flags=frozenset(flags),
            windows=tuple(windows), night_addr=night_addr,
        ))
    return out
