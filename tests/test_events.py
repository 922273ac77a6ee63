"""Every kind of bad input becomes a Rejection with a reason that names the problem."""

from __future__ import annotations

import pytest

from detector.events import MAX_EVENT_BYTES, AccessEvent, Rejection, decode_checking_each_field, decode_event, format_ts

GOOD = b'{"ts":"2026-09-02T21:30:13.796+08:00","db_user":"alice","action":"select","rows":3,"extra":1}'


def test_valid_event_is_decoded_and_unknown_fields_ignored():
    event = decode_event(GOOD)
    assert isinstance(event, AccessEvent)
    assert event.action == "SELECT" and event.rows == 3 and event.success is True
    assert format_ts(event.ts_ms) == "2026-09-02T13:30:13.796Z"


def test_epoch_milliseconds_are_accepted():
    event = decode_event(b'{"ts":1788355813796,"db_user":"a","action":"LOGIN"}')
    assert isinstance(event, AccessEvent) and event.ts_ms == 1788355813796


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe{}", "not valid UTF-8"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON list, not an object"),
        (b'{"db_user":"a","action":"SELECT"}', "'ts' is missing"),
        (b'{"ts":"2026-09-02T21:30:13+08:00","action":"SELECT"}', "'db_user' is missing"),
        (b'{"ts":"2026-09-02T21:30:13+08:00","db_user":"a"}', "'action' is missing"),
        (b'{"ts":"2026-09-02T21:30:13+08:00","db_user":"a","action":"STEAL"}', "unknown value 'STEAL'"),
        (b'{"ts":"yesterday","db_user":"a","action":"SELECT"}', "not an RFC 3339 timestamp"),
        (b'{"ts":"2026-09-02T21:30:13","db_user":"a","action":"SELECT"}', "no UTC offset"),
        (b'{"ts":"2026-09-02T21:30:13Z","db_user":"a","action":"SELECT","rows":-1}', "'rows' must be >= 0"),
        (b'{"ts":"2026-09-02T21:30:13Z","db_user":"a","action":"SELECT","rows":"12"}', "'rows' must be an integer"),
        (b'{"ts":"2026-09-02T21:30:13Z","db_user":"a","action":"SELECT","rows":true}', "'rows' must be an integer"),
        (b'{"ts":"2026-09-02T21:30:13Z","db_user":"a","action":"SELECT","objects":"t"}', "'objects' must be an array"),
        (b'{"ts":"2026-09-02T21:30:13Z","db_user":"a","action":"SELECT","success":"yes"}', "'success' must be a boolean"),
        (b'{"ts":"2026-09-02T21:30:13Z","db_user":7,"action":"SELECT"}', "'db_user' must be a non-empty string"),
    ],
)
def test_bad_events_are_rejected_with_a_reason_naming_the_problem(raw: bytes, reason: str):
    result = decode_event(raw)
    assert isinstance(result, Rejection)
    assert reason in result.reason
    assert result.raw == raw


def test_event_larger_than_one_mebibyte_is_rejected():
    raw = GOOD[:-1] + b',"statement":"' + b"x" * MAX_EVENT_BYTES + b'"}'
    result = decode_event(raw)
    assert isinstance(result, Rejection) and "1 MiB" in result.reason


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"action": "STEAL", "db_user": 7}, "unknown value 'STEAL'"),
        ({"db_user": "", "client_addr": 1}, "'db_user' must be a non-empty string"),
        ({"client_addr": 1, "rows": -1}, "'client_addr' must be a string"),
        ({"source": [], "success": "yes"}, "'source' must be a string, got list"),
        ({"bytes": -2, "success": "yes"}, "'bytes' must be >= 0, got -2"),
        ({"success": 1, "ts": "yesterday"}, "'success' must be a boolean, got int"),
        ({"ts": "yesterday", "objects": "t"}, "not an RFC 3339 timestamp"),
        ({"objects": ["a", 1], "columns": "c"}, "'objects' must be an array"),
    ],
)
def test_the_first_broken_field_in_contract_order_is_named(fields: dict, reason: str):
    import orjson

    record = {"ts": "2026-09-02T21:30:13.796+08:00", "db_user": "alice", "action": "select"} | fields
    result = decode_event(orjson.dumps(record))
    assert isinstance(result, Rejection) and reason in result.reason


def test_timestamps_in_a_cached_minute_are_still_validated():
    first = decode_event(b'{"ts":"2026-09-02T21:30:13.796+08:00","db_user":"a","action":"LOGIN"}')
    later = decode_event(b'{"ts":"2026-09-02T21:30:59.001+08:00","db_user":"a","action":"LOGIN"}')
    assert isinstance(first, AccessEvent) and isinstance(later, AccessEvent)
    assert later.ts_ms - first.ts_ms == 45_205
    for bad in (b"21:30:60.000", b"21:30:1x.000", b"21:30:1 .000"):
        result = decode_event(b'{"ts":"2026-09-02T' + bad + b'+08:00","db_user":"a","action":"LOGIN"}')
        assert isinstance(result, Rejection) and "not an RFC 3339 timestamp" in result.reason


_BASE = '"ts":"2026-09-02T21:30:13.796+08:00","db_user":"alice","action":"SELECT"'


@pytest.mark.parametrize("raw", [
    GOOD,
    b'{"ts":1788355813796,"db_user":"a","action":"login","success":null,"objects":[],"columns":null}',
    ('{' + _BASE + ',"objects":["crm.public.customers"],"columns":["name","phone"],"rows":0,"bytes":9,'
     '"employee_id":"","client_addr":"10.0.0.5","application":"psql","database":"crm","statement":"SELECT 1",'
     '"success":false,"session_id":"s","source":"pgaudit","ts_ms":"ignored"}').encode(),
    ('{' + _BASE + ',"rows":5,"rows":-1}').encode(),                        # a repeated key: the last counts
    ('{' + _BASE + ',"rows":100000000000000000000000}').encode(),           # beyond 64 bits: a float to orjson
    ('{' + _BASE + ',"rows":9223372036854775807}').encode(),
    b'{"ts":100000000000000000000000,"db_user":"a","action":"LOGIN"}',
    ('{' + _BASE + ',"rows":true}').encode(),
    ('{' + _BASE + ',"rows":5.0}').encode(),
    ('{' + _BASE + ',"success":1}').encode(),
    b'{"ts":1.5,"db_user":"a","action":"LOGIN"}',
    b'{"ts":"2026-09-02T21:30:13","db_user":"a","action":"LOGIN"}',
    b'{"ts":"1","db_user":"a","action":"LOGIN"}',
    b'{"ts":1,"db_user":"","action":"LOGIN"}',
    b'{"ts":1,"db_user":"a","action":" select"}',
    b'{"ts":1,"db_user":"a","action":7}',
    b'{"ts":1,"db_user":"a\\ud800","action":"LOGIN"}',
    b'\xef\xbb\xbf{"ts":1,"db_user":"a","action":"LOGIN"}',
    b'{"ts":1,"db_user":"a","action":"LOGIN"} trailing',
    b'{"ts":1,"db_user":"a","action":"LOGIN","objects":["a",1]}',
    b'{"ts":1,"db_user":"a","action":"LOGIN","objects":"a"}',
    b'null',
])
def test_the_fast_and_the_checking_path_decode_alike(raw: bytes):
    """msgspec's typed decode must accept exactly what the field-by-field checks accept."""
    assert decode_event(raw) == decode_checking_each_field(raw)
