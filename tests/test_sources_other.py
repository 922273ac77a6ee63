"""MySQL Enterprise Audit (JSON) and AWS Database Activity Streams adapters.

Fixtures (tests/data/samples) follow the record examples documented by Oracle (MySQL
reference manual, "JSON Audit Log File Format") and AWS (RDS/Aurora user guide, "Audit log
contents and examples for database activity streams"), with this project's crm workload."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from detector.events import AccessEvent, decode_event, event_from_mapping
from streams.sources import FORMATS, SourceSettings, make_adapter

SAMPLES = Path(__file__).parent / "data" / "samples"


def lines_of(path: Path | None = None, text: str | None = None) -> list[tuple[str, int, int]]:
    data = text.encode() if text is not None else path.read_bytes()
    out, offset = [], 0
    for raw in data.splitlines(keepends=True):
        out.append((raw.decode().rstrip("\r\n"), offset, len(raw)))
        offset += len(raw)
    return out


def ship(fmt: str, lines, **settings) -> tuple[list[dict], list]:
    adapter = make_adapter(fmt, SourceSettings(**settings))
    events, bad = [], []
    for line in lines:
        batch = adapter.feed(*line)
        events += batch.events
        bad += batch.bad
    batch = adapter.flush()
    return events + batch.events, bad + batch.bad


def sample(fmt: str, name: str, **settings) -> list[dict]:
    events, bad = ship(fmt, lines_of(SAMPLES / name), **settings)
    assert bad == []
    return events


MYSQL = ("mysql-enterprise-json", "mysql_enterprise_audit.json")
DAS_PG = ("aws-das", "aws_das_aurora_postgresql.jsonl")
DAS_MY = ("aws-das", "aws_das_aurora_mysql.json")


# -- MySQL Enterprise Audit ----------------------------------------------------------

def test_mysql_enterprise_pretty_printed_and_one_per_line_files_yield_the_same_events():
    assert sample(*MYSQL) == sample("mysql-enterprise-json", "mysql_enterprise_audit_compact.json")


def test_mysql_enterprise_rows_come_from_the_query_statistics_and_tables_from_table_access():
    events = sample(*MYSQL)
    [bulk] = [e for e in events if e.get("statement") == "SELECT * FROM customers"]
    assert (bulk["rows"], bulk["bytes"], bulk["objects"]) == (200, 17460, ["crm.customers"])
    assert bulk["db_user"] == "alice" and bulk["client_addr"] == "127.0.0.1" and bulk["database"] == "crm"
    assert bulk["application"] == "DBeaver 23.2.0 user=E10907"
    [join] = [e for e in events if (e.get("statement") or "").startswith("SELECT c.name")]
    assert join["rows"] == 310 and join["objects"] == ["crm.customers", "crm.orders"]


def test_mysql_enterprise_without_query_statistics_rows_are_unknown():
    [update] = [e for e in sample(*MYSQL) if e["action"] == "UPDATE"]
    assert update["rows"] is None and update["objects"] == ["crm.customers"]


def test_mysql_enterprise_failures_and_logins():
    events = sample(*MYSQL)
    assert [(e["action"], e["db_user"], e["success"]) for e in events if e["action"].startswith("LOGIN")] == [
        ("LOGIN", "alice", True), ("LOGIN_FAILED", "mallory", False)]
    [denied] = [e for e in events if e.get("statement") == "SELECT * FROM payroll"]
    assert denied["success"] is False
    assert not any(e.get("statement") == "COMMIT" for e in events)


def test_mysql_enterprise_identity_from_the_program_name_connection_attribute():
    events = sample(*MYSQL, identity_pattern=r"user=(?P<employee>\w+)")
    assert {e.get("employee_id") for e in events if e["db_user"] == "alice"} == {"E10907"}
    assert "employee_id" not in [e for e in events if e["db_user"] == "mallory"][0]


# -- AWS Database Activity Streams ------------------------------------------------

def test_das_aurora_postgresql_records_become_pgaudit_like_events():
    events = sample(*DAS_PG)
    assert [e["action"] for e in events] == ["LOGIN", "SELECT", "SELECT", "COPY", "SELECT", "UPDATE"]
    login, bulk, join, copy, denied, update = events
    assert bulk["rows"] == 200 and bulk["objects"] == ["crm.public.customers"] and bulk["ts"] == "2026-11-28T15:30:01.200Z"
    assert join["rows"] == 310 and join["objects"] == ["crm.public.customers", "crm.public.orders"]
    assert copy["rows"] is None                       # rowCount 0 for COPY: unknown
    assert denied["success"] is False
    assert update["rows"] is None and update["statement"] == "UPDATE customers SET address = '7 New Rd' WHERE id = '42'"


def test_das_aurora_mysql_main_and_aux_records_are_one_event_in_any_order():
    events = sample(*DAS_MY)
    assert [e["action"] for e in events] == ["LOGIN", "SELECT", "SELECT", "EXPORT", "LOGIN_FAILED"]
    bulk = events[1]
    assert bulk["rows"] == 200 and bulk["objects"] == ["crm.customers"] and bulk["statement"] == "SELECT * FROM customers"
    assert events[2]["success"] is False and events[4]["db_user"] == "mallory"


def test_das_documents_with_the_event_list_as_a_json_string_are_read_too():
    inner = {"type": "DatabaseActivityMonitoringRecord", "databaseActivityEventList": [
        {"type": "record", "logTime": "2026-11-28 15:30:01.2+00", "dbUserName": "alice", "databaseName": "crm",
         "command": "SELECT", "class": "READ", "objectType": "TABLE", "objectName": "public.customers",
         "rowCount": 3, "commandText": "SELECT * FROM customers", "sessionId": "s1", "statementId": 1,
         "substatementId": 1, "serverType": "PostgreSQL"}, {"type": "heartbeat"}]}
    outer = {"type": "DatabaseActivityMonitoringRecords", "version": "1.1",
             "databaseActivityEvents": orjson.dumps(inner).decode(), "key": "k"}
    [event], bad = ship("aws-das", lines_of(text=orjson.dumps(outer).decode() + "\n"))
    assert bad == [] and event["rows"] == 3 and event["ts"] == "2026-11-28T15:30:01.200Z"


def test_das_still_encrypted_or_foreign_documents_are_bad_records_and_reading_goes_on():
    text = ('{"type":"DatabaseActivityMonitoringRecords","databaseActivityEvents":"AYADeJx0kctu2zAQ","key":"x"}\n'
            'not json at all, phone 13800001234\n'
            + (SAMPLES / DAS_PG[1]).read_text())
    events, bad = ship("aws-das", lines_of(text=text))
    assert len(events) == 6 and len(bad) == 2
    assert all("13800001234" not in b.reason for b in bad)


# -- shared properties -------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "name"), [MYSQL, ("mysql-enterprise-json", "mysql_enterprise_audit_compact.json"),
                                           DAS_PG, DAS_MY])
def test_a_restart_from_the_safe_offset_neither_loses_nor_repeats_an_event(fmt, name):
    lines = lines_of(SAMPLES / name)
    everything = sample(fmt, name)
    for cut in range(len(lines) + 1):
        first = make_adapter(fmt)
        before = [e for line in lines[:cut] for e in first.feed(*line).events]
        resume = first.safe_offset()
        second = make_adapter(fmt)
        second.restore_context(orjson.loads(orjson.dumps(first.context())))   # as the position file keeps it
        second.start_at("main", resume)
        after = [e for line in lines if line[1] >= resume for e in second.feed(*line).events]
        assert before + after + second.flush().events == everything, f"cut after line {cut}"


@pytest.mark.parametrize(("fmt", "name"), [MYSQL, DAS_PG, DAS_MY])
def test_every_event_passes_the_projects_own_decoder(fmt, name):
    for event in sample(fmt, name):
        assert isinstance(decode_event(orjson.dumps(event)), AccessEvent)
        event_from_mapping(event)


def test_every_format_has_an_adapter_and_unknown_ones_are_named():
    for fmt in FORMATS:
        assert make_adapter(fmt).source
    with pytest.raises(ValueError, match="unknown format 'oracle'"):
        make_adapter("oracle")
    with pytest.raises(ValueError, match="named group"):
        make_adapter("aws-das", SourceSettings(identity_pattern="user=(\\w+)"))
