"""The detection pipeline: state, features, rules and alerts on small hand-made days."""

from __future__ import annotations

import numpy as np

from detector import counters as C
from detector.alerts import AlertBook, Reason, Trigger
from detector.features import FEATURE_NAMES, N_FEATURES
from detector.pipeline import DetectionPipeline, Scoring
from detector.rules import BULK_READ, SENSITIVE_EXPORT, RuleSettings
from detector.training import _flat_peers, peer_baselines
from tests.factories import at, event, lookup, normal_day, reference_data


def _pipeline(**kwargs) -> DetectionPipeline:
    return DetectionPipeline(reference_data(), Scoring(peers=_flat_peers()), **kwargs)


def _run(pipeline: DetectionPipeline, events) -> list[dict]:
    return pipeline.process(list(events)) + pipeline.finish()


def test_point_lookups_count_personal_rows_per_category():
    pipeline = _pipeline()
    _run(pipeline, normal_day(1, lookups=10))
    day = pipeline.states["E001"].day_counts
    assert day[C.STATEMENTS] == 10
    assert day[C.SENSITIVE_ROWS] == 10
    assert day[C.CATEGORY_ROWS["phone"]] == 10 and day[C.CATEGORY_ROWS["name"]] == 10
    assert day[C.CATEGORY_ROWS["national_id"]] == 0
    assert day[C.POINT_LOOKUPS] == 10
    assert day[C.SEQUENTIAL_LOOKUPS] == 0


def test_sequential_keys_are_counted_as_enumeration():
    pipeline = _pipeline()
    _run(pipeline, [lookup(at(1, 10, 0, s), 5000 + s) for s in range(30)])
    assert pipeline.states["E001"].day_counts[C.SEQUENTIAL_LOOKUPS] == 29


def test_offset_pages_and_unbounded_reads_are_counted():
    pipeline = _pipeline()
    pages = [event(at(1, 11, i), statement=f"SELECT * FROM customers ORDER BY id LIMIT 500 OFFSET {i * 500}", rows=500)
             for i in range(5)]
    dump = event(at(1, 12), statement="SELECT name, phone FROM customers", rows=800)
    _run(pipeline, pages + [dump])
    day = pipeline.states["E001"].day_counts
    assert day[C.OFFSET_PAGES] == 4          # the first page has OFFSET 0
    assert day[C.UNBOUNDED] == 1
    assert day[C.CATEGORY_ROWS["financial"]] == 2500   # SELECT * reads bank_card


def test_account_without_employee_id_resolves_through_the_directory():
    pipeline = _pipeline()
    _run(pipeline, [lookup(at(1, 10), 1, db_user="chen_jie_rpt")])
    assert "E004" in pipeline.states
    assert pipeline.stats.unresolved_events == 0


def test_unknown_account_is_tracked_and_reported_not_dropped():
    pipeline = _pipeline()
    _run(pipeline, [lookup(at(1, 10), 1, db_user="ghost")])
    assert "account:ghost" in pipeline.states
    assert pipeline.stats.unresolved_accounts == {"ghost"}


def test_off_hours_and_new_sources_need_history_to_count_as_new():
    pipeline = _pipeline()
    days = [e for d in range(1, 9) if d not in (5, 6) for e in normal_day(d)]
    night = [lookup(at(9, 23, m), 7000 + m * 13, client_addr="203.0.113.9") for m in range(5)]
    _run(pipeline, days + night)
    state = pipeline.states["E001"]
    assert state.has_history
    assert state.day_counts[C.OFF_HOURS] == 5
    assert state.day_counts[C.NEW_SOURCES] == 1
    assert state.day_counts[C.NEW_SOURCE_ROWS] == 5


def test_bulk_read_rule_fires_once_per_incident_and_names_relation_and_rows():
    pipeline = _pipeline()
    bulk = [event(at(1, 14, i), statement="SELECT name, id_card_no FROM customers WHERE city = 'Shanghai'", rows=48210)
            for i in range(3)]
    alerts = _run(pipeline, bulk)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert["detector"] == BULK_READ and alert["employee_id"] == "E001"
    assert "48,210 rows of crm.public.customers" in alert["reasons"][0]["detail"]
    assert alert["severity"] == "high"
    assert "Shanghai" not in str(alert)


