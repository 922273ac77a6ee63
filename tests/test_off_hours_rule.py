"""The `off_hours_read_from_new_source` rule: a few hundred rows of personal data read at night from an
address or application the person never used, which neither volume nor the forest calls out."""

from __future__ import annotations

import json

from detector import counters as C
from detector.rules import OFF_HOURS_NEW_SOURCE, RuleSettings
from tests.factories import TEST_DAY, at, event, normal_day, trained_colleagues

HOME = {"client_addr": "10.0.9.77", "application": "DBeaver"}      # never used by anyone in training


def _city_lists(day: int, hour: int, count: int, rows: int = 100, **source) -> list:
    statement = "SELECT name, phone FROM customers WHERE city = 'Chengdu' ORDER BY id LIMIT 100"
    return [event(at(day, hour, 3 * k), "zhang_wei", statement, rows=rows, **source) for k in range(count)]


def _alerts(rules: RuleSettings, test_day_events: list, late_shifts: bool = False) -> list[dict]:
    extra = (lambda day, user: _city_lists(day, 21, 3)) if late_shifts else None    # 300 rows at 21:00, usual source
    pipeline = trained_colleagues(rules, extra=extra)
    events = normal_day(TEST_DAY) + test_day_events
    return pipeline.process(sorted(events, key=lambda e: e.ts_ms)) + pipeline.finish()


def _detectors(alerts: list[dict]) -> list[str]:
    return [a["detector"] for a in alerts]


def test_a_night_pull_from_a_never_seen_address_alerts_with_counts_only():
    alerts = _alerts(RuleSettings(), _city_lists(TEST_DAY, 3, 5, **HOME))
    assert _detectors(alerts) == [OFF_HOURS_NEW_SOURCE]
    alert = alerts[0]
    assert alert["employee_id"] == "E001" and alert["severity"] == "high"
    reason = alert["reasons"][0]
    assert reason["feature"] == "off_hours_new_source:off_hours_sensitive_rows:day"
    assert reason["value"] == 200 and reason["baseline"] == 0        # alerted as soon as the floor was reached
    assert "200 from an address or application this person never used" in reason["detail"]
    assert "2 of today's 2 statements at hours they rarely work" in reason["detail"]
    assert "Chengdu" not in json.dumps(alert)


def test_the_same_night_from_the_usual_source_or_an_evening_after_a_usual_day_does_not_fire_it():
    assert OFF_HOURS_NEW_SOURCE not in _detectors(_alerts(RuleSettings(), _city_lists(TEST_DAY, 3, 5)))
    evening = _city_lists(TEST_DAY, 20, 5, **HOME)     # off and rare hours, new source: 5 of the day's 45 statements
    assert OFF_HOURS_NEW_SOURCE not in _detectors(_alerts(RuleSettings(), evening))


def test_too_few_rows_a_person_who_reads_as_much_off_hours_and_the_rule_turned_off_do_not_fire_it():
    assert OFF_HOURS_NEW_SOURCE not in _detectors(_alerts(RuleSettings(), _city_lists(TEST_DAY, 3, 1, **HOME)))
    assert OFF_HOURS_NEW_SOURCE not in _detectors(_alerts(RuleSettings(), _city_lists(TEST_DAY, 3, 5, **HOME),
                                                          late_shifts=True))
    assert _alerts(RuleSettings(off_hours_new_source_rows=0), _city_lists(TEST_DAY, 3, 5, **HOME)) == []


def test_the_rule_reads_counters_that_the_night_pull_fills():
    pipeline = trained_colleagues(RuleSettings())
    pipeline.process(_city_lists(TEST_DAY, 3, 2, **HOME), score=False)
    day = pipeline.states["E001"].day_counts
    assert day[C.OFF_HOURS_ROWS] == day[C.NEW_SOURCE_ROWS] == 200 and day[C.RARE_HOUR] == day[C.STATEMENTS] == 2
