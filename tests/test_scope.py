"""A person's usual scope (`detector.scope`) and the `reads_outside_usual_scope` rule: slow theft dressed
as ordinary work reads other cities' customers, which a busy day does not."""

from __future__ import annotations

import json

from detector import counters as C
from detector.rules import OUT_OF_SCOPE, RuleSettings
from detector.scope import MIN_DAYS, ScopeMemory
from detector.sql import fingerprint, fingerprint_id
from tests.factories import TEST_DAY, at, event, normal_day, trained_colleagues

OTHER_CITIES = ("Shenzhen", "Chengdu", "Wuhan", "Xiamen", "Nanjing", "Tianjin", "Harbin", "Kunming", "Jinan", "Hefei")


def _by_city(city: str, day: int = 1) -> str:
    return (f"SELECT name, phone, address FROM customers WHERE city = '{city}' AND created_at >= '2026-09-{day:02d}' "
            "ORDER BY id LIMIT 100")


def _judge(memory: ScopeMemory, statement: str, day: int) -> bool:
    text, literals = fingerprint(statement)
    return memory.judge_and_learn(fingerprint_id(text), literals, day)


def _learnt(days: int = 10, cities: tuple[str, ...] = ("Xuhui", "Minhang")) -> ScopeMemory:
    """Ten days of lists of the person's own districts, each query with that day's date."""
    memory = ScopeMemory()
    for day in range(1, days + 1):
        for k in range(12):
            _judge(memory, _by_city(cities[k % len(cities)], day), day)
    return memory


def test_a_city_outside_the_usual_ones_is_out_of_scope_and_the_own_cities_are_not():
    memory = _learnt()
    assert not _judge(memory, _by_city("Xuhui", 11), 11)          # today's date is new every day: not a scope
    assert _judge(memory, _by_city("Shenzhen", 11), 11)
    assert not _judge(memory, _by_city("Minhang", 11), 11)


def test_nothing_is_judged_before_the_shape_has_days_of_history():
    memory = _learnt(days=MIN_DAYS)
    assert not _judge(memory, _by_city("Shenzhen", MIN_DAYS), MIN_DAYS)


def test_positions_whose_values_change_all_the_time_are_no_scope():
    memory = ScopeMemory()
    for day in range(1, 11):
        for k in range(12):
            _judge(memory, f"SELECT name FROM customers WHERE phone = '1380000{day:02d}{k:02d}'", day)
    assert not _judge(memory, "SELECT name FROM customers WHERE phone = '13999999999'", 11)
    (shape,) = memory.shapes.values()
    assert shape.positions == [None]          # dropped: no dictionary update per statement any more


def test_a_new_city_used_day_after_day_becomes_usual():
    memory = _learnt()
    judged = []
    for day in range(11, 16):
        judged.append(_judge(memory, _by_city("Pudong", day), day))
        for k in range(11):
            _judge(memory, _by_city(("Xuhui", "Pudong")[k % 2], day), day)
    assert judged[0] and not judged[-1]


def test_the_state_keeps_checksums_of_values_never_the_values_and_judges_the_same_after_a_save():
    memory = _learnt(cities=("Xuhui-district",))
    saved = json.dumps(memory.to_dict())
    assert "Xuhui" not in saved and "2026-09" not in saved
    restored = ScopeMemory.from_dict(json.loads(saved))
    assert _judge(restored, _by_city("Shenzhen", 11), 11)
    assert not _judge(restored, _by_city("Xuhui-district", 11), 11)


# -- the rule, in the pipeline ----------------------------------------------

def _own_district_lists(day: int, user: str, count: int = 10, cities: tuple[str, ...] = ("Xuhui",)) -> list:
    return [event(at(day, 10 + k % 6, 5 * k % 60), user, _by_city(cities[k % len(cities)], day), rows=100)
            for k in range(count)]


def _alerts(rules: RuleSettings, test_day_events: list) -> list[dict]:
    pipeline = trained_colleagues(rules, extra=_own_district_lists)
    events = normal_day(TEST_DAY) + test_day_events
    return pipeline.process(sorted(events, key=lambda e: e.ts_ms)) + pipeline.finish()


def test_lists_of_other_cities_on_top_of_the_usual_work_alert_without_a_literal():
    harvest = _own_district_lists(TEST_DAY, "zhang_wei", 10, OTHER_CITIES)
    alerts = _alerts(RuleSettings(), _own_district_lists(TEST_DAY, "zhang_wei") + harvest)
    assert [a["detector"] for a in alerts] == [OUT_OF_SCOPE]
    alert = alerts[0]
    assert alert["employee_id"] == "E001" and alert["severity"] == "medium"
    reason = alert["reasons"][0]
    assert reason["feature"] == "out_of_scope:out_of_scope_rows:day" and reason["value"] >= 500
    assert "outside the usual scope" in reason["detail"]
    assert not any(city in json.dumps(alert) for city in OTHER_CITIES + ("Xuhui",))


def test_a_day_twice_as_busy_within_the_usual_scope_does_not_fire_it():
    alerts = _alerts(RuleSettings(), _own_district_lists(TEST_DAY, "zhang_wei", 20))
    assert OUT_OF_SCOPE not in [a["detector"] for a in alerts]


def test_excursions_on_a_busy_day_and_the_rule_turned_off_do_not_fire_it():
    busy = _own_district_lists(TEST_DAY, "zhang_wei", 30)
    excursions = _own_district_lists(TEST_DAY, "zhang_wei", 6, OTHER_CITIES)   # 600 of 3,640 rows today
    assert OUT_OF_SCOPE not in [a["detector"] for a in _alerts(RuleSettings(), busy + excursions)]
    harvest = _own_district_lists(TEST_DAY, "zhang_wei", 10, OTHER_CITIES)
    assert _alerts(RuleSettings(out_of_scope_share=0), _own_district_lists(TEST_DAY, "zhang_wei") + harvest) == []


def test_rows_outside_the_usual_scope_are_counted_as_a_behaviour_counter():
    pipeline = trained_colleagues(RuleSettings(), extra=_own_district_lists)
    pipeline.process(_own_district_lists(TEST_DAY, "zhang_wei", 3, OTHER_CITIES), score=False)
    assert pipeline.states["E001"].day_counts[C.OUT_OF_SCOPE_ROWS] == 300
