"""pgaudit adapter on the real PostgreSQL 15 + pgaudit 1.7 captures (tests/data/samples, copied
from shared/samples): stderr, csvlog and jsonlog of the same workload, and a pg_dump run."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from detector.events import AccessEvent, decode_event, event_from_mapping
from streams.sources.pgaudit import PgauditAdapter, PgauditSettings, compile_prefix, inline_parameters

SAMPLES = Path(__file__).parent / "data" / "samples"
PREFIX = "%m [%p] user=%u db=%d app=%a client=%h session=%c line=%l vxid=%v txid=%x tag=%i: "
FILES = {"stderr": "pg15_pgaudit_stderr.log", "csv": "pg15_pgaudit_csvlog.csv", "json": "pg15_pgaudit_jsonlog.json"}


def lines_of(path: Path) -> list[tuple[str, int, int]]:
    out, offset = [], 0
    for raw in path.read_bytes().splitlines(keepends=True):
        out.append((raw.decode().rstrip("\r\n"), offset, len(raw)))
        offset += len(raw)
    return out


def adapter(destination: str = "stderr", **settings) -> PgauditAdapter:
    return PgauditAdapter(PgauditSettings(destination=destination, log_line_prefix=PREFIX, **settings))


def ship(destination: str, lines, **settings) -> tuple[list[dict], list]:
    a = adapter(destination, **settings)
    events, bad = [], []
    for line in lines:
        batch = a.feed(*line)
        events += batch.events
        bad += batch.bad
    batch = a.flush()
    return events + batch.events, bad + batch.bad


def sample(destination: str = "stderr", **settings) -> list[dict]:
    events, bad = ship(destination, lines_of(SAMPLES / FILES[destination]), **settings)
    assert bad == []
    return events


def by_statement(events: list[dict], text: str) -> list[dict]:
    return [e for e in events if e.get("statement") == text]


def synthetic(*messages: str, session: str = "6b0aeeba.19f4", app: str = "DBeaver", second: int = 46) -> list:
    """stderr lines in the sample's prefix, one per message (a message may hold tab continuations)."""
    text = "".join(f"2026-11-28 15:09:{second:02d}.0{i:02d} UTC [6644] user=alice db=crm app={app} client=127.0.0.1 "
                   f"session={session} line={i} vxid=3/9 txid=0 tag=SELECT: {m}\n" for i, m in enumerate(messages))
    out, offset = [], 0
    for raw in text.encode().splitlines(keepends=True):
        out.append((raw.decode().rstrip("\n"), offset, len(raw)))
        offset += len(raw)
    return out


def test_the_three_log_destinations_yield_the_same_events():
    stderr, csv, json = sample("stderr"), sample("csv"), sample("json")
    assert len(stderr) == 49
    assert stderr == csv == json


def test_bulk_read_of_customers_carries_the_row_count_pgaudit_logged():
    events = sample()
    [bulk] = by_statement(events, "SELECT * FROM customers;")
    assert bulk["rows"] == 200 and bulk["action"] == "SELECT" and bulk["db_user"] == "alice"
    assert bulk["objects"] == ["crm.public.customers"] and bulk["database"] == "crm"
    assert bulk["application"] == "DBeaver 23.2.0 - SQLEditor <Script-3.sql>" and bulk["client_addr"] == "127.0.0.1"
    pages = [e["rows"] for e in events if (e.get("statement") or "").startswith("SELECT * FROM customers ORDER BY id LIMIT")]
    assert pages == [50, 50, 50, 50]


def test_copy_to_stdout_is_a_copy_event_with_unknown_rows_never_zero():
    [copy] = by_statement(sample(), "COPY customers TO STDOUT WITH (FORMAT csv, HEADER);")
    assert copy["action"] == "COPY" and copy["rows"] is None


