"""The organisation's working calendar: local days, working days and working hours.

Converting an instant to a local day is on the hot path, so results are cached
per 15-minute slot of UTC time (every real UTC offset is a multiple of 15 min).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from detector.inputs import InputError, load_yaml_mapping, parse_date

SLOT_MS = 15 * 60 * 1000
WORK_HOURS = range(8, 20)


@dataclass(frozen=True, slots=True)
class LocalTime:
    day: int          # proleptic ordinal of the local date
    hour: int         # local hour 0..23
    working: bool     # a working day of the calendar and within working hours
    period: bool = False   # among the month's first or last working days (`is_period_day`)


class WorkCalendar:
    def __init__(self, tz_name: str = "UTC", holidays: set[date] | None = None, workdays: set[date] | None = None) -> None:
        try:
            self.tz = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            raise InputError(f"calendar: unknown timezone {tz_name!r}") from None
        self.tz_name = tz_name
        self.holidays = frozenset(holidays or ())
        self.workdays = frozenset(workdays or ())
        self._slots: dict[int, LocalTime] = {}
        self.period_days: dict[tuple[int, int], bool] = {}     # (day, workdays) -> `is_period_day`

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def local(self, ts_ms: int) -> LocalTime:
        slot = ts_ms // SLOT_MS
        found = self._slots.get(slot)
        if found is None:
            moment = datetime.fromtimestamp(slot * SLOT_MS / 1000, tz=timezone.utc).astimezone(self.tz)
            day = moment.date()
            found = LocalTime(day.toordinal(), moment.hour, self.is_working_day(day) and moment.hour in WORK_HOURS,
                              is_period_day(self, day.toordinal()))
            self._slots[slot] = found
        return found

    def day_start_ms(self, day_ordinal: int) -> int:
        day = date.fromordinal(day_ordinal)
        return int(datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp() * 1000)

    @classmethod
    def load(cls, path: Path | str) -> "WorkCalendar":
        return cls.from_mapping(load_yaml_mapping(path, "calendar"), str(path))

    @classmethod
    def from_mapping(cls, data: dict, name: str = "calendar") -> "WorkCalendar":
        tz_name = data.get("timezone")
        if not isinstance(tz_name, str):
            raise InputError(f"{name}: key 'timezone' is required (an IANA name such as Asia/Shanghai)")
        return cls(tz_name, _dates(data, "holidays", name), _dates(data, "workdays", name))


def _dates(data: dict, key: str, name: str) -> set[date]:
    values = data.get(key) or []
    if not isinstance(values, list):
        raise InputError(f"{name}: key {key!r} must be a list of ISO dates")
    return {parse_date(v, f"{name}: {key}") for v in values}


PERIOD_WORKDAYS = 3           # the first and the last this many working days of a month are period days


def is_period_day(calendar: WorkCalendar, day: int, workdays: int = PERIOD_WORKDAYS) -> bool:
    """Whether a local day is among the first or last `workdays` working days of its month.

    Month ends and starts are when organisations close their books, settle and
    report: whole teams read what they read on no other day."""
    cache = calendar.period_days
    found = cache.get((day, workdays))
    if found is None:
        today = date.fromordinal(day)
        first = today.replace(day=1).toordinal()
        last = (today.replace(day=28) + timedelta(days=4)).replace(day=1).toordinal() - 1
        working = [d for d in range(first, last + 1) if calendar.is_working_day(date.fromordinal(d))]
        found = cache[(day, workdays)] = day in working[:workdays] or day in working[-workdays:]
    return found


MIN_BASELINE_DAYS = 28        # fewer calendar days than this and weekly rhythms are learned from few examples


def baseline_coverage(calendar: WorkCalendar, first_day: int, last_day: int) -> dict:
    """Which kinds of days a baseline period holds, and the gaps in it.

    The detector judges people against what it saw; a kind of day the baseline
    never held (a month's close, a day off) is new behaviour for everyone. The
    gaps name the alerts an analyst should expect from that, and what to train on
    instead: they go in the model card and `train`'s output."""
    days = [date.fromordinal(d) for d in range(first_day, last_day + 1)]
    working = [d for d in days if calendar.is_working_day(d)]
    month_ends = [d for d in working if is_period_day(calendar, d.toordinal()) and d.day > 15]
    month_starts = [d for d in working if is_period_day(calendar, d.toordinal()) and d.day <= 15]
    coverage = {"calendar_days": len(days), "working_days": len(working), "days_off": len(days) - len(working),
                "holidays": sum(d in calendar.holidays for d in days),
                "make_up_workdays": sum(d in calendar.workdays for d in days),
                "month_end_days": len(month_ends), "month_start_days": len(month_starts)}
    gaps = []
    if len(days) < MIN_BASELINE_DAYS:
        gaps.append(f"only {len(days)} calendar days (fewer than {MIN_BASELINE_DAYS}): each person's usual level "
                    f"rests on few days, so ordinary busy days alert more often")
    if not month_ends:
        gaps.append(f"no month end (a month's last {PERIOD_WORKDAYS} working days): month-end work such as a "
                    f"finance close is new to everyone and may alert; train on a period that includes one")
    if not month_starts:
        gaps.append(f"no month start (a month's first {PERIOD_WORKDAYS} working days): settlement and reporting "
                    f"work done then is new to everyone and may alert")
    if not coverage["days_off"]:
        gaps.append("no weekend or holiday: work on days off has no examples to be judged against")
    coverage["gaps"] = gaps
    return coverage
