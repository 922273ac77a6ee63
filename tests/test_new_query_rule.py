"""The `new_query_personal_read` rule: personal data pulled in a day with statements the person never ran
before, a few hundred rows each (below every per-statement rule), far more than such statements ever
read on one of their earlier days."""

from __future__ import annotations

import json

from detector.rules import NEW_QUERY_READ, OUTSIZED_READ, UNFAMILIAR_DATA, RuleSettings
from detector.state import EmployeeState
from tests.factories import at, event, normal_day, trained_colleagues

SATURDAY = 26          # not among the month's first or last three working days (28-30 September close it)
CLOSING_DAY = 28
PULL = "SELECT name, phone, address FROM customers WHERE city = 'Chengdu' ORDER BY id LIMIT 400"


def _pull(day: int, statements: int, rows: int = 400, user: str = "zhang_wei") -> list:
    return [event(at(day, 14, 10 * i), user, PULL, rows=rows) for i in range(statements)]


def _alerts(rules: RuleSettings, day: int, pull: list, extra=None) -> list[dict]:
    pipeline = trained_colleagues(rules, extra=extra)
    events = normal_day(day) + pull
    return pipeline.process(sorted(events, key=lambda e: e.ts_ms)) + pipeline.finish()


def _rule_alerts(alerts: list[dict]) -> list[dict]:
    return [a for a in alerts if a["detector"] == NEW_QUERY_READ]


def test_three_new_statements_of_400_rows_alert_once_at_the_one_that_crosses_a_thousand():
    alone = RuleSettings(unfamiliar_data=0, unfamiliar_new_columns=0)     # which would open the incident at 14:00
    alerts = _alerts(alone, SATURDAY, _pull(SATURDAY, 5))
    fired = _rule_alerts(alerts)
    assert len(fired) == 1
    alert = fired[0]
    assert alert["employee_id"] == "E001" and alert["severity"] == "medium"
    assert alert["detected_at"].startswith("2026-09-26T06:20")          # the third statement, 14:20 local
    reason = alert["reasons"][0]
    assert (reason["feature"], reason["value"], reason["baseline"]) == ("new_query_rows_vs_own_most", 1_200, 0)
    assert "(the latest: 400 rows of crm.public.customers (address, name, phone))" in reason["detail"]
    assert "Chengdu" not in json.dumps(alert)
    assert OUTSIZED_READ not in {a["detector"] for a in alerts}        # no one statement reached 1,000 rows


def test_under_a_thousand_rows_a_closing_day_and_the_rule_off_do_not_fire_it():
    assert not _rule_alerts(_alerts(RuleSettings(), SATURDAY, _pull(SATURDAY, 2, rows=499)))
    assert not _rule_alerts(_alerts(RuleSettings(), CLOSING_DAY, _pull(CLOSING_DAY, 5)))
    assert not _rule_alerts(_alerts(RuleSettings(new_query_read_times=0), SATURDAY, _pull(SATURDAY, 5)))


def test_a_query_the_person_or_their_role_ran_before_is_no_new_query():
    weekly = (lambda user: lambda day, u: _pull(day, 1, rows=20, user=u) if u == user and day % 7 == 1 else [])
    assert not _rule_alerts(_alerts(RuleSettings(), SATURDAY, _pull(SATURDAY, 5), extra=weekly("zhang_wei")))
    assert not _rule_alerts(_alerts(RuleSettings(), SATURDAY, _pull(SATURDAY, 5), extra=weekly("li_na")))


def test_the_most_is_learnt_from_earlier_days_and_survives_a_save():
    pipeline = trained_colleagues(RuleSettings())
    state = pipeline.states["E001"]
    assert state.new_query_read == 0.0
    day = SATURDAY
    pipeline.process(sorted(normal_day(day) + _pull(day, 2, rows=450), key=lambda e: e.ts_ms))
    pipeline.process(normal_day(day + 1))                  # the next day rolls 900 rows into the most
    assert state.new_query_read == 900.0
    restored = EmployeeState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored.new_query_read == 900.0
    older = {k: v for k, v in state.to_dict().items() if k not in ("new_query_read", "day_new_query_rows")}
    assert EmployeeState.from_dict(older).new_query_read is None


