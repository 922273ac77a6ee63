"""The company's working calendar: Chinese public holidays and make-up workdays.

The official schedules the State Council published are listed for the years we
know; other years fall back to the fixed-date holidays without make-up days.
Weekend days inside a holiday break are listed as holidays too, as HR calendars do.
"""

from __future__ import annotations

from datetime import date, timedelta


def _span(first: str, last: str) -> list[date]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


# year -> (holidays, make-up workdays)
_OFFICIAL: dict[int, tuple[list[date], list[date]]] = {
    2025: (
        _span("2025-01-01", "2025-01-01") + _span("2025-01-28", "2025-02-04") + _span("2025-04-04", "2025-04-06")
        + _span("2025-05-01", "2025-05-05") + _span("2025-05-31", "2025-06-02") + _span("2025-10-01", "2025-10-08"),
        [date(2025, 1, 26), date(2025, 2, 8), date(2025, 4, 27), date(2025, 9, 28), date(2025, 10, 11)],
    ),
    2026: (
        _span("2026-01-01", "2026-01-03") + _span("2026-02-15", "2026-02-23") + _span("2026-04-04", "2026-04-06")
        + _span("2026-05-01", "2026-05-05") + _span("2026-06-19", "2026-06-21") + _span("2026-09-25", "2026-09-27")
        + _span("2026-10-01", "2026-10-07"),
        [date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 5, 9), date(2026, 9, 20), date(2026, 10, 10)],
    ),
}


def _fallback(year: int) -> tuple[list[date], list[date]]:
    return (_span(f"{year}-01-01", f"{year}-01-01") + _span(f"{year}-05-01", f"{year}-05-03")
            + _span(f"{year}-10-01", f"{year}-10-07"), [])


class WorkCalendar:
    """Which days are worked by office staff, for the years a simulation touches."""

    def __init__(self, timezone: str, first: date, last: date) -> None:
        self.timezone = timezone
        self.first, self.last = first, last
        holidays: set[date] = set()
        workdays: set[date] = set()
        for year in range(first.year, last.year + 1):
            h, w = _OFFICIAL.get(year) or _fallback(year)
            holidays.update(h)
            workdays.update(w)
        self.holidays = frozenset(holidays)
        self.makeup_workdays = frozenset(workdays)

    def is_holiday(self, day: date) -> bool:
        return day in self.holidays

    def is_workday(self, day: date) -> bool:
        if day in self.makeup_workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def workdays_between(self, first: date, last: date) -> list[date]:
        return [d for d in _days(first, last) if self.is_workday(d)]

    def last_workdays_of_month(self, year: int, month: int, n: int) -> list[date]:
        first = date(year, month, 1)
        nxt = date(year + (month == 12), month % 12 + 1, 1)
        return self.workdays_between(first, nxt - timedelta(days=1))[-n:]

    def first_workdays_of_month(self, year: int, month: int, n: int) -> list[date]:
        first = date(year, month, 1)
        return self.workdays_between(first, first + timedelta(days=14))[:n]

    def breaks(self) -> list[tuple[date, date]]:
        """Runs of 3+ consecutive days off (holiday breaks), first and last day."""
        out: list[tuple[date, date]] = []
        day = date(self.first.year, 1, 1)
        end = date(self.last.year, 12, 31)
        run: list[date] = []
        while day <= end:
            if not self.is_workday(day):
                run.append(day)
            else:
                if len(run) >= 3 and any(d in self.holidays for d in run):
                    out.append((run[0], run[-1]))
                run = []
            day += timedelta(days=1)
        if len(run) >= 3 and any(d in self.holidays for d in run):
            out.append((run[0], run[-1]))
        return out

    def as_mapping(self) -> dict:
        """calendar.yaml per the contract (section 4): dates as ISO strings."""
        return {
            "timezone": self.timezone,
            "holidays": [d.isoformat() for d in sorted(self.holidays)],
            "workdays": [d.isoformat() for d in sorted(self.makeup_workdays)],
        }


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