def test_rule_escalation_reuses_the_alert_id():
    pipeline = _pipeline(rules=RuleSettings(bulk_read_rows=5000, bulk_read_critical_rows=50000))
    first = _run(pipeline, [event(at(1, 14), statement="SELECT name FROM customers WHERE a = 1", rows=6000)])
    second = pipeline.process([event(at(1, 15), statement="SELECT name FROM customers WHERE a = 2", rows=90000)])
    assert len(first) == 1 and len(second) == 1
    assert second[0]["alert_id"] == first[0]["alert_id"]
    assert second[0]["severity"] == "critical" and second[0]["revision"] == 1
    assert second[0]["detected_at"] == "2026-09-01T07:00:00.000Z"          # the revision's own trigger
    assert second[0]["first_detected_at"] == first[0]["detected_at"] == "2026-09-01T06:00:00.000Z"


def test_an_incident_idle_for_two_gaps_is_forgotten_and_its_checkpoint_row_closed():
    pipeline = _pipeline()
    bulk = lambda day: event(at(day, 14), statement="SELECT name, id_card_no FROM customers WHERE a = 1", rows=48210)
    first = _run(pipeline, [bulk(1)])
    pipeline.drain_changes()
    pipeline.process([lookup(at(2, 13), 1, db_user="chen_jie_rpt")])      # 23 h later, on the same stream
    assert "E001" in pipeline.alert_book.open
    pipeline.process([lookup(at(2, 15), 2, db_user="chen_jie_rpt")])      # 25 h later: twice the 12 h gap
    assert "E001" not in pipeline.alert_book.open
    assert ("E001", None) in pipeline.drain_changes()[1]
    again = pipeline.process([bulk(3)])
    assert len(again) == 1 and again[0]["alert_id"] != first[0]["alert_id"] and again[0]["revision"] == 0


def test_idle_incidents_are_forgotten_on_their_own_streams_clock():
    pipeline = _pipeline()
    pipeline.process([event(at(1, 14), statement="SELECT name, id_card_no FROM customers WHERE a = 1", rows=48210)],
                     stream=0)
    pipeline.process([lookup(at(4, 10), 1, db_user="chen_jie_rpt")], stream=1)   # another partition runs ahead
    assert "E001" in pipeline.alert_book.open


def test_copy_export_of_sensitive_table_is_flagged_even_when_rows_unknown():
    pipeline = _pipeline()
    copy = event(at(1, 16), statement="COPY public.customers (id, name, phone, id_card_no) TO stdout;", rows=None,
                 action="COPY", application="pg_dump")
    alerts = _run(pipeline, [copy])
    assert [a["detector"] for a in alerts] == [SENSITIVE_EXPORT]
    assert "unknown number of rows" in alerts[0]["reasons"][0]["detail"]
    assert pipeline.states["E001"].day_counts[C.UNKNOWN_ROWS] == 1


def test_service_accounts_are_exempt_from_rules():
    pipeline = _pipeline()
    alerts = _run(pipeline, [event(at(1, 2), "svc_billing", "SELECT * FROM customers", rows=900000)])
    assert alerts == []


def test_snapshots_do_not_depend_on_batch_boundaries():
    events = [e for d in (1, 2) for e in normal_day(d, lookups=30)] + [lookup(at(2, 18, s), 9000 + s) for s in range(20)]
    whole, split = _pipeline(collect_snapshots=True), _pipeline(collect_snapshots=True)
    _run(whole, events)
    for i in range(0, len(events), 7):
        split.process(events[i:i + 7])
    split.finish()
    assert np.array_equal(np.vstack(whole.collected_rows), np.vstack(split.collected_rows))
    assert whole.collected_days == split.collected_days