def test_pg_dump_copy_is_a_copy_event_with_unknown_rows_from_the_dump_tool():
    events, bad = ship("stderr", lines_of(SAMPLES / "pg15_pgaudit_pg_dump_stderr.log"))
    assert bad == []
    [dump] = [e for e in events if e["action"] == "COPY"]
    assert dump["rows"] is None and dump["application"] == "pg_dump" and dump["db_user"] == "alice"
    assert dump["statement"].startswith("COPY public.customers (id, name, phone, id_card_no, address, bank_card) TO stdout")
    assert not any(e.get("rows") == 0 and e["action"] in ("COPY", "OTHER") for e in events)


def test_copy_of_a_query_is_one_copy_event_carrying_the_query_rows():
    events = sample()
    copies = [e for e in events if (e.get("statement") or "").startswith("COPY  ( SELECT id, name, bank_card")]
    assert len(copies) == 1
    assert copies[0]["action"] == "COPY" and copies[0]["rows"] == 20 and copies[0]["objects"] == ["crm.public.customers"]


def test_cursor_reads_have_unknown_rows_never_zero():
    events = sample()
    declares = [e for e in events if (e.get("statement") or "").startswith("DECLARE")]
    fetches = [e for e in events if (e.get("statement") or "").startswith("FETCH")]
    assert len(declares) == 2 and len(fetches) == 7
    assert all(e["action"] == "SELECT" and e["rows"] is None for e in declares)
    assert all(e["rows"] is None for e in fetches)


def test_failed_statements_are_events_that_did_not_succeed():
    failed = [e for e in sample() if e["success"] is False and e["action"] not in ("LOGIN_FAILED",)]
    assert [(e["action"], e["statement"]) for e in failed] == [
        ("SELECT", "SELECT * FROM payroll;"),
        ("UPDATE", "UPDATE customers SET phone = 'x' WHERE id = 1;"),
        ("SELECT", "SELECT * FROM customerz;")]
    assert all(e["db_user"] == "alice" and e["rows"] is None for e in failed)


def test_failed_password_logins_are_login_failed_even_for_unknown_roles():
    failed = [e for e in sample() if e["action"] == "LOGIN_FAILED"]
    assert [(e["db_user"], e["client_addr"], e["success"]) for e in failed] == [
        ("alice", "127.0.0.1", False), ("mallory", "127.0.0.1", False)]


def test_successful_connections_are_login_events_with_the_application_name():
    logins = [e for e in sample() if e["action"] == "LOGIN"]
    assert ("app_billing", "billing-api") in {(e["db_user"], e.get("application")) for e in logins}
    assert sample(logins=False) == [e for e in sample() if e["action"] != "LOGIN"]


def test_multi_line_statement_keeps_its_line_breaks_in_every_destination():
    for destination in FILES:
        [create] = [e for e in sample(destination) if (e.get("statement") or "").startswith("CREATE TABLE customers")]
        assert create["statement"] == ("CREATE TABLE customers (\n  id          integer PRIMARY KEY,\n"
                                       "  name        text NOT NULL,\n  phone       text,\n  id_card_no  text,\n"
                                       "  address     text,\n  bank_card   text\n);")
        assert create["action"] == "DDL" and create["rows"] is None


def test_object_and_session_lines_of_one_statement_are_one_event():
    events = sample()
    for text in ("SELECT * FROM customers;", "SELECT name, phone, id_card_no FROM customers WHERE id = 7;",
                 "SELECT id, name, phone FROM customers WHERE id = '42'"):
        assert len(by_statement(events, text)) == 1, text


def test_a_joins_per_relation_lines_merge_their_relations_and_do_not_multiply_rows():
    text = '"SELECT c.name, o.total FROM customers c JOIN orders o ON o.customer_id = c.id"'
    events, _ = ship("stderr", synthetic(
        f"LOG:  AUDIT: OBJECT,3,1,READ,SELECT,TABLE,public.customers,{text},<none>,310",
        f"LOG:  AUDIT: SESSION,3,1,READ,SELECT,TABLE,public.customers,{text},<none>,310",
        f"LOG:  AUDIT: SESSION,3,1,READ,SELECT,TABLE,public.orders,{text},<none>,310"))
    [join] = events
    assert join["rows"] == 310 and join["objects"] == ["crm.public.customers", "crm.public.orders"]


