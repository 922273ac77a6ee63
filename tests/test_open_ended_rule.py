"""The `unsized_open_ended_read` rule: a never-run read of personal data with no LIMIT and no key,
from a source that does not report rows (MariaDB's audit log): nothing else can size it."""

from __future__ import annotations

import pytest

from detector.access import AccessProfiler
from detector.catalog import Catalog
from detector.rules import OPEN_ENDED_READ, RuleSettings
from detector.state import ROUTINE_OPEN_READS, EmployeeState
from tests.factories import CATALOG, TEST_DAY, at, event, normal_day, trained_colleagues

BY_CITY = "SELECT name, phone, id_card_no FROM customers WHERE city = 'Shenzhen'"


def _unsized(statement: str = BY_CITY, hour: int = 11, user: str = "zhang_wei", rows: int | None = None) -> list:
    return [event(at(TEST_DAY, hour), user, statement, rows=rows, application=None)]


def _alerts(rules: RuleSettings, events: list, pipeline=None) -> list[dict]:
    pipeline = pipeline or trained_colleagues(rules)
    return pipeline.process(sorted(normal_day(TEST_DAY) + events, key=lambda e: e.ts_ms)) + pipeline.finish()


def test_a_never_run_read_by_city_of_unknown_size_alerts_without_a_literal():
    alerts = _alerts(RuleSettings(), _unsized())
    assert [a["detector"] for a in alerts] == [OPEN_ENDED_READ]
    alert = alerts[0]
    assert alert["employee_id"] == "E001" and alert["severity"] == "medium"
    detail = alert["reasons"][0]["detail"]
    assert "crm.public.customers" in detail and "id_card_no" in detail and "no LIMIT and no key" in detail
    assert "Shenzhen" not in str(alert)
    assert alert["evidence"]["trigger"]["rows"] is None


@pytest.mark.parametrize("statement, rows", [
    (BY_CITY + " LIMIT 100", None),                                     # bounded by its LIMIT
    ("SELECT name, phone FROM customers WHERE id = 52", None),          # a key lookup
    ("SELECT name, phone FROM customers WHERE customer_no = 'C-52'", None),
    ("SELECT count(*) FROM customers WHERE city = 'Shenzhen'", None),  # an aggregate reads no personal data
    (BY_CITY, 700),                                                     # its size is known: the volume rules judge it
])
def test_bounded_keyed_aggregate_or_sized_reads_do_not_fire_it(statement, rows):
    alerts = _alerts(RuleSettings(), _unsized(statement, rows=rows))
    assert OPEN_ENDED_READ not in [a["detector"] for a in alerts]


def test_a_shape_the_person_ran_before_and_the_rule_turned_off_do_not_fire_it():
    pipeline = trained_colleagues(RuleSettings())
    assert len(_alerts(RuleSettings(), _unsized(hour=10), pipeline)) == 1
    assert _alerts(RuleSettings(), _unsized(BY_CITY.replace("Shenzhen", "Xuhui"), hour=15), pipeline) == []
    assert _alerts(RuleSettings(open_ended_read_enabled=False), _unsized()) == []


def test_someone_without_history_and_a_state_saved_before_the_rule_are_not_judged():
    pipeline = trained_colleagues(RuleSettings())
    state = pipeline.states["E001"]
    data = state.to_dict()
    del data["seen_open_reads"]
    pipeline.states["E001"] = EmployeeState.from_dict(data)
    assert pipeline.states["E001"].seen_open_reads is None
    assert _alerts(RuleSettings(), _unsized(), pipeline) == []
    fresh = EmployeeState("E001", "E001")
    assert not fresh.first_open_read(AccessProfiler(Catalog.from_mapping(CATALOG)).profile(_unsized()[0])[0])


def test_open_ended_reads_run_in_training_are_remembered_across_a_save():
    pipeline = trained_colleagues(RuleSettings(), extra=lambda day, user: _unsized(hour=16, user=user)
                                  if day % 5 == 0 else [])
    assert pipeline.states["E001"].seen_open_reads
    restored = EmployeeState.from_dict(pipeline.states["E001"].to_dict())
    assert restored.seen_open_reads == pipeline.states["E001"].seen_open_reads
    assert _alerts(RuleSettings(), _unsized(), pipeline) == []


def test_someone_who_writes_open_ended_reads_as_a_routine_is_not_judged_by_it():
    columns = ("name", "phone", "address", "id_card_no")
    filters = ("city", "district", "level", "status", "segment")

    def ad_hoc(day: int, user: str) -> list:      # new shapes most days: a column set, a filter
        return [event(at(day, 16, k), user, f"SELECT {', '.join(columns[:1 + (day + k) % 4])} FROM customers "
                      f"WHERE {filters[(day + 2 * k) % 5]} = 'x'", rows=None) for k in range(2)]
    pipeline = trained_colleagues(RuleSettings(), extra=ad_hoc)
    assert len(pipeline.states["E001"].seen_open_reads) >= ROUTINE_OPEN_READS
    assert _alerts(RuleSettings(), _unsized(), pipeline) == []
