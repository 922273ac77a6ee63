"""The employee directory: who owns which database account, their role and peers.

Peer groups (role within department, then role alone) are what a person's
behaviour is compared with when their own history is short.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from detector.inputs import InputError, parse_date, read_text

SERVICE_ROLE = "service_account"
REQUIRED_COLUMNS = ("employee_id", "department", "role", "db_accounts")


@dataclass(frozen=True, slots=True)
class Employee:
    employee_id: str
    department: str
    role: str
    db_accounts: tuple[str, ...]
    notice_date: date | None = None
    start_date: date | None = None
    end_date: date | None = None

    @property
    def is_service_account(self) -> bool:
        return self.role == SERVICE_ROLE

    @property
    def peer_group(self) -> str:
        return f"{self.role}/{self.department}"

    def is_departing_on(self, day: date) -> bool:
        return self.notice_date is not None and day >= self.notice_date


class Directory:
    """Employees by id and by database account."""

    def __init__(self, employees: list[Employee]) -> None:
        self.employees = {e.employee_id: e for e in employees}
        self.by_account: dict[str, Employee] = {}
        for employee in employees:
            for account in employee.db_accounts:
                self.by_account[account] = employee

    def resolve(self, employee_id: str | None, db_user: str) -> Employee | None:
        """The person behind an event: its employee_id (an end user passed by a shared application
        account may also be named by their own database account), else its account's owner.

        An employee_id that names nobody is not silently charged to the account's owner (often a
        shared service account, which rules exempt): the event stays unresolved and is reported."""
        if employee_id is not None:
            return self.employees.get(employee_id) or self.by_account.get(employee_id)
        return self.by_account.get(db_user)

    @classmethod
    def load(cls, path: Path | str) -> "Directory":
        return cls.parse(read_text(path, "directory"), str(path))

    @classmethod
    def parse(cls, text: str, name: str = "directory") -> "Directory":
        reader = csv.DictReader(io.StringIO(text))
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{name}: missing required column(s) {', '.join(missing)}")
        employees = [_employee(row, f"{name} line {reader.line_num}") for row in reader]
        seen: set[str] = set()
        for employee in employees:
            if employee.employee_id in seen:
                raise InputError(f"{name}: employee_id {employee.employee_id!r} appears twice")
            seen.add(employee.employee_id)
        return cls(employees)


def _employee(row: dict, where: str) -> Employee:
    values = {c: (row.get(c) or "").strip() for c in REQUIRED_COLUMNS}
    for column, value in values.items():
        if not value:
            raise InputError(f"{where}: column {column!r} is empty")
    accounts = tuple(a.strip() for a in values["db_accounts"].split(";") if a.strip())
    return Employee(
        employee_id=values["employee_id"],
        department=values["department"],
        role=values["role"],
        db_accounts=accounts,
        notice_date=_optional_date(row, "notice_date", where),
        start_date=_optional_date(row, "start_date", where),
        end_date=_optional_date(row, "end_date", where),
    )


def _optional_date(row: dict, column: str, where: str) -> date | None:
    value = (row.get(column) or "").strip()
    return parse_date(value, f"{where}, column {column!r}") if value else None