def test_bind_parameters_are_written_into_their_placeholders():
    [lookup] = [e for e in sample() if e["db_user"] == "app_billing" and e["action"] == "SELECT" and e.get("objects")]
    assert lookup["statement"] == "SELECT id, name, phone FROM customers WHERE id = '42'"
    [update] = [e for e in sample() if e["action"] == "UPDATE" and e["success"]]
    assert update["statement"] == "UPDATE customers SET address = '7 New Rd, Shelbyville' WHERE id = '42'"
    [raw] = [e for e in sample(inline_parameters=False) if e["action"] == "UPDATE" and e["success"]]
    assert raw["statement"] == "UPDATE customers SET address = $1 WHERE id = $2"


def test_placeholders_inside_quotes_comments_and_dollar_quotes_are_left_alone():
    statement = "SELECT '$1', $1, \"$2\" /* $2 */ , $$ $1 $$, $tag$ $2 $tag$, $2 -- $1\n"
    assert inline_parameters(statement, ["it's", "7"]) == \
        "SELECT '$1', 'it''s', \"$2\" /* $2 */ , $$ $1 $$, $tag$ $2 $tag$, '7' -- $1\n"


def test_identity_pattern_names_the_employee_behind_a_shared_application_account():
    lines = synthetic("LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT * FROM customers,<none>,5",
                      app="portal user=clerk_li")
    [event], _ = ship("stderr", lines, identity_pattern=r"user=(?P<employee>[A-Za-z0-9_.-]+)")
    assert event["employee_id"] == "clerk_li"
    [plain], _ = ship("stderr", lines)
    assert "employee_id" not in plain
    [other], _ = ship("stderr", synthetic("LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,"
                                          "SELECT * FROM customers,<none>,5", app="psql"),
                      identity_pattern=r"user=(?P<employee>[A-Za-z0-9_.-]+)")
    assert "employee_id" not in other


def test_identity_pattern_also_reads_a_session_variable_set_by_the_application():
    events, _ = ship("stderr", synthetic(
        "LOG:  AUDIT: SESSION,1,1,MISC,SET,,,SET myapp.end_user = 'clerk_wang',<none>,0",
        "LOG:  AUDIT: SESSION,2,1,READ,SELECT,TABLE,public.customers,SELECT * FROM customers,<none>,5"),
        identity_pattern=r"end_user = '(?P<employee>[^']+)'")
    assert [e.get("employee_id") for e in events] == ["clerk_wang", "clerk_wang"]


def test_an_error_after_pgaudit_logged_the_statement_marks_that_event_failed():
    events, _ = ship("stderr", synthetic(
        "LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT 1/0 FROM customers,<none>,0",
        "ERROR:  division by zero",
        "STATEMENT:  SELECT 1/0 FROM customers"))
    [event] = events
    assert event["success"] is False and event["objects"] == ["crm.public.customers"]


def test_statement_text_logged_once_is_carried_to_the_later_lines_of_the_statement():
    events, _ = ship("stderr", synthetic(
        "LOG:  AUDIT: OBJECT,4,1,READ,SELECT,TABLE,public.customers,SELECT * FROM customers,<none>,9",
        "LOG:  AUDIT: SESSION,4,1,READ,SELECT,TABLE,public.customers,<previously logged>,<previously logged>,9",
        "LOG:  AUDIT: SESSION,5,1,READ,SELECT,TABLE,public.orders,<previously logged>,<previously logged>,3"))
    assert [(e.get("statement"), e["rows"]) for e in events] == [("SELECT * FROM customers", 9), (None, 3)]


