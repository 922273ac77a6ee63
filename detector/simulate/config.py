"""What to simulate: the one typed, validated configuration of the simulator.

Everything else in the package derives from a `SimulationConfig`; nothing reads
the environment or the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MIN_EMPLOYEES = 20
MIN_DAYS = 14


@dataclass(frozen=True)
class SimulationConfig:
    seed: int = 7
    employees: int = 200          # humans + service accounts (service accounts ~4% of the total, at least 2)
    days: int = 28                # train = the first part (no incidents), test = the last max(7, days // 3) days
    start: date = date(2026, 9, 1)
    timezone: str = "Asia/Shanghai"
    incidents_per_scenario: int = 2   # in the test period

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"simulation seed must be a non-negative integer, got {self.seed!r}")
        if self.employees < MIN_EMPLOYEES:
            raise ValueError(f"simulation needs at least {MIN_EMPLOYEES} employees (every role staffed), got {self.employees}")
        if self.days < MIN_DAYS:
            raise ValueError(f"simulation needs at least {MIN_DAYS} days (a week of test after a week of training), got {self.days}")
        if self.incidents_per_scenario < 0:
            raise ValueError(f"incidents_per_scenario must be >= 0, got {self.incidents_per_scenario}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r} (expected an IANA name such as Asia/Shanghai)") from None

    @property
    def test_days(self) -> int:
        return max(7, self.days // 3)

    @property
    def train_days(self) -> int:
        return self.days - self.test_days

    @property
    def end(self) -> date:
        """The last simulated day (inclusive)."""
        return self.start + timedelta(days=self.days - 1)

    @property
    def test_start(self) -> date:
        return self.start + timedelta(days=self.train_days)

    def day(self, index: int) -> date:
        return self.start + timedelta(days=index)
