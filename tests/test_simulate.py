"""The workload simulator: contract-shaped files, labelled incidents, realistic rhythms.

One workload (40 people, 21 days from 2026-09-10: the Mid-Autumn holiday, a
make-up workday, a pre-holiday sale and a month end all fall inside it) is
simulated once, written once and read back once; the tests judge that reading.
"""

from __future__ import annotations

import csv
import hashlib
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import yaml

from detector.simulate import SCENARIOS, SimulationConfig, simulate, write_workload
from detector.simulate.schema import RELATIONS

CONFIG = SimulationConfig(seed=3, employees=40, days=21, start=date(2026, 9, 10))
FILES = ("train.jsonl", "test.jsonl", "directory.csv", "catalog.yaml", "calendar.yaml", "labels.jsonl")
ACTIONS = {"SELECT", "INSERT", "UPDATE", "DELETE", "COPY", "EXPORT", "DDL", "LOGIN", "LOGIN_FAILED", "OTHER"}
OPTIONAL_STRINGS = ("employee_id", "client_addr", "application", "database", "statement", "session_id", "source")
CATEGORIES = {"name", "phone", "national_id", "address", "financial"}
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$")
OFFICE_ROLES = ("sales", "analyst", "finance", "developer")
HOLIDAYS = {"2026-09-25", "2026-09-26", "2026-09-27"}
WHOLE_CUSTOMERS = re.compile(r"SELECT \* FROM customers\b(?!_)", re.IGNORECASE)


@dataclass
class Reading:
    """Everything the tests need from one pass over the written files."""

    problems: list[str] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)
    unsorted: list[str] = field(default_factory=list)
    day_counts: Counter = field(default_factory=Counter)           # (employee_id, local day) -> ordinary events
    with_employee_id: int = 0
    events: int = 0
    unresolved: set[str] = field(default_factory=set)
    wrong_owner: int = 0
    objects: set[str] = field(default_factory=set)
    databases: set[str] = field(default_factory=set)
    train_addrs: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    train_statements: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    incident_events: list[tuple[int, dict]] = field(default_factory=list)
    phone_lookups: list[str] = field(default_factory=list)
    train_incident_events: int = 0


@pytest.fixture(scope="module")
def workload():
    return simulate(CONFIG)


