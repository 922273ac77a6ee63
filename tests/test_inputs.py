"""Directory, catalog and calendar: contract formats in, clear errors out."""

from __future__ import annotations

from datetime import date

import pytest

from detector.calendar import WorkCalendar, baseline_coverage
from detector.catalog import Catalog
from detector.directory import Directory
from detector.inputs import InputError
from tests.factories import DIRECTORY_CSV, at


def test_directory_resolves_accounts_and_flags_service_and_departing():
    directory = Directory.parse(DIRECTORY_CSV)
    assert directory.resolve(None, "chen_jie_rpt").employee_id == "E004"
    assert directory.resolve("E002", "someone_else").employee_id == "E002"
    assert directory.resolve(None, "nobody") is None
    assert directory.employees["S001"].is_service_account
    wang = directory.employees["E003"]
    assert not wang.is_departing_on(date(2026, 9, 19)) and wang.is_departing_on(date(2026, 9, 20))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("employee_id,role,db_accounts\nE1,clerk,a\n", "missing required column(s) department"),
        ("employee_id,department,role,db_accounts\nE1,d,,a\n", "line 2: column 'role' is empty"),
        ("employee_id,department,role,db_accounts,notice_date\nE1,d,r,a,soon\n", "'soon' is not an ISO date"),
        ("employee_id,department,role,db_accounts\nE1,d,r,a\nE1,d,r,b\n", "appears twice"),
    ],
)
def test_broken_directory_names_the_problem(text: str, message: str):
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Directory.parse(text, "dir.csv")


def test_catalog_resolves_names_as_written_in_statements():
    catalog = Catalog.from_mapping({"objects": {"crm.public.customers": {"phone": "phone"},
                                                "logistics.logistics.waybills": {"receiver_phone": "phone"}}})
    assert catalog.resolve("crm", "customers").name == "crm.public.customers"
    assert catalog.resolve("crm", "public.customers").name == "crm.public.customers"
    assert catalog.resolve(None, "crm.public.customers").name == "crm.public.customers"
    assert catalog.resolve("logistics", "waybills").name == "logistics.logistics.waybills"
    assert catalog.resolve(None, "logistics.waybills").name == "logistics.logistics.waybills"
    assert catalog.resolve("logistics", "customers") is None
    assert catalog.resolve("crm", "orders") is None


def test_catalog_without_objects_is_refused():
    with pytest.raises(InputError, match="'objects' is required"):
        Catalog.from_mapping({"tables": {}}, "catalog.yaml")


def test_calendar_knows_holidays_makeup_workdays_and_working_hours():
    calendar = WorkCalendar.from_mapping({"timezone": "Asia/Shanghai", "holidays": ["2026-10-01"],
                                          "workdays": ["2026-09-27"]})
    assert not calendar.is_working_day(date(2026, 10, 1))      # a Thursday holiday
    assert calendar.is_working_day(date(2026, 9, 27))          # a Sunday make-up workday
    assert not calendar.is_working_day(date(2026, 9, 26))      # an ordinary Saturday
    assert calendar.local(int(at(2, 10).timestamp() * 1000)).working
    assert not calendar.local(int(at(2, 22).timestamp() * 1000)).working
    assert calendar.local(int(at(2, 0, 30).timestamp() * 1000)).day == date(2026, 9, 2).toordinal()


def test_calendar_with_unknown_timezone_is_refused():
    with pytest.raises(InputError, match="unknown timezone 'Mars/Olympus'"):
        WorkCalendar.from_mapping({"timezone": "Mars/Olympus"})


def test_baseline_coverage_counts_kinds_of_day_and_names_the_gaps():
    calendar = WorkCalendar.from_mapping({"timezone": "Asia/Shanghai", "holidays": ["2026-10-01", "2026-10-02"],
                                          "workdays": ["2026-09-27"]})
    short = baseline_coverage(calendar, date(2026, 9, 7).toordinal(), date(2026, 9, 11).toordinal())
    assert (short["working_days"], short["days_off"], short["month_end_days"]) == (5, 0, 0)
    assert [gap.split(" (")[0].split(":")[0] for gap in short["gaps"]] == [
        "only 5 calendar days", "no month end", "no month start", "no weekend or holiday"]
    full = baseline_coverage(calendar, date(2026, 9, 1).toordinal(), date(2026, 10, 9).toordinal())
    assert full["gaps"] == []
    assert (full["holidays"], full["make_up_workdays"]) == (2, 1)
    assert full["month_end_days"] == 3 and full["month_start_days"] == 6    # September's and October's first three
