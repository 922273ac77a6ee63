"""The `personal_data_paging` rule: LIMIT/OFFSET pages through personal data far beyond the usual."""

from __future__ import annotations

import orjson

from detector.pipeline import DetectionPipeline
from detector.rules import PAGING, RuleSettings
from detector.state import EmployeeState
from tests.factories import TEST_DAY, at, event, normal_day, trained_colleagues


def _pages(day: int, user: str = "zhang_wei", count: int = 12, hour: int = 11) -> list:
    """`count` pages of 200 customers past the first, two seconds apart: a script walking the table."""
    return [event(at(day, hour, 0, 2 * k), user, f"SELECT name, phone FROM customers ORDER BY id LIMIT 200 OFFSET {200 * k}",
                  rows=200) for k in range(1, count + 1)]


def _keyset_pages(day: int, count: int = 12, bounds: list[int] | None = None) -> list:
    """Pages of 200 customers, each starting after the last id of the one before (no OFFSET)."""
    bounds = bounds if bounds is not None else [200 * k for k in range(count)]
    return [event(at(day, 11, 0, 2 * k), statement=f"SELECT id, name, phone FROM customers WHERE id > {bound} "
                  f"ORDER BY id LIMIT 200", rows=200) for k, bound in enumerate(bounds)]


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


def test_keyset_pages_count_as_pages():
    alerts = _alerts(trained_colleagues(RuleSettings()), normal_day(TEST_DAY) + _keyset_pages(TEST_DAY))
    assert [a["detector"] for a in alerts] == [PAGING]
    assert alerts[0]["reasons"][0]["feature"].startswith("offset_paging:offset_pages:")


def test_the_same_keyset_query_run_again_is_not_a_next_page():
    """A report of the 200 customers after id 5000, refreshed twelve times, walks nothing."""
    events = normal_day(TEST_DAY) + _keyset_pages(TEST_DAY, bounds=[5000] * 12)
    assert _alerts(trained_colleagues(RuleSettings()), events) == []


def test_a_keyset_walk_goes_on_across_a_restart():
    """Six pages, a checkpoint and a restart, six more: the restored state knows the last bound."""
    pages = _keyset_pages(TEST_DAY)
    before = trained_colleagues(RuleSettings(paging=3.0))
    assert before.process(normal_day(TEST_DAY) + pages[:6]) == []
    saved = {key: orjson.loads(orjson.dumps(state.to_dict())) for key, state in before.states.items()}
    assert saved["E001"]["last_page"][1] != 0
    after = trained_colleagues(RuleSettings(paging=3.0))
    after.restore({key: EmployeeState.from_dict(data) for key, data in saved.items()})
    assert [a["detector"] for a in _alerts(after, pages[6:])] == [PAGING]
