"""The `personal_data_paging` rule: LIMIT/OFFSET pages through personal data far beyond the usual."""

from __future__ import annotations

from detector.pipeline import DetectionPipeline
from detector.rules import PAGING, RuleSettings
from tests.factories import TEST_DAY, at, event, normal_day, trained_colleagues


def _pages(day: int, user: str = "zhang_wei", count: int = 12, hour: int = 11) -> list:
    """`count` pages of 200 customers past the first, two seconds apart: a script walking the table."""
    return [event(at(day, hour, 0, 2 * k), user, f"SELECT name, phone FROM customers ORDER BY id LIMIT 200 OFFSET {200 * k}",
                  rows=200) for k in range(1, count + 1)]


def _alerts(pipeline: DetectionPipeline, events: list) -> list[dict]:
    return pipeline.process(sorted(events, key=lambda e: e.ts_ms)) + pipeline.finish()


def test_paging_through_customers_that_nobody_pages_alerts():
    alerts = _alerts(trained_colleagues(RuleSettings()), normal_day(TEST_DAY) + _pages(TEST_DAY))
    assert [a["detector"] for a in alerts] == [PAGING]       # 2,400 rows: far under bulk_read_rows
    reason = alerts[0]["reasons"][0]
    assert alerts[0]["employee_id"] == "E001" and alerts[0]["severity"] == "high"
    assert reason["feature"].startswith("offset_paging:offset_pages:")
    assert reason["detail"].startswith("paging through personal data: ") and ": 12;" in reason["detail"]


def test_a_few_pages_do_not_fire_it():
    assert _alerts(trained_colleagues(RuleSettings()), normal_day(TEST_DAY) + _pages(TEST_DAY, count=3)) == []


def test_people_who_page_every_day_are_judged_against_it():
    """Both colleagues page through 10 pages every afternoon: 12 today is their usual."""
    pipeline = trained_colleagues(RuleSettings(), extra=lambda day, user: _pages(day, user, count=10, hour=15))
    assert _alerts(pipeline, normal_day(TEST_DAY) + _pages(TEST_DAY)) == []


def test_the_rule_can_be_turned_off():
    assert _alerts(trained_colleagues(RuleSettings(paging=0.0)), normal_day(TEST_DAY) + _pages(TEST_DAY)) == []