def test_three_times_the_most_of_an_earlier_day_is_needed_above_a_thousand():
    def earlier(day: int, user: str) -> list:      # one day of 600 rows by a statement new that day
        if user != "zhang_wei" or day != 22:
            return []
        return [event(at(day, 14), user, "SELECT name, phone FROM customers WHERE district = 'Minhang' LIMIT 600", rows=600)]
    assert not _rule_alerts(_alerts(RuleSettings(), SATURDAY, _pull(SATURDAY, 4), extra=earlier))   # 1,600 < 1,800
    assert len(_rule_alerts(_alerts(RuleSettings(), SATURDAY, _pull(SATURDAY, 5), extra=earlier))) == 1


def test_the_earliest_trigger_opens_the_incident_wherever_batches_end():
    """The day's address rows reach the snapshot rule at 14:00, the new query rule fires at 14:20: in one
    batch the snapshot is scored after the 14:20 event was seen, yet its trigger still comes first."""
    events = sorted(normal_day(SATURDAY) + _pull(SATURDAY, 5), key=lambda e: e.ts_ms)
    whole = trained_colleagues(RuleSettings())
    one_batch = whole.process(events) + whole.finish()
    split = trained_colleagues(RuleSettings())
    one_by_one = [a for e in events for a in split.process([e])] + split.finish()
    ids = lambda alerts: [(a["alert_id"], a["revision"], a["detector"], a["detected_at"]) for a in alerts]
    assert ids(one_batch) == ids(one_by_one)
    assert [a["detector"] for a in one_batch] == [UNFAMILIAR_DATA, NEW_QUERY_READ]
    assert one_batch[1]["first_detected_at"] == one_batch[0]["detected_at"] == "2026-09-26T06:00:00.000Z"


def test_a_snapshot_alert_shows_its_own_days_evidence_when_the_next_day_is_in_the_same_batch():
    saturday = sorted(normal_day(SATURDAY) + _pull(SATURDAY, 5), key=lambda e: e.ts_ms)
    pipeline = trained_colleagues(RuleSettings())
    alerts = pipeline.process(saturday + normal_day(SATURDAY + 1, lookups=7)) + pipeline.finish()
    snapshot_alert = next(a for a in alerts if a["detector"] == UNFAMILIAR_DATA)
    by_its_tick = [e for e in saturday if e.ts_ms < _tick_close()]
    assert snapshot_alert["evidence"]["statements_today"] == len(by_its_tick) == 27   # of 45 on Saturday, not Sunday's 7
    assert "address" in snapshot_alert["evidence"]["categories"]


def test_a_snapshot_alert_shows_its_tick_not_the_later_events_of_its_batch():
    """Scored at the end of the batch, the 14:00 snapshot still shows the day as its tick closed: one
    statement of the pull, not the five the batch holds, so the alert is the same in one batch or many."""
    events = sorted(normal_day(SATURDAY) + _pull(SATURDAY, 5), key=lambda e: e.ts_ms)
    whole = trained_colleagues(RuleSettings())
    one_batch = whole.process(events) + whole.finish()
    split = trained_colleagues(RuleSettings())
    one_by_one = [a for e in events for a in split.process([e])] + split.finish()
    assert one_batch == one_by_one
    assert "Chengdu" not in json.dumps(one_batch)                             # the pull's literal
    snapshot_alert = one_batch[0]
    assert snapshot_alert["detector"] == UNFAMILIAR_DATA
    pull_shape = max(snapshot_alert["evidence"]["fingerprints"], key=lambda f: f["rows"])
    assert (pull_shape["statements"], pull_shape["rows"]) == (1, 400)          # 14:00; 14:10-14:40 come later
    assert snapshot_alert["evidence"]["objects"] == [{"relation": "crm.public.customers", "rows": 400 + _routine_rows(events)}]


def _routine_rows(events: list) -> int:
    """Personal-data rows of the person's ordinary work before the 14:05 tick closed."""
    return sum(e.rows or 0 for e in events if e.db_user == "zhang_wei" and e.ts_ms < _tick_close() and e.statement != PULL)


def _tick_close() -> int:
    """When the tick of the 14:00 snapshot closes."""
    return int(at(SATURDAY, 14, 5).timestamp() * 1000)