@pytest.fixture(scope="module")
def out_dir(workload, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("workload")
    write_workload(workload, out)
    return out


@pytest.fixture(scope="module")
def directory(out_dir) -> list[dict[str, str]]:
    with open(out_dir / "directory.csv", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def owner_of(directory) -> dict[str, dict[str, str]]:
    return {account: row for row in directory for account in row["db_accounts"].split(";")}


@pytest.fixture(scope="module")
def labels(out_dir) -> list[dict]:
    return [orjson.loads(line) for line in (out_dir / "labels.jsonl").read_bytes().splitlines()]


@pytest.fixture(scope="module")
def reading(workload, out_dir, owner_of) -> Reading:
    r = Reading()
    for name, log in (("train.jsonl", workload.train_events), ("test.jsonl", workload.test_events)):
        owners = log.incident_index
        previous = None
        n = 0
        with open(out_dir / name, "rb") as fh:
            for i, raw in enumerate(fh):
                n += 1
                event = orjson.loads(raw)
                problem = _contract_problem(event)
                if problem and len(r.problems) < 10:
                    r.problems.append(f"{name} line {i + 1}: {problem}: {raw[:200]!r}")
                moment = datetime.fromisoformat(event["ts"])
                if previous is not None and moment < previous and len(r.unsorted) < 5:
                    r.unsorted.append(f"{name} line {i + 1}")
                previous = moment
                r.events += 1
                account = event["db_user"]
                row = owner_of.get(account)
                if row is None:
                    r.unresolved.add(account)
                    continue
                if "employee_id" in event:
                    r.with_employee_id += 1
                    r.wrong_owner += event["employee_id"] != row["employee_id"]
                r.objects.update(event.get("objects", ()))
                r.databases.add(event.get("database"))
                incident = int(owners[i]) if i < len(owners) else -2
                if incident >= 0:
                    r.incident_events.append((incident, event))
                    if name == "train.jsonl":
                        r.train_incident_events += 1
                    continue
                r.day_counts[(row["employee_id"], event["ts"][:10])] += 1
                statement = event.get("statement") or ""
                if name == "train.jsonl":
                    r.train_addrs[row["employee_id"]].add(event.get("client_addr"))
                    if statement and event.get("success", True):
                        r.train_statements[row["employee_id"]].append(statement)
                if "c1_0.phone='" in statement and statement.startswith("select c1_0.id,c1_0.name,c1_0.phone,c1_0.member_level"):
                    r.phone_lookups.append(statement)
        r.lines[name] = n
    return r


def _contract_problem(event: object) -> str | None:
    if not isinstance(event, dict):
        return "not an object"
    for key in ("ts", "db_user", "action"):
        if not isinstance(event.get(key), str) or not event[key]:
            return f"required field {key!r} missing or not a string"
    if not TS.match(event["ts"]) or datetime.fromisoformat(event["ts"]).tzinfo is None:
        return "ts is not RFC 3339 with an offset and milliseconds"
    if event["action"] not in ACTIONS:
        return f"unknown action {event['action']!r}"
    if any(value is None for value in event.values()):
        return "a field is null"
    for key in OPTIONAL_STRINGS:
        if key in event and not isinstance(event[key], str):
            return f"{key} is not a string"
    if "rows" in event and (type(event["rows"]) is not int or event["rows"] < 0):
        return "rows is not an integer >= 0"
    if "success" in event and not isinstance(event["success"], bool):
        return "success is not a boolean"
    if "objects" in event and not (isinstance(event["objects"], list) and all(isinstance(o, str) for o in event["objects"])):
        return "objects is not a list of strings"
    if event["action"] in ("LOGIN", "LOGIN_FAILED") and "statement" in event:
        return "a login carries a statement"
    if event["action"] == "LOGIN_FAILED" and event.get("success", True):
        return "a failed login succeeded"
    return None


def _digest(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in FILES}


# ---------------------------------------------------------------- determinism and configuration

def test_the_same_seed_writes_byte_identical_files_and_another_seed_does_not(tmp_path):
    small = SimulationConfig(seed=11, employees=20, days=14)
    write_workload(simulate(small), tmp_path / "a")
    write_workload(simulate(small), tmp_path / "b")
    write_workload(simulate(SimulationConfig(seed=12, employees=20, days=14)), tmp_path / "c")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["train.jsonl"] != _digest(tmp_path / "c")["train.jsonl"]


@pytest.mark.parametrize("bad", [dict(employees=5), dict(days=6), dict(seed=-1), dict(timezone="Mars/Olympus")])
def test_a_configuration_that_cannot_be_simulated_is_refused_with_a_reason(bad):
    with pytest.raises(ValueError, match=r"\w+"):
        SimulationConfig(**bad)


def test_the_test_period_is_the_last_third_but_at_least_a_week():
    assert SimulationConfig(days=28).test_days == 9
    assert SimulationConfig(days=14).test_days == 7
    assert SimulationConfig(days=60).train_days == 40


# ---------------------------------------------------------------- files per contract

def test_all_six_files_are_written(out_dir):
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(FILES)


def test_every_event_line_satisfies_the_contract(reading):
    assert reading.problems == []
    assert reading.events > 100_000


def test_each_events_file_is_sorted_by_time_and_matches_the_workload(reading, workload):
    assert reading.unsorted == []
    assert reading.lines["train.jsonl"] == len(workload.train_events)
    assert reading.lines["test.jsonl"] == len(workload.test_events)


def test_train_events_precede_test_events_at_the_period_boundary(workload):
    assert workload.train_events[-1]["ts"][:10] < CONFIG.test_start.isoformat() <= workload.test_events[0]["ts"][:10]


def test_directory_has_the_contract_columns_and_unique_ids_and_accounts(directory):
    assert {"employee_id", "department", "role", "db_accounts"} <= set(directory[0])
    ids = [row["employee_id"] for row in directory]
    accounts = [a for row in directory for a in row["db_accounts"].split(";")]
    assert len(ids) == len(set(ids)) == CONFIG.employees
    assert len(accounts) == len(set(accounts))
    for row in directory:
        for column in ("notice_date", "start_date", "end_date"):
            if row[column]:
                date.fromisoformat(row[column])
    roles = Counter(row["role"] for row in directory)
    assert set(roles) == {"customer_service", "dispatch", "sales", "analyst", "finance", "dba", "developer", "service_account"}
    assert roles["service_account"] >= 2


def test_some_people_have_a_second_account_and_dbas_an_admin_one(directory):
    assert any(";" in row["db_accounts"] and row["role"] in ("analyst", "finance") for row in directory)
    for row in directory:
        if row["role"] == "dba":
            assert any(a.startswith("dba_") for a in row["db_accounts"].split(";"))


def test_catalog_yaml_maps_relations_to_contract_categories(out_dir):
    catalog = yaml.safe_load((out_dir / "catalog.yaml").read_text(encoding="utf-8"))
    objects = catalog["objects"]
    assert "crm.public.customers" in objects and "logistics.logistics.waybills" in objects
    assert objects["crm.public.customers"]["id_card_no"] == "national_id"
    assert objects["billing.finance.payments"]["bank_card"] == "financial"
    for relation, columns in objects.items():
        assert relation.count(".") == 2
        assert set(columns.values()) <= CATEGORIES
        assert set(columns) <= set(RELATIONS[relation].columns)


def test_calendar_yaml_lists_the_holidays_and_make_up_workdays_of_the_range(out_dir):
    calendar = yaml.safe_load((out_dir / "calendar.yaml").read_text(encoding="utf-8"))
    assert calendar["timezone"] == "Asia/Shanghai"
    holidays = {date.fromisoformat(str(d)) for d in calendar["holidays"]}
    workdays = {date.fromisoformat(str(d)) for d in calendar["workdays"]}
    assert date(2026, 9, 25) in holidays and date(2026, 10, 1) in holidays
    assert date(2026, 9, 20) in workdays


def test_relations_named_in_events_exist_and_catalog_databases_are_the_events_databases(reading, out_dir):
    assert reading.objects and reading.objects <= set(RELATIONS)
    catalog = yaml.safe_load((out_dir / "catalog.yaml").read_text(encoding="utf-8"))
    assert {name.split(".")[0] for name in catalog["objects"]} <= reading.databases
    assert reading.databases == {"crm", "billing", "logistics"}


# ---------------------------------------------------------------- people and accounts

def test_employee_id_is_absent_on_a_fraction_of_events_but_every_account_resolves(reading):
    assert reading.unresolved == set()
    absent = 1 - reading.with_employee_id / reading.events
    assert 0.15 < absent < 0.45
    assert reading.wrong_owner == 0


def test_statement_literals_vary(reading):
    assert len(reading.phone_lookups) > 1000
    assert len(set(reading.phone_lookups)) > 0.95 * len(reading.phone_lookups)


def test_volumes_per_role_are_in_plausible_ranges(reading, directory):
    role_of = {row["employee_id"]: row["role"] for row in directory}
    per_role: dict[str, list[int]] = defaultdict(list)
    for (employee, _day), n in reading.day_counts.items():
        per_role[role_of[employee]].append(n)
    expected = {"customer_service": (250, 1000), "dispatch": (150, 800), "sales": (80, 500), "analyst": (60, 400),
                "finance": (80, 450), "dba": (25, 400), "developer": (100, 600), "service_account": (2000, 20000)}
    for role, (lo, hi) in expected.items():
        assert lo <= statistics.median(per_role[role]) <= hi, role
    humans = [n for role, v in per_role.items() if role != "service_account" for n in v]
    assert 150 <= statistics.median(humans) <= 400
    assert max(per_role["dba"]) > 2 * statistics.median(per_role["dba"])      # DBAs are spiky


def _mean_office_events(reading, directory, days: set[str]) -> float:
    office = {row["employee_id"] for row in directory if row["role"] in OFFICE_ROLES}
    total = sum(n for (employee, day), n in reading.day_counts.items() if employee in office and day in days)
    return total / (len(office) * len(days))


def _days(first: str, last: str) -> list[str]:
    a, b = date.fromisoformat(first), date.fromisoformat(last)
    return [(a + timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def test_holidays_are_quiet_for_office_roles(reading, directory):
    workdays = {d for d in _days("2026-09-14", "2026-09-18")}
    assert _mean_office_events(reading, directory, HOLIDAYS) < 0.06 * _mean_office_events(reading, directory, workdays)


def test_the_make_up_sunday_is_worked_and_an_ordinary_sunday_is_not(reading, directory):
    workdays = {d for d in _days("2026-09-14", "2026-09-18")}
    usual = _mean_office_events(reading, directory, workdays)
    assert _mean_office_events(reading, directory, {"2026-09-20"}) > 0.6 * usual
    assert _mean_office_events(reading, directory, {"2026-09-13"}) < 0.1 * usual


def test_customer_service_works_holidays_and_peaks_on_the_pre_holiday_sale(reading, directory):
    cs = {row["employee_id"] for row in directory if row["role"] == "customer_service"}
    per_day = Counter()
    for (employee, day), n in reading.day_counts.items():
        if employee in cs:
            per_day[day] += n
    ordinary = statistics.median(per_day[d] for d in _days("2026-09-14", "2026-09-18"))
    assert per_day["2026-09-26"] > 0.3 * ordinary              # shifts run through the holiday
    assert per_day["2026-09-24"] > 2 * ordinary                # the sale before Mid-Autumn


def test_finance_is_busier_on_the_last_two_workdays_of_the_month(reading, directory):
    finance = {row["employee_id"] for row in directory if row["role"] == "finance"}
    per_day = Counter()
    for (employee, day), n in reading.day_counts.items():
        if employee in finance:
            per_day[day] += n
    ordinary = statistics.median(per_day[d] for d in _days("2026-09-14", "2026-09-18"))
    assert per_day["2026-09-29"] + per_day["2026-09-30"] > 2.4 * ordinary


def test_benign_departures_exist_beside_the_malicious_one(directory, labels):
    labelled = {l["employee_id"] for l in labels if l["scenario"] == "departing_employee"}
    with_notice = {row["employee_id"] for row in directory if row["notice_date"]}
    assert labelled <= with_notice
    assert with_notice - labelled


def test_new_hires_start_inside_the_simulated_range(directory):
    starts = [date.fromisoformat(row["start_date"]) for row in directory if row["start_date"]]
    assert any(CONFIG.start < d <= CONFIG.end for d in starts)


# ---------------------------------------------------------------- incidents and labels

def test_training_holds_no_incident_events(workload, reading):
    assert reading.train_incident_events == 0
    assert (workload.train_events.incident_index == -1).all()


def test_every_scenario_is_labelled_in_the_test_period(labels):
    assert Counter(l["scenario"] for l in labels) == {s: CONFIG.incidents_per_scenario for s in SCENARIOS}
    test_start = datetime.combine(CONFIG.test_start, datetime.min.time()).isoformat()
    for label in labels:
        assert {"incident_id", "employee_id", "scenario", "start", "end"} <= set(label)
        start, end = datetime.fromisoformat(label["start"]), datetime.fromisoformat(label["end"])
        assert start.tzinfo is not None and start <= end
        assert label["start"][:19] >= test_start[:19]
        assert end.date() <= CONFIG.end
    assert len({l["incident_id"] for l in labels}) == len(labels)


def test_intensities_range_from_subtle_to_blatant(labels):
    assert {"subtle", "blatant"} <= {l["intensity"] for l in labels}


def test_labels_span_exactly_the_first_and_last_malicious_event_of_the_labelled_person(labels, reading, owner_of, workload):
    by_incident: dict[int, list[dict]] = defaultdict(list)
    for incident, event in reading.incident_events:
        by_incident[incident].append(event)
    assert len(by_incident) == len(labels)
    for index, label in enumerate(labels):
        events = by_incident[index]
        assert events[0]["ts"] == label["start"] and events[-1]["ts"] == label["end"]
        assert {owner_of[e["db_user"]]["employee_id"] for e in events} == {label["employee_id"]}


def test_malicious_events_are_interleaved_with_the_persons_ordinary_work(labels, reading):
    for label in labels:
        if label["scenario"] in ("offhours_new_address", "credential_misuse"):
            continue
        day = label["start"][:10]
        assert reading.day_counts[(label["employee_id"], day)] > 0, label["incident_id"]


def test_new_address_scenarios_come_from_addresses_the_person_never_used(labels, reading):
    by_incident: dict[int, list[dict]] = defaultdict(list)
    for incident, event in reading.incident_events:
        by_incident[incident].append(event)
    for index, label in enumerate(labels):
        if label["scenario"] in ("offhours_new_address", "credential_misuse"):
            addresses = {e["client_addr"] for e in by_incident[index]}
            assert not addresses & reading.train_addrs[label["employee_id"]], label["incident_id"]


def test_offhours_pulls_happen_at_night_or_on_a_day_off(labels, workload):
    calendar_days_off = HOLIDAYS | {"2026-09-12", "2026-09-13", "2026-09-19", "2026-10-03", "2026-10-04"}
    for label in labels:
        if label["scenario"] == "offhours_new_address":
            start = datetime.fromisoformat(label["start"])
            assert start.hour < 7 or start.hour >= 21 or label["start"][:10] in calendar_days_off or "day off" in label["detail"]


def test_unusual_columns_are_columns_the_person_never_read_in_training(labels, reading):
    for label in labels:
        if label["scenario"] != "unusual_columns":
            continue
        column = "id_card_no" if "id_card_no" in label["detail"] else "bank_card"
        history = reading.train_statements[label["employee_id"]]
        assert history
        assert not any(column in s or WHOLE_CUSTOMERS.search(s) for s in history), label["incident_id"]


def test_departing_employees_act_after_their_notice(labels, directory):
    notice = {row["employee_id"]: row["notice_date"] for row in directory}
    for label in labels:
        if label["scenario"] == "departing_employee":
            assert notice[label["employee_id"]] and notice[label["employee_id"]] <= label["start"][:10]


def test_some_copy_exports_or_dumps_leave_the_row_count_unknown():
    small = simulate(SimulationConfig(seed=4, employees=20, days=14, incidents_per_scenario=4))
    malicious = small.test_events.incident_index
    unknown = [i for i, line in enumerate(small.test_events.lines())
               if malicious[i] >= 0 and b'"action":"COPY"' in line and b'"rows":' not in line]
    pg_dump = [orjson.loads(line) for line in small.train_events.lines()
               if b'"application":"pg_dump"' in line and b'"action":"COPY"' in line]
    assert pg_dump and all("rows" not in e for e in pg_dump)
    assert unknown


# ---------------------------------------------------------------- the event log

def test_the_event_log_reads_like_a_list_of_event_dicts(workload, out_dir):
    log = workload.test_events
    first_line = (out_dir / "test.jsonl").open("rb").readline()
    assert log[0] == orjson.loads(first_line)
    assert log[-1] == log[len(log) - 1]
    assert log[1:3] == [log[1], log[2]]
    assert next(iter(log)) == log[0]
    with pytest.raises(IndexError):
        log[len(log)]