def test_features_are_zero_within_usual_range_and_grow_with_excess():
    pipeline = _pipeline(collect_snapshots=True)
    history = [e for d in range(1, 15) if d not in (5, 6, 12, 13) for e in normal_day(d)]
    _run(pipeline, history)
    peers = peer_baselines(pipeline.states, pipeline.refs.directory)
    scored = DetectionPipeline(pipeline.refs, Scoring(peers=peers), collect_snapshots=True)
    scored.states.update(pipeline.states)
    _run(scored, normal_day(15) + [lookup(at(15, 18, s // 60, s % 60), 20000 + s) for s in range(300)])
    rows = np.vstack(scored.collected_rows)
    assert rows.shape[1] == N_FEATURES
    seq = FEATURE_NAMES.index("sequential_lookups")
    assert rows[0, seq] == 0.0
    assert rows[-1, seq] > 5.0          # ~300 sequential lookups vs a usual 0: log(300)/log(2) spreads


def test_an_event_that_breaks_the_pipeline_is_reported_and_the_rest_processed(monkeypatch):
    pipeline = _pipeline()
    events = normal_day(1, lookups=5)
    original = pipeline.profiler.profile

    def flaky(event):
        if event is events[2]:
            raise RuntimeError("boom")
        return original(event)

    monkeypatch.setattr(pipeline.profiler, "profile", flaky)
    _run(pipeline, events)
    assert [index for index, _ in pipeline.failures] == [2]
    assert "RuntimeError" in pipeline.failures[0][1]
    assert pipeline.states["E001"].day_counts[C.STATEMENTS] == 4


def test_hours_a_person_rarely_works_are_counted_once_history_exists():
    pipeline = _pipeline()
    days = [e for d in range(1, 11) if d not in (5, 6) for e in normal_day(d)]
    _run(pipeline, days + [lookup(at(11, 3, m), 9100 + m * 17) for m in range(4)] + normal_day(11)[:3])
    day = pipeline.states["E001"].day_counts
    assert day[C.RARE_HOUR] == 4
    assert day[C.STATEMENTS] == 7


def _trigger(ts_ms: int, feature: str, severity: str = "critical") -> Trigger:
    return Trigger("E001", "E001", ["zhang_wei"], "model", ts_ms, ts_ms, ts_ms, 0.9, severity,
                   [Reason(feature, 10, 1, "why")], {})


def test_a_new_behaviour_during_an_open_incident_is_re_emitted_and_a_repeat_is_not():
    book = AlertBook("v1")
    opened = book.submit(_trigger(0, "sensitive_rows_vs_own:sensitive_rows:hour"))
    assert book.submit(_trigger(60_000, "category_rows_vs_own:phone_rows:day")) is None      # more of the same
    walk = book.submit(_trigger(120_000, "sequential_lookups:sequential_key_lookups:hour"))  # enumeration starts
    assert walk is not None and walk["alert_id"] == opened["alert_id"] and walk["revision"] == 1
    assert {r["feature"].split(":")[1] for r in walk["reasons"]} >= {"sequential_key_lookups", "sensitive_rows"}
    assert book.submit(_trigger(180_000, "sequential_lookups:sequential_key_lookups:day")) is None


def _read(ts_ms: int, objects: list[tuple[str, int]]) -> Trigger:
    trigger = _trigger(ts_ms, "sensitive_rows_vs_own:sensitive_rows:day")
    trigger.evidence = {"objects": [{"relation": r, "rows": n} for r, n in objects]}
    return trigger


def test_a_relation_the_alert_does_not_show_is_re_emitted_and_more_of_a_shown_one_is_not():
    book = AlertBook("v1")
    opened = book.submit(_read(0, [("crm.public.customers", 1945)]))
    assert book.submit(_read(60_000, [("crm.public.customers", 9000)])) is None          # more of the same table
    assert book.submit(_read(120_000, [("crm.public.customers", 9000), ("logistics.waybills", 499)])) is None
    second_pull = book.submit(_read(180_000, [("crm.public.customers", 9000), ("logistics.waybills", 937)]))
    assert second_pull is not None and second_pull["alert_id"] == opened["alert_id"] and second_pull["revision"] == 1
    assert second_pull["detected_at"] == "1970-01-01T00:03:00.000Z"
    assert {o["relation"] for o in second_pull["evidence"]["objects"]} == {"crm.public.customers", "logistics.waybills"}
    assert book.submit(_read(240_000, [("crm.public.customers", 9000), ("logistics.waybills", 5000)])) is None