def test_a_quiet_sessions_statement_is_emitted_once_the_group_window_passes_without_a_flush():
    a = adapter()
    first = synthetic("LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT * FROM customers,<none>,7")
    later = synthetic("LOG:  AUDIT: SESSION,1,1,MISC,SHOW,,,SHOW work_mem,<none>,0", session="6b0aeeba.0001", second=50)
    later = [(text, offset + 1000, length) for text, offset, length in later]
    assert a.feed(*first[0]).events == []
    emitted = a.feed(*later[0]).events
    assert emitted == []                          # the later line is not complete yet (no next line)
    emitted = a.feed("2026-11-28 15:09:51.000 UTC [1] user=x db=crm app=a client=h session=6b0aeeba.0002 line=1 "
                     "vxid=3/9 txid=0 tag=: LOG:  checkpoint starting: time", 2000, 100).events
    assert [e["rows"] for e in emitted] == [7]


@pytest.mark.parametrize("destination", sorted(FILES))
def test_a_restart_from_the_safe_offset_neither_loses_nor_repeats_an_event(destination):
    lines = lines_of(SAMPLES / FILES[destination])
    everything = sample(destination)
    for cut in range(len(lines) + 1):
        first = adapter(destination)
        before = [e for line in lines[:cut] for e in first.feed(*line).events]
        resume = first.safe_offset()
        second = adapter(destination)
        second.start_at("main", resume)
        after = [e for line in lines if line[1] >= resume for e in second.feed(*line).events]
        assert before + after + second.flush().events == everything, f"cut after line {cut}"


def test_every_event_passes_the_projects_own_decoder():
    for destination in FILES:
        for event in sample(destination):
            assert isinstance(decode_event(orjson.dumps(event)), AccessEvent)
            event_from_mapping(event)


def test_a_line_that_does_not_match_the_prefix_is_a_bad_record_and_reading_goes_on():
    lines = synthetic("LOG:  AUDIT: SESSION,1,1,READ,SELECT,TABLE,public.customers,SELECT * FROM customers,<none>,3")
    junk = ("sh: 1: cannot create /archive/x: phone 13800001234", 0, 10)
    lines = [junk] + [(t, o + 10, n) for t, o, n in lines]
    events, bad = ship("stderr", lines)
    assert len(events) == 1
    [record] = bad
    assert record.reason == "line does not match the configured log_line_prefix"
    assert "13800001234" in record.raw and "13800001234" not in record.reason


def test_a_malformed_audit_payload_is_a_bad_record_without_its_text_in_the_reason():
    events, bad = ship("stderr", synthetic("LOG:  AUDIT: SESSION,1,1,READ,'secret 4111111111111111'"))
    assert events == [] and len(bad) == 1
    assert "4111" not in bad[0].reason and "4111" in bad[0].raw


def test_log_line_prefix_escapes_are_compiled_into_one_pattern():
    pattern = compile_prefix("%t [%p-%l] %q%u@%d/%a %r %e ")
    m = pattern.match("2026-11-28 15:09:46 UTC [6644-3] alice@crm/psql 10.0.0.5(5544) 42501 ERROR:  permission denied")
    assert m.group("f_t") == "2026-11-28 15:09:46 UTC" and m.group("f_u") == "alice" and m.group("f_r") == "10.0.0.5(5544)"
    assert m.group("severity") == "ERROR" and m.group("message") == "permission denied"
    background = pattern.match("2026-11-28 15:09:46 UTC [77-1] LOG:  checkpoint starting: time")
    assert background is not None and background.group("f_u") is None    # %q: nothing after it outside sessions
    with pytest.raises(ValueError, match="timestamp"):
        compile_prefix("[%p] ")


def test_client_port_and_zone_offsets_are_read_from_other_prefixes():
    a = PgauditAdapter(PgauditSettings(log_line_prefix="%m %r %u %d %c "))
    line = ("2026-11-28 23:09:46.123 +08 10.0.0.5(5544) alice crm 6b0a.1 LOG:  AUDIT: SESSION,1,1,READ,SELECT,"
            "TABLE,public.customers,SELECT 1,<none>,1")
    a.feed(line, 0, len(line) + 1)
    [event] = a.flush().events
    assert event["ts"] == "2026-11-28T23:09:46.123+08:00" and event["client_addr"] == "10.0.0.5"
    assert event_from_mapping(event).ts_ms == event_from_mapping({**event, "ts": "2026-11-28T15:09:46.123Z"}).ts_ms
