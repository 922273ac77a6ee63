"""The `new_id_or_card_column_reads` rule: ID-card or bank-card columns a person never read in their
history, read again and again in one day, even when their role reads them (so that no peer-relative
measure sees it)."""

from __future__ import annotations

import json

from detector.access import AccessProfiler
from detector.rules import NEW_HIGH_VALUE_COLUMNS, OwnHistory, RuleSettings, may_fire
from detector.state import EmployeeState
from tests.factories import at, event, normal_day, reference_data, trained_colleagues

SATURDAY = 26          # not among the month's first or last three working days (28-30 September close it)
CLOSING_DAY = 28


def _id_reads(day: int, statements: int, user: str = "zhang_wei", column: str = "id_card_no") -> list:
    """Single-customer look-ups of a column, at scattered ids (no enumeration)."""
    return [event(at(day, 13, i % 60, i // 60), user, f"SELECT name, {column} FROM customers WHERE id = {3000 + i * 4111 % 9000}")
            for i in range(statements)]


def _alerts(day: int, reads: list, rules: RuleSettings = RuleSettings(), extra=None) -> list[dict]:
    pipeline = trained_colleagues(rules, extra=extra)
    return pipeline.process(sorted(normal_day(day) + reads, key=lambda e: e.ts_ms)) + pipeline.finish()


def _fired(alerts: list[dict]) -> list[dict]:
    return [a for a in alerts if a["detector"] == NEW_HIGH_VALUE_COLUMNS]


def test_the_twentieth_statement_reading_an_id_column_never_read_before_alerts_once():
    reads = _id_reads(SATURDAY, 30)
    alone = RuleSettings(unfamiliar_data=0, unfamiliar_new_columns=0)    # which would open the incident at 13:14
    fired = _fired(_alerts(SATURDAY, reads, alone))
    assert len(fired) == 1
    alert = fired[0]
    assert alert["employee_id"] == "E001" and alert["severity"] == "medium"
    assert alert["detected_at"].startswith("2026-09-26T05:19:00")       # the twentieth, 13:19 local
    reason = alert["reasons"][0]
    assert (reason["feature"], reason["value"], reason["baseline"]) == ("new_high_value_column_statements", 20, 0)
    assert "crm.public.customers.id_card_no" in reason["detail"]
    assert "3000" not in json.dumps(alert) and "WHERE id = " not in json.dumps(alert)    # no literal, ever


def test_fewer_statements_a_closing_day_a_low_value_column_and_the_rule_off_do_not_fire_it():
    assert not _fired(_alerts(SATURDAY, _id_reads(SATURDAY, 19)))
    assert not _fired(_alerts(CLOSING_DAY, _id_reads(CLOSING_DAY, 30)))
    assert not _fired(_alerts(SATURDAY, _id_reads(SATURDAY, 30, column="address")))
    assert not _fired(_alerts(SATURDAY, _id_reads(SATURDAY, 30), RuleSettings(new_high_value_column_statements=0)))


def test_a_role_that_reads_the_column_does_not_excuse_a_person_who_never_did():
    weekly = (lambda user: lambda day, u: _id_reads(day, 5, user=u) if u == user and day % 7 == 1 else [])
    assert len(_fired(_alerts(SATURDAY, _id_reads(SATURDAY, 30), extra=weekly("li_na")))) == 1
    assert not _fired(_alerts(SATURDAY, _id_reads(SATURDAY, 30), extra=weekly("zhang_wei")))


def test_someone_without_days_of_history_is_not_judged_by_it():
    pipeline = trained_colleagues(RuleSettings())
    newcomer = _id_reads(SATURDAY, 30, user="chen_jie")          # E004 never worked before today
    assert not _fired(pipeline.process(newcomer) + pipeline.finish())


def test_the_count_is_per_day_and_survives_a_save():
    pipeline = trained_colleagues(RuleSettings())
    state = pipeline.states["E001"]
    pipeline.process(sorted(normal_day(SATURDAY) + _id_reads(SATURDAY, 7), key=lambda e: e.ts_ms))
    assert state.day_new_high_value_reads == 7
    assert EmployeeState.from_dict(json.loads(json.dumps(state.to_dict()))).day_new_high_value_reads == 7
    pipeline.process(normal_day(SATURDAY + 1))
    assert state.day_new_high_value_reads == 0


def test_it_fires_at_the_limit_only_not_on_every_statement_after():
    read = _id_reads(SATURDAY, 1)[0]
    profile, _ = AccessProfiler(reference_data().catalog).profile(read)
    assert profile.high_value_columns == ("crm.public.customers.id_card_no",)
    fires = [may_fire(read, profile, RuleSettings(), None, OwnHistory(new_high_value_reads=n)) for n in (19, 20, 21)]
    assert fires == [False, True, False]
