"""MariaDB server_audit joined with the slow query log, on the real MariaDB 10.11 captures."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from detector.events import AccessEvent, decode_event, event_from_mapping
from streams.sources.mariadb import MariadbAuditAdapter, MariadbSettings

SAMPLES = Path(__file__).parent / "data" / "samples"


def lines_of(path: Path | str, text: str | None = None) -> list[tuple[str, int, int]]:
    data = text.encode() if text is not None else Path(path).read_bytes()
    out, offset = [], 0
    for raw in data.splitlines(keepends=True):
        out.append((raw.decode().rstrip("\r\n"), offset, len(raw)))
        offset += len(raw)
    return out


AUDIT = lines_of(SAMPLES / "mariadb_server_audit.log")
SLOW = lines_of(SAMPLES / "mariadb_slow.log")


def interleaved(audit, slow, chunk: int = 7) -> list[tuple[tuple, str]]:
    """The order the shipper feeds two growing files: a chunk of each in turn."""
    order, i, j = [], 0, 0
    while i < len(audit) or j < len(slow):
        order += [(line, "main") for line in audit[i:i + chunk]]
        order += [(line, "slow") for line in slow[j:j + chunk]]
        i, j = i + chunk, j + chunk
    return order


def ship(order, **settings) -> tuple[list[dict], list]:
    a = MariadbAuditAdapter(MariadbSettings(**settings))
    events, bad = [], []
    for line, name in order:
        batch = a.feed(*line, input=name)
        events += batch.events
        bad += batch.bad
    batch = a.flush()
    return events + batch.events, bad + batch.bad


def sample(chunk: int = 7) -> list[dict]:
    events, bad = ship(interleaved(AUDIT, SLOW, chunk))
    assert bad == []
    return events


def second_run(events: list[dict]) -> list[dict]:
    """The workload ran twice; the slow log covers the second run and the tail."""
    return [e for e in events if e["ts"] >= "2026-11-28T15:11:22"]


def test_rows_come_from_the_slow_log():
    events = second_run(sample())
    rows = {(e["db_user"], e["statement"]): e["rows"] for e in events if e.get("statement")}
    assert rows[("alice", "SELECT * FROM customers")] == 200
    assert rows[("alice", "SELECT name, phone, id_card_no FROM customers WHERE id = 7")] == 1
    assert [rows[("alice", f"SELECT * FROM customers ORDER BY id LIMIT 50 OFFSET {o}")] for o in (0, 50, 100, 150)] \
        == [50, 50, 50, 50]
    assert rows[("app_billing", "SELECT * FROM customers ORDER BY id")] == 200          # streamed by the client
    updates = [(e["session_id"], e["rows"]) for e in sample() if e["action"] == "UPDATE" and e["db_user"] == "app_billing"]
    assert updates == [("5", 1), ("12", 0)]      # the second run changed nothing: MariaDB counts changed rows


def test_the_same_events_whatever_the_order_the_two_files_are_read_in():
    assert sample(3) == sample(7) == sample(50)
    audit_first = ship([(line, "main") for line in AUDIT] + [(line, "slow") for line in SLOW])[0]
    slow_first = ship([(line, "slow") for line in SLOW] + [(line, "main") for line in AUDIT])[0]
    assert audit_first == slow_first == sample()


def test_outfile_export_is_an_export_with_its_rows_and_the_refused_one_failed():
    events = second_run(sample())
    exports = [(e["db_user"], e["rows"], e["success"]) for e in events if e["action"] == "EXPORT"]
    assert exports == [("app_billing", 0, False), ("alice", 200, True)]


def test_tables_of_the_statement_are_its_objects():
    [bulk] = [e for e in second_run(sample()) if e.get("statement") == "SELECT * FROM customers"]
    assert bulk["objects"] == ["crm.customers"] and bulk["database"] == "crm" and bulk["client_addr"] == "127.0.0.1"
    assert bulk["session_id"] == "13" and bulk["source"] == "mariadb_audit"


def test_failed_statements_and_failed_logins():
    events = second_run(sample())
    failed = [(e["action"], e.get("statement")) for e in events if not e["success"] and e["db_user"] == "alice"]
    assert failed == [("SELECT", "SELECT * FROM payroll"), ("UPDATE", "UPDATE customers SET phone = 'x' WHERE id = 1"),
                      ("SELECT", "SELECT * FROM customerz")]
    logins = [(e["db_user"], e["action"]) for e in sample() if e["action"].startswith("LOGIN_")]
    assert logins == [("alice", "LOGIN_FAILED"), ("mallory", "LOGIN_FAILED")]


def test_multi_line_query_in_both_logs_is_joined():
    [event] = [e for e in sample() if (e.get("statement") or "").startswith("SELECT id,\n  name")]
    assert event["statement"] == "SELECT id,\n  name\nFROM crm.customers\nWHERE id = 3"
    assert event["rows"] == 1 and event["objects"] == ["crm.customers"]


def test_a_password_masked_by_server_audit_never_joins_and_the_slow_logs_copy_is_never_shipped():
    events = sample()
    [create] = [e for e in events if (e.get("statement") or "").startswith("CREATE USER 'bob'")]
    assert create["statement"].endswith("IDENTIFIED BY *****") and create["rows"] is None
    assert b"bob-secret" not in orjson.dumps(events)


def test_an_audit_record_without_a_slow_log_partner_is_emitted_with_unknown_rows_after_the_join_window():
    audit = lines_of("a", "20261128 10:00:00,db,alice,10.0.0.5,9,100,QUERY,crm,'SELECT * FROM customers',0\n"
                          "20261128 10:00:03,db,bob,10.0.0.6,10,101,QUERY,crm,'SELECT 1',0\n"
                          "20261128 10:00:06,db,bob,10.0.0.6,10,102,QUERY,crm,'SELECT 2',0\n")
    a = MariadbAuditAdapter(MariadbSettings(join_window_s=5))
    a.caught_up("slow")                       # the slow log has nothing to say
    assert a.feed(*audit[0]).events == [] and a.feed(*audit[1]).events == []
    [late] = a.feed(*audit[2]).events         # 6 s of input time later: the window has passed
    assert late["db_user"] == "alice" and late["rows"] is None and late["statement"] == "SELECT * FROM customers"
    assert [e["statement"] for e in a.flush().events] == ["SELECT 1", "SELECT 2"]


def test_the_join_waits_for_a_slow_log_that_is_read_later():
    audit = lines_of("a", "20261128 10:00:00,db,alice,10.0.0.5,9,100,QUERY,crm,'SELECT * FROM customers',0\n")
    slow = lines_of("s", "# Time: 261128 10:00:00\n# User@Host: alice[alice] @  [10.0.0.5]\n"
                         "# Thread_id: 9  Schema: crm  QC_hit: No\n"
                         "# Query_time: 0.1  Lock_time: 0.0  Rows_sent: 5000  Rows_examined: 5000\n"
                         "# Rows_affected: 0  Bytes_sent: 99\nSET timestamp=1795860000;\nSELECT * FROM customers;\n"
                         "# User@Host: alice[alice] @  [10.0.0.5]\n")
    a = MariadbAuditAdapter()
    assert a.feed(*audit[0]).events == []
    a.caught_up("main")
    events = [e for line in slow for e in a.feed(*line, input="slow").events]
    assert [e["rows"] for e in events] == [5000]


def test_a_schema_switch_written_before_the_slow_log_timestamp_is_not_part_of_the_query():
    audit = lines_of("a", "20261128 10:00:00,db,alice,10.0.0.5,9,100,QUERY,crm,'SELECT * FROM customers',0\n")
    slow = lines_of("s", "# User@Host: alice[alice] @  [10.0.0.5]\n# Thread_id: 9  Schema: crm  QC_hit: No\n"
                         "# Query_time: 0.1  Lock_time: 0.0  Rows_sent: 7  Rows_examined: 7\n"
                         "# Rows_affected: 0  Bytes_sent: 99\nuse `crm`;\nSET last_insert_id=5,insert_id=6;\n"
                         "SET timestamp=1795860000;\nSELECT * FROM customers;\n")
    events, bad = ship([(line, "main") for line in audit] + [(line, "slow") for line in slow])
    assert bad == [] and [e["rows"] for e in events] == [7]


def test_slow_log_entries_without_an_audit_record_are_never_events():
    slow_only = ship([(line, "slow") for line in SLOW])[0]
    assert slow_only == []


def test_identity_from_a_session_variable_the_application_set():
    audit = lines_of("a", "20261128 10:00:00,db,app_portal,10.0.0.5,9,100,QUERY,crm,'SET @end_user = \\'clerk_li\\'',0\n"
                          "20261128 10:00:01,db,app_portal,10.0.0.5,9,101,READ,crm,customers,\n"
                          "20261128 10:00:01,db,app_portal,10.0.0.5,9,101,QUERY,crm,'SELECT name FROM customers',0\n"
                          "20261128 10:00:02,db,app_portal,10.0.0.5,9,0,DISCONNECT,crm,,0\n")
    events, _ = ship([(line, "main") for line in audit], identity_pattern=r"@end_user = '(?P<employee>[^']+)'")
    assert [e.get("employee_id") for e in events] == ["clerk_li", "clerk_li"]
    assert events[1]["objects"] == ["crm.customers"]


@pytest.mark.parametrize("chunk", [3, 11])
def test_a_restart_from_the_safe_offsets_neither_loses_nor_repeats_an_event(chunk):
    order = interleaved(AUDIT, SLOW, chunk)
    everything = [(e["ts"], e["action"], e.get("statement")) for e in sample(chunk)]
    for cut in [*range(0, len(order), 4), len(order) - 1, len(order)]:
        first = MariadbAuditAdapter()
        before = [e for line, name in order[:cut] for e in first.feed(*line, input=name).events]
        main, slow = first.safe_offset("main"), first.safe_offset("slow")
        second = MariadbAuditAdapter()
        second.start_at("main", main)
        second.start_at("slow", slow)
        rest = interleaved([l for l in AUDIT if l[1] >= main], [l for l in SLOW if l[1] >= slow], chunk)
        after = [e for line, name in rest for e in second.feed(*line, input=name).events] + second.flush().events
        assert [(e["ts"], e["action"], e.get("statement")) for e in before + after] == everything, f"cut {cut}"


def test_every_event_passes_the_projects_own_decoder():
    for event in sample():
        assert isinstance(decode_event(orjson.dumps(event)), AccessEvent)
        event_from_mapping(event)


def test_transaction_control_is_not_an_event():
    assert not any(e.get("statement") in ("COMMIT", "BEGIN") for e in sample())


def test_a_line_that_is_not_an_audit_record_is_a_bad_record_and_reading_goes_on():
    audit = lines_of("a", "garbage with a card 4111111111111111\n"
                          "20261128 10:00:00,db,alice,10.0.0.5,9,100,QUERY,crm,'SELECT 1',0\n")
    events, bad = ship([(line, "main") for line in audit])
    assert len(events) == 1 and len(bad) == 1
    assert "4111" not in bad[0].reason and "4111" in bad[0].raw


def test_audit_times_are_read_in_the_servers_zone():
    audit = lines_of("a", "20261128 23:00:00,db,alice,10.0.0.5,9,100,QUERY,crm,'SELECT 1',0\n")
    [event], _ = ship([(line, "main") for line in audit], log_timezone="Asia/Shanghai")
    assert event["ts"] == "2026-11-28T23:00:00.000+08:00"
