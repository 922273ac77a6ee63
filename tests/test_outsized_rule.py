"""The `outsized_personal_read` rule: one statement reading several times more personal data than the
person ever read in one, which people who read thousands a day do without any volume rule noticing."""

from __future__ import annotations

import json

from detector.rules import OUTSIZED_READ, RuleSettings
from detector.state import EmployeeState
from tests.factories import at, event, normal_day, trained_colleagues

SATURDAY = 26          # not among the month's first or last three working days (28-30 September close it)
CLOSING_DAY = 28
EXPORT = "SELECT name, phone FROM customers WHERE city = 'Chengdu' AND created_at >= '2026-01-01'"
CARDS = "SELECT name, bank_card FROM customers WHERE city = 'Chengdu' AND created_at >= '2026-01-01'"


def _usual_lists(day: int, user: str) -> list:
    """A daily list of 500 customers: the largest statement each colleague runs."""
    statement = "SELECT name, phone FROM customers WHERE district = 'Xuhui' ORDER BY id LIMIT 500"
    return [event(at(day, 11), user, statement, rows=500)]


def _alerts(rules: RuleSettings, day: int, rows: int, statement: str = EXPORT) -> list[dict]:
    pipeline = trained_colleagues(rules, extra=_usual_lists)
    events = normal_day(day) + [event(at(day, 15), "zhang_wei", statement, rows=rows)]
    return pipeline.process(sorted(events, key=lambda e: e.ts_ms)) + pipeline.finish()


def _detectors(alerts: list[dict]) -> list[str]:
    return [a["detector"] for a in alerts]


def test_one_statement_three_times_the_largest_ever_alerts_with_counts_only():
    alerts = _alerts(RuleSettings(), SATURDAY, 1_500)
    assert _detectors(alerts) == [OUTSIZED_READ]
    alert = alerts[0]
    assert alert["employee_id"] == "E001" and alert["severity"] == "high"
    reason = alert["reasons"][0]
    assert (reason["feature"], reason["value"], reason["baseline"]) == ("statement_vs_own_largest", 1_500, 500)
    assert "crm.public.customers (name, phone)" in reason["detail"]
    assert "Chengdu" not in json.dumps(alert) and "2026-01-01" not in json.dumps(alert)


def test_a_statement_within_three_times_the_largest_a_closing_day_card_read_and_the_rule_off_do_not_fire_it():
    assert OUTSIZED_READ not in _detectors(_alerts(RuleSettings(), SATURDAY, 1_499))
    assert OUTSIZED_READ not in _detectors(_alerts(RuleSettings(), CLOSING_DAY, 1_500, CARDS))
    assert OUTSIZED_READ not in _detectors(_alerts(RuleSettings(outsized_read_times=0), SATURDAY, 1_500))


def test_on_a_closing_day_only_reads_of_financial_data_are_spared():
    """A close reads whole months of payments; it has no reason to read a month of names and phones."""
    assert OUTSIZED_READ in _detectors(_alerts(RuleSettings(), CLOSING_DAY, 1_500))


def test_under_a_thousand_rows_is_never_outsized():
    pipeline = trained_colleagues(RuleSettings())          # largest statement: one row (name-and-phone lookups)
    events = normal_day(SATURDAY) + [event(at(SATURDAY, 15), "zhang_wei", EXPORT, rows=999)]
    alerts = pipeline.process(sorted(events, key=lambda e: e.ts_ms)) + pipeline.finish()
    assert OUTSIZED_READ not in _detectors(alerts)


def test_the_largest_read_survives_a_save_and_a_state_saved_before_it_was_kept_is_not_judged():
    pipeline = trained_colleagues(RuleSettings(), extra=_usual_lists)
    state = pipeline.states["E001"]
    assert state.largest_read == 500 and state.largest_read_before() == 500
    assert EmployeeState.from_dict(json.loads(json.dumps(state.to_dict()))).largest_read_before() == 500
    older = {k: v for k, v in state.to_dict().items() if k not in ("largest_read", "day_largest_read")}
    assert EmployeeState.from_dict(older).largest_read_before() is None


ID_CARDS = "SELECT name, id_card_no FROM customers WHERE city = 'Chengdu' AND created_at >= '2026-01-01'"
ID_AND_BANK_CARDS = "SELECT name, id_card_no, bank_card FROM customers WHERE city = 'Chengdu' AND member_level >= 3"


def _usual_lists_and_id_checks(day: int, user: str) -> list:
    """Each colleague's daily list of 500 names and phones, and a check of 100 customers' ID-card numbers."""
    checks = "SELECT name, id_card_no FROM customers WHERE district = 'Xuhui' ORDER BY id LIMIT 100"
    return _usual_lists(day, user) + [event(at(day, 14), user, checks, rows=100)]


def _high_value_alerts(day: int, rows: int, statement: str = ID_CARDS) -> list[dict]:
    pipeline = trained_colleagues(RuleSettings(), extra=_usual_lists_and_id_checks)
    events = normal_day(day) + [event(at(day, 15), "zhang_wei", statement, rows=rows)]
    return pipeline.process(sorted(events, key=lambda e: e.ts_ms)) + pipeline.finish()


def test_id_card_numbers_are_judged_against_the_largest_such_read_from_a_lower_floor():
    """450 rows are fewer than the person's daily list of 500, but 4.5 times their most ID-card numbers."""
    alerts = _high_value_alerts(SATURDAY, 450)
    assert _detectors(alerts) == [OUTSIZED_READ]
    reason = alerts[0]["reasons"][0]
    assert (reason["feature"], reason["value"], reason["baseline"]) == ("statement_high_value_vs_own_largest", 450, 100)
    assert "with crm.public.customers.id_card_no" in reason["detail"]
    assert "Chengdu" not in json.dumps(alerts) and "2026-01-01" not in json.dumps(alerts)


def test_id_card_reads_under_the_floor_or_three_times_the_largest_do_not_fire():
    assert OUTSIZED_READ not in _detectors(_high_value_alerts(SATURDAY, 399))   # 3 x 100 = 300, floor 400
    pipeline = trained_colleagues(RuleSettings(), extra=_usual_lists)      # never read ID-card numbers: largest 0
    events = normal_day(SATURDAY) + [event(at(SATURDAY, 15), "zhang_wei", EXPORT, rows=450)]
    assert OUTSIZED_READ not in _detectors(pipeline.process(sorted(events, key=lambda e: e.ts_ms)) + pipeline.finish())


def test_on_a_closing_day_a_bank_card_read_is_spared_but_not_one_with_id_card_numbers():
    """A close reads payments' bank cards by the month; it never needs ID-card numbers."""
    assert OUTSIZED_READ not in _detectors(_high_value_alerts(CLOSING_DAY, 450, CARDS))
    assert _detectors(_high_value_alerts(CLOSING_DAY, 450, ID_AND_BANK_CARDS))[0] == OUTSIZED_READ   # then revised


def test_the_largest_id_card_read_survives_a_save_and_one_saved_before_it_was_kept_is_not_judged():
    pipeline = trained_colleagues(RuleSettings(), extra=_usual_lists_and_id_checks)
    state = pipeline.states["E001"]
    assert state.largest_read == 500 and state.largest_high_value_read_before() == 100
    assert EmployeeState.from_dict(json.loads(json.dumps(state.to_dict()))).largest_high_value_read_before() == 100
    older = {k: v for k, v in state.to_dict().items()
             if k not in ("largest_high_value_read", "day_largest_high_value_read")}
    assert EmployeeState.from_dict(older).largest_high_value_read_before() is None
